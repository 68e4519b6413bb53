r"""Exponential synapses: ``Expon`` and ``DualExpon``.

Both are linear filters of their input (``align_post = True``): one post-sized instance, shared
through ``.desc(...)`` by every AlignPost projection onto a population, filters the summed input
of all of them exactly.

Units: plain numbers are read in ms; the synaptic variable is unit-agnostic (it holds what the
projection delivers: nS for conductance weights, pA for current weights).
"""

from __future__ import annotations

import torch

from ..functional import synapses as F
from ..init import ZeroInit
from ..state import HiddenState
from ..units import u
from .base import Synapse

__all__ = ["Expon", "DualExpon"]


class Expon(Synapse):
    r"""Exponentially decaying synapse.

    .. math::

        \tau \frac{dg}{dt} = -g + \tau \sum_k \Delta_k\, \delta(t - t_k)

    Each step decays :math:`g` exactly, :math:`g \leftarrow g\,e^{-\Delta t/\tau}`, then adds
    the jumps registered by projections (``add_delta_input``) and ``x`` if given.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of synaptic variables (the post population for AlignPost, the pre
        population for AlignPre).
    tau : quantity [time], default 8 ms
        Decay time constant (plain numbers in ms); must be positive.
    g_initializer : Initializer or quantity, default ``ZeroInit()``
        Initial value of ``g``, in the unit of what the projection delivers (a quantity is
        converted to its kind's canonical unit: nS, pA, mV or dimensionless).
    name : str, optional
        Label used in messages.
    device, dtype : optional
        Factory arguments.

    Attributes
    ----------
    g : HiddenState
        The synaptic variable (the output).

    Notes
    -----
    Same equation and defaults as ``brainpy.state.Expon``. The reference also lets current inputs
    enter :math:`dg/dt`; synapses here only take jumps (``add_delta_input``/``x``).

    References
    ----------
    Roth, A. & van Rossum, M. C. W. (2009). Modeling synapses. In *Computational Modeling Methods
    for Neuroscientists*, MIT Press, 139–160.
    """

    align_post = True

    def __init__(
        self,
        in_size,
        tau=8.0 * u.ms,
        g_initializer=ZeroInit(),
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        self.tau = self._positive_time("tau", tau)
        self.g_initializer = self._store_initializer("g_initializer", g_initializer)
        self.g = HiddenState(None)

    def _repr_config(self):
        return {**super()._repr_config(), "g_initializer": self.g_initializer}

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        self.g = HiddenState(self._initial_value(self.g_initializer, shape, "g"))

    def update(self, x=None):
        """Decay ``g`` by one step, add the delta inputs and ``x``; return ``g``."""
        self._check_ready()
        delta = self._event_input(x)
        self.g = F.expon_step(self.g, self.tau, self._dt(), delta)
        return self.g


class DualExpon(Synapse):
    r"""Dual-exponential (difference of exponentials) synapse.

    .. math::

        \tau_r \frac{dg_r}{dt} = -g_r, \qquad \tau_d \frac{dg_d}{dt} = -g_d, \qquad
        g = A\,N\,(g_d - g_r),

    both components receive every jump. With the peak normalisation

    .. math::

        N = \frac{\tau_d}{\tau_d - \tau_r}
            \left(\frac{\tau_r}{\tau_d}\right)^{\tau_r/(\tau_r-\tau_d)}

    a jump :math:`\Delta` produces :math:`g(t) = A\,N\,\Delta\,(e^{-t/\tau_d} - e^{-t/\tau_r})`,
    which peaks at :math:`t_p = \frac{\tau_r\tau_d}{\tau_d-\tau_r}\ln\frac{\tau_d}{\tau_r}` with
    the value :math:`A\Delta` exactly.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of synaptic variables.
    tau_decay : quantity [time], default 10 ms
        Decay time constant (plain numbers in ms); must be larger than ``tau_rise``.
    tau_rise : quantity [time], default 1 ms
        Rise time constant (plain numbers in ms); must be positive.
    A : float or tensor [dimensionless], default 1
        Amplitude: the peak produced by a unit jump (``None`` is read as 1).
    normalize : bool, default True
        Apply the peak normalisation :math:`N` (otherwise :math:`g = A (g_d - g_r)`).
    g_initializer : Initializer or quantity, default ``ZeroInit()``
        Initial value of both components (unit-agnostic, as :class:`Expon`).
    name, device, dtype
        As :class:`Expon`.

    Attributes
    ----------
    g_rise, g_decay : HiddenState
        The two components.
    g : Tensor (property)
        The output :math:`A N (g_d - g_r)`.

    Notes
    -----
    Against ``brainpy.state.DualExpon`` (checked on runs of brainpy.state 2.9): the same
    output :math:`A N (g_d - g_r)`, with no extra :math:`(\tau_d - \tau_r)/(\tau_r \tau_d)`
    factor, and the pending delta inputs read once per step and added to both components, as
    here. Differences (on purpose):

    * the reference's ``A=None`` means "normalise"; here normalisation is the ``normalize`` flag
      and ``A`` is the amplitude on top of it;
    * ``tau_decay <= tau_rise`` is an error (:math:`N` is undefined; use :class:`Alpha` for the
      equal-time-constant limit).

    References
    ----------
    Roth, A. & van Rossum, M. C. W. (2009). Modeling synapses. In *Computational Modeling Methods
    for Neuroscientists*, MIT Press, 139–160.
    """

    align_post = True

    def __init__(
        self,
        in_size,
        tau_decay=10.0 * u.ms,
        tau_rise=1.0 * u.ms,
        A=1.0,
        normalize: bool = True,
        g_initializer=ZeroInit(),
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        self.tau_decay = self._positive_time("tau_decay", tau_decay)
        self.tau_rise = self._positive_time("tau_rise", tau_rise)
        if not bool((self.tau_decay > self.tau_rise).all()):
            raise ValueError(
                f"{self._name()}: parameter 'tau_decay' must be larger than 'tau_rise' (the peak "
                f"normalisation is undefined otherwise; use Alpha for equal time constants), got "
                f"tau_decay={self.tau_decay.min().item():g} ms and "
                f"tau_rise={self.tau_rise.max().item():g} ms"
            )
        self.A = self._register_parameter_with_unit(
            "A", 1.0 if A is None else A, "dimensionless", shape=self.varshape
        )
        if not isinstance(normalize, bool):
            raise TypeError(f"{self._name()}: 'normalize' must be a bool, got {normalize!r}")
        self.normalize = normalize
        self.g_initializer = self._store_initializer("g_initializer", g_initializer)
        self.g_rise = HiddenState(None)
        self.g_decay = HiddenState(None)

    def _repr_config(self):
        return {**super()._repr_config(), "normalize": self.normalize,
                "g_initializer": self.g_initializer}

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        self.g_rise = HiddenState(self._initial_value(self.g_initializer, shape, "g_rise"))
        self.g_decay = HiddenState(self._initial_value(self.g_initializer, shape, "g_decay"))

    def output_scale(self) -> torch.Tensor:
        """The factor :math:`A N` (or :math:`A`) applied to :math:`g_d - g_r`."""
        if not self.normalize:
            return self.A
        return self.A * F.dual_expon_norm(self.tau_rise, self.tau_decay)

    @property
    def g(self):
        """The output :math:`A N (g_d - g_r)` (``None`` before ``init_state``)."""
        if self.g_rise is None or self.g_decay is None:
            return None
        return F.dual_expon_output(self.g_rise, self.g_decay, self.output_scale())

    def update(self, x=None):
        """Decay both components by one step, add the delta inputs and ``x`` to both; return
        the output."""
        self._check_ready()
        delta = self._event_input(x)
        self.g_rise, self.g_decay = F.dual_expon_step(
            self.g_rise, self.g_decay, self.tau_rise, self.tau_decay, self._dt(), delta
        )
        return self.g
