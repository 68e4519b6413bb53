r"""Quadratic integrate-and-fire neurons: ``QuaIF``, ``AdQuaIF``, ``AdQuaIFRef``.

Equations and defaults follow brainpy.state 2.9 (see :mod:`torchbrain.functional.quadratic_if`),
converted to canonical units (ms, mV, pA, nS, GΩ, 1/mV; plain numbers are read in these).
Differences from the reference, on purpose:

* ``V_th <= V_reset``, ``c <= 0`` and ``V_c <= V_rest`` raise errors (the reference documents the
  last two as requirements but does not check them; ``V_th <= V_reset`` silently never spikes);
* ``w`` is advanced with the new V capped at ``V_th`` (as in
  :mod:`torchbrain.neurons.exp_if`; identical unless the step spiked);
* the membrane can be given a capacitance ``C`` instead of ``R`` (``R = tau/C``).

The default reset stays 'soft' as in the reference: the quadratic upstroke is slow enough that a
spiking step overshoots ``V_th`` by little, so the subtractive reset does not run away.
"""

from __future__ import annotations

import torch

from ..functional import quadratic_if as F
from ..init import Constant
from ..state import HiddenState
from ..units import u
from ._mixins import _AdaptationCurrent, _Refractory
from .lif import _LeakyBase

__all__ = ["QuaIF", "AdQuaIF", "AdQuaIFRef"]


