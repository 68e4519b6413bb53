r"""Online training through time (OTTT) for feed-forward spiking networks.

At every step the loss is backpropagated through the layers of that step only (the membrane
potentials of earlier steps are constants), and each ``nn.Linear`` computes its weight gradient
from a *presynaptic trace* instead of the presynaptic value:

.. math::

    \bar p_t = \lambda\,\bar p_{t-1} + p_t, \qquad
    \Delta W = \delta_t\, \bar p_t^{\top}, \qquad \Delta c = \delta_t\,\bar 1_t,

with :math:`\delta_t` the gradient of the step's loss at the ``Linear``'s output,
:math:`\lambda` the membrane decay :math:`e^{-\Delta t/\tau}` of the layer the ``Linear`` feeds
(the readout's decay before a :class:`~torchbrain.training.LeakyIntegratorReadout`, 0 before
anything else) and :math:`\bar 1_t` the same trace of a constant 1 (for the bias). The trace is
the exact :math:`dH_t/dW` of a membrane whose reset carries no gradient, so one layer with
``detach_reset=True`` gets BPTT's gradient exactly; in a deeper stack the effect of a layer's
earlier spikes through the next layer's membrane is left out (the approximation of Xiao et al.,
whose variant "OTTT_A" this is).

Memory: one trace of ``N_in`` numbers per ``Linear`` and sample, plus the membrane States;
nothing per time step.

Examples
--------
>>> import torch
>>> import torch.nn.functional as F
>>> from torch import nn
>>> from torchbrain.training import LeakyIntegratorReadout, MultiStepLIF
>>> from torchbrain.training.ottt import OTTT
>>> model = nn.Sequential(nn.Linear(10, 32), MultiStepLIF(32, tau=10., dt=1.),
...                       nn.Linear(32, 32), MultiStepLIF(32, tau=10., dt=1.),
...                       LeakyIntegratorReadout(32, 3, tau=10., dt=1.))
>>> learner = OTTT(model)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> out, loss = learner.run(torch.rand(20, 4, 10),
...                         lambda y, t: F.cross_entropy(y, torch.tensor([0, 1, 2, 0])),
...                         optimizer=opt, update_every=5)
>>> out.shape
torch.Size([20, 4, 3])

References
----------
Xiao, M., Meng, Q., Zhang, Z., He, D. & Lin, Z. (2022). Online training through time for spiking
neural networks. *NeurIPS* 35.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LeakyIntegratorReadout, MultiStepALIF, MultiStepLIF, RecurrentLIF
from .online import OnlineLearner, _Cell, _frozen, _Readout

__all__ = ["OTTT"]


class _TraceLinear(torch.autograd.Function):
    """``F.linear(x, W, c)`` whose backward gives ``W`` the gradient ``delta^T trace`` and ``c``
    ``ones * sum(delta)`` (the presynaptic traces), and ``x`` the ordinary ``delta W``."""

    @staticmethod
    def forward(x, trace, ones, weight, bias):
        return F.linear(x, weight, bias)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, trace, ones, weight, bias = inputs
        ctx.save_for_backward(trace, ones, weight)
        ctx.has_bias = bias is not None

    @staticmethod
    def backward(ctx, grad):
        trace, ones, weight = ctx.saved_tensors
        gx = grad @ weight if ctx.needs_input_grad[0] else None
        gw = grad.t() @ trace if ctx.needs_input_grad[3] else None
        gb = (grad.sum(0) * ones) if ctx.has_bias and ctx.needs_input_grad[4] else None
        return gx, None, None, gw, gb


def _scalar_decay(owner: str, value: torch.Tensor, what: str) -> torch.Tensor:
    if value.numel() != 1:
        raise ValueError(f"{owner}: OTTT needs one time constant per layer (the presynaptic "
                         f"trace of a Linear is shared by all its outputs), but {what} has "
                         f"{value.numel()} different ones; use DRTRL for per-neuron time "
                         f"constants")
    return value.reshape(())


class OTTT(OnlineLearner):
    r"""Online training through time for feed-forward stacks of spiking layers.

    Parameters
    ----------
    model : nn.Module
        An ``nn.Sequential`` of ``nn.Linear``, :class:`~torchbrain.training.MultiStepLIF`,
        :class:`~torchbrain.training.MultiStepIF`, :class:`~torchbrain.training.MultiStepALIF`,
        ``nn.Dropout`` and ``nn.Identity`` modules, optionally ending with a
        :class:`~torchbrain.training.LeakyIntegratorReadout` (recurrent layers: use
        :class:`~torchbrain.training.eprop.EProp`). A ``Linear`` that feeds a spiking layer
        needs that layer's time constant to be one value. Time constants and thresholds must
        not be learnable.
    backward : callable, optional
        Runs ``backward(loss)`` (default ``loss.backward()``; Lightning:
        ``self.manual_backward``).

    Notes
    -----
    Exact for a single ``Linear -> spiking layer`` with ``detach_reset=True`` and a loss on that
    step's spikes or potential; an approximation for deeper stacks or a leaky readout after a
    hidden layer (see the module docstring). After each ``step``, :attr:`spikes` lists every
    spiking layer's spikes of the step and :attr:`potentials` their pre-reset potentials (in the
    step's graph), e.g. for rate regularisers.

    References
    ----------
    Xiao, M., Meng, Q., Zhang, Z., He, D. & Lin, Z. (2022). Online training through time for
    spiking neural networks. *NeurIPS* 35.
    """

    def __init__(self, model: nn.Module, backward: Callable[[torch.Tensor], None] | None = None):
        super().__init__(model, backward)
        owner = self._name()
        mods = list(model) if isinstance(model, nn.Sequential) else [model]
        self._blocks: list[tuple[str, object]] = []
        allowed = ("nn.Linear, MultiStepLIF, MultiStepIF, MultiStepALIF, nn.Dropout, nn.Identity "
                   "and a final LeakyIntegratorReadout")
        self._n_input = None
        self._like_tensor = None
        for i, m in enumerate(mods):
            if isinstance(m, RecurrentLIF):
                raise TypeError(f"{owner}: OTTT is for feed-forward networks; the model has a "
                                f"RecurrentLIF (module {i}); use EProp or DRTRL for it")
            if isinstance(m, nn.Linear):
                self._blocks.append(("linear", m))
                self._first_size(m.in_features)
                if self._like_tensor is None:
                    self._like_tensor = m.weight
            elif isinstance(m, MultiStepLIF | MultiStepALIF):
                cell = _Cell(m, owner)
                if m.size is None or len(m.size) != 1:
                    raise ValueError(f"{owner}: spiking layer {i} needs a one-dimensional "
                                     f"'size', got {m.size!r}")
                self._blocks.append(("spiking", cell))
                self._first_size(m.size[0])
                if self._like_tensor is None:
                    self._like_tensor = m.V_reset
            elif isinstance(m, LeakyIntegratorReadout):
                if i != len(mods) - 1:
                    raise TypeError(f"{owner}: the LeakyIntegratorReadout must be the last "
                                    f"module (it is module {i} of {len(mods)})")
                _frozen(owner, m, ("tau",))
                if m.linear is not None:
                    self._blocks.append(("linear", m.linear))
                self._blocks.append(("readout", m))
                self._first_size(m.in_features or m.out_features)
                if self._like_tensor is None:
                    self._like_tensor = m.tau
            elif isinstance(m, nn.Dropout | nn.Identity):
                self._blocks.append(("stateless", m))
            else:
                raise TypeError(f"{owner}: module {i} is a {type(m).__name__}; OTTT takes "
                                f"{allowed}")
        if self._like_tensor is None:
            raise TypeError(f"{owner}: the model has no Linear, spiking layer or readout; OTTT "
                            f"takes {allowed}")
        self._clear()

    def _first_size(self, n: int) -> None:
        if self._n_input is None:
            self._n_input = n

    def parameters(self) -> list[torch.Tensor]:
        """The parameters this learner computes gradients for."""
        return [p for kind, m in self._blocks if kind == "linear"
                for p in (m.weight, m.bias) if p is not None]

    @property
    def spikes(self) -> list[torch.Tensor]:
        """The latest step's spikes of every spiking layer, in the step's graph."""
        return list(self._spikes)

    @property
    def potentials(self) -> list[torch.Tensor]:
        """The latest step's pre-reset potentials :math:`H_t` of every spiking layer, in the
        step's graph."""
        return list(self._potentials)

    # ---------------------------------------------------------------- state
    def _like(self) -> torch.Tensor:
        return self._like_tensor

    def _n_in(self) -> int:
        return self._n_input

    def _clear(self) -> None:
        self._state: list[dict | None] = []
        self._spikes: list[torch.Tensor] = []
        self._potentials: list[torch.Tensor] = []
        self._decays: list[torch.Tensor | None] = []

    def _init_state(self, batch: int) -> None:
        like = self._like()
        owner = self._name()
        self._state, self._decays = [], []
        zero = torch.zeros((), dtype=like.dtype, device=like.device)
        for kind, m in self._blocks:
            if kind == "spiking":
                c = m.constants()
                self._state.append({"c": c, **m.initial(batch)})
            elif kind == "readout":
                rc = _Readout(m, owner, m.in_features or m.out_features).constants(like)
                y = torch.zeros((batch, m.out_features), dtype=like.dtype, device=like.device)
                self._state.append({"rc": rc, "y": y})
            elif kind == "linear":
                self._state.append({"trace": None, "ones": None})
            else:
                self._state.append(None)
        # The trace decay of each Linear: that of the module it feeds.
        for i, (kind, _) in enumerate(self._blocks):
            decay = None
            if kind == "linear":
                decay = zero
                nxt = self._blocks[i + 1] if i + 1 < len(self._blocks) else None
                if nxt is not None and nxt[0] == "spiking":
                    decay = _scalar_decay(owner, self._state[i + 1]["c"]["a"],
                                          f"the spiking layer after Linear {i}")
                elif nxt is not None and nxt[0] == "readout":
                    decay = _scalar_decay(owner, self._state[i + 1]["rc"]["k"], "the readout")
            self._decays.append(decay)

    def _traces(self) -> list:
        out = []
        for kind, st in zip((b[0] for b in self._blocks), self._state, strict=True):
            if kind == "linear":
                out += [st["trace"], st["ones"]]
        return out

    def _held(self) -> list:
        out = self._traces()
        for kind, st in zip((b[0] for b in self._blocks), self._state, strict=True):
            if kind == "spiking":
                out += [st.get("V"), st.get("A")]
            elif kind == "readout":
                out.append(st["y"])
        return out

    # ---------------------------------------------------------------- the step
    def _step(self, x: torch.Tensor) -> torch.Tensor:
        grad = torch.is_grad_enabled()
        cur = x
        self._spikes, self._potentials = [], []
        for (kind, m), st, decay in zip(self._blocks, self._state, self._decays, strict=True):
            if kind == "linear":
                if not grad:
                    cur = F.linear(cur, m.weight, m.bias)
                    continue
                with torch.no_grad():
                    pre = cur.detach()
                    if st["trace"] is None:
                        st["trace"] = pre.clone()
                        st["ones"] = torch.ones((), dtype=pre.dtype, device=pre.device)
                    else:
                        st["trace"] = decay * st["trace"] + pre
                        st["ones"] = decay * st["ones"] + 1.0
                cur = _TraceLinear.apply(cur, st["trace"], st["ones"], m.weight, m.bias)
            elif kind == "spiking":
                c = st["c"]
                H = c["a"] * st["V"] + c["b"] * cur
                A = c["rho"] * st["A"] if m.adaptive else None
                s = m.spk_fun(m.spike_input(c, H, A))
                with torch.no_grad():
                    V, A_after = m.after_spike(c, H.detach(), s.detach(),
                                               None if A is None else A.detach())
                st["V"] = V
                if m.adaptive:
                    st["A"] = A_after
                self._spikes.append(s)
                self._potentials.append(H)
                cur = s
            elif kind == "readout":
                rc = st["rc"]
                y = rc["k"] * st["y"] + rc["c"] * cur
                st["y"] = y.detach()
                cur = y
            else:
                cur = m(cur)
        return cur

    def _accumulate(self) -> None:
        """Autograd has already put the gradients in ``.grad`` (see :class:`_TraceLinear`)."""
