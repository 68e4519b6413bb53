r"""Readout layers: leaky integrators that turn spikes into rates or output spikes.

* :class:`LeakyRateReadout`: :math:`r \leftarrow e^{-\Delta t/\tau} r + x W` (a leaky, non-spiking
  output unit, as in e-prop and most surrogate-gradient classifiers);
* :class:`LeakySpikeReadout`: an integrate-and-fire output layer driven by :math:`x W`.

Both own a weight ``W`` of shape ``(in_size, out_size)`` (an ``nn.Parameter``, used as
``x @ W`` like brainstate's ``Linear``) and a State of shape ``(batch, out_size)``.
"""

from __future__ import annotations

import torch

from .dynamics import Dynamics, _as_size
from .environ import get_dt_value
from .functional import lif as F
from .init import Constant, KaimingNormal
from .neurons.base import Neuron
from .state import HiddenState
from .units import is_quantity, u

__all__ = ["leaky_rate_step", "LeakyRateReadout", "LeakySpikeReadout"]

#: The default weight initializer (an immutable description, shared safely).
_KAIMING = KaimingNormal()


def leaky_rate_step(r: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, tau,
                    dt: float) -> torch.Tensor:
    r"""One step of the leaky rate readout: :math:`r' = e^{-\Delta t/\tau} r + x W`.

    ``tau`` (ms) may be a number or a tensor broadcastable to ``r``; ``dt`` in ms.
    """
    decay = torch.exp(-dt / torch.as_tensor(tau, dtype=r.dtype, device=r.device))
    return decay * r + x @ weight


def _features_size(value, owner: str, name: str) -> int:
    size = _as_size(value, owner)
    if len(size) != 1:
        raise ValueError(f"{owner}: '{name}' must be an int (a 1-d layer), got {value!r}")
    return size[0]


class _WeightedReadout:
    """Shared parts: the weight ``(in, out)`` and the check of the input's shape."""

    def _init_weight(self, w_init, unit: str) -> None:
        shape = (self.in_features, self.out_features)
        self.weight = self._register_parameter_with_unit("weight", w_init, unit, shape=shape,
                                                         trainable=True)
        if tuple(self.weight.shape) != shape:
            raise ValueError(
                f"{self._name()}: parameter 'weight' must have shape (in_size, out_size) = "
                f"{shape}, got {tuple(self.weight.shape)}"
            )

    def _repr_config(self):
        return {"in_size": self.in_features, "out_size": self.out_features}

    def _features(self, x) -> torch.Tensor:
        owner = self._name()
        if is_quantity(x):
            raise TypeError(f"{owner}: input 'x' must be a tensor (spikes or rates), got a "
                            f"quantity {x!r}")
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{owner}: input 'x' must be a tensor of shape (in_size,) or "
                            f"(batch, in_size), got {type(x).__name__}")
        shape = tuple(x.shape)
        if x.ndim not in (1, 2) or shape[-1] != self.in_features:
            raise ValueError(f"{owner}: input 'x' must have shape ({self.in_features},) or "
                             f"(batch, {self.in_features}), got {shape}")
        if x.ndim == 2:
            if self._batch_size is None:
                raise ValueError(
                    f"{owner}: input 'x' has a batch dimension of {shape[0]} but the States "
                    f"were initialised without a batch; call "
                    f"tb.reset_all_states(model, batch_size={shape[0]})"
                )
            if shape[0] != self._batch_size:
                raise ValueError(
                    f"{owner}: input 'x' has batch size {shape[0]} but the States were "
                    f"initialised for batch size {self._batch_size}; call "
                    f"tb.reset_all_states(model, batch_size={shape[0]}) to change it"
                )
        if not x.is_floating_point():
            x = x.to(self.weight.dtype)
        return x


class LeakyRateReadout(_WeightedReadout, Dynamics):
    r"""Leaky (non-spiking) readout.

    .. math::

        \tau \frac{dr}{dt} = -r + \tau \sum_i x_i(t) W_{ij}\,\delta(t - t_k)
        \quad\Longrightarrow\quad r \leftarrow e^{-\Delta t/\tau}\, r + x W

    Parameters
    ----------
    in_size : int
        Number of inputs.
    out_size : int
        Number of output units.
    tau : quantity [time], default 5 ms
        Time constant (plain numbers in ms), > 0; scalar or per output unit.
    w_init : Initializer or tensor, default ``KaimingNormal()``
        The weight ``W`` of shape ``(in_size, out_size)``, dimensionless (``r`` has the unit of
        the input); stored as the ``nn.Parameter`` ``weight``.
    name, device, dtype : optional

    Notes
    -----
    ``update(x)`` takes ``x`` of shape ``(in_size,)`` or ``(batch, in_size)`` (spikes or rates)
    and returns the new ``r`` (State ``r``, shape ``(batch, out_size)`` or ``(out_size,)``).
    The decay :math:`e^{-\Delta t/\tau}` is computed from the ``dt`` of each step; the reference
    computes it once at construction, so it needs ``dt`` set before the model is built and goes
    wrong if ``dt`` changes afterwards.

    References
    ----------
    Bellec, G. et al. (2020). A solution to the learning dilemma for recurrent networks of
    spiking neurons. *Nat. Commun.* 11, 3625.

    Examples
    --------
    >>> import torch, torchbrain as tb
    >>> from torchbrain import u
    >>> from torchbrain.readouts import LeakyRateReadout
    >>> ro = LeakyRateReadout(100, 10, tau=10 * u.ms)
    >>> _ = tb.init_all_states(ro, batch_size=8)
    >>> with tb.environ.context(dt=1 * u.ms):
    ...     r = ro(torch.rand(8, 100))
    >>> r.shape
    torch.Size([8, 10])
    """

    def __init__(self, in_size, out_size, tau=5.0 * u.ms, w_init=_KAIMING, *,
                 name: str | None = None, device=None, dtype=None):
        owner = type(self).__name__
        self.in_features = _features_size(in_size, owner, "in_size")
        self.out_features = _features_size(out_size, owner, "out_size")
        super().__init__(self.out_features, name=name, device=device, dtype=dtype)
        self.in_size = (self.in_features,)
        self.tau = self._register_parameter_with_unit("tau", tau, "ms", shape=self.varshape,
                                                      positive=True)
        self._init_weight(w_init, "dimensionless")
        self.r = HiddenState(None)

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        self.r = HiddenState(torch.zeros(shape, **self._factory_like_states()))

    def update(self, x) -> torch.Tensor:
        """Advance one step with input ``x``; returns the new rate ``r``."""
        self._check_ready()
        x = self._features(x)
        self.r = leaky_rate_step(self.r, x, self.weight, self.tau,
                                 get_dt_value(desc=self._name()))
        return self.r


