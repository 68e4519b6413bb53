r"""Pure step functions of synapses, short-term plasticity and synaptic outputs.

Every function takes tensors (or numbers) in canonical units (ms, mV, nS, pA, mM, 1/ms) and
returns new values; the module shells in :mod:`torchbrain.synapses` and
:mod:`torchbrain.outputs` own the States and call these.

Linear filters (exact exponential steps; a jump :math:`\Delta` arrives at the end of a step):

* :func:`expon_step` — :math:`g \leftarrow g\,e^{-\Delta t/\tau} + \Delta`;
* :func:`dual_expon_step` — two such filters; the output :func:`dual_expon_output` is
  :math:`A N (g_\mathrm{decay} - g_\mathrm{rise})` with the peak normalisation
  :func:`dual_expon_norm`;
* :func:`alpha_step` — the exact solution of :math:`\tau\dot h = -h`,
  :math:`\tau \dot g = -g + h` over one step, then :math:`h \mathrel{+}= \Delta`.

Kinetic (Destexhe et al. 1994) receptors driven by a square transmitter pulse:

* :func:`transmitter_pulse` — :math:`[T](t) = T` while
  :math:`t - t_\mathrm{spike} < T_\mathrm{dur}`;
* :func:`ampa_step` — :math:`\dot g = \alpha [T](1 - g) - \beta g`;
* :func:`nmda_step` — :math:`\dot x = \alpha_2 [T](1 - x) - \beta_2 x`,
  :math:`\dot g = \alpha_1 x (1 - g) - \beta_1 g`.

These ODEs are linear in their variable during a step (the pulse is constant over it), so the
exponential-Euler step of the reference is exact and is written as the closed form
(:func:`kinetic_relax`).

Short-term plasticity (Tsodyks & Markram): :func:`stp_step`, :func:`std_step`.

Synaptic outputs: :func:`coba_current`, :func:`cuba_current`, :func:`mg_block`,
:func:`mgblock_current`, :func:`mgblock_conductance` (``conductance = -dI/dV``).
"""

from __future__ import annotations

import math

import torch

from ._step_inputs import add_delta
from .integrators import decay_factor

__all__ = [
    "expon_step",
    "dual_expon_norm",
    "dual_expon_peak_time",
    "dual_expon_step",
    "dual_expon_output",
    "alpha_step",
    "spike_events",
    "transmitter_pulse",
    "kinetic_relax",
    "ampa_step",
    "nmda_step",
    "stp_step",
    "std_step",
    "coba_current",
    "cuba_current",
    "mg_block",
    "mgblock_current",
    "mgblock_conductance",
]


# --------------------------------------------------------------------------- linear filters
def expon_step(g, tau, dt: float, delta=0.0):
    r"""One exact step of :math:`\tau\,dg/dt = -g` followed by the jump ``delta``:
    :math:`g' = g\,e^{-\Delta t/\tau} + \Delta`."""
    return add_delta(g * decay_factor(tau, dt), delta)


def dual_expon_norm(tau_rise, tau_decay):
    r"""The peak normalisation :math:`N` of the difference of exponentials.

    .. math::

        N = \frac{\tau_d}{\tau_d - \tau_r}
            \left(\frac{\tau_r}{\tau_d}\right)^{\tau_r/(\tau_r - \tau_d)}
          = 1 \Big/ \max_t \left(e^{-t/\tau_d} - e^{-t/\tau_r}\right),

    so that a unit jump gives a peak of exactly 1 (in continuous time). Needs
    :math:`\tau_d > \tau_r > 0`.
    """
    ratio = tau_rise / tau_decay
    return tau_decay / (tau_decay - tau_rise) * ratio ** (tau_rise / (tau_rise - tau_decay))


def dual_expon_peak_time(tau_rise, tau_decay):
    r"""Time of the peak after a jump: :math:`t_p = \frac{\tau_r\tau_d}{\tau_d-\tau_r}
    \ln(\tau_d/\tau_r)`."""
    if isinstance(tau_rise, torch.Tensor) or isinstance(tau_decay, torch.Tensor):
        log = torch.log(torch.as_tensor(tau_decay / tau_rise))
    else:
        log = math.log(tau_decay / tau_rise)
    return tau_rise * tau_decay / (tau_decay - tau_rise) * log


def dual_expon_step(g_rise, g_decay, tau_rise, tau_decay, dt: float, delta=0.0):
    """Decay both components exactly for one step, then add the same jump ``delta`` to both.

    Returns ``(g_rise, g_decay)``.
    """
    return expon_step(g_rise, tau_rise, dt, delta), expon_step(g_decay, tau_decay, dt, delta)


