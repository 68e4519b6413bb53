r"""Triton kernels for the STDP update of a fixed fan-out (ELL) table, with its launcher.

The op (``torchbrain::stdp_ell_update_`` in :mod:`torchbrain.ops.stdp`) changes, in place,
the per-synapse weights ``w`` ``(n_pre, K)`` of a table whose synapse ``(i, k)`` ends on
``j = idx[i, k]``, for spikes ``s`` and traces ``x`` of shape ``(batch, n)`` on both sides (the
traces already decayed to this step, without this step's spikes). Two passes, in this order:

.. math::

    \text{depression, every } k \text{ of every row } i \text{ with } \exists b:\
        s^\mathrm{pre}_{bi} \ne 0: \quad
    w_{ik} \leftarrow \mathrm{clip}\Big(w_{ik} - A_- \, m^-_{ik}\, r^-(w_{ik})\Big), \quad
    m^-_{ik} = \sum_b s^\mathrm{pre}_{bi}\, x^\mathrm{post}_{b, \mathrm{idx}_{ik}}

.. math::

    \text{potentiation, every synapse onto a } j \text{ with } \exists b:\
        s^\mathrm{post}_{bj} \ne 0: \quad
    w_{ik} \leftarrow \mathrm{clip}\Big(w_{ik} + A_+ \, m^+_{ik}\, r^+(w_{ik})\Big), \quad
    m^+_{ik} = \sum_b s^\mathrm{post}_{bj}\, x^\mathrm{pre}_{bi}

with :math:`r^\pm = 1` (additive rule) or :math:`r^+ = (w_\max - w)/(w_\max - w_\min)`,
:math:`r^- = (w - w_\min)/(w_\max - w_\min)` (multiplicative rule), and
:math:`\mathrm{clip}` to :math:`[w_\min, w_\max]`. A synapse whose two ends both spiked is
depressed first and potentiated from the depressed weight.

Three kernels (four launches with the counter's memset), none of which the host waits for:

1. :func:`compact_active` -- one launch compacts both sides. A program owns ``BLOCK`` neurons of
   one side, ORs ``s != 0`` over the batch, takes a block-level inclusive scan of the flags,
   reserves room in that side's list with **one** atomic add on its device counter (skipped when
   the block has no active neuron) and writes the neurons' indices there (in no particular order
   between blocks).
2. ``_depress_kernel`` -- a **fixed** grid (a few programs per multiprocessor, independent of the
   number of active rows, which the host never reads) strides over the active-row list in tiles
   of ``BLOCK_E`` rows x ``BLOCK_K`` columns: loads the targets (contiguous row segments), gathers
   ``x_post`` at them for every batch entry in which the row spiked, reads, changes and writes
   the row's weights. Every synapse of the row is written by exactly one lane: no atomics.
3. ``_potentiate_kernel`` -- the transposed (post -> pre) traversal: a fixed grid strides over
   the active-column list in tiles of ``BLOCK_C`` columns; each tile walks the longest of its
   columns' CSR segments (``post_slots[indptr[j]:indptr[j + 1]]``, from :func:`torchbrain.
   ops.stdp.ell_post_csr`) in chunks of ``BLOCK_S`` slots, gathers ``x_pre`` at the
   synapses' rows ``slot // K`` and changes the weights at ``slot``. The CSR lists every synapse
   once, so again one lane per synapse and no atomics.

The order of the two passes is the order of the launches on the stream: the potentiation kernel
starts after the depression kernel has finished, so a synapse whose pre and post neuron both
spiked is potentiated from its depressed weight, exactly as the torch op does it. Duplicate
targets are distinct synapses (distinct slots): each is changed once per pass.

Rounding: the kernels repeat the torch op's operations in its order,
``((A * m) * r) / span`` then ``w -/+ delta`` then the clip, in the weight's dtype (float32 or
float64), with floating-point contraction turned off (``enable_fp_fusion=False``: an fma of
``w - A m`` would round once where torch rounds twice) and correctly rounded float32 divisions
(``tl.div_rn``). With one batch entry ``m`` is one product, so the result is bit-identical to
the torch op (tested on the interpreter; the GPU check reports the share against the CUDA torch
path). With several batch entries ``m`` is summed in batch order, where torch's
``einsum``/``sum`` may pick another order (or fma, in a GEMM): last-bit differences.
One documented difference: a batch entry in which the neuron did not spike adds exactly 0 here
(its trace is not read), where torch adds ``0 * x``, which is NaN for an infinite trace.

Cost: ``O(batch x (n_pre + n_post))`` for the compaction (one read of the spikes) plus
``O(batch x (#active rows x K + #synapses onto active columns))`` gathers and one read and
write per changed weight; nothing proportional to the table.

These launchers take CUDA tensors, or CPU tensors when Triton's interpreter is on
(``TRITON_INTERPRET=1`` set before this module is imported); the tests use the latter.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from .event_ell import scatter_block_sizes

__all__ = [
    "compact_active",
    "stdp_ell_update_",
    "potentiate_block_sizes",
    "SUPPORTED_DTYPES",
]

#: Neurons per compaction program.
COMPACT_BLOCK = 1024
#: Update programs per multiprocessor (the fixed grids).
PROGRAMS_PER_SM = 4
#: Update programs when there is no CUDA device to ask (Triton's interpreter on the CPU).
INTERPRETER_PROGRAMS = 4
#: Weight dtypes the kernels compute in; the op keeps its torch path for the others.
SUPPORTED_DTYPES = (torch.float32, torch.float64)


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------
# Only core language operations (tl.load/store/where/full/reduce/associative_scan/div_rn), none
# of Triton's @jit library functions (tl.sum, tl.cumsum, tl.zeros...), which run under the
# interpreter only if TRITON_INTERPRET=1 was set before Triton's first import (kernels/NOTES.md).
# Sizes that only enter masks and offsets are not specialised on (a new network size compiles no
# new variant); K is (a multiple of 16 lets the rows load as wide vectors).


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _max(a, b):
    return tl.maximum(a, b)


@triton.jit
def _div(a, b):
    # float32: the correctly rounded quotient, as torch computes it (Triton's `/` on float32 is
    # the faster, not correctly rounded division); float64 `/` is already correctly rounded
    if a.dtype == tl.float32:
        return tl.div_rn(a, b)
    else:
        return a / b


@triton.jit
def _apply(current, amount, gain, lo, hi, MULTIPLICATIVE: tl.constexpr,
           POTENTIATE: tl.constexpr):
    """New weights after the change ``gain * amount`` (x the soft bound), clipped; the torch
    op's ``_apply`` operation by operation."""
    if MULTIPLICATIVE:
        if POTENTIATE:
            room = hi - current
        else:
            room = current - lo
        delta = _div(gain * amount * room, hi - lo)
    else:
        delta = gain * amount
    if POTENTIATE:
        new = current + delta
    else:
        new = current - delta
    # torch.clamp(new, lo, hi) = min(max(new, lo), hi), NaN kept (tl.maximum/minimum would
    # return the bound for a NaN on the GPU)
    new = tl.where(new < lo, lo, new)
    return tl.where(new > hi, hi, new)


