r"""LIF neurons with a built-in exponential synapse: ``CubaLIF`` and ``CobaLIF``.

Equations and defaults follow brainpy.state 2.9 (see :mod:`torchbrain.functional.synaptic_lif`),
converted to canonical units (ms, mV, pA, nS, GΩ; plain numbers are read in these). Each neuron
owns its synaptic variable ``g``; inputs registered with ``add_delta_input`` (e.g. spikes ×
weights delivered by a projection) are *jumps of g*, not of V. Differences from the reference,
on purpose: ``V_th <= V_reset`` raises an error (the reference silently never spikes), and the
membrane can be given a capacitance ``C`` instead of ``R`` (``R = tau/C``).
"""

from __future__ import annotations

import torch

from ..functional import synaptic_lif as F
from ..functional.lif import lif_spike_input
from ..init import Constant
from ..state import HiddenState
from ..units import u
from .lif import _LeakyBase

__all__ = ["CubaLIF", "CobaLIF"]


class _SynapticLIF(_LeakyBase):
    _g_unit = "pA"

    def __init__(self, in_size, *, tau_syn, V_th, V_reset, V_rest, g_initializer, **kw):
        super().__init__(in_size, **kw)
        shape = self.varshape
        reg = self._register_parameter_with_unit
        self.tau_syn = reg("tau_syn", tau_syn, "ms", shape=shape, positive=True)
        self.V_th = reg("V_th", V_th, "mV", shape=shape)
        self.V_reset = reg("V_reset", V_reset, "mV", shape=shape)
        self.V_rest = reg("V_rest", V_rest, "mV", shape=shape)
        self._check_threshold_above_reset(self.V_th, self.V_reset)
        self.g_initializer = self._store_initializer("g_initializer", g_initializer,
                                                     self._g_unit)
        self.V = HiddenState(None)
        self.g = HiddenState(None)

    def _repr_config(self):
        return {**super()._repr_config(), "g_initializer": self.g_initializer}

    def _params(self):
        return dict(tau=self.tau, tau_syn=self.tau_syn, V_th=self.V_th, V_reset=self.V_reset,
                    V_rest=self.V_rest, R=self.R, dt=self._dt(), spk_fun=self.spk_fun,
                    hard_reset=self.hard_reset)

    def init_state(self, batch_size=None):
        shape = self._init_V(batch_size)
        self.g = HiddenState(self._initial_value(self.g_initializer, self._g_unit, shape, "g"))

    def get_spike(self, V: torch.Tensor | None = None) -> torch.Tensor:
        """The spike of ``V`` (default: the State): Heaviside forward, surrogate backward."""
        V = self._state_V() if V is None else V
        return self.spk_fun(lif_spike_input(V, self.V_th, self.V_reset))


class CubaLIF(_SynapticLIF):
    r"""Current-based LIF neuron with an exponential synaptic current.

    .. math::

        \tau_\mathrm{syn} \frac{dg}{dt} &= -g + \sum_k w_k\,\delta(t - t_k), \\
        \tau \frac{dV}{dt} &= -(V - V_\mathrm{rest}) + R\,(g + I(t)),
        \qquad \text{spike when } V \ge V_\mathrm{th}.

    One step: lazy reset of V (for the previous step's spike), then
    :math:`g \leftarrow g e^{-\Delta t/\tau_\mathrm{syn}} + \Delta g`, then an exact step of V with
    the new g held. The jumps :math:`\Delta g` (pA) are the inputs registered with
    ``add_delta_input``; ``update(x)`` adds ``x`` (pA) directly to the membrane current.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of neurons.
    R : quantity [resistance], default 1 Ω
        Membrane resistance (plain numbers in GΩ). Exclusive with ``C``.
    tau : quantity [time], default 5 ms
        Membrane time constant (plain numbers in ms); must be positive.
    tau_syn : quantity [time], default 5 ms
        Synaptic time constant; must be positive.
    V_th : quantity [voltage], default 1 mV
        Spike threshold (plain numbers in mV); must be above ``V_reset``.
    V_reset : quantity [voltage], default 0 mV
    V_rest : quantity [voltage], default 0 mV
    V_initializer : Initializer or quantity [voltage], default ``Constant(0 mV)``
    g_initializer : Initializer or quantity [current], default ``Constant(0 pA)``
        Initial synaptic current.
    spk_fun : Surrogate, default ``ReluGrad()``
    spk_reset : {'soft', 'hard'}, default 'soft'
    name : str, optional
    C : quantity [capacitance], optional
        Membrane capacitance (plain numbers in pF); sets ``R = tau / C``.
    device, dtype : optional

    References
    ----------
    Gerstner, W., Kistler, W. M., Naud, R. & Paninski, L. (2014). *Neuronal Dynamics*, ch. 1.3
    and 13.6.
    """

    _g_unit = "pA"

    def __init__(
        self,
        in_size,
        R=None,
        tau=5.0 * u.ms,
        tau_syn=5.0 * u.ms,
        V_th=1.0 * u.mV,
        V_reset=0.0 * u.mV,
        V_rest=0.0 * u.mV,
        V_initializer=Constant(0.0 * u.mV),
        g_initializer=Constant(0.0 * u.pA),
        spk_fun=None,
        spk_reset: str = "soft",
        name: str | None = None,
        *,
        C=None,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_size, R=R, C=C, tau=tau, tau_syn=tau_syn, V_th=V_th, V_reset=V_reset,
            V_rest=V_rest, V_initializer=V_initializer, g_initializer=g_initializer,
            spk_fun=spk_fun, spk_reset=spk_reset, name=name, device=device, dtype=dtype,
        )

    def update(self, x=0.0):
        """Advance one step with external current ``x`` (pA); returns the spikes of the new V."""
        self._check_ready()
        current, jump = self._inputs(x)
        self.V, self.g = F.cubalif_update(self.V, self.g, current, delta=jump, **self._params())
        return self.get_spike()


