r"""Online learning: gradients whose memory does not grow with the sequence length.

Backpropagation through time (BPTT) keeps every step's activations for the backward pass, so
its memory grows linearly with the number of steps ``T``. The learners here instead carry
*eligibility traces* forward in time and turn each step's loss into a weight gradient at that
step; nothing per step is kept. Their memory is that of the traces, fixed in ``T``.

.. list-table::
   :header-rows: 1
   :widths: 22 40 38

   * - learner
     - model
     - traces per sample (fixed in ``T``)
   * - :class:`~torchbrain.training.eprop.EProp` (e-prop, Bellec et al. 2020)
     - ``[Linear] -> MultiStepLIF / MultiStepIF / MultiStepALIF / RecurrentLIF -> [readout]``
     - LIF: ``N_pre`` (presynaptic population); ALIF: also ``N_post x N_pre``
   * - :class:`~torchbrain.training.eprop.DRTRL` (diagonal RTRL)
     - the same
     - ``N_post x N_pre`` per trace (``N_pre`` for LIF with ``detach_reset=True``)
   * - :class:`~torchbrain.training.ottt.OTTT` (Xiao et al. 2022)
     - feed-forward ``Linear -> spiking -> Linear -> spiking ... -> [readout]``
     - ``N_pre`` per ``Linear``

``N_pre`` counts the inputs of a weight matrix (with recurrence, the input and the recurrent
spikes, plus one for a bias); a readout adds its own ``N_hidden + 1`` trace. The traces are
listed by :meth:`OnlineLearner.trace_bytes`.

The three rules and when they are exact
---------------------------------------
Write a spiking layer as :math:`H_t = a V_{t-1} + b I_t`, :math:`I_t = W_\mathrm{in} x_t +
W_\mathrm{rec} S_{t-1} + c`, the spike :math:`S_t = \Theta(u_t)` of
:math:`u_t = (H_t - V_\mathrm{th} - \beta A_t)/(V_\mathrm{th} - V_\mathrm{reset})` and
:math:`V_t` the potential after the reset (:mod:`torchbrain.training.layers`; the adaptation
:math:`A` and :math:`\beta` only for ALIF). For a loss :math:`L = \sum_t \ell_t`,

.. math::

    \frac{dL}{dW_{ji}} = \sum_t \frac{\partial \ell_t}{\partial H_{j,t}}\,
    \frac{d H_{j,t}}{d W_{ji}} + \frac{\partial \ell_t}{\partial A_{j,t}}\,
    \frac{d A_{j,t}}{d W_{ji}} \qquad \text{(forward-mode, "RTRL")}.

The learners compute :math:`\partial \ell_t / \partial(H_t, A_t)` at step ``t`` with autograd
through that step alone (the *learning signal*, with the surrogate derivative
:math:`\psi_t = g(u_t)/(V_\mathrm{th} - V_\mathrm{reset})`), and carry the total derivatives
:math:`e^H_{ji} = dH_j/dW_{ji}`, :math:`e^A_{ji} = dA_j/dW_{ji}` forward. Keeping only the
neuron's own dependence on its past (the *diagonal* of the state Jacobian) gives

.. math::

    e^H_{t+1} = a\,\big(e^H_t + r_t\,\psi_t\,(e^H_t - \beta e^A_t)\big) + b\,p_{t+1},\qquad
    e^A_{t+1} = \rho\,\big(e^A_t + \psi_t\,(e^H_t - \beta e^A_t)\big),

with :math:`p` the presynaptic value (:math:`x_i`, :math:`S_{i,t-1}` or 1 for the bias) and
:math:`r_t = \partial V_t/\partial S_t` the reset's derivative (:math:`-(V_\mathrm{th} -
V_\mathrm{reset})` soft, :math:`V_\mathrm{reset} - H_t` hard, 0 with ``detach_reset``).

* :class:`~torchbrain.training.eprop.DRTRL` keeps this recursion as it is. For a feed-forward
  layer (no recurrence) the state Jacobian *is* diagonal, so the gradient equals BPTT's exactly,
  whatever the reset (tested to 1e-10 in float64). With recurrence it drops the paths through
  other neurons' spikes: an approximation, exact when the recurrent weights are zero.
* :class:`~torchbrain.training.eprop.EProp` is e-prop: the same traces with the reset's
  derivative left out (:math:`r = 0`, as Bellec et al. do). For LIF the trace then no longer
  depends on the postsynaptic neuron, :math:`e^H_{ji} = b_j \bar p_i` with
  :math:`\bar p_{t} = a \bar p_{t-1} + p_t`, so it lives on the presynaptic population. It
  equals :class:`DRTRL` when the layer has ``detach_reset=True`` (then it is exact for a
  feed-forward layer too).
* :class:`~torchbrain.training.ottt.OTTT` (online training through time) is for feed-forward
  stacks: at each step the loss is backpropagated through the layers (not through time) and each
  ``Linear`` uses the presynaptic trace :math:`\bar p_t = a \bar p_{t-1} + p_t` (``a`` the decay
  of the layer it feeds) in place of the presynaptic value for its weight gradient. For one layer
  with ``detach_reset=True`` this is again the exact gradient; with several layers it leaves out
  how a layer's earlier outputs reach the loss through the next layer's membrane: an
  approximation.

A leaky readout (:class:`~torchbrain.training.LeakyIntegratorReadout`, :math:`y_t = \kappa
y_{t-1} + c\,(W_\mathrm{out} S_t + d)`) gets the exact gradient for its own weights from the
trace :math:`\bar S_t = \kappa \bar S_{t-1} + S_t`. The learning signal it sends back to the
hidden layer is the immediate one (a spike's later effect through :math:`\kappa` is left out),
so a readout with :math:`\kappa > 0` makes the hidden layer's gradient approximate, unless
EProp/DRTRL run with ``filter_readout=True`` (Bellec et al.'s filtered eligibility traces,
per synapse): then the readout's path is exact too.

Measured
--------
How close the approximations are (cosine similarity of the whole gradient with BPTT's, float64,
``T = 30``, three random networks each, from ``tests/test_online.py``, which requires > 0.8 for
the recurrent and > 0.7 for the OTTT case):

======================================  ==================
case                                    cosine similarity
======================================  ==================
EProp, recurrent LIF layer              0.977 - 0.979
EProp, recurrent ALIF layer             0.980 - 0.992
DRTRL, recurrent LIF layer              0.996 - 0.999
DRTRL, recurrent ALIF layer             0.9986 - 0.9994
OTTT, two feed-forward LIF layers       0.9987 - 0.9999
======================================  ==================

Memory (``benchmarks/online_memory.py``; batch 16, 128 neurons per layer, 40 inputs, a leaky
readout of 2, float32, one CPU thread; the loss at every step). "Learning memory" is the peak of
the bytes autograd keeps for backward passes (:class:`SavedTensorMeter`) plus the learner's
traces and States; "RSS" the growth of the process's peak resident memory during the run (a
fresh process per run, after a warm-up; allocator caching makes values of a few MiB noise).
Recurrent: ``Linear -> RecurrentLIF(adaptive) -> readout``; feed-forward: two ``Linear ->
MultiStepLIF`` layers and the readout.

===========  ======  =======  ================  ==========  ============
model        method  T        learning (MiB)    RSS (MiB)   CPU time (s)
===========  ======  =======  ================  ==========  ============
recurrent    BPTT    100      2.7               +6.3        0.02
recurrent    BPTT    10,000   261.4             +1067       3.4
recurrent    EProp   100      1.38              +3.1        0.16
recurrent    EProp   10,000   1.38              +0          7.9
recurrent    DRTRL   100      1.38              +0          0.15
recurrent    DRTRL   10,000   1.38              +0          8.0
feedforward  BPTT    100      3.5               +7.8        0.01
feedforward  BPTT    10,000   339.4             +402        1.0
feedforward  OTTT    100      0.15              +0.1        0.05
feedforward  OTTT    10,000   0.15              +0          4.5
===========  ======  =======  ================  ==========  ============

(The adaptive layer needs per-synapse adaptation traces, 1.37 MiB of the 1.38; a LIF layer with
e-prop would hold 0.02 MiB. Online learning costs more time per step: one small update of the
traces and one outer product per step, where BPTT batches its work over the sequence.)

A temporal task (``examples/online_evidence.py``): an LSNN of 100 neurons learns evidence
accumulation (seven left/right cues, a delay, a recall cue), 200 batches of 64 trials,
``T = 175`` steps, the same initial weights, batches, loss and firing-rate penalty for both:

=======  ==========  ============  =========================  ===========================
method   accuracy    CPU time (s)  learning memory (MiB),     learning memory (MiB),
                                   ``T = 175``                delay 1000 (``T = 1125``)
=======  ==========  ============  =========================  ===========================
e-prop   0.967       38.7          3.6                        3.6
BPTT     0.916       14.6          14.7                       93.9
=======  ==========  ============  =========================  ===========================

Accuracy on 512 held-out trials (seed 0, learning rate 1e-3, the better of 1e-3, 2e-3 and 5e-3
for both: BPTT 0.916 / 0.826 / 0.826, e-prop 0.967 / 0.961 / 0.939); one CPU thread. The memory
column for the long delay comes from one training batch (it does not depend on the training
length). E-prop's memory is its per-synapse adaptation traces; BPTT's grows with the trial.

Use in an ordinary loop
-----------------------
A learner wraps a model; ``step`` advances it by one step and returns the step's output with a
one-step autograd graph; ``accumulate`` turns that step's loss into weight gradients (added to
``.grad``, as ``backward`` would); ``apply`` runs the optimizer, every step or every ``K`` steps.

>>> import torch
>>> import torch.nn.functional as F
>>> from torch import nn
>>> from torchbrain.training import LeakyIntegratorReadout, RecurrentLIF
>>> from torchbrain.training.eprop import EProp
>>> _ = torch.manual_seed(0)
>>> model = nn.Sequential(nn.Linear(5, 32), RecurrentLIF(32, tau=20., adaptive=True,
...                                                      detach_reset=True, dt=1.),
...                       LeakyIntegratorReadout(32, 2, tau=20., dt=1.))
>>> learner = EProp(model)
>>> opt = torch.optim.Adam(model.parameters(), lr=1e-2)
>>> x = torch.rand(50, 8, 5)                       # (T, B, inputs)
>>> target = torch.randint(0, 2, (8,))
>>> learner.reset()
>>> for t in range(50):
...     out = learner.step(x[t])                   # (B, 2), one-step graph
...     if t >= 40:                                # the loss of the last 10 steps
...         learner.accumulate(F.cross_entropy(out, target))
...     if (t + 1) % 10 == 0:                      # update every K = 10 steps
...         learner.apply(opt)
>>> out.shape
torch.Size([8, 2])

:meth:`OnlineLearner.run` is the same loop over a whole sequence. In Lightning, use manual
optimisation and run the loop in ``training_step``, passing ``backward=self.manual_backward``
so Lightning's precision plugins see every backward pass::

    class OnlineModule(L.LightningModule):
        def __init__(self, model):
            super().__init__()
            self.model = model
            self.automatic_optimization = False
            self.learner = EProp(model, backward=self.manual_backward)

        def training_step(self, batch, batch_idx):
            x, y = batch                                   # x: (B, T, N)
            opt = self.optimizers()
            out, loss = self.learner.run(
                x, lambda out, t: F.cross_entropy(out, y) if t >= x.shape[1] - 10 else None,
                optimizer=opt, update_every=10, time_major=False)
            self.log("train_loss", loss)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

The learner owns the running state (membrane potentials, adaptation, the last spikes, the
readout and the traces); the layers' own States are neither read nor changed. Only the weights
and biases are learned (input ``Linear``, recurrent weight, readout); a learnable time constant
or threshold raises an error (freeze it with ``requires_grad_(False)`` or train with BPTT).

References
----------
Bellec, G., Scherr, F., Subramoney, A., Hajek, E., Salaj, D., Legenstein, R. & Maass, W. (2020).
A solution to the learning dilemma for recurrent networks of spiking neurons. *Nature
Communications* 11, 3625.

Williams, R. J. & Zipser, D. (1989). A learning algorithm for continually running fully
recurrent neural networks. *Neural Computation* 1(2), 270-280.

Menick, J., Elsen, E., Evci, U., Osindero, S., Simonyan, K. & Graves, A. (2021). Practical
real time recurrent learning with a sparse approximation. *ICLR*.

Xiao, M., Meng, Q., Zhang, Z., He, D. & Lin, Z. (2022). Online training through time for spiking
neural networks. *NeurIPS* 35.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable

import torch
from torch import nn

from ..functional.lif import lif_reset
from .layers import (
    LeakyIntegratorReadout,
    MultiStepALIF,
    MultiStepIF,
    MultiStepLIF,
    RecurrentLIF,
)

__all__ = ["OnlineLearner", "SavedTensorMeter"]


# ------------------------------------------------------------------------------ memory meter
class _Saved:
    """What the pack hook hands autograd: the tensor, plus a finaliser that counts it freed."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


