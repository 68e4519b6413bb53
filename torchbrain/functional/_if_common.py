r"""Helpers shared by the nonlinear integrate-and-fire steps (ExpIF, AdEx, QuaIF, Gif, ...).

Private: the public step functions live in :mod:`~torchbrain.functional.exp_if`,
:mod:`~torchbrain.functional.quadratic_if`, :mod:`~torchbrain.functional.gif` and
:mod:`~torchbrain.functional.synaptic_lif`.
"""

from __future__ import annotations

import torch

from ._step_inputs import add_delta, current_at  # noqa: F401 - shared with the IF steps
from .integrators import exprel
from .lif import last_spike_time_update, lif_reset, refractory_mask  # noqa: F401 - re-exported

#: Largest exponential-Euler growth exponent :math:`\Delta t\,J` used in a step. Beyond it the
#: membrane has left any subthreshold regime (``exprel(50)`` is about 1e20), and the cap keeps
#: the step finite in float32 instead of overflowing to inf (which a reset would turn into NaN).
MAX_GROWTH = 50.0


def reset_membrane(V, spike, V_th, V_reset, hard: bool):
    """The lazy reset (see :func:`torchbrain.functional.lif.lif_reset`, robust to overshoot)."""
    return lif_reset(V, spike, V_th, V_reset, hard)


def exp_euler_bounded(x, f, jacobian, dt: float):
    r"""Exponential Euler :math:`x + \Delta t\,\mathrm{exprel}(\Delta t J) f` with
    :math:`\Delta t J` capped at :data:`MAX_GROWTH` (see there).

    Identical to :func:`~torchbrain.functional.integrators.exp_euler_linear` whenever
    :math:`\Delta t J \le 50`, i.e. everywhere below the explosive part of a spike upstroke.
    """
    return x + dt * exprel(torch.clamp(dt * jacobian, max=MAX_GROWTH)) * f


def relax(x, x_inf, decay):
    r"""The exact step :math:`x_\infty + (x - x_\infty)\,d` of a linear relaxation."""
    return x_inf + (x - x_inf) * decay


def exp_like(x, like):
    """``exp(x)`` as a tensor of ``like``'s dtype and device (``x`` may be a plain number)."""
    return torch.exp(torch.as_tensor(x, dtype=like.dtype, device=like.device))


def record_spike_time(V, V_th, t, last_spike_time):
    """``t`` where ``V >= V_th`` (no gradient), else the previous last spike time."""
    return last_spike_time_update(V, V_th, t, last_spike_time)