class LeakySpikeReadout(_WeightedReadout, Neuron):
    r"""Integrate-and-fire output layer driven by :math:`x W`.

    .. math::

        \tau \frac{dV}{dt} = -V + x W, \qquad s = \mathrm{spk\_fun}\!\left(
        \frac{V - V_\mathrm{th}}{V_\mathrm{th}}\right),

    integrated exactly (:func:`torchbrain.functional.lif.if_update`, with :math:`R = 1` so that
    :math:`xW` is the drive in mV), with the lazy reset of the LIF family: ``'soft'``
    :math:`V \leftarrow V - V_\mathrm{th} s`, ``'hard'`` :math:`V \leftarrow 0`.

    Parameters
    ----------
    in_size : int
        Number of inputs.
    out_size : int
        Number of output neurons.
    tau : quantity [time], default 5 ms
        Membrane time constant (plain numbers in ms), > 0.
    V_th : quantity [voltage], default 1 mV
        Threshold (plain numbers in mV), > 0 (the reset value is 0 mV).
    w_init : Initializer or tensor, default ``KaimingNormal()``
        The weight ``(in_size, out_size)`` in mV per unit of input (plain numbers in mV).
    V_initializer : Initializer or quantity [voltage], default ``Constant(0 mV)``
    spk_fun : Surrogate, default ``ReluGrad()``
    spk_reset : {'soft', 'hard'}, default 'soft'
    name, device, dtype : optional

    Notes
    -----
    ``update(x)`` takes ``x`` of shape ``(in_size,)`` or ``(batch, in_size)`` and returns the
    spikes of the new V (State ``V``). Current inputs registered by projections are added to the
    drive :math:`xW` as they are (R = 1), delta inputs to V after the step. brainstate's
    ``LeakySpikeReadout`` is the model followed here.

    References
    ----------
    Neftci, E. O., Mostafa, H. & Zenke, F. (2019). Surrogate gradient learning in spiking neural
    networks. *IEEE Signal Process. Mag.* 36, 51-63.
    """

    def __init__(self, in_size, out_size, tau=5.0 * u.ms, V_th=1.0 * u.mV,
                 w_init=_KAIMING, V_initializer=Constant(0.0 * u.mV), spk_fun=None,
                 spk_reset: str = "soft", *, name: str | None = None, device=None, dtype=None):
        owner = type(self).__name__
        self.in_features = _features_size(in_size, owner, "in_size")
        self.out_features = _features_size(out_size, owner, "out_size")
        super().__init__(self.out_features, spk_fun=spk_fun, spk_reset=spk_reset, name=name,
                         device=device, dtype=dtype)
        self.in_size = (self.in_features,)
        shape = self.varshape
        self.tau = self._register_parameter_with_unit("tau", tau, "ms", shape=shape,
                                                      positive=True)
        self.V_th = self._register_parameter_with_unit("V_th", V_th, "mV", shape=shape)
        self._check_threshold_above_reset(self.V_th, torch.zeros(()), "the reset value 0 mV")
        self._init_weight(w_init, "mV")
        self.V_initializer = self._store_initializer("V_initializer", V_initializer, "mV")
        self.V = HiddenState(None)

    def _repr_config(self):
        return {**_WeightedReadout._repr_config(self), "spk_reset": self.spk_reset,
                "spk_fun": self.spk_fun}

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        self.V = HiddenState(self._initial_value(self.V_initializer, "mV", shape, "V"))

    def get_spike(self, V: torch.Tensor | None = None) -> torch.Tensor:
        """The spike of ``V`` (default: the State)."""
        V = self.V if V is None else V
        return self.spk_fun(F.if_spike_input(V, self.V_th))

    def update(self, x) -> torch.Tensor:
        """Advance one step with input ``x``; returns the output spikes."""
        self._check_ready()
        drive = self._features(x) @ self.weight
        self.V = F.if_update(
            self.V, lambda V: self.sum_current_inputs(drive, V), tau=self.tau, V_th=self.V_th,
            R=1.0, dt=self._dt(), spk_fun=self.spk_fun, hard_reset=self.hard_reset,
            delta=self.sum_delta_inputs(0.0),
        )
        return self.get_spike()
