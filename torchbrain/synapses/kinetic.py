r"""Kinetic receptor synapses: ``AMPA``, ``GABAa`` and ``NMDA`` (alias ``BioNMDA``).

These follow Destexhe, Mainen & Sejnowski (1994): a presynaptic spike releases a square pulse of
transmitter of concentration ``T`` lasting ``T_dur``, which drives the open fraction of the
receptors. They are nonlinear in the spikes (the pulse saturates), so they are **not** AlignPost
synapses: size them by the presynaptic population and update them with its spikes
(``syn(pre_spike)``), then map the open fraction through a connectivity whose weights carry the
maximal conductance (AlignPre).

Each update reads the current time ``t`` from the environment
(``with tb.environ.context(dt=..., t=...)``).

Units: plain numbers are read in ms, 1/ms, 1/(ms·mM) and mM. The open fractions ``g`` and ``x``
are dimensionless.
"""

from __future__ import annotations

import torch

from ..functional import synapses as F
from ..init import ZeroInit
from ..state import HiddenState, ShortTermState
from ..units import u
from .base import Synapse

__all__ = ["AMPA", "GABAa", "NMDA", "BioNMDA"]

_NO_SPIKE_YET = -1e7  # ms: far enough in the past that no pulse is active at t >= 0
_FRACTION = ("dimensionless",)


class _Kinetic(Synapse):
    """Shared pieces: the transmitter pulse parameters and the spike-arrival State."""

    def _pulse_parameters(self, T, T_dur):
        shape = self.varshape
        self.T = self._register_parameter_with_unit("T", T, "mM", shape=shape, nonnegative=True)
        self.T_dur = self._positive_time("T_dur", T_dur)

    def _rate(self, name, value, unit, positive):
        return self._register_parameter_with_unit(
            name, value, unit, shape=self.varshape, positive=positive, nonnegative=not positive
        )

    def _init_arrival(self, shape):
        self.spike_arrival_time = ShortTermState(
            torch.full(shape, _NO_SPIKE_YET, **self._factory_like_states())
        )

    def _fraction(self, initializer, shape, name):
        return self._initial_value(initializer, shape, name, kinds=_FRACTION)


