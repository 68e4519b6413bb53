r"""The Izhikevich (2003) neuron: ``Izhikevich``, ``IzhikevichRef``.

Equations, defaults and the lazy hard reset follow brainpy.state 2.9 (see
:mod:`torchbrain.functional.izhikevich`). Differences from the reference, on purpose:

* the spike is ``V >= V_th`` whatever the sign of ``V_th`` (the reference's ``(V - V_th)/V_th``
  never spikes for a negative threshold), and ``V_th <= c`` is an error;
* ``spk_reset='soft'`` is an error (the reference accepts it and resets hard anyway): the
  quadratic upstroke can overshoot ``V_th`` by more than ``V_th - c``, so subtracting ``V_th - c``
  would leave V above threshold and run away, like the reference's soft-reset ExpIF;
* ``u_initializer=None`` starts u at ``b * V0`` (Izhikevich's own initialisation);

The u step of both classes reads the already-integrated V of the step, as the reference's do
(its ``Izhikevich``'s ``du`` closure reads ``self.V`` after the V update, its ``IzhikevichRef``
passes the new V explicitly); reading the start-of-step V instead shortens every interval of a
regular-spiking cell by about 0.1 ms.

Units: V, c and V_th in mV; u, d and the input current in mV/ms (the model's normalised units:
the membrane equation has no capacitance); a and b in 1/ms. Plain numbers are read in these.
"""

from __future__ import annotations

import torch

from ..functional import izhikevich as F
from ..init import Constant
from ..state import HiddenState, ShortTermState
from ..units import u
from .base import Neuron

__all__ = ["Izhikevich", "IzhikevichRef"]


class Izhikevich(Neuron):
    r"""The Izhikevich (2003) simple spiking neuron.

    .. math::

        \frac{dV}{dt} &= 0.04 V^2 + 5 V + 140 - u + I(t), \\
        \frac{du}{dt} &= a\,(b V - u), \\
        \text{if } V \ge V_\mathrm{th}: &\quad V \leftarrow c, \quad u \leftarrow u + d.

    V takes an exponential-Euler step with Jacobian :math:`0.08V + 5`, then u the exact step of
    its linear ODE at that new V (the reference's order); the reset is applied lazily at the
    start of the next step.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of neurons.
    a : quantity [rate], default 0.02 /ms
        Rate of the recovery variable (plain numbers in 1/ms); must be >= 0.
    b : quantity [rate], default 0.2 /ms
        Sensitivity of u to V (the reference's unit: u is in mV/ms, so b·V is too).
    c : quantity [voltage], default −65 mV
        Reset potential; must be below ``V_th``.
    d : quantity [mV/ms], default 8 mV/ms
        Jump of u at each spike.
    V_th : quantity [voltage], default 30 mV
        Spike cut-off: a spike is emitted when ``V >= V_th``.
    V_initializer : Initializer or quantity [voltage], default ``Constant(-65 mV)``
    u_initializer : Initializer or quantity [mV/ms], default ``Constant(0 mV/ms)``
        ``None`` starts u at ``b * V`` of the initial V (as in Izhikevich's code).
    spk_fun : Surrogate, default ``ReluGrad()``
        Spike function of ``(V - V_th)/|V_th|``.
    spk_reset : {'hard'}, default 'hard'
        V is set to ``c`` exactly (no gradient through the reset amount) and ``d`` is added to u
        (with the surrogate gradient through the spike). ``'soft'`` is rejected (see the module
        docstring).
    name : str, optional
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    ``update(x)`` takes the input in mV/ms (a quantity in mV/ms, or a plain number/tensor), the
    paper's ``I``: ``I = 10`` drives the regular-spiking cell (a, b, c, d = 0.02, 0.2, −65, 8) at
    ≈ 22 Hz. Synaptic outputs registered by projections are added as they are, read in mV/ms
    (as the reference does; the model has no capacitance to convert a current in pA).

    Firing patterns at I = 10 (Izhikevich 2003, Fig. 2): regular spiking (0.02, 0.2, −65, 8) with
    spike-frequency adaptation, fast spiking (0.1, 0.2, −65, 2) at a high constant rate,
    chattering (0.02, 0.2, −50, 2) in high-frequency bursts, intrinsically bursting
    (0.02, 0.2, −55, 4).

    References
    ----------
    Izhikevich, E. M. (2003). Simple model of spiking neurons. *IEEE Trans. Neural Netw.* 14(6),
    1569–1572.
    Izhikevich, E. M. (2004). Which model to use for cortical spiking neurons? *IEEE Trans.
    Neural Netw.* 15(5), 1063–1070.

    Examples
    --------
    >>> import torchbrain as tb
    >>> from torchbrain import u
    >>> from torchbrain.neurons.izhikevich import Izhikevich
    >>> n = Izhikevich(1)
    >>> _ = tb.init_all_states(n)
    >>> with tb.environ.context(dt=0.1 * u.ms):
    ...     count = sum(float(n(10 * u.mV / u.ms)) for _ in range(2000))  # 200 ms
    >>> count  # a regular train (22 spikes in a full second, see Notes)
    4.0
    """

    def __init__(
        self,
        in_size,
        a=0.02 / u.ms,
        b=0.2 / u.ms,
        c=-65.0 * u.mV,
        d=8.0 * u.mV / u.ms,
        V_th=30.0 * u.mV,
        V_initializer=Constant(-65.0 * u.mV),
        u_initializer=Constant(0.0 * u.mV / u.ms),
        spk_fun=None,
        spk_reset: str = "hard",
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, spk_fun=spk_fun, spk_reset=spk_reset, name=name, device=device,
                         dtype=dtype)
        if spk_reset != "hard":
            raise ValueError(
                f"{self._name()}: parameter 'spk_reset' must be 'hard', got {spk_reset!r} (a soft "
                "reset subtracts V_th - c, which does not bring an overshooting V below threshold)"
            )
        reg = self._register_parameter_with_unit
        shape = self.varshape
        self.a = reg("a", a, "1/ms", shape=shape, nonnegative=True)
        self.b = reg("b", b, "1/ms", shape=shape)
        self.c = reg("c", c, "mV", shape=shape)
        self.d = reg("d", d, "mV/ms", shape=shape)
        self.V_th = reg("V_th", V_th, "mV", shape=shape)
        self._check_threshold_above_reset(self.V_th, self.c, "c")
        self.V_initializer = self._store_initializer("V_initializer", V_initializer, "mV")
        self.u_initializer = None if u_initializer is None else self._store_initializer(
            "u_initializer", u_initializer, "mV/ms")
        self.V = HiddenState(None)
        self.u = HiddenState(None)

    def _repr_config(self):
        return {**super()._repr_config(), "V_initializer": self.V_initializer,
                "u_initializer": self.u_initializer}

    def _init_Vu(self, batch_size):
        shape = self._state_shape(batch_size)
        V = self._initial_value(self.V_initializer, "mV", shape, "V")
        if self.u_initializer is None:
            u0 = (self.b * V).detach().expand(shape).clone()
        else:
            u0 = self._initial_value(self.u_initializer, "mV/ms", shape, "u")
        self.V = HiddenState(V)
        self.u = HiddenState(u0)
        return shape

    def init_state(self, batch_size=None):
        self._init_Vu(batch_size)

    def get_spike(self, V: torch.Tensor | None = None) -> torch.Tensor:
        """The spike of ``V`` (default: the State): 1 where ``V >= V_th``, surrogate backward."""
        V = self._state_V() if V is None else V
        return self.spk_fun(F.izhikevich_spike_input(V, self.V_th))

    def _inputs(self, x):
        x = self._input_tensor(x, "mV/ms")
        return (lambda V: self.sum_current_inputs(x, V)), self.sum_delta_inputs(0.0)

    def update(self, x=0.0):
        """Advance one step with input ``x`` (mV/ms); returns the spikes of the new V."""
        self._check_ready()
        current, delta = self._inputs(x)
        self.V, self.u = F.izhikevich_update(
            self.V, self.u, current, a=self.a, b=self.b, c=self.c, d=self.d, V_th=self.V_th,
            dt=self._dt(), spk_fun=self.spk_fun, hard_reset=self.hard_reset, delta=delta,
        )
        return self.get_spike()


