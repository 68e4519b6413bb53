"""The :class:`Initializer` protocol and :func:`param`, which evaluates a parameter
specification (an initializer, a callable, a number, an array, a tensor or a quantity).

See :mod:`torchbrain.init` for how units and shapes are read.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Iterable
from typing import Any

import numpy as np
import pint
import torch

from ..units import Quantity, UnitError, check_finite, is_quantity, to_canonical, u

Shape = int | Iterable[int]


# --------------------------------------------------------------------------- helpers
def _normalize_shape(shape: Any, owner: str = "") -> tuple[int, ...]:
    where = f"{owner}: " if owner else ""
    try:
        dims = (
            (operator.index(shape),)
            if not isinstance(shape, Iterable)
            else tuple(operator.index(d) for d in shape)
        )
    except TypeError:
        raise TypeError(f"{where}shape expects an int or a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{where}shape expects non-negative sizes, got {dims}")
    return dims


def _own_registry(value: Any) -> Any:
    """Re-create a quantity or unit of a foreign pint registry in torchbrain's registry."""
    if is_quantity(value) and value._REGISTRY is not u:
        return Quantity(value.magnitude, str(value.units))
    if isinstance(value, pint.Unit) and value._REGISTRY is not u:
        return u.Unit(str(value))
    return value


def _unit_text(unit: pint.Unit) -> str:
    text = f"{unit:~P}"
    return text if text else "dimensionless"


def _fmt_magnitude(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return repr(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, torch.Tensor):
        if value.ndim == 0:
            return _fmt_magnitude(value.detach().cpu().item())
        return f"tensor(shape={tuple(value.shape)})"
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return _fmt_magnitude(value.item())
        return f"array(shape={value.shape})"
    return repr(value)


def _fmt(value: Any) -> str:
    """Short text of an argument for ``repr``: ``-65.0 mV``, ``'fan_in'``, ``tensor(shape=(2,))``"""
    if is_quantity(value):
        return f"{_fmt_magnitude(value.magnitude)} {_unit_text(value.units)}"
    if isinstance(value, pint.Unit):
        return _unit_text(value)
    return _fmt_magnitude(value)


def _key(value: Any) -> Any:
    """A hashable, comparable stand-in for an argument (used by ``==`` and ``hash``)."""
    if is_quantity(value):
        return ("quantity", _key(value.magnitude), str(value.units))
    if isinstance(value, pint.Unit):
        return ("unit", str(value))
    if isinstance(value, torch.Tensor):
        v = value.detach().cpu()
        return ("tensor", str(v.dtype), tuple(v.shape), tuple(v.flatten().tolist()))
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, tuple(value.ravel().tolist()))
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, list | tuple):
        return tuple(_key(v) for v in value)
    return value


class _PintRef:
    """Pickle stand-in for a quantity or unit, re-created in torchbrain's registry on load.

    pint quantities of a custom registry unpickle into pint's application registry, which
    cannot be mixed with ``torchbrain.u``; storing magnitude and unit text avoids that.
    """

    __slots__ = ("magnitude", "unit", "is_unit")

    def __init__(self, magnitude: Any, unit: str, is_unit: bool):
        self.magnitude = magnitude
        self.unit = unit
        self.is_unit = is_unit

    def __getstate__(self):
        return (self.magnitude, self.unit, self.is_unit)

    def __setstate__(self, state):
        self.magnitude, self.unit, self.is_unit = state

    def restore(self) -> Any:
        return u.Unit(self.unit) if self.is_unit else Quantity(self.magnitude, self.unit)


def _encode(value: Any) -> Any:
    if is_quantity(value):
        return _PintRef(value.magnitude, str(value.units), False)
    if isinstance(value, pint.Unit):
        return _PintRef(None, str(value), True)
    return value


def _decode(value: Any) -> Any:
    return value.restore() if isinstance(value, _PintRef) else value


