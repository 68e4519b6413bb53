r"""The alpha-function synapse ``Alpha``.

Units: plain numbers are read in ms; the synaptic variable is unit-agnostic (see
:class:`~torchbrain.synapses.expon.Expon`).
"""

from __future__ import annotations

from ..functional import synapses as F
from ..init import ZeroInit
from ..state import HiddenState
from ..units import u
from .base import Synapse

__all__ = ["Alpha"]


class Alpha(Synapse):
    r"""Alpha-function synapse.

    .. math::

        \tau \frac{dh}{dt} = -h + \tau \sum_k \Delta_k\,\delta(t - t_k), \qquad
        \tau \frac{dg}{dt} = -g + h

    A jump :math:`\Delta` into :math:`h` produces
    :math:`g(t) = \Delta\,\frac{t}{\tau}\,e^{-t/\tau}`, which peaks at :math:`t = \tau` with the
    value :math:`\Delta/e`.

    Each step advances the pair exactly (it is linear),
    :math:`g \leftarrow (g + h\,\Delta t/\tau)\,e^{-\Delta t/\tau}`,
    :math:`h \leftarrow h\,e^{-\Delta t/\tau}`, and then adds the delta inputs and ``x`` to
    :math:`h`. The output is :math:`g`.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of synaptic variables.
    tau : quantity [time], default 8 ms
        Time constant (plain numbers in ms); must be positive.
    g_initializer : Initializer or quantity, default ``ZeroInit()``
        Initial value of ``g`` (unit-agnostic: the unit of what the projection delivers).
    h_initializer : Initializer or quantity, default ``ZeroInit()``
        Initial value of the auxiliary variable ``h``.
    name, device, dtype
        As :class:`~torchbrain.synapses.expon.Expon`.

    Attributes
    ----------
    g : HiddenState
        The output.
    h : HiddenState
        The auxiliary variable that receives the jumps.

    Notes
    -----
    Differences from ``brainpy.state.Alpha`` (on purpose):

    * the reference advances :math:`g` with exponential Euler holding the old :math:`h` constant
      over the step; its response to a jump is the alpha function times
      :math:`(e^{\epsilon} - 1)/\epsilon \approx 1 + \epsilon/2`, :math:`\epsilon = \Delta t/\tau`
      (0.6 % too large at 0.1 ms / 8 ms). Here the step is the exact solution of the linear pair,
      so the response equals the alpha function on the grid;
    * the reference initialises ``h`` with ``g_initializer``; here ``h`` has its own initializer
      (both default to zero, so the default behaviour is the same);
    * the synapse is linear in its input, so it is marked ``align_post = True`` and can be shared
      by AlignPost projections (the reference does not mark it).

    References
    ----------
    Rall, W. (1967). Distinguishing theoretical synaptic potentials computed for different
    soma-dendritic distributions of synaptic input. *J. Neurophysiol.* 30(5), 1138–1168.
    """

    align_post = True

    def __init__(
        self,
        in_size,
        tau=8.0 * u.ms,
        g_initializer=ZeroInit(),
        h_initializer=ZeroInit(),
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        self.tau = self._positive_time("tau", tau)
        self.g_initializer = self._store_initializer("g_initializer", g_initializer)
        self.h_initializer = self._store_initializer("h_initializer", h_initializer)
        self.g = HiddenState(None)
        self.h = HiddenState(None)

    def _repr_config(self):
        return {**super()._repr_config(), "g_initializer": self.g_initializer,
                "h_initializer": self.h_initializer}

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        self.g = HiddenState(self._initial_value(self.g_initializer, shape, "g"))
        self.h = HiddenState(self._initial_value(self.h_initializer, shape, "h"))

    def update(self, x=None):
        """Advance ``(g, h)`` by one step, add the delta inputs and ``x`` to ``h``; return ``g``."""
        self._check_ready()
        delta = self._event_input(x)
        self.g, self.h = F.alpha_step(self.g, self.h, self.tau, self._dt(), delta)
        return self.g
