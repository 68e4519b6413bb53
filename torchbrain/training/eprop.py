r"""Eligibility-trace learning for (recurrent) spiking layers: e-prop and diagonal RTRL.

Both learners take a model

    ``[nn.Linear(n_in, N)] -> spiking layer (N) -> [readout]``

given as an ``nn.Sequential`` (or the spiking layer alone): the spiking layer is a
:class:`~torchbrain.training.MultiStepLIF`, :class:`~torchbrain.training.MultiStepIF`,
:class:`~torchbrain.training.MultiStepALIF` or :class:`~torchbrain.training.RecurrentLIF`
(LIF or adaptive), the readout a :class:`~torchbrain.training.LeakyIntegratorReadout` or an
``nn.Linear``. They learn the input weights and bias, the recurrent weights and the readout.

The per-synapse eligibility trace of the weight from presynaptic input ``i`` (an input, a
recurrent spike of the previous step or the constant 1 of the bias) to neuron ``j`` follows
the neuron's own dynamics (the diagonal of the state Jacobian; see
:mod:`torchbrain.training.online` for the equations):

* :class:`DRTRL` keeps the neuron's whole derivative, the reset's included. Exact for a
  feed-forward layer; with recurrence an approximation (exact for zero recurrent weights).
  Traces: ``N x N_pre`` per sample for :math:`e^H` (``N_pre`` when the layer has
  ``detach_reset=True`` and no adaptation) and, with adaptation, ``N x N_pre`` for
  :math:`e^A`.
* :class:`EProp` drops the reset's derivative from the traces (e-prop). The LIF trace is then a
  low-pass filter of the presynaptic activity: ``N_pre`` numbers per sample, on the
  presynaptic population; only the adaptation trace of ALIF neurons needs ``N x N_pre``.

With either, the weight gradient of step ``t`` is
:math:`\sum_b b_j\,(\delta^H_{bj} e^H_{bji} + \delta^A_{bj} e^A_{bji})`, the learning signal
:math:`\delta = \partial\ell_t/\partial(H_t, A_t)` from autograd through step ``t`` alone;
the readout's weights use the trace of the hidden spikes filtered by the readout's decay
(exact). ``filter_readout=True`` also filters the hidden layer's traces with the readout's
decay (Bellec et al.'s formulation), which makes the readout's learning signal exact.
Per-neuron time constants that are not all equal make the LIF trace per synapse too.

Examples
--------
>>> import torch
>>> import torch.nn.functional as F
>>> from torch import nn
>>> from torchbrain.training import MultiStepLIF
>>> from torchbrain.training.eprop import EProp
>>> model = nn.Sequential(nn.Linear(3, 4), MultiStepLIF(4, tau=10., detach_reset=True,
...                                                dt=1.))
>>> learner = EProp(model)
>>> spikes = learner.step(torch.rand(2, 3))          # (B, N), one-step graph
>>> learner.accumulate(spikes.sum())                 # adds to model[0].weight.grad
>>> model[0].weight.grad.shape
torch.Size([4, 3])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LeakyIntegratorReadout, MultiStepALIF, MultiStepLIF, RecurrentLIF
from .online import OnlineLearner, _add_grad, _Cell, _column, _outer_sum, _Readout

__all__ = ["EProp", "DRTRL"]

_SPIKING = (MultiStepLIF, MultiStepALIF, RecurrentLIF)


def _parse(model: nn.Module, owner: str):
    """Split ``[Linear] -> spiking -> [readout]`` into its parts."""
    mods = list(model) if isinstance(model, nn.Sequential) else [model]
    shape = " -> ".join(type(m).__name__ for m in mods)
    expected = (f"{owner}: expected a model [nn.Linear] -> MultiStepLIF / MultiStepIF / "
                f"MultiStepALIF / RecurrentLIF -> [LeakyIntegratorReadout or nn.Linear] (an "
                f"nn.Sequential, or the spiking layer alone), got {shape}")
    i = 0
    inp = None
    if mods and isinstance(mods[0], nn.Linear):
        inp, i = mods[0], 1
    if i >= len(mods) or not isinstance(mods[i], _SPIKING):
        raise TypeError(expected)
    layer = mods[i]
    i += 1
    readout = None
    if i < len(mods):
        if not isinstance(mods[i], LeakyIntegratorReadout | nn.Linear):
            raise TypeError(expected)
        readout = mods[i]
        i += 1
    if i < len(mods):
        raise TypeError(expected)
    if layer.size is None or len(layer.size) != 1:
        raise ValueError(f"{owner}: the spiking layer needs a one-dimensional 'size' (the number "
                         f"of neurons), got {layer.size!r}")
    n = layer.size[0]
    if inp is not None and inp.out_features != n:
        raise ValueError(f"{owner}: the input Linear has {inp.out_features} outputs but the "
                         f"spiking layer has {n} neurons")
    return inp, layer, readout


class _EligibilityLearner(OnlineLearner):
    """Shared implementation of :class:`EProp` and :class:`DRTRL`."""

    #: Whether the traces include the derivative of the reset.
    _use_reset: bool = True

    def __init__(self, model: nn.Module, backward: Callable[[torch.Tensor], None] | None = None,
                 *, filter_readout: bool = False):
        super().__init__(model, backward)
        owner = self._name()
        inp, layer, readout = _parse(model, owner)
        self.filter_readout = bool(filter_readout)
        if self.filter_readout and readout is None:
            raise ValueError(f"{owner}: filter_readout=True needs a readout after the spiking "
                             "layer")
        self._inp = inp
        self._cell = _Cell(layer, owner)
        self._readout = None if readout is None else _Readout(readout, owner, layer.size[0])
        self._n = layer.size[0]
        # The presynaptic vector of the hidden weights: [x | S_{t-1} | 1].
        self._groups: list[tuple[torch.Tensor, slice, torch.Tensor | None]] = []
        start = 0
        if inp is not None:
            self._groups.append((inp.weight, slice(0, inp.in_features), None))
            start = inp.in_features
        if self._cell.recurrent:
            mask = None if layer.self_connections else layer.rec_mask
            self._groups.append((layer.rec.weight, slice(start, start + self._n), mask))
            start += self._n
        self._bias = inp is not None and inp.bias is not None
        if self._bias:
            self._groups.append((inp.bias, slice(start, start + 1), None))
            start += 1
        self._n_pre = start
        if not self._groups and self._readout is None:
            raise ValueError(f"{owner}: the model has nothing to learn (no input Linear, no "
                             "recurrence and no readout)")
        self._clear()

    # ---------------------------------------------------------------- accounting
    def parameters(self) -> list[torch.Tensor]:
        """The parameters this learner computes gradients for."""
        params = [g[0] for g in self._groups]
        if self._readout is not None:
            params += self._readout.params()
        return params

    @property
    def potential(self) -> torch.Tensor | None:
        """The latest step's pre-reset potential :math:`H_t` ``(B, N)``, a leaf of the step's
        graph (for losses or regularisers on it)."""
        return self._h

    @property
    def spikes(self) -> torch.Tensor | None:
        """The latest step's spikes ``(B, N)``, in the step's graph."""
        return self._s

    def _traces(self) -> list:
        return [self._eH, self._eA, self._eF, self._ro_trace]

    def _held(self) -> list:
        pending = list(self._pending) if self._pending is not None else []
        return self._traces() + list(self._state.values()) + [self._y] + pending

    # ---------------------------------------------------------------- state
    def _like(self) -> torch.Tensor:
        return self._cell.layer.V_reset

    def _n_in(self) -> int:
        return self._inp.in_features if self._inp is not None else self._n

    def _clear(self) -> None:
        self._state: dict[str, torch.Tensor] = {}
        self._eH = self._eA = self._eF = None
        self._pending = None
        self._ro_trace = None
        self._y = None
        self._h = self._a = self._s = self._y_graph = None

    def _init_state(self, batch: int) -> None:
        like = self._like()
        self._c = self._cell.constants()
        self._state = self._cell.initial(batch)
        if self._readout is not None:
            self._rc = self._readout.constants(like)
            if self.filter_readout and self._rc["k"].numel() != 1:
                raise ValueError(f"{self._name()}: filter_readout=True needs one time constant "
                                 f"for the whole readout, got {self._rc['k'].numel()}")
            m = self._readout.module
            n_out = m.out_features
            self._y = torch.zeros((batch, n_out), dtype=like.dtype, device=like.device)

    # ---------------------------------------------------------------- the step
    def _propagate(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The traces of the previous step carried past its spike and reset:
        :math:`(dV_{t}/dW, dA'_{t}/dW)` from :math:`(dH_t/dW, dA_t/dW)`."""
        psi, r = self._pending
        eH, eA = self._eH, self._eA
        if eH is None:
            return None, None
        psi = psi.unsqueeze(-1)
        if self._cell.adaptive:
            beta = _column(self._c["beta"])
            common = psi * (eH if eA is None else eH - beta * eA)
            eA_next = common if eA is None else eA + common
        else:
            common = None
            eA_next = None
        if r is None:
            eV = eH
        else:
            r = r.unsqueeze(-1) if r.dim() == 2 else _column(r)
            if common is None:
                common = psi * eH
            eV = eH + r * common
        return eV, eA_next

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        cell, c, st = self._cell, self._c, self._state
        grad = torch.is_grad_enabled()
        with torch.no_grad():
            pres = []
            if self._inp is not None:
                current = F.linear(x, self._inp.weight, self._inp.bias)
                pres.append(x)
            else:
                current = x
            if cell.recurrent:
                current = current + F.linear(st["S"], cell.rec_weight())
                pres.append(st["S"])
            if self._bias:
                pres.append(x.new_ones((x.shape[0], 1)))
            H = c["a"] * st["V"] + c["b"] * current
            A = c["rho"] * st["A"] if cell.adaptive else None
            if grad and self._groups:
                eV, eA_prev = (None, None) if self._pending is None else self._propagate()
                pre = torch.cat(pres, dim=1).unsqueeze(1)  # (B, 1, P)
                self._eH = pre if eV is None else _column(c["a"]) * eV + pre
                if cell.adaptive:
                    self._eA = None if eA_prev is None else _column(c["rho"]) * eA_prev
            u = cell.spike_input(c, H, A)
            S = cell.spk_fun(u)
            if grad:
                psi = cell.spk_fun.surrogate_grad(u) / c["span"]
                r = cell.reset_derivative(c, H) if self._use_reset else None
                self._pending = (psi, r)
                if self.filter_readout and self._groups:
                    # dS_t/dW (per unit of b), low-pass filtered with the readout's decay
                    dS = self._eH if self._eA is None else (
                        self._eH - _column(c["beta"]) * self._eA)
                    dS = psi.unsqueeze(-1) * dS
                    self._eF = dS if self._eF is None else self._rc["k"] * self._eF + dS
            V, A_after = cell.after_spike(c, H, S, A)
            st["V"] = V
            if cell.adaptive:
                st["A"] = A_after
            if cell.recurrent:
                st["S"] = S
            if self._readout is not None and grad:
                ro_pre = torch.cat([S, x.new_ones((x.shape[0], 1))], dim=1).unsqueeze(1)
                prev = self._ro_trace
                self._ro_trace = ro_pre if prev is None else _column(self._rc["k"]) * prev + ro_pre
        if not grad:
            self._h = self._a = None
            self._s = out = S
            if self._readout is not None:
                out = self._readout_value(S)
                self._y = out
            return out
        # The step's own graph: the learning signal dl/dH, dl/dA comes back through it.
        h = H.requires_grad_()
        a = A.requires_grad_() if A is not None else None
        s = cell.spk_fun(cell.spike_input(c, h, a))
        self._h, self._a, self._s = h, a, s
        out = s
        if self._readout is not None:
            # With filtered traces the readout's learning signal is added in _accumulate.
            y = self._readout_value(s.detach() if self.filter_readout else s)
            if y.requires_grad:
                y.retain_grad()
            else:  # built from detached spikes: a leaf of the step's graph
                y.requires_grad_()
            self._y_graph = y
            self._y = y.detach()
            out = y
        return out

    def _readout_value(self, s: torch.Tensor) -> torch.Tensor:
        ro, rc = self._readout, self._rc
        lin = ro.linear
        drive = s if lin is None else F.linear(
            s, lin.weight.detach(), None if lin.bias is None else lin.bias.detach())
        return rc["k"] * self._y + rc["c"] * drive

    def _accumulate(self) -> None:
        c = self._c
        dH = self._h.grad if self._h is not None else None
        dA = self._a.grad if self._a is not None else None
        if self._groups and (dH is not None or dA is not None):
            G = None
            if dH is not None:
                G = _outer_sum(c["b"] * dH, self._eH)
            if dA is not None and self._eA is not None:
                GA = _outer_sum(c["b"] * dA, self._eA)
                G = GA if G is None else G + GA
            if G is not None:
                for param, cols, mask in self._groups:
                    g = G[:, cols]
                    if mask is not None:
                        g = g * mask
                    _add_grad(param, g)
        if self.filter_readout and self._groups and self._y_graph is not None:
            dy = self._y_graph.grad
            if dy is not None:
                lin = self._readout.linear
                signal = self._rc["c"] * dy
                if lin is not None:
                    signal = signal @ lin.weight.detach()
                G = _outer_sum(c["b"] * signal, self._eF)
                for param, cols, mask in self._groups:
                    g = G[:, cols]
                    _add_grad(param, g if mask is None else g * mask)
        if self._readout is not None and self._y_graph is not None:
            dy = self._y_graph.grad
            lin = self._readout.linear
            if dy is not None and lin is not None:
                Gout = _outer_sum(self._rc["c"] * dy, self._ro_trace)
                _add_grad(lin.weight, Gout[:, :-1])
                if lin.bias is not None:
                    _add_grad(lin.bias, Gout[:, -1])
        for leaf in (self._h, self._a, self._y_graph):
            if leaf is not None:
                leaf.grad = None


