"""The microcircuit's synaptic output: the step average of an exponential current."""

from __future__ import annotations

import torch

from ...environ import get_dt_value
from ...outputs import CUBA
from ...units import u
from .parameters import _TAU_SYN


class StepAverageCUBA(CUBA):
    r"""Current-based output that passes the step average of an exponential current.

    .. math::

        I = g\,\frac{\tau_s}{\Delta t}\left(1 - e^{-\Delta t/\tau_s}\right),
        \qquad -\frac{dI}{dV} = 0

    An :class:`~torchbrain.synapses.Expon` synapse holds :math:`g(t_n)` at the start of step
    :math:`n`; the current of the exponential PSC over the step averages to the expression
    above. A membrane integrated at constant current per step (exponential Euler) then receives
    the exact charge :math:`J\tau_s` per PSC of amplitude :math:`J`, instead of
    :math:`J\Delta t/(1 - e^{-\Delta t/\tau_s})` (10 % more at :math:`\Delta t = 0.1` ms,
    :math:`\tau_s = 0.5` ms); for :math:`\tau_m \gg \Delta t` the voltage response matches the
    exact propagator of NEST's ``iaf_psc_exp`` to :math:`O(\Delta t/\tau_m)` of that 10 %.

    Parameters
    ----------
    tau : quantity [time], default 0.5 ms
        The synapse's decay time constant (plain numbers in ms); must be positive.
    device, dtype : optional
        Factory arguments.
    """

    def __init__(self, tau=_TAU_SYN * u.ms, *, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        self.tau = self._register_parameter_with_unit("tau", tau, "ms", positive=True)

    def _repr_config(self):
        return {}

    def current(self, V):
        """The step-averaged current in pA (independent of ``V``)."""
        dt = get_dt_value(desc=self._name())
        factor = self.tau / dt * -torch.expm1(-dt / self.tau)
        return super().current(V) * factor
