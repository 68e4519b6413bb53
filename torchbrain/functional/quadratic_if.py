r"""Pure step functions of the quadratic integrate-and-fire family: QuaIF and AdQuaIF.

Canonical units: ms, mV, pA, nS, GΩ, 1/mV. The membrane equation is

.. math::

    \tau \frac{dV}{dt} = c\,(V - V_\mathrm{rest})(V - V_c) - R\,w + R\,I(V),

with :math:`w = 0` for QuaIF and, for AdQuaIF,
:math:`\tau_w\,dw/dt = a (V - V_\mathrm{rest}) - w`, :math:`w \leftarrow w + b` at each spike.

Without input the rest state :math:`V_\mathrm{rest}` is stable and :math:`V_c` the unstable
fixed point (for :math:`c > 0`, :math:`V_c > V_\mathrm{rest}`); a constant current moves them to
:math:`\tfrac12\big(V_\mathrm{rest} + V_c \mp \sqrt{(V_c - V_\mathrm{rest})^2 - 4RI/c}\big)`, and
they merge at the rheobase :math:`R I_\mathrm{rh} = c (V_c - V_\mathrm{rest})^2 / 4`.

**Integration.** Exponential Euler with the hand-written Jacobian

.. math::

    J = \frac{c\,(2V - V_\mathrm{rest} - V_c) - R\,G}{\tau},

(:math:`G` the total synaptic conductance), the same step the reference takes with autodiff.
Its fixed points are exactly those of the ODE. ``w`` is then advanced exactly with the new V
(capped at ``V_th``, which only matters in a spiking step; see
:mod:`~torchbrain.functional.exp_if`).
Spike, lazy reset and refractoriness are those of the LIF family
(:mod:`torchbrain.functional.lif`).
"""

from __future__ import annotations

import torch

from ._if_common import (
    add_delta,
    current_at,
    exp_euler_bounded,
    record_spike_time,
    refractory_mask,
    reset_membrane,
)
from .exp_if import adex_w_step
from .lif import lif_spike_input

__all__ = [
    "quaif_spike_input",
    "quaif_rhs",
    "quaif_integrate",
    "quaif_update",
    "quaif_step",
    "adquaif_update",
    "adquaif_step",
    "adquaifref_update",
    "adquaifref_step",
]

#: :math:`(V - V_\mathrm{th})/(V_\mathrm{th} - V_\mathrm{reset})`.
quaif_spike_input = lif_spike_input


def quaif_rhs(V, current, conductance, *, tau, c, V_c, V_rest, R, w=0.0):
    r"""The derivative :math:`f = dV/dt` (mV/ms) and its elementwise Jacobian :math:`J` (1/ms)."""
    f = (c * (V - V_rest) * (V - V_c) - R * w + R * current) / tau
    J = (c * (2.0 * V - V_rest - V_c) - R * conductance) / tau
    return f, J


def quaif_integrate(V, current, conductance, *, tau, c, V_c, V_rest, R, dt: float, w=0.0):
    """One exponential-Euler step of the membrane equation."""
    f, J = quaif_rhs(V, current, conductance, tau=tau, c=c, V_c=V_c, V_rest=V_rest, R=R, w=w)
    return exp_euler_bounded(V, f, J, dt)


def quaif_update(V, current, *, tau, c, V_c, V_th, V_reset, V_rest, R, dt: float, spk_fun,
                 hard_reset: bool = False, delta=0.0):
    """Reset for the previous step's spike, integrate one step, add ``delta``. Returns V."""
    spike = spk_fun(quaif_spike_input(V, V_th, V_reset))
    V = reset_membrane(V, spike, V_th, V_reset, hard_reset)
    I, G = current_at(current, V)
    V = quaif_integrate(V, I, G, tau=tau, c=c, V_c=V_c, V_rest=V_rest, R=R, dt=dt)
    return add_delta(V, delta)


def quaif_step(V, current, **params):
    """:func:`quaif_update`, then the spike. Returns ``(spike, V)``."""
    V = quaif_update(V, current, **params)
    return params["spk_fun"](quaif_spike_input(V, params["V_th"], params["V_reset"])), V


def _adquaif_candidate(V, w, current, *, tau, tau_w, a, b, c, V_c, V_th, V_reset, V_rest, R,
                       dt, spk_fun, hard_reset=False, delta=0.0):
    spike = spk_fun(quaif_spike_input(V, V_th, V_reset))
    V_after = reset_membrane(V, spike, V_th, V_reset, hard_reset)
    w_after = w + b * spike
    I, G = current_at(current, V_after)
    V_new = quaif_integrate(V_after, I, G, tau=tau, c=c, V_c=V_c, V_rest=V_rest, R=R, dt=dt,
                            w=w_after)
    V_new = add_delta(V_new, delta)
    # w sees V up to the spike cut-off: an upstroke's overshoot is not a membrane potential
    w_new = adex_w_step(w_after, torch.clamp(V_new, max=V_th), a=a, V_rest=V_rest, tau_w=tau_w,
                        dt=dt)
    return V_after, w_after, V_new, w_new


def adquaif_update(V, w, current, **params):
    """Adaptive QuaIF update (reset with ``w += b``, V step with ``w`` held, exact ``w`` step
    with the new V). Returns ``(V, w)``."""
    _, _, V_new, w_new = _adquaif_candidate(V, w, current, **params)
    return V_new, w_new


def adquaif_step(V, w, current, **params):
    """:func:`adquaif_update`, then the spike. Returns ``(spike, V, w)``."""
    V, w = adquaif_update(V, w, current, **params)
    return params["spk_fun"](quaif_spike_input(V, params["V_th"], params["V_reset"])), V, w


def adquaifref_update(V, w, last_spike_time, current, t, *, tau_ref, **params):
    """:func:`adquaif_update` with an absolute refractory period (V and ``w`` held at their
    post-reset values). Returns ``(V, w, last_spike_time)``."""
    V_after, w_after, V_new, w_new = _adquaif_candidate(V, w, current, **params)
    refractory = refractory_mask(t, last_spike_time, tau_ref)
    V_new = torch.where(refractory, V_after, V_new)
    w_new = torch.where(refractory, w_after, w_new)
    return V_new, w_new, record_spike_time(V_new, params["V_th"], t, last_spike_time)


def adquaifref_step(V, w, last_spike_time, current, t, **params):
    """:func:`adquaifref_update`, then the spike. Returns ``(spike, V, w, last_spike_time)``."""
    V, w, last_spike_time = adquaifref_update(V, w, last_spike_time, current, t, **params)
    spike = params["spk_fun"](quaif_spike_input(V, params["V_th"], params["V_reset"]))
    return spike, V, w, last_spike_time
