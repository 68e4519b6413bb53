r"""Triton kernels for the event-driven CSR projection.

The op (:func:`torchbrain.ops.event_csr_matvec`) computes, for ``spikes`` of shape
``(..., n_pre)`` and a compressed sparse row table (``indptr`` of ``n_pre + 1`` row pointers,
``indices`` and, per synapse, weights ``w``; or one scalar weight)

.. math::

    \mathrm{out}[b, j] = \sum_i s[b, i]
        \sum_{k \in [\mathrm{indptr}_i, \mathrm{indptr}_{i+1}):\ \mathrm{idx}_k = j} w_k .

Rows have any length, zero included. Unlike the fixed fan-out table of
:mod:`torchbrain.kernels.event_ell`, a row's length is only known on the device, so the work of
a block of events cannot be laid out as a ``rows x K`` rectangle. The kernels here **pack** it:
a tile of rows (events in the forward, consecutive rows in the backward) is treated as one
concatenated list of synapses, walked in chunks of ``CHUNK`` lanes, and every lane finds the row
it belongs to by a branchless binary search over the tile's cumulative row ends (held in
registers, ``log2(rows)`` :func:`triton.language.gather` steps). Every lane but those of a
tile's last chunk does useful work whatever the distribution of row lengths -- empty rows cost
nothing, a row of 10^5 synapses next to rows of 10 wastes no lane -- where a ``rows x BLOCK_K``
tile looping to its longest row would idle every other row's lanes for the long row's extra
chunks.

Forward (:func:`event_csr_matvec`), two kernels:

1. :func:`compact_pieces` -- spike compaction into **work pieces**. One program per block of
   ``BLOCK`` entries of the flattened ``(batch * n_pre,)`` spikes: flags ``s != 0``, reads the
   fired rows' bounds from ``indptr`` and cuts each row into ``ceil(length / PIECE)`` pieces of
   at most ``PIECE`` synapses (an empty row gives none), takes a block-level inclusive scan of
   the piece counts, reserves room in the global list with **one** atomic add on a device
   counter per block (skipped when the block has no piece), and writes ``(flat position, piece
   number)`` pairs there. The list's order between blocks is whatever order the atomics ran in.
2. :func:`scatter_events` -- a **fixed** grid of programs (a few per multiprocessor; the host
   never reads the number of pieces, so the pair can be captured in a CUDA graph) strides over
   the list in tiles of ``BLOCK_E`` pieces. Per tile: each piece's synapse range, an inclusive
   scan of their lengths, then the packed walk; per lane the synapse, its target (row segments
   are contiguous, so consecutive lanes load consecutive targets), the weight (per synapse, or
   the scalar loaded once per program from device memory) and a relaxed atomic add of
   ``s * w`` into ``out[b, target]``. Duplicate targets in a row are separate adds: delivered
   once per entry, as in the reference.

Cost: ``O(batch * n_pre)`` for the compaction (one read of the spikes, two of ``indptr`` where
a neuron fired) plus ``O(#events x mean row length)`` for the scatter; nothing proportional to
the number of synapses. Load balance: no tile holds more than ``BLOCK_E x PIECE`` synapses, so
a "hub" row of ``L`` synapses is spread over ``L / PIECE`` tiles, hence over as many programs,
instead of keeping one program busy for ``L / CHUNK`` chunks while the others have finished.

Backward (:func:`event_csr_matvec_backward`), two kernels without atomics; each program owns
``BLOCK_I`` consecutive rows, whose synapses are one contiguous segment
``indptr[r0] .. indptr[r0 + BLOCK_I]`` of the table, walked in packed chunks as above:

* gradient to the spikes, ``grad_s[b, i] = sum_{k in row i} grad_out[b, idx_k] * w_k`` -- one
  program per (batch element, row block). The per-lane products are summed per row by a
  **segmented** inclusive scan (a lane that starts a row restarts the sum); the lane holding a
  row's last synapse stores the row's total, and a row cut by the chunk boundary carries its
  partial sum into the next chunk. No ``(batch, nnz)`` intermediate, no atomics (deterministic).
  For a scalar weight the kernel sums ``grad_out`` over the row and the launcher multiplies by
  ``w``.
* gradient to per-synapse weights, ``grad_w[k] = sum_b grad_out[b, idx_k] * s[b, row(k)]`` --
  one program per row block, looping over the batch inside each chunk; the row of each synapse
  comes from the same search, the spikes of the block's rows are loaded once per batch element
  and gathered to the lanes, and the loads of ``grad_out`` are masked by ``s != 0``, so only
  synapses of rows that fired read it. For a scalar weight the gradient is
  ``sum_{b,i} s[b, i] * G[b, i]`` with ``G`` the unweighted row sums, reduced with torch.

A hub row in the backward is walked by the one program that owns it (``L / CHUNK`` chunks); the
backward has ``batch x n_pre / BLOCK_I`` programs, which the GPU hands out as multiprocessors
free up, so a long program delays the end only when it starts last.

Accumulation is in float32 (float64 when the inputs are float64); float16/bfloat16 outputs are
accumulated in float32 and cast at the end. Offsets and synapse positions are 64-bit (``nnz``,
``batch * n_pre`` or ``batch * n_post`` may pass 2^31). Atomic float adds make the forward's
rounding order non-deterministic (differences at the level of float32 rounding); the backward is
deterministic.

These launchers take CUDA tensors, or CPU tensors when Triton's interpreter is on
(``TRITON_INTERPRET=1`` set before this module is imported); the tests use the latter. Host-side
helpers (accumulation dtype, grid size) are shared with :mod:`torchbrain.kernels.event_ell`.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from . import event_ell as _ell

__all__ = [
    "compact_pieces",
    "scatter_events",
    "event_csr_matvec",
    "event_csr_matvec_backward",
    "tile_sizes",
]

#: Lanes per chunk of a packed walk (one synapse per lane).
CHUNK = 512
#: Synapses a tile aims at (events or rows per tile = this / mean row length, rounded up to a
#: power of two): about 4 chunks, so the partly filled last chunk of a tile wastes <= 1/4 of the
#: tile's lanes, 1/8 on average.
TILE_WORK = 2048
#: Most rows (forward: pieces) per tile; the search over them takes log2 of this many steps.
MAX_TILE_ROWS = 256
#: Most synapses per work piece of the forward (longer rows are cut): 2 tiles' worth of work.
PIECE = 4096
#: Spike entries per compaction program.
COMPACT_BLOCK = 1024


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------
# As in event_ell.py: sums, scans and zeros go through tl.reduce / tl.associative_scan /
# tl.full (core builtins) rather than tl.sum / tl.cumsum / tl.zeros (library functions, which run
# under the interpreter only if TRITON_INTERPRET=1 was set before Triton's first import).


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _segmented_add(value_a, starts_a, value_b, starts_b):
    # sum of a run of lanes that restarts where a lane begins a new row; associative, so
    # tl.associative_scan can evaluate it as a tree
    return tl.where(starts_b, value_b, value_a + value_b), starts_a | starts_b


@triton.jit
def _count_at_most(sorted_ends, position, N: tl.constexpr):
    """For each lane, how many entries of the nondecreasing vector ``sorted_ends`` (length N, a
    power of two) are <= ``position``: the tile-local index of the row that holds the lane
    (row r covers [end_{r-1}, end_r)). Branchless binary search, log2(N) gathers; the result
    stays <= N - 1, which is all a lane inside the tile can need (its position is below the
    last row's end)."""
    found = tl.full(position.shape, 0, tl.int32)
    for level in tl.static_range(16):
        if (N >> (level + 1)) > 0:  # resolved at compile time: steps N/2, N/4, ..., 1
            probe = tl.gather(sorted_ends, found + ((N >> (level + 1)) - 1), 0)
            found = tl.where(probe <= position, found + (N >> (level + 1)), found)
    return found


@triton.jit
def _max(a, b):
    return tl.maximum(a, b)


# Sizes that only enter masks and index arithmetic are not specialised on (divisibility by 16,
# equality to 1), so a new network size does not compile new variants.


@triton.jit(do_not_specialize=["n", "n_pre"])
def _compact_kernel(spikes_ptr, indptr_ptr, event_ptr, piece_ptr, count_ptr, n, n_pre,
                    PIECE: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    # int64 offsets: batch * n_pre may pass 2**31 even when each factor does not
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < n
    s = tl.load(spikes_ptr + offs, mask=inside, other=0)
    fired = (s != 0) & inside
    # the row of each entry: one 64-bit remainder per program, not per entry (a 64-bit `%` is
    # a ~70-instruction subroutine, more than this kernel's memory time); a block crosses at
    # most one batch boundary when n_pre >= BLOCK. Consecutive rows: coalesced indptr loads.
    row = offs - pid.to(tl.int64) * BLOCK + (pid.to(tl.int64) * BLOCK) % n_pre
    if n_pre >= BLOCK:
        row = tl.where(row >= n_pre, row - n_pre, row)
    else:
        row = row % n_pre
    lo = tl.load(indptr_ptr + row, mask=fired, other=0).to(tl.int64)
    hi = tl.load(indptr_ptr + row + 1, mask=fired, other=0).to(tl.int64)
    pieces = ((hi - lo + PIECE - 1) // PIECE).to(count_ptr.dtype.element_ty)  # 0 if not fired
    first = tl.associative_scan(pieces, 0, _add) - pieces  # exclusive: the entry's first slot
    total = tl.reduce(pieces, 0, _add)
    # one atomic per block reserves `total` consecutive entries of the global list
    base = tl.atomic_add(count_ptr, total, mask=total > 0, sem="relaxed")
    slot = event_ptr + base + first
    # a row of more than PIECE synapses writes several entries: as many rounds as the block's
    # longest row needs (one, unless a row is longer than PIECE)
    for j in range(0, tl.reduce(pieces, 0, _max)):
        more = j < pieces
        tl.store(slot + j, offs.to(event_ptr.dtype.element_ty), mask=more)
        tl.store(piece_ptr + base + first + j, j, mask=more)


@triton.jit(do_not_specialize=["n_pre", "n_post"])
def _scatter_kernel(spikes_ptr, event_ptr, piece_ptr, count_ptr, indptr_ptr, idx_ptr, w_ptr,
                    out_ptr, n_pre, n_post, HOMOGENEOUS: tl.constexpr, PIECE: tl.constexpr,
                    BLOCK_E: tl.constexpr, CHUNK: tl.constexpr):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    acc_ty = out_ptr.dtype.element_ty
    count = tl.load(count_ptr)
    if HOMOGENEOUS:
        w0 = tl.load(w_ptr).to(acc_ty)
    lanes = tl.arange(0, CHUNK)
    # fixed grid striding over the piece list: the host never needs the number of pieces
    for start in range(pid * BLOCK_E, count, nprog * BLOCK_E):
        e = start + tl.arange(0, BLOCK_E)
        live = e < count
        flat = tl.load(event_ptr + e, mask=live, other=0).to(tl.int64)
        piece = tl.load(piece_ptr + e, mask=live, other=0).to(tl.int64)
        amount = tl.load(spikes_ptr + flat, mask=live, other=0).to(acc_ty)
        row = flat % n_pre
        first = tl.load(indptr_ptr + row, mask=live, other=0).to(tl.int64) + piece * PIECE
        row_end = tl.load(indptr_ptr + row + 1, mask=live, other=0).to(tl.int64)
        length = tl.minimum(row_end - first, PIECE)
        # the tile's synapses as one packed list: piece e owns positions [ends_e - length_e,
        # ends_e), synapse = first_e + (position - (ends_e - length_e))
        ends = tl.associative_scan(length, 0, _add)
        work = tl.reduce(length, 0, _add)
        shift = first - (ends - length)
        out_base = (flat // n_pre) * n_post
        for p0 in range(0, work, CHUNK):
            position = p0 + lanes
            m = position < work
            owner = _count_at_most(ends, position, BLOCK_E)
            syn = tl.gather(shift, owner, 0) + position
            target = tl.load(idx_ptr + syn, mask=m, other=0).to(tl.int64)
            val = tl.gather(amount, owner, 0)
            if HOMOGENEOUS:
                val = val * w0
            else:
                val = val * tl.load(w_ptr + syn, mask=m, other=0).to(acc_ty)
            tl.atomic_add(out_ptr + tl.gather(out_base, owner, 0) + target, val, mask=m,
                          sem="relaxed")


@triton.jit
def _row_block(indptr_ptr, r0, n_pre, BLOCK_I: tl.constexpr):
    """Row starts and ends of rows ``r0 .. r0 + BLOCK_I`` (ends past the table are set to the
    segment's end, so the search never picks a padding row) and the segment they span."""
    rows = r0 + tl.arange(0, BLOCK_I)
    inside = rows < n_pre
    seg_lo = tl.load(indptr_ptr + r0).to(tl.int64)
    seg_hi = tl.load(indptr_ptr + tl.minimum(r0 + BLOCK_I, n_pre)).to(tl.int64)
    starts = tl.load(indptr_ptr + rows, mask=inside, other=0).to(tl.int64)
    ends = tl.load(indptr_ptr + rows + 1, mask=inside, other=0).to(tl.int64)
    ends = tl.where(inside, ends, seg_hi)
    return rows, inside, starts, ends, seg_lo, seg_hi


@triton.jit(do_not_specialize=["n_pre", "n_post"])
def _grad_spikes_kernel(grad_out_ptr, indptr_ptr, idx_ptr, w_ptr, grad_s_ptr, n_pre, n_post,
                        HOMOGENEOUS: tl.constexpr, ACC: tl.constexpr,
                        BLOCK_I: tl.constexpr, CHUNK: tl.constexpr):
    # 1-D grid over (batch element, row block): grid dimension y is limited to 65535
    pid = tl.program_id(0)
    n_blocks = (n_pre + BLOCK_I - 1) // BLOCK_I
    b = (pid // n_blocks).to(tl.int64)
    r0 = (pid % n_blocks).to(tl.int64) * BLOCK_I
    rows, inside, starts, ends, seg_lo, seg_hi = _row_block(indptr_ptr, r0, n_pre, BLOCK_I)
    lanes = tl.arange(0, CHUNK)
    grad_row = grad_out_ptr + b * n_post
    out_row = grad_s_ptr + b * n_pre + r0
    last_lane = tl.full([1], CHUNK - 1, tl.int32)
    carry = tl.full([1], 0, ACC)  # partial sum of a row cut by the previous chunk's end
    for c0 in range(seg_lo, seg_hi, CHUNK):
        k = c0 + lanes
        live = k < seg_hi
        owner = _count_at_most(ends, k, BLOCK_I)
        target = tl.load(idx_ptr + k, mask=live, other=0).to(tl.int64)
        g = tl.load(grad_row + target, mask=live, other=0).to(ACC)
        if not HOMOGENEOUS:
            g = g * tl.load(w_ptr + k, mask=live, other=0).to(ACC)
        g = tl.where(lanes == 0, g + carry, g)
        row_sum, restarted = tl.associative_scan((g, k == tl.gather(starts, owner, 0)), 0,
                                                 _segmented_add)
        ends_here = live & (k + 1 == tl.gather(ends, owner, 0))
        # one lane per row that ends in this chunk; empty rows keep the launcher's zeros
        tl.store(out_row + owner, row_sum.to(grad_s_ptr.dtype.element_ty), mask=ends_here)
        # (a gather of one lane rather than a masked reduction: the same on the GPU, and the
        # interpreter runs a reduction with a user combine function element by element)
        carry = tl.where(tl.gather(ends_here.to(tl.int32), last_lane, 0) != 0, 0,
                         tl.gather(row_sum, last_lane, 0))


@triton.jit(do_not_specialize=["batch", "n_pre", "n_post"])
def _grad_weights_kernel(grad_out_ptr, spikes_ptr, indptr_ptr, idx_ptr, grad_w_ptr,
                         batch, n_pre, n_post,
                         ACC: tl.constexpr, BLOCK_I: tl.constexpr, CHUNK: tl.constexpr):
    r0 = tl.program_id(0).to(tl.int64) * BLOCK_I
    rows, inside, starts, ends, seg_lo, seg_hi = _row_block(indptr_ptr, r0, n_pre, BLOCK_I)
    lanes = tl.arange(0, CHUNK)
    for c0 in range(seg_lo, seg_hi, CHUNK):
        k = c0 + lanes
        live = k < seg_hi
        owner = _count_at_most(ends, k, BLOCK_I)  # once per chunk, used for every batch element
        target = tl.load(idx_ptr + k, mask=live, other=0).to(tl.int64)
        acc = tl.full((CHUNK,), 0, dtype=ACC)
        # pointers advance by one batch row per step (64-bit, where b * n_pre in int32 might not be)
        s_ptrs = spikes_ptr + rows
        g_ptrs = grad_out_ptr + target
        for _b in range(0, batch):
            s = tl.gather(tl.load(s_ptrs, mask=inside, other=0).to(ACC), owner, 0)
            # synapses of rows without an event contribute nothing: do not read grad_out there
            g = tl.load(g_ptrs, mask=live & (s != 0), other=0)
            acc += g.to(ACC) * s
            s_ptrs += n_pre
            g_ptrs += n_post
        tl.store(grad_w_ptr + k, acc.to(grad_w_ptr.dtype.element_ty), mask=live)


# --------------------------------------------------------------------------------------------
# launchers
# --------------------------------------------------------------------------------------------


def tile_sizes(nnz: int, n_pre: int, tile_work: int = TILE_WORK,
               chunk: int = CHUNK) -> tuple[int, int]:
    """``(rows, chunk)``: rows (forward: events) per tile and lanes per chunk of the packed walk.

    ``rows`` is the power of two that brings a tile of rows of the mean length ``nnz / n_pre``
    to at least ``tile_work`` synapses (``MAX_TILE_ROWS`` at most): mean 1000 -> 4 rows, mean
    80 -> 32, mean 1 -> 256. ``chunk`` is ``CHUNK``, or the next power of two of the tile's
    expected synapses when that is smaller (short rows), at least 16. Both only depend on sizes
    the host knows (``nnz = indices.numel()``), never on device values.
    """
    mean = nnz / n_pre if n_pre else 0.0
    if mean <= 0:
        return 1, 16
    rows = min(MAX_TILE_ROWS, triton.next_power_of_2(math.ceil(tile_work / mean)))
    lanes = min(chunk, max(16, triton.next_power_of_2(math.ceil(rows * mean))))
    return rows, lanes


def compact_pieces(flat_spikes: torch.Tensor, indptr: torch.Tensor, nnz: int,
                   piece: int = PIECE, block: int = COMPACT_BLOCK):
    """The work pieces of the nonzero entries of the flattened ``(batch, n_pre)`` spikes.

    Parameters
    ----------
    flat_spikes : Tensor, shape ``(batch * n_pre,)``, contiguous
    indptr : Tensor of int32/int64, shape ``(n_pre + 1,)``
    nnz : int
        Number of synapses (``indices.numel()``), for the size of the list.
    piece, block : int
        Most synapses per piece, entries per program (powers of two).

    Returns
    -------
    events : Tensor of int32 (int64 when the list may pass ``2**31 - 1`` entries)
        Flat position (``b * n_pre + i``) of each piece's event. Room for every possible piece,
        ``batch * (n_pre + ceil(nnz / piece))`` entries; the first ``count`` are the pieces,
        in no particular order; the rest is uninitialised.
    pieces : Tensor of int32, same length
        Piece number within the row: the piece covers synapses
        ``indptr[i] + piece * [number, number + 1)``, clipped to the row.
    count : Tensor of the events' dtype, shape ``(1,)``
        Number of pieces, on the device (never read by the host here).
    """
    n = flat_spikes.numel()
    n_pre = indptr.shape[0] - 1
    batch = n // n_pre if n_pre else 0
    # sum over fired rows of ceil(len / piece) <= rows + nnz / piece, per batch element
    size = n + batch * triton.cdiv(nnz, piece)
    index_dtype = _ell._index_dtype(size)
    device = flat_spikes.device
    events = torch.empty(size, dtype=index_dtype, device=device)
    pieces = torch.empty(size, dtype=torch.int32, device=device)
    count = torch.zeros(1, dtype=index_dtype, device=device)
    if n:
        _compact_kernel[(triton.cdiv(n, block),)](flat_spikes, indptr, events, pieces, count, n,
                                                  n_pre, PIECE=piece, BLOCK=block)
    return events, pieces, count


def scatter_events(flat_spikes, events, pieces, count, indptr, indices, weights, out,
                   n_pre: int, n_post: int, piece: int = PIECE, programs: int | None = None,
                   block_e: int | None = None, chunk: int | None = None) -> torch.Tensor:
    """Add every listed piece's weighted CSR row segment into ``out`` (flattened
    ``(batch, n_post)``).

    ``events``/``pieces``/``count`` come from :func:`compact_pieces` (with the same ``piece``);
    ``out`` must be contiguous, float32 or float64, and is accumulated into (not cleared).
    ``programs`` fixes the grid (default: as the ELL scatter, a few per multiprocessor, never
    more than the tiles the largest possible list needs); ``block_e``/``chunk`` override
    :func:`tile_sizes`.
    """
    if events.numel() == 0 or indices.numel() == 0 or out.numel() == 0:
        return out
    default_e, default_chunk = tile_sizes(indices.numel(), n_pre)
    block_e = block_e or default_e
    chunk = chunk or default_chunk
    if programs is None:
        programs = min(_ell._default_programs(flat_spikes.device),
                       triton.cdiv(events.numel(), block_e))
    _scatter_kernel[(max(1, programs),)](
        flat_spikes, events, pieces, count, indptr, indices, weights, out, n_pre, n_post,
        HOMOGENEOUS=weights.ndim == 0, PIECE=piece, BLOCK_E=block_e, CHUNK=chunk,
    )
    return out


def _prepare(spikes, indptr, indices, weights):
    # weights may be a CPU scalar next to CUDA spikes (torch allows 0-d CPU operands): the
    # kernel needs it on the device
    if weights.device != spikes.device:
        weights = weights.to(spikes.device)
    return spikes.contiguous(), indptr.contiguous(), indices.contiguous(), weights.contiguous()


def event_csr_matvec(spikes: torch.Tensor, indptr: torch.Tensor, indices: torch.Tensor,
                     weights: torch.Tensor, n_post: int, **config) -> torch.Tensor:
    """The op's forward with the two kernels (same contract as ``torchbrain.ops``).

    ``config`` passes ``programs``/``block_e``/``chunk`` to :func:`scatter_events`,
    ``compact_block`` to :func:`compact_pieces` and ``piece`` to both (tests use small values
    to exercise striding and the cutting of rows).
    """
    spikes, indptr, indices, weights = _prepare(spikes, indptr, indices, weights)
    n_pre = indptr.shape[0] - 1
    batch_shape = spikes.shape[:-1]
    batch = math.prod(batch_shape)
    acc = _ell._acc_dtype(spikes.dtype)
    out = torch.zeros(batch * n_post, dtype=acc, device=spikes.device)
    compact_block = config.pop("compact_block", COMPACT_BLOCK)
    piece = config.pop("piece", PIECE)
    if out.numel() and n_pre and indices.numel():
        flat = spikes.reshape(-1)
        events, pieces, count = compact_pieces(flat, indptr, indices.numel(), piece,
                                               compact_block)
        scatter_events(flat, events, pieces, count, indptr, indices, weights, out, n_pre,
                       n_post, piece=piece, **config)
    return out.to(spikes.dtype).reshape(*batch_shape, n_post)


def event_csr_matvec_backward(grad_out: torch.Tensor, spikes: torch.Tensor,
                              indptr: torch.Tensor, indices: torch.Tensor,
                              weights: torch.Tensor, need_spikes: bool = True,
                              need_weights: bool = True, block_i: int | None = None,
                              chunk: int | None = None):
    """Gradients of the op to ``spikes`` and ``weights`` (``None`` where not asked for).

    Same values as the pure-torch formula in :mod:`torchbrain.ops.event_csr` (up to summation
    order; ``grad_spikes`` in the dtype of ``spikes``, ``grad_weights`` in that of ``weights``),
    without its ``(batch, nnz)`` intermediates; deterministic; not differentiable itself.
    ``block_i``/``chunk`` override :func:`tile_sizes` (rows per program, lanes per chunk).
    """
    spikes, indptr, indices, weights = _prepare(spikes, indptr, indices, weights)
    grad_out = grad_out.contiguous()  # e.g. the expanded gradient of a .sum()
    n_pre = indptr.shape[0] - 1
    nnz = indices.numel()
    n_post = grad_out.shape[-1]
    batch = math.prod(spikes.shape[:-1])
    homogeneous = weights.ndim == 0
    acc = _ell._acc_dtype(grad_out.dtype, spikes.dtype, weights.dtype)
    device = spikes.device
    default_i, default_chunk = tile_sizes(nnz, n_pre)
    block_i = block_i or default_i
    chunk = chunk or default_chunk
    n_row_blocks = triton.cdiv(n_pre, block_i)
    runs = batch and n_pre and nnz and n_post  # else every gradient is zero
    grad_spikes = grad_weights = None

    row_sums = None  # weighted (per-synapse w) or unweighted (scalar w) row sums of grad_out
    if need_spikes or (need_weights and homogeneous):
        row_dtype = acc if homogeneous else spikes.dtype
        row_sums = torch.zeros(spikes.shape, dtype=row_dtype, device=device)
        if runs:
            _grad_spikes_kernel[(batch * n_row_blocks,)](
                grad_out, indptr, indices, weights, row_sums, n_pre, n_post,
                HOMOGENEOUS=homogeneous, ACC=_ell._tl_dtype(acc), BLOCK_I=block_i, CHUNK=chunk,
            )
    if need_spikes:
        if homogeneous:
            grad_spikes = (row_sums * weights.to(acc)).to(spikes.dtype)
        else:
            grad_spikes = row_sums
    if need_weights:
        if homogeneous:
            grad_weights = (row_sums * spikes.to(acc)).sum().to(weights.dtype)
        else:
            grad_weights = torch.zeros(weights.shape, dtype=weights.dtype, device=device)
            if runs:
                _grad_weights_kernel[(n_row_blocks,)](
                    grad_out, spikes, indptr, indices, grad_weights, batch, n_pre, n_post,
                    ACC=_ell._tl_dtype(acc), BLOCK_I=block_i, CHUNK=chunk,
                )
    return grad_spikes, grad_weights
