"""Fixed-distribution initializers: constants, uniform, normal and truncated normal samples."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

from .base import (
    Initializer,
    _any,
    _as_check_tensor,
    _compute_dtype,
    _fmt,
    _unit_arg,
)


# --------------------------------------------------------------------------- initializers
class Constant(Initializer):
    r"""Fill with a constant: :math:`x_i = c`.

    Parameters
    ----------
    value : float, array, tensor or Quantity
        The constant. An array or tensor must broadcast to the requested shape.

    Examples
    --------
    >>> from torchbrain import u
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


