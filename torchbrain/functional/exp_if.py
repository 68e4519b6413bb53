r"""Pure step functions of the exponential integrate-and-fire family: ExpIF and AdEx.

Canonical units: ms, mV, pA, nS, GΩ. The membrane equation is

.. math::

    \tau \frac{dV}{dt} = -(V - V_\mathrm{rest})
        + \Delta_T \exp\!\Big(\min\big(\tfrac{V - V_T}{\Delta_T}, 20\big)\Big)
        - R\,w + R\,I(V),

with :math:`w = 0` for ExpIF and, for AdEx, the adaptation current

.. math::

    \tau_w \frac{dw}{dt} = a (V - V_\mathrm{rest}) - w, \qquad w \leftarrow w + b
    \text{ at each spike.}

The exponent is clipped at 20 as in brainpy.state, so the drive saturates at
:math:`\Delta_T e^{20}` instead of overflowing.

**Integration.** Exponential Euler with the elementwise Jacobian written out by hand (the
reference obtains the same Jacobian by autodiff):

.. math::

    V' = V + \Delta t\,\mathrm{exprel}(\Delta t\,J)\,f(V), \qquad
    J = \frac{\partial f}{\partial V}
      = \frac{-1 + e^{(V - V_T)/\Delta_T}\,[\,(V - V_T)/\Delta_T < 20\,] - R\,G}{\tau},

where :math:`f` is the right-hand side divided by :math:`\tau` and
:math:`G = -\partial I/\partial V` the total synaptic conductance. The growth exponent
:math:`\Delta t J` is capped at 50, which is only reached in a step whose upstroke crosses
threshold anyway; it keeps V finite in float32 (the reference overflows to inf there). ``w`` is
then advanced exactly, with the new ``V`` capped at the spike cut-off:
:math:`w' = w_\infty + (w - w_\infty) e^{-\Delta t/\tau_w}`,
:math:`w_\infty = a (\min(V', V_\mathrm{th}) - V_\mathrm{rest})`. The cap only acts in a step
that spikes; the reference uses the raw overshoot there (up to ~1e20 mV when the cut-off is far
above :math:`V_T`, e.g. Naud et al.'s 0 mV), which sends ``w`` to ~1e22 pA and silences the
neuron for good.

**Spike and reset** are lazy as in the rest of the LIF family: the spike is
``spk_fun((V - V_th)/(V_th - V_reset))`` of the stored V, and the reset (with ``w += b``) happens
at the start of the next step. Hard resets give exactly ``V_reset`` even after a huge overshoot
(see :func:`~torchbrain.functional._if_common.reset_membrane`).
"""

from __future__ import annotations

import torch

from ._if_common import (
    add_delta,
    current_at,
    exp_euler_bounded,
    exp_like,
    record_spike_time,
    refractory_mask,
    relax,
    reset_membrane,
)
from .lif import lif_spike_input

__all__ = [
    "EXP_CLIP",
    "expif_spike_input",
    "expif_rhs",
    "expif_integrate",
    "expif_update",
    "expif_step",
    "expifref_update",
    "expifref_step",
    "adex_w_step",
    "adexif_update",
    "adexif_step",
    "adexifref_update",
    "adexifref_step",
]

#: Clip of the exponent :math:`(V - V_T)/\Delta_T` (as in brainpy.state).
EXP_CLIP = 20.0

#: The spike input of the family: :math:`(V - V_\mathrm{th})/(V_\mathrm{th} - V_\mathrm{reset})`.
expif_spike_input = lif_spike_input


def expif_rhs(V, current, conductance, *, tau, V_rest, V_T, delta_T, R, w=0.0):
    r"""The derivative :math:`f = dV/dt` (mV/ms) and its elementwise Jacobian :math:`J` (1/ms).

    ``current`` (pA) and ``conductance`` (nS) are the total input at ``V``; ``w`` (pA) is the
    adaptation current (0 for ExpIF).
    """
    z = (V - V_T) / delta_T
    e = torch.exp(torch.clamp(z, max=EXP_CLIP))
    f = (-(V - V_rest) + delta_T * e - R * w + R * current) / tau
    J = (-1.0 + torch.where(z < EXP_CLIP, e, torch.zeros_like(e)) - R * conductance) / tau
    return f, J


def expif_integrate(V, current, conductance, *, tau, V_rest, V_T, delta_T, R, dt: float, w=0.0):
    """One exponential-Euler step of the membrane equation (see the module docstring)."""
    f, J = expif_rhs(V, current, conductance, tau=tau, V_rest=V_rest, V_T=V_T, delta_T=delta_T,
                     R=R, w=w)
    return exp_euler_bounded(V, f, J, dt)


def expif_update(V, current, *, tau, V_th, V_reset, V_rest, V_T, delta_T, R, dt: float, spk_fun,
                 hard_reset: bool = True, delta=0.0):
    """Reset for the previous step's spike, integrate one step, add the jump ``delta``.

    ``current`` is a tensor/number in pA or a function ``V -> (current pA, conductance nS)``.
    Returns the new (un-reset) membrane potential.
    """
    spike = spk_fun(expif_spike_input(V, V_th, V_reset))
    V = reset_membrane(V, spike, V_th, V_reset, hard_reset)
    I, G = current_at(current, V)
    V = expif_integrate(V, I, G, tau=tau, V_rest=V_rest, V_T=V_T, delta_T=delta_T, R=R, dt=dt)
    return add_delta(V, delta)