def dual_expon_output(g_rise, g_decay, scale):
    r"""The synaptic variable :math:`a\,(g_\mathrm{decay} - g_\mathrm{rise})` with
    ``scale`` :math:`a = A N` (or :math:`A` without normalisation)."""
    return scale * (g_decay - g_rise)


def alpha_step(g, h, tau, dt: float, delta=0.0):
    r"""One exact step of the alpha-function pair, then the jump into :math:`h`.

    .. math::

        \tau \dot h = -h, \qquad \tau \dot g = -g + h
        \;\Rightarrow\;
        g' = \left(g + h\,\tfrac{\Delta t}{\tau}\right) e^{-\Delta t/\tau}, \quad
        h' = h\,e^{-\Delta t/\tau} + \Delta .

    A jump :math:`\Delta` gives :math:`g(t) = \Delta\,\tfrac{t}{\tau}\,e^{-t/\tau}` exactly on the
    grid (peak :math:`\Delta/e` at :math:`t = \tau`). Returns ``(g, h)``.
    """
    d = decay_factor(tau, dt)
    g_new = (g + h * (dt / tau)) * d
    return g_new, add_delta(h * d, delta)


# --------------------------------------------------------------------------- kinetic receptors
def spike_events(spike):
    """``(event, gate)`` of a spike tensor: ``event`` is the boolean "any nonzero value is a
    spike" (the reference's convention for float spikes); ``gate`` equals ``event`` as a float but
    passes the gradient of ``spike`` straight through (so surrogate spikes stay trainable)."""
    if not spike.is_floating_point():
        spike = spike.to(torch.get_default_dtype())
    event = spike != 0
    gate = event.to(spike.dtype) + (spike - spike.detach())
    return event, gate


def transmitter_pulse(spike, arrival, t, *, T, T_dur, dt: float):
    r"""The square transmitter pulse of a presynaptic spike and the updated arrival time.

    A spike at time :math:`t_s` (any nonzero ``spike``) sets ``arrival = t``; the concentration is
    :math:`[T] = T` in the steps with :math:`t - t_s < T_\mathrm{dur}` (the spike's own step
    included) and 0 otherwise.

    The window is compared against
    :math:`(\lceil T_\mathrm{dur}/\Delta t\rceil - \tfrac12)\,\Delta t` rather than
    :math:`T_\mathrm{dur}` itself: on a grid of steps this selects the same steps as the exact
    comparison, but it is immune to the rounding of ``t`` (float32 times such as ``0.7 - 0.2``
    would otherwise add a step to the pulse now and then).

    Returns ``(TT, arrival)``: the concentration (mM) for this step and the new arrival times.
    """
    event, gate = spike_events(spike)
    t = torch.as_tensor(t, dtype=arrival.dtype, device=arrival.device)
    # Steps in the pulse; the tolerance absorbs the rounding of T_dur/dt (float32 5.0000005).
    q = T_dur / dt - 1e-3
    steps = torch.ceil(q) if isinstance(q, torch.Tensor) else math.ceil(q)
    window = (t - arrival) < (steps - 0.5) * dt
    # A spike opens the pulse in its own step; written so that the spike's gradient reaches [T].
    TT = T * (gate + (1.0 - gate) * window.to(gate.dtype))
    return TT, torch.where(event, t, arrival)


def kinetic_relax(y, rate_on, rate_off, dt: float):
    r"""Exact step of :math:`\dot y = r_\mathrm{on}(1 - y) - r_\mathrm{off}\,y` with constant
    rates: :math:`y' = y + (r_\mathrm{on} - k y)\,(1 - e^{-k\Delta t})/k`,
    :math:`k = r_\mathrm{on} + r_\mathrm{off} > 0`. Equal to the reference's exponential-Euler
    step (which is exact for this linear ODE)."""
    k = rate_on + rate_off
    return y + (rate_on - k * y) * (-torch.expm1(-k * dt)) / k


def ampa_step(g, arrival, spike, t, *, alpha, beta, T, T_dur, dt: float):
    r"""One step of the AMPA/GABAa kinetic receptor.

    .. math::

        \frac{dg}{dt} = \alpha [T] (1 - g) - \beta g

    with :math:`[T]` from :func:`transmitter_pulse`. ``g`` is the open fraction (dimensionless).
    Returns ``(g, arrival)``.
    """
    TT, arrival = transmitter_pulse(spike, arrival, t, T=T, T_dur=T_dur, dt=dt)
    return kinetic_relax(g, alpha * TT, beta, dt), arrival


