"""Parameter initializers that understand physical units.

An initializer is a small, picklable description of how to fill a tensor of a given shape::

    from torchbrain import u
    from torchbrain.init import Normal, KaimingNormal, param

    V0 = Normal(-60. * u.mV, 5. * u.mV)((100,))     # Quantity(tensor of 100 values, 'mV')
    W = KaimingNormal()((784, 100))                 # plain tensor, Var[W] = 2 / 784
    g = KaimingNormal(unit=u.nS)((784, 100))        # the same, as a Quantity in nS

Units
-----
An initializer whose arguments carry no unit returns a plain :class:`torch.Tensor`. When some of
its value arguments are pint quantities, all of them must share one physical dimension; they are
converted to the unit of the *first* quantity argument, the sample is computed with plain
tensors, and the result is returned as a :class:`~torchbrain.units.Quantity` of that unit whose
magnitude is a tensor. Plain numbers mixed with quantities are read in that unit
(``Normal(0, 5 * u.mV)`` has mean 0 mV). Module code turns the result into a canonical tensor
with :func:`torchbrain.units.to_tensor`, which checks the dimension.

Fans
----
The variance-scaling family (:class:`VarianceScaling`, :class:`KaimingNormal`, ...) and
:class:`Orthogonal` read the layout of ``shape`` as follows:

* 1-D ``(n,)``: ``fan_in = fan_out = n``;
* 2-D ``(in, out)``: the dense weight used as ``x @ W`` (brainstate convention), so
  ``fan_in = shape[0]`` and ``fan_out = shape[1]``;
* N-D with N >= 3 ``(out, in, *kernel)``: torch's convolution layout, so
  ``fan_in = shape[1] * prod(kernel)`` and ``fan_out = shape[0] * prod(kernel)``.

Randomness comes from torch only; pass a :class:`torch.Generator` for reproducible samples.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable
from typing import Any

import numpy as np
import pint
import torch

from .units import Quantity, UnitError, check_finite, is_quantity, to_canonical, u

__all__ = [
    "Initializer",
    "Constant",
    "ZeroInit",
    "Uniform",
    "Normal",
    "TruncatedNormal",
    "VarianceScaling",
    "KaimingNormal",
    "KaimingUniform",
    "XavierNormal",
    "XavierUniform",
    "Orthogonal",
    "compute_fans",
    "param",
]

Shape = int | Iterable[int]

_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")
# Standard deviation of a standard normal truncated to [-2, 2].
_TRUNC2_STD = 0.87962566103423978


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


def compute_fans(shape: Shape) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight of ``shape``.

    Parameters
    ----------
    shape : int or tuple of int
        1-D ``(n,)``; 2-D ``(in, out)`` (dense weight applied as ``x @ W``); or N-D
        ``(out, in, *kernel)`` (torch convolution layout).

    Returns
    -------
    fan_in, fan_out : int
        ``(n, n)`` for 1-D, ``(shape[0], shape[1])`` for 2-D and
        ``(shape[1] * k, shape[0] * k)`` with ``k = prod(kernel)`` for N-D.

    Raises
    ------
    ValueError
        For a 0-D shape, which has no fan.
    """
    shape = _normalize_shape(shape, "compute_fans")
    if len(shape) == 0:
        raise ValueError("compute_fans: shape expects at least 1 dimension, got ()")
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


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


# --------------------------------------------------------------------------- initializers
class Constant(Initializer):
    r"""Fill with a constant: :math:`x_i = c`.

    Parameters
    ----------
    value : float, array, tensor or Quantity
        The constant. An array or tensor must broadcast to the requested shape.

    Examples
    --------
    >>> Constant(-65. * u.mV)(3)
    <Quantity(tensor([-65., -65., -65.]), 'millivolt')>
    """

    _random = False

    def __init__(self, value: Any):
        self._init_args({"value": value}, ("value",))

    def _sample(self, shape, dtype, device, generator):
        value = self._mags["value"]
        if isinstance(value, numbers.Real):
            return torch.full(shape, float(value), dtype=dtype, device=device)
        t = self._param_tensor("value", shape, dtype, device)
        return t.expand(shape).clone(memory_format=torch.contiguous_format)


