"""``tb.Module``: an ``nn.Module`` that owns unit-checked parameters and typed States."""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import nn

from . import state as _state
from .state import ParamState, StateKind
from .units import (
    UnitError,
    as_quantity,
    check_finite,
    format_quantity,
    is_quantity,
    to_tensor,
)

__all__ = ["Module", "TimeStepWarning", "check_time_step", "available_bytes", "check_fits",
           "check_seed"]


class TimeStepWarning(UserWarning):
    """The time step ``dt`` is too coarse for a model's fastest time constant.

    The run goes on, but its numbers are not those of the model (e.g. Hodgkin–Huxley at
    ``dt = 1 ms`` fires one spike where finer steps give fourteen). Silence it on purpose with
    ``warnings.filterwarnings("ignore", category=tb.TimeStepWarning)``.
    """


class Module(nn.Module):
    """Base of every torchbrain module.

    It adds to ``nn.Module``:

    * **States**: ``self.V = tb.HiddenState(tensor)`` registers a buffer tagged with its kind
      (see :mod:`torchbrain.state`); ``init_state``/``reset_state`` allocate and reset them.
    * **Parameters with units**: :meth:`_register_parameter_with_unit` checks a quantity's
      dimension, converts it to the canonical unit and stores a tensor; :meth:`quantity` gives the
      value back as a quantity and ``repr`` shows it with its unit.
    * pickling and ``deepcopy`` that work after a forward pass under autograd (States are detached
      in the copy; the original keeps its graph).
    """

    def __init__(self, *, device=None, dtype=None):
        super().__init__()
        _check_factory(type(self).__name__, device, dtype)
        self._state_kinds: dict[str, type[StateKind]] = {}
        self._param_units: dict[str, str] = {}
        self._factory = {"device": device, "dtype": dtype or torch.get_default_dtype()}

    @classmethod
    def desc(cls, *args: Any, **kwargs: Any):
        """A deferred constructor (:class:`~torchbrain.describe.ParamDescriber`) of this class."""
        from .describe import ParamDescriber

        return ParamDescriber(cls, *args, **kwargs)

    # ------------------------------------------------------------------ States
    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, StateKind):
            self.register_state(name, type(value), value.value)
        else:
            if _state._WRITE_TRACKERS and name in self.__dict__.get("_state_kinds", ()):
                _state._note_state_write(self, name)
            super().__setattr__(name, value)

    def register_state(self, name: str, kind: type[StateKind], value: torch.Tensor | None):
        """Register (or re-declare) State ``name`` of ``kind`` with ``value``."""
        if not (isinstance(kind, type) and issubclass(kind, StateKind)):
            raise TypeError(f"{self._name()}: kind must be a StateKind subclass, got {kind!r}")
        if "_state_kinds" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before States")
        known = self._state_kinds.get(name)
        if known is not None and known is not kind:
            raise TypeError(
                f"{self._name()}: State '{name}' is a {known.__name__}, cannot re-declare it as "
                f"a {kind.__name__}"
            )
        if known is None:
            for store in (self._parameters, self._buffers, self._modules):
                store.pop(name, None)
            self.__dict__.pop(name, None)
        self._state_kinds[name] = kind
        if issubclass(kind, ParamState):
            param = None if value is None else nn.Parameter(value)
            self._buffers.pop(name, None)
            self.register_parameter(name, param)
        elif name in self._buffers:
            self._buffers[name] = value
            if kind.persistent:
                self._non_persistent_buffers_set.discard(name)
            else:
                self._non_persistent_buffers_set.add(name)
        else:
            self.register_buffer(name, value, persistent=kind.persistent)

    def _set_state_value(self, name: str, value: torch.Tensor | None) -> None:
        if _state._WRITE_TRACKERS:
            _state._note_state_write(self, name)
        if issubclass(self._state_kinds[name], ParamState):
            with torch.no_grad():
                getattr(self, name).copy_(value)
        else:
            self._buffers[name] = value

    # ------------------------------------------------------------- time step
    def _validate_dt(self, dt: float) -> None:
        """Check that this module can run at time step ``dt`` (ms): raise ``ValueError`` for a
        step it cannot take, warn :class:`TimeStepWarning` for one too coarse. Default: any."""

    def _check_dt_once(self, dt: float) -> None:
        """:meth:`_validate_dt` once per ``dt`` value (eager code only: compiled steps were
        checked by the driver, :func:`check_time_step`, or by their first eager call)."""
        if torch.compiler.is_dynamo_compiling() or self.__dict__.get("_dt_checked") == dt:
            return
        self._validate_dt(dt)
        self.__dict__["_dt_checked"] = dt

    #: Buffers that do not decide the dtype and device of new tensors (see below).
    _not_factory: tuple[str, ...] = ()

    def _factory_like_states(self) -> dict[str, Any]:
        """Device and dtype for new States and inputs: those of the first floating-point buffer
        or parameter (they follow ``.to()``), else the factory arguments."""
        tensors = [t for name, t in self._buffers.items() if name not in self._not_factory]
        for t in tensors + list(self._parameters.values()):
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                return {"device": t.device, "dtype": t.dtype}
        return {"device": self._factory["device"], "dtype": self._factory["dtype"]}

    def init_state(self, batch_size: int | None = None) -> None:
        """Allocate this module's States (``(batch_size, *varshape)`` or ``varshape``)."""

    def reset_state(self, batch_size: int | None = None) -> None:
        """Reset this module's States to their initial values; by default re-initialise."""
        self.init_state(batch_size)

    def states(self, kind: type[StateKind] | None = None):
        """States of this module and its submodules (see :func:`torchbrain.states`)."""
        from .state import states

        return states(self, kind)

    # -------------------------------------------------------- unit parameters
    def _name(self) -> str:
        return type(self).__name__

    def _register_parameter_with_unit(
        self,
        name: str,
        value: Any,
        unit: str,
        *,
        shape: tuple[int, ...] | None = None,
        positive: bool = False,
        nonnegative: bool = False,
        trainable: bool = False,
        infinite_ok: bool = False,
    ) -> torch.Tensor:
        """Check, convert and store a parameter; returns the stored tensor.

        ``value`` may be a quantity, a number in the canonical ``unit``, a tensor, or an
        initializer from :mod:`torchbrain.init` (evaluated on ``shape``). The result is a buffer
        (saved by ``state_dict``, moved by ``.to()``) or, with ``trainable=True``, a Parameter.
        Values must be finite (NaN and ±inf are refused) unless ``infinite_ok`` (a bound that may
        be absent, such as a weight ceiling); NaN is always refused.
        """
        from .init import Initializer

        if isinstance(value, Initializer):
            if shape is None:
                raise TypeError(f"{self._name()}: parameter '{name}' cannot take an initializer")
            value = value(shape, dtype=self._factory["dtype"], device=self._factory["device"])
        if isinstance(value, nn.Parameter):
            # A Parameter passed in is shared on purpose (weight tying); keep it, check unit-free.
            tensor = value
        else:
            tensor = to_tensor(
                value, unit, owner=self._name(), name=name,
                dtype=self._factory["dtype"], device=self._factory["device"],
            )
        self._check_values(name, tensor, unit, positive=positive, nonnegative=nonnegative,
                           infinite_ok=infinite_ok)
        if shape is not None:
            try:
                torch.broadcast_shapes(tensor.shape, shape)
            except RuntimeError:
                raise ValueError(
                    f"{self._name()}: parameter '{name}' has shape {tuple(tensor.shape)}, which "
                    f"does not broadcast to the population shape {tuple(shape)}"
                ) from None
        self._param_units[name] = unit
        if trainable or isinstance(value, nn.Parameter):
            param = value if isinstance(value, nn.Parameter) else nn.Parameter(tensor.clone())
            self.register_parameter(name, param)
            return param
        tensor = tensor.detach().clone() if tensor.requires_grad else tensor
        self.register_buffer(name, tensor, persistent=True)
        return tensor

    def _check_values(self, name, tensor, unit, *, positive=False, nonnegative=False,
                      infinite_ok=False):
        with torch.no_grad():
            if not infinite_ok:
                check_finite(tensor, self._name(), name)
            elif torch.isnan(tensor).any():
                raise ValueError(f"{self._name()}: parameter '{name}' contains NaN")
            if positive and not bool((tensor > 0).all()):
                raise ValueError(
                    f"{self._name()}: parameter '{name}' must be positive, got "
                    f"{format_quantity(tensor.min(), unit)} (smallest value)"
                )
            if nonnegative and not bool((tensor >= 0).all()):
                raise ValueError(
                    f"{self._name()}: parameter '{name}' must be >= 0, got "
                    f"{format_quantity(tensor.min(), unit)} (smallest value)"
                )

    def quantity(self, name: str):
        """The parameter ``name`` as a pint quantity in its canonical unit (for people)."""
        if name not in self._param_units:
            raise KeyError(f"{self._name()} has no parameter with a unit named '{name}'")
        return as_quantity(getattr(self, name), self._param_units[name])

    # -------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        parts = []
        for key, value in self._repr_config().items():
            parts.append(f"{key}={value}")
        for name, unit in self._param_units.items():
            parts.append(f"{name}={format_quantity(getattr(self, name), unit)}")
        for name, kind in self._state_kinds.items():
            value = getattr(self, name)
            if not self._repr_state(name, value):
                continue
            text = "None" if value is None else (
                f"{str(value.dtype).removeprefix('torch.')}{list(value.shape)}"
            )
            parts.append(f"{name}={kind.__name__}({text})")
        return ",\n".join(parts)

    def __repr__(self) -> str:
        # nn.Module's layout, leaving out empty containers (a population's unused input slots).
        lines = [line for line in self.extra_repr().split("\n") if line]
        for key, child in self._modules.items():
            if child is None or (isinstance(child, nn.ModuleDict | nn.ModuleList)
                                 and len(child) == 0):
                continue
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"({key}): {text}")
        if not lines:
            return f"{self._get_name()}()"
        body = "\n  ".join(lines)
        return f"{self._get_name()}(\n  {body}\n)"

    def _repr_config(self) -> dict[str, Any]:
        """Non-parameter settings shown first in ``repr`` (sizes, reset mode, ...)."""
        return {}

    def _repr_state(self, name: str, value: torch.Tensor | None) -> bool:
        """Whether ``repr`` shows State ``name`` (subclasses hide States with nothing to say)."""
        return True

    # ---------------------------------------------------------------- pickling
    def __getstate__(self):
        # States computed under autograd are non-leaf tensors, which neither deepcopy nor pickle
        # accept; copies get detached values (the original keeps its graph).
        state = self.__dict__.copy()
        buffers = state.get("_buffers")
        if buffers is not None:
            state["_buffers"] = {
                k: (v.detach() if isinstance(v, torch.Tensor) and v.grad_fn is not None else v)
                for k, v in buffers.items()
            }
        return state


