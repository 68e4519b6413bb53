r"""Pair-based STDP connectivity layers: ``DenseSTDP`` and ``FixedNumConnSTDP``.

Each layer is a connectivity (``comm``) that owns plastic weights, its connectivity and the two
spike traces of the rule (one per presynaptic and one per postsynaptic neuron: memory linear in
neurons). It delivers weighted events like the static layers (``forward(pre_spikes)``, usable as
the ``comm`` of an :class:`~torchbrain.projections.AlignPostProj`) and learns when it is also
given the postsynaptic spikes: call :meth:`update_weights` every step, or let the post population
do it with :meth:`attach_post`. The rule, its order within a step and the treatment of
simultaneous spikes are those of :mod:`torchbrain.ops.stdp`.

Per-step order inside a network (with :meth:`attach_post`)::

    proj(pre_spikes)   # comm.forward: delivers w(n) * pre spikes, remembers the spikes
    post(x)            # the post population steps; its after-update calls
                       # comm.update_weights(remembered pre spikes, post spikes) -> w(n + 1)

so a weight change acts from the next step's delivery on. When the projection has a delay, the
traces see the spikes as they arrive at the synapse (after the axonal delay).

Weights are a :class:`~torchbrain.state.LongTermState` (saved by ``state_dict``, not reset by
``reset_state``); the traces are :class:`~torchbrain.state.HiddenState` (reset between runs,
saved by ``tb.state_dict(net)``). The rule is gradient-free: the update runs under
``torch.no_grad`` and follows DESIGN's write rule: when the caller has autograd **disabled**
(``torch.no_grad()``/``torch.inference_mode()``, the way to simulate) the touched rows and
columns are written **in place** (cost: spikes x fan-out, static addresses); when autograd is
enabled the new weights are a clone that is **rebound** (an extra O(synapses) copy per step), so a
graph that saved the old weights for backward stays valid. As with parameters and
``optimizer.step()``, ``net.state_dict()`` (and ``tb.state_dict(net)``) hold the live weight
tensor, which in-place learning keeps changing: snapshot with ``copy.deepcopy`` to restore later.
The forward delivery is differentiable with respect to the spikes (surrogate gradients reach the
presynaptic side), not with respect to the weights.

``module.eval()`` freezes the weights (like batch-norm statistics; the traces keep running so
learning can resume exactly); ``module.train()`` (the default) learns.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..comm.base import Comm
from ..comm.fixed_num import EventFixedNumConn, fixed_out_degree_table
from ..environ import get_dt_value
from ..ops import event_ell_matvec
from ..ops import stdp as F
from ..ops.event_csr import event_dense_matvec
from ..state import HiddenState, LongTermState
from ..units import UnitError, u

__all__ = ["DenseSTDP", "FixedNumConnSTDP", "STDPComm"]

_RULES = ("additive", "multiplicative")


class _PostHook(nn.Module):
    """After-update of the post population: feed its spikes to the STDP layer."""

    def __init__(self, stdp: STDPComm, n_var_dims: int):
        super().__init__()
        # a plain reference: the projection owns the layer; registering it here too would list
        # its weights twice in state_dict
        self.__dict__["stdp"] = stdp
        self.n_var_dims = n_var_dims

    def forward(self, out: torch.Tensor) -> None:
        stdp = self.__dict__["stdp"]
        post = out.reshape(*out.shape[:out.ndim - self.n_var_dims], stdp.n_post)
        stdp.update_weights(stdp.pre_spike, post)
        # consumed: a step whose projection did not run delivers no presynaptic spikes
        stdp.pre_spike = torch.zeros_like(stdp.pre_spike)


class STDPComm(Comm):
    r"""Base of the STDP connectivity layers (the rule, the traces and the learning step).

    Subclasses build the connectivity and call :meth:`_init_plasticity`; see
    :class:`DenseSTDP` and :class:`FixedNumConnSTDP` for the parameters.
    """

    def __init__(self, in_size, out_size, *, tau_plus, tau_minus, rule: str, device=None,
                 dtype=None):
        super().__init__(in_size, out_size, device=device, dtype=dtype)
        if rule not in _RULES:
            raise ValueError(
                f"{self._name()}: parameter 'rule' must be 'additive' or 'multiplicative', got "
                f"{rule!r}"
            )
        self.rule = rule
        self.tau_plus = self._register_parameter_with_unit(
            "tau_plus", tau_plus, "ms", shape=(self.n_pre,), positive=True)
        self.tau_minus = self._register_parameter_with_unit(
            "tau_minus", tau_minus, "ms", shape=(self.n_post,), positive=True)
        self._batch_size: int | None = None
        self._initialised = False
        self.x_pre = HiddenState(None)
        self.x_post = HiddenState(None)
        self.pre_spike = HiddenState(None)

    # ------------------------------------------------------------ construction
    @property
    def multiplicative(self) -> bool:
        return self.rule == "multiplicative"

    def _weight_like(self, value, shape, name: str) -> torch.Tensor:
        """A weight-like value in the unit shared by all of them (the first quantity's kind)."""
        before = self.weight_unit
        tensor = self._weight_tensor(value, shape, name=name)
        if before is not None and self.weight_unit != before:
            raise UnitError(
                f"{self._name()}: parameter '{name}' is in {self.weight_unit} but an earlier "
                f"weight parameter is in {before}; w_init, w_min, w_max, A_plus and A_minus must "
                "all be in the unit the layer delivers (or plain numbers)"
            )
        return tensor.detach()

    def _scalar(self, value, name: str) -> torch.Tensor:
        tensor = self._weight_like(value, (), name)
        if tensor.numel() != 1:
            raise ValueError(
                f"{self._name()}: parameter '{name}' must be a scalar, got shape "
                f"{tuple(tensor.shape)}"
            )
        return tensor.reshape(())

    def _init_plasticity(self, w_init, shape, A_plus, A_minus, w_min, w_max) -> None:
        weight = self._weight_like(w_init, shape, "w_init")
        lo = self._scalar(w_min, "w_min")
        hi = self._scalar(math.inf if w_max is None else w_max, "w_max")
        a_plus = self._scalar(A_plus, "A_plus")
        a_minus = self._scalar(A_minus, "A_minus")
        unit = self.weight_unit or "dimensionless"
        for name, value in (("w_min", lo), ("w_max", hi)):
            self._register_parameter_with_unit(name, value, unit, infinite_ok=True)
        for name, value in (("A_plus", a_plus), ("A_minus", a_minus)):
            self._register_parameter_with_unit(name, value, unit, nonnegative=True)
        if bool(lo > hi):
            raise ValueError(
                f"{self._name()}: parameter 'w_min' ({lo.item():g} {unit}) must not exceed "
                f"'w_max' ({hi.item():g} {unit})"
            )
        if self.multiplicative and not (bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))
                                        and bool(lo < hi)):
            raise ValueError(
                f"{self._name()}: the multiplicative rule scales the changes by the distance to "
                f"finite bounds; it needs finite w_min < w_max, got w_min={lo.item():g}, "
                f"w_max={hi.item():g} {unit}"
            )
        if tuple(weight.shape) != tuple(shape):
            try:
                weight = weight.expand(shape)
            except RuntimeError:
                raise ValueError(
                    f"{self._name()}: parameter 'w_init' must be a scalar or have shape "
                    f"{tuple(shape)}, got shape {tuple(weight.shape)}"
                ) from None
        if not weight.is_floating_point():
            raise TypeError(f"{self._name()}: parameter 'w_init' must be floating point")
        if torch.isnan(weight).any():
            raise ValueError(f"{self._name()}: parameter 'w_init' contains NaN")
        if weight.numel() and bool(((weight < lo) | (weight > hi)).any()):
            raise ValueError(
                f"{self._name()}: parameter 'w_init' must lie within [w_min, w_max] = "
                f"[{lo.item():g}, {hi.item():g}] {unit}, got values in "
                f"[{weight.min().item():g}, {weight.max().item():g}]"
            )
        self.weight = LongTermState(weight.clone(memory_format=torch.contiguous_format))

    def _repr_config(self) -> dict[str, Any]:
        return {**super()._repr_config(), "rule": self.rule, "weight_unit": self.weight_unit}

    # ------------------------------------------------------------------ States
    def init_state(self, batch_size: int | None = None) -> None:
        """Zero traces of shape ``(batch_size, n)`` or ``(n,)`` (the weights are kept)."""
        self._batch_size = batch_size
        self._initialised = True
        fac = dict(dtype=self.weight.dtype, device=self.weight.device)
        lead = () if batch_size is None else (batch_size,)
        self.x_pre = HiddenState(torch.zeros(*lead, self.n_pre, **fac))
        self.x_post = HiddenState(torch.zeros(*lead, self.n_post, **fac))
        self.pre_spike = HiddenState(torch.zeros(*lead, self.n_pre, **fac))

    def _batch_size_from_states(self) -> None:
        # called by tb.load_state_dict after it rebinds the traces
        if isinstance(self.x_pre, torch.Tensor):
            self._batch_size = self.x_pre.shape[0] if self.x_pre.ndim == 2 else None
            self._initialised = True

    @property
    def batch_size(self) -> int | None:
        return self._batch_size

    def _check_ready(self) -> None:
        if not self._initialised:
            raise RuntimeError(
                f"{self._name()}: the STDP traces are not initialised; call "
                "tb.init_all_states(model) (or with batch_size=B) before learning"
            )

    def _check_spikes(self, pre: torch.Tensor, post: torch.Tensor) -> None:
        expected = () if self._batch_size is None else (self._batch_size,)
        for name, x, n in (("pre_spikes", pre, self.n_pre), ("post_spikes", post, self.n_post)):
            if x.shape[-1] != n:
                raise ValueError(
                    f"{self._name()}: '{name}' has {x.shape[-1]} entries in its last dimension "
                    f"(shape {tuple(x.shape)}), expected {n}"
                )
            if tuple(x.shape[:-1]) != expected:
                raise ValueError(
                    f"{self._name()}: '{name}' has shape {tuple(x.shape)} but the traces were "
                    f"initialised for batch size {self._batch_size}; call "
                    "tb.reset_all_states(model, batch_size=B) to change it"
                )

    # ---------------------------------------------------------------- learning
    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """``(..., n_pre)`` spikes (or graded events) to ``(..., n_post)`` summed weights.

        The spikes are remembered (``pre_spike``) for the post population's after-update
        installed by :meth:`attach_post`.
        """
        self._check_input(spikes)
        x = spikes.to(self.weight.dtype)
        self.pre_spike = x.detach()
        return self._deliver(x)

    def _deliver(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, pre, post, decay_pre, decay_post, inplace: bool, learn: bool):
        raise NotImplementedError  # pragma: no cover - abstract

    def _rule_kwargs(self) -> dict[str, Any]:
        return dict(A_plus=self.A_plus, A_minus=self.A_minus, w_min=self.w_min,
                    w_max=self.w_max, multiplicative=self.multiplicative)

    def update_weights(self, pre_spikes: torch.Tensor, post_spikes: torch.Tensor) -> None:
        r"""One STDP step with this step's presynaptic and postsynaptic spikes.

        Decays both traces, depresses the synapses of spiking presynaptic neurons, potentiates
        those onto spiking postsynaptic neurons (clipping to ``[w_min, w_max]`` after each), then
        adds the spikes to the traces (:mod:`torchbrain.ops.stdp`). Call it after the
        post population's step (spikes ``(..., n_pre)`` and ``(..., n_post)``, batch shape of the
        traces). In ``eval()`` mode only the traces advance. Needs ``dt`` from the context.
        """
        self._check_ready()
        self._check_spikes(pre_spikes, post_spikes)
        dt = get_dt_value(desc=self._name())
        learn = self.training
        inplace = not torch.is_grad_enabled()
        dtype = self.weight.dtype
        with torch.no_grad():
            decay_pre = torch.exp(-dt / self.tau_plus)
            decay_post = torch.exp(-dt / self.tau_minus)
            weight, x_pre, x_post = self._step(
                pre_spikes.detach().to(dtype), post_spikes.detach().to(dtype), decay_pre,
                decay_post, inplace, learn)
        if learn and not inplace:
            self.weight = weight
        self.x_pre = x_pre
        self.x_post = x_post

    def attach_post(self, post, key: str | None = None) -> None:
        """Learn from ``post``'s spikes: register an after-update on the post population.

        After every step of ``post`` it calls :meth:`update_weights` with the spikes this layer
        delivered in the same step (through ``forward``) and the spikes ``post.update`` returned.
        ``post`` must have ``n_post`` neurons and return its spikes from ``update`` (every
        torchbrain neuron does).
        """
        num = getattr(post, "num", None)
        if num != self.n_post or not hasattr(post, "add_after_update"):
            raise ValueError(
                f"{self._name()}: attach_post needs a population of {self.n_post} neurons, got "
                f"{type(post).__name__} with {num}"
            )
        post.add_after_update(key or f"stdp_{id(self)}", _PostHook(self, len(post.varshape)))