def _rebuild(cls: type, kwargs: dict[str, Any]) -> Initializer:
    return cls(**{k: _decode(v) for k, v in kwargs.items()})


def _as_check_tensor(value: Any) -> torch.Tensor:
    """float64 CPU view of a magnitude, for argument validation only."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(value, dtype=np.float64))


def _any(cond: Any) -> bool:
    if isinstance(cond, torch.Tensor):
        return bool(cond.any())
    return bool(np.any(cond))


def _resolve_device(device, generator, magnitudes: Iterable[Any]) -> torch.device:
    if device is not None:
        return torch.device(device)
    if generator is not None:
        return generator.device
    for m in magnitudes:
        if isinstance(m, torch.Tensor):
            return m.device
    return torch.get_default_device()



# --------------------------------------------------------------------------- base class
class Initializer:
    """Base class of initializers: a picklable recipe that fills a tensor of a given shape.

    Subclasses record their constructor arguments with :meth:`_init_args` and implement
    :meth:`_sample`, which returns a plain tensor in the initializer's unit (:attr:`unit`).
    ``__call__`` takes care of shape normalisation, defaults and wrapping as a quantity.

    Attributes
    ----------
    unit : pint.Unit or None
        The unit of the result, or ``None`` when the result is a plain tensor.
    """

    unit: pint.Unit | None = None
    #: whether :meth:`_sample` draws random numbers (and therefore needs a floating dtype)
    _random = True
    #: value arguments that may be ±inf (a one-sided truncation bound); all others must be finite
    _infinite_ok: tuple[str, ...] = ()

    def __call__(
        self,
        shape: Shape,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor | pint.Quantity:
        """Draw a value of ``shape``.

        Parameters
        ----------
        shape : int or tuple of int
            Shape of the result.
        dtype : torch.dtype, optional
            Defaults to ``torch.get_default_dtype()``.
        device : torch.device or str, optional
            Defaults to the generator's device, else the device of a tensor argument, else
            torch's default device.
        generator : torch.Generator, optional
            Source of randomness, for reproducible draws.

        Returns
        -------
        torch.Tensor or Quantity
            A tensor of ``shape``, wrapped as ``Quantity(tensor, unit)`` when the initializer
            has a unit.
        """
        name = type(self).__name__
        shape = _normalize_shape(shape, name)
        dtype = dtype if dtype is not None else torch.get_default_dtype()
        if self._random and not dtype.is_floating_point:
            raise TypeError(f"{name}: dtype expects a floating-point dtype, got {dtype}")
        device = _resolve_device(device, generator, getattr(self, "_mags", {}).values())
        out = self._sample(shape, dtype, device, generator)
        return out if self.unit is None else Quantity(out, self.unit)

    def _sample(
        self,
        shape: tuple[int, ...],
        dtype: torch.dtype,
        device: torch.device,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _sample")

    # -- argument bookkeeping ------------------------------------------------------------
    def _init_args(self, args: dict[str, Any], unit_args: Iterable[str] = ()) -> None:
        """Record constructor ``args`` (for repr, ==, pickle) and resolve units of ``unit_args``.

        The value arguments named in ``unit_args`` must be numbers, arrays, tensors or quantities
        of one common dimension; their magnitudes, in the unit of the first quantity among them,
        are stored in ``self._mags`` and that unit in ``self.unit``.
        """
        name = type(self).__name__
        self._args = dict(args)
        unit_args = tuple(unit_args)
        ref_name, ref = None, None
        for arg in unit_args:
            value = _own_registry(args[arg])
            if not is_quantity(value):
                continue
            if ref is None:
                ref_name, ref = arg, value
            elif value.dimensionality != ref.dimensionality:
                raise UnitError(
                    f"{name}: parameters '{ref_name}' and '{arg}' expect quantities of the same "
                    f"dimension, got {ref_name}={_fmt(ref)} ({ref.dimensionality}) and "
                    f"{arg}={_fmt(value)} ({value.dimensionality})"
                )
        self.unit = None if ref is None else ref.units
        self._mags: dict[str, Any] = {}
        for arg in unit_args:
            value = _own_registry(args[arg])
            if is_quantity(value):
                value = to_canonical(value, ref.units, owner=name, name=arg)
            self._mags[arg] = self._check_numeric(arg, value)
            if arg not in self._infinite_ok:
                check_finite(self._mags[arg], name, arg)

    def _check_numeric(self, arg: str, value: Any) -> Any:
        ok = isinstance(value, numbers.Real | torch.Tensor)
        if isinstance(value, np.ndarray | list | tuple):
            try:
                value = np.asarray(value, dtype=np.float64)
                ok = True
            except (TypeError, ValueError):
                ok = False
        if isinstance(value, torch.Tensor) and (value.is_complex() or value.dtype == torch.bool):
            ok = False
        if not ok:
            raise TypeError(
                f"{type(self).__name__}: parameter '{arg}' expects a real number, array, tensor "
                f"or quantity, got {type(value).__name__} {value!r}"
            )
        return value

    def _error(self, arg: str, expected: str, got: Any) -> ValueError:
        return ValueError(
            f"{type(self).__name__}: parameter '{arg}' expects {expected}, got {_fmt(got)}"
        )

    def _param_tensor(
        self, arg: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> Any:
        """Magnitude ``arg`` ready for arithmetic: a Python float, or a tensor that broadcasts to
        ``shape`` on ``device`` with ``dtype``."""
        value = self._mags[arg]
        if isinstance(value, numbers.Real):
            return float(value)
        if isinstance(value, torch.Tensor):
            t = value.to(device=device, dtype=dtype)
        else:
            t = torch.as_tensor(value, dtype=dtype, device=device)
        _check_broadcast(type(self).__name__, arg, tuple(t.shape), shape)
        return t

    # -- protocol ------------------------------------------------------------------------
    def __repr__(self) -> str:
        args = getattr(self, "_args", {})
        text = ", ".join(
            f"{k}={_fmt(v)}" for k, v in args.items() if not (k == "unit" and v is None)
        )
        return f"{type(self).__name__}({text})"

    def _keys(self) -> tuple:
        return tuple((k, _key(v)) for k, v in getattr(self, "_args", {}).items())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Initializer):
            return NotImplemented
        return type(self) is type(other) and self._keys() == other._keys()

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, self._keys()))

    def __reduce_ex__(self, protocol):
        if "_args" not in self.__dict__:
            return object.__reduce_ex__(self, protocol)
        return _rebuild, (type(self), {k: _encode(v) for k, v in self._args.items()})


def _check_broadcast(owner: str, arg: str, value_shape: tuple, shape: tuple) -> None:
    try:
        ok = torch.broadcast_shapes(value_shape, shape) == torch.Size(shape)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"{owner}: parameter '{arg}' expects a value that broadcasts to shape {shape}, "
            f"got shape {value_shape}"
        )


def _unit_arg(owner: str, unit: Any) -> tuple[pint.Unit | None, Any]:
    """Parse the optional ``unit`` multiplier: ``None``, a unit (or its name) or a quantity."""
    unit = _own_registry(unit)
    if unit is None:
        return None, 1.0
    if isinstance(unit, str):
        try:
            return u.Unit(unit), 1.0
        except (pint.errors.PintError, AttributeError, ValueError) as err:
            raise UnitError(
                f"{owner}: parameter 'unit' expects a unit or quantity, got {unit!r} ({err})"
            ) from None
    if isinstance(unit, pint.Unit):
        return unit, 1.0
    if is_quantity(unit):
        factor = unit.magnitude
        if not isinstance(factor, numbers.Real):
            raise ValueError(
                f"{owner}: parameter 'unit' expects a unit or a scalar quantity, got {_fmt(unit)}"
            )
        return unit.units, float(factor)
    raise UnitError(
        f"{owner}: parameter 'unit' expects None, a unit or a quantity, got "
        f"{type(unit).__name__} {unit!r}"
    )


def _scale_arg(owner: str, scale: Any) -> float:
    scale = _own_registry(scale)
    if is_quantity(scale):
        if not scale.dimensionless:
            raise UnitError(
                f"{owner}: parameter 'scale' expects a dimensionless number, got {_fmt(scale)}"
            )
        scale = scale.to("dimensionless").magnitude
    if not isinstance(scale, numbers.Real) or isinstance(scale, bool):
        raise TypeError(f"{owner}: parameter 'scale' expects a real number, got {scale!r}")
    if not scale > 0:
        raise ValueError(f"{owner}: parameter 'scale' expects a value > 0, got {scale!r}")
    return float(scale)


def _compute_dtype(device: torch.device) -> torch.dtype:
    # Inverse-CDF sampling and QR are done in float64 (float32 ndtri is visibly biased in the
    # far tails); MPS has no float64.
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


# --------------------------------------------------------------------------- param()
def param(
    value: Any,
    shape: Shape,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    allow_none: bool = False,
    owner: str = "",
    name: str = "value",
):
    """Turn a parameter specification into a value of (or broadcastable to) ``shape``.

    Parameters
    ----------
    value : Initializer, callable, number, array, tensor, Quantity or None
        * an :class:`Initializer` is evaluated as ``value(shape, dtype=, device=, generator=)``;
        * another callable is called as ``value(shape)`` and its result handled as below;
        * a number, array or tensor becomes a tensor of ``dtype`` on ``device`` (a tensor keeps
          its device when ``device`` is None, and its autograd graph); it is *not* expanded:
          scalars stay 0-dim, arrays must broadcast to ``shape``;
        * a quantity is handled like its magnitude and returned as a Quantity of the same unit;
        * ``None`` is returned only when ``allow_none``.
    shape : int or tuple of int
        The target shape.
    dtype : torch.dtype, optional
        Defaults to ``torch.get_default_dtype()``.
    device : torch.device or str, optional
        Target device.
    generator : torch.Generator, optional
        Passed to initializers.
    allow_none : bool, optional
        Whether ``None`` is an accepted value.
    owner, name : str, optional
        Module and parameter names used in error messages.

    Returns
    -------
    torch.Tensor, Quantity or None

    Raises
    ------
    ValueError
        When ``value`` is None and ``allow_none`` is False, or does not broadcast to ``shape``.
    TypeError
        When ``value`` is not numeric.
    """
    where = f"{owner}: " if owner else "param: "
    shape = _normalize_shape(shape, owner or "param")
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{where}parameter '{name}' expects a value, got None")
    if isinstance(value, Initializer):
        return value(shape, dtype=dtype, device=device, generator=generator)
    if callable(value) and not isinstance(value, torch.Tensor | np.ndarray | pint.Quantity):
        value = value(shape)
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    value = _own_registry(value)
    unit = value.units if is_quantity(value) else None
    mag = value.magnitude if is_quantity(value) else value
    if isinstance(mag, torch.Tensor):
        t = mag.to(device=device if device is not None else mag.device, dtype=dtype)
    elif isinstance(mag, numbers.Real | np.ndarray | np.generic | list | tuple) and not isinstance(
        mag, str
    ):
        try:
            arr = np.asarray(mag, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{where}parameter '{name}' expects a number, array, tensor, quantity or "
                f"Initializer, got {mag!r}"
            ) from None
        t = torch.as_tensor(arr, dtype=dtype, device=device)
    else:
        raise TypeError(
            f"{where}parameter '{name}' expects a number, array, tensor, quantity or "
            f"Initializer, got {type(mag).__name__} {mag!r}"
        )
    if t.ndim:
        _check_broadcast(owner or "param", name, tuple(t.shape), shape)
    return t if unit is None else Quantity(t, unit)