class SavedTensorMeter:
    """Count the bytes autograd keeps for backward passes, live and at the peak.

    A context manager installing :func:`torch.autograd.graph.saved_tensors_hooks`: every tensor
    an operation saves for its backward pass is counted once per storage (a tensor saved by
    several operations, or several views of one storage, count once) from the moment it is
    saved until the graph holding it is freed (after ``backward``, or when the graph is dropped).

    Attributes
    ----------
    live_bytes : int
        Bytes saved now.
    peak_bytes : int
        The largest ``live_bytes`` seen.

    Examples
    --------
    >>> import torch
    >>> w = torch.ones(1000, requires_grad=True)
    >>> with SavedTensorMeter() as meter:
    ...     loss = (w * torch.full((1000,), 2.0)).sin().sum()   # saves two 4000-byte tensors
    ...     loss.backward()
    >>> meter.peak_bytes >= 8000, meter.live_bytes
    (True, 0)
    """

    def __init__(self):
        self.live_bytes = 0
        self.peak_bytes = 0
        self._count: dict[int, list[int]] = {}  # storage pointer -> [references, bytes]
        self._hooks = None

    def __enter__(self) -> SavedTensorMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        self._hooks = None

    def _pack(self, tensor: torch.Tensor) -> _Saved:
        box = _Saved(tensor)
        try:
            storage = tensor.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # tensors without a storage
            return box
        entry = self._count.get(key)
        if entry is None:
            self._count[key] = [1, size]
            self.live_bytes += size
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        else:
            entry[0] += 1
        weakref.finalize(box, self._release, key)
        return box

    @staticmethod
    def _unpack(box: _Saved) -> torch.Tensor:
        return box.tensor

    def _release(self, key: int) -> None:
        entry = self._count.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.live_bytes -= entry[1]
            del self._count[key]

    def reset_peak(self) -> None:
        """Restart the peak from the bytes live now."""
        self.peak_bytes = self.live_bytes


