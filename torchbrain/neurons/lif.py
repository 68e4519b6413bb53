r"""The leaky integrate-and-fire family: ``IF``, ``LIF``, ``LIFRef``, ``ALIF``.

Equations, defaults and the lazy reset follow brainpy.state 2.9 (see
:mod:`torchbrain.functional.lif`). Differences from the reference, on purpose:

* ``V_th <= V_reset`` raises an error (the reference silently never spikes);
* the membrane resistance can be given as ``R`` or through a capacitance ``C`` (``R = tau/C``).

Units: plain numbers are read in ms, mV, pA, GΩ, pF.
"""

from __future__ import annotations

import torch

from ..functional import lif as F
from ..init import Constant
from ..state import HiddenState
from ..units import to_tensor, u
from ._mixins import _Refractory
from .base import Neuron

__all__ = ["IF", "LIF", "LIFRef", "ALIF"]


class _LeakyBase(Neuron):
    """Shared parameters of the family: tau, R (or C), V_initializer."""

    def __init__(self, in_size, *, tau, R, C, V_initializer, **kw):
        super().__init__(in_size, **kw)
        shape = self.varshape
        self.tau = self._register_parameter_with_unit("tau", tau, "ms", shape=shape, positive=True)
        if C is not None:
            if R is not None:
                raise ValueError(
                    f"{self._name()}: give the membrane either 'R' or 'C' (R = tau/C), not both"
                )
            C = to_tensor(C, "pF", owner=self._name(), name="C", **self._factory_like_states())
            self._check_values("C", C, "pF", positive=True)
            R = self.tau / C
        elif R is None:
            R = 1.0 * u.ohm
        self.R = self._register_parameter_with_unit("R", R, "gigaohm", shape=shape, positive=True)
        self.V_initializer = self._store_initializer("V_initializer", V_initializer, "mV")

    def _repr_config(self):
        return {**super()._repr_config(), "V_initializer": self.V_initializer}

    def _init_V(self, batch_size):
        shape = self._state_shape(batch_size)
        self.V = HiddenState(self._initial_value(self.V_initializer, "mV", shape, "V"))
        return shape

    def _inputs(self, x):
        """The step's inputs for the functional core: a function ``V -> (current in pA,
        conductance in nS)`` summing ``x`` and every synaptic output, and the sum of jumps."""
        x = self._input_tensor(x, "pA")
        return (lambda V: self.sum_current_inputs(x, V)), self.sum_delta_inputs(0.0)


