r"""Short-term plasticity: ``STP`` (facilitation and depression) and ``STD`` (depression).

These modulate presynaptic spikes before they reach a connectivity: sized by the presynaptic
population, updated with its spikes, they return the spikes scaled by the synaptic efficacy of
each one. They are nonlinear in the spikes (``align_post = False``).

Units: plain numbers are read in ms; ``U``, ``u`` and ``x`` are dimensionless fractions.
"""

from __future__ import annotations

import torch

from ..functional import synapses as F
from ..state import HiddenState
from ..units import u
from .base import Synapse

__all__ = ["STP", "STD"]


class _Plasticity(Synapse):
    def _fraction_parameter(self, name, value):
        tensor = self._register_parameter_with_unit(
            name, value, "dimensionless", shape=self.varshape, nonnegative=True
        )
        if not bool((tensor <= 1).all()):
            raise ValueError(
                f"{self._name()}: parameter '{name}' must be a fraction in [0, 1], got "
                f"{tensor.max().item():g} (largest value)"
            )
        return tensor

    def _full(self, shape, value):
        fac = self._factory_like_states()
        return torch.ones(shape, **fac) * value


class STP(_Plasticity):
    r"""Tsodyks–Markram short-term plasticity (facilitation and depression).

    .. math::

        \frac{du}{dt} = -\frac{u}{\tau_f} + U (1 - u^-)\,\sum_k \delta(t - t_k), \qquad
        \frac{dx}{dt} = \frac{1 - x}{\tau_d} - u^+ x^-\,\sum_k \delta(t - t_k)

    Each step relaxes :math:`u` and :math:`x` exactly; at a spike :math:`s` (values just before
    it marked :math:`^-`):

    .. math::

        u^+ = u^- + s\,U (1 - u^-), \qquad r = s\,u^+ x^-, \qquad x^+ = x^- - r,

    and the module returns :math:`r`, the released fraction of the resources times the spike.
    For a regular train of period :math:`\Delta` the release converges to
    :math:`u_\infty x_\infty` with

    .. math::

        u_\infty = \frac{U}{1 - (1 - U) e^{-\Delta/\tau_f}}, \qquad
        x_\infty = \frac{1 - e^{-\Delta/\tau_d}}{1 - (1 - u_\infty) e^{-\Delta/\tau_d}} .

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of presynaptic neurons.
    U : float [dimensionless], default 0.15
        Utilisation increment per spike, a fraction in [0, 1].
    tau_f : quantity [time], default 1500 ms
        Facilitation time constant (plain numbers in ms); must be positive.
    tau_d : quantity [time], default 200 ms
        Recovery (depression) time constant; must be positive.
    u_initializer : Initializer, float or None, default None
        Initial utilisation; ``None`` starts at ``U`` as the reference does. Note that ``u``
        relaxes to 0, so a synapse at rest has ``u = 0`` and its first spike releases ``U``;
        starting at ``U`` makes the first spike release about :math:`2U - U^2`. Pass ``0.0`` for
        a rested synapse.
    name, device, dtype
        As :class:`~torchbrain.synapses.expon.Expon`.

    Attributes
    ----------
    u : HiddenState
        Utilisation (release probability), initially ``U`` (see ``u_initializer``).
    x : HiddenState
        Available resources, initially 1.

    Notes
    -----
    The order of operations is the reference's (relax, facilitate, release, deplete), and so is
    the output: the released amount :math:`u^+ x^-`, before depletion (checked on runs of
    brainpy.state 2.9). The reference computes the jumps from the values *before* this step's
    relaxation (:math:`U(1 - u_\mathrm{old})`, :math:`u^+ x_\mathrm{old}`); here they use the
    values just before the spike, the exact event map of the equations above, a difference of
    order :math:`\Delta t/\tau` (5e-4 with the defaults at 0.1 ms).

    References
    ----------
    Tsodyks, M., Pawelzik, K. & Markram, H. (1998). Neural networks with dynamic synapses.
    *Neural Computation* 10(4), 821–835.
    """

    def __init__(
        self,
        in_size,
        U=0.15,
        tau_f=1500.0 * u.ms,
        tau_d=200.0 * u.ms,
        name: str | None = None,
        *,
        u_initializer=None,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        self.U = self._fraction_parameter("U", U)
        self.tau_f = self._positive_time("tau_f", tau_f)
        self.tau_d = self._positive_time("tau_d", tau_d)
        self.u_initializer = (
            None if u_initializer is None
            else self._store_initializer("u_initializer", u_initializer, ("dimensionless",))
        )
        self.u = HiddenState(None)
        self.x = HiddenState(None)

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        if self.u_initializer is None:
            u0 = self._full(shape, self.U)
        else:
            u0 = self._initial_value(self.u_initializer, shape, "u", kinds=("dimensionless",))
        self.u = HiddenState(u0)
        self.x = HiddenState(self._full(shape, 1.0))

    def update(self, pre_spike):
        """Advance by one step given the presynaptic spikes; return the released fraction of
        each spike (0 where there is no spike)."""
        self._check_ready()
        spike = self._spike_input(pre_spike)
        release, self.u, self.x = F.stp_step(
            self.u, self.x, spike, U=self.U, tau_f=self.tau_f, tau_d=self.tau_d, dt=self._dt()
        )
        return release

    def get_output(self) -> torch.Tensor:
        """The release a spike would produce now (:math:`u^+ x`, ignoring this step's decay)."""
        return (self.u + self.U * (1.0 - self.u)) * self.x


    def _repr_config(self):
        if self.u_initializer is None:
            return super()._repr_config()
        return {**super()._repr_config(), "u_initializer": self.u_initializer}


class STD(_Plasticity):
    r"""Short-term depression (resource depletion).

    .. math::

        \frac{dx}{dt} = \frac{1 - x}{\tau} - U x^-\,\sum_k \delta(t - t_k)

    Each step relaxes :math:`x` exactly; at a spike :math:`s` the module returns the available
    fraction :math:`s\,x^-` and depletes :math:`x^+ = x^- - s\,U x^-`. For a regular train of
    period :math:`\Delta` the output converges to

    .. math::

        x_\infty = \frac{1 - e^{-\Delta/\tau}}{1 - (1 - U) e^{-\Delta/\tau}} .

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of presynaptic neurons.
    tau : quantity [time], default 200 ms
        Recovery time constant (plain numbers in ms); must be positive.
    U : float [dimensionless], default 0.07
        Fraction of the resources used per spike, in [0, 1].
    name, device, dtype
        As :class:`~torchbrain.synapses.expon.Expon`.

    Attributes
    ----------
    x : HiddenState
        Available resources, initially 1.

    Notes
    -----
    The output is the available fraction :math:`x^-` (the efficacy relative to a rested
    synapse; the weight absorbs the factor ``U``), as in the reference. The reference depletes
    with the value before this step's relaxation (:math:`U x_\mathrm{old}`) and returns
    :math:`x` after depletion; here depletion uses :math:`x^-` and the output is the value
    seen by the spike (so the first spike of a rested synapse has efficacy exactly 1).

    References
    ----------
    Abbott, L. F., Varela, J. A., Sen, K. & Nelson, S. B. (1997). Synaptic depression and
    cortical gain control. *Science* 275(5297), 220–224.
    Tsodyks, M. V. & Markram, H. (1997). The neural code between neocortical pyramidal neurons
    depends on neurotransmitter release probability. *PNAS* 94(2), 719–723.
    """

    def __init__(
        self,
        in_size,
        tau=200.0 * u.ms,
        U=0.07,
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        self.tau = self._positive_time("tau", tau)
        self.U = self._fraction_parameter("U", U)
        self.x = HiddenState(None)

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        self.x = HiddenState(self._full(shape, 1.0))

    def update(self, pre_spike):
        """Advance by one step given the presynaptic spikes; return the efficacy of each spike
        (0 where there is no spike)."""
        self._check_ready()
        spike = self._spike_input(pre_spike)
        out, self.x = F.std_step(self.x, spike, U=self.U, tau=self.tau, dt=self._dt())
        return out

    def get_output(self) -> torch.Tensor:
        """The available fraction ``x`` (the efficacy of a spike now)."""
        return self.x
