r"""Sparse connectivity stored as CSR: ``SparseLinear`` (a given matrix) and ``FixedProb``.

Both keep a compressed-sparse-row table: ``indptr`` (``n_pre + 1`` row pointers), ``indices``
(the target of each synapse, int32) and a scalar (homogeneous) or per-synapse weight. The forward
pass is the event-driven op :func:`torchbrain.ops.event_csr.event_csr_matvec`: only the rows of
presynaptic neurons with a nonzero input are read, so the cost grows with active inputs x
fan-out, and ``torch.compile(fullgraph=True)`` traces through it.

``FixedProb`` is true Bernoulli connectivity: every (pre, post) pair is connected independently
with probability ``p``, so the out-degrees vary (``Binomial(n_post, p)``). This differs from
brainpy.state's ``EventFixedProb`` (:mod:`torchbrain.comm.fixed_num`), whose ``p`` is a fixed
out-degree ``int(n_post * p)``.
"""

from __future__ import annotations

import math

import torch

from ..init import Initializer
from ..ops.event_csr import csr_to_dense, event_csr_matvec
from ..units import Quantity, UnitError, is_quantity
from .base import Comm

__all__ = ["FixedProb", "SparseLinear", "fixed_prob_csr"]

#: Random numbers drawn per chunk by :func:`fixed_prob_csr` (bounds the temporary memory).
_CHUNK = 1 << 22
_INT32_MAX = 2**31 - 1


def _index_dtype(upper: int) -> torch.dtype:
    return torch.int32 if upper <= _INT32_MAX else torch.int64