class ZeroInit(Initializer):
    r"""Fill with zeros: :math:`x_i = 0`.

    Parameters
    ----------
    unit : str, pint.Unit or None, optional
        Unit of the result; by default a plain tensor is returned.
    """

    _random = False

    def __init__(self, unit: Any = None):
        self._init_args({"unit": unit})
        self.unit, _ = _unit_arg(type(self).__name__, unit)

    def _sample(self, shape, dtype, device, generator):
        return torch.zeros(shape, dtype=dtype, device=device)


class Uniform(Initializer):
    r"""Uniform distribution on :math:`[\mathrm{low}, \mathrm{high})`.

    .. math:: x_i = \mathrm{low} + (\mathrm{high} - \mathrm{low})\, U_i,
              \quad U_i \sim \mathcal{U}[0, 1)

    Parameters
    ----------
    low, high : float, array, tensor or Quantity
        Bounds with ``low < high`` (elementwise); quantities of one dimension.
    """

    def __init__(self, low: Any = 0.0, high: Any = 1.0):
        self._init_args({"low": low, "high": high}, ("low", "high"))
        lo, hi = (_as_check_tensor(self._mags[k]) for k in ("low", "high"))
        if _any(lo >= hi):
            raise ValueError(
                f"{type(self).__name__}: parameter 'low' expects a value < high={_fmt(high)}, "
                f"got {_fmt(low)}"
            )

    def _sample(self, shape, dtype, device, generator):
        low = self._param_tensor("low", shape, dtype, device)
        high = self._param_tensor("high", shape, dtype, device)
        r = torch.rand(shape, generator=generator, dtype=dtype, device=device)
        return low + (high - low) * r


class Normal(Initializer):
    r"""Normal distribution :math:`x_i \sim \mathcal{N}(\mu, \sigma^2)`.

    .. math:: x_i = \mu + \sigma Z_i, \quad Z_i \sim \mathcal{N}(0, 1)

    Parameters
    ----------
    mean : float, array, tensor or Quantity, optional
        :math:`\mu`, default 0.
    std : float, array, tensor or Quantity, optional
        :math:`\sigma \ge 0`, default 1; same dimension as ``mean``.
    """

    def __init__(self, mean: Any = 0.0, std: Any = 1.0):
        self._init_args({"mean": mean, "std": std}, ("mean", "std"))
        if _any(_as_check_tensor(self._mags["std"]) < 0):
            raise self._error("std", "a value >= 0", std)

    def _sample(self, shape, dtype, device, generator):
        mean = self._param_tensor("mean", shape, dtype, device)
        std = self._param_tensor("std", shape, dtype, device)
        z = torch.randn(shape, generator=generator, dtype=dtype, device=device)
        return z * std + mean


def _truncated_standard_normal(a, b, shape, dtype, device, generator) -> torch.Tensor:
    """Standard normal truncated to ``[a, b]`` by inverting the CDF (``a``/``b`` broadcast).

    Intervals lying mostly in the right tail are mirrored into the left tail, where the CDF
    keeps its relative precision.
    """
    cdt = _compute_dtype(device)
    a = torch.as_tensor(a, dtype=cdt, device=device)
    b = torch.as_tensor(b, dtype=cdt, device=device)
    flip = (a + b) > 0
    lo = torch.where(flip, -b, a)
    hi = torch.where(flip, -a, b)
    p_lo = torch.special.ndtr(lo)
    p_hi = torch.special.ndtr(hi)
    r = torch.rand(shape, generator=generator, dtype=cdt, device=device)
    p = (p_lo + (p_hi - p_lo) * r).clamp(min=torch.finfo(cdt).tiny)
    z = torch.special.ndtri(p)
    z = torch.maximum(torch.minimum(z, hi), lo)
    return torch.where(flip, -z, z)


