"""Variance-scaling initializers (Kaiming/He, Xavier/Glorot) and the fans they read."""

from __future__ import annotations

import math
from typing import Any

import torch

from .base import Initializer, Shape, _normalize_shape, _scale_arg, _unit_arg
from .distributions import _truncated_standard_normal

_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")
# Standard deviation of a standard normal truncated to [-2, 2].
_TRUNC2_STD = 0.87962566103423978


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