class LIF(_LeakyBase):
    r"""Leaky integrate-and-fire neuron.

    .. math::

        \tau \frac{dV}{dt} = -(V - V_\mathrm{rest}) + R\,I(t), \qquad
        \text{spike when } V \ge V_\mathrm{th}

    integrated with exponential Euler (exact for current and conductance inputs). The spike is
    ``spk_fun((V - V_th)/(V_th - V_reset))``; the reset is applied lazily at the start of the next
    step (``'soft'``: subtract ``V_th - V_reset``; ``'hard'``: set to ``V_reset``).

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of neurons.
    R : quantity [resistance], default 1 Ω
        Membrane resistance (plain numbers in GΩ). Exclusive with ``C``.
    C : quantity [capacitance], optional
        Membrane capacitance (plain numbers in pF); sets ``R = tau / C``.
    tau : quantity [time], default 5 ms
        Membrane time constant (plain numbers in ms); must be positive.
    V_th : quantity [voltage], default 1 mV
        Spike threshold (plain numbers in mV); must be above ``V_reset``.
    V_reset : quantity [voltage], default 0 mV
        Reset potential.
    V_rest : quantity [voltage], default 0 mV
        Resting potential.
    V_initializer : Initializer or quantity [voltage], default ``Constant(0 mV)``
        Initial membrane potential, evaluated at each ``init_state``/``reset_state``.
    spk_fun : Surrogate, default ``ReluGrad()``
        Spike function (Heaviside forward, surrogate gradient backward).
    spk_reset : {'soft', 'hard'}, default 'soft'
    name : str, optional
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    Input to ``update(x)``: a current (quantity, or a tensor/number in pA) broadcastable to the
    State shape. With the default R = 1 Ω, ``20 mA`` drives V by ``R I = 20 mV``.

    References
    ----------
    Gerstner, W., Kistler, W. M., Naud, R. & Paninski, L. (2014). *Neuronal Dynamics*, ch. 1.3.

    Examples
    --------
    >>> import torchbrain as tb
    >>> from torchbrain import u
    >>> n = tb.LIF(3, tau=10 * u.ms, V_th=-50 * u.mV, V_rest=-65 * u.mV, V_reset=-65 * u.mV,
    ...            V_initializer=tb.init.Constant(-65 * u.mV))
    >>> _ = tb.init_all_states(n)
    >>> with tb.environ.context(dt=0.1 * u.ms):
    ...     spikes = tb.for_loop(lambda t: n(20 * u.mA), tb.time_range(100 * u.ms))
    >>> int(spikes[:, 0].sum())
    7
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=5.0 * u.ms,
        V_th=1.0 * u.mV,
        V_reset=0.0 * u.mV,
        V_rest=0.0 * u.mV,
        V_initializer=Constant(0.0 * u.mV),
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
        self.V_th = self._register_parameter_with_unit("V_th", V_th, "mV", shape=shape)
        self.V_reset = self._register_parameter_with_unit("V_reset", V_reset, "mV", shape=shape)
        self.V_rest = self._register_parameter_with_unit("V_rest", V_rest, "mV", shape=shape)
        self._check_threshold_above_reset(self.V_th, self.V_reset)
        self.V = HiddenState(None)

    def init_state(self, batch_size=None):
        self._init_V(batch_size)

    def get_spike(self, V: torch.Tensor | None = None) -> torch.Tensor:
        """The spike of ``V`` (default: the State): Heaviside forward, surrogate backward."""
        V = self._state_V() if V is None else V
        return self.spk_fun(F.lif_spike_input(V, self.V_th, self.V_reset))

    def update(self, x=0.0):
        """Advance one step with external current ``x``; returns the spikes of the new V."""
        self._check_ready()
        current, delta = self._inputs(x)
        self.V = F.lif_update(
            self.V, current, tau=self.tau, V_th=self.V_th, V_reset=self.V_reset,
            V_rest=self.V_rest, R=self.R, dt=self._dt(), spk_fun=self.spk_fun,
            hard_reset=self.hard_reset, delta=delta,
        )
        return self.get_spike()


class LIFRef(_Refractory, LIF):
    r"""Leaky integrate-and-fire neuron with an absolute refractory period.

    .. math::

        \tau \frac{dV}{dt} = -(V - V_\mathrm{rest}) + R\,I(t)
        \quad \text{unless } t - t_\mathrm{last\,spike} < \tau_\mathrm{ref},

    during which V stays at its post-reset value. A step that ends with ``V >= V_th`` records the
    current time ``t`` (read from ``tb.environ``; it must be set, e.g. by
    ``with tb.environ.context(t=t)``) as the last spike time.

    Parameters
    ----------
    tau_ref : quantity [time], default 5 ms
        Refractory period (plain numbers in ms); must be >= 0.
    ref_var : bool, default False
        Also keep a boolean ``refractory`` HiddenState (refractory in this step, or just spiked).
    other parameters
        As :class:`LIF`.

    Notes
    -----
    The last spike time is a ``ShortTermState`` initialised to -1e7 ms (never spiked).
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=5.0 * u.ms,
        tau_ref=5.0 * u.ms,
        V_th=1.0 * u.mV,
        V_reset=0.0 * u.mV,
        V_rest=0.0 * u.mV,
        V_initializer=Constant(0.0 * u.mV),
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
            in_size, R=R, tau=tau, V_th=V_th, V_reset=V_reset, V_rest=V_rest,
            V_initializer=V_initializer, spk_fun=spk_fun, spk_reset=spk_reset, name=name, C=C,
            device=device, dtype=dtype,
        )
        self._init_refractory(tau_ref, ref_var)

    def _repr_config(self):
        return {**super()._repr_config(), **self._repr_refractory()}

    def init_state(self, batch_size=None):
        self._init_refractory_states(self._init_V(batch_size))

    def update(self, x=0.0):
        self._check_ready()
        current, delta = self._inputs(x)
        t, last = self._t(), self.last_spike_time
        self.V, self.last_spike_time = F.lifref_update(
            self.V, last, current, t, tau=self.tau, tau_ref=self.tau_ref, V_th=self.V_th,
            V_reset=self.V_reset, V_rest=self.V_rest, R=self.R, dt=self._dt(),
            spk_fun=self.spk_fun, hard_reset=self.hard_reset, delta=delta,
        )
        self._note_refractory(t, last, self.V, self.V_th)
        return self.get_spike()