class CobaLIF(_SynapticLIF):
    r"""Conductance-based LIF neuron with an exponential synaptic conductance.

    .. math::

        \tau_\mathrm{syn} \frac{dg}{dt} &= -g + \sum_k w_k\,\delta(t - t_k), \\
        \tau \frac{dV}{dt} &= -(V - V_\mathrm{rest}) + R\,\big(g\,(E - V) + I(t)\big),
        \qquad \text{spike when } V \ge V_\mathrm{th}.

    One step: lazy reset of V, then :math:`g \leftarrow g e^{-\Delta t/\tau_\mathrm{syn}} +
    \Delta g`, then an exact exponential-Euler step of V with the new g held (g adds to the leak:
    :math:`J = -(1 + R(g + G))/\tau`). The jumps :math:`\Delta g` (nS) are the inputs registered
    with ``add_delta_input``; ``update(x)`` adds ``x`` (pA) to the membrane current.

    Parameters
    ----------
    E : quantity [voltage], default 0 mV
        Synaptic reversal potential (plain numbers in mV). The reference's default could not be
        read; 0 mV is the usual excitatory (AMPA) value.
    g_initializer : Initializer or quantity [conductance], default ``Constant(0 nS)``
        Initial synaptic conductance.
    other parameters
        As :class:`CubaLIF`.

    References
    ----------
    Gerstner, W., Kistler, W. M., Naud, R. & Paninski, L. (2014). *Neuronal Dynamics*, ch. 13.6.
    """

    _g_unit = "nS"

    def __init__(
        self,
        in_size,
        R=None,
        tau=5.0 * u.ms,
        tau_syn=5.0 * u.ms,
        E=0.0 * u.mV,
        V_th=1.0 * u.mV,
        V_reset=0.0 * u.mV,
        V_rest=0.0 * u.mV,
        V_initializer=Constant(0.0 * u.mV),
        g_initializer=Constant(0.0 * u.nS),
        spk_fun=None,
        spk_reset: str = "soft",
        name: str | None = None,
        *,
        C=None,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_size, R=R, C=C, tau=tau, tau_syn=tau_syn, V_th=V_th, V_reset=V_reset,
            V_rest=V_rest, V_initializer=V_initializer, g_initializer=g_initializer,
            spk_fun=spk_fun, spk_reset=spk_reset, name=name, device=device, dtype=dtype,
        )
        self.E = self._register_parameter_with_unit("E", E, "mV", shape=self.varshape)

    def update(self, x=0.0):
        """Advance one step with external current ``x`` (pA); returns the spikes of the new V."""
        self._check_ready()
        current, jump = self._inputs(x)
        self.V, self.g = F.cobalif_update(self.V, self.g, current, delta=jump, E=self.E,
                                          **self._params())
        return self.get_spike()
