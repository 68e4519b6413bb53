"""Integration helpers shared by the functional steps."""

from __future__ import annotations

import math

import torch

__all__ = ["exprel", "exp_euler_linear", "decay_factor"]


def exprel(z: torch.Tensor) -> torch.Tensor:
    r"""The relative error exponential :math:`(e^z - 1)/z`, with its limit 1 at :math:`z = 0`.

    Computed with ``expm1`` (accurate for tiny ``z``) and a second-order series near 0; the double
    ``where`` keeps gradients finite at ``z = 0``.
    """
    if not isinstance(z, torch.Tensor):
        return math.expm1(z) / z if z != 0 else 1.0
    small = z.abs() < 1e-4
    safe = torch.where(small, torch.ones_like(z), z)
    return torch.where(small, 1.0 + z * (0.5 + z / 6.0), torch.expm1(safe) / safe)


def exp_euler_linear(x, f, jacobian, dt: float):
    r"""One exponential-Euler step :math:`x + \Delta t\,\mathrm{exprel}(\Delta t J)\,f(x)`.

    ``f`` is the derivative at ``x`` and ``jacobian`` its elementwise derivative ``df/dx``. The step
    is exact when ``f`` is linear in ``x`` (a leaky membrane, a conductance-based input).
    """
    return x + dt * exprel(dt * jacobian) * f


def decay_factor(tau, dt: float):
    r""":math:`e^{-\Delta t/\tau}`, the exact one-step decay of :math:`\tau\,dx/dt = -x`.

    ``tau`` may be a tensor (learnable time constants keep their gradient) or a number.
    """
    if isinstance(tau, torch.Tensor):
        return torch.exp(-dt / tau)
    return math.exp(-dt / tau)
