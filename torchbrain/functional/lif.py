r"""Pure step functions of the leaky integrate-and-fire family.

Every function is a pure function of tensors (canonical units: ms, mV, pA, nS, GΩ) and returns
new values; the module shells in :mod:`torchbrain.neurons` own the States and call these.

The membrane equation of the family is

.. math::

    \tau \frac{dV}{dt} = -(V - V_\mathrm{rest}) + R\,I(V), \qquad
    I(V) = I_\mathrm{ext} + \sum_k I_k(V),

integrated with exponential Euler. With the total conductance
:math:`G = -\sum_k \partial I_k/\partial V` the Jacobian is :math:`J = -(1 + R G)/\tau`, so
the step is exact for current-based and conductance-based inputs alike. Without conductance it
reduces to :math:`V' = V_\infty + (V - V_\infty) e^{-\Delta t/\tau}` with
:math:`V_\infty = V_\mathrm{rest} + RI`.

Reset is lazy (as in brainpy.state): the spike is read from the previous step's un-reset V, then

* soft: :math:`V \leftarrow V - (V_\mathrm{th} - V_\mathrm{reset})\,s` (differentiable);
* hard: :math:`V \leftarrow V - (\mathrm{sg}(V) - V_\mathrm{reset})\,s`, i.e. exactly
  :math:`V_\mathrm{reset}` after a spike, with no gradient through the reset amount.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._step_inputs import add_delta, current_at
from .integrators import decay_factor, exp_euler_linear

__all__ = [
    "lif_spike_input",
    "lif_reset",
    "lif_integrate",
    "lif_update",
    "lif_step",
    "lifref_update",
    "lifref_step",
    "alif_spike_input",
    "alif_update",
    "alif_step",
    "if_spike_input",
    "if_update",
    "if_step",
]




def lif_spike_input(V, V_th, V_reset):
    r"""The scaled distance to threshold that a surrogate turns into a spike (``>= 0`` spikes):
    :math:`(V - V_\mathrm{th})/(V_\mathrm{th} - V_\mathrm{reset})`."""
    return (V - V_th) / (V_th - V_reset)


def lif_reset(V, spike, V_th, V_reset, hard: bool):
    r"""Apply the (lazy) reset for ``spike`` emitted at ``V``.

    * soft: :math:`V - (V_\mathrm{th} - V_\mathrm{reset})\,s`;
    * hard: :math:`V_\mathrm{reset}\,s + \mathrm{sg}(V)(1 - s) + (V - \mathrm{sg}(V))`, the
      reference's :math:`V - (\mathrm{sg}(V) - V_\mathrm{reset})\,s` in value and gradient
      (``dV'/dV = 1``, ``dV'/ds = V_reset - V``), but exactly ``V_reset`` after a spike even when
      ``V`` overshot to a huge value (where the reference's difference cancels in float32).
    """
    if hard:
        Vd = V.detach()
        return V_reset * spike + Vd * (1.0 - spike) + (V - Vd)
    return V - (V_th - V_reset) * spike


def lif_integrate(V, current, conductance, *, tau, V_rest, R, dt: float):
    """One exponential-Euler step of the membrane equation (see the module docstring)."""
    if isinstance(conductance, float) and conductance == 0.0:
        # Current-based input: the exact leaky update with one decay factor.
        V_inf = V_rest + R * current
        return V_inf + (V - V_inf) * decay_factor(tau, dt)
    f = (-V + V_rest + R * current) / tau
    J = -(1.0 + R * conductance) / tau
    return exp_euler_linear(V, f, J, dt)


def lif_update(V, current, *, tau, V_th, V_reset, V_rest, R, dt: float, spk_fun,
               hard_reset: bool = False, delta=0.0):
    """Reset for the previous step's spike, integrate one step, add the jump ``delta``.

    ``current`` is a tensor/number in pA or a function ``V -> (current, conductance)``.
    Returns the new (un-reset) membrane potential.
    """
    V = lif_reset(V, spk_fun(lif_spike_input(V, V_th, V_reset)), V_th, V_reset, hard_reset)
    current, conductance = current_at(current, V)
    V = lif_integrate(V, current, conductance, tau=tau, V_rest=V_rest, R=R, dt=dt)
    return add_delta(V, delta)


def lif_step(V: torch.Tensor, current, *, tau, V_th, V_reset, V_rest, R, dt: float,
             spk_fun: Callable[[torch.Tensor], torch.Tensor], hard_reset: bool = False,
             delta=0.0):
    """One LIF step: :func:`lif_update`, then the spike of the new V.

    Returns
    -------
    spike : Tensor
        ``spk_fun`` of the scaled distance to threshold of the new V.
    V : Tensor
        The new membrane potential (the reset happens at the start of the next step).
    """
    V = lif_update(V, current, tau=tau, V_th=V_th, V_reset=V_reset, V_rest=V_rest, R=R, dt=dt,
                   spk_fun=spk_fun, hard_reset=hard_reset, delta=delta)
    return spk_fun(lif_spike_input(V, V_th, V_reset)), V


def refractory_mask(t, last_spike_time, tau_ref):
    r"""True where a neuron that spiked at ``last_spike_time`` is still refractory at ``t``.

    Refractory while :math:`t - t_\mathrm{spike} < \tau_\mathrm{ref}`, compared with a slack of
    :math:`10^{-9}\,\mathrm{ms} + 10^{-13}|t|` (hundreds of float64 rounding units of ``t``,
    far below any step), so that the boundary step does not depend on how ``t`` was rounded:
    with ``tau_ref`` a whole number ``k`` of steps the neuron is held for exactly ``k`` steps,
    the spike step included (5 ms at ``dt = 0.1 ms``: 50 steps, free again at the 50th step
    after the spike), also after hours of simulated time. This needs ``t`` and
    ``last_spike_time`` in float64 (``time_range``, ``NetworkRunner`` and the ``*Ref`` neurons'
    State are); in float32 the rounding of ``t`` itself exceeds the slack after a few seconds.
    """
    slack = 1e-9 + 1e-13 * (t.abs() if isinstance(t, torch.Tensor) else abs(t))
    # the slack joins the float64 side: ``tau_ref - slack`` in a float32 parameter would round
    # the slack away when ``t`` is a Python float, and keep it when ``t`` is a float64 tensor
    return (t - last_spike_time) + slack < tau_ref


def last_spike_time_update(V, V_th, t, last_spike_time):
    """``t`` where ``V >= V_th`` (no gradient), else ``last_spike_time``, in its dtype."""
    t = torch.as_tensor(t, dtype=last_spike_time.dtype, device=last_spike_time.device)
    return torch.where(V.detach() >= V_th, t, last_spike_time)


def lifref_update(V, last_spike_time, current, t, *, tau, tau_ref, V_th, V_reset, V_rest, R,
                  dt: float, spk_fun, hard_reset: bool = False, delta=0.0):
    """LIF update with an absolute refractory period ``tau_ref``.

    While ``t - last_spike_time < tau_ref`` the potential is held at its post-reset value. A step
    that ends with ``V >= V_th`` records ``t`` as the last spike time (without gradient).
    Returns ``(V, last_spike_time)``.
    """
    V_after_reset = lif_reset(V, spk_fun(lif_spike_input(V, V_th, V_reset)), V_th, V_reset,
                              hard_reset)
    current, conductance = current_at(current, V_after_reset)
    V_new = lif_integrate(V_after_reset, current, conductance, tau=tau, V_rest=V_rest, R=R, dt=dt)
    V_new = add_delta(V_new, delta)
    V_new = torch.where(refractory_mask(t, last_spike_time, tau_ref), V_after_reset, V_new)
    return V_new, last_spike_time_update(V_new, V_th, t, last_spike_time)


def lifref_step(V, last_spike_time, current, t, **params):
    """:func:`lifref_update`, then the spike. Returns ``(spike, V, last_spike_time)``."""
    V, last_spike_time = lifref_update(V, last_spike_time, current, t, **params)
    spike = params["spk_fun"](lif_spike_input(V, params["V_th"], params["V_reset"]))
    return spike, V, last_spike_time


def alif_spike_input(V, a, V_th, V_reset, beta):
    r""":math:`(V - V_\mathrm{th} - \beta a)/(V_\mathrm{th} - V_\mathrm{reset})`."""
    return (V - V_th - beta * a) / (V_th - V_reset)


def alif_update(V, a, current, *, tau, tau_a, beta, V_th, V_reset, V_rest, R, dt: float,
                spk_fun, hard_reset: bool = False, delta=0.0):
    r"""Adaptive LIF update: the threshold rises by :math:`\beta a`; ``a`` jumps by 1 per spike
    and decays with ``tau_a``. Returns ``(V, a)``."""
    last_spike = spk_fun(alif_spike_input(V, a, V_th, V_reset, beta))
    V = lif_reset(V, last_spike, V_th, V_reset, hard_reset)
    a = (a + last_spike) * decay_factor(tau_a, dt)
    current, conductance = current_at(current, V)
    V = lif_integrate(V, current, conductance, tau=tau, V_rest=V_rest, R=R, dt=dt)
    return add_delta(V, delta), a


def alif_step(V, a, current, **params):
    """:func:`alif_update`, then the spike. Returns ``(spike, V, a)``."""
    V, a = alif_update(V, a, current, **params)
    spike = params["spk_fun"](
        alif_spike_input(V, a, params["V_th"], params["V_reset"], params["beta"])
    )
    return spike, V, a


def if_spike_input(V, V_th):
    r""":math:`(V - V_\mathrm{th})/V_\mathrm{th}` (the reference IF's scaling; ``V_th > 0``)."""
    return (V - V_th) / V_th


def if_update(V, current, *, tau, V_th, R, dt: float, spk_fun, hard_reset: bool = False,
              delta=0.0):
    r"""The reference's IF neuron, :math:`\tau\,dV/dt = -V + R I`, reset towards 0."""
    V = lif_reset(V, spk_fun(if_spike_input(V, V_th)), V_th, 0.0, hard_reset)
    current, conductance = current_at(current, V)
    V = lif_integrate(V, current, conductance, tau=tau, V_rest=0.0, R=R, dt=dt)
    return add_delta(V, delta)


def if_step(V, current, **params):
    """:func:`if_update`, then the spike. Returns ``(spike, V)``."""
    V = if_update(V, current, **params)
    return params["spk_fun"](if_spike_input(V, params["V_th"])), V
