r"""Pure step functions of the Izhikevich (2003) neuron.

.. math::

    \frac{dV}{dt} = 0.04 V^2 + 5 V + 140 - u + I, \qquad
    \frac{du}{dt} = a\,(b V - u),

with V in mV, t in ms, and u and I in mV/ms (the model's normalised current units, as in the
reference: the coefficients 0.04 /(ms mV), 5 /ms and 140 mV/ms are fixed). When
:math:`V \ge V_\mathrm{th}`: :math:`V \leftarrow c`, :math:`u \leftarrow u + d`.

**Scheme** (brainpy.state's): the reset is lazy, applied at the start of the next step from the
spike of the stored V; then V takes one exponential-Euler step with the elementwise Jacobian
:math:`J = 0.08 V + 5 - G` (:math:`G` the synaptic conductance, ``-dI/dV``), and then u takes
the exact step of its linear ODE at the already-integrated V, :math:`u' = bV' + (u - bV')
e^{-a\Delta t}` (brainpy.state's ``du`` reads the State V after its update).

The spike is ``spk_fun((V - V_th)/|V_th|)``: it is 1 exactly when ``V >= V_th``, whatever the
sign of ``V_th`` (the reference's ``(V - V_th)/V_th`` flips for a negative threshold).

Reset modes:

* hard (default): :math:`V \leftarrow V - (\mathrm{sg}(V) - c)\,s`, i.e. exactly ``c`` after a
  spike, with no gradient through the reset amount;
* soft: :math:`V \leftarrow V - (V_\mathrm{th} - c)\,s` (differentiable). Beware: one step of
  the quadratic upstroke can overshoot ``V_th`` by more than ``V_th - c``; V then stays above
  threshold and runs away. The module shells therefore use the hard reset only.

In both, :math:`u \leftarrow u + d\,s`, with the surrogate gradient through ``s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._step_inputs import add_delta, current_at
from .integrators import exp_euler_linear
from .lif import last_spike_time_update, refractory_mask

__all__ = [
    "izhikevich_spike_input",
    "izhikevich_reset",
    "izhikevich_integrate",
    "izhikevich_update",
    "izhikevich_step",
    "izhikevichref_update",
    "izhikevichref_step",
]


def izhikevich_spike_input(V, V_th):
    r""":math:`(V - V_\mathrm{th})/|V_\mathrm{th}|`, ``>= 0`` exactly when ``V >= V_th``."""
    return (V - V_th) / V_th.abs() if isinstance(V_th, torch.Tensor) else (V - V_th) / abs(V_th)


def izhikevich_reset(V, u, spike, *, c, d, V_th, hard: bool):
    """Apply the lazy reset for ``spike``: ``V -> c`` (hard) or ``V -= V_th - c`` (soft),
    ``u += d``. Returns ``(V, u)``."""
    amount = (V.detach() if hard else V_th) - c
    return V - amount * spike, u + d * spike


def izhikevich_integrate(V, u, current, conductance, *, a, b, dt: float):
    """One integration step (no reset): exponential Euler for V, then the exact step for u at
    the new V. Returns ``(V, u)``."""
    f = 0.04 * V * V + 5.0 * V + 140.0 - u + current
    J = 0.08 * V + 5.0 - conductance
    V_new = exp_euler_linear(V, f, J, dt)
    bV = b * V_new
    decay = torch.exp(-a * dt) if isinstance(a, torch.Tensor) else math.exp(-a * dt)
    u_new = bV + (u - bV) * decay
    return V_new, u_new


def izhikevich_update(V, u, current, *, a, b, c, d, V_th, dt: float, spk_fun: Callable,
                      hard_reset: bool = True, delta=0.0):
    """Reset for the previous step's spike, integrate one step, add the jump ``delta`` (mV).

    ``current`` is a tensor/number in mV/ms or a function ``V -> (current, conductance)``,
    evaluated at the post-reset V. Returns the new (un-reset) ``(V, u)``.
    """
    spike = spk_fun(izhikevich_spike_input(V, V_th))
    V, u = izhikevich_reset(V, u, spike, c=c, d=d, V_th=V_th, hard=hard_reset)
    I, G = current_at(current, V)
    V, u = izhikevich_integrate(V, u, I, G, a=a, b=b, dt=dt)
    return add_delta(V, delta), u


def izhikevich_step(V, u, current, **params):
    """:func:`izhikevich_update`, then the spike of the new V. Returns ``(spike, V, u)``."""
    V, u = izhikevich_update(V, u, current, **params)
    return params["spk_fun"](izhikevich_spike_input(V, params["V_th"])), V, u


def izhikevichref_update(V, u, last_spike_time, current, t, *, a, b, c, d, V_th, tau_ref,
                         dt: float, spk_fun: Callable, hard_reset: bool = True, delta=0.0):
    """:func:`izhikevich_update` with an absolute refractory period ``tau_ref`` (ms).

    While ``t - last_spike_time < tau_ref``, V and u are held at their post-reset values. A step
    that ends with ``V >= V_th`` records ``t`` as the last spike time (without gradient).
    Returns ``(V, u, last_spike_time)``.
    """
    spike = spk_fun(izhikevich_spike_input(V, V_th))
    V_reset, u_reset = izhikevich_reset(V, u, spike, c=c, d=d, V_th=V_th, hard=hard_reset)
    I, G = current_at(current, V_reset)
    V_new, u_new = izhikevich_integrate(V_reset, u_reset, I, G, a=a, b=b, dt=dt)
    V_new = add_delta(V_new, delta)
    refractory = refractory_mask(t, last_spike_time, tau_ref)
    V_new = torch.where(refractory, V_reset, V_new)
    u_new = torch.where(refractory, u_reset, u_new)
    return V_new, u_new, last_spike_time_update(V_new, V_th, t, last_spike_time)


def izhikevichref_step(V, u, last_spike_time, current, t, **params):
    """:func:`izhikevichref_update`, then the spike. Returns ``(spike, V, u, last_spike_time)``."""
    V, u, last_spike_time = izhikevichref_update(V, u, last_spike_time, current, t, **params)
    spike = params["spk_fun"](izhikevich_spike_input(V, params["V_th"]))
    return spike, V, u, last_spike_time