def nmda_step(g, x, arrival, spike, t, *, alpha1, beta1, alpha2, beta2, T, T_dur, dt: float):
    r"""One step of the second-order NMDA receptor: ``x`` first, then ``g`` with the new ``x``.

    .. math::

        \frac{dx}{dt} = \alpha_2 [T] (1 - x) - \beta_2 x, \qquad
        \frac{dg}{dt} = \alpha_1 x (1 - g) - \beta_1 g

    Returns ``(g, x, arrival)``.
    """
    TT, arrival = transmitter_pulse(spike, arrival, t, T=T, T_dur=T_dur, dt=dt)
    x = kinetic_relax(x, alpha2 * TT, beta2, dt)
    g = kinetic_relax(g, alpha1 * x, beta1, dt)
    return g, x, arrival


# --------------------------------------------------------------------------- short-term plasticity
def _as_float(spike, like):
    if isinstance(spike, torch.Tensor) and not spike.is_floating_point():
        return spike.to(like.dtype)
    return spike


def stp_step(u, x, spike, *, U, tau_f, tau_d, dt: float):
    r"""One step of Tsodyks–Markram short-term plasticity.

    Between spikes :math:`u` relaxes to 0 with :math:`\tau_f` and :math:`x` to 1 with
    :math:`\tau_d` (exactly); at a spike :math:`s`, with :math:`u^-, x^-` the values just before it,

    .. math::

        u^+ = u^- + s\,U (1 - u^-), \qquad r = s\,u^+ x^-, \qquad x^+ = x^- - r .

    Returns ``(r, u, x)``: the released fraction times the spike, and the new States.
    """
    spike = _as_float(spike, u)
    u = u * decay_factor(tau_f, dt)
    x = 1.0 + (x - 1.0) * decay_factor(tau_d, dt)
    u = u + spike * U * (1.0 - u)
    release = spike * u * x
    return release, u, x - release


def std_step(x, spike, *, U, tau, dt: float):
    r"""One step of short-term depression: :math:`x` relaxes to 1 with :math:`\tau`; at a spike
    the output is the available fraction :math:`s\,x^-` and :math:`x^+ = x^- - s\,U x^-`.

    Returns ``(efficacy, x)``.
    """
    spike = _as_float(spike, x)
    x = 1.0 + (x - 1.0) * decay_factor(tau, dt)
    return spike * x, x - spike * U * x


# --------------------------------------------------------------------------- synaptic outputs
def coba_current(g, V, E):
    r"""Conductance-based current :math:`I = g (E - V)` (nS · mV = pA)."""
    return g * (E - V)


def cuba_current(g, scale=None):
    r"""Current-based output: :math:`I = g` (``g`` already in pA) or :math:`I = g\,s` with a
    voltage scale :math:`s` (``g`` a conductance in nS, ``s`` in mV)."""
    return g if scale is None else g * scale


def mg_block(V, *, cc_Mg, alpha, beta, V_offset):
    r"""Unblocked fraction :math:`B(V) = 1/(1 + [\mathrm{Mg}]/\beta\;e^{\alpha (V_o - V)})`
    (Jahr & Stevens 1990)."""
    return 1.0 / (1.0 + cc_Mg / beta * torch.exp(alpha * (V_offset - V)))


def mgblock_current(g, V, *, E, cc_Mg, alpha, beta, V_offset):
    r"""NMDA current through the magnesium block: :math:`I = g (E - V) B(V)`."""
    return g * (E - V) * mg_block(V, cc_Mg=cc_Mg, alpha=alpha, beta=beta, V_offset=V_offset)


def mgblock_conductance(g, V, *, E, cc_Mg, alpha, beta, V_offset):
    r""":math:`-dI/dV` of :func:`mgblock_current`, analytically.

    With :math:`B' = \alpha B (1 - B)`:

    .. math::

        -\frac{dI}{dV} = g\,B\,\bigl[1 - \alpha (E - V)(1 - B)\bigr],

    which is negative in the region where unblocking outruns the driving force (the NMDA
    negative-slope region); the exponential-Euler membrane step handles either sign.
    """
    B = mg_block(V, cc_Mg=cc_Mg, alpha=alpha, beta=beta, V_offset=V_offset)
    return g * B * (1.0 - alpha * (E - V) * (1.0 - B))
