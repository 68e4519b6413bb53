r"""Pure step functions of the generalized integrate-and-fire neuron (Mihalaş & Niebur 2009).

Canonical units: ms, mV, pA, GΩ, 1/ms. Four variables: the membrane potential V, two
spike-induced currents :math:`I_1, I_2` and a moving threshold :math:`V_\mathrm{th}`:

.. math::

    \frac{dI_j}{dt} = -k_j I_j, \qquad
    \frac{dV_\mathrm{th}}{dt} = a (V - V_\mathrm{rest}) - b (V_\mathrm{th} - V_{\mathrm{th}\infty}),
    \qquad
    \tau \frac{dV}{dt} = -(V - V_\mathrm{rest}) + R\,(I_1 + I_2 + I(V)).

At a spike (:math:`V \ge V_\mathrm{th}`, applied lazily at the start of the next step):
:math:`I_j \leftarrow R_j I_j + A_j`, :math:`V_\mathrm{th} \leftarrow \max(V_{\mathrm{th,reset}},
V_\mathrm{th})` and V is reset (soft: :math:`V - (V_\mathrm{th} - V_\mathrm{reset})`; hard:
:math:`V_\mathrm{reset}`). The spike is ``spk_fun((V - V_th)/(V_th - V_reset))`` with the State
:math:`V_\mathrm{th}`.

**Integration** (one step, as brainpy.state's ``Gif``): every equation is linear in its own
variable, so exponential Euler is exact for each with the others held: :math:`I_j` decay by
:math:`e^{-k_j \Delta t}`; :math:`V_\mathrm{th}` relaxes with rate :math:`b` driven by the
post-reset V; V relaxes driven by the *new* :math:`I_1 + I_2` and the input (with the synaptic
conductance folded into its rate).
"""

from __future__ import annotations

import torch

from ._if_common import (
    add_delta,
    current_at,
    exp_like,
    record_spike_time,
    refractory_mask,
    reset_membrane,
)
from .integrators import exp_euler_linear
from .lif import lif_integrate

__all__ = [
    "gif_spike_input",
    "gif_reset",
    "gif_update",
    "gif_step",
    "gifref_update",
    "gifref_step",
]


def gif_spike_input(V, V_th, V_reset):
    r""":math:`(V - V_\mathrm{th})/(V_\mathrm{th} - V_\mathrm{reset})` with the moving threshold."""
    return (V - V_th) / (V_th - V_reset)


def gif_reset(V, I1, I2, V_th, spike, *, V_reset, V_th_reset, R1, R2, A1, A2, hard_reset):
    """Apply the spike-triggered updates of all four variables for ``spike`` (0..1)."""
    V_r = reset_membrane(V, spike, V_th, V_reset, hard_reset)
    I1_r = I1 + spike * (R1 * I1 + A1 - I1)
    I2_r = I2 + spike * (R2 * I2 + A2 - I2)
    V_th_r = V_th + spike * (torch.clamp(V_th, min=V_th_reset) - V_th)
    return V_r, I1_r, I2_r, V_th_r


def _gif_candidate(V, I1, I2, V_th, current, *, tau, R, V_rest, V_reset, V_th_inf, V_th_reset,
                   a, b, k1, k2, R1, R2, A1, A2, dt: float, spk_fun, hard_reset=False,
                   delta=0.0):
    spike = spk_fun(gif_spike_input(V, V_th, V_reset))
    reset = gif_reset(V, I1, I2, V_th, spike, V_reset=V_reset, V_th_reset=V_th_reset, R1=R1,
                      R2=R2, A1=A1, A2=A2, hard_reset=hard_reset)
    V_r, I1_r, I2_r, V_th_r = reset
    I1_n = I1_r * exp_like(-k1 * dt, I1_r)
    I2_n = I2_r * exp_like(-k2 * dt, I2_r)
    V_th_n = exp_euler_linear(V_th_r, a * (V_r - V_rest) - b * (V_th_r - V_th_inf),
                              -b * torch.ones_like(V_th_r), dt)
    I, G = current_at(current, V_r)
    V_n = lif_integrate(V_r, I1_n + I2_n + I, G, tau=tau, V_rest=V_rest, R=R, dt=dt)
    return reset, (add_delta(V_n, delta), I1_n, I2_n, V_th_n)


def gif_update(V, I1, I2, V_th, current, **params):
    """One Gif step. ``current`` is a tensor/number in pA or a function
    ``V -> (current pA, conductance nS)``. Returns ``(V, I1, I2, V_th)``."""
    return _gif_candidate(V, I1, I2, V_th, current, **params)[1]


def gif_step(V, I1, I2, V_th, current, **params):
    """:func:`gif_update`, then the spike. Returns ``(spike, V, I1, I2, V_th)``."""
    V, I1, I2, V_th = gif_update(V, I1, I2, V_th, current, **params)
    return params["spk_fun"](gif_spike_input(V, V_th, params["V_reset"])), V, I1, I2, V_th


def gifref_update(V, I1, I2, V_th, last_spike_time, current, t, *, tau_ref, **params):
    """:func:`gif_update` with an absolute refractory period: while refractory all four
    variables stay at their post-reset values. A step that ends with ``V >= V_th`` records
    ``t``. Returns ``(V, I1, I2, V_th, last_spike_time)``."""
    reset, new = _gif_candidate(V, I1, I2, V_th, current, **params)
    refractory = refractory_mask(t, last_spike_time, tau_ref)
    V, I1, I2, V_th = (torch.where(refractory, r, n) for r, n in zip(reset, new, strict=True))
    return V, I1, I2, V_th, record_spike_time(V, V_th.detach(), t, last_spike_time)


def gifref_step(V, I1, I2, V_th, last_spike_time, current, t, **params):
    """:func:`gifref_update`, then the spike. Returns ``(spike, V, I1, I2, V_th, last)``."""
    V, I1, I2, V_th, last = gifref_update(V, I1, I2, V_th, last_spike_time, current, t, **params)
    spike = params["spk_fun"](gif_spike_input(V, V_th, params["V_reset"]))
    return spike, V, I1, I2, V_th, last
