r"""Pure step functions of LIF neurons with a built-in exponential synapse: CubaLIF, CobaLIF.

Canonical units: ms, mV, pA, nS, GΩ. Each neuron carries one synaptic variable :math:`g` that
decays with :math:`\tau_\mathrm{syn}` and receives the jumps (spike × weight) of its inputs:

.. math::

    \tau_\mathrm{syn} \frac{dg}{dt} = -g + \sum_k w_k\,\delta(t - t_k),

    \text{CubaLIF:}\quad \tau \frac{dV}{dt} = -(V - V_\mathrm{rest}) + R\,(g + I(V)),
    \qquad g \text{ a current (pA)},

    \text{CobaLIF:}\quad \tau \frac{dV}{dt} = -(V - V_\mathrm{rest}) + R\,(g\,(E - V) + I(V)),
    \qquad g \text{ a conductance (nS)}.

**One step** (the order of brainpy.state's AlignPost synapse followed by its LIF): the lazy
reset of V for the previous spike (:mod:`torchbrain.functional.lif`), then
:math:`g \leftarrow g\,e^{-\Delta t/\tau_\mathrm{syn}} + \Delta g` (the jumps of this step), then
an exponential-Euler step of V with the new g held. With g held the V equation is linear, so the
step is exact: for CobaLIF :math:`g` simply adds to the membrane's leak,
:math:`J = -(1 + R(g + G))/\tau`.
"""

from __future__ import annotations

from ._if_common import add_delta, current_at, exp_like, reset_membrane
from .lif import lif_integrate, lif_spike_input

__all__ = [
    "synaptic_decay",
    "cubalif_update",
    "cubalif_step",
    "cobalif_update",
    "cobalif_step",
]


def synaptic_decay(g, jump, *, tau_syn, dt: float):
    r""":math:`g\,e^{-\Delta t/\tau_\mathrm{syn}} + \Delta g`: the exact decay, then this step's
    jumps."""
    return add_delta(g * exp_like(-dt / tau_syn, g), jump)


def cubalif_update(V, g, current, *, tau, tau_syn, V_th, V_reset, V_rest, R, dt: float,
                   spk_fun, hard_reset: bool = False, delta=0.0):
    """One CubaLIF step. ``current`` is a tensor/number in pA or a function
    ``V -> (current pA, conductance nS)``; ``delta`` is this step's jump of ``g`` (pA).
    Returns ``(V, g)``."""
    spike = spk_fun(lif_spike_input(V, V_th, V_reset))
    V = reset_membrane(V, spike, V_th, V_reset, hard_reset)
    g = synaptic_decay(g, delta, tau_syn=tau_syn, dt=dt)
    I, G = current_at(current, V)
    V = lif_integrate(V, I + g, G, tau=tau, V_rest=V_rest, R=R, dt=dt)
    return V, g


def cubalif_step(V, g, current, **params):
    """:func:`cubalif_update`, then the spike. Returns ``(spike, V, g)``."""
    V, g = cubalif_update(V, g, current, **params)
    return params["spk_fun"](lif_spike_input(V, params["V_th"], params["V_reset"])), V, g


def cobalif_update(V, g, current, *, tau, tau_syn, E, V_th, V_reset, V_rest, R, dt: float,
                   spk_fun, hard_reset: bool = False, delta=0.0):
    """One CobaLIF step: as :func:`cubalif_update` with ``g`` a conductance (nS) towards the
    reversal potential ``E`` (mV); ``delta`` is this step's jump of ``g`` (nS). Returns
    ``(V, g)``."""
    spike = spk_fun(lif_spike_input(V, V_th, V_reset))
    V = reset_membrane(V, spike, V_th, V_reset, hard_reset)
    g = synaptic_decay(g, delta, tau_syn=tau_syn, dt=dt)
    I, G = current_at(current, V)
    V = lif_integrate(V, I + g * (E - V), G + g, tau=tau, V_rest=V_rest, R=R, dt=dt)
    return V, g


def cobalif_step(V, g, current, **params):
    """:func:`cobalif_update`, then the spike. Returns ``(spike, V, g)``."""
    V, g = cobalif_update(V, g, current, **params)
    return params["spk_fun"](lif_spike_input(V, params["V_th"], params["V_reset"])), V, g