# ------------------------------------------------------------------------------- helpers
def _tensor_bytes(values: Iterable) -> int:
    return sum(v.numel() * v.element_size() for v in values if isinstance(v, torch.Tensor))


def _collapse(value: torch.Tensor) -> torch.Tensor:
    """A per-neuron constant whose entries are all equal becomes a scalar (so traces that
    depend on it stay on the presynaptic population)."""
    value = value.detach()
    if value.numel() > 1 and bool((value == value.reshape(-1)[0]).all()):
        return value.reshape(-1)[0].clone()
    return value


def _column(value: torch.Tensor) -> torch.Tensor:
    """A per-neuron constant ``(N,)`` as ``(N, 1)``, to scale traces ``(B, N, P)`` per row."""
    return value.unsqueeze(-1) if value.dim() >= 1 else value


def _outer_sum(delta: torch.Tensor, trace: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_b \delta_{bj}\, e_{bji}` for a trace ``(B, N, P)`` or ``(B, 1, P)``."""
    if trace.shape[1] == 1:
        return delta.t() @ trace[:, 0, :]
    return torch.einsum("bj,bji->ji", delta, trace)


def _add_grad(param: torch.Tensor, grad: torch.Tensor) -> None:
    grad = grad.to(param.dtype).reshape(param.shape)
    if param.grad is None:
        param.grad = grad.clone()
    else:
        param.grad.add_(grad)


def _frozen(owner: str, module: nn.Module, names: tuple[str, ...]) -> None:
    """Refuse learnable parameters the online rules cannot train."""
    for name in names:
        value = getattr(module, name, None)
        if isinstance(value, torch.Tensor) and value.requires_grad:
            raise ValueError(
                f"{owner}: the layer {type(module).__name__} has a learnable '{name}'; the online "
                f"rules train weights and biases only. Freeze it "
                f"(layer.{name}.requires_grad_(False)) or train this model with BPTT.")


class _Cell:
    """One step of a spiking layer of :mod:`torchbrain.training.layers`, without autograd
    through time: constants read from the layer, the State kept by the learner."""

    def __init__(self, layer: nn.Module, owner: str):
        if not isinstance(layer, MultiStepLIF | MultiStepALIF | RecurrentLIF):
            raise TypeError(f"{owner}: expected a MultiStepLIF, MultiStepIF, MultiStepALIF or "
                            f"RecurrentLIF layer, got {type(layer).__name__}")
        _frozen(owner, layer, ("tau", "tau_a", "V_th", "V_reset", "beta"))
        self.layer = layer
        self.owner = owner
        self.recurrent = isinstance(layer, RecurrentLIF)
        self.adaptive = isinstance(layer, MultiStepALIF) or (self.recurrent and layer.adaptive)
        self.size = layer.size
        self.spk_fun = layer.spk_fun
        self.hard = layer.hard_reset
        self.detach_reset = layer.detach_reset

    def constants(self) -> dict[str, torch.Tensor]:
        """Decay ``a``, input gain ``b``, adaptation decay ``rho`` and ``beta``, thresholds."""
        layer = self.layer
        ref = layer.V_reset
        dt = layer._dt_value()
        if isinstance(layer, MultiStepIF):
            decay = torch.ones((), dtype=ref.dtype, device=ref.device)
        else:
            decay = torch.exp(-dt / layer.tau.detach())
        gain = (1.0 - decay) if layer.decay_input else torch.ones_like(decay)
        c = {"a": _collapse(decay), "b": _collapse(gain), "V_th": layer.V_th.detach(),
             "V_reset": layer.V_reset.detach()}
        c["span"] = c["V_th"] - c["V_reset"]
        if self.adaptive:
            c["rho"] = _collapse(torch.exp(-dt / layer.tau_a.detach()))
            c["beta"] = layer.beta.detach()
        return c

    def rec_weight(self) -> torch.Tensor:
        layer = self.layer
        w = layer.rec.weight
        return w if layer.self_connections else w * layer.rec_mask

    def initial(self, batch: int) -> dict[str, torch.Tensor]:
        shape = (batch, *self.size) if self.size is not None else None
        if shape is None:
            raise ValueError(f"{self.owner}: the spiking layer needs a 'size' for online "
                             "learning")
        with torch.no_grad():
            V = self.layer._initial_V(shape)
        state = {"V": V}
        if self.adaptive:
            state["A"] = torch.zeros(shape, dtype=V.dtype, device=V.device)
        if self.recurrent:
            state["S"] = torch.zeros(shape, dtype=V.dtype, device=V.device)
        return state

    def reset_derivative(self, c, H: torch.Tensor) -> torch.Tensor | None:
        r""":math:`\partial V_t / \partial S_t` of the layer's reset (``None``: no gradient)."""
        if self.detach_reset:
            return None
        if self.hard:
            return c["V_reset"] - H
        return -c["span"]

    def spike_input(self, c, H, A):
        if A is None:
            return (H - c["V_th"]) / c["span"]
        return (H - c["V_th"] - c["beta"] * A) / c["span"]

    def after_spike(self, c, H, S, A):
        """The State after the step's spike (values only)."""
        V = lif_reset(H, S, c["V_th"], c["V_reset"], self.hard)
        return V, (None if A is None else A + S)


class _Readout:
    r"""A readout after the spiking layer: ``LeakyIntegratorReadout`` or a plain ``Linear``,
    :math:`y_t = \kappa y_{t-1} + c\,(W S_t + d)`."""

    def __init__(self, module: nn.Module, owner: str, n_hidden: int):
        self.module = module
        if isinstance(module, LeakyIntegratorReadout):
            _frozen(owner, module, ("tau",))
            self.linear = module.linear
            self.leaky = True
            n_in = module.in_features if module.linear is not None else module.out_features
        elif isinstance(module, nn.Linear):
            self.linear = module
            self.leaky = False
            n_in = module.in_features
        else:
            raise TypeError(f"{owner}: the readout must be a LeakyIntegratorReadout or an "
                            f"nn.Linear, got {type(module).__name__}")
        if n_in != n_hidden:
            raise ValueError(f"{owner}: the readout takes {n_in} inputs but the spiking layer "
                             f"has {n_hidden} neurons")

    def constants(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.leaky:
            zero = torch.zeros((), dtype=like.dtype, device=like.device)
            return {"k": zero, "c": torch.ones_like(zero)}
        m = self.module
        k = torch.exp(-m._dt_value() / m.tau.detach())
        c = (1.0 - k) if m.decay_input else torch.ones_like(k)
        return {"k": _collapse(k), "c": _collapse(c)}

    def params(self) -> list[torch.Tensor]:
        if self.linear is None:
            return []
        return [p for p in (self.linear.weight, self.linear.bias) if p is not None]


def _check_step_input(owner: str, x, like: torch.Tensor, n_in: int | None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner}: step() takes one time step, a tensor (B, inputs), got "
                        f"{type(x).__name__}")
    if not x.is_floating_point() or x.dtype != like.dtype:
        raise TypeError(f"{owner}: the input has dtype {x.dtype} but the model's parameters are "
                        f"{like.dtype}; convert one of them")
    if x.device != like.device:
        raise ValueError(f"{owner}: the input is on {x.device} but the model is on "
                         f"{like.device}; move one of them")
    if x.dim() != 2 or (n_in is not None and x.shape[1] != n_in):
        want = f"(B, {n_in})" if n_in is not None else "(B, inputs)"
        hint = (" (step() takes a single time step: pass x[t], not the whole sequence)"
                if x.dim() == 3 else "")
        raise ValueError(f"{owner}: step() expects an input of shape {want}, got "
                         f"{tuple(x.shape)}{hint}")
    return x


# ------------------------------------------------------------------------------- base class
class OnlineLearner:
    """Base of the online learners: the step / accumulate / apply loop.

    Subclasses implement :meth:`_init_state`, :meth:`_step`, :meth:`_accumulate` and
    :meth:`_held`. A learner is a plain object (like an optimizer), not an ``nn.Module``: the
    model keeps the parameters, the learner the running state and the traces.

    Parameters
    ----------
    model : nn.Module
        The network (see the subclass for the structures it takes).
    backward : callable, optional
        ``backward(loss)``; default ``loss.backward()``. In Lightning pass
        ``self.manual_backward``.
    """

    def __init__(self, model: nn.Module, backward: Callable[[torch.Tensor], None] | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"{self._name()}: 'model' must be an nn.Module, got "
                            f"{type(model).__name__}")
        if backward is not None and not callable(backward):
            raise TypeError(f"{self._name()}: 'backward' must be callable, got "
                            f"{type(backward).__name__}")
        self.model = model
        self._backward = backward
        self._batch: int | None = None
        self._accumulated = False
        self._stepped = False
        self._no_grad_steps = False

    def _name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{self._name()}({type(self.model).__name__})"

    # ---------------------------------------------------------------- public loop
    def reset(self, batch_size: int | None = None) -> None:
        """Forget the running state and the traces (before a new batch of sequences).

        Without ``batch_size`` the state is created at the next :meth:`step` from its input.
        """
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"{self._name()}: 'batch_size' must be a positive int, got "
                             f"{batch_size!r}")
        self._batch = None
        self._stepped = False
        self._accumulated = False
        self._no_grad_steps = False
        self._clear()
        if batch_size is not None:
            self._batch = batch_size
            self._init_state(batch_size)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Advance the model by one step of input ``x`` ``(B, inputs)``.

        Returns the step's output (the readout ``(B, C)``, or the spikes ``(B, N)`` without a
        readout) carrying a graph of this step only: compute the step's loss from it and pass
        it to :meth:`accumulate`.
        """
        like = self._like()
        x = _check_step_input(self._name(), x, like, self._n_in())
        if self._batch is None:
            self._batch = x.shape[0]
            self._init_state(self._batch)
        elif x.shape[0] != self._batch:
            raise ValueError(f"{self._name()}: the input has batch size {x.shape[0]} but the "
                             f"running state has {self._batch}; call learner.reset() before a "
                             f"new batch of sequences")
        grad = torch.is_grad_enabled()
        if grad and self._no_grad_steps:
            raise RuntimeError(f"{self._name()}: this sequence ran steps under torch.no_grad(), "
                               "which do not update the traces; call learner.reset() before "
                               "learning from a new sequence")
        self._no_grad_steps = self._no_grad_steps or not grad
        self._accumulated = False
        self._stepped = True
        return self._step(x)

    def accumulate(self, loss: torch.Tensor) -> None:
        """Add the gradient of this step's ``loss`` to the parameters' ``.grad``.

        ``loss`` must be computed from the outputs of the latest :meth:`step` (and may involve
        other modules, whose parameters get the ordinary one-step gradient). Call it at most
        once per step: sum the step's loss terms first.
        """
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"{self._name()}: accumulate() takes a scalar loss tensor, got "
                            f"{getattr(loss, 'shape', type(loss).__name__)}")
        if not self._stepped:
            raise RuntimeError(f"{self._name()}: accumulate() before the first step(); run "
                               f"learner.step(x_t) and compute the loss from its output")
        if self._accumulated:
            raise RuntimeError(f"{self._name()}: accumulate() was already called for this step; "
                               f"add the step's loss terms together and call it once")
        if not loss.requires_grad:
            raise ValueError(f"{self._name()}: the loss does not depend on the step's output "
                             f"(it has no graph); compute it from the tensor step() returned")
        self._accumulated = True
        if self._backward is None:
            loss.backward()
        else:
            self._backward(loss)
        with torch.no_grad():
            self._accumulate()

    def apply(self, optimizer: torch.optim.Optimizer, zero_grad: bool = True) -> None:
        """``optimizer.step()`` and (by default) ``optimizer.zero_grad()``; the running state
        and traces continue (the weights change within the sequence, as online rules do)."""
        optimizer.step()
        if zero_grad:
            optimizer.zero_grad()

    def run(
        self,
        x: torch.Tensor,
        loss_fn: Callable[[torch.Tensor, int], torch.Tensor | None] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        update_every: int | None = None,
        *,
        time_major: bool = True,
        reset: bool = True,
        keep_outputs: bool = True,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Run a whole sequence online: step, accumulate, apply.

        Parameters
        ----------
        x : Tensor ``(T, B, inputs)`` (``(B, T, inputs)`` with ``time_major=False``)
        loss_fn : callable, optional
            ``loss_fn(output_t, t)`` returning the loss of step ``t`` or ``None`` (no loss at
            that step).
        optimizer : torch.optim.Optimizer, optional
            Applied every ``update_every`` steps and after the last step; without
            ``update_every``, once after the last step. Without an optimizer the gradients
            accumulate in ``.grad``.
        update_every : int, optional
            ``K``: update the weights every ``K`` steps.
        time_major : bool, default True
        reset : bool, default True
            Call :meth:`reset` first (the sequences are new).
        keep_outputs : bool, default True
            Keep and return the outputs of every step (``B x C`` numbers per step: the only
            thing here that grows with ``T``); ``False`` returns ``None`` instead.

        Returns
        -------
        outputs : Tensor or None
            The detached outputs of every step, stacked along time (as ``x``'s layout).
        loss : Tensor
            The sum of the step losses (detached; 0 without ``loss_fn``).
        """
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise ValueError(f"{self._name()}: run() takes a sequence (T, B, inputs), got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        if update_every is not None and (isinstance(update_every, bool)
                                         or not isinstance(update_every, int)
                                         or update_every < 1):
            raise ValueError(f"{self._name()}: 'update_every' must be a positive int, got "
                             f"{update_every!r}")
        dim = 0 if time_major else 1
        if reset:
            self.reset()
        outputs = []
        total = x.new_zeros(())
        steps = x.unbind(dim)
        for t, x_t in enumerate(steps):
            out = self.step(x_t)
            if loss_fn is not None:
                loss = loss_fn(out, t)
                if loss is not None:
                    self.accumulate(loss)
                    total = total + loss.detach()
            if keep_outputs:
                outputs.append(out.detach())
            if optimizer is not None and update_every is not None and (t + 1) % update_every == 0:
                self.apply(optimizer)
        if optimizer is not None and (update_every is None or len(steps) % update_every):
            self.apply(optimizer)
        return (torch.stack(outputs, dim) if keep_outputs else None), total

    # ---------------------------------------------------------------- accounting
    def trace_bytes(self) -> int:
        """Bytes of the eligibility traces held now (``0`` before the first step)."""
        return _tensor_bytes(self._traces())

    def state_bytes(self) -> int:
        """Bytes of everything the learner holds between steps: traces and running State."""
        return _tensor_bytes(self._held())

    # ---------------------------------------------------------------- subclass hooks
    def _like(self) -> torch.Tensor:
        raise NotImplementedError

    def _n_in(self) -> int | None:
        raise NotImplementedError

    def _clear(self) -> None:
        raise NotImplementedError

    def _init_state(self, batch: int) -> None:
        raise NotImplementedError

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _accumulate(self) -> None:
        raise NotImplementedError

    def _traces(self) -> list:
        raise NotImplementedError

    def _held(self) -> list:
        raise NotImplementedError