@triton.jit
def _compact_block(spikes_ptr, n, batch, list_ptr, count_ptr, block, BLOCK: tl.constexpr):
    # int64 offsets: the batch stride walk below may pass 2**31 even when n does not
    offs = block.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < n
    fired = tl.full((BLOCK,), 0, dtype=tl.int1)
    ptrs = spikes_ptr + offs
    for _ in range(0, batch):
        fired = fired | (tl.load(ptrs, mask=inside, other=0) != 0)
        ptrs += n
    fired = fired & inside
    flags = fired.to(tl.int32)
    slot = tl.associative_scan(flags, 0, _add) - 1  # inclusive scan -> 0-based slot in the block
    total = tl.reduce(flags, 0, _add)
    # one atomic per block reserves `total` consecutive entries of the side's list
    base = tl.atomic_add(count_ptr, total.to(count_ptr.dtype.element_ty), mask=total > 0,
                         sem="relaxed")
    tl.store(list_ptr + base + slot, offs.to(list_ptr.dtype.element_ty), mask=fired)


@triton.jit(do_not_specialize=["n_pre", "n_post", "batch", "pre_blocks"])
def _compact_kernel(s_pre_ptr, s_post_ptr, rows_ptr, cols_ptr, count_ptr, n_pre, n_post, batch,
                    pre_blocks, BLOCK: tl.constexpr):
    # one launch for both sides: the first `pre_blocks` programs take the presynaptic neurons
    pid = tl.program_id(0)
    if pid < pre_blocks:
        _compact_block(s_pre_ptr, n_pre, batch, rows_ptr, count_ptr, pid, BLOCK)
    else:
        _compact_block(s_post_ptr, n_post, batch, cols_ptr, count_ptr + 1, pid - pre_blocks,
                       BLOCK)