def _indptr_from_rows(rows: torch.Tensor, n_pre: int) -> torch.Tensor:
    """Row pointers of a CSR table whose (sorted) row ids are ``rows``."""
    counts = torch.bincount(rows, minlength=n_pre)
    indptr = torch.zeros(n_pre + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(counts, 0, out=indptr[1:])
    return indptr.to(_index_dtype(rows.numel()))


def fixed_prob_csr(
    n_pre: int,
    n_post: int,
    prob: float,
    *,
    include_self: bool = True,
    generator: torch.Generator | None = None,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Bernoulli(``prob``) connectivity between every (pre, post) pair, as a CSR table.

    The pairs are enumerated row by row (``pos = i * n_post + j``) and the gaps between
    successive connected pairs are drawn from the geometric distribution
    :math:`P(G = k) = (1 - p)^{k-1} p`, ``G = floor(log(U) / log(1 - p)) + 1`` with ``U``
    uniform in ``(0, 1]`` ("geometric skipping"). This is exactly the process of independent
    Bernoulli trials, so each row's count is ``Binomial(n_post, p)`` and the targets of a row are a
    uniform subset without repetition. The work and memory grow with the number of synapses,
    not with ``n_pre x n_post`` (no dense mask); random numbers are drawn in chunks, with no
    Python loop over neurons, and the positions come out sorted, so the table is CSR directly
    (targets ascending within each row). With ``include_self=False`` the pairs ``(i, i)`` are
    dropped afterwards, which leaves the other pairs independent Bernoulli(``p``).

    Parameters
    ----------
    n_pre, n_post : int
        Population sizes.
    prob : float
        Connection probability in ``[0, 1]``.
    include_self : bool, default True
        Keep the pairs ``(i, i)`` (meaningful when pre and post are the same population).
    generator : torch.Generator, optional
        Source of randomness (``None``: torch's global generator).
    device : optional
        Where to build the table.

    Returns
    -------
    indptr : Tensor, shape ``(n_pre + 1,)``
        int32 row pointers (int64 beyond ``2**31 - 1`` synapses).
    indices : Tensor, shape ``(nnz,)``
        int32 target of each synapse (int64 when ``n_post`` exceeds the int32 range).
    """
    total = n_pre * n_post
    if total >= 2**62:
        raise ValueError(f"fixed_prob_csr: {n_pre} x {n_post} pairs exceed the int64 range")
    col_dtype = _index_dtype(n_post - 1)
    counts = torch.zeros(n_pre, dtype=torch.int64, device=device)
    pieces = []
    # Each chunk of positions is reduced at once to int32 targets and per-row counts, so the
    # memory is 4 bytes per synapse plus one chunk of temporaries.
    for pos in _bernoulli_positions(total, prob, generator, device):
        rows = torch.div(pos, n_post, rounding_mode="floor")
        cols = pos - rows * n_post
        if not include_self:
            keep = rows != cols
            rows, cols = rows[keep], cols[keep]
        counts += torch.bincount(rows, minlength=n_pre)
        pieces.append(cols.to(col_dtype))
    indices = torch.cat(pieces) if pieces else torch.empty(0, dtype=col_dtype, device=device)
    indptr = torch.zeros(n_pre + 1, dtype=torch.int64, device=device)
    torch.cumsum(counts, 0, out=indptr[1:])
    return indptr.to(_index_dtype(indices.shape[0])), indices


def _bernoulli_positions(total: int, prob: float, generator, device):
    """Chunks of the sorted positions in ``[0, total)`` kept by independent Bernoulli trials."""
    if prob <= 0.0 or total == 0:
        return
    if prob >= 1.0:
        for start in range(0, total, _CHUNK):
            yield torch.arange(start, min(total, start + _CHUNK), dtype=torch.int64,
                               device=device)
        return
    log_q = math.log1p(-prob)
    mean = total * prob
    # enough draws for the whole sequence with high probability; the loop covers the rest
    chunk = int(min(_CHUNK, mean + 6.0 * math.sqrt(mean) + 64))
    last = -1
    while last < total - 1:
        uniform = torch.rand(chunk, dtype=torch.float64, generator=generator, device=device)
        # 1 - uniform lies in (0, 1], so the logarithm is finite
        gaps = torch.floor(torch.log1p(-uniform) / log_q).to(torch.int64) + 1
        pos = torch.cumsum(gaps, 0) + last
        last = int(pos[-1])
        yield pos[pos < total] if last >= total else pos


class _CSRComm(Comm):
    """Shared storage and forward pass of the CSR layers."""

    def _store_csr(self, indptr: torch.Tensor, indices: torch.Tensor) -> None:
        self.register_buffer("indptr", indptr, persistent=True)
        self.register_buffer("indices", indices, persistent=True)

    def _store_values(self, weight, trainable: bool, name: str) -> None:
        nnz = self.indices.shape[0]
        w = self._weight_tensor(weight, (nnz,), name=name)
        if w.ndim not in (0, 1) or (w.ndim == 1 and w.shape[0] != nnz):
            raise ValueError(
                f"{self._name()}: parameter '{name}' must be a scalar (homogeneous) or hold one "
                f"value per synapse, shape ({nnz},), got shape {tuple(w.shape)}"
            )
        self._store_weight(w, trainable)

    @property
    def num_synapses(self) -> int:
        return int(self.indices.shape[0])

    def _event_matvec(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        dtype = self.weight.dtype
        return event_csr_matvec(x.to(dtype), self.indptr, self.indices, self.weight, self.n_post)

    def to_dense(self) -> torch.Tensor:
        """The equivalent ``(n_pre, n_post)`` dense weight matrix (for tests and inspection)."""
        return csr_to_dense(self.indptr, self.indices, self.weight.detach(), self.n_post)


def _check_csr(owner: str, indptr, indices, n_pre: int, n_post: int):
    for name, t in (("indptr", indptr), ("indices", indices)):
        if not isinstance(t, torch.Tensor) or t.dtype not in (torch.int32, torch.int64) or (
            t.ndim != 1
        ):
            raise TypeError(
                f"{owner}: '{name}' must be a 1-D int32 or int64 tensor, got "
                f"{t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}"
                f"{'' if not isinstance(t, torch.Tensor) else f' of shape {tuple(t.shape)}'}"
            )
    if indptr.shape[0] != n_pre + 1:
        raise ValueError(
            f"{owner}: 'indptr' must have in_size + 1 = {n_pre + 1} entries, got {indptr.shape[0]}"
        )
    nnz = indices.shape[0]
    if int(indptr[0]) != 0 or int(indptr[-1]) != nnz or bool((indptr[1:] < indptr[:-1]).any()):
        raise ValueError(
            f"{owner}: 'indptr' must start at 0, never decrease and end at len(indices) = {nnz}, "
            f"got indptr[0]={int(indptr[0])}, indptr[-1]={int(indptr[-1])}"
        )
    if nnz and (int(indices.min()) < 0 or int(indices.max()) >= n_post):
        raise ValueError(
            f"{owner}: 'indices' must lie in [0, out_size) = [0, {n_post}), got values in "
            f"[{int(indices.min())}, {int(indices.max())}]"
        )


class SparseLinear(_CSRComm):
    r"""A fixed sparse weight matrix applied to graded inputs: ``y = x @ W + b``.

    .. math::

        y_j = \sum_{i} x_i W_{ij} + b_j, \qquad W \text{ stored as CSR}

    Parameters
    ----------
    in_size, out_size : int or tuple of int
        Presynaptic and postsynaptic sizes (``W`` is ``(n_pre, n_post)``).
    weight : tensor, quantity or number
        One of: a ``torch.sparse_csr`` (or COO) tensor of shape ``(n_pre, n_post)``; a dense
        ``(n_pre, n_post)`` matrix (tensor, array or quantity), whose nonzero entries become the
        synapses; or, together with ``indptr`` and ``indices``, the CSR values, one per synapse
        ``(nnz,)`` or a scalar (homogeneous). A quantity must be a conductance (nS), a current
        (pA) or a voltage (mV); plain numbers are taken as canonical and dimensionless.
    indptr, indices : Tensor of int32/int64, optional
        A CSR structure (row pointers ``(n_pre + 1,)`` and targets ``(nnz,)``) for ``weight``.
    b_init : quantity, number, tensor or Initializer, optional
        Bias of shape ``(n_post,)`` in the weight's unit; ``None`` (default): no bias.
    trainable : bool, default False
        Register the values (and the bias) as ``nn.Parameter``; the sparsity pattern is fixed.
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    The product skips the rows of ``W`` whose input is zero, so sparse activity is cheap; the
    gradient reaches ``x`` and the stored values. brainstate's ``SparseLinear`` takes a
    ``brainevent`` matrix and always makes its values trainable; here ``trainable`` chooses.
    """

    def __init__(self, in_size, out_size, weight, indptr=None, indices=None, b_init=None,
                 trainable: bool = False, *, device=None, dtype=None):
        super().__init__(in_size, out_size, device=device, dtype=dtype)
        owner = self._name()
        if (indptr is None) != (indices is None):
            raise ValueError(f"{owner}: give both 'indptr' and 'indices', or neither")
        if indptr is None:
            indptr, indices, weight = self._from_matrix(weight)
        else:
            indptr = torch.as_tensor(indptr, device=device)
            indices = torch.as_tensor(indices, device=device)
            _check_csr(owner, indptr, indices, self.n_pre, self.n_post)
            indptr = indptr.to(_index_dtype(indices.shape[0]))
            indices = indices.to(_index_dtype(self.n_post - 1))
        self._store_csr(indptr, indices)
        self._store_values(weight, trainable, "weight")
        if b_init is None:
            self.register_buffer("bias", None)
        else:
            unit = self.weight_unit
            bias = self._weight_tensor(b_init, (self.n_post,), name="b_init")
            if unit is not None and self.weight_unit != unit:
                raise UnitError(f"{owner}: parameter 'b_init' must be in {unit} like the weight, "
                                f"got {self.weight_unit}")
            if unit is None and self.weight_unit is not None:
                self._param_units["weight"] = self.weight_unit
            if tuple(bias.shape) not in ((), (self.n_post,)):
                raise ValueError(f"{owner}: parameter 'b_init' must be a scalar or have shape "
                                 f"({self.n_post},), got shape {tuple(bias.shape)}")
            self._store_weight(bias, trainable, name="bias")

    def _from_matrix(self, weight):
        owner = self._name()
        unit = None
        mag = weight
        if is_quantity(weight):
            mag, unit = weight.magnitude, weight.units
        if isinstance(mag, torch.Tensor) and mag.layout in (torch.sparse_coo, torch.sparse_csr):
            if tuple(mag.shape) != (self.n_pre, self.n_post):
                raise ValueError(f"{owner}: parameter 'weight' must have shape "
                                 f"{(self.n_pre, self.n_post)}, got {tuple(mag.shape)}")
            if mag.layout == torch.sparse_csr:
                indptr, indices, values = mag.crow_indices(), mag.col_indices(), mag.values()
            else:
                coo = mag.coalesce()  # sorted row-major, duplicates summed
                rows, indices = coo.indices()
                indptr, values = _indptr_from_rows(rows, self.n_pre), coo.values()
        else:
            if isinstance(weight, Initializer):
                raise TypeError(f"{owner}: parameter 'weight' needs a matrix, not an initializer "
                                "(give a dense or sparse matrix, or indptr and indices)")
            dense = self._weight_tensor(weight, (self.n_pre, self.n_post), name="weight")
            if tuple(dense.shape) != (self.n_pre, self.n_post):
                raise ValueError(f"{owner}: parameter 'weight' must have shape "
                                 f"{(self.n_pre, self.n_post)}, got {tuple(dense.shape)}")
            dense = dense.detach()
            rows, indices = torch.nonzero(dense, as_tuple=True)  # row-major order
            indptr, values, unit = _indptr_from_rows(rows, self.n_pre), dense[rows, indices], None
        device = self._factory["device"] or indptr.device
        indptr = indptr.to(device=device, dtype=_index_dtype(indices.shape[0]))
        indices = indices.to(device=device, dtype=_index_dtype(self.n_post - 1))
        if unit is not None:
            values = Quantity(values, unit)
        return indptr, indices, values

    def _repr_config(self):
        return {**super()._repr_config(), "nnz": self.num_synapses}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., n_pre)`` graded inputs to ``(..., n_post)`` outputs."""
        y = self._event_matvec(x)
        return y if self.bias is None else y + self.bias


class FixedProb(_CSRComm):
    r"""Random connectivity: each (pre, post) pair is connected with probability ``prob``.

    .. math::

        y_j = \sum_i s_i \, C_{ij} w_{ij}, \qquad C_{ij} \sim \mathrm{Bernoulli}(p)
        \ \text{independently}

    Parameters
    ----------
    in_size, out_size : int or tuple of int
        Presynaptic and postsynaptic population sizes.
    prob : float
        Connection probability in ``[0, 1]``. Each presynaptic neuron gets
        ``Binomial(n_post, prob)`` targets (``Binomial(n_post - 1, prob)`` with
        ``include_self=False`` for ``i < n_post``).
    weight : quantity, number, tensor or Initializer
        Weight with the unit of what it delivers: a conductance (nS, COBA), a current (pA, CUBA) or
        a voltage (mV, delta synapses); plain numbers are canonical. A scalar is homogeneous (no
        per-synapse storage); an initializer is evaluated on ``(nnz,)`` (one value per synapse,
        in CSR order: rows by presynaptic neuron, targets ascending).
    seed : int, optional
        Seed of a private generator, for reproducible tables; ``None`` draws from torch's global
        generator (``torch.manual_seed`` makes it reproducible).
    include_self : bool, default True
        ``False`` removes the pairs ``(i, i)`` (for recurrent connections within a population).
    trainable : bool, default False
        Register the weight as an ``nn.Parameter`` (the connectivity pattern stays fixed).
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    The table is generated by geometric skipping (:func:`fixed_prob_csr`): memory and time grow
    with the number of synapses, never with ``n_pre x n_post``. Storage is CSR: int32 ``indptr``
    (int64 beyond ``2**31 - 1`` synapses), int32 ``indices`` (4 bytes per synapse), plus 4 bytes
    per synapse for float32 per-synapse weights. Inputs are multiplied in: binary spikes give the
    event semantics, graded inputs are weighted (the reference binarises floats).

    Unlike ``EventFixedProb`` (brainpy.state's name for a fixed out-degree ``int(n_post * p)``,
    see :mod:`torchbrain.comm.fixed_num`), this is the usual random graph of probability ``p``
    (NEST's ``pairwise_bernoulli``, braintools' ``conn.FixedProb``); there are no duplicate
    synapses.
    """

    def __init__(self, in_size, out_size, prob, weight, seed: int | None = None,
                 include_self: bool = True, trainable: bool = False, *, device=None,
                 dtype=None):
        super().__init__(in_size, out_size, device=device, dtype=dtype)
        if isinstance(prob, bool) or not isinstance(prob, int | float) or math.isnan(prob) or not (
            0.0 <= prob <= 1.0
        ):
            raise ValueError(
                f"{self._name()}: parameter 'prob' must be a probability in [0, 1], got {prob!r}"
            )
        self.prob = float(prob)
        self.seed = seed
        self.include_self = bool(include_self)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=device or "cpu").manual_seed(int(seed))
        indptr, indices = fixed_prob_csr(self.n_pre, self.n_post, self.prob,
                                         include_self=self.include_self, generator=generator,
                                         device=device)
        self._store_csr(indptr, indices)
        self._store_values(weight, trainable, "weight")

    def _repr_config(self):
        return {**super()._repr_config(), "prob": self.prob, "include_self": self.include_self,
                "seed": self.seed, "nnz": self.num_synapses}

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """``(..., n_pre)`` spikes (or graded events) to ``(..., n_post)`` summed weights."""
        return self._event_matvec(spikes)