class EProp(_EligibilityLearner):
    r"""E-prop: online eligibility-trace learning for (recurrent) LIF and ALIF layers.

    The traces are those of :class:`DRTRL` with the derivative of the reset left out, as in
    Bellec et al. (2020):

    .. math::

        \bar p_t = a\,\bar p_{t-1} + p_t \ (\text{LIF: } e^H_{ji} = b_j \bar p_i),\qquad
        e^A_{t+1} = \rho\,\big(e^A_t + \psi_t\,(e^H_t - \beta e^A_t)\big) \ (\text{ALIF}),

    and the weight gradient at step ``t`` is
    :math:`\sum_b \delta^H_{bj} e^H_{bji} + \delta^A_{bj} e^A_{bji}` with the learning signal
    :math:`\delta` from autograd through the step (the symmetric feedback of e-prop).

    Memory per sample: the presynaptic trace (``n_in + N + 1`` with recurrence and a bias) plus
    the surrogate derivatives of the ``N`` neurons; with adaptation also the ``N x (n_in + N +
    1)`` adaptation trace; a readout adds ``N + 1``. It does not depend on the sequence length.

    Exact (equal to BPTT) for a feed-forward layer (no recurrence) with ``detach_reset=True``;
    an approximation otherwise (see :mod:`torchbrain.training.online`).

    Parameters
    ----------
    model : nn.Module
        ``[nn.Linear] -> MultiStepLIF / MultiStepIF / MultiStepALIF / RecurrentLIF ->
        [LeakyIntegratorReadout or nn.Linear]`` as an ``nn.Sequential``, or the spiking layer
        alone. Time constants and thresholds must not be learnable.
    backward : callable, optional
        Runs ``backward(loss)`` (default ``loss.backward()``; Lightning:
        ``self.manual_backward``).
    filter_readout : bool, default False
        Bellec et al.'s filtered eligibility traces: the readout's learning signal
        :math:`c\,W_\mathrm{out}^\top \delta y_t` meets the derivative of the spikes
        :math:`\psi_t (e^H_t - \beta e^A_t)` low-pass filtered with the readout's decay
        :math:`\kappa`, so a spike's effect on later readout values is counted. Exact (with
        ``detach_reset=True``) for a feed-forward layer and a leaky readout; costs an
        ``N x N_pre`` trace per sample. Without it the readout's signal is the immediate one
        (traces stay on the presynaptic population for LIF).

    Notes
    -----
    ``step(x_t)`` returns the readout ``(B, C)`` (or the spikes ``(B, N)`` without a readout);
    after it, :attr:`potential` is the pre-reset membrane potential :math:`H_t` and
    :attr:`spikes` the spikes, both in the step's graph (for losses or regularisers on them).

    References
    ----------
    Bellec, G., Scherr, F., Subramoney, A., Hajek, E., Salaj, D., Legenstein, R. & Maass, W.
    (2020). A solution to the learning dilemma for recurrent networks of spiking neurons.
    *Nature Communications* 11, 3625.
    """

    _use_reset = False


