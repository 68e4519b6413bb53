r"""Pure step functions of the reduced (dimensionless) neuron models.

FitzHugh–Nagumo:

.. math::

    \tau \frac{dV}{dt} = V - \frac{V^3}{3} - w + I, \qquad
    \tau_w \frac{dw}{dt} = V + a - b\,w.

Hindmarsh–Rose:

.. math::

    \tau \frac{dV}{dt} &= y - a V^3 + b V^2 - z + I, \\
    \tau \frac{dy}{dt} &= c - d V^2 - y, \\
    \tau \frac{dz}{dt} &= r\,[s\,(V - V_r) - z].

V, w, y, z and I are dimensionless; the time constants (ms) set the time scale.

**Scheme** (the reference's): every variable takes one exponential-Euler step
:math:`x' = x + \Delta t\,\mathrm{exprel}(\Delta t\,J_x)\,\dot x` with its own elementwise
Jacobian (:math:`J_V = (1 - V^2 - G)/\tau` for FitzHugh–Nagumo,
:math:`(2bV - 3aV^2 - G)/\tau` for Hindmarsh–Rose; :math:`G = -\partial I/\partial V` of the
synaptic input), all right-hand sides at the start-of-step state. The linear equations of w, y
and z are thereby integrated exactly at fixed V.

The models do not reset; a spike is an upward crossing of ``V_th`` (see
:func:`torchbrain.functional.hh.crossing_spike`).
"""

from __future__ import annotations

from collections.abc import Callable

from ._step_inputs import add_delta, current_at
from .hh import crossing_spike
from .integrators import exp_euler_linear

__all__ = ["fhn_update", "fhn_step", "hr_update", "hr_step"]


def fhn_update(V, w, current, *, a, b, tau, tau_w, dt: float, delta=0.0):
    """One step of the FitzHugh–Nagumo model. ``current`` is a (dimensionless) tensor/number or a
    function ``V -> (current, conductance)``. Returns ``(V, w)``."""
    I, G = current_at(current, V)
    fV = (V - V * V * V / 3.0 - w + I) / tau
    JV = (1.0 - V * V - G) / tau
    fw = (V + a - b * w) / tau_w
    Jw = -b / tau_w
    return add_delta(exp_euler_linear(V, fV, JV, dt), delta), exp_euler_linear(w, fw, Jw, dt)


def fhn_step(V, w, current, *, V_th, spk_fun: Callable, **params):
    """:func:`fhn_update`, then the upward-crossing spike. Returns ``(spike, V, w)``."""
    V_new, w = fhn_update(V, w, current, **params)
    return crossing_spike(V_new, V, V_th, spk_fun), V_new, w


def hr_update(V, y, z, current, *, a, b, c, d, r, s, V_r, tau, dt: float, delta=0.0):
    """One step of the Hindmarsh–Rose model. Returns ``(V, y, z)``."""
    I, G = current_at(current, V)
    V2 = V * V
    fV = (y - a * V2 * V + b * V2 - z + I) / tau
    JV = (2.0 * b * V - 3.0 * a * V2 - G) / tau
    fy = (c - d * V2 - y) / tau
    fz = r * (s * (V - V_r) - z) / tau
    V_new = exp_euler_linear(V, fV, JV, dt)
    y_new = exp_euler_linear(y, fy, -1.0 / tau, dt)
    z_new = exp_euler_linear(z, fz, -r / tau, dt)
    return add_delta(V_new, delta), y_new, z_new


def hr_step(V, y, z, current, *, V_th, spk_fun: Callable, **params):
    """:func:`hr_update`, then the upward-crossing spike. Returns ``(spike, V, y, z)``."""
    V_new, y, z = hr_update(V, y, z, current, **params)
    return crossing_spike(V_new, V, V_th, spk_fun), V_new, y, z