class DenseSTDP(STDPComm):
    r"""Dense all-to-all connectivity with pair-based STDP (trace form).

    .. math::

        y_j = \sum_i s_i\, w_{ij}, \qquad
        \Delta w_{ij} = -A_-\, s^\mathrm{pre}_i\, x^\mathrm{post}_j
                        + A_+\, s^\mathrm{post}_j\, x^\mathrm{pre}_i

    with exactly decaying traces (:math:`x \leftarrow x\,e^{-\Delta t/\tau} + s`) and the
    additive or multiplicative weight dependence of :mod:`torchbrain.ops.stdp`: a pair with
    lag :math:`\Delta t = t_\mathrm{post} - t_\mathrm{pre}` changes the weight by
    :math:`A_+ e^{-\Delta t/\tau_+}` (:math:`\Delta t > 0`) or :math:`-A_- e^{\Delta t/\tau_-}`
    (:math:`\Delta t < 0`); simultaneous spikes do not pair.

    Parameters
    ----------
    in_size, out_size : int or tuple of int
        Presynaptic and postsynaptic sizes; ``W`` has shape ``(n_pre, n_post)``.
    w_init : Initializer, quantity, number or tensor
        Initial weights ``(n_pre, n_post)`` (a scalar is broadcast), in nS (COBA), pA (CUBA),
        mV (delta synapses) or plain numbers; they must lie within ``[w_min, w_max]``.
    tau_plus : quantity [time], default 16.8 ms
        Decay time of the presynaptic trace (potentiation window); plain numbers in ms; a scalar
        or one per presynaptic neuron.
    tau_minus : quantity [time], default 33.7 ms
        Decay time of the postsynaptic trace (depression window); a scalar or one per
        postsynaptic neuron.
    A_plus, A_minus : quantity or number, default 0.01
        Potentiation and depression amplitudes (``>= 0``), in the weight's unit (plain numbers
        in its canonical unit); the change of a pair at zero lag.
    w_min : quantity or number, default 0
        Lower bound of the weights, in the weight's unit.
    w_max : quantity, number or None, default None
        Upper bound (``None``: unbounded, additive rule only).
    rule : {'additive', 'multiplicative'}, default 'additive'
        Additive changes clipped to the bounds, or soft bounds
        (:math:`\Delta w^+ \propto (w_\max - w)`, :math:`\Delta w^- \propto (w - w_\min)`,
        normalised by :math:`w_\max - w_\min`; needs finite bounds).
    device, dtype : optional
        Factory arguments.

    Attributes
    ----------
    weight : LongTermState, shape ``(n_pre, n_post)``
    x_pre, x_post : HiddenState, shapes ``(batch, n_pre)`` and ``(batch, n_post)``
        Traces after the last learning step.
    pre_spike : HiddenState
        The spikes of the last ``forward`` (consumed by :meth:`attach_post`'s hook).

    Notes
    -----
    The forward pass is event-driven (the rows of active inputs); graded inputs are weighted by
    value. Each learning step touches only the rows of spiking presynaptic and the columns of
    spiking postsynaptic neurons. Memory: the weight matrix plus ``n_pre + n_post`` traces per
    batch entry. A batch shares the weights and sums its changes.

    References
    ----------
    Song, S., Miller, K. D. & Abbott, L. F. (2000). Competitive Hebbian learning through
    spike-timing-dependent synaptic plasticity. *Nature Neuroscience* 3, 919–926.

    Morrison, A., Diesmann, M. & Gerstner, W. (2008). Phenomenological models of synaptic
    plasticity based on spike timing. *Biological Cybernetics* 98, 459–478.
    """

    def __init__(self, in_size, out_size, w_init, tau_plus=16.8 * u.ms, tau_minus=33.7 * u.ms,
                 A_plus=0.01, A_minus=0.01, w_min=0.0, w_max=None, rule: str = "additive", *,
                 device=None, dtype=None):
        super().__init__(in_size, out_size, tau_plus=tau_plus, tau_minus=tau_minus, rule=rule,
                         device=device, dtype=dtype)
        self._init_plasticity(w_init, (self.n_pre, self.n_post), A_plus, A_minus, w_min, w_max)

    def _deliver(self, x):
        return event_dense_matvec(x, self.weight, False)

    def _step(self, pre, post, decay_pre, decay_post, inplace, learn):
        return F.stdp_dense_step(self.weight, pre, post, self.x_pre, self.x_post, decay_pre,
                                 decay_post, inplace=inplace, learn=learn, **self._rule_kwargs())

    def to_dense(self) -> torch.Tensor:
        """The ``(n_pre, n_post)`` weight matrix, detached."""
        return self.weight.detach().clone()