class DRTRL(_EligibilityLearner):
    r"""Diagonal real-time recurrent learning (D-RTRL) for (recurrent) LIF and ALIF layers.

    Forward-mode gradients with the state Jacobian reduced to its diagonal (each neuron's own
    dependence on its past, the reset's derivative included):

    .. math::

        e^H_{t+1} = a\,\big(e^H_t + r_t\,\psi_t\,(e^H_t - \beta e^A_t)\big) + b\,p_{t+1},\qquad
        e^A_{t+1} = \rho\,\big(e^A_t + \psi_t\,(e^H_t - \beta e^A_t)\big),

    with :math:`r_t = \partial V_t / \partial S_t` (0 with ``detach_reset``). For a feed-forward
    layer the Jacobian is diagonal, so the gradient equals BPTT's for any reset; with recurrence
    the paths through other neurons' spikes are dropped (exact for zero recurrent weights).

    Memory per sample: ``N x N_pre`` per trace (:math:`e^H`, and :math:`e^A` with adaptation),
    ``N_pre = n_in + N + 1`` with recurrence and a bias; only ``N_pre`` for a LIF layer with
    ``detach_reset=True`` (then it equals :class:`EProp`). Independent of the sequence length.

    Parameters
    ----------
    model, backward, filter_readout
        As :class:`EProp` (with ``filter_readout`` a feed-forward layer and a leaky readout
        get the exact gradient for any reset).

    References
    ----------
    Williams, R. J. & Zipser, D. (1989). A learning algorithm for continually running fully
    recurrent neural networks. *Neural Computation* 1(2), 270-280.

    Menick, J., Elsen, E., Evci, U., Osindero, S., Simonyan, K. & Graves, A. (2021). Practical
    real time recurrent learning with a sparse approximation. *ICLR*.

    Wang, C., Dong, X., Jiang, Z. & Wu, S. (2024). BrainScale: enabling scalable online
    learning in spiking neural networks. *bioRxiv* 2024.09.24.614728.
    """

    _use_reset = True
