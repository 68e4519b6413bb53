"""``Dynamics``: a population of units with a shape, States, and registered inputs.

A ``Dynamics`` module is what projections target. Besides the external input passed to
``update(x)``, it sums inputs registered by projections:

* **current inputs** (``add_current_input``): synaptic outputs such as COBA/CUBA, evaluated
  inside the membrane equation at the membrane potential (so a conductance enters the
  exponential-Euler Jacobian), or one-shot tensors consumed at the next step;
* **delta inputs** (``add_delta_input``): jumps added to a State after integration;
* **before/after updates**: modules run before ``update`` (e.g. the synapse of an AlignPost
  projection, advanced when its post population steps) and after it (fed the output).

One-shot tensors wait for the next step in two States, ``pending_current`` (pA) and
``pending_delta`` (the integrated variable's unit), of kind ``ShortTermState``: the sum of what
was registered since the last step, or an empty tensor (shape ``(0,)``) when nothing waits
(``None`` before ``init_state``). Being States, they are cleared by ``init_state`` and
``reset_state``, saved and restored by ``tb.state_dict``/``tb.load_state_dict`` (a run saved
between a projection's delivery and the post population's step resumes with the jump still due)
and bound like any State under CUDA-graph capture; an empty value is left out of ``repr``.

Calling the module runs ``before updates -> update -> after updates``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .module import Module
from .state import ShortTermState
from .units import is_quantity, to_tensor

__all__ = ["Dynamics", "SynapticCurrent"]

#: The States holding one-shot inputs until the next step (see the module docstring).
_PENDING = ("pending_current", "pending_delta")


def _as_size(in_size, owner: str) -> tuple[int, ...]:
    if isinstance(in_size, int | torch.SymInt) and not isinstance(in_size, bool):
        size = (int(in_size),)
    elif isinstance(in_size, tuple | list | torch.Size):
        size = tuple(int(s) for s in in_size)
    else:
        raise TypeError(f"{owner}: in_size must be an int or a tuple of ints, got {in_size!r}")
    if not size or any(s < 1 for s in size):
        raise ValueError(f"{owner}: in_size must hold positive sizes, got {in_size!r}")
    return size


class SynapticCurrent(Module):
    """Base of modules that turn a synaptic variable into a membrane current.

    ``current(V)`` is the current in pA at membrane potential ``V`` (mV); ``conductance(V)`` is
    ``-dI/dV`` in nS, which the exponential-Euler integrator folds into the membrane's
    time constant (zero for a current-based output).
    """

    def current(self, V: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def conductance(self, V: torch.Tensor) -> torch.Tensor | float:
        return 0.0


class Dynamics(Module):
    """A population of ``in_size`` units with States and registered inputs.

    Parameters
    ----------
    in_size : int or tuple of int
        Shape of the population (``varshape``).
    name : str, optional
        A label used in error messages and ``repr``.
    device, dtype : optional
        Factory arguments for parameters and States.
    """

    #: Buffers that do not say which dtype/device new States take (shaped like the inputs).
    _not_factory = _PENDING
    #: their shape changes from step to step: a saved state is not held to the current shape
    _shape_free_states = _PENDING

    def __init__(self, in_size, *, name: str | None = None, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        self.label = name
        self.in_size = _as_size(in_size, type(self).__name__)
        self.varshape = self.in_size
        self.num = math.prod(self.varshape)
        self._batch_size: int | None = None
        self._initialised = False
        self.current_inputs = nn.ModuleDict()
        self.delta_inputs = nn.ModuleDict()
        # None until init_state, like every State (then empty: nothing pending)
        self.pending_current = ShortTermState(None)
        self.pending_delta = ShortTermState(None)
        self.before_updates = nn.ModuleDict()
        self.after_updates = nn.ModuleDict()

    def _name(self) -> str:
        return f"{type(self).__name__}({self.label})" if self.label else type(self).__name__

    @property
    def out_size(self) -> tuple[int, ...]:
        return self.varshape

    @property
    def batch_size(self) -> int | None:
        """The batch size the States were initialised with (None: unbatched)."""
        return self._batch_size

    def _repr_config(self) -> dict[str, Any]:
        return {"in_size": self.in_size}

    def _repr_state(self, name: str, value) -> bool:
        return not (name in _PENDING and (value is None or value.numel() == 0))

    # ----------------------------------------------------------------- States
    def _state_shape(self, batch_size: int | None) -> tuple[int, ...]:
        self._batch_size = batch_size
        self._initialised = True
        # one-shot inputs left from a previous run must not leak into the new one
        self.pending_current = self._nothing_pending()
        self.pending_delta = self._nothing_pending()
        return self.varshape if batch_size is None else (batch_size, *self.varshape)

    def _nothing_pending(self) -> torch.Tensor:
        """The value of an empty one-shot input State: a tensor of shape ``(0,)``."""
        return torch.empty(0, **self._factory_like_states())

    def _batch_size_from_states(self) -> None:
        for name in self._state_kinds:
            if name in _PENDING:
                continue  # shaped like the inputs waiting, not like the population
            value = getattr(self, name)
            if isinstance(value, torch.Tensor):
                extra = value.ndim - len(self.varshape)
                self._batch_size = value.shape[0] if extra == 1 else None
                self._initialised = True
                return

    def _check_ready(self) -> None:
        if not self._initialised:
            raise RuntimeError(
                f"{self._name()}: States are not initialised; call tb.init_all_states(model) "
                "(or tb.init_all_states(model, batch_size=B)) before running it"
            )

    def _expected_shape(self) -> tuple[int, ...]:
        return self.varshape if self._batch_size is None else (self._batch_size, *self.varshape)

    def _check_input(self, x: torch.Tensor, name: str = "x") -> None:
        """Reject inputs that do not broadcast to the State shape without growing it."""
        expected = self._expected_shape()
        shape = tuple(x.shape)
        ok = len(shape) <= len(expected) and all(
            s in (1, e) for s, e in zip(reversed(shape), reversed(expected), strict=False)
        )
        if ok:
            return
        if self._batch_size is not None and len(shape) == len(expected) and (
            shape[1:] == tuple(expected[1:])
        ):
            raise ValueError(
                f"{self._name()}: input '{name}' has batch size {shape[0]} but the States were "
                f"initialised for batch size {self._batch_size}; call "
                f"tb.reset_all_states(model, batch_size={shape[0]}) to change it"
            )
        if self._batch_size is None and len(shape) == len(expected) + 1 and (
            shape[1:] == tuple(expected)
        ):
            raise ValueError(
                f"{self._name()}: input '{name}' has a batch dimension of {shape[0]} but the "
                f"States were initialised without a batch; call "
                f"tb.reset_all_states(model, batch_size={shape[0]})"
            )
        raise ValueError(
            f"{self._name()}: input '{name}' has shape {shape}, which does not broadcast to the "
            f"State shape {expected}"
        )

    def _input_tensor(self, x, unit: str, name: str = "x") -> torch.Tensor | float:
        """An external input as a canonical tensor (quantities converted, shape checked)."""
        if is_quantity(x):
            fac = self._factory_like_states()
            x = to_tensor(x, unit, owner=self._name(), name=name, **fac)
        if isinstance(x, torch.Tensor):
            self._check_input(x, name)
        return x

    # ----------------------------------------------------------------- inputs
    def add_current_input(self, key: str, value) -> None:
        """Register a current input: a ``SynapticCurrent`` module (persistent, evaluated every
        step at the membrane potential) or a tensor in pA (consumed by the next step)."""
        if isinstance(value, nn.Module):
            if key in self.current_inputs:
                raise KeyError(f"{self._name()}: a current input named '{key}' already exists")
            self.current_inputs[key] = value
        else:
            self.pending_current = self._pend(self.pending_current, value, "pA")

    def add_delta_input(self, key: str, value) -> None:
        """Register a jump added to the integrated variable after the step (a tensor, consumed
        by the next step, or a module called with no argument every step)."""
        if isinstance(value, nn.Module):
            if key in self.delta_inputs:
                raise KeyError(f"{self._name()}: a delta input named '{key}' already exists")
            self.delta_inputs[key] = value
        else:
            self.pending_delta = self._pend(self.pending_delta, value, None)

    def _pend(self, pending: torch.Tensor | None, value, unit: str | None) -> torch.Tensor:
        """``pending`` plus a one-shot input (a tensor, number or, with a ``unit``, quantity)."""
        if not isinstance(value, torch.Tensor):
            if unit is None and is_quantity(value):
                raise TypeError(
                    f"{self._name()}: a delta input must be a tensor or number in the canonical "
                    f"unit of the variable it jumps (mV for a membrane), got the quantity {value!r}"
                )
            fac = self._factory_like_states()
            value = (to_tensor(value, unit, owner=self._name(), name="input", **fac)
                     if unit is not None else torch.as_tensor(value, **fac))
        return value if pending is None or pending.numel() == 0 else pending + value

    def sum_current_inputs(self, x, V: torch.Tensor):
        """Total current (pA) at ``V`` and total conductance ``-dI/dV`` (nS).

        ``x`` is the external current; one-shot tensor inputs are consumed.
        """
        current = x
        conductance = 0.0
        for out in self.current_inputs.values():
            current = current + out.current(V)
            conductance = conductance + out.conductance(V)
        pending = self.pending_current
        if pending is not None and pending.numel():
            current = current + pending
            self.pending_current = pending.new_empty(0)
        return current, conductance

    def sum_delta_inputs(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` plus every registered jump (one-shot tensors are consumed)."""
        for mod in self.delta_inputs.values():
            value = value + mod()
        pending = self.pending_delta
        if pending is not None and pending.numel():
            value = value + pending
            self.pending_delta = pending.new_empty(0)
        return value

    def add_before_update(self, key: str, module: nn.Module) -> None:
        """Run ``module()`` every time before this population's ``update``."""
        if key in self.before_updates:
            raise KeyError(f"{self._name()}: a before-update named '{key}' already exists")
        self.before_updates[key] = module

    def add_after_update(self, key: str, module: nn.Module) -> None:
        """Run ``module(output)`` every time after this population's ``update``."""
        if key in self.after_updates:
            raise KeyError(f"{self._name()}: an after-update named '{key}' already exists")
        self.after_updates[key] = module

    def has_before_update(self, key: str) -> bool:
        return key in self.before_updates

    def get_before_update(self, key: str) -> nn.Module:
        return self.before_updates[key]

    # ------------------------------------------------------------------- call
    def update(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement update()")

    def forward(self, *args, **kwargs):
        for mod in self.before_updates.values():
            mod()
        out = self.update(*args, **kwargs)
        for mod in self.after_updates.values():
            mod(out)
        return out
