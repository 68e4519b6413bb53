r"""Conductance-based neurons: ``HH``, ``WangBuzsakiHH``, ``MorrisLecar``, ``TraubMilesHH``.

Equations and defaults follow brainpy.state 2.9 (``HH``, ``WangBuzsakiHH``, ``MorrisLecar``) and
the COBAHH benchmark of Brette et al. (2007) (``TraubMilesHH``); the integration scheme is in
:mod:`torchbrain.functional.hh`. Differences from the reference, on purpose:

* V takes an exponential-Euler step in the total (channel + synaptic) conductance, exact while
  the conductances are frozen and stable for any step. The reference's ``exp_euler_step`` is
  exponential Euler too, with the Jacobian of its ``dV/dt`` in V, i.e. in the channel
  conductances; it adds the synaptic input evaluated at the previous V outside that Jacobian, so
  the two steps agree without synapses and differ by the synaptic conductance's share of it.
* The Wang–Buzsáki :math:`\alpha_n` is the published :math:`0.01(V+34)/(1-e^{-0.1(V+34)})`;
  the reference's ``1/exprel(...)`` is ten times larger, and with it the model does not fire at all
  (it rests near −74 mV for any input up to 2 µA).
* The spike is the upward crossing of ``V_th`` within a step (these models do not reset), stored
  in a ``spike`` State, so ``get_spike()`` before the next update returns this step's spikes.

Kept on purpose although it differs from the publication: ``HH``'s leak conductance defaults to
the reference's 0.03 mS, one tenth of Hodgkin & Huxley's 0.3 mS/cm² (see :class:`HH`).

Units: the reference's parameters are per-area-like (mS, µF, µA); they are converted exactly to
the canonical nS, pF and pA, so ``HH`` is a 1 µF cell (``C = 1e6 pF``) and an input of 10 µA is
``1e7`` pA. Plain numbers are read in mV, nS, pF, pA, 1/ms.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from ..dynamics import Dynamics
from ..functional import hh as F
from ..init import Constant, Normal, Uniform
from ..module import TimeStepWarning
from ..state import HiddenState
from ..units import u
from .base import Neuron

__all__ = ["HH", "WangBuzsakiHH", "MorrisLecar", "TraubMilesHH"]

# Default initializers (immutable descriptions, shared as argument defaults).
_V0_UNIFORM = Uniform(-70.0 * u.mV, -60.0 * u.mV)
_V0_COBAHH = Normal(-65.0 * u.mV, 5.0 * u.mV)


class _CrossingNeuron(Neuron):
    """Base of neurons without reset whose spike is the upward crossing of ``V_th``.

    Holds ``V_th``, the V initializer, and the ``V`` and ``spike`` States.
    """

    _V_unit = "mV"
    _input_unit = "pA"

    def __init__(self, in_size, *, V_th, V_initializer, spk_fun, name, device, dtype):
        super().__init__(in_size, spk_fun=spk_fun, name=name, device=device, dtype=dtype)
        self.V_th = self._register_parameter_with_unit("V_th", V_th, self._V_unit,
                                                       shape=self.varshape)
        self._check_nonzero("V_th", self.V_th, "the surrogate input is (V - V_th)/|V_th|")
        self.V_initializer = self._store_initializer("V_initializer", V_initializer,
                                                     self._V_unit)
        self.V = HiddenState(None)
        self.spike = HiddenState(None)

    def _check_nonzero(self, name: str, value: torch.Tensor, why: str) -> None:
        if not bool((value != 0).all()):
            raise ValueError(f"{self._name()}: parameter '{name}' must be non-zero ({why})")

    def _repr_config(self) -> dict[str, Any]:
        # No reset: leave out Neuron's spk_reset.
        return {**Dynamics._repr_config(self), "spk_fun": self.spk_fun,
                "V_initializer": self.V_initializer}

    def _init_V(self, batch_size) -> tuple[int, ...]:
        shape = self._state_shape(batch_size)
        self.V = HiddenState(self._initial_value(self.V_initializer, self._V_unit, shape, "V"))
        self.spike = HiddenState(torch.zeros(shape, **self._factory_like_states()))
        return shape

    def _init_gate(self, name: str, initializer, steady: torch.Tensor, shape) -> None:
        value = steady if initializer is None else self._initial_value(
            initializer, "dimensionless", shape, name)
        setattr(self, name, HiddenState(value.detach().clone()))

    def _inputs(self, x):
        """A function ``V -> (current, conductance)`` summing ``x`` and the synaptic outputs,
        and the sum of jumps."""
        x = self._input_tensor(x, self._input_unit)
        return (lambda V: self.sum_current_inputs(x, V)), self.sum_delta_inputs(0.0)

    def get_spike(self) -> torch.Tensor:
        """The spikes of the last step (1 where V crossed ``V_th`` upwards)."""
        self._check_ready()
        return self.spike

    #: ``dt`` may be at most this many times the fastest gate time constant at rest
    DT_PER_GATE_TAU = 2.0

    def _gate_rates_at_rest(self):
        """``(alpha_x, beta_x, ...)`` of the gates at the leak reversal potential, or None."""
        return None

    def _validate_dt(self, dt: float) -> None:
        rates = self._gate_rates_at_rest()
        if rates is None:
            return
        with torch.no_grad():
            tau = min(float((1.0 / (a + b)).min())
                      for a, b in zip(rates[::2], rates[1::2], strict=True))
        if dt > self.DT_PER_GATE_TAU * tau:
            warnings.warn(
                f"{self._name()}: dt = {dt:g} ms is too coarse for this model: its fastest gate "
                f"time constant at rest is {tau:.3g} ms, and dt above {self.DT_PER_GATE_TAU:g}x "
                f"that ({self.DT_PER_GATE_TAU * tau:.3g} ms) misses or merges spikes; use "
                f"dt <= {self.DT_PER_GATE_TAU * tau:.2g} ms (0.01-0.05 ms for accurate traces)",
                TimeStepWarning, stacklevel=4,
            )

    def _finish(self, V_old: torch.Tensor) -> torch.Tensor:
        self.spike = F.crossing_spike(self.V, V_old, self.V_th, self.spk_fun)
        return self.spike


class HH(_CrossingNeuron):
    r"""The Hodgkin–Huxley (1952) squid-axon neuron.

    .. math::

        C \frac{dV}{dt} &= -\bar g_\mathrm{Na} m^3 h (V - E_\mathrm{Na})
            - \bar g_\mathrm{K} n^4 (V - E_\mathrm{K}) - g_L (V - E_L) + I(t), \\
        \frac{dx}{dt} &= \alpha_x(V)(1 - x) - \beta_x(V)\,x, \quad x \in \{m, h, n\},

    with the classic rates (V in mV, rates in 1/ms, resting potential near −65 mV)

    .. math::

        \alpha_m &= \frac{0.1(V + 40)}{1 - e^{-(V+40)/10}}, &
        \beta_m &= 4 e^{-(V+65)/18}, \\
        \alpha_h &= 0.07 e^{-(V+65)/20}, &
        \beta_h &= \frac{1}{1 + e^{-(V+35)/10}}, \\
        \alpha_n &= \frac{0.01(V + 55)}{1 - e^{-(V+55)/10}}, &
        \beta_n &= 0.125 e^{-(V+65)/80},

    written with ``exprel`` so that V = −40 or −55 mV gives no NaN in float32. Gates take the
    exact exponential step at the previous V, V an exponential-Euler step in the total
    conductance (:mod:`torchbrain.functional.hh`). A spike is an upward crossing of ``V_th``;
    there is no reset.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of neurons.
    ENa : quantity [voltage], default 50 mV
        Sodium reversal potential (plain numbers in mV).
    gNa : quantity [conductance], default 120 mS
        Maximal sodium conductance (plain numbers in nS: 120 mS = 1.2e8 nS).
    EK : quantity [voltage], default −77 mV
        Potassium reversal potential.
    gK : quantity [conductance], default 36 mS
        Maximal potassium conductance.
    EL : quantity [voltage], default −54.387 mV
        Leak reversal potential.
    gL : quantity [conductance], default 0.03 mS
        Leak conductance. This is the reference's default; Hodgkin & Huxley's value is
        0.3 mS/cm², for which ``EL = -54.387 mV`` puts the resting potential at exactly −65 mV.
        With 0.03 mS the cell rests near −70.7 mV and fires repetitively from about 3.5 µA; pass
        ``gL=0.3 * u.mS`` for the published model (repetitive firing from ≈ 6.3 µA, period
        ≈ 14.7 ms at 10 µA).
    V_th : quantity [voltage], default 20 mV
        Spike-detection threshold (upward crossing); non-zero.
    C : quantity [capacitance], default 1 µF
        Membrane capacitance (plain numbers in pF: 1 µF = 1e6 pF); must be positive.
    V_initializer : Initializer or quantity [voltage], default ``Uniform(-70 mV, -60 mV)``
        Initial membrane potential, evaluated at each ``init_state``/``reset_state``.
    m_initializer, h_initializer, n_initializer : Initializer or number, optional
        Initial gates; ``None`` (default) puts each at its steady state at the initial V.
    spk_fun : Surrogate, default ``ReluGrad()``
        Spike function of ``(V - V_th)/|V_th|``.
    name : str, optional
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    ``update(x)`` takes an external current (a quantity, or a tensor/number in pA) broadcastable
    to the State shape; for the default 1 µF cell, 10 µA (= 1e7 pA) corresponds to the classic
    10 µA/cm². Synaptic outputs registered by projections are evaluated at the V of the start of
    the step; their conductance enters the exponential-Euler step.

    States: ``V`` (mV), ``m``, ``h``, ``n`` and ``spike``, all ``HiddenState``.

    A ``dt`` above twice the fastest gate time constant at ``EL`` (0.75 ms with the defaults)
    misses or merges spikes (one spike at 1 ms where finer steps give fourteen): the first step at
    such a ``dt`` warns with :class:`~torchbrain.TimeStepWarning`.

    References
    ----------
    Hodgkin, A. L. & Huxley, A. F. (1952). A quantitative description of membrane current and its
    application to conduction and excitation in nerve. *J. Physiol.* 117, 500–544.

    Examples
    --------
    >>> import torchbrain as tb
    >>> from torchbrain import u
    >>> from torchbrain.neurons.hh import HH
    >>> n = HH(1, gL=0.3 * u.mS, V_initializer=tb.init.Constant(-65 * u.mV))
    >>> _ = tb.init_all_states(n)
    >>> with tb.environ.context(dt=0.025 * u.ms):
    ...     count = sum(float(n(10 * u.uA)) for _ in range(1600))  # 40 ms
    >>> count  # repetitive firing, period ≈ 14.7 ms
    3.0
    """

    def __init__(
        self,
        in_size,
        ENa=50.0 * u.mV,
        gNa=120.0 * u.mS,
        EK=-77.0 * u.mV,
        gK=36.0 * u.mS,
        EL=-54.387 * u.mV,
        gL=0.03 * u.mS,
        V_th=20.0 * u.mV,
        C=1.0 * u.uF,
        V_initializer=_V0_UNIFORM,
        m_initializer=None,
        h_initializer=None,
        n_initializer=None,
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
        self.ENa = reg("ENa", ENa, "mV", shape=shape)
        self.gNa = reg("gNa", gNa, "nS", shape=shape, nonnegative=True)
        self.EK = reg("EK", EK, "mV", shape=shape)
        self.gK = reg("gK", gK, "nS", shape=shape, nonnegative=True)
        self.EL = reg("EL", EL, "mV", shape=shape)
        self.gL = reg("gL", gL, "nS", shape=shape, nonnegative=True)
        self.C = reg("C", C, "pF", shape=shape, positive=True)
        self.m_initializer = _gate_initializer(self, "m_initializer", m_initializer)
        self.h_initializer = _gate_initializer(self, "h_initializer", h_initializer)
        self.n_initializer = _gate_initializer(self, "n_initializer", n_initializer)
        self.m = HiddenState(None)
        self.h = HiddenState(None)
        self.n = HiddenState(None)

    def init_state(self, batch_size=None):
        shape = self._init_V(batch_size)
        m, h, n = F.hh_steady_state(self.V)
        self._init_gate("m", self.m_initializer, m, shape)
        self._init_gate("h", self.h_initializer, h, shape)
        self._init_gate("n", self.n_initializer, n, shape)

    def _gate_rates_at_rest(self):
        return F.hh_rates(self.EL)

    def update(self, x=0.0):
        """Advance one step with external current ``x`` (pA); returns the spikes."""
        self._check_ready()
        current, delta = self._inputs(x)
        V_old = self.V
        self.V, self.m, self.h, self.n = F.hh_update(
            V_old, self.m, self.h, self.n, current, gNa=self.gNa, gK=self.gK, gL=self.gL,
            ENa=self.ENa, EK=self.EK, EL=self.EL, C=self.C, dt=self._dt(), delta=delta,
        )
        return self._finish(V_old)


class WangBuzsakiHH(_CrossingNeuron):
    r"""The Wang–Buzsáki (1996) fast-spiking interneuron, a modified Hodgkin–Huxley model.

    .. math::

        C \frac{dV}{dt} &= -g_\mathrm{Na} m_\infty^3(V)\, h\, (V - E_\mathrm{Na})
            - g_\mathrm{K} n^4 (V - E_\mathrm{K}) - g_L (V - E_L) + I(t), \\
        \frac{dh}{dt} &= \phi\,[\alpha_h(1 - h) - \beta_h h], \qquad
        \frac{dn}{dt} = \phi\,[\alpha_n(1 - n) - \beta_n n],

    with :math:`m_\infty = \alpha_m/(\alpha_m + \beta_m)` and

    .. math::

        \alpha_m &= \frac{0.1(V+35)}{1 - e^{-0.1(V+35)}}, & \beta_m &= 4 e^{-(V+60)/18}, \\
        \alpha_h &= 0.07 e^{-(V+58)/20}, & \beta_h &= \frac{1}{1 + e^{-0.1(V+28)}}, \\
        \alpha_n &= \frac{0.01(V+34)}{1 - e^{-0.1(V+34)}}, & \beta_n &= 0.125 e^{-(V+44)/80}.

    The reference (brainpy.state 2.9) has :math:`\alpha_n` ten times too large and never fires;
    this is the published rate. The model is class 1: it starts firing at an arbitrarily low rate
    near its rheobase (≈ 0.16 µA for the 1 µF cell).

    Parameters
    ----------
    in_size : int or tuple of int
    ENa : quantity [voltage], default 55 mV
    gNa : quantity [conductance], default 35 mS
    EK : quantity [voltage], default −90 mV
    gK : quantity [conductance], default 9 mS
    EL : quantity [voltage], default −65 mV
    gL : quantity [conductance], default 0.1 mS
    V_th : quantity [voltage], default 20 mV
        Spike-detection threshold (upward crossing); non-zero.
    phi : float, default 5
        Temperature factor of the h and n kinetics (dimensionless, positive).
    C : quantity [capacitance], default 1 µF
    V_initializer : Initializer or quantity [voltage], default ``Constant(-65 mV)``
    h_initializer : Initializer or number, default ``Constant(0.6)``
        ``None`` puts h at its steady state at the initial V.
    n_initializer : Initializer or number, default ``Constant(0.32)``
        ``None`` puts n at its steady state at the initial V.
    spk_fun, name, device, dtype
        As :class:`HH`. Plain numbers are read in mV, nS, pF.

    Notes
    -----
    ``update(x)`` takes a current (quantity, or pA); 1 µA = 1e6 pA is the paper's 1 µA/cm².
    States: ``V``, ``h``, ``n``, ``spike``.

    References
    ----------
    Wang, X.-J. & Buzsáki, G. (1996). Gamma oscillation by synaptic inhibition in a hippocampal
    interneuronal network model. *J. Neurosci.* 16(20), 6402–6413.
    """

    def __init__(
        self,
        in_size,
        ENa=55.0 * u.mV,
        gNa=35.0 * u.mS,
        EK=-90.0 * u.mV,
        gK=9.0 * u.mS,
        EL=-65.0 * u.mV,
        gL=0.1 * u.mS,
        V_th=20.0 * u.mV,
        phi=5.0,
        C=1.0 * u.uF,
        V_initializer=Constant(-65.0 * u.mV),
        h_initializer=Constant(0.6),
        n_initializer=Constant(0.32),
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
        self.ENa = reg("ENa", ENa, "mV", shape=shape)
        self.gNa = reg("gNa", gNa, "nS", shape=shape, nonnegative=True)
        self.EK = reg("EK", EK, "mV", shape=shape)
        self.gK = reg("gK", gK, "nS", shape=shape, nonnegative=True)
        self.EL = reg("EL", EL, "mV", shape=shape)
        self.gL = reg("gL", gL, "nS", shape=shape, nonnegative=True)
        self.phi = reg("phi", phi, "dimensionless", shape=shape, positive=True)
        self.C = reg("C", C, "pF", shape=shape, positive=True)
        self.h_initializer = _gate_initializer(self, "h_initializer", h_initializer)
        self.n_initializer = _gate_initializer(self, "n_initializer", n_initializer)
        self.h = HiddenState(None)
        self.n = HiddenState(None)

    def init_state(self, batch_size=None):
        shape = self._init_V(batch_size)
        h, n = F.wb_steady_state(self.V)
        self._init_gate("h", self.h_initializer, h, shape)
        self._init_gate("n", self.n_initializer, n, shape)

    def update(self, x=0.0):
        """Advance one step with external current ``x`` (pA); returns the spikes."""
        self._check_ready()
        current, delta = self._inputs(x)
        V_old = self.V
        self.V, self.h, self.n = F.wb_update(
            V_old, self.h, self.n, current, gNa=self.gNa, gK=self.gK, gL=self.gL, ENa=self.ENa,
            EK=self.EK, EL=self.EL, C=self.C, phi=self.phi, dt=self._dt(), delta=delta,
        )
        return self._finish(V_old)


class MorrisLecar(_CrossingNeuron):
    r"""The Morris–Lecar (1981) neuron.

    .. math::

        C \frac{dV}{dt} &= -g_\mathrm{Ca} M_\infty(V) (V - V_\mathrm{Ca})
            - g_\mathrm{K} W (V - V_\mathrm{K}) - g_\mathrm{leak} (V - V_\mathrm{leak}) + I(t), \\
        \frac{dW}{dt} &= \frac{W_\infty(V) - W}{\tau_W(V)},

    with :math:`M_\infty = \tfrac12[1 + \tanh((V - V_1)/V_2)]`,
    :math:`W_\infty = \tfrac12[1 + \tanh((V - V_3)/V_4)]` and
    :math:`\tau_W = 1/(\phi\cosh((V - V_3)/(2V_4)))`. W takes the exact exponential step at the
    previous V, V an exponential-Euler step in the total conductance. The defaults are the
    reference's (the class-2 set of Rinzel & Ermentrout, except ``V_Ca = 130 mV`` where they use
    120 mV): the cell starts firing at a non-zero rate (≈ 10 Hz) near 90 µA and goes into
    depolarisation block at a few hundred µA.

    Parameters
    ----------
    in_size : int or tuple of int
    V_Ca : quantity [voltage], default 130 mV
    g_Ca : quantity [conductance], default 4.4 mS
    V_K : quantity [voltage], default −84 mV
    g_K : quantity [conductance], default 8 mS
    V_leak : quantity [voltage], default −60 mV
    g_leak : quantity [conductance], default 2 mS
    C : quantity [capacitance], default 20 µF
    V1 : quantity [voltage], default −1.2 mV
        Half-activation of :math:`M_\infty`.
    V2 : quantity [voltage], default 18 mV
        Slope of :math:`M_\infty`; non-zero.
    V3 : quantity [voltage], default 2 mV
        Half-activation of :math:`W_\infty`.
    V4 : quantity [voltage], default 30 mV
        Slope of :math:`W_\infty`; non-zero.
    phi : quantity [rate], default 0.04 /ms
        Rate of the K activation; positive.
    V_th : quantity [voltage], default 10 mV
        Spike-detection threshold (upward crossing); non-zero.
    V_initializer : Initializer or quantity [voltage], default ``Uniform(-70 mV, -60 mV)``
    W_initializer : Initializer or number, default ``Constant(0.02)``
        ``None`` puts W at its steady state at the initial V.
    spk_fun, name, device, dtype
        As :class:`HH`. Plain numbers are read in mV, nS, pF, 1/ms.

    Notes
    -----
    ``update(x)`` takes a current (quantity, or pA): 100 µA = 1e8 pA. States: ``V``, ``W``,
    ``spike``.

    References
    ----------
    Morris, C. & Lecar, H. (1981). Voltage oscillations in the barnacle giant muscle fiber.
    *Biophys. J.* 35, 193–213.
    Rinzel, J. & Ermentrout, G. B. (1998). Analysis of neural excitability and oscillations.
    In *Methods in Neuronal Modeling*, 2nd ed., MIT Press.
    """

    def __init__(
        self,
        in_size,
        V_Ca=130.0 * u.mV,
        g_Ca=4.4 * u.mS,
        V_K=-84.0 * u.mV,
        g_K=8.0 * u.mS,
        V_leak=-60.0 * u.mV,
        g_leak=2.0 * u.mS,
        C=20.0 * u.uF,
        V1=-1.2 * u.mV,
        V2=18.0 * u.mV,
        V3=2.0 * u.mV,
        V4=30.0 * u.mV,
        phi=0.04 / u.ms,
        V_th=10.0 * u.mV,
        V_initializer=_V0_UNIFORM,
        W_initializer=Constant(0.02),
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
        self.V_Ca = reg("V_Ca", V_Ca, "mV", shape=shape)
        self.g_Ca = reg("g_Ca", g_Ca, "nS", shape=shape, nonnegative=True)
        self.V_K = reg("V_K", V_K, "mV", shape=shape)
        self.g_K = reg("g_K", g_K, "nS", shape=shape, nonnegative=True)
        self.V_leak = reg("V_leak", V_leak, "mV", shape=shape)
        self.g_leak = reg("g_leak", g_leak, "nS", shape=shape, nonnegative=True)
        self.C = reg("C", C, "pF", shape=shape, positive=True)
        self.V1 = reg("V1", V1, "mV", shape=shape)
        self.V2 = reg("V2", V2, "mV", shape=shape)
        self.V3 = reg("V3", V3, "mV", shape=shape)
        self.V4 = reg("V4", V4, "mV", shape=shape)
        self._check_nonzero("V2", self.V2, "it divides V - V1")
        self._check_nonzero("V4", self.V4, "it divides V - V3")
        self.phi = reg("phi", phi, "1/ms", shape=shape, positive=True)
        self.W_initializer = _gate_initializer(self, "W_initializer", W_initializer)
        self.W = HiddenState(None)

    def _rates(self, V):
        return F.morris_lecar_rates(V, V1=self.V1, V2=self.V2, V3=self.V3, V4=self.V4,
                                    phi=self.phi)

    def init_state(self, batch_size=None):
        shape = self._init_V(batch_size)
        _, W_inf, _ = self._rates(self.V)
        self._init_gate("W", self.W_initializer, W_inf, shape)

    def update(self, x=0.0):
        """Advance one step with external current ``x`` (pA); returns the spikes."""
        self._check_ready()
        current, delta = self._inputs(x)
        V_old = self.V
        self.V, self.W = F.morris_lecar_update(
            V_old, self.W, current, g_Ca=self.g_Ca, g_K=self.g_K, g_leak=self.g_leak,
            V_Ca=self.V_Ca, V_K=self.V_K, V_leak=self.V_leak, C=self.C, V1=self.V1, V2=self.V2,
            V3=self.V3, V4=self.V4, phi=self.phi, dt=self._dt(), delta=delta,
        )
        return self._finish(V_old)


class TraubMilesHH(_CrossingNeuron):
    r"""The Traub–Miles Hodgkin–Huxley neuron of the COBAHH benchmark (Brette et al. 2007, #3).

    .. math::

        C_m \frac{dV}{dt} &= -g_L (V - E_L) - \bar g_\mathrm{Na} m^3 h (V - E_\mathrm{Na})
            - \bar g_\mathrm{K} n^4 (V - E_\mathrm{K}) + I(t), \\
        \frac{dx}{dt} &= \alpha_x(V)(1 - x) - \beta_x(V)\,x, \quad x \in \{m, h, n\},

    with :math:`v = V - V_T` (mV) and rates in 1/ms

    .. math::

        \alpha_m &= \frac{0.32(13 - v)}{e^{(13 - v)/4} - 1}, &
        \beta_m &= \frac{0.28(v - 40)}{e^{(v - 40)/5} - 1}, \\
        \alpha_h &= 0.128 e^{(17 - v)/18}, &
        \beta_h &= \frac{4}{1 + e^{(40 - v)/5}}, \\
        \alpha_n &= \frac{0.032(15 - v)}{e^{(15 - v)/5} - 1}, &
        \beta_n &= 0.5 e^{(10 - v)/40},

    the 0/0 points written with ``exprel`` (float32 gives no NaN). ``I`` includes the synaptic
    outputs registered by projections (``sum_current_inputs``): a COBA conductance enters the
    exponential-Euler step of V. A spike is an upward crossing of ``V_th``; there is no reset.

    Parameters
    ----------
    in_size : int or tuple of int
    C : quantity [capacitance], default 200 pF
        Membrane capacitance (1 µF/cm² × 20 000 µm²).
    gL : quantity [conductance], default 10 nS
    gNa : quantity [conductance], default 20 µS
    gK : quantity [conductance], default 6 µS
        Delayed-rectifier potassium conductance (:math:`g_{Kd}`).
    EL : quantity [voltage], default −60 mV
    EK : quantity [voltage], default −90 mV
    ENa : quantity [voltage], default 50 mV
    V_T : quantity [voltage], default −63 mV
        Offset of the rate functions (sets the firing threshold).
    V_th : quantity [voltage], default −20 mV
        Spike-detection threshold (upward crossing); non-zero.
    V_initializer : Initializer or quantity [voltage], default ``Normal(-65 mV, 5 mV)``
        The benchmark's ``E_L + (5 randn - 5) mV``.
    m_initializer, h_initializer, n_initializer : Initializer or number, optional
        ``None`` (default) puts each gate at its steady state at the initial V (the Brian2 script
        starts them at 0).
    spk_fun, name, device, dtype
        As :class:`HH`. Plain numbers are read in mV, nS, pF, pA.

    Notes
    -----
    ``update(x)`` takes a current (quantity, or pA). Without input the cell fires slowly on its
    own (≈ 13 Hz), since ``E_L`` lies above the rate offset ``V_T``. A ``dt`` above twice the
    fastest gate time constant at ``EL`` (0.19 ms with the defaults; the benchmark runs at
    0.1 ms) warns with :class:`~torchbrain.TimeStepWarning`.

    References
    ----------
    Traub, R. D. & Miles, R. (1991). *Neuronal Networks of the Hippocampus*. Cambridge Univ. Press.
    Brette, R. et al. (2007). Simulation of networks of spiking neurons: a review of tools and
    strategies. *J. Comput. Neurosci.* 23, 349–398 (benchmark 3, COBAHH).
    """

    def __init__(
        self,
        in_size,
        C=200.0 * u.pF,
        gL=10.0 * u.nS,
        gNa=20.0 * u.uS,
        gK=6.0 * u.uS,
        EL=-60.0 * u.mV,
        EK=-90.0 * u.mV,
        ENa=50.0 * u.mV,
        V_T=-63.0 * u.mV,
        V_th=-20.0 * u.mV,
        V_initializer=_V0_COBAHH,
        m_initializer=None,
        h_initializer=None,
        n_initializer=None,
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
        self.C = reg("C", C, "pF", shape=shape, positive=True)
        self.gL = reg("gL", gL, "nS", shape=shape, nonnegative=True)
        self.gNa = reg("gNa", gNa, "nS", shape=shape, nonnegative=True)
        self.gK = reg("gK", gK, "nS", shape=shape, nonnegative=True)
        self.EL = reg("EL", EL, "mV", shape=shape)
        self.EK = reg("EK", EK, "mV", shape=shape)
        self.ENa = reg("ENa", ENa, "mV", shape=shape)
        self.V_T = reg("V_T", V_T, "mV", shape=shape)
        self.m_initializer = _gate_initializer(self, "m_initializer", m_initializer)
        self.h_initializer = _gate_initializer(self, "h_initializer", h_initializer)
        self.n_initializer = _gate_initializer(self, "n_initializer", n_initializer)
        self.m = HiddenState(None)
        self.h = HiddenState(None)
        self.n = HiddenState(None)

    def init_state(self, batch_size=None):
        shape = self._init_V(batch_size)
        m, h, n = F.traub_miles_steady_state(self.V, self.V_T)
        self._init_gate("m", self.m_initializer, m, shape)
        self._init_gate("h", self.h_initializer, h, shape)
        self._init_gate("n", self.n_initializer, n, shape)

    def _gate_rates_at_rest(self):
        return F.traub_miles_rates(self.EL, self.V_T)

    def update(self, x=0.0):
        """Advance one step with external current ``x`` (pA); returns the spikes."""
        self._check_ready()
        current, delta = self._inputs(x)
        V_old = self.V
        self.V, self.m, self.h, self.n = F.traub_miles_update(
            V_old, self.m, self.h, self.n, current, gNa=self.gNa, gK=self.gK, gL=self.gL,
            ENa=self.ENa, EK=self.EK, EL=self.EL, V_T=self.V_T, C=self.C, dt=self._dt(),
            delta=delta,
        )
        return self._finish(V_old)


def _gate_initializer(module: Neuron, name: str, value):
    """``None`` (steady state) or an initializer/value of a dimensionless gate."""
    return None if value is None else module._store_initializer(name, value, "dimensionless")