def expif_step(V, current, **params):
    """:func:`expif_update`, then the spike of the new V. Returns ``(spike, V)``."""
    V = expif_update(V, current, **params)
    return params["spk_fun"](expif_spike_input(V, params["V_th"], params["V_reset"])), V


def expifref_update(V, last_spike_time, current, t, *, tau_ref, V_th, V_reset, spk_fun,
                    hard_reset: bool = True, delta=0.0, **params):
    """ExpIF update with an absolute refractory period ``tau_ref`` (ms).

    While ``t - last_spike_time < tau_ref`` V stays at its post-reset value; a step that ends with
    ``V >= V_th`` records ``t``. Returns ``(V, last_spike_time)``.
    """
    spike = spk_fun(expif_spike_input(V, V_th, V_reset))
    V_after = reset_membrane(V, spike, V_th, V_reset, hard_reset)
    I, G = current_at(current, V_after)
    V_new = add_delta(expif_integrate(V_after, I, G, **params), delta)
    V_new = torch.where(refractory_mask(t, last_spike_time, tau_ref), V_after, V_new)
    return V_new, record_spike_time(V_new, V_th, t, last_spike_time)


def expifref_step(V, last_spike_time, current, t, **params):
    """:func:`expifref_update`, then the spike. Returns ``(spike, V, last_spike_time)``."""
    V, last_spike_time = expifref_update(V, last_spike_time, current, t, **params)
    spike = params["spk_fun"](expif_spike_input(V, params["V_th"], params["V_reset"]))
    return spike, V, last_spike_time


def adex_w_step(w, V, *, a, V_rest, tau_w, dt: float):
    r"""Exact step of :math:`\tau_w\,dw/dt = a (V - V_\mathrm{rest}) - w` with V held at ``V``."""
    return relax(w, a * (V - V_rest), exp_like(-dt / tau_w, V))


def _adex_candidate(V, w, current, *, tau, tau_w, a, b, V_th, V_reset, V_rest, V_T, delta_T, R,
                    dt, spk_fun, hard_reset=True, delta=0.0):
    spike = spk_fun(expif_spike_input(V, V_th, V_reset))
    V_after = reset_membrane(V, spike, V_th, V_reset, hard_reset)
    w_after = w + b * spike
    I, G = current_at(current, V_after)
    V_new = expif_integrate(V_after, I, G, tau=tau, V_rest=V_rest, V_T=V_T, delta_T=delta_T,
                            R=R, dt=dt, w=w_after)
    V_new = add_delta(V_new, delta)
    # w sees V up to the spike cut-off: an upstroke's overshoot is not a membrane potential
    w_new = adex_w_step(w_after, torch.clamp(V_new, max=V_th), a=a, V_rest=V_rest, tau_w=tau_w,
                        dt=dt)
    return V_after, w_after, V_new, w_new


def adexif_update(V, w, current, *, tau, tau_w, a, b, V_th, V_reset, V_rest, V_T, delta_T, R,
                  dt: float, spk_fun, hard_reset: bool = True, delta=0.0):
    """Adaptive exponential IF update: reset (``w += b`` per spike), integrate V with ``w``
    held, then advance ``w`` exactly with the new V. Returns ``(V, w)``."""
    _, _, V_new, w_new = _adex_candidate(
        V, w, current, tau=tau, tau_w=tau_w, a=a, b=b, V_th=V_th, V_reset=V_reset,
        V_rest=V_rest, V_T=V_T, delta_T=delta_T, R=R, dt=dt, spk_fun=spk_fun,
        hard_reset=hard_reset, delta=delta,
    )
    return V_new, w_new


def adexif_step(V, w, current, **params):
    """:func:`adexif_update`, then the spike. Returns ``(spike, V, w)``."""
    V, w = adexif_update(V, w, current, **params)
    return params["spk_fun"](expif_spike_input(V, params["V_th"], params["V_reset"])), V, w


def adexifref_update(V, w, last_spike_time, current, t, *, tau_ref, **params):
    """:func:`adexif_update` with an absolute refractory period: while refractory both V and
    ``w`` stay at their post-reset values. Returns ``(V, w, last_spike_time)``."""
    V_after, w_after, V_new, w_new = _adex_candidate(V, w, current, **params)
    refractory = refractory_mask(t, last_spike_time, tau_ref)
    V_new = torch.where(refractory, V_after, V_new)
    w_new = torch.where(refractory, w_after, w_new)
    return V_new, w_new, record_spike_time(V_new, params["V_th"], t, last_spike_time)


def adexifref_step(V, w, last_spike_time, current, t, **params):
    """:func:`adexifref_update`, then the spike. Returns ``(spike, V, w, last_spike_time)``."""
    V, w, last_spike_time = adexifref_update(V, w, last_spike_time, current, t, **params)
    spike = params["spk_fun"](expif_spike_input(V, params["V_th"], params["V_reset"]))
    return spike, V, w, last_spike_time
