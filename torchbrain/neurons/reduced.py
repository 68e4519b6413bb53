r"""Reduced (dimensionless) neuron models: ``FitzHughNagumo``, ``HindmarshRose``.

Equations and defaults follow brainpy.state (see :mod:`torchbrain.functional.reduced`). The
state variables and the input are dimensionless; the time constants are in ms (plain numbers in
ms). Like the Hodgkin–Huxley family these models do not reset: a spike is an upward crossing of
``V_th``, kept in a ``spike`` State so that ``get_spike()`` returns the last step's spikes.
Difference from the reference: the surrogate sees ``(V - V_th)/|V_th|`` (the reference's
``(V - V_th)/V_th`` flips sign for a negative threshold).
"""

from __future__ import annotations

from ..functional import reduced as F
from ..init import Constant
from ..state import HiddenState
from ..units import u
from .hh import _CrossingNeuron

__all__ = ["FitzHughNagumo", "HindmarshRose"]


class _Dimensionless(_CrossingNeuron):
    _V_unit = "dimensionless"
    _input_unit = "dimensionless"

    def _init_var(self, name: str, initializer, shape) -> None:
        setattr(self, name, HiddenState(
            self._initial_value(initializer, "dimensionless", shape, name)))


class FitzHughNagumo(_Dimensionless):
    r"""The FitzHugh–Nagumo model of an excitable membrane.

    .. math::

        \tau \frac{dV}{dt} = V - \frac{V^3}{3} - w + I(t), \qquad
        \tau_w \frac{dw}{dt} = V + a - b\,w.

    With the default parameters the rest state is stable for ``I = 0`` and loses stability
    (through a Hopf bifurcation) near ``I ≈ 0.33``: for ``0.33 ≲ I ≲ 1.42`` V runs along a limit
    cycle (relaxation oscillation); above, it sits at a depolarised fixed point. Each variable
    takes one exponential-Euler step (exact for the linear w equation at fixed V).

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of neurons.
    a : float, default 0.7
        Recovery offset (dimensionless).
    b : float, default 0.8
        Recovery coupling (dimensionless).
    tau : quantity [time], default 1 ms
        Time constant of V; positive.
    tau_w : quantity [time], default 12.5 ms
        Time constant of w; positive.
    V_th : float, default 1.0
        Spike-detection threshold (upward crossing, dimensionless); non-zero.
    V_initializer : Initializer or float, default ``Constant(-1.2)``
    w_initializer : Initializer or float, default ``Constant(-0.62)``
    spk_fun : Surrogate, default ``ReluGrad()``
        Spike function of ``(V - V_th)/|V_th|``.
    name : str, optional
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    ``update(x)`` takes the dimensionless input ``I``; synaptic outputs registered by projections
    are added as they are (their conductance enters the Jacobian of V).
    States: ``V``, ``w``, ``spike``.

    References
    ----------
    FitzHugh, R. (1961). Impulses and physiological states in theoretical models of nerve
    membrane. *Biophys. J.* 1(6), 445–466.
    Nagumo, J., Arimoto, S. & Yoshizawa, S. (1962). An active pulse transmission line simulating
    nerve axon. *Proc. IRE* 50(10), 2061–2070.
    """

    def __init__(
        self,
        in_size,
        a=0.7,
        b=0.8,
        tau=1.0 * u.ms,
        tau_w=12.5 * u.ms,
        V_th=1.0,
        V_initializer=Constant(-1.2),
        w_initializer=Constant(-0.62),
        spk_fun=None,
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, V_th=V_th, V_initializer=V_initializer, spk_fun=spk_fun,
                         name=name, device=device, dtype=dtype)
        reg = self._register_parameter_with_unit
        shape = self.varshape
        self.a = reg("a", a, "dimensionless", shape=shape)
        self.b = reg("b", b, "dimensionless", shape=shape)
        self.tau = reg("tau", tau, "ms", shape=shape, positive=True)
        self.tau_w = reg("tau_w", tau_w, "ms", shape=shape, positive=True)
        self.w_initializer = self._store_initializer("w_initializer", w_initializer,
                                                     "dimensionless")
        self.w = HiddenState(None)

    def _repr_config(self):
        return {**super()._repr_config(), "w_initializer": self.w_initializer}

    def init_state(self, batch_size=None):
        shape = self._init_V(batch_size)
        self._init_var("w", self.w_initializer, shape)

    def update(self, x=0.0):
        """Advance one step with input ``x`` (dimensionless); returns the spikes."""
        self._check_ready()
        current, delta = self._inputs(x)
        V_old = self.V
        self.V, self.w = F.fhn_update(V_old, self.w, current, a=self.a, b=self.b, tau=self.tau,
                                      tau_w=self.tau_w, dt=self._dt(), delta=delta)
        return self._finish(V_old)


