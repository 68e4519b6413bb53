r"""Generalized integrate-and-fire neurons: ``Gif``, ``GifRef`` (Mihalaş & Niebur 2009).

Equations and defaults follow brainpy.state 2.9 (see :mod:`torchbrain.functional.gif`),
converted to canonical units (ms, mV, pA, GΩ, 1/ms; plain numbers are read in these).
Differences from the reference, on purpose:

* ``V_th_inf <= V_reset`` or ``V_th_reset <= V_reset`` raise an error, as does an initial
  threshold at or below ``V_reset`` (the scaled spike input changes sign there and the neuron
  never spikes);
* ``GifRef`` integrates exactly like ``Gif`` (V driven by the decayed spike currents) and only
  adds the refractory hold; the reference's ``GifRef`` drives V with the pre-decay currents
  instead, a first-order difference of order :math:`k_j \Delta t` that makes the two disagree
  even when the neuron is never refractory;
* the membrane can be given a capacitance ``C`` instead of ``R`` (``R = tau/C``).
"""

from __future__ import annotations

import torch

from ..functional import gif as F
from ..init import Constant
from ..state import HiddenState
from ..units import u
from ._mixins import _Refractory
from .lif import _LeakyBase

__all__ = ["Gif", "GifRef"]


class Gif(_LeakyBase):
    r"""Generalized integrate-and-fire neuron (Mihalaş & Niebur 2009).

    .. math::

        \frac{dI_1}{dt} &= -k_1 I_1, \qquad \frac{dI_2}{dt} = -k_2 I_2, \\
        \tau \frac{dV}{dt} &= -(V - V_\mathrm{rest}) + R\,(I_1 + I_2 + I(t)), \\
        \frac{dV_\mathrm{th}}{dt} &= a\,(V - V_\mathrm{rest})
            - b\,(V_\mathrm{th} - V_{\mathrm{th}\infty}),

    and, when :math:`V \ge V_\mathrm{th}` (applied lazily at the start of the next step):
    :math:`I_j \leftarrow R_j I_j + A_j`, :math:`V \leftarrow V_\mathrm{reset}` (hard) or
    :math:`V - (V_\mathrm{th} - V_\mathrm{reset})` (soft),
    :math:`V_\mathrm{th} \leftarrow \max(V_{\mathrm{th,reset}}, V_\mathrm{th})`. The threshold is
    a State; the spike is ``spk_fun((V - V_th)/(V_th - V_reset))``.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of neurons.
    R : quantity [resistance], default 20 Ω
        Membrane resistance (plain numbers in GΩ; 20 Ω = 2e-8 GΩ). Exclusive with ``C``.
    tau : quantity [time], default 20 ms
        Membrane time constant (plain numbers in ms); must be positive.
    V_rest : quantity [voltage], default -70 mV
        Resting potential (plain numbers in mV).
    V_reset : quantity [voltage], default -70 mV
        Reset potential.
    V_th_inf : quantity [voltage], default -50 mV
        Target of the threshold dynamics; must be above ``V_reset``.
    V_th_reset : quantity [voltage], default -60 mV
        Lower bound of the threshold after a spike; must be above ``V_reset``.
    V_th_initializer : Initializer or quantity [voltage], default ``Constant(-50 mV)``
        Initial threshold.
    a : quantity [1/time], default 0 / ms
        Dependence of the threshold on V (plain numbers in 1/ms).
    b : quantity [1/time], default 0.01 / ms
        Relaxation rate of the threshold; must be >= 0.
    k1, k2 : quantity [1/time], default 0.2 / ms and 0.02 / ms
        Decay rates of the spike-induced currents; must be >= 0.
    R1, R2 : float, default 0 and 1
        Fraction of :math:`I_j` kept at a spike (dimensionless).
    A1, A2 : quantity [current], default 0 mA
        Increment of :math:`I_j` at a spike (plain numbers in pA).
    V_initializer : Initializer or quantity [voltage], default ``Constant(-70 mV)``
    I1_initializer, I2_initializer : Initializer or quantity [current], default ``Constant(0 pA)``
    spk_fun : Surrogate, default ``ReluGrad()``
    spk_reset : {'soft', 'hard'}, default 'soft'
    name : str, optional
    C : quantity [capacitance], optional
        Membrane capacitance (plain numbers in pF); sets ``R = tau / C``.
    device, dtype : optional

    Notes
    -----
    Input to ``update(x)``: a current (quantity, or a tensor/number in pA). With the default
    R = 20 Ω, ``1 mA`` drives V by 20 mV.

    References
    ----------
    Mihalaş, Ş. & Niebur, E. (2009). A generalized linear integrate-and-fire neural model produces
    diverse spiking behaviors. Neural Comput. 21, 704-718.
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=20.0 * u.ms,
        V_rest=-70.0 * u.mV,
        V_reset=-70.0 * u.mV,
        V_th_inf=-50.0 * u.mV,
        V_th_reset=-60.0 * u.mV,
        V_th_initializer=Constant(-50.0 * u.mV),
        a=0.0 / u.ms,
        b=0.01 / u.ms,
        k1=0.2 / u.ms,
        k2=0.02 / u.ms,
        R1=0.0,
        R2=1.0,
        A1=0.0 * u.mA,
        A2=0.0 * u.mA,
        V_initializer=Constant(-70.0 * u.mV),
        I1_initializer=Constant(0.0 * u.pA),
        I2_initializer=Constant(0.0 * u.pA),
        spk_fun=None,
        spk_reset: str = "soft",
        name: str | None = None,
        *,
        C=None,
        device=None,
        dtype=None,
    ):
        if R is None and C is None:
            R = 20.0 * u.ohm
        super().__init__(
            in_size, tau=tau, R=R, C=C, V_initializer=V_initializer, spk_fun=spk_fun,
            spk_reset=spk_reset, name=name, device=device, dtype=dtype,
        )
        shape = self.varshape
        reg = self._register_parameter_with_unit
        self.V_rest = reg("V_rest", V_rest, "mV", shape=shape)
        self.V_reset = reg("V_reset", V_reset, "mV", shape=shape)
        self.V_th_inf = reg("V_th_inf", V_th_inf, "mV", shape=shape)
        self.V_th_reset = reg("V_th_reset", V_th_reset, "mV", shape=shape)
        self.a = reg("a", a, "1/ms", shape=shape)
        self.b = reg("b", b, "1/ms", shape=shape, nonnegative=True)
        self.k1 = reg("k1", k1, "1/ms", shape=shape, nonnegative=True)
        self.k2 = reg("k2", k2, "1/ms", shape=shape, nonnegative=True)
        self.R1 = reg("R1", R1, "dimensionless", shape=shape)
        self.R2 = reg("R2", R2, "dimensionless", shape=shape)
        self.A1 = reg("A1", A1, "pA", shape=shape)
        self.A2 = reg("A2", A2, "pA", shape=shape)
        self._check_above_reset("V_th_inf", self.V_th_inf)
        self._check_above_reset("V_th_reset", self.V_th_reset)
        self.V_th_initializer = self._store_initializer("V_th_initializer", V_th_initializer, "mV")
        self.I1_initializer = self._store_initializer("I1_initializer", I1_initializer, "pA")
        self.I2_initializer = self._store_initializer("I2_initializer", I2_initializer, "pA")
        self.V = HiddenState(None)
        self.I1 = HiddenState(None)
        self.I2 = HiddenState(None)
        self.V_th = HiddenState(None)

    def _check_above_reset(self, name, value):
        if not bool((value > self.V_reset).all()):
            raise ValueError(
                f"{self._name()}: parameter '{name}' must be above 'V_reset' (otherwise the "
                f"scaled spike input changes sign and the neuron never spikes), got "
                f"{name}={value.min().item():g} mV and V_reset={self.V_reset.max().item():g} mV"
            )

    def _repr_config(self):
        return {**super()._repr_config(), "V_th_initializer": self.V_th_initializer,
                "I1_initializer": self.I1_initializer, "I2_initializer": self.I2_initializer}

    def _params(self):
        return dict(tau=self.tau, R=self.R, V_rest=self.V_rest, V_reset=self.V_reset,
                    V_th_inf=self.V_th_inf, V_th_reset=self.V_th_reset, a=self.a, b=self.b,
                    k1=self.k1, k2=self.k2, R1=self.R1, R2=self.R2, A1=self.A1, A2=self.A2,
                    dt=self._dt(), spk_fun=self.spk_fun, hard_reset=self.hard_reset)

    def _init_gif(self, batch_size):
        shape = self._init_V(batch_size)
        self.I1 = HiddenState(self._initial_value(self.I1_initializer, "pA", shape, "I1"))
        self.I2 = HiddenState(self._initial_value(self.I2_initializer, "pA", shape, "I2"))
        V_th = self._initial_value(self.V_th_initializer, "mV", shape, "V_th")
        if not bool((V_th > self.V_reset).all()):
            raise ValueError(
                f"{self._name()}: the initial threshold 'V_th' must be above 'V_reset', got "
                f"{V_th.min().item():g} mV (smallest value) and V_reset="
                f"{self.V_reset.max().item():g} mV"
            )
        self.V_th = HiddenState(V_th)
        return shape

    def init_state(self, batch_size=None):
        self._init_gif(batch_size)

    def get_spike(self, V=None, V_th=None) -> torch.Tensor:
        """The spike of ``V`` against the threshold ``V_th`` (default: the States)."""
        V = self._state_V() if V is None else V
        V_th = self.V_th if V_th is None else V_th
        return self.spk_fun(F.gif_spike_input(V, V_th, self.V_reset))

    def update(self, x=0.0):
        """Advance one step with external current ``x``; returns the spikes of the new V."""
        self._check_ready()
        current, delta = self._inputs(x)
        self.V, self.I1, self.I2, self.V_th = F.gif_update(
            self.V, self.I1, self.I2, self.V_th, current, delta=delta, **self._params()
        )
        return self.get_spike()


class GifRef(_Refractory, Gif):
    r"""Generalized integrate-and-fire neuron with an absolute refractory period.

    The equations of :class:`Gif`; while :math:`t - t_\mathrm{last\,spike} < \tau_\mathrm{ref}`
    (``t`` read from ``tb.environ``) all four variables stay at their post-reset values. A step
    that ends with :math:`V \ge V_\mathrm{th}` records ``t`` as the last spike time.

    .. math::

        \tau \frac{dV}{dt} = -(V - V_\mathrm{rest}) + R\,(I_1 + I_2 + I(t))
        \quad \text{unless refractory}

    Parameters
    ----------
    tau_ref : quantity [time], default 1.7 ms
        Refractory period (plain numbers in ms); must be >= 0.
    ref_var : bool, default False
        Also keep a boolean ``refractory`` HiddenState.
    other parameters
        As :class:`Gif`.

    References
    ----------
    Mihalaş, Ş. & Niebur, E. (2009). Neural Comput. 21, 704-718.
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=20.0 * u.ms,
        tau_ref=1.7 * u.ms,
        V_rest=-70.0 * u.mV,
        V_reset=-70.0 * u.mV,
        V_th_inf=-50.0 * u.mV,
        V_th_reset=-60.0 * u.mV,
        V_th_initializer=Constant(-50.0 * u.mV),
        a=0.0 / u.ms,
        b=0.01 / u.ms,
        k1=0.2 / u.ms,
        k2=0.02 / u.ms,
        R1=0.0,
        R2=1.0,
        A1=0.0 * u.mA,
        A2=0.0 * u.mA,
        V_initializer=Constant(-70.0 * u.mV),
        I1_initializer=Constant(0.0 * u.pA),
        I2_initializer=Constant(0.0 * u.pA),
        spk_fun=None,
        spk_reset: str = "soft",
        ref_var: bool = False,
        name: str | None = None,
        *,
        C=None,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_size, R=R, tau=tau, V_rest=V_rest, V_reset=V_reset, V_th_inf=V_th_inf,
            V_th_reset=V_th_reset, V_th_initializer=V_th_initializer, a=a, b=b, k1=k1, k2=k2,
            R1=R1, R2=R2, A1=A1, A2=A2, V_initializer=V_initializer,
            I1_initializer=I1_initializer, I2_initializer=I2_initializer, spk_fun=spk_fun,
            spk_reset=spk_reset, name=name, C=C, device=device, dtype=dtype,
        )
        self._init_refractory(tau_ref, ref_var)

    def _repr_config(self):
        return {**super()._repr_config(), **self._repr_refractory()}

    def init_state(self, batch_size=None):
        self._init_refractory_states(self._init_gif(batch_size))

    def update(self, x=0.0):
        self._check_ready()
        current, delta = self._inputs(x)
        t, last = self._t(), self.last_spike_time
        self.V, self.I1, self.I2, self.V_th, self.last_spike_time = F.gifref_update(
            self.V, self.I1, self.I2, self.V_th, last, current, t, tau_ref=self.tau_ref,
            delta=delta, **self._params()
        )
        self._note_refractory(t, last, self.V, self.V_th)
        return self.get_spike()