class FixedNumConnSTDP(STDPComm):
    r"""Fixed fan-out connectivity (ELL table) with per-synapse pair-based STDP.

    The connectivity of :class:`~torchbrain.comm.EventFixedProb` (every presynaptic neuron has
    ``K`` targets, drawn with or without replacement) with one plastic weight per synapse and the
    rule of :class:`DenseSTDP`, applied to each synapse :math:`(i, k)` with target
    :math:`j = \mathrm{idx}_{ik}`:

    .. math::

        y_j = \sum_i s_i \sum_{k:\,\mathrm{idx}_{ik} = j} w_{ik}, \qquad
        \Delta w_{ik} = -A_-\, s^\mathrm{pre}_i\, x^\mathrm{post}_{\mathrm{idx}_{ik}}
                        + A_+\, s^\mathrm{post}_{\mathrm{idx}_{ik}}\, x^\mathrm{pre}_i .

    Parameters
    ----------
    in_size, out_size : int or tuple of int
        Presynaptic and postsynaptic sizes.
    conn_num : int or float or None
        Out-degree ``K``; a float in ``[0, 1]`` means ``K = int(n_post * conn_num)`` (as
        ``EventFixedProb``). ``None`` when ``indices`` is given.
    w_init : Initializer, quantity, number or tensor
        Initial weights ``(n_pre, K)`` (a scalar is broadcast), in nS, pA, mV or plain numbers,
        within ``[w_min, w_max]``.
    tau_plus, tau_minus, A_plus, A_minus, w_min, w_max, rule
        As :class:`DenseSTDP`.
    allow_multi_conn : bool, default True
        Draw targets with replacement; duplicate (pre, post) pairs are distinct synapses, each
        with its own weight and its own update.
    seed : int, optional
        Seed of a private generator for the table (``None``: torch's global generator).
    indices : tensor of int, shape ``(n_pre, K)``, optional
        An explicit target table instead of a random one (see :meth:`from_comm`).
    device, dtype : optional
        Factory arguments.

    Attributes
    ----------
    weight : LongTermState, shape ``(n_pre, K)``
    indices : buffer, int32 ``(n_pre, K)``
    post_indptr, post_slots : buffers
        The post-to-synapse CSR (:func:`~torchbrain.ops.stdp.ell_post_csr`), rebuilt
        from ``indices`` (not saved in ``state_dict``).
    x_pre, x_post, pre_spike : HiddenState
        As :class:`DenseSTDP`.

    Notes
    -----
    Memory per synapse: 4 bytes of target index, 4 (float32) or 8 (float64) bytes of weight and
    4 bytes (8 beyond :math:`2^{31}` synapses) for the post-to-synapse slot list that
    potentiation needs, plus ``4 (n_post + 1)`` bytes of row pointers; the traces are linear in
    neurons. The forward pass is :func:`torchbrain.ops.event_ell_matvec`; learning touches the
    ``K`` synapses of each spiking presynaptic neuron and the in-synapses of each spiking
    postsynaptic neuron only.

    References
    ----------
    Song, S., Miller, K. D. & Abbott, L. F. (2000). Competitive Hebbian learning through
    spike-timing-dependent synaptic plasticity. *Nature Neuroscience* 3, 919–926.

    Morrison, A., Diesmann, M. & Gerstner, W. (2008). Phenomenological models of synaptic
    plasticity based on spike timing. *Biological Cybernetics* 98, 459–478.
    """

    def __init__(self, in_size, out_size, conn_num, w_init, tau_plus=16.8 * u.ms,
                 tau_minus=33.7 * u.ms, A_plus=0.01, A_minus=0.01, w_min=0.0, w_max=None,
                 rule: str = "additive", allow_multi_conn: bool = True, seed: int | None = None,
                 *, indices=None, device=None, dtype=None):
        super().__init__(in_size, out_size, tau_plus=tau_plus, tau_minus=tau_minus, rule=rule,
                         device=device, dtype=dtype)
        self.allow_multi_conn = bool(allow_multi_conn)
        self.seed = seed
        if indices is None:
            if conn_num is None:
                raise ValueError(f"{self._name()}: give 'conn_num' or an 'indices' table")
            self.conn_num = EventFixedNumConn._out_degree(self, conn_num)
            generator = None
            if seed is not None:
                generator = torch.Generator(device=device or "cpu").manual_seed(int(seed))
            table = fixed_out_degree_table(
                self.n_pre, self.n_post, self.conn_num, allow_multi_conn=self.allow_multi_conn,
                generator=generator, device=device)
        else:
            table = self._check_table(indices, conn_num, device)
            self.conn_num = table.shape[1]
        self.register_buffer("indices", table, persistent=True)
        self._build_post_csr()
        self._init_plasticity(w_init, (self.n_pre, self.conn_num), A_plus, A_minus, w_min, w_max)

    def _check_table(self, indices, conn_num, device) -> torch.Tensor:
        table = torch.as_tensor(indices, device=device)
        if table.dtype.is_floating_point or table.dtype == torch.bool or table.ndim != 2 or (
            table.shape[0] != self.n_pre
        ):
            raise ValueError(
                f"{self._name()}: parameter 'indices' must be an integer table of shape "
                f"({self.n_pre}, K), got {table.dtype} of shape {tuple(table.shape)}"
            )
        if table.numel() and bool(((table < 0) | (table >= self.n_post)).any()):
            raise ValueError(
                f"{self._name()}: parameter 'indices' must hold targets in [0, {self.n_post})"
            )
        if conn_num is not None and conn_num != table.shape[1]:
            raise ValueError(
                f"{self._name()}: 'conn_num' ({conn_num}) disagrees with the {table.shape[1]} "
                "columns of 'indices'"
            )
        return table.to(torch.int32).clone()

    @classmethod
    def from_comm(cls, comm: EventFixedNumConn, **kwargs) -> FixedNumConnSTDP:
        """A plastic copy of a static fixed fan-out layer: same table, same weights and unit.

        ``kwargs`` are the rule parameters (``tau_plus``, ``A_plus``, ``w_max``, ``rule``, ...).
        """
        if not isinstance(comm, EventFixedNumConn):
            raise TypeError(f"FixedNumConnSTDP.from_comm: expected an EventFixedNumConn, got "
                            f"{type(comm).__name__}")
        weight = comm.weight.detach().expand(comm.n_pre, comm.conn_num)
        if comm.weight_unit is not None:
            weight = weight.cpu().numpy() * u(comm.weight_unit)
        kwargs.setdefault("dtype", comm.weight.dtype)
        kwargs.setdefault("device", comm.indices.device)
        return cls(comm.in_size, comm.out_size, None, weight,
                   allow_multi_conn=comm.allow_multi_conn, seed=comm.seed,
                   indices=comm.indices, **kwargs)

    def _build_post_csr(self) -> None:
        indptr, slots = F.ell_post_csr(self.indices, self.n_post)
        self.register_buffer("post_indptr", indptr, persistent=False)
        self.register_buffer("post_slots", slots, persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # the transposed table follows the (possibly different) loaded one
        self._build_post_csr()

    def _repr_config(self):
        return {**super()._repr_config(), "conn_num": self.conn_num,
                "allow_multi_conn": self.allow_multi_conn, "seed": self.seed}

    @property
    def num_synapses(self) -> int:
        return self.n_pre * self.conn_num

    def _deliver(self, x):
        if self.conn_num == 0:
            return x.new_zeros((*x.shape[:-1], self.n_post))
        return event_ell_matvec(x, self.indices, self.weight, self.n_post)

    def _step(self, pre, post, decay_pre, decay_post, inplace, learn):
        return F.stdp_ell_step(self.weight, self.indices, self.post_indptr, self.post_slots, pre,
                               post, self.x_pre, self.x_post, decay_pre, decay_post,
                               inplace=inplace, learn=learn, **self._rule_kwargs())

    def to_dense(self) -> torch.Tensor:
        """The equivalent ``(n_pre, n_post)`` matrix (duplicate synapses summed), detached."""
        eye = torch.eye(self.n_pre, dtype=self.weight.dtype, device=self.indices.device)
        if self.conn_num == 0:
            return eye.new_zeros(self.n_pre, self.n_post)
        return event_ell_matvec(eye, self.indices, self.weight.detach(), self.n_post)