class TruncatedNormal(Initializer):
    r"""Normal distribution truncated to :math:`[\mathrm{low}, \mathrm{high}]`.

    The density is proportional to :math:`\exp(-(x-\mu)^2 / 2\sigma^2)` on the interval and zero
    outside; samples are drawn by inverting the CDF,

    .. math:: x_i = \mu + \sigma\, \Phi^{-1}\!\big(\Phi(\alpha) + U_i (\Phi(\beta) -
              \Phi(\alpha))\big), \quad \alpha = \tfrac{\mathrm{low} - \mu}{\sigma},\;
              \beta = \tfrac{\mathrm{high} - \mu}{\sigma},\; U_i \sim \mathcal{U}[0, 1).

    Note that ``mean`` and ``std`` are the parameters of the parent normal, not the moments of
    the truncated distribution.

    Parameters
    ----------
    mean : float, array, tensor or Quantity, optional
        :math:`\mu`, default 0.
    std : float, array, tensor or Quantity, optional
        :math:`\sigma > 0`, default 1.
    low, high : float, array, tensor or Quantity, optional
        Absolute bounds (not in units of ``std``), ``low < high``; default ``mean - 2 std`` and
        ``mean + 2 std``. All four share one dimension. A bound may be infinite (one-sided
        truncation).
    """

    _infinite_ok = ("low", "high")

    def __init__(self, mean: Any = 0.0, std: Any = 1.0, low: Any = None, high: Any = None):
        args = {"mean": mean, "std": std, "low": low, "high": high}
        self._init_args(args, [k for k, v in args.items() if v is not None])
        std_c = _as_check_tensor(self._mags["std"])
        if _any(std_c <= 0):
            raise self._error("std", "a value > 0", std)
        if low is None:
            self._mags["low"] = _default_bound(self._mags, -2.0)
        if high is None:
            self._mags["high"] = _default_bound(self._mags, 2.0)
        lo, hi = (_as_check_tensor(self._mags[k]) for k in ("low", "high"))
        if _any(lo >= hi):
            raise ValueError(
                f"{type(self).__name__}: parameter 'low' expects a value < high="
                f"{_fmt(high) if high is not None else 'mean + 2 std'}, got "
                f"{_fmt(low) if low is not None else 'mean - 2 std'}"
            )

    def _sample(self, shape, dtype, device, generator):
        cdt = _compute_dtype(device)
        mean, std, low, high = (
            self._param_tensor(k, shape, cdt, device) for k in ("mean", "std", "low", "high")
        )
        z = _truncated_standard_normal(
            (low - mean) / std, (high - mean) / std, shape, dtype, device, generator
        )
        x = mean + std * z
        lo = torch.as_tensor(low, dtype=cdt, device=device)
        hi = torch.as_tensor(high, dtype=cdt, device=device)
        return torch.maximum(torch.minimum(x, hi), lo).to(dtype)


def _default_bound(mags: dict[str, Any], k: float) -> Any:
    mean, std = mags["mean"], mags["std"]
    if isinstance(mean, numbers.Real) and isinstance(std, numbers.Real):
        return float(mean) + k * float(std)
    tensors = [t for t in (mean, std) if isinstance(t, torch.Tensor)]
    if tensors:
        device = tensors[0].device
        mean = torch.as_tensor(mean, device=device)
        std = torch.as_tensor(std, device=device)
        return mean + k * std
    return np.asarray(mean, dtype=np.float64) + k * np.asarray(std, dtype=np.float64)