class AMPA(_Kinetic):
    r"""AMPA receptor (first-order kinetic scheme).

    .. math::

        \frac{dg}{dt} = \alpha\,[T](t)\,(1 - g) - \beta g, \qquad
        [T](t) = T \;\text{ while }\; t - t_\mathrm{spike} < T_\mathrm{dur}, \text{ else } 0

    ``g`` is the open fraction of the receptors. Within a step :math:`[T]` is constant and the
    equation is linear, so the step is exact:
    :math:`g \leftarrow g_\infty + (g - g_\infty) e^{-(\alpha[T] + \beta)\Delta t}`,
    :math:`g_\infty = \alpha[T]/(\alpha[T] + \beta)`. A spike opens the pulse in its own step.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of synapses (usually the presynaptic population).
    alpha : quantity [1/(time·concentration)], default 0.98 /(ms·mM)
        Binding rate (plain numbers in 1/(ms·mM)); must be >= 0.
    beta : quantity [1/time], default 0.18 /ms
        Unbinding rate (plain numbers in 1/ms); must be positive.
    T : quantity [concentration], default 0.5 mM
        Transmitter concentration during the pulse (plain numbers in mM).
    T_dur : quantity [time], default 0.5 ms
        Pulse duration (plain numbers in ms); must be positive.
    g_initializer : Initializer or float, default ``ZeroInit()``
        Initial open fraction (dimensionless).
    name, device, dtype
        As :class:`~torchbrain.synapses.expon.Expon`.

    Attributes
    ----------
    g : HiddenState
        Open fraction (the output).
    spike_arrival_time : ShortTermState
        Time of the last presynaptic spike (ms), initially -1e7 ms.

    Notes
    -----
    Same equations and defaults as ``brainpy.state.AMPA``. Differences, on purpose:

    * ``g`` is dimensionless (the reference stores the fraction as a conductance, "1 mS" meaning
      fully open); the maximal conductance belongs to the projection's weight;
    * the pulse window selects the steps with :math:`t - t_s < T_\mathrm{dur}` robustly against
      the rounding of ``t`` (see :func:`torchbrain.functional.synapses.transmitter_pulse`);
    * any nonzero spike value is an event, as in the reference, but the gradient of the spike
      passes straight through the pulse of the spike's own step, so the synapse can sit behind
      surrogate spikes in a trained network.

    References
    ----------
    Destexhe, A., Mainen, Z. F. & Sejnowski, T. J. (1994). Synthesis of models for excitable
    membranes, synaptic transmission and neuromodulation using a common kinetic formalism.
    *J. Comput. Neurosci.* 1(3), 195–230.
    """

    def __init__(
        self,
        in_size,
        alpha=0.98 / (u.ms * u.mM),
        beta=0.18 / u.ms,
        T=0.5 * u.mM,
        T_dur=0.5 * u.ms,
        g_initializer=ZeroInit(),
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        self.alpha = self._rate("alpha", alpha, "1/(ms*mM)", positive=False)
        self.beta = self._rate("beta", beta, "1/ms", positive=True)
        self._pulse_parameters(T, T_dur)
        self.g_initializer = self._store_initializer("g_initializer", g_initializer, _FRACTION)
        self.g = HiddenState(None)
        self.spike_arrival_time = ShortTermState(None)

    def _repr_config(self):
        return {**super()._repr_config(), "g_initializer": self.g_initializer}

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        self.g = HiddenState(self._fraction(self.g_initializer, shape, "g"))
        self._init_arrival(shape)

    def update(self, pre_spike):
        """Advance by one step given the presynaptic spikes; return the open fraction ``g``."""
        self._check_ready()
        spike = self._spike_input(pre_spike)
        self.g, self.spike_arrival_time = F.ampa_step(
            self.g, self.spike_arrival_time, spike, self._t(), alpha=self.alpha, beta=self.beta,
            T=self.T, T_dur=self.T_dur, dt=self._dt(),
        )
        return self.g


class GABAa(AMPA):
    r"""GABA\ :sub:`A` receptor: the AMPA scheme with slower binding and a longer, stronger pulse.

    .. math::

        \frac{dg}{dt} = \alpha\,[T](t)\,(1 - g) - \beta g

    Parameters
    ----------
    alpha : quantity [1/(time·concentration)], default 0.53 /(ms·mM)
    beta : quantity [1/time], default 0.18 /ms
    T : quantity [concentration], default 1 mM
    T_dur : quantity [time], default 1 ms
    other parameters
        As :class:`AMPA`.

    References
    ----------
    Destexhe, A., Mainen, Z. F. & Sejnowski, T. J. (1994). *J. Comput. Neurosci.* 1(3), 195–230.
    """

    def __init__(
        self,
        in_size,
        alpha=0.53 / (u.ms * u.mM),
        beta=0.18 / u.ms,
        T=1.0 * u.mM,
        T_dur=1.0 * u.ms,
        g_initializer=ZeroInit(),
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, alpha=alpha, beta=beta, T=T, T_dur=T_dur,
                         g_initializer=g_initializer, name=name, device=device, dtype=dtype)


class NMDA(_Kinetic):
    r"""NMDA receptor (second-order kinetic scheme; ``BioNMDA`` in the reference).

    .. math::

        \frac{dx}{dt} = \alpha_2\,[T](t)\,(1 - x) - \beta_2 x, \qquad
        \frac{dg}{dt} = \alpha_1\,x\,(1 - g) - \beta_1 g

    ``x`` is updated first and ``g`` uses the new ``x`` (as in the reference); each update is
    the exact solution of its linear equation over the step. The voltage-dependent magnesium
    block belongs to the output: use :class:`~torchbrain.outputs.MgBlock`.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of synapses (usually the presynaptic population).
    alpha1 : quantity [1/time], default 2 /ms
        Opening rate of ``g`` (plain numbers in 1/ms); must be >= 0.
    beta1 : quantity [1/time], default 0.01 /ms
        Closing rate of ``g``; must be positive.
    alpha2 : quantity [1/(time·concentration)], default 1 /(ms·mM)
        Binding rate of ``x`` (plain numbers in 1/(ms·mM)); must be >= 0.
    beta2 : quantity [1/time], default 0.5 /ms
        Unbinding rate of ``x``; must be positive.
    T : quantity [concentration], default 1 mM
        Transmitter concentration during the pulse.
    T_dur : quantity [time], default 0.5 ms
        Pulse duration; must be positive.
    g_initializer, x_initializer : Initializer or float, default ``ZeroInit()``
        Initial fractions (dimensionless).
    name, device, dtype
        As :class:`~torchbrain.synapses.expon.Expon`.

    Attributes
    ----------
    g : HiddenState
        Open fraction (the output).
    x : HiddenState
        Intermediate (bound) fraction.
    spike_arrival_time : ShortTermState
        Time of the last presynaptic spike (ms).

    Notes
    -----
    Same equations and defaults as ``brainpy.state.BioNMDA``, with the differences listed in
    :class:`AMPA` (dimensionless ``g``, robust pulse window, straight-through spike gradient).

    References
    ----------
    Destexhe, A., Mainen, Z. F. & Sejnowski, T. J. (1994). *J. Comput. Neurosci.* 1(3), 195–230.
    Jahr, C. E. & Stevens, C. F. (1990). Voltage dependence of NMDA-activated macroscopic
    conductances predicted by single-channel kinetics. *J. Neurosci.* 10(9), 3178–3182.
    """

    def __init__(
        self,
        in_size,
        alpha1=2.0 / u.ms,
        beta1=0.01 / u.ms,
        alpha2=1.0 / (u.ms * u.mM),
        beta2=0.5 / u.ms,
        T=1.0 * u.mM,
        T_dur=0.5 * u.ms,
        g_initializer=ZeroInit(),
        x_initializer=ZeroInit(),
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        self.alpha1 = self._rate("alpha1", alpha1, "1/ms", positive=False)
        self.beta1 = self._rate("beta1", beta1, "1/ms", positive=True)
        self.alpha2 = self._rate("alpha2", alpha2, "1/(ms*mM)", positive=False)
        self.beta2 = self._rate("beta2", beta2, "1/ms", positive=True)
        self._pulse_parameters(T, T_dur)
        self.g_initializer = self._store_initializer("g_initializer", g_initializer, _FRACTION)
        self.x_initializer = self._store_initializer("x_initializer", x_initializer, _FRACTION)
        self.g = HiddenState(None)
        self.x = HiddenState(None)
        self.spike_arrival_time = ShortTermState(None)

    def _repr_config(self):
        return {**super()._repr_config(), "g_initializer": self.g_initializer,
                "x_initializer": self.x_initializer}

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        self.g = HiddenState(self._fraction(self.g_initializer, shape, "g"))
        self.x = HiddenState(self._fraction(self.x_initializer, shape, "x"))
        self._init_arrival(shape)

    def update(self, pre_spike):
        """Advance by one step given the presynaptic spikes; return the open fraction ``g``."""
        self._check_ready()
        spike = self._spike_input(pre_spike)
        self.g, self.x, self.spike_arrival_time = F.nmda_step(
            self.g, self.x, self.spike_arrival_time, spike, self._t(), alpha1=self.alpha1,
            beta1=self.beta1, alpha2=self.alpha2, beta2=self.beta2, T=self.T, T_dur=self.T_dur,
            dt=self._dt(),
        )
        return self.g


class BioNMDA(NMDA):
    """The reference's name for :class:`NMDA` (a subclass, so errors name the class used)."""