def _check_factory(owner: str, device, dtype) -> None:
    """A floating dtype and a device this build of torch can use, or a clear error."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(
            f"{owner}: parameter 'dtype' must be a floating torch.dtype (torch.float32, "
            f"torch.float64, ...), got {dtype!r}"
        )
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{owner}: parameter 'device' must name a torch device, got "
                         f"{device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{owner}: parameter 'device' is {device!r}, but this torch build has no usable CUDA "
            f"(torch {torch.__version__}, CUDA {torch.version.cuda}); use device='cpu' or "
            "install a CUDA build of torch"
        )


def check_seed(owner: str, seed) -> int | None:
    """``seed`` as an int in [0, 2**63) (what ``torch.Generator.manual_seed`` takes), or None."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not (
            0 <= int(seed) < 2**63):
        raise ValueError(
            f"{owner}: parameter 'seed' must be None or an int in [0, 2**63), got {seed!r}"
        )
    return int(seed)


def available_bytes(device: torch.device | str) -> int | None:
    """Free memory on ``device`` in bytes (``MemAvailable`` on the CPU, ``mem_get_info`` on
    CUDA), or None where it cannot be read."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def format_bytes(n: float) -> str:
    """``400 GB``-style text for a byte count."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{int(n)} B" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} TB"


def check_fits(owner: str, what: str, shape, dtype: torch.dtype, device, hint: str) -> None:
    """Raise ``MemoryError`` before allocating ``shape`` of ``dtype`` on ``device`` when it
    exceeds the memory available there (instead of an allocator error or the OOM killer)."""
    need = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    free = available_bytes(device if device is not None else "cpu")
    if free is not None and need > free:
        raise MemoryError(
            f"{owner}: {what} needs {format_bytes(need)} (shape {tuple(shape)}, {dtype}), more "
            f"than the {format_bytes(free)} available; {hint}"
        )


def check_time_step(net: nn.Module, dt: float) -> None:
    """Check every torchbrain module of ``net`` against time step ``dt`` (ms), once per ``dt``.

    Drivers call it before a run, outside compiled code; see :meth:`Module._validate_dt`.
    """
    for module in net.modules():
        if isinstance(module, Module):
            module._check_dt_once(dt)


def check_quantity_free(value: Any, owner: str, name: str) -> None:
    """Raise when a pint quantity reaches code that only takes canonical numbers."""
    if is_quantity(value):
        raise UnitError(f"{owner}: '{name}' must be a canonical number here, got {value!r}")


def prod(shape) -> int:
    return math.prod(shape)