class VarianceScaling(Initializer):
    r"""Random weights whose variance scales with the fan of the weight.

    With :math:`n` the fan selected by ``mode`` (see :func:`compute_fans`) and
    :math:`s` = ``scale``, the target variance is :math:`\sigma^2 = s / \max(1, n)` and

    * ``'normal'``: :math:`x_i \sim \mathcal{N}(0, \sigma^2)`;
    * ``'truncated_normal'``: a normal truncated to two of its standard deviations, rescaled
      (by :math:`1/0.8796\ldots`) so that its variance is :math:`\sigma^2`;
    * ``'uniform'``: :math:`x_i \sim \mathcal{U}[-a, a)` with :math:`a = \sqrt{3 \sigma^2}`.

    Parameters
    ----------
    scale : float or dimensionless Quantity, optional
        :math:`s > 0`, default 1.
    mode : {'fan_in', 'fan_out', 'fan_avg'}, optional
        Which fan :math:`n` to use; ``'fan_avg'`` is :math:`(n_{in} + n_{out}) / 2`.
    distribution : {'truncated_normal', 'normal', 'uniform'}, optional
        Default ``'truncated_normal'`` (as in jax and braintools).
    unit : str, pint.Unit, Quantity or None, optional
        Unit of the result; a quantity such as ``0.5 * u.nS`` also multiplies the sample by its
        magnitude. By default a plain tensor is returned.
    """

    def __init__(
        self,
        scale: Any = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        unit: Any = None,
    ):
        self._init_args({"scale": scale, "mode": mode, "distribution": distribution, "unit": unit})
        self._setup(scale, mode, distribution, unit)

    def _setup(self, scale, mode, distribution, unit) -> None:
        name = type(self).__name__
        self._scale = _scale_arg(name, scale)
        if mode not in _MODES:
            raise ValueError(
                f"{name}: parameter 'mode' expects one of {', '.join(map(repr, _MODES))}, "
                f"got {mode!r}"
            )
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"{name}: parameter 'distribution' expects one of "
                f"{', '.join(map(repr, _DISTRIBUTIONS))}, got {distribution!r}"
            )
        self._mode = mode
        self._distribution = distribution
        self.unit, self._factor = _unit_arg(name, unit)

    def _sample(self, shape, dtype, device, generator):
        if math.prod(shape) == 0:
            return torch.empty(shape, dtype=dtype, device=device)
        if len(shape) == 0:
            raise ValueError(
                f"{type(self).__name__}: shape expects at least 1 dimension to compute fans, got ()"
            )
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self._mode]
        std = math.sqrt(self._scale / max(1.0, fan)) * self._factor
        if self._distribution == "normal":
            return torch.randn(shape, generator=generator, dtype=dtype, device=device) * std
        if self._distribution == "uniform":
            limit = math.sqrt(3.0) * std
            r = torch.rand(shape, generator=generator, dtype=dtype, device=device)
            return (2.0 * r - 1.0) * limit
        z = _truncated_standard_normal(-2.0, 2.0, shape, dtype, device, generator)
        return (z * (std / _TRUNC2_STD)).to(dtype)


class _FixedDistribution(VarianceScaling):
    _distribution_name = "normal"
    _default_scale = 1.0
    _default_mode = "fan_in"

    def __init__(self, scale: Any = None, mode: str | None = None, unit: Any = None):
        scale = self._default_scale if scale is None else scale
        mode = self._default_mode if mode is None else mode
        self._init_args({"scale": scale, "mode": mode, "unit": unit})
        self._setup(scale, mode, self._distribution_name, unit)


class KaimingNormal(_FixedDistribution):
    r"""He / Kaiming normal: :math:`x_i \sim \mathcal{N}(0, s / n)`.

    :class:`VarianceScaling` with ``distribution='normal'`` (untruncated).

    Parameters
    ----------
    scale : float, optional
        :math:`s`, default 2 (the gain for ReLU).
    mode : {'fan_in', 'fan_out', 'fan_avg'}, optional
        Default ``'fan_in'``.
    unit : str, pint.Unit, Quantity or None, optional
        Unit of the result (see :class:`VarianceScaling`).
    """

    _distribution_name = "normal"
    _default_scale = 2.0
    _default_mode = "fan_in"

    def __init__(self, scale: Any = 2.0, mode: str = "fan_in", unit: Any = None):
        super().__init__(scale, mode, unit)


