r"""Multi-step spiking layers for surrogate-gradient training.

Every layer here takes a whole sequence at once, **time-major** ``(T, B, ...)`` by default
(``time_major=False`` takes ``(B, T, ...)``), and returns the outputs of every step. The last
membrane potential is kept as a State (``tb.HiddenState``), so a layer can be fed a long sequence
in pieces (streaming, truncated BPTT) and the collective operations work:
:func:`torchbrain.reset_all_states` between independent sequences, :func:`torchbrain.detach_states`
between truncated-BPTT chunks.

The neuron model is torchbrain's LIF (:class:`torchbrain.LIF`) written for training:

.. math::

    \tau \frac{dV}{dt} = -V + x(t) \quad\Longrightarrow\quad
    H_t = a V_{t-1} + b\, x_t, \qquad a = e^{-\Delta t/\tau},\quad
    b = 1 - a \ (\texttt{decay\_input=True}) \text{ or } 1,

    S_t = \Theta\!\left(\frac{H_t - V_\mathrm{th}}{V_\mathrm{th} - V_\mathrm{reset}}\right),
    \qquad V_t = H_t - (V_\mathrm{th} - V_\mathrm{reset}) S_t \ \text{(soft)}
    \ \text{ or } V_\mathrm{reset} \text{ after a spike (hard)},

the exact exponential-Euler step of :class:`torchbrain.LIF` with ``V_rest = 0``, ``R = 1 GΩ`` and
``x`` the input in pA (equivalently, the potential ``R I`` in mV it drives). The spikes are the
same as :class:`torchbrain.LIF`'s; the State differs in one respect: here ``V`` holds the
potential *after* the reset of the last step (``LIF`` resets lazily at the next step).

Time step: one rule for every torchbrain module. A layer's ``dt`` argument, when given, is its
step; otherwise it reads ``tb.environ``'s ``dt`` (``with tb.environ.context(dt=1 * u.ms):``), as
populations do; with neither, the call raises a ``KeyError`` that says how to set one. Nothing
assumes a default step: ``tau`` is in ms, so how many steps it spans depends on ``dt``.

Fused kernel: :class:`MultiStepLIF` and :class:`MultiStepIF` run the time loop in the custom op
``torchbrain::multistep_lif`` (:mod:`torchbrain.ops.multistep_lif`), which saves one value per
neuron and step for the backward pass and computes the exact BPTT gradient in a reverse loop.
``fused=False`` (or a surrogate whose class cannot be found by its import path) uses the
step-by-step autograd loop instead; both give the same spikes and gradients (tested to 1e-10 in
float64). The adaptive and recurrent layers use the autograd loop.

Convolutions
------------
Apply any ``torch.nn`` layer at every step with :class:`TimeDistributed` (alias
:class:`SeqToANNContainer`), which folds ``T`` into the batch dimension, and follow it with a
spiking layer whose ``size`` is ``None`` (shape taken from the input) or the feature-map shape::

    net = nn.Sequential(
        TimeDistributed(nn.Conv2d(2, 16, 3, padding=1), nn.BatchNorm2d(16)),
        MultiStepLIF(None, tau=2 * u.ms),                 # (T, B, 16, H, W) -> spikes
        TimeDistributed(nn.MaxPool2d(2), nn.Flatten()),
        TimeDistributed(nn.Linear(16 * H * W // 4, 10)),
        LeakyIntegratorReadout(None, ...)  # or SpikeCountReadout()
    )

State lifecycle, and the errors that replace silent failures
------------------------------------------------------------
* A layer whose ``V`` is unset (new, or after ``tb.reset_all_states(model)`` without a batch
  size) starts from ``V_init`` with the batch size of its input.
* A held ``V`` whose batch size differs from the input's raises an error naming
  ``tb.reset_all_states`` (and ``time_major`` when the input may be batch-major).
* Feeding a new batch while the held ``V`` still belongs to a graph that ``backward()`` has
  already consumed raises an error naming ``tb.reset_all_states`` / ``tb.detach_states`` instead of
  autograd's "backward through the graph a second time" (in eager mode; compiled code skips the
  check and autograd's own error remains).
* Inputs of another dtype or device than the layer's parameters, integer inputs, and a trailing
  shape that differs from ``size`` raise errors that say what was expected. A batch-major
  ``(B, T, N)`` input given to a time-major layer cannot be told apart from a time-major one by
  shape alone when ``B`` happens to fit; it is caught when it meets a held State of another batch
  size.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .. import environ
from ..functional.lif import lif_reset
from ..init import Initializer
from ..module import Module
from ..ops.multistep_lif import multistep_lif, multistep_lif_reference, surrogate_key
from ..state import HiddenState
from ..surrogate import ReluGrad, Surrogate, get_surrogate
from ..units import to_tensor, u

__all__ = [
    "MultiStepLIF",
    "MultiStepIF",
    "MultiStepALIF",
    "RecurrentLIF",
    "TimeDistributed",
    "SeqToANNContainer",
    "LeakyIntegratorReadout",
    "SpikeCountReadout",
]

#: Smallest time constant used when a learnable tau is driven towards zero (ms).
TAU_MIN = 1e-3


def _as_size(size, owner: str) -> tuple[int, ...] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size,)
    if not (isinstance(size, tuple | list | torch.Size) and size
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)):
        raise ValueError(f"{owner}: 'size' must be None, a positive int or a tuple of positive "
                         f"ints (the feature shape after (T, B)), got {size!r}")
    return tuple(int(s) for s in size)


class _SequenceLayer(Module):
    """Shared input checks, layout handling and State bookkeeping of the sequence layers."""

    time_major: bool
    size: tuple[int, ...] | None

    def _name(self) -> str:
        label = getattr(self, "label", None)
        return f"{type(self).__name__}({label})" if label else type(self).__name__

    def _layer_tensor(self) -> torch.Tensor:  # a floating parameter/buffer: dtype and device
        raise NotImplementedError

    def _init_dt(self, dt) -> None:
        self._dt = None if dt is None else float(
            to_tensor(dt, "ms", owner=self._name(), name="dt").item())
        if self._dt is not None and not (math.isfinite(self._dt) and self._dt > 0):
            raise ValueError(f"{self._name()}: 'dt' must be a positive time step, got "
                             f"{self._dt} ms")

    def _dt_value(self) -> float:
        """The layer's own ``dt``, else ``tb.environ``'s; an error when neither is set."""
        if self._dt is not None:
            return self._dt
        try:
            return environ.get_dt_value(desc=self._name())
        except KeyError as err:
            raise KeyError(f"{err.args[0]}, or give the layer its own step "
                           f"({type(self).__name__}(..., dt=1 * u.ms))") from None

    # ----------------------------------------------------------------------------- inputs
    def _check_input(self, x: Any, what: str = "input", size=...) -> torch.Tensor:
        owner = self._name()
        size = self.size if size is ... else size
        layout = "(T, B, ...)" if self.time_major else "(B, T, ...)"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{owner}: the {what} must be a tensor of shape {layout}, got "
                            f"{type(x).__name__}")
        ref = self._layer_tensor()
        if not x.is_floating_point():
            raise TypeError(f"{owner}: the {what} has dtype {x.dtype}; spiking layers take "
                            f"floating inputs ({ref.dtype}), e.g. x.to({ref.dtype})")
        if x.dtype != ref.dtype:
            raise TypeError(f"{owner}: the {what} has dtype {x.dtype} but the layer's parameters "
                            f"are {ref.dtype}; convert one of them (model.to({x.dtype}) or "
                            f"x.to({ref.dtype}))")
        if x.device != ref.device:
            raise ValueError(f"{owner}: the {what} is on {x.device} but the layer is on "
                             f"{ref.device}; move one of them")
        if x.dim() < 2:
            raise ValueError(f"{owner}: the {what} must have shape {layout}, got "
                             f"{tuple(x.shape)}")
        if size is not None:
            k = len(size)
            expected = ("T, B, " if self.time_major else "B, T, ") + ", ".join(map(str, size))
            if x.dim() == k + 1 and tuple(x.shape[-k:]) == size:
                raise ValueError(f"{owner}: the {what} of shape {tuple(x.shape)} has no batch "
                                 f"dimension; expected ({expected}); add one with "
                                 f"x.unsqueeze({1 if self.time_major else 0})")
            if x.dim() != k + 2 or tuple(x.shape[-k:]) != size:
                hint = ""
                if x.dim() == k + 2 and k == 1 and size[0] in x.shape[:2]:
                    hint = (" (the feature dimension must come last: is the input laid out as "
                            "(N, T, B) or similar?)")
                raise ValueError(f"{owner}: the {what} must have shape ({expected}), got "
                                 f"{tuple(x.shape)}{hint}")
        return x if self.time_major else x.transpose(0, 1)

    def _output(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.time_major else y.transpose(0, 1)

    def _check_state(self, name: str, value: torch.Tensor | None, x: torch.Tensor) -> None:
        """A held State must match the input's batch and feature shape."""
        if value is None:
            return
        want = tuple(x.shape[1:])
        if tuple(value.shape) != want:
            owner = self._name()
            b_in, b_held = want[0], value.shape[0] if value.dim() else None
            layout = ""
            if self.time_major:
                layout = (" If the input is batch-major (B, T, ...), build the layer with "
                          "time_major=False or pass x.transpose(0, 1).")
            if tuple(value.shape[1:]) == want[1:]:
                raise ValueError(
                    f"{owner}: the input has batch size {b_in} but the held State '{name}' has "
                    f"batch size {b_held} (left from the previous batch); call "
                    f"tb.reset_all_states(model) between independent sequences (or "
                    f"tb.reset_all_states(model, batch_size={b_in})).{layout}"
                )
            raise ValueError(
                f"{owner}: the input's per-step shape {want} does not match the held State "
                f"'{name}' of shape {tuple(value.shape)}; call tb.reset_all_states(model) "
                f"before feeding differently shaped data.{layout}"
            )

    # ------------------------------------------------------------------- graph guard
    def _check_graph(self) -> None:
        """Refuse to continue from a State whose graph backward() has already consumed."""
        if torch.compiler.is_compiling() or not torch.is_grad_enabled():
            return
        guard = self.__dict__.get("_graph_guard")
        if guard is None:
            return
        values, consumed = guard
        if not consumed[0]:
            return
        held = [getattr(self, n) for n in values]
        if any(v is not None and v.grad_fn is not None and id(v) == values[n]
               for v, n in zip(held, values, strict=True)):
            raise RuntimeError(
                f"{self._name()}: the held State {sorted(values)} belongs to the graph of a "
                "previous forward pass that backward() has already consumed, so the new pass "
                "cannot backpropagate into it. Call tb.reset_all_states(model) before each new "
                "batch of independent sequences (tb.lightning.ResetStates does it in Lightning), "
                "or tb.detach_states(model) between chunks of one sequence (truncated BPTT)."
            )

    def _arm_graph_guard(self, outputs: list[torch.Tensor | None], names: list[str]) -> None:
        if torch.compiler.is_compiling():
            return
        consumed = [False]

        def mark(*_):
            consumed[0] = True

        armed = False
        for y in outputs:
            if y is not None and y.grad_fn is not None:
                y.grad_fn.register_hook(mark)
                armed = True
        self.__dict__["_graph_guard"] = (
            {n: id(getattr(self, n)) for n in names}, consumed) if armed else None

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_graph_guard", None)
        return state