class QuaIF(_LeakyBase):
    r"""Quadratic integrate-and-fire neuron (Latham et al. 2000).

    .. math::

        \tau \frac{dV}{dt} = c\,(V - V_\mathrm{rest})(V - V_c) + R\,I(t),
        \qquad \text{spike when } V \ge V_\mathrm{th}

    integrated with exponential Euler using the analytic Jacobian
    :math:`J = (c(2V - V_\mathrm{rest} - V_c) - RG)/\tau`. Without input :math:`V_\mathrm{rest}`
    is the stable and :math:`V_c` the unstable fixed point; the neuron fires for a constant
    current above the rheobase :math:`R I_\mathrm{rh} = c (V_c - V_\mathrm{rest})^2/4`. The
    spike is ``spk_fun((V - V_th)/(V_th - V_reset))``; the reset is lazy (start of next step).

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of neurons.
    R : quantity [resistance], default 1 Ω
        Membrane resistance (plain numbers in GΩ). Exclusive with ``C``.
    tau : quantity [time], default 10 ms
        Membrane time constant (plain numbers in ms); must be positive.
    V_th : quantity [voltage], default -30 mV
        Spike cut-off (plain numbers in mV); must be above ``V_reset``.
    V_reset : quantity [voltage], default -68 mV
        Reset potential.
    V_rest : quantity [voltage], default -65 mV
        Resting potential.
    V_c : quantity [voltage], default -50 mV
        Critical voltage of spike initiation; must be above ``V_rest``.
    c : quantity [1/voltage], default 0.07 / mV
        Curvature of the quadratic term (plain numbers in 1/mV); must be positive.
    V_initializer : Initializer or quantity [voltage], default ``Constant(-65 mV)``
        Initial membrane potential.
    spk_fun : Surrogate, default ``ReluGrad()``
    spk_reset : {'soft', 'hard'}, default 'soft'
    name : str, optional
    C : quantity [capacitance], optional
        Membrane capacitance (plain numbers in pF); sets ``R = tau / C``.
    device, dtype : optional

    Notes
    -----
    Input to ``update(x)``: a current (quantity, or a tensor/number in pA). With the default
    R = 1 Ω the rheobase is 3.9375 mA.

    References
    ----------
    Latham, P. E., Richmond, B. J., Nelson, P. G. & Nirenberg, S. (2000). Intrinsic dynamics in
    neuronal networks. I. Theory. J. Neurophysiol. 83, 808-827.
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=10.0 * u.ms,
        V_th=-30.0 * u.mV,
        V_reset=-68.0 * u.mV,
        V_rest=-65.0 * u.mV,
        V_c=-50.0 * u.mV,
        c=0.07 / u.mV,
        V_initializer=Constant(-65.0 * u.mV),
        spk_fun=None,
        spk_reset: str = "soft",
        name: str | None = None,
        *,
        C=None,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_size, tau=tau, R=R, C=C, V_initializer=V_initializer, spk_fun=spk_fun,
            spk_reset=spk_reset, name=name, device=device, dtype=dtype,
        )
        shape = self.varshape
        reg = self._register_parameter_with_unit
        self.V_th = reg("V_th", V_th, "mV", shape=shape)
        self.V_reset = reg("V_reset", V_reset, "mV", shape=shape)
        self.V_rest = reg("V_rest", V_rest, "mV", shape=shape)
        self.V_c = reg("V_c", V_c, "mV", shape=shape)
        self.c = reg("c", c, "1/mV", shape=shape, positive=True)
        self._check_threshold_above_reset(self.V_th, self.V_reset)
        if not bool((self.V_c > self.V_rest).all()):
            raise ValueError(
                f"{self._name()}: parameter 'V_c' must be above 'V_rest' (otherwise the rest "
                f"state is unstable), got V_c={self.V_c.min().item():g} mV and "
                f"V_rest={self.V_rest.max().item():g} mV"
            )
        self.V = HiddenState(None)

    def _membrane(self):
        return dict(tau=self.tau, c=self.c, V_c=self.V_c, V_th=self.V_th, V_reset=self.V_reset,
                    V_rest=self.V_rest, R=self.R, dt=self._dt(), spk_fun=self.spk_fun,
                    hard_reset=self.hard_reset)

    def rheobase(self) -> torch.Tensor:
        r"""The rheobase current (pA): :math:`c (V_c - V_\mathrm{rest})^2 / (4R)`."""
        return self.c * (self.V_c - self.V_rest) ** 2 / (4.0 * self.R)

    def init_state(self, batch_size=None):
        self._init_V(batch_size)

    def get_spike(self, V: torch.Tensor | None = None) -> torch.Tensor:
        """The spike of ``V`` (default: the State): Heaviside forward, surrogate backward."""
        V = self._state_V() if V is None else V
        return self.spk_fun(F.quaif_spike_input(V, self.V_th, self.V_reset))

    def update(self, x=0.0):
        """Advance one step with external current ``x``; returns the spikes of the new V."""
        self._check_ready()
        current, delta = self._inputs(x)
        self.V = F.quaif_update(self.V, current, delta=delta, **self._membrane())
        return self.get_spike()


class AdQuaIF(_AdaptationCurrent, QuaIF):
    r"""Adaptive quadratic integrate-and-fire neuron (Izhikevich 2004; Touboul 2008).

    .. math::

        \tau \frac{dV}{dt} &= c\,(V - V_\mathrm{rest})(V - V_c) - R\,w + R\,I(t), \\
        \tau_w \frac{dw}{dt} &= a\,(V - V_\mathrm{rest}) - w, \qquad
        \text{at a spike: } w \leftarrow w + b.

    Each step integrates V with ``w`` held, then ``w`` exactly with the new V (as the reference).

    Parameters
    ----------
    tau_w : quantity [time], default 10 ms
        Adaptation time constant; must be positive.
    a : quantity [conductance], default 1 S
        Subthreshold adaptation (plain numbers in nS; the default is 1e9 nS, i.e. ``a R = 1``
        with the default R = 1 Ω).
    b : quantity [current], default 0.1 mA
        Spike-triggered adaptation increment (plain numbers in pA; default 1e8 pA).
    w_initializer : Initializer or quantity [current], default ``Constant(0 pA)``
    other parameters
        As :class:`QuaIF`.

    References
    ----------
    Izhikevich, E. M. (2004). Which model to use for cortical spiking neurons? IEEE Trans. Neural
    Netw. 15, 1063-1070.

    Touboul, J. (2008). Bifurcation analysis of a general class of nonlinear integrate-and-fire
    neurons. SIAM J. Appl. Math. 68, 1045-1079.
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=10.0 * u.ms,
        tau_w=10.0 * u.ms,
        V_th=-30.0 * u.mV,
        V_reset=-68.0 * u.mV,
        V_rest=-65.0 * u.mV,
        V_c=-50.0 * u.mV,
        c=0.07 / u.mV,
        a=1.0 * u.siemens,
        b=0.1 * u.mA,
        V_initializer=Constant(-65.0 * u.mV),
        w_initializer=Constant(0.0 * u.pA),
        spk_fun=None,
        spk_reset: str = "soft",
        name: str | None = None,
        *,
        C=None,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_size, R=R, tau=tau, V_th=V_th, V_reset=V_reset, V_rest=V_rest, V_c=V_c, c=c,
            V_initializer=V_initializer, spk_fun=spk_fun, spk_reset=spk_reset, name=name, C=C,
            device=device, dtype=dtype,
        )
        self._init_adaptation(tau_w, a, b, w_initializer)


    def update(self, x=0.0):
        self._check_ready()
        current, delta = self._inputs(x)
        self.V, self.w = F.adquaif_update(self.V, self.w, current, delta=delta,
                                          **self._membrane())
        return self.get_spike()