class IzhikevichRef(Izhikevich):
    r"""The Izhikevich neuron with an absolute refractory period.

    .. math::

        \frac{dV}{dt} = 0.04 V^2 + 5 V + 140 - u + I(t), \quad
        \frac{du}{dt} = a\,(b V - u)
        \quad \text{unless } t - t_\mathrm{last\,spike} < \tau_\mathrm{ref},

    during which V and u stay at their post-reset values. A step that ends with ``V >= V_th``
    records the current time ``t`` (read from ``tb.environ``; it must be set, e.g. by
    ``with tb.environ.context(t=t)``) as the last spike time.

    Parameters
    ----------
    tau_ref : quantity [time], default 0 ms
        Refractory period (plain numbers in ms); must be >= 0.
    other parameters
        As :class:`Izhikevich`.

    Notes
    -----
    The last spike time is a ``ShortTermState`` initialised to −1e7 ms (never spiked).
    """

    def __init__(
        self,
        in_size,
        a=0.02 / u.ms,
        b=0.2 / u.ms,
        c=-65.0 * u.mV,
        d=8.0 * u.mV / u.ms,
        V_th=30.0 * u.mV,
        tau_ref=0.0 * u.ms,
        V_initializer=Constant(-65.0 * u.mV),
        u_initializer=Constant(0.0 * u.mV / u.ms),
        spk_fun=None,
        spk_reset: str = "hard",
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_size, a=a, b=b, c=c, d=d, V_th=V_th, V_initializer=V_initializer,
            u_initializer=u_initializer, spk_fun=spk_fun, spk_reset=spk_reset, name=name,
            device=device, dtype=dtype,
        )
        self.tau_ref = self._register_parameter_with_unit(
            "tau_ref", tau_ref, "ms", shape=self.varshape, nonnegative=True
        )
        self.last_spike_time = ShortTermState(None)

    def init_state(self, batch_size=None):
        shape = self._init_Vu(batch_size)
        self.last_spike_time = ShortTermState(self._never_spiked(shape))

    def update(self, x=0.0):
        self._check_ready()
        current, delta = self._inputs(x)
        self.V, self.u, self.last_spike_time = F.izhikevichref_update(
            self.V, self.u, self.last_spike_time, current, self._t(), a=self.a, b=self.b,
            c=self.c, d=self.d, V_th=self.V_th, tau_ref=self.tau_ref, dt=self._dt(),
            spk_fun=self.spk_fun, hard_reset=self.hard_reset, delta=delta,
        )
        return self.get_spike()