def _initial(owner: str, init, shape, like: torch.Tensor, unit: str, name: str) -> torch.Tensor:
    """The initial value of a State of ``shape`` from a number, quantity, tensor or Initializer."""
    if isinstance(init, Initializer):
        init = init(shape, dtype=like.dtype, device=like.device)
    value = to_tensor(init, unit, owner=owner, name=name, dtype=like.dtype, device=like.device)
    try:
        return value.expand(shape).clone()
    except RuntimeError:
        raise ValueError(f"{owner}: '{name}' of shape {tuple(value.shape)} does not broadcast to "
                         f"the State shape {tuple(shape)}") from None


class _SpikingBase(_SequenceLayer):
    """Threshold, reset, surrogate and the membrane State of the spiking layers."""

    def __init__(self, size, *, V_th, V_reset, V_init, spk_fun, spk_reset, detach_reset,
                 learnable_threshold, time_major, dt, name, device, dtype):
        super().__init__(device=device, dtype=dtype)
        self.label = name
        owner = self._name()
        self.size = _as_size(size, owner)
        self.time_major = bool(time_major)
        if spk_reset not in ("soft", "hard"):
            raise ValueError(f"{owner}: 'spk_reset' must be 'soft' or 'hard', got {spk_reset!r}")
        self.spk_reset = spk_reset
        self.detach_reset = bool(detach_reset)
        try:
            self.spk_fun = ReluGrad() if spk_fun is None else get_surrogate(spk_fun)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{owner}: parameter 'spk_fun': {err}") from None
        self._init_dt(dt)
        pshape = self.size or ()
        self.V_th = self._param("V_th", V_th, "mV", pshape, learnable_threshold)
        self.V_reset = self._register_parameter_with_unit("V_reset", V_reset, "mV", shape=pshape)
        with torch.no_grad():
            if not bool((self.V_th > self.V_reset).all()):
                raise ValueError(
                    f"{owner}: 'V_th' must be above 'V_reset' (the scaled spike input would "
                    f"change sign), got V_th={self.V_th.min().item():g} mV and "
                    f"V_reset={self.V_reset.max().item():g} mV")
        if isinstance(V_init, Initializer):
            self.V_init = V_init
        else:
            self.V_init = to_tensor(V_init, "mV", owner=owner, name="V_init")
        self.V = HiddenState(None)

    def _param(self, name, value, unit, pshape, learnable, positive=False):
        """A parameter with a unit; learnable ones are per neuron when ``size`` is known."""
        if learnable and pshape and not isinstance(value, Initializer):
            value = to_tensor(value, unit, owner=self._name(), name=name,
                              dtype=self._factory["dtype"], device=self._factory["device"])
            value = value.expand(pshape).clone()
        return self._register_parameter_with_unit(name, value, unit, shape=pshape,
                                                  positive=positive, trainable=learnable)

    def _layer_tensor(self) -> torch.Tensor:
        return self.V_reset

    @property
    def hard_reset(self) -> bool:
        return self.spk_reset == "hard"

    def _repr_config(self) -> dict[str, Any]:
        return {"size": self.size, "spk_fun": self.spk_fun, "spk_reset": self.spk_reset,
                "detach_reset": self.detach_reset, "time_major": self.time_major}

    # --------------------------------------------------------------------- States
    def init_state(self, batch_size: int | None = None) -> None:
        """Set ``V`` to ``V_init`` for ``batch_size`` sequences; without a batch size (or without
        a ``size``) ``V`` is unset and the next input's shape decides."""
        if batch_size is None or self.size is None:
            self.V = HiddenState(None)
        else:
            self.V = HiddenState(self._initial_V((batch_size, *self.size)))

    def reset_state(self, batch_size: int | None = None) -> None:
        self.init_state(batch_size)

    def _initial_V(self, shape) -> torch.Tensor:
        return _initial(self._name(), self.V_init, shape, self._layer_tensor(), "mV", "V_init")

    def _start(self, x: torch.Tensor, name: str = "V") -> torch.Tensor:
        held = getattr(self, name)
        self._check_state(name, held, x)
        return self._initial_V(tuple(x.shape[1:])) if held is None else held