class AdQuaIFRef(_Refractory, AdQuaIF):
    r"""Adaptive quadratic integrate-and-fire neuron with an absolute refractory period.

    .. math::

        \tau \frac{dV}{dt} &= c\,(V - V_\mathrm{rest})(V - V_c) - R\,w + R\,I(t), \\
        \tau_w \frac{dw}{dt} &= a\,(V - V_\mathrm{rest}) - w,

    both held at their post-reset values while :math:`t - t_\mathrm{last\,spike} <
    \tau_\mathrm{ref}` (``t`` read from ``tb.environ``).

    Parameters
    ----------
    tau_ref : quantity [time], default 1.7 ms
        Refractory period (plain numbers in ms); must be >= 0.
    ref_var : bool, default False
        Also keep a boolean ``refractory`` HiddenState.
    other parameters
        As :class:`AdQuaIF`.

    References
    ----------
    Izhikevich, E. M. (2004). IEEE Trans. Neural Netw. 15, 1063-1070.
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=10.0 * u.ms,
        tau_w=10.0 * u.ms,
        tau_ref=1.7 * u.ms,
        V_th=-30.0 * u.mV,
        V_reset=-68.0 * u.mV,
        V_rest=-65.0 * u.mV,
        V_c=-50.0 * u.mV,
        c=0.07 / u.mV,
        a=1.0 * u.siemens,
        b=0.1 * u.mA,
        V_initializer=Constant(-65.0 * u.mV),
        w_initializer=Constant(0.0 * u.pA),
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
            in_size, R=R, tau=tau, tau_w=tau_w, V_th=V_th, V_reset=V_reset, V_rest=V_rest,
            V_c=V_c, c=c, a=a, b=b, V_initializer=V_initializer, w_initializer=w_initializer,
            spk_fun=spk_fun, spk_reset=spk_reset, name=name, C=C, device=device, dtype=dtype,
        )
        self._init_refractory(tau_ref, ref_var)

    def _repr_config(self):
        return {**super()._repr_config(), **self._repr_refractory()}

    def init_state(self, batch_size=None):
        self._init_refractory_states(self._init_Vw(batch_size))

    def update(self, x=0.0):
        self._check_ready()
        current, delta = self._inputs(x)
        t, last = self._t(), self.last_spike_time
        self.V, self.w, self.last_spike_time = F.adquaifref_update(
            self.V, self.w, last, current, t, tau_ref=self.tau_ref, delta=delta,
            **self._membrane()
        )
        self._note_refractory(t, last, self.V, self.V_th)
        return self.get_spike()
