"""The orthogonal initializer (Saxe et al., 2014)."""

from __future__ import annotations

import math
from typing import Any

import torch

from .base import Initializer, _compute_dtype, _scale_arg, _unit_arg


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