class MultiStepLIF(_SpikingBase):
    r"""A layer of leaky integrate-and-fire neurons run over a whole sequence.

    .. math::

        H_t = a V_{t-1} + b\,x_t,\quad a = e^{-\Delta t/\tau},\quad
        S_t = \Theta\!\left(\frac{H_t - V_\mathrm{th}}{V_\mathrm{th} - V_\mathrm{reset}}\right),
        \quad V_t = \mathrm{reset}(H_t, S_t)

    (see :mod:`torchbrain.training.layers`); ``b = 1 - a`` with ``decay_input`` (the exact
    solution of :math:`\tau\,dV/dt = -V + x`, so a constant input ``x`` drives ``V`` towards
    ``x``), else ``b = 1``.

    Parameters
    ----------
    size : int, tuple of int or None
        Feature shape after ``(T, B)``; ``None`` takes it from the input (then parameters are
        scalars and the shape is not checked).
    tau : quantity [time], default 5 ms
        Membrane time constant (plain numbers in ms), > 0; scalar or broadcastable to ``size``.
    V_th : quantity [voltage], default 1 mV
        Threshold (plain numbers in mV).
    V_reset : quantity [voltage], default 0 mV
        Reset potential; must be below ``V_th``.
    V_init : quantity [voltage] or Initializer, default 0 mV
        Initial membrane potential of a new sequence.
    spk_fun : Surrogate or str, default ``ReluGrad()``
        Spike function (Heaviside forward, surrogate derivative backward).
    spk_reset : {'soft', 'hard'}, default 'soft'
        Subtract ``V_th - V_reset`` after a spike, or set ``V`` to ``V_reset`` (no gradient
        through the reset amount, as in :class:`torchbrain.LIF`).
    detach_reset : bool, default False
        Stop the gradient through the spike in the reset term.
    learnable_tau, learnable_threshold : bool, default False
        Make ``tau`` / ``V_th`` trainable ``nn.Parameter`` s (per neuron when ``size`` is
        given, else one value for the layer). A learnable ``tau`` is clamped at
        ``TAU_MIN = 1e-3 ms`` when computing the decay so it cannot turn negative.
    decay_input : bool, default True
        Scale the input by ``1 - a`` (see above).
    time_major : bool, default True
        Input and output layout ``(T, B, ...)``; ``False``: ``(B, T, ...)``.
    dt : quantity [time], optional
        Step length (plain numbers in ms); default ``tb.environ``'s ``dt``. With neither, the
        forward pass raises (no default step is assumed).
    fused : bool or None, default None
        Use the fused op (``None``: whenever the surrogate allows it; ``True``: require it;
        ``False``: the step-by-step autograd loop, e.g. for double backward).
    name : str, optional
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    ``forward(x, return_v=False)`` returns the spikes, shape of ``x``; with ``return_v=True``
    also the pre-reset potentials :math:`H` (same shape). State ``V`` (shape ``(B, *size)``):
    the potential after the last step's reset.

    References
    ----------
    Neftci, E. O., Mostafa, H. & Zenke, F. (2019). Surrogate gradient learning in spiking neural
    networks. *IEEE Signal Processing Magazine* 36(6), 51-63.

    Examples
    --------
    >>> import torch, torchbrain as tb
    >>> from torch import nn
    >>> from torchbrain.training import MultiStepLIF
    >>> net = nn.Sequential(nn.Linear(20, 32), MultiStepLIF(32, tau=10.0, dt=1.0))
    >>> spikes = net(torch.rand(50, 4, 20))        # (T, B, N)
    >>> spikes.shape
    torch.Size([50, 4, 32])
    >>> _ = tb.reset_all_states(net)               # before the next batch
    """

    def __init__(
        self,
        size=None,
        tau=5.0 * u.ms,
        V_th=1.0 * u.mV,
        V_reset=0.0 * u.mV,
        V_init=0.0 * u.mV,
        spk_fun: Surrogate | str | None = None,
        spk_reset: str = "soft",
        detach_reset: bool = False,
        learnable_tau: bool = False,
        learnable_threshold: bool = False,
        decay_input: bool = True,
        time_major: bool = True,
        dt=None,
        fused: bool | None = None,
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(size, V_th=V_th, V_reset=V_reset, V_init=V_init, spk_fun=spk_fun,
                         spk_reset=spk_reset, detach_reset=detach_reset,
                         learnable_threshold=learnable_threshold, time_major=time_major, dt=dt,
                         name=name, device=device, dtype=dtype)
        self._init_tau(tau, learnable_tau)
        self.decay_input = bool(decay_input)
        self._set_fused(fused)

    def _init_tau(self, tau, learnable_tau):
        self.tau = self._param("tau", tau, "ms", self.size or (), learnable_tau, positive=True)

    def _set_fused(self, fused):
        key = surrogate_key(self.spk_fun)
        if fused is True and key is None:
            raise ValueError(f"{self._name()}: fused=True needs a surrogate whose class can be "
                             f"imported by its path; {self.spk_fun!r} cannot")
        self.fused = key is not None if fused is None else bool(fused)

    def _repr_config(self):
        return {**super()._repr_config(), "decay_input": self.decay_input, "fused": self.fused}

    def _coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        tau = self.tau.clamp_min(TAU_MIN) if self.tau.requires_grad else self.tau
        decay = torch.exp(-self._dt_value() / tau)
        return decay, (1.0 - decay) if self.decay_input else torch.ones_like(decay)

    def forward(self, x: torch.Tensor, return_v: bool = False):
        """Spikes for every step of ``x``; with ``return_v`` also the pre-reset potentials."""
        x = self._check_input(x)
        v0 = self._start(x)
        self._check_graph()
        decay, gain = self._coefficients()
        kw = dict(spk_fun=self.spk_fun, hard_reset=self.hard_reset,
                  detach_reset=self.detach_reset)
        if self.fused:
            spikes, v, h = multistep_lif(x, v0, decay, gain, self.V_th, self.V_reset, **kw)
        else:
            spikes, v, h = multistep_lif_reference(x, v0, decay, gain, self.V_th, self.V_reset,
                                                   return_h=return_v, **kw)
        self.V = v
        self._arm_graph_guard([spikes, h if return_v else None], ["V"])
        if return_v:
            return self._output(spikes), self._output(h)
        return self._output(spikes)


class MultiStepIF(MultiStepLIF):
    r"""A layer of non-leaky integrate-and-fire neurons (perfect integrators).

    .. math::

        H_t = V_{t-1} + x_t, \qquad S_t = \Theta\!\left(\frac{H_t - V_\mathrm{th}}
        {V_\mathrm{th} - V_\mathrm{reset}}\right), \qquad V_t = \mathrm{reset}(H_t, S_t)

    the neuron of ANN-to-SNN conversion (and of SpikingJelly's ``IFNode``). Unlike
    :class:`torchbrain.IF` (the reference's IF, which leaks towards 0), nothing decays.

    Parameters
    ----------
    other parameters
        As :class:`MultiStepLIF`: ``size``, ``V_th``, ``V_reset``, ``V_init``, ``spk_fun``,
        ``spk_reset``, ``detach_reset``, ``learnable_threshold``, ``time_major``, ``fused``,
        ``name``, ``device``, ``dtype`` (there is no time constant, so no ``tau`` or ``dt``).

    References
    ----------
    Rueckauer, B. et al. (2017). Conversion of continuous-valued deep networks to efficient
    event-driven networks for image classification. *Front. Neurosci.* 11, 682.
    """

    def __init__(
        self,
        size=None,
        V_th=1.0 * u.mV,
        V_reset=0.0 * u.mV,
        V_init=0.0 * u.mV,
        spk_fun: Surrogate | str | None = None,
        spk_reset: str = "soft",
        detach_reset: bool = False,
        learnable_threshold: bool = False,
        time_major: bool = True,
        fused: bool | None = None,
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(size, tau=1.0, V_th=V_th, V_reset=V_reset, V_init=V_init,
                         spk_fun=spk_fun, spk_reset=spk_reset, detach_reset=detach_reset,
                         learnable_threshold=learnable_threshold, decay_input=False,
                         time_major=time_major, fused=fused, name=name, device=device,
                         dtype=dtype)

    def _init_tau(self, tau, learnable_tau):
        self.tau = None  # no leak

    def _repr_config(self):
        config = super()._repr_config()
        config.pop("decay_input", None)
        return config

    def _coefficients(self):
        one = torch.ones((), dtype=self.V_reset.dtype, device=self.V_reset.device)
        return one, one


class MultiStepALIF(_SpikingBase):
    r"""A layer of adaptive LIF neurons (threshold adaptation) run over a whole sequence.

    .. math::

        H_t &= a V_{t-1} + b\,x_t, \qquad A_t = \rho\,A'_{t-1},\quad \rho = e^{-\Delta t/\tau_a}\\
        S_t &= \Theta\!\left(\frac{H_t - V_\mathrm{th} - \beta A_t}
               {V_\mathrm{th} - V_\mathrm{reset}}\right), \qquad
        V_t = \mathrm{reset}(H_t, S_t), \qquad A'_t = A_t + S_t

    the dynamics of :class:`torchbrain.ALIF` (same spikes for ``V_rest = 0``, ``R = 1 GΩ``), with
    the State holding the post-reset ``V`` and the post-spike adaptation ``a`` (:math:`A'`). The
    soft reset subtracts ``V_th - V_reset`` (not the adapted threshold), as ``ALIF`` does.

    Parameters
    ----------
    tau_a : quantity [time], default 100 ms
        Adaptation time constant (plain numbers in ms), > 0.
    beta : quantity [voltage], default 0.1 mV
        Threshold increase per unit of adaptation (plain numbers in mV).
    learnable_tau_a : bool, default False
        Make ``tau_a`` trainable.
    other parameters
        As :class:`MultiStepLIF` (``fused`` is not available: this layer runs the autograd loop).

    References
    ----------
    Bellec, G., Salaj, D., Subramoney, A., Legenstein, R. & Maass, W. (2018). Long short-term
    memory and learning-to-learn in networks of spiking neurons. *NeurIPS* 31.
    """

    def __init__(
        self,
        size=None,
        tau=5.0 * u.ms,
        tau_a=100.0 * u.ms,
        beta=0.1 * u.mV,
        V_th=1.0 * u.mV,
        V_reset=0.0 * u.mV,
        V_init=0.0 * u.mV,
        spk_fun: Surrogate | str | None = None,
        spk_reset: str = "soft",
        detach_reset: bool = False,
        learnable_tau: bool = False,
        learnable_tau_a: bool = False,
        learnable_threshold: bool = False,
        decay_input: bool = True,
        time_major: bool = True,
        dt=None,
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(size, V_th=V_th, V_reset=V_reset, V_init=V_init, spk_fun=spk_fun,
                         spk_reset=spk_reset, detach_reset=detach_reset,
                         learnable_threshold=learnable_threshold, time_major=time_major, dt=dt,
                         name=name, device=device, dtype=dtype)
        pshape = self.size or ()
        self.tau = self._param("tau", tau, "ms", pshape, learnable_tau, positive=True)
        self.tau_a = self._param("tau_a", tau_a, "ms", pshape, learnable_tau_a, positive=True)
        self.beta = self._register_parameter_with_unit("beta", beta, "mV", shape=pshape)
        self.decay_input = bool(decay_input)
        self.a = HiddenState(None)

    def init_state(self, batch_size: int | None = None) -> None:
        super().init_state(batch_size)
        if batch_size is None or self.size is None:
            self.a = HiddenState(None)
        else:
            ref = self._layer_tensor()
            self.a = HiddenState(torch.zeros((batch_size, *self.size), dtype=ref.dtype,
                                             device=ref.device))

    def _repr_config(self):
        return {**super()._repr_config(), "decay_input": self.decay_input}

    def forward(self, x: torch.Tensor, return_v: bool = False):
        """Spikes for every step of ``x``; with ``return_v`` also the pre-reset potentials."""
        x = self._check_input(x)
        v = self._start(x)
        self._check_graph()
        self._check_state("a", self.a, x)
        a = torch.zeros_like(v) if self.a is None else self.a
        dt = self._dt_value()
        tau = self.tau.clamp_min(TAU_MIN) if self.tau.requires_grad else self.tau
        tau_a = self.tau_a.clamp_min(TAU_MIN) if self.tau_a.requires_grad else self.tau_a
        decay, rho = torch.exp(-dt / tau), torch.exp(-dt / tau_a)
        drive = x * (1.0 - decay) if self.decay_input else x
        span = self.V_th - self.V_reset
        spikes, hs = [], []
        for drive_t in drive.unbind(0):
            h = decay * v + drive_t
            a = rho * a
            s = self.spk_fun((h - self.V_th - self.beta * a) / span)
            v = lif_reset(h, s.detach() if self.detach_reset else s, self.V_th, self.V_reset,
                          self.hard_reset)
            a = a + s
            spikes.append(s)
            if return_v:
                hs.append(h)
        self.V, self.a = v, a
        spikes = torch.stack(spikes)
        h = torch.stack(hs) if return_v else None
        self._arm_graph_guard([spikes, h], ["V", "a"])
        if return_v:
            return self._output(spikes), self._output(h)
        return self._output(spikes)


class RecurrentLIF(_SpikingBase):
    r"""A recurrently connected layer of LIF neurons (optionally adaptive: an LSNN).

    .. math::

        H_t = a V_{t-1} + b\,(x_t + W_\mathrm{rec} S_{t-1}), \qquad
        S_t = \Theta\!\left(\frac{H_t - V_\mathrm{th} - \beta A_t}{V_\mathrm{th} - V_\mathrm{reset}}
        \right), \qquad V_t = \mathrm{reset}(H_t, S_t)

    with the adaptation :math:`A_t` of :class:`MultiStepALIF` when ``adaptive=True`` (Bellec et
    al.'s LSNN), else :math:`\beta = 0`. ``x`` is the already projected input (size ``size``);
    :math:`W_\mathrm{rec}` is the ``nn.Linear`` ``rec`` (no bias; its diagonal is masked out
    unless ``self_connections=True``). States: ``V``, the last spikes ``spike`` and, when
    adaptive, ``a``.

    Parameters
    ----------
    size : int
        Number of neurons (required: the recurrent weight needs it).
    adaptive : bool, default False
        Threshold adaptation (``tau_a``, ``beta`` as :class:`MultiStepALIF`).
    self_connections : bool, default False
        Keep the diagonal of the recurrent weight.
    other parameters
        As :class:`MultiStepLIF` and :class:`MultiStepALIF`; runs the autograd loop.

    References
    ----------
    Bellec, G. et al. (2018). Long short-term memory and learning-to-learn in networks of spiking
    neurons. *NeurIPS* 31.
    """

    def __init__(
        self,
        size,
        tau=5.0 * u.ms,
        V_th=1.0 * u.mV,
        V_reset=0.0 * u.mV,
        V_init=0.0 * u.mV,
        spk_fun: Surrogate | str | None = None,
        spk_reset: str = "soft",
        detach_reset: bool = False,
        adaptive: bool = False,
        tau_a=100.0 * u.ms,
        beta=0.1 * u.mV,
        self_connections: bool = False,
        learnable_tau: bool = False,
        learnable_threshold: bool = False,
        decay_input: bool = True,
        time_major: bool = True,
        dt=None,
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        if size is None:
            raise ValueError(f"{type(self).__name__}: 'size' is required (the recurrent weight "
                             "is size x size)")
        super().__init__(size, V_th=V_th, V_reset=V_reset, V_init=V_init, spk_fun=spk_fun,
                         spk_reset=spk_reset, detach_reset=detach_reset,
                         learnable_threshold=learnable_threshold, time_major=time_major, dt=dt,
                         name=name, device=device, dtype=dtype)
        if len(self.size) != 1:
            raise ValueError(f"{self._name()}: 'size' must be an int, got {size!r}")
        n = self.size[0]
        pshape = self.size
        self.tau = self._param("tau", tau, "ms", pshape, learnable_tau, positive=True)
        self.adaptive = bool(adaptive)
        if self.adaptive:
            self.tau_a = self._param("tau_a", tau_a, "ms", pshape, False, positive=True)
            self.beta = self._register_parameter_with_unit("beta", beta, "mV", shape=pshape)
        self.decay_input = bool(decay_input)
        self.self_connections = bool(self_connections)
        self.rec = nn.Linear(n, n, bias=False, device=device, dtype=self._factory["dtype"])
        if not self.self_connections:
            self.register_buffer("rec_mask", 1.0 - torch.eye(n, dtype=self._factory["dtype"],
                                                             device=device), persistent=False)
            with torch.no_grad():
                self.rec.weight.mul_(self.rec_mask)
        self.spike = HiddenState(None)
        self.a = HiddenState(None)

    def init_state(self, batch_size: int | None = None) -> None:
        super().init_state(batch_size)
        if batch_size is None:
            self.spike = HiddenState(None)
            self.a = HiddenState(None)
        else:
            ref = self._layer_tensor()
            zeros = torch.zeros((batch_size, *self.size), dtype=ref.dtype, device=ref.device)
            self.spike = HiddenState(zeros)
            self.a = HiddenState(zeros.clone() if self.adaptive else None)

    def _repr_config(self):
        return {**super()._repr_config(), "adaptive": self.adaptive,
                "self_connections": self.self_connections, "decay_input": self.decay_input}

    def forward(self, x: torch.Tensor, return_v: bool = False):
        """Spikes for every step of ``x``; with ``return_v`` also the pre-reset potentials."""
        x = self._check_input(x)
        v = self._start(x)
        self._check_graph()
        self._check_state("spike", self.spike, x)
        s = torch.zeros_like(v) if self.spike is None else self.spike
        dt = self._dt_value()
        tau = self.tau.clamp_min(TAU_MIN) if self.tau.requires_grad else self.tau
        decay = torch.exp(-dt / tau)
        gain = (1.0 - decay) if self.decay_input else None
        w = self.rec.weight if self.self_connections else self.rec.weight * self.rec_mask
        if self.adaptive:
            self._check_state("a", self.a, x)
            a = torch.zeros_like(v) if self.a is None else self.a
            rho = torch.exp(-dt / self.tau_a)
        span = self.V_th - self.V_reset
        spikes, hs = [], []
        for x_t in x.unbind(0):
            drive = x_t + s @ w.t()
            h = decay * v + (drive if gain is None else gain * drive)
            if self.adaptive:
                a = rho * a
                s = self.spk_fun((h - self.V_th - self.beta * a) / span)
            else:
                s = self.spk_fun((h - self.V_th) / span)
            v = lif_reset(h, s.detach() if self.detach_reset else s, self.V_th, self.V_reset,
                          self.hard_reset)
            if self.adaptive:
                a = a + s
            spikes.append(s)
            if return_v:
                hs.append(h)
        self.V, self.spike = v, s
        names = ["V", "spike"]
        if self.adaptive:
            self.a = a
            names.append("a")
        spikes = torch.stack(spikes)
        h = torch.stack(hs) if return_v else None
        self._arm_graph_guard([spikes, h], names)
        if return_v:
            return self._output(spikes), self._output(h)
        return self._output(spikes)


class TimeDistributed(nn.Sequential):
    """Apply stateless ``torch.nn`` layers at every time step by folding time into the batch.

    ``(T, B, *F) -> (T * B, *F) -> modules -> (T, B, *F')``; works the same for batch-major
    ``(B, T, *F)`` input (the first two dimensions are folded and restored in order). Use it for
    convolutions, pooling, batch norm (statistics over ``T * B``), dropout, flatten, linear
    layers. ``nn.Linear`` alone needs no wrapper (it acts on the last dimension).

    Parameters
    ----------
    *modules : nn.Module
        Applied in order, as in ``nn.Sequential``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> conv = TimeDistributed(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4))
    >>> conv(torch.rand(10, 8, 2, 16, 16)).shape
    torch.Size([10, 8, 4, 16, 16])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ValueError(f"TimeDistributed: expected a tensor of shape (T, B, ...), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        lead = x.shape[:2]
        y = super().forward(x.flatten(0, 1))
        return y.unflatten(0, lead)


#: SpikingJelly's name for :class:`TimeDistributed`.
SeqToANNContainer = TimeDistributed


class LeakyIntegratorReadout(_SequenceLayer):
    r"""A non-spiking leaky integrator readout: ``Linear`` followed by a low-pass filter.

    .. math::

        I_t = W x_t + c, \qquad y_t = a\,y_{t-1} + b\,I_t,\qquad a = e^{-\Delta t/\tau}

    with ``b = 1`` (default, as :class:`torchbrain.readouts.LeakyRateReadout`) or, with
    ``decay_input=True``, ``b = 1 - a`` (then :math:`y` is a running average of :math:`I`).
    Returns :math:`y` for every step, ``(T, B, out)``; reduce it over time with
    :func:`torchbrain.training.membrane_cross_entropy` (``'max'``, ``'mean'`` or ``'last'``).
    State ``y`` (``(B, out)``) continues across calls like the spiking layers'.

    Parameters
    ----------
    in_features : int or None
        Input size; ``None`` skips the ``Linear`` (then ``out_features`` is the input size).
    out_features : int
        Number of readout units.
    tau : quantity [time], default 5 ms
        Time constant (plain numbers in ms), > 0.
    bias : bool, default True
        ``Linear`` bias.
    learnable_tau : bool, default False
        Make ``tau`` trainable (per unit).
    decay_input : bool, default False
    time_major : bool, default True
    dt : quantity [time], optional
        Step length (plain numbers in ms); default ``tb.environ``'s ``dt`` (an error when
        neither is set).
    name, device, dtype : optional

    References
    ----------
    Zenke, F. & Vogels, T. P. (2021). The remarkable robustness of surrogate gradient learning
    for instilling complex function in spiking neural networks. *Neural Computation* 33(4),
    899-925.
    """

    def __init__(
        self,
        in_features: int | None,
        out_features: int,
        tau=5.0 * u.ms,
        bias: bool = True,
        learnable_tau: bool = False,
        decay_input: bool = False,
        time_major: bool = True,
        dt=None,
        name: str | None = None,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(device=device, dtype=dtype)
        self.label = name
        owner = self._name()
        self.size = _as_size(out_features, owner)
        if len(self.size) != 1:
            raise ValueError(f"{owner}: 'out_features' must be an int, got {out_features!r}")
        self.in_features = None if in_features is None else _as_size(in_features, owner)[0]
        self.out_features = self.size[0]
        self.time_major = bool(time_major)
        self.decay_input = bool(decay_input)
        self._init_dt(dt)
        self.linear = None if in_features is None else nn.Linear(
            self.in_features, self.out_features, bias=bias, device=device,
            dtype=self._factory["dtype"])
        pshape = self.size if learnable_tau else ()
        if learnable_tau:
            tau = to_tensor(tau, "ms", owner=owner, name="tau", dtype=self._factory["dtype"],
                            device=device).expand(pshape).clone()
        self.tau = self._register_parameter_with_unit("tau", tau, "ms", shape=self.size,
                                                      positive=True, trainable=learnable_tau)
        self.y = HiddenState(None)

    def _layer_tensor(self):
        return self.tau

    def _repr_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "decay_input": self.decay_input, "time_major": self.time_major}

    def _check_input(self, x, what="input", size=...):
        return super()._check_input(x, what, self.size if self.linear is None
                                    else (self.in_features,))

    def init_state(self, batch_size: int | None = None) -> None:
        if batch_size is None:
            self.y = HiddenState(None)
        else:
            ref = self._layer_tensor()
            self.y = HiddenState(torch.zeros((batch_size, self.out_features), dtype=ref.dtype,
                                             device=ref.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The filtered readout for every step of ``x``: ``(T, B, out_features)``."""
        x = self._check_input(x)
        current = x if self.linear is None else self.linear(x)
        held = self.y
        self._check_state("y", held, current)
        self._check_graph()
        y = torch.zeros_like(current[0]) if held is None else held
        tau = self.tau.clamp_min(TAU_MIN) if self.tau.requires_grad else self.tau
        decay = torch.exp(-self._dt_value() / tau)
        if self.decay_input:
            current = current * (1.0 - decay)
        ys = []
        for i_t in current.unbind(0):
            y = decay * y + i_t
            ys.append(y)
        self.y = y
        out = torch.stack(ys)
        self._arm_graph_guard([out], ["y"])
        return self._output(out)


class SpikeCountReadout(nn.Module):
    """Spike counts (or rates) over time: ``(T, B, C) -> (B, C)``.

    Parameters
    ----------
    reduce : {'sum', 'mean'}, default 'sum'
        Total count, or the mean per step (the firing probability per step).
    time_major : bool, default True
        The time dimension is 0 (``True``) or 1.
    """

    def __init__(self, reduce: str = "sum", time_major: bool = True):
        super().__init__()
        if reduce not in ("sum", "mean"):
            raise ValueError(f"SpikeCountReadout: 'reduce' must be 'sum' or 'mean', got "
                             f"{reduce!r}")
        self.reduce = reduce
        self.time_major = bool(time_major)

    def extra_repr(self) -> str:
        return f"reduce={self.reduce!r}, time_major={self.time_major}"

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        dim = 0 if self.time_major else 1
        return spikes.sum(dim) if self.reduce == "sum" else spikes.mean(dim)
