r"""Triton kernels for the event-driven fixed fan-out (ELL) projection.

The op (:func:`torchbrain.ops.event_ell_matvec`) computes, for ``spikes`` of shape
``(..., n_pre)``, an ``(n_pre, K)`` target table ``indices`` and weights ``w`` (a 0-d tensor or an
``(n_pre, K)`` table)

.. math::

    \mathrm{out}[b, j] = \sum_i s[b, i] \sum_{k:\ \mathrm{idx}[i, k] = j} w[i, k].

Forward, two kernels (the design measured in torchbrain's anchors page):

1. :func:`compact_events` -- spike compaction. One program per block of ``BLOCK`` entries of the
   flattened ``(batch * n_pre,)`` spikes: flags ``s != 0``, takes a block-level inclusive
   ``cumsum`` of the flags, reserves room in the global list with **one** atomic add on a device
   counter per block (skipped when the block has no event), and writes the flat positions of its
   events there. The list's order between blocks is whatever order the atomics ran in.
2. :func:`scatter_events` -- a **fixed** grid of programs (a few per multiprocessor, independent of
   the number of events, which the host never reads: no synchronisation, so the pair can be
   captured in a CUDA graph) strides over the event list in tiles of ``BLOCK_E`` events. For each
   event it reads the event value ``s`` (graded values multiply the weight), then walks the fan-out
   row in chunks of ``BLOCK_K`` columns: loads the targets (one contiguous row segment per
   event), the weights (per-synapse) or the scalar weight (loaded once per program from device
   memory, no ``.item()``), and does relaxed atomic adds of ``s * w`` into ``out[b, target]``.
   Duplicate targets in a row are separate atomic adds, so they are delivered once per entry, as
   in the reference.

Cost: ``O(batch * n_pre)`` for the compaction (one read of the spikes) plus ``O(#events * K)``
for the scatter; nothing proportional to the number of synapses.

Backward (:func:`event_ell_matvec_backward`), two gather kernels, no atomics:

* gradient to the spikes ``grad_s[b, i] = sum_k grad_out[b, idx[i, k]] * w[i, k]`` -- one program
  per block of ``BLOCK_I`` rows and batch element; dense by nature (every presynaptic neuron gets a
  gradient), but it never materialises the ``(batch, n_pre, K)`` gather that the pure-torch
  formula builds. For a scalar weight the kernel sums ``grad_out`` over the row and the launcher
  multiplies by ``w``.
* gradient to per-synapse weights ``grad_w[i, k] = sum_b grad_out[b, idx[i, k]] * s[b, i]`` -- one
  program per tile of rows and columns, looping over the batch; the loads of ``grad_out`` are
  masked by ``s != 0``, so only rows that fired read memory. For a scalar weight the gradient is
  ``sum_{b,i} s[b, i] * G[b, i]`` with ``G`` the unweighted row sums (computed by the first kernel),
  reduced with torch.

Accumulation is in float32 (float64 when the inputs are float64); float16/bfloat16 outputs are
accumulated in float32 and cast at the end. Atomic float adds make the forward's rounding order
non-deterministic (differences at the level of float32 rounding).

These launchers take CUDA tensors, or CPU tensors when Triton's interpreter is on
(``TRITON_INTERPRET=1`` set before this module is imported); the tests use the latter.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

__all__ = [
    "compact_events",
    "scatter_events",
    "event_ell_matvec",
    "event_ell_matvec_backward",
    "scatter_block_sizes",
]

#: Spike entries per compaction program.
COMPACT_BLOCK = 1024
#: (event, column) pairs per scatter tile: BLOCK_E * BLOCK_K.
SCATTER_TILE = 2048
#: Scatter programs per multiprocessor (the fixed grid).
PROGRAMS_PER_SM = 4
#: Scatter programs when there is no CUDA device to ask (Triton's interpreter on the CPU).
INTERPRETER_PROGRAMS = 4
#: Rows per backward program.
GATHER_BLOCK_I = 32


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------
# Sums and scans go through tl.reduce / tl.associative_scan with the combine function below, and
# zeros through tl.full, rather than tl.sum / tl.cumsum / tl.zeros (which compile to the same
# thing): Triton's library functions are decorated when Triton is first imported, so they only
# run under the interpreter when TRITON_INTERPRET=1 was set before that; built this way the
# kernels run on the interpreter whenever *this* module was imported with it (the CPU tests rely
# on that: torch imports Triton early).


@triton.jit
def _add(a, b):
    return a + b


# Sizes that only enter masks and index arithmetic are not specialised on (divisibility by 16,
# equality to 1), so a new network size does not compile new variants; K stays specialised (a
# multiple of 16 lets the target rows load as wide vectors).


@triton.jit(do_not_specialize=["n"])
def _compact_kernel(spikes_ptr, events_ptr, count_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    # int64 offsets: batch * n_pre may pass 2**31 even when each factor does not
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offs < n
    s = tl.load(spikes_ptr + offs, mask=inside, other=0)
    fired = (s != 0) & inside
    flags = fired.to(tl.int32)
    slot = tl.associative_scan(flags, 0, _add) - 1  # inclusive scan -> 0-based slot in the block
    total = tl.reduce(flags, 0, _add)
    # one atomic per block reserves `total` consecutive entries of the global list
    base = tl.atomic_add(count_ptr, total.to(count_ptr.dtype.element_ty), mask=total > 0,
                         sem="relaxed")
    tl.store(events_ptr + base + slot, offs.to(events_ptr.dtype.element_ty), mask=fired)


@triton.jit(do_not_specialize=["n_pre", "n_post"])
def _scatter_kernel(spikes_ptr, events_ptr, count_ptr, idx_ptr, w_ptr, out_ptr,
                    n_pre, n_post, K,
                    HOMOGENEOUS: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_K: tl.constexpr):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    acc_ty = out_ptr.dtype.element_ty
    count = tl.load(count_ptr)
    if HOMOGENEOUS:
        w0 = tl.load(w_ptr).to(acc_ty)
    cols = tl.arange(0, BLOCK_K)
    # fixed grid striding over the event list: the host never needs the number of events
    for start in range(pid * BLOCK_E, count, nprog * BLOCK_E):
        e = start + tl.arange(0, BLOCK_E)
        live = e < count
        flat = tl.load(events_ptr + e, mask=live, other=0).to(tl.int64)
        amount = tl.load(spikes_ptr + flat, mask=live, other=0).to(acc_ty)
        row = flat % n_pre
        row_base = row * K
        out_base = (flat // n_pre) * n_post
        for k0 in range(0, K, BLOCK_K):
            k = k0 + cols
            m = live[:, None] & (k < K)[None, :]
            syn = row_base[:, None] + k[None, :]
            target = tl.load(idx_ptr + syn, mask=m, other=0).to(tl.int64)
            if HOMOGENEOUS:
                val = tl.broadcast_to(amount[:, None] * w0, (BLOCK_E, BLOCK_K))
            else:
                val = amount[:, None] * tl.load(w_ptr + syn, mask=m, other=0).to(acc_ty)
            tl.atomic_add(out_ptr + out_base[:, None] + target, val, mask=m, sem="relaxed")


@triton.jit(do_not_specialize=["n_pre", "n_post"])
def _grad_spikes_kernel(grad_out_ptr, idx_ptr, w_ptr, grad_s_ptr, n_pre, n_post, K,
                        HOMOGENEOUS: tl.constexpr, ACC: tl.constexpr,
                        BLOCK_I: tl.constexpr, BLOCK_K: tl.constexpr):
    # 1-D grid over (batch element, row block): grid dimension y is limited to 65535
    pid = tl.program_id(0)
    n_blocks = (n_pre + BLOCK_I - 1) // BLOCK_I
    b = (pid // n_blocks).to(tl.int64)
    rows = (pid % n_blocks).to(tl.int64) * BLOCK_I + tl.arange(0, BLOCK_I)
    rmask = rows < n_pre
    acc = tl.full((BLOCK_I,), 0, dtype=ACC)
    cols = tl.arange(0, BLOCK_K)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + cols
        m = rmask[:, None] & (k < K)[None, :]
        syn = rows[:, None] * K + k[None, :]
        target = tl.load(idx_ptr + syn, mask=m, other=0).to(tl.int64)
        g = tl.load(grad_out_ptr + b * n_post + target, mask=m, other=0).to(ACC)
        if not HOMOGENEOUS:
            g = g * tl.load(w_ptr + syn, mask=m, other=0).to(ACC)
        acc += tl.reduce(g, 1, _add)
    tl.store(grad_s_ptr + b * n_pre + rows, acc.to(grad_s_ptr.dtype.element_ty), mask=rmask)


@triton.jit(do_not_specialize=["batch", "n_pre", "n_post"])
def _grad_weights_kernel(grad_out_ptr, spikes_ptr, idx_ptr, grad_w_ptr, batch, n_pre, n_post, K,
                         ACC: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_K: tl.constexpr):
    pid = tl.program_id(0)
    n_col_blocks = (K + BLOCK_K - 1) // BLOCK_K
    rows = (pid // n_col_blocks).to(tl.int64) * BLOCK_I + tl.arange(0, BLOCK_I)
    k = (pid % n_col_blocks) * BLOCK_K + tl.arange(0, BLOCK_K)
    rmask = rows < n_pre
    m = rmask[:, None] & (k < K)[None, :]
    syn = rows[:, None] * K + k[None, :]
    target = tl.load(idx_ptr + syn, mask=m, other=0).to(tl.int64)
    acc = tl.full((BLOCK_I, BLOCK_K), 0, dtype=ACC)
    # pointers advance by one batch row per step (64-bit, where b * n_pre in int32 might not be)
    s_ptrs = spikes_ptr + rows
    g_ptrs = grad_out_ptr + target
    for _ in range(0, batch):
        s = tl.load(s_ptrs, mask=rmask, other=0).to(ACC)
        # rows without an event contribute nothing: do not read grad_out for them
        g = tl.load(g_ptrs, mask=m & (s != 0)[:, None], other=0)
        acc += g.to(ACC) * s[:, None]
        s_ptrs += n_pre
        g_ptrs += n_post
    tl.store(grad_w_ptr + syn, acc.to(grad_w_ptr.dtype.element_ty), mask=m)


# --------------------------------------------------------------------------------------------
# launchers
# --------------------------------------------------------------------------------------------


def _acc_dtype(*dtypes: torch.dtype) -> torch.dtype:
    return torch.float64 if torch.float64 in dtypes else torch.float32


def _tl_dtype(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


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


def scatter_block_sizes(K: int) -> tuple[int, int]:
    """``(BLOCK_E, BLOCK_K)`` of the scatter tile for fan-out ``K``.

    ``BLOCK_K`` is the largest power of two in 128..16 whose padding of ``K`` wastes at most
    1/8 of the lanes (``K = 80`` -> 16, ``K = 1000`` -> 128), or the next power of two for
    ``K <= 16``; ``BLOCK_E`` fills the rest of a ``SCATTER_TILE``-lane tile with events.
    """
    if K <= 16:
        block_k = triton.next_power_of_2(max(K, 1))
    else:
        block_k = 16
        for candidate in (128, 64, 32):
            if triton.cdiv(K, candidate) * candidate * 8 <= K * 9:
                block_k = candidate
                break
    return max(1, SCATTER_TILE // block_k), block_k


def _gather_block_k(K: int) -> int:
    return min(64, triton.next_power_of_2(max(K, 1)))


def compact_events(flat_spikes: torch.Tensor, block: int = COMPACT_BLOCK):
    """Positions of the nonzero entries of a 1-D tensor, as a list and a device-side count.

    Parameters
    ----------
    flat_spikes : Tensor, shape ``(n,)``, contiguous
    block : int
        Entries per program (a power of two).

    Returns
    -------
    events : Tensor of int32 (int64 when ``n >= 2**31 - 1``), shape ``(n,)``
        The first ``count`` entries are the positions of the events, in no particular order;
        the rest is uninitialised.
    count : Tensor of the same dtype, shape ``(1,)``
        Number of events, on the device (never read by the host here).
    """
    n = flat_spikes.numel()
    index_dtype = _index_dtype(n)
    events = torch.empty(n, dtype=index_dtype, device=flat_spikes.device)
    count = torch.zeros(1, dtype=index_dtype, device=flat_spikes.device)
    if n:
        _compact_kernel[(triton.cdiv(n, block),)](flat_spikes, events, count, n, BLOCK=block)
    return events, count


def scatter_events(flat_spikes, events, count, indices, weights, out, n_pre: int, n_post: int,
                   programs: int | None = None, block_e: int | None = None,
                   block_k: int | None = None) -> torch.Tensor:
    """Add every listed event's weighted fan-out row into ``out`` (flattened ``(batch, n_post)``).

    ``out`` must be contiguous, float32 or float64, and is accumulated into (not cleared).
    ``programs`` fixes the grid (default: ``PROGRAMS_PER_SM`` per multiprocessor, never more than
    the tiles the largest possible event list needs); ``block_e``/``block_k`` override
    :func:`scatter_block_sizes`.
    """
    K = indices.shape[1]
    n = flat_spikes.numel()
    if n == 0 or K == 0 or out.numel() == 0:
        return out
    default_e, default_k = scatter_block_sizes(K)
    block_e = block_e or default_e
    block_k = block_k or default_k
    if programs is None:
        programs = min(_default_programs(flat_spikes.device), triton.cdiv(n, block_e))
    _scatter_kernel[(max(1, programs),)](
        flat_spikes, events, count, indices, weights, out, n_pre, n_post, K,
        HOMOGENEOUS=weights.ndim == 0, BLOCK_E=block_e, BLOCK_K=block_k,
    )
    return out


def _prepare(spikes: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor):
    # weights may be a CPU scalar next to CUDA spikes (torch allows 0-d CPU operands): the
    # kernel needs it on the device
    if weights.device != spikes.device:
        weights = weights.to(spikes.device)
    return spikes.contiguous(), indices.contiguous(), weights.contiguous()


def event_ell_matvec(spikes: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor,
                     n_post: int, **config) -> torch.Tensor:
    """The op's forward with the two kernels (same contract as ``torchbrain.ops``).

    ``config`` passes ``programs``/``block_e``/``block_k`` to :func:`scatter_events` and
    ``compact_block`` to :func:`compact_events` (tests use small values to exercise striding).
    """
    spikes, indices, weights = _prepare(spikes, indices, weights)
    n_pre, _ = indices.shape
    batch_shape = spikes.shape[:-1]
    flat = spikes.reshape(-1)
    batch = flat.numel() // n_pre if n_pre else 0
    acc = _acc_dtype(spikes.dtype)
    out = torch.zeros(batch * n_post, dtype=acc, device=spikes.device)
    if out.numel() and flat.numel() and indices.shape[1]:
        events, count = compact_events(flat, config.pop("compact_block", COMPACT_BLOCK))
        scatter_events(flat, events, count, indices, weights, out, n_pre, n_post, **config)
    return out.to(spikes.dtype).reshape(*batch_shape, n_post)


def event_ell_matvec_backward(grad_out: torch.Tensor, spikes: torch.Tensor,
                              indices: torch.Tensor, weights: torch.Tensor,
                              need_spikes: bool = True, need_weights: bool = True):
    """Gradients of the op to ``spikes`` and ``weights`` (``None`` where not asked for).

    Same values as the pure-torch formula in :mod:`torchbrain.ops.event_ell` (up to summation
    order), without its ``(batch, n_pre, K)`` intermediate; not differentiable itself.
    """
    spikes, indices, weights = _prepare(spikes, indices, weights)
    grad_out = grad_out.contiguous()  # e.g. the expanded gradient of a .sum()
    n_pre, K = indices.shape
    n_post = grad_out.shape[-1]
    batch = spikes.numel() // n_pre if n_pre else 0
    homogeneous = weights.ndim == 0
    acc = _acc_dtype(grad_out.dtype, spikes.dtype, weights.dtype)
    device = spikes.device
    grad_spikes = grad_weights = None
    block_k = _gather_block_k(K)
    n_row_blocks = triton.cdiv(n_pre, GATHER_BLOCK_I)

    row_sums = None  # weighted (per-synapse w) or unweighted (scalar w) row sums of grad_out
    if need_spikes or (need_weights and homogeneous):
        row_dtype = acc if homogeneous else grad_out.dtype
        row_sums = torch.zeros(spikes.shape, dtype=row_dtype, device=device)
        if row_sums.numel() and K and n_post:
            _grad_spikes_kernel[(batch * n_row_blocks,)](
                grad_out, indices, weights, row_sums, n_pre, n_post, K,
                HOMOGENEOUS=homogeneous, ACC=_tl_dtype(acc), BLOCK_I=GATHER_BLOCK_I,
                BLOCK_K=block_k,
            )
    if need_spikes:
        if homogeneous:
            grad_spikes = (row_sums * weights.to(acc)).to(grad_out.dtype)
        else:
            grad_spikes = row_sums
    if need_weights:
        if homogeneous:
            grad_weights = (row_sums * spikes.to(acc)).sum().to(weights.dtype)
        else:
            grad_weights = torch.zeros(indices.shape, dtype=weights.dtype, device=device)
            if grad_weights.numel() and batch and n_post:
                grid = (n_row_blocks * triton.cdiv(K, block_k),)
                _grad_weights_kernel[grid](
                    grad_out, spikes, indices, grad_weights, batch, n_pre, n_post, K,
                    ACC=_tl_dtype(acc), BLOCK_I=GATHER_BLOCK_I, BLOCK_K=block_k,
                )
    return grad_spikes, grad_weights