@triton.jit(do_not_specialize=["n_pre", "n_post", "batch"])
def _depress_kernel(s_pre_ptr, x_post_ptr, rows_ptr, count_ptr, idx_ptr, w_ptr, gain_ptr,
                    lo_ptr, hi_ptr, n_pre, n_post, batch, K,
                    MULTIPLICATIVE: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    ty = w_ptr.dtype.element_ty
    count = tl.load(count_ptr)
    # the rule's scalars from device memory (no .item(): nothing for the host to wait on)
    gain = tl.load(gain_ptr)
    lo = tl.load(lo_ptr)
    hi = tl.load(hi_ptr)
    cols = tl.arange(0, BLOCK_K)
    # fixed grid striding over the active rows: the host never needs their number
    for start in range(pid * BLOCK_E, count, nprog * BLOCK_E):
        e = start + tl.arange(0, BLOCK_E)
        live = e < count
        row = tl.load(rows_ptr + e, mask=live, other=0).to(tl.int64)
        for k0 in range(0, K, BLOCK_K):
            k = k0 + cols
            m = live[:, None] & (k < K)[None, :]
            syn = row[:, None] * K + k[None, :]
            target = tl.load(idx_ptr + syn, mask=m, other=0).to(tl.int64)
            amount = tl.full((BLOCK_E, BLOCK_K), 0, dtype=ty)
            s_ptrs = s_pre_ptr + row
            x_ptrs = x_post_ptr + target
            for _ in range(0, batch):
                s = tl.load(s_ptrs, mask=live, other=0)
                # a batch entry in which the row did not spike adds 0: its trace is not read
                x = tl.load(x_ptrs, mask=m & (s != 0)[:, None], other=0)
                amount += s[:, None] * x
                s_ptrs += n_pre
                x_ptrs += n_post
            current = tl.load(w_ptr + syn, mask=m, other=0)
            new = _apply(current, amount, gain, lo, hi, MULTIPLICATIVE, False)
            tl.store(w_ptr + syn, new, mask=m)


@triton.jit(do_not_specialize=["n_pre", "n_post", "batch"])
def _potentiate_kernel(s_post_ptr, x_pre_ptr, cols_ptr, count_ptr, indptr_ptr, slots_ptr, w_ptr,
                       gain_ptr, lo_ptr, hi_ptr, n_pre, n_post, batch, K,
                       MULTIPLICATIVE: tl.constexpr, BLOCK_C: tl.constexpr,
                       BLOCK_S: tl.constexpr):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    ty = w_ptr.dtype.element_ty
    count = tl.load(count_ptr)
    gain = tl.load(gain_ptr)
    lo = tl.load(lo_ptr)
    hi = tl.load(hi_ptr)
    lanes = tl.arange(0, BLOCK_S)
    for start in range(pid * BLOCK_C, count, nprog * BLOCK_C):
        c = start + tl.arange(0, BLOCK_C)
        live = c < count
        col = tl.load(cols_ptr + c, mask=live, other=0).to(tl.int64)
        begin = tl.load(indptr_ptr + col, mask=live, other=0).to(tl.int64)
        length = tl.load(indptr_ptr + col + 1, mask=live, other=0).to(tl.int64) - begin
        # the tile walks its longest in-synapse list; shorter lists are masked
        longest = tl.reduce(length, 0, _max)
        for j0 in range(0, longest, BLOCK_S):
            j = j0 + lanes
            m = j[None, :] < length[:, None]
            slot = tl.load(slots_ptr + begin[:, None] + j[None, :], mask=m, other=0)
            # the synapse's row, in the slots' own integer type (int32 division where it fits)
            row = (slot // K).to(tl.int64)
            slot = slot.to(tl.int64)
            amount = tl.full((BLOCK_C, BLOCK_S), 0, dtype=ty)
            s_ptrs = s_post_ptr + col
            x_ptrs = x_pre_ptr + row
            for _ in range(0, batch):
                s = tl.load(s_ptrs, mask=live, other=0)
                x = tl.load(x_ptrs, mask=m & (s != 0)[:, None], other=0)
                amount += s[:, None] * x
                s_ptrs += n_post
                x_ptrs += n_pre
            current = tl.load(w_ptr + slot, mask=m, other=0)
            new = _apply(current, amount, gain, lo, hi, MULTIPLICATIVE, True)
            tl.store(w_ptr + slot, new, mask=m)


# --------------------------------------------------------------------------------------------
# launchers
# --------------------------------------------------------------------------------------------


def _index_dtype(n: int) -> torch.dtype:
    return torch.int32 if n < 2**31 - 1 else torch.int64


@functools.lru_cache(maxsize=16)
def _multiprocessors(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def _default_programs(device: torch.device) -> int:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return _multiprocessors(index) * PROGRAMS_PER_SM
    return INTERPRETER_PROGRAMS


def _interpreted() -> bool:
    """Whether this module's kernels were built for Triton's interpreter."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(_depress_kernel, InterpretedFunction)


def potentiate_block_sizes(n_pre: int, K: int, n_post: int) -> tuple[int, int]:
    """``(BLOCK_C, BLOCK_S)`` of the potentiation tile: columns x slots per column.

    The mean fan-in ``n_pre K / n_post`` (known on the host without reading the table) plays
    the part of the fan-out in :func:`~torchbrain.kernels.event_ell.scatter_block_sizes`.
    """
    fan_in = max(1, round(n_pre * K / max(n_post, 1)))
    return scatter_block_sizes(fan_in)


def compact_active(pre_spikes: torch.Tensor, post_spikes: torch.Tensor,
                   block: int = COMPACT_BLOCK):
    """Lists of the neurons that spiked in any batch entry, on both sides, in one launch.

    Parameters
    ----------
    pre_spikes, post_spikes : Tensor, shapes ``(batch, n_pre)`` and ``(batch, n_post)``
        Contiguous, one batch size.
    block : int
        Neurons per program (a power of two).

    Returns
    -------
    rows, cols : Tensor of int32 (int64 beyond ``2**31 - 2`` neurons), shapes ``(n_pre,)`` and
        ``(n_post,)``
        The first ``counts[0]`` (``counts[1]``) entries are the active neurons, in no particular
        order; the rest is uninitialised.
    counts : Tensor, shape ``(2,)``
        Numbers of active pre and post neurons, on the device (never read by the host here).
    """
    batch, n_pre = pre_spikes.shape
    n_post = post_spikes.shape[1]
    dtype = _index_dtype(max(n_pre, n_post))
    device = pre_spikes.device
    rows = torch.empty(n_pre, dtype=dtype, device=device)
    cols = torch.empty(n_post, dtype=dtype, device=device)
    counts = torch.zeros(2, dtype=dtype, device=device)
    pre_blocks = triton.cdiv(n_pre, block)
    grid = pre_blocks + triton.cdiv(n_post, block)
    if batch and grid:
        _compact_kernel[(grid,)](pre_spikes, post_spikes, rows, cols, counts, n_pre, n_post,
                                 batch, pre_blocks, BLOCK=block)
    return rows, cols, counts


def _flat(x: torch.Tensor, n: int, dtype: torch.dtype, name: str) -> torch.Tensor:
    if x.shape[-1:] != (n,):
        raise ValueError(f"torchbrain.kernels.stdp_ell: '{name}' must end in {n} entries, got "
                         f"shape {tuple(x.shape)}")
    # the torch op's `_as_2d`: the weight's dtype, so `!= 0` and the products are the same
    return x.reshape(-1, n).to(dtype).contiguous()


def stdp_ell_update_(weight: torch.Tensor, indices: torch.Tensor, post_indptr: torch.Tensor,
                     post_slots: torch.Tensor, pre_spikes: torch.Tensor,
                     post_spikes: torch.Tensor, x_pre: torch.Tensor, x_post: torch.Tensor,
                     A_plus: torch.Tensor, A_minus: torch.Tensor, w_min: torch.Tensor,
                     w_max: torch.Tensor, multiplicative: bool, *, programs: int | None = None,
                     compact_block: int = COMPACT_BLOCK, block_e: int | None = None,
                     block_k: int | None = None, block_c: int | None = None,
                     block_s: int | None = None) -> None:
    """The op ``torchbrain::stdp_ell_update_`` with the kernels: changes ``weight`` in place.

    Same arguments and contract as the op (:func:`torchbrain.ops.stdp.stdp_ell_update`
    documents them); ``weight`` must be contiguous, float32 or float64. The keywords tune the
    launches (tests use small values to exercise striding and ragged tiles): ``programs`` fixes
    both update grids (default: ``PROGRAMS_PER_SM`` per multiprocessor, never more than the
    largest possible list needs), ``compact_block`` the neurons per compaction program,
    ``block_e``/``block_k`` the depression tile (default :func:`~torchbrain.kernels.event_ell.
    scatter_block_sizes` of ``K``) and ``block_c``/``block_s`` the potentiation tile (default
    :func:`potentiate_block_sizes`).
    """
    if weight.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"torchbrain.kernels.stdp_ell: 'weight' must be float32 or float64, got "
                        f"{weight.dtype}")
    if weight.device.type != "cuda" and not _interpreted():
        raise ValueError(
            "torchbrain.kernels.stdp_ell: the kernels need CUDA tensors (or Triton's interpreter, "
            f"TRITON_INTERPRET=1 before this module is imported); got {weight.device}"
        )
    if not weight.is_contiguous() or weight.shape != indices.shape:
        raise ValueError(f"torchbrain.kernels.stdp_ell: 'weight' must be contiguous with the "
                         f"shape of 'indices' {tuple(indices.shape)}, got {tuple(weight.shape)} "
                         f"(contiguous: {weight.is_contiguous()})")
    n_pre, K = indices.shape
    n_post = post_indptr.shape[0] - 1
    # no synapse, or no neuron a synapse could end on (then no valid table has a synapse)
    if K == 0 or n_pre == 0 or n_post <= 0:
        return
    dtype, device = weight.dtype, weight.device
    s_pre = _flat(pre_spikes, n_pre, dtype, "pre_spikes")
    s_post = _flat(post_spikes, n_post, dtype, "post_spikes")
    x_pre = _flat(x_pre, n_pre, dtype, "x_pre")
    x_post = _flat(x_post, n_post, dtype, "x_post")
    batch = s_pre.shape[0]
    if not (s_post.shape[0] == x_pre.shape[0] == x_post.shape[0] == batch):
        raise ValueError(
            "torchbrain.kernels.stdp_ell: spikes and traces must share their batch size, got "
            f"pre_spikes {tuple(pre_spikes.shape)}, post_spikes {tuple(post_spikes.shape)}, "
            f"x_pre {tuple(x_pre.shape)}, x_post {tuple(x_post.shape)}"
        )
    if batch == 0:
        return
    # 0-d parameters on the weight's device (a no-op for the op's own wrappers)
    a_plus, a_minus, lo, hi = (p.to(device=device, dtype=dtype)
                               for p in (A_plus, A_minus, w_min, w_max))
    indices = indices.contiguous()
    post_indptr = post_indptr.contiguous()
    post_slots = post_slots.contiguous()

    rows, cols, counts = compact_active(s_pre, s_post, compact_block)
    default_e, default_k = scatter_block_sizes(K)
    block_e, block_k = block_e or default_e, block_k or default_k
    default_c, default_s = potentiate_block_sizes(n_pre, K, n_post)
    block_c, block_s = block_c or default_c, block_s or default_s
    grid_programs = programs or _default_programs(device)
    options = {}
    if device.type == "cuda":
        # contraction off: `w - A m` and the batch sums round as torch's separate operations
        options["enable_fp_fusion"] = False
    multiplicative = bool(multiplicative)
    # depression first, then potentiation: the stream orders the two launches, so potentiation
    # reads the depressed weights
    _depress_kernel[(max(1, min(grid_programs, triton.cdiv(n_pre, block_e))),)](
        s_pre, x_post, rows, counts[0:1], indices, weight, a_minus, lo, hi, n_pre, n_post,
        batch, K, MULTIPLICATIVE=multiplicative, BLOCK_E=block_e, BLOCK_K=block_k, **options,
    )
    _potentiate_kernel[(max(1, min(grid_programs, triton.cdiv(n_post, block_c))),)](
        s_post, x_pre, cols, counts[1:2], post_indptr, post_slots, weight, a_plus, lo, hi,
        n_pre, n_post, batch, K, MULTIPLICATIVE=multiplicative, BLOCK_C=block_c,
        BLOCK_S=block_s, **options,
    )