class ALIF(LIF):
    r"""Adaptive leaky integrate-and-fire neuron (threshold adaptation).

    .. math::

        \tau \frac{dV}{dt} = -(V - V_\mathrm{rest}) + R\,I(t), \qquad
        \tau_a \frac{da}{dt} = -a, \qquad
        \text{spike when } V \ge V_\mathrm{th} + \beta a, \quad a \leftarrow a + 1

    Parameters
    ----------
    tau_a : quantity [time], default 100 ms
        Adaptation time constant.
    beta : quantity [voltage], default 0.1 mV
        Threshold increase per unit of adaptation.
    other parameters
        As :class:`LIF` (``a`` starts at 0; ``a_initializer`` sets it otherwise).

    References
    ----------
    Bellec, G. et al. (2018). Long short-term memory and learning-to-learn in networks of spiking
    neurons. NeurIPS.
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=5.0 * u.ms,
        tau_a=100.0 * u.ms,
        V_th=1.0 * u.mV,
        V_reset=0.0 * u.mV,
        V_rest=0.0 * u.mV,
        beta=0.1 * u.mV,
        spk_fun=None,
        spk_reset: str = "soft",
        V_initializer=Constant(0.0 * u.mV),
        a_initializer=Constant(0.0),
        name: str | None = None,
        *,
        C=None,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_size, R=R, tau=tau, V_th=V_th, V_reset=V_reset, V_rest=V_rest,
            V_initializer=V_initializer, spk_fun=spk_fun, spk_reset=spk_reset, name=name, C=C,
            device=device, dtype=dtype,
        )
        shape = self.varshape
        self.tau_a = self._register_parameter_with_unit("tau_a", tau_a, "ms", shape=shape,
                                                        positive=True)
        self.beta = self._register_parameter_with_unit("beta", beta, "mV", shape=shape)
        self.a_initializer = self._store_initializer("a_initializer", a_initializer,
                                                     "dimensionless")
        self.a = HiddenState(None)

    def init_state(self, batch_size=None):
        shape = self._init_V(batch_size)
        self.a = HiddenState(self._initial_value(self.a_initializer, "dimensionless", shape, "a"))

    def get_spike(self, V=None, a=None):
        V = self._state_V() if V is None else V
        a = self.a if a is None else a
        return self.spk_fun(F.alif_spike_input(V, a, self.V_th, self.V_reset, self.beta))

    def update(self, x=0.0):
        self._check_ready()
        current, delta = self._inputs(x)
        self.V, self.a = F.alif_update(
            self.V, self.a, current, tau=self.tau, tau_a=self.tau_a, beta=self.beta,
            V_th=self.V_th, V_reset=self.V_reset, V_rest=self.V_rest, R=self.R, dt=self._dt(),
            spk_fun=self.spk_fun, hard_reset=self.hard_reset, delta=delta,
        )
        return self.get_spike()


class IF(_LeakyBase):
    r"""The reference's integrate-and-fire neuron (leak towards 0, reset to 0).

    .. math::

        \tau \frac{dV}{dt} = -V + R\,I(t), \qquad \text{spike when } V \ge V_\mathrm{th},
        \quad V \leftarrow V - V_\mathrm{th} \;(\text{soft}) \text{ or } 0 \;(\text{hard})

    The spike is ``spk_fun((V - V_th)/V_th)``, so ``V_th`` must be positive (the reference flips
    the sign for a negative threshold and never spikes; here it is an error).

    Parameters
    ----------
    R : quantity [resistance], default 1 Ω
    tau : quantity [time], default 5 ms
    V_th : quantity [voltage], default 1 mV; must be > 0
    V_initializer : Initializer or quantity [voltage], default ``Constant(0 mV)``
    spk_fun, spk_reset, name, device, dtype, C
        As :class:`LIF`.
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=5.0 * u.ms,
        V_th=1.0 * u.mV,
        V_initializer=Constant(0.0 * u.mV),
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
        self.V_th = self._register_parameter_with_unit("V_th", V_th, "mV", shape=self.varshape)
        self._check_threshold_above_reset(self.V_th, torch.zeros(()), "the reset value 0 mV")
        self.V = HiddenState(None)

    def init_state(self, batch_size=None):
        self._init_V(batch_size)

    def get_spike(self, V=None):
        V = self._state_V() if V is None else V
        return self.spk_fun(F.if_spike_input(V, self.V_th))

    def update(self, x=0.0):
        self._check_ready()
        current, delta = self._inputs(x)
        self.V = F.if_update(
            self.V, current, tau=self.tau, V_th=self.V_th, R=self.R, dt=self._dt(),
            spk_fun=self.spk_fun, hard_reset=self.hard_reset, delta=delta,
        )
        return self.get_spike()