class KaimingUniform(_FixedDistribution):
    r"""He / Kaiming uniform: :math:`x_i \sim \mathcal{U}[-a, a)`, :math:`a = \sqrt{3 s / n}`.

    Parameters
    ----------
    scale : float, optional
        :math:`s`, default 2.
    mode : {'fan_in', 'fan_out', 'fan_avg'}, optional
        Default ``'fan_in'``.
    unit : str, pint.Unit, Quantity or None, optional
        Unit of the result (see :class:`VarianceScaling`).
    """

    _distribution_name = "uniform"
    _default_scale = 2.0
    _default_mode = "fan_in"

    def __init__(self, scale: Any = 2.0, mode: str = "fan_in", unit: Any = None):
        super().__init__(scale, mode, unit)


class XavierNormal(_FixedDistribution):
    r"""Glorot / Xavier normal: :math:`x_i \sim \mathcal{N}(0, 2 s / (n_{in} + n_{out}))`.

    Parameters
    ----------
    scale : float, optional
        :math:`s`, default 1.
    mode : {'fan_in', 'fan_out', 'fan_avg'}, optional
        Default ``'fan_avg'``.
    unit : str, pint.Unit, Quantity or None, optional
        Unit of the result (see :class:`VarianceScaling`).
    """

    _distribution_name = "normal"
    _default_scale = 1.0
    _default_mode = "fan_avg"

    def __init__(self, scale: Any = 1.0, mode: str = "fan_avg", unit: Any = None):
        super().__init__(scale, mode, unit)


class XavierUniform(_FixedDistribution):
    r"""Glorot / Xavier uniform: :math:`x_i \sim \mathcal{U}[-a, a)`,
    :math:`a = \sqrt{6 s / (n_{in} + n_{out})}`.

    Parameters
    ----------
    scale : float, optional
        :math:`s`, default 1.
    mode : {'fan_in', 'fan_out', 'fan_avg'}, optional
        Default ``'fan_avg'``.
    unit : str, pint.Unit, Quantity or None, optional
        Unit of the result (see :class:`VarianceScaling`).
    """

    _distribution_name = "uniform"
    _default_scale = 1.0
    _default_mode = "fan_avg"

    def __init__(self, scale: Any = 1.0, mode: str = "fan_avg", unit: Any = None):
        super().__init__(scale, mode, unit)


class Orthogonal(Initializer):
    r"""A (semi-)orthogonal matrix times ``scale``.

    ``shape`` is viewed as a matrix :math:`W` of ``shape[0]`` rows and
    ``prod(shape[1:])`` columns (torch's convention). A Gaussian matrix
    :math:`A = QR` is factored and :math:`W = s\, Q\, \mathrm{diag}(\mathrm{sign}(R_{ii}))`,
    which is Haar-distributed, so :math:`W^\top W = s^2 I` when rows >= columns and
    :math:`W W^\top = s^2 I` otherwise.

    Parameters
    ----------
    scale : float or dimensionless Quantity, optional
        :math:`s > 0`, default 1.
    unit : str, pint.Unit, Quantity or None, optional
        Unit of the result (see :class:`VarianceScaling`).
    """

    def __init__(self, scale: Any = 1.0, unit: Any = None):
        self._init_args({"scale": scale, "unit": unit})
        name = type(self).__name__
        self._scale = _scale_arg(name, scale)
        self.unit, self._factor = _unit_arg(name, unit)

    def _sample(self, shape, dtype, device, generator):
        if len(shape) < 2:
            raise ValueError(
                f"{type(self).__name__}: shape expects at least 2 dimensions, got {shape}"
            )
        if math.prod(shape) == 0:
            return torch.empty(shape, dtype=dtype, device=device)
        rows = shape[0]
        cols = math.prod(shape[1:])
        cdt = _compute_dtype(device)
        a = torch.randn(
            max(rows, cols), min(rows, cols), generator=generator, dtype=cdt, device=device
        )
        q, r = torch.linalg.qr(a)
        d = torch.sign(torch.diagonal(r))
        q = q * torch.where(d == 0, torch.ones_like(d), d)
        if rows < cols:
            q = q.T
        return (q.reshape(shape) * (self._scale * self._factor)).to(dtype)


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