class HindmarshRose(_Dimensionless):
    r"""The Hindmarsh–Rose (1984) bursting neuron.

    .. math::

        \tau \frac{dV}{dt} &= y - a V^3 + b V^2 - z + I(t), \\
        \tau \frac{dy}{dt} &= c - d V^2 - y, \\
        \tau \frac{dz}{dt} &= r\,[s\,(V - V_r) - z].

    The slow adaptation variable z (rate ``r``) switches the fast (V, y) subsystem between
    spiking and rest: with the defaults the cell bursts for ``2 ≲ I ≲ 3.3`` and spikes tonically
    above. ``V`` is the fast variable (``x`` in the paper). Each variable takes one
    exponential-Euler step; the bursts need a step of about 0.02 ms or less at ``tau = 1 ms``
    (with 0.1 ms the scheme turns the bursts into tonic spiking).

    Parameters
    ----------
    in_size : int or tuple of int
    a, b, c, d : float, default 1, 3, 1, 5
        Polynomial coefficients (dimensionless).
    r : float, default 0.006
        Rate of the slow variable (dimensionless, >= 0).
    s : float, default 4
        Adaptation coupling.
    V_r : float, default −1.6
        Resting value of V in the z equation.
    tau : quantity [time], default 1 ms
        Time scale of all three equations; positive.
    V_th : float, default 1.0
        Spike-detection threshold (upward crossing); non-zero.
    V_initializer : Initializer or float, default ``Constant(-1.6)``
    y_initializer : Initializer or float, default ``Constant(-10)``
    z_initializer : Initializer or float, default ``Constant(0)``
    spk_fun, name, device, dtype
        As :class:`FitzHughNagumo`.

    Notes
    -----
    ``update(x)`` takes the dimensionless input ``I``. States: ``V``, ``y``, ``z``, ``spike``.

    References
    ----------
    Hindmarsh, J. L. & Rose, R. M. (1984). A model of neuronal bursting using three coupled first
    order differential equations. *Proc. R. Soc. Lond. B* 221, 87–102.
    """

    def __init__(
        self,
        in_size,
        a=1.0,
        b=3.0,
        c=1.0,
        d=5.0,
        r=0.006,
        s=4.0,
        V_r=-1.6,
        tau=1.0 * u.ms,
        V_th=1.0,
        V_initializer=Constant(-1.6),
        y_initializer=Constant(-10.0),
        z_initializer=Constant(0.0),
        spk_fun=None,
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, V_th=V_th, V_initializer=V_initializer, spk_fun=spk_fun,
                         name=name, device=device, dtype=dtype)
        reg = self._register_parameter_with_unit
        shape = self.varshape
        self.a = reg("a", a, "dimensionless", shape=shape)
        self.b = reg("b", b, "dimensionless", shape=shape)
        self.c = reg("c", c, "dimensionless", shape=shape)
        self.d = reg("d", d, "dimensionless", shape=shape)
        self.r = reg("r", r, "dimensionless", shape=shape, nonnegative=True)
        self.s = reg("s", s, "dimensionless", shape=shape)
        self.V_r = reg("V_r", V_r, "dimensionless", shape=shape)
        self.tau = reg("tau", tau, "ms", shape=shape, positive=True)
        self.y_initializer = self._store_initializer("y_initializer", y_initializer,
                                                     "dimensionless")
        self.z_initializer = self._store_initializer("z_initializer", z_initializer,
                                                     "dimensionless")
        self.y = HiddenState(None)
        self.z = HiddenState(None)

    def _repr_config(self):
        return {**super()._repr_config(), "y_initializer": self.y_initializer,
                "z_initializer": self.z_initializer}

    def init_state(self, batch_size=None):
        shape = self._init_V(batch_size)
        self._init_var("y", self.y_initializer, shape)
        self._init_var("z", self.z_initializer, shape)

    def update(self, x=0.0):
        """Advance one step with input ``x`` (dimensionless); returns the spikes."""
        self._check_ready()
        current, delta = self._inputs(x)
        V_old = self.V
        self.V, self.y, self.z = F.hr_update(
            V_old, self.y, self.z, current, a=self.a, b=self.b, c=self.c, d=self.d, r=self.r,
            s=self.s, V_r=self.V_r, tau=self.tau, dt=self._dt(), delta=delta,
        )
        return self._finish(V_old)
