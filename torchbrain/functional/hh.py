r"""Pure step functions of conductance-based (Hodgkin–Huxley type) neurons.

Every function is a pure function of tensors in canonical units (ms, mV, nS, pA, pF, 1/ms) and
returns new values; the module shells in :mod:`torchbrain.neurons.hh` own the States and call
these.

The membrane equation of the family is

.. math::

    C \frac{dV}{dt} = -\sum_i g_i(V, \mathbf{x})\,(V - E_i) + I(V),

with channel conductances :math:`g_i` that depend on gating variables :math:`x`, each obeying

.. math::

    \frac{dx}{dt} = \phi\,[\alpha_x(V)(1 - x) - \beta_x(V)\,x].

**Integration.** All right-hand sides are evaluated at the state at the start of the step (rates
at the previous V, as brainpy.state does). Then

* each gating variable takes the exponential-Euler step, which is exact for its linear ODE at
  fixed V: :math:`x' = x_\infty + (x - x_\infty)\,e^{-\Delta t\,\phi(\alpha + \beta)}`,
  :math:`x_\infty = \alpha/(\alpha+\beta)`; it therefore stays in [0, 1] for any step size;
* V takes the exponential-Euler step in the total conductance
  :math:`G = \sum_i g_i + G_\mathrm{syn}` (channel conductances at the start of the step plus the
  synaptic conductance :math:`-\partial I/\partial V`):
  :math:`V' = V + \Delta t\,\mathrm{exprel}(-\Delta t\,G/C)\,\dot V`. This is exact while the
  conductances are frozen and unconditionally stable, where brainpy.state's step for V is a plain
  forward-Euler step (its Jacobian is zero because the currents are closed over at the previous V).

**Removable singularities.** Rates of the form :math:`a(V - V_0)/(1 - e^{-(V - V_0)/k})` are
written as :math:`a k/\mathrm{exprel}(-(V - V_0)/k)` with
:func:`~torchbrain.functional.integrators.exprel`, which is finite (and smooth) at
:math:`V = V_0` in float32 and float64; the argument is clipped to :math:`\pm 40`, far outside any
physiological voltage (e.g. :math:`|V + 40| > 400` mV for the classic HH), so that neither the
value nor its gradient overflows in float32.

**Spikes.** These neurons do not reset: a spike is an upward crossing of ``V_th`` within the step,
``spk_fun((V' - V_th)/|V_th|) * (1 - spk_fun((V - V_th)/|V_th|))`` (Heaviside forward, surrogate
gradient backward).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._step_inputs import add_delta, current_at
from .integrators import exprel

__all__ = [
    "rate_exprel",
    "gate_inf",
    "gate_step",
    "conductance_membrane_step",
    "crossing_spike_input",
    "crossing_spike",
    "hh_rates",
    "hh_steady_state",
    "hh_update",
    "hh_step",
    "wb_m_inf",
    "wb_rates",
    "wb_steady_state",
    "wb_update",
    "wb_step",
    "morris_lecar_rates",
    "morris_lecar_update",
    "morris_lecar_step",
    "traub_miles_rates",
    "traub_miles_steady_state",
    "traub_miles_update",
    "traub_miles_step",
]

_EXPREL_CLIP = 40.0


def rate_exprel(scale, z):
    r"""``scale / exprel(z)``, i.e. :math:`\mathrm{scale}\cdot z/(e^z - 1)`, finite at ``z = 0``.

    This is the form of the HH rates :math:`a(V - V_0)/(1 - e^{-(V - V_0)/k})` with
    ``scale = a k`` and ``z = -(V - V_0)/k``. ``z`` is clipped to ±40 (see the module docstring).
    """
    return scale / exprel(torch.clamp(z, -_EXPREL_CLIP, _EXPREL_CLIP))


def gate_inf(alpha, beta):
    r"""Steady state :math:`\alpha/(\alpha + \beta)` of a gating variable."""
    return alpha / (alpha + beta)


def gate_step(x, alpha, beta, dt: float, phi=1.0):
    r"""Exact step of :math:`dx/dt = \phi[\alpha(1 - x) - \beta x]` at fixed rates."""
    total = alpha + beta
    x_inf = alpha / total
    return x_inf + (x - x_inf) * torch.exp(-dt * phi * total)


def conductance_membrane_step(V, g_total, I_channels, current, conductance, C, dt: float):
    r"""Exponential-Euler step of :math:`C\,dV/dt = I_\mathrm{ch} + I` in the total conductance.

    Parameters
    ----------
    V : Tensor
        Membrane potential at the start of the step (mV).
    g_total : Tensor
        Sum of the channel conductances (nS), :math:`-\partial I_\mathrm{ch}/\partial V`.
    I_channels : Tensor
        Channel current :math:`-\sum_i g_i (V - E_i)` at ``V`` (pA).
    current, conductance : Tensor or float
        External plus synaptic current at ``V`` (pA) and its conductance
        :math:`-\partial I/\partial V` (nS).
    C : Tensor
        Membrane capacitance (pF).
    dt : float
        Time step (ms).
    """
    f = (I_channels + current) / C
    J = -(g_total + conductance) / C
    return V + dt * exprel(dt * J) * f


def crossing_spike_input(V, V_th):
    r"""The scaled distance to threshold :math:`(V - V_\mathrm{th})/|V_\mathrm{th}|`."""
    return (V - V_th) / V_th.abs() if isinstance(V_th, torch.Tensor) else (V - V_th) / abs(V_th)


def crossing_spike(V_new, V_old, V_th, spk_fun):
    """1 when V crosses ``V_th`` upwards within the step (surrogate gradient backward)."""
    return spk_fun(crossing_spike_input(V_new, V_th)) * (
        1.0 - spk_fun(crossing_spike_input(V_old, V_th))
    )


# --------------------------------------------------------------------------- classic HH
def hh_rates(V):
    r"""Rates (1/ms) of the classic Hodgkin–Huxley squid axon (resting potential −65 mV).

    .. math::

        \alpha_m &= \frac{0.1(V + 40)}{1 - e^{-(V+40)/10}}, &
        \beta_m &= 4 e^{-(V+65)/18}, \\
        \alpha_h &= 0.07 e^{-(V+65)/20}, &
        \beta_h &= \frac{1}{1 + e^{-(V+35)/10}}, \\
        \alpha_n &= \frac{0.01(V + 55)}{1 - e^{-(V+55)/10}}, &
        \beta_n &= 0.125 e^{-(V+65)/80}.

    Returns ``(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n)``.
    """
    alpha_m = rate_exprel(1.0, -(V + 40.0) / 10.0)
    beta_m = 4.0 * torch.exp(-(V + 65.0) / 18.0)
    alpha_h = 0.07 * torch.exp(-(V + 65.0) / 20.0)
    beta_h = torch.sigmoid((V + 35.0) / 10.0)
    alpha_n = rate_exprel(0.1, -(V + 55.0) / 10.0)
    beta_n = 0.125 * torch.exp(-(V + 65.0) / 80.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def hh_steady_state(V):
    """Steady-state ``(m, h, n)`` of the classic HH gates at ``V`` (mV)."""
    am, bm, ah, bh, an, bn = hh_rates(V)
    return gate_inf(am, bm), gate_inf(ah, bh), gate_inf(an, bn)


def hh_update(V, m, h, n, current, *, gNa, gK, gL, ENa, EK, EL, C, dt: float, delta=0.0):
    r"""One step of the classic HH neuron (see the module docstring for the scheme).

    ``current`` is a tensor/number in pA or a function ``V -> (current pA, conductance nS)``,
    evaluated at the V of the start of the step. ``delta`` (mV) is added to V after the step.
    Returns ``(V, m, h, n)``.
    """
    am, bm, ah, bh, an, bn = hh_rates(V)
    g_Na = gNa * m ** 3 * h
    g_K = gK * n ** 4
    I_ch = -g_Na * (V - ENa) - g_K * (V - EK) - gL * (V - EL)
    I, G = current_at(current, V)
    V_new = conductance_membrane_step(V, g_Na + g_K + gL, I_ch, I, G, C, dt)
    return (add_delta(V_new, delta), gate_step(m, am, bm, dt), gate_step(h, ah, bh, dt),
            gate_step(n, an, bn, dt))


def hh_step(V, m, h, n, current, *, V_th, spk_fun: Callable, **params):
    """:func:`hh_update`, then the upward-crossing spike. Returns ``(spike, V, m, h, n)``."""
    V_new, m, h, n = hh_update(V, m, h, n, current, **params)
    return crossing_spike(V_new, V, V_th, spk_fun), V_new, m, h, n


# ----------------------------------------------------------------------- Wang–Buzsáki
def wb_m_inf(V):
    r"""Instantaneous Na activation of the Wang–Buzsáki model,
    :math:`\alpha_m/(\alpha_m+\beta_m)` with :math:`\alpha_m = 0.1(V+35)/(1-e^{-0.1(V+35)})`,
    :math:`\beta_m = 4e^{-(V+60)/18}`."""
    alpha = rate_exprel(1.0, -0.1 * (V + 35.0))
    beta = 4.0 * torch.exp(-(V + 60.0) / 18.0)
    return gate_inf(alpha, beta)


def wb_rates(V):
    r"""Rates (1/ms, before the factor :math:`\phi`) of the Wang–Buzsáki h and n gates.

    .. math::

        \alpha_h &= 0.07 e^{-(V+58)/20}, & \beta_h &= \frac{1}{1 + e^{-0.1(V+28)}}, \\
        \alpha_n &= \frac{0.01(V+34)}{1 - e^{-0.1(V+34)}}, & \beta_n &= 0.125 e^{-(V+44)/80}.

    Returns ``(alpha_h, beta_h, alpha_n, beta_n)``.
    """
    alpha_h = 0.07 * torch.exp(-(V + 58.0) / 20.0)
    beta_h = torch.sigmoid(0.1 * (V + 28.0))
    alpha_n = rate_exprel(0.1, -0.1 * (V + 34.0))
    beta_n = 0.125 * torch.exp(-(V + 44.0) / 80.0)
    return alpha_h, beta_h, alpha_n, beta_n


def wb_steady_state(V):
    """Steady-state ``(h, n)`` of the Wang–Buzsáki gates at ``V`` (mV)."""
    ah, bh, an, bn = wb_rates(V)
    return gate_inf(ah, bh), gate_inf(an, bn)


def wb_update(V, h, n, current, *, gNa, gK, gL, ENa, EK, EL, C, phi, dt: float, delta=0.0):
    r"""One step of the Wang–Buzsáki neuron (instantaneous :math:`m_\infty`, gates h and n
    sped up by :math:`\phi`). Returns ``(V, h, n)``."""
    ah, bh, an, bn = wb_rates(V)
    g_Na = gNa * wb_m_inf(V) ** 3 * h
    g_K = gK * n ** 4
    I_ch = -g_Na * (V - ENa) - g_K * (V - EK) - gL * (V - EL)
    I, G = current_at(current, V)
    V_new = conductance_membrane_step(V, g_Na + g_K + gL, I_ch, I, G, C, dt)
    return add_delta(V_new, delta), gate_step(h, ah, bh, dt, phi), gate_step(n, an, bn, dt, phi)


def wb_step(V, h, n, current, *, V_th, spk_fun: Callable, **params):
    """:func:`wb_update`, then the upward-crossing spike. Returns ``(spike, V, h, n)``."""
    V_new, h, n = wb_update(V, h, n, current, **params)
    return crossing_spike(V_new, V, V_th, spk_fun), V_new, h, n


# ------------------------------------------------------------------------ Morris–Lecar
def morris_lecar_rates(V, *, V1, V2, V3, V4, phi):
    r"""Morris–Lecar steady states and K relaxation time:
    :math:`M_\infty = \tfrac12[1 + \tanh((V - V_1)/V_2)]`,
    :math:`W_\infty = \tfrac12[1 + \tanh((V - V_3)/V_4)]`,
    :math:`\tau_W = 1/(\phi\cosh((V - V_3)/(2V_4)))`. Returns ``(M_inf, W_inf, tau_W)``."""
    M_inf = 0.5 * (1.0 + torch.tanh((V - V1) / V2))
    W_inf = 0.5 * (1.0 + torch.tanh((V - V3) / V4))
    tau_W = 1.0 / (phi * torch.cosh((V - V3) / (2.0 * V4)))
    return M_inf, W_inf, tau_W


def morris_lecar_update(V, W, current, *, g_Ca, g_K, g_leak, V_Ca, V_K, V_leak, C, V1, V2, V3,
                        V4, phi, dt: float, delta=0.0):
    """One step of the Morris–Lecar neuron. Returns ``(V, W)``."""
    M_inf, W_inf, tau_W = morris_lecar_rates(V, V1=V1, V2=V2, V3=V3, V4=V4, phi=phi)
    g_ca = g_Ca * M_inf
    g_k = g_K * W
    I_ch = -g_ca * (V - V_Ca) - g_k * (V - V_K) - g_leak * (V - V_leak)
    I, G = current_at(current, V)
    V_new = conductance_membrane_step(V, g_ca + g_k + g_leak, I_ch, I, G, C, dt)
    W_new = W_inf + (W - W_inf) * torch.exp(-dt / tau_W)
    return add_delta(V_new, delta), W_new


def morris_lecar_step(V, W, current, *, V_th, spk_fun: Callable, **params):
    """:func:`morris_lecar_update`, then the upward-crossing spike. Returns ``(spike, V, W)``."""
    V_new, W = morris_lecar_update(V, W, current, **params)
    return crossing_spike(V_new, V, V_th, spk_fun), V_new, W


# ------------------------------------------------------------------ Traub–Miles (COBAHH)
def traub_miles_rates(V, V_T):
    r"""Rates (1/ms) of the Traub–Miles neuron of the COBAHH benchmark, with :math:`v = V - V_T`:

    .. math::

        \alpha_m &= \frac{0.32(13 - v)}{e^{(13 - v)/4} - 1}, &
        \beta_m &= \frac{0.28(v - 40)}{e^{(v - 40)/5} - 1}, \\
        \alpha_h &= 0.128 e^{(17 - v)/18}, &
        \beta_h &= \frac{4}{1 + e^{(40 - v)/5}}, \\
        \alpha_n &= \frac{0.032(15 - v)}{e^{(15 - v)/5} - 1}, &
        \beta_n &= 0.5 e^{(10 - v)/40}.

    Returns ``(alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n)``.
    """
    v = V - V_T
    alpha_m = rate_exprel(0.32 * 4.0, (13.0 - v) / 4.0)
    beta_m = rate_exprel(0.28 * 5.0, (v - 40.0) / 5.0)
    alpha_h = 0.128 * torch.exp((17.0 - v) / 18.0)
    beta_h = 4.0 * torch.sigmoid((v - 40.0) / 5.0)
    alpha_n = rate_exprel(0.032 * 5.0, (15.0 - v) / 5.0)
    beta_n = 0.5 * torch.exp((10.0 - v) / 40.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def traub_miles_steady_state(V, V_T):
    """Steady-state ``(m, h, n)`` of the Traub–Miles gates at ``V`` (mV)."""
    am, bm, ah, bh, an, bn = traub_miles_rates(V, V_T)
    return gate_inf(am, bm), gate_inf(ah, bh), gate_inf(an, bn)


def traub_miles_update(V, m, h, n, current, *, gNa, gK, gL, ENa, EK, EL, V_T, C, dt: float,
                       delta=0.0):
    """One step of the Traub–Miles neuron (same scheme as :func:`hh_update`).
    Returns ``(V, m, h, n)``."""
    am, bm, ah, bh, an, bn = traub_miles_rates(V, V_T)
    g_Na = gNa * m ** 3 * h
    g_K = gK * n ** 4
    I_ch = -g_Na * (V - ENa) - g_K * (V - EK) - gL * (V - EL)
    I, G = current_at(current, V)
    V_new = conductance_membrane_step(V, g_Na + g_K + gL, I_ch, I, G, C, dt)
    return (add_delta(V_new, delta), gate_step(m, am, bm, dt), gate_step(h, ah, bh, dt),
            gate_step(n, an, bn, dt))


def traub_miles_step(V, m, h, n, current, *, V_th, spk_fun: Callable, **params):
    """:func:`traub_miles_update`, then the upward-crossing spike.
    Returns ``(spike, V, m, h, n)``."""
    V_new, m, h, n = traub_miles_update(V, m, h, n, current, **params)
    return crossing_spike(V_new, V, V_th, spk_fun), V_new, m, h, n
