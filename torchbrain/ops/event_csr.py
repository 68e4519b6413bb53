r"""Event-driven products over explicit connectivity: CSR (sparse) and dense weight matrices.

CSR
---
``out[b, j] = sum_i s[b, i] * sum_{k in [indptr[i], indptr[i+1]) : indices[k] = j} w[k]``

Row ``i`` of the compressed sparse row (CSR) matrix holds the synapses of presynaptic neuron ``i``:
their targets ``indices[indptr[i]:indptr[i+1]]`` and weights ``w`` at the same positions (or one
scalar weight for all, "homogeneous"). Rows may have any length, including zero. Only the rows of
presynaptic neurons with a nonzero entry in ``s`` are touched: the active rows are found with
``nonzero``, their synapse ranges are expanded into one flat list of synapse positions
(``repeat_interleave`` of the row lengths) and delivered with one ``index_add_``; the cost grows
with ``#events x fan-out``, not with the number of synapses. ``s`` is multiplied in (binary spikes
give the classic event semantics; graded values are weighted).

Dense
-----
``out[b, :] = sum_{i : s[b, i] != 0} e[b, i] * W[i, :]`` with ``e = s`` or, for
``float_as_event=True``, ``e = (s != 0)`` (the reference's ``EventLinear`` semantics, where any
nonzero float counts as one event). The active rows of ``W`` are gathered with ``index_select``;
the cost grows with ``#events x n_post``.

Both are ``torch.library`` custom ops: the pure-torch implementations below are the references (for
the native CPU loop of the CSR op and for the GPU kernels) and the fallback; ``register_fake`` lets
``torch.compile(fullgraph=True)`` trace through them despite the data-dependent number of events,
and ``register_autograd`` gives gradients to the inputs and to the weights. The gradient with
respect to the input is the one of the weighted product (``grad_out @ W^T``) in both dense modes:
for ``float_as_event=True`` the forward pass is piecewise constant in ``s``, and passing the
gradient straight through is what surrogate-gradient training of the spikes needs (as in the
reference).

What runs where (CSR):

- **CPU tensors, forward**: a native C loop (:mod:`torchbrain.ops.native`: plain C built once
  with the system compiler and cached), the same additions in the same order as the pure-torch
  body, which runs instead when no C compiler is found or ``TORCHBRAIN_NATIVE=0``.
- **CPU tensors, backward**: the pure-torch formulas.
- **CUDA tensors, forward**: the Triton kernels of :mod:`torchbrain.kernels.event_csr`, registered
  as the op's CUDA kernel: spike compaction into a device-side event list, then a fixed grid of
  programs scattering each event's row with atomic adds. No host synchronisation, so the op can
  be captured in a CUDA graph; under ``torch.compile`` it is an opaque call (shapes from
  ``register_fake``).
- **CUDA tensors, first-order backward**: a second op, ``torchbrain::event_csr_matvec_backward``,
  whose CUDA kernel runs two Triton gathers (gradient to the spikes, to per-synapse weights).
  With ``create_graph=True`` the differentiable pure-torch formula is used instead.
- **Fallback to pure torch on CUDA**: Triton missing, ``TORCHBRAIN_DISABLE_KERNELS=1`` (read on
  every call), non-float spikes, ``indptr``/``indices`` not int32/int64.

The dense op has no kernel: it runs the pure-torch path on every device.
"""

from __future__ import annotations

import ctypes
import math

import torch

from ._dispatch import register_cuda
from .native import NativeLibrary, contiguous_args

__all__ = [
    "event_csr_matvec",
    "event_csr_matvec_reference",
    "csr_to_dense",
    "event_dense_matvec",
    "event_dense_matvec_reference",
]


# ----------------------------------------------------------------------------------- CSR
def csr_to_dense(indptr, indices, weights, n_post: int, dtype=None) -> torch.Tensor:
    """The ``(n_pre, n_post)`` dense matrix of a CSR table (duplicates are summed)."""
    n_pre = indptr.shape[0] - 1
    nnz = indices.shape[0]
    dtype = dtype or (weights.dtype if weights.is_floating_point() else torch.get_default_dtype())
    rows = torch.repeat_interleave(
        torch.arange(n_pre, device=indices.device), (indptr[1:] - indptr[:-1]).long(),
        output_size=nnz,
    )
    dense = torch.zeros(n_pre, n_post, dtype=dtype, device=indices.device)
    w = weights.expand(nnz) if weights.ndim == 0 else weights
    dense.index_put_((rows, indices.long()), w.to(dtype), accumulate=True)
    return dense


def event_csr_matvec_reference(spikes, indptr, indices, weights, n_post: int) -> torch.Tensor:
    """Dense reference: builds the full weight matrix (tests only; O(n_pre x n_post))."""
    return spikes @ csr_to_dense(indptr, indices, weights, n_post, dtype=spikes.dtype)


def _kernel_supports(spikes: torch.Tensor, indptr: torch.Tensor, indices: torch.Tensor,
                     *_) -> bool:
    index_dtypes = (torch.int32, torch.int64)
    return (spikes.is_floating_point() and indptr.dtype in index_dtypes
            and indices.dtype in index_dtypes)


def _event_csr_matvec_torch(spikes, indptr, indices, weights, n_post):
    """The pure-torch implementation (CPU path; fallback on CUDA)."""
    n_pre = indptr.shape[0] - 1
    batch_shape = spikes.shape[:-1]
    s = spikes.reshape(math.prod(batch_shape), n_pre)  # also when n_pre = 0
    batch = s.shape[0]
    device = spikes.device
    out = torch.zeros(batch * n_post, dtype=spikes.dtype, device=device)
    b_idx, pre_idx = torch.nonzero(s, as_tuple=True)
    if pre_idx.numel():
        starts = indptr.index_select(0, pre_idx).long()
        counts = indptr.index_select(0, pre_idx + 1).long() - starts
        total = int(counts.sum())
        if total:
            # one entry per delivered synapse: which event it belongs to, and its CSR position
            event = torch.repeat_interleave(
                torch.arange(pre_idx.numel(), device=device), counts, output_size=total
            )
            first = torch.cumsum(counts, 0) - counts
            synapse = (starts - first).index_select(0, event) + torch.arange(total, device=device)
            targets = indices.index_select(0, synapse).long()
            if batch > 1:
                targets = targets + (b_idx * n_post).index_select(0, event)
            amount = s[b_idx, pre_idx].index_select(0, event)
            if weights.ndim == 0:
                values = amount * weights.to(spikes.dtype)
            else:
                values = amount * weights.index_select(0, synapse).to(spikes.dtype)
            out.index_add_(0, targets, values)
    return out.reshape(*batch_shape, n_post)


# The native CPU body: one loop per (spike, indptr, indices) dtype. Events in the order of the
# flattened (batch, n_pre) input, each row's synapses in CSR order: the order of the torch body's
# index_add_, so the sums are the same bit for bit. A malformed row range or a target out of
# range stops the loop and is reported instead of being read or written.
_NATIVE_SOURCE = r"""
#include <stdint.h>
#include <string.h>

/* a block of spikes is tested at once (vectorised); only a block with an event is walked */
#define BLOCK 64

#define EVENT_CSR(NAME, S, P, I)                                                            \
int64_t NAME(const S *spikes, int64_t batch, int64_t n_pre, const P *indptr,                \
             const I *indices, int64_t nnz, const S *weights, int per_synapse,              \
             int64_t n_post, S *out) {                                                      \
    memset(out, 0, (size_t)(batch * n_post) * sizeof(S));                                   \
    for (int64_t b = 0; b < batch; ++b) {                                                   \
        const S *s = spikes + b * n_pre;                                                    \
        S *o = out + b * n_post;                                                            \
        for (int64_t start = 0; start < n_pre; start += BLOCK) {                            \
            const int64_t stop = start + BLOCK < n_pre ? start + BLOCK : n_pre;             \
            int any = 0;                                                                    \
            for (int64_t i = start; i < stop; ++i) any |= s[i] != 0;                        \
            if (!any) continue;                                                             \
            for (int64_t i = start; i < stop; ++i) {                                        \
                if (s[i] == 0) continue;                                                    \
                const int64_t lo = (int64_t)indptr[i], hi = (int64_t)indptr[i + 1];         \
                if (lo < 0 || hi < lo || hi > nnz) return -1 - i;                           \
                for (int64_t j = lo; j < hi; ++j)                                           \
                    if ((uint64_t)indices[j] >= (uint64_t)n_post) return 1 + j;             \
                if (per_synapse) {                                                          \
                    for (int64_t j = lo; j < hi; ++j) o[indices[j]] += s[i] * weights[j];   \
                } else {                                                                    \
                    const S v = s[i] * weights[0];                                          \
                    for (int64_t j = lo; j < hi; ++j) o[indices[j]] += v;                   \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    return 0;                                                                               \
}

EVENT_CSR(event_csr_f32_i32_i32, float, int32_t, int32_t)
EVENT_CSR(event_csr_f32_i32_i64, float, int32_t, int64_t)
EVENT_CSR(event_csr_f32_i64_i32, float, int64_t, int32_t)
EVENT_CSR(event_csr_f32_i64_i64, float, int64_t, int64_t)
EVENT_CSR(event_csr_f64_i32_i32, double, int32_t, int32_t)
EVENT_CSR(event_csr_f64_i32_i64, double, int32_t, int64_t)
EVENT_CSR(event_csr_f64_i64_i32, double, int64_t, int32_t)
EVENT_CSR(event_csr_f64_i64_i64, double, int64_t, int64_t)
"""

_NATIVE_DTYPES = {torch.float32: "f32", torch.float64: "f64", torch.int32: "i32",
                  torch.int64: "i64"}
_NATIVE_ARGS = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                ctypes.c_int64, ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_void_p]
_NATIVE = NativeLibrary("event_csr", _NATIVE_SOURCE, {
    f"event_csr_{s}_{p}_{i}": (ctypes.c_int64, _NATIVE_ARGS) for s in ("f32", "f64")
    for p in ("i32", "i64") for i in ("i32", "i64")
})


def _event_csr_matvec_native(spikes, indptr, indices, weights, n_post):
    """The CPU path: the C loop above, or the pure-torch body where it does not apply."""
    lib = _NATIVE.load()
    codes = [_NATIVE_DTYPES.get(t.dtype) for t in (spikes, indptr, indices)]
    if (lib is None or codes[0] not in ("f32", "f64") or codes[1] not in ("i32", "i64")
            or codes[2] not in ("i32", "i64") or indptr.ndim != 1 or indices.ndim != 1
            or weights.ndim not in (0, 1)):
        return _event_csr_matvec_torch(spikes, indptr, indices, weights, n_post)
    n_pre, nnz = indptr.shape[0] - 1, indices.shape[0]
    if n_pre < 0 or spikes.ndim == 0 or spikes.shape[-1] != n_pre or n_post < 0 or (
            weights.ndim == 1 and weights.shape[0] != nnz):
        raise ValueError(
            f"event_csr_matvec: expected spikes (..., n_pre={n_pre}), weights () or ({nnz},) "
            f"and n_post >= 0 for indptr of shape {tuple(indptr.shape)} and indices of shape "
            f"{tuple(indices.shape)}; got spikes {tuple(spikes.shape)}, weights "
            f"{tuple(weights.shape)}, n_post {n_post}")
    spikes, indptr, indices, weights = contiguous_args(spikes, indptr, indices, weights,
                                                       dtype=spikes.dtype)
    out = spikes.new_empty((*spikes.shape[:-1], n_post))
    batch = spikes.numel() // n_pre if n_pre else 0
    if batch == 0 or n_post == 0:  # nothing to deliver (or nowhere to)
        return out.zero_()
    bad = getattr(lib, "event_csr_{}_{}_{}".format(*codes))(
        spikes.data_ptr(), batch, n_pre, indptr.data_ptr(), indices.data_ptr(), nnz,
        weights.data_ptr(), weights.ndim, n_post, out.data_ptr())
    if bad > 0:
        raise IndexError(f"event_csr_matvec: indices[{bad - 1}] = {int(indices[bad - 1])} is "
                         f"out of range for n_post = {n_post}")
    if bad < 0:
        row = -1 - bad
        raise ValueError(f"event_csr_matvec: indptr[{row}:{row + 2}] = "
                         f"{indptr[row:row + 2].tolist()} is not a row range within "
                         f"[0, nnz={nnz}]")
    return out


@torch.library.custom_op("torchbrain::event_csr_matvec", mutates_args=())
def _event_csr_matvec(
    spikes: torch.Tensor, indptr: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor,
    n_post: int,
) -> torch.Tensor:
    return _event_csr_matvec_torch(spikes, indptr, indices, weights, n_post)


# registered on the CPU key directly (see event_ell.py: the custom-op wrapper's per-call checks
# cost ~3 us of ~7 us)
_CPU_IMPL = torch.library.Library("torchbrain", "IMPL")
_CPU_IMPL.impl("event_csr_matvec", _event_csr_matvec_native, "CPU")


_event_csr_matvec_cuda = register_cuda(
    _event_csr_matvec, "event_csr", "event_csr_matvec", _event_csr_matvec_torch, _kernel_supports)


@_event_csr_matvec.register_fake
def _(spikes, indptr, indices, weights, n_post):
    return spikes.new_empty((*spikes.shape[:-1], n_post))


def _csr_setup_context(ctx, inputs, output):
    spikes, indptr, indices, weights, _ = inputs
    ctx.save_for_backward(spikes, indptr, indices, weights)


def _csr_backward_torch(grad_out, spikes, indptr, indices, weights, need_spikes, need_weights):
    """Differentiable pure-torch gradients (``None`` where not needed)."""
    n_pre = indptr.shape[0] - 1
    nnz = indices.shape[0]
    grad_spikes = grad_weights = None
    # the presynaptic row of every synapse, and the output gradient at its target: (..., nnz)
    rows = torch.repeat_interleave(
        torch.arange(n_pre, device=indices.device), (indptr[1:] - indptr[:-1]).long(),
        output_size=nnz,
    )
    gathered = grad_out[..., indices.long()]
    if need_spikes:
        w = weights.to(grad_out.dtype)
        per_synapse = gathered if weights.ndim == 0 else gathered * w
        grad_spikes = grad_out.new_zeros((*grad_out.shape[:-1], n_pre)).index_add_(
            -1, rows, per_synapse
        )
        if weights.ndim == 0:
            grad_spikes = grad_spikes * w
        grad_spikes = grad_spikes.to(spikes.dtype)
    if need_weights:
        per_synapse = gathered * spikes.to(grad_out.dtype)[..., rows]
        if weights.ndim == 0:
            grad_weights = per_synapse.sum().to(weights.dtype)
        else:
            grad_weights = per_synapse.reshape(-1, nnz).sum(0).to(weights.dtype)
    return grad_spikes, grad_weights


def _csr_backward_outputs(grad_spikes, grad_weights, spikes, weights):
    # custom ops cannot return None (nor an input): empty placeholders instead
    if grad_spikes is None:
        grad_spikes = spikes.new_empty(0)
    if grad_weights is None:
        grad_weights = weights.new_empty(0)
    return grad_spikes, grad_weights


@torch.library.custom_op("torchbrain::event_csr_matvec_backward", mutates_args=())
def _event_csr_matvec_backward(
    grad_out: torch.Tensor, spikes: torch.Tensor, indptr: torch.Tensor, indices: torch.Tensor,
    weights: torch.Tensor, need_spikes: bool, need_weights: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients to ``spikes`` and ``weights``; an empty tensor stands for one not asked for."""
    return _event_csr_matvec_backward_torch(grad_out, spikes, indptr, indices, weights,
                                            need_spikes, need_weights)


def _event_csr_matvec_backward_torch(grad_out, spikes, indptr, indices, weights, need_spikes,
                                     need_weights):
    grads = _csr_backward_torch(grad_out, spikes, indptr, indices, weights, need_spikes,
                                need_weights)
    return _csr_backward_outputs(*grads, spikes, weights)


def _launch_backward(K, grad_out, spikes, indptr, indices, weights, need_spikes, need_weights):
    grads = K.event_csr_matvec_backward(grad_out, spikes, indptr, indices, weights, need_spikes,
                                        need_weights)
    return _csr_backward_outputs(*grads, spikes, weights)


_event_csr_matvec_backward_cuda = register_cuda(
    _event_csr_matvec_backward, "event_csr", _launch_backward, _event_csr_matvec_backward_torch,
    lambda grad_out, spikes, indptr, indices, *_: _kernel_supports(spikes, indptr, indices))


@_event_csr_matvec_backward.register_fake
def _(grad_out, spikes, indptr, indices, weights, need_spikes, need_weights):
    grad_spikes = spikes.new_empty(spikes.shape if need_spikes else (0,))
    grad_weights = weights.new_empty(weights.shape if need_weights else (0,))
    return grad_spikes, grad_weights


def _csr_backward(ctx, grad_out):
    spikes, indptr, indices, weights = ctx.saved_tensors
    need_spikes, need_weights = ctx.needs_input_grad[0], ctx.needs_input_grad[3]
    if grad_out.device.type == "cuda" and not torch.is_grad_enabled():
        # first-order gradient on CUDA: the Triton gather kernels (not differentiable themselves)
        grad_spikes, grad_weights = _event_csr_matvec_backward(
            grad_out, spikes, indptr, indices, weights, need_spikes, need_weights)
        return (grad_spikes if need_spikes else None, None, None,
                grad_weights if need_weights else None, None)
    grad_spikes, grad_weights = _csr_backward_torch(grad_out, spikes, indptr, indices, weights,
                                                    need_spikes, need_weights)
    return grad_spikes, None, None, grad_weights, None


_event_csr_matvec.register_autograd(_csr_backward, setup_context=_csr_setup_context)


def event_csr_matvec(spikes: torch.Tensor, indptr: torch.Tensor, indices: torch.Tensor,
                     weights: torch.Tensor, n_post: int) -> torch.Tensor:
    """Event-driven ``spikes @ W`` for a CSR weight matrix (see the module docstring).

    Parameters
    ----------
    spikes : Tensor, shape ``(..., n_pre)``
        Presynaptic spikes (0/1) or graded values (multiplied in).
    indptr : Tensor of int32/int64, shape ``(n_pre + 1,)``
        Row pointers: the synapses of presynaptic neuron ``i`` are ``indptr[i]:indptr[i+1]``.
    indices : Tensor of int32/int64, shape ``(nnz,)``
        Target neuron of each synapse, in ``[0, n_post)``.
    weights : Tensor, shape ``()`` or ``(nnz,)``
        Homogeneous or per-synapse weights.
    n_post : int
        Number of postsynaptic neurons.

    Returns
    -------
    Tensor, shape ``(..., n_post)``, of the dtype of ``spikes``.
    """
    if spikes.shape[-1] != indptr.shape[0] - 1:
        raise ValueError(
            f"event_csr_matvec: spikes have {spikes.shape[-1]} presynaptic entries, the table has "
            f"{indptr.shape[0] - 1} rows (indptr has {indptr.shape[0]} entries)"
        )
    return _event_csr_matvec(spikes, indptr, indices, weights, n_post)


# --------------------------------------------------------------------------------- dense
def event_dense_matvec_reference(spikes, weight, float_as_event: bool = True) -> torch.Tensor:
    """Dense reference: ``e @ W`` with ``e = (spikes != 0)`` or ``spikes``."""
    events = (spikes != 0).to(spikes.dtype) if float_as_event else spikes
    return events @ weight.to(spikes.dtype)


@torch.library.custom_op("torchbrain::event_dense_matvec", mutates_args=())
def _event_dense_matvec(
    spikes: torch.Tensor, weight: torch.Tensor, float_as_event: bool
) -> torch.Tensor:
    n_pre, n_post = weight.shape
    batch_shape = spikes.shape[:-1]
    s = spikes.reshape(-1, n_pre)
    out = torch.zeros(s.shape[0], n_post, dtype=spikes.dtype, device=spikes.device)
    b_idx, pre_idx = torch.nonzero(s, as_tuple=True)
    if pre_idx.numel():
        rows = weight.index_select(0, pre_idx).to(spikes.dtype)
        if not float_as_event:
            rows = rows * s[b_idx, pre_idx].unsqueeze(1)
        out.index_add_(0, b_idx, rows)
    return out.reshape(*batch_shape, n_post)


@_event_dense_matvec.register_fake
def _(spikes, weight, float_as_event):
    return spikes.new_empty((*spikes.shape[:-1], weight.shape[1]))


def _dense_setup_context(ctx, inputs, output):
    spikes, weight, float_as_event = inputs
    ctx.float_as_event = float_as_event
    ctx.save_for_backward(spikes, weight)


def _dense_backward(ctx, grad_out):
    spikes, weight = ctx.saved_tensors
    grad_spikes = grad_weight = None
    if ctx.needs_input_grad[0]:
        grad_spikes = (grad_out @ weight.to(grad_out.dtype).T).to(spikes.dtype)
    if ctx.needs_input_grad[1]:
        events = (spikes != 0).to(grad_out.dtype) if ctx.float_as_event else spikes
        n_pre, n_post = weight.shape
        grad_weight = (events.reshape(-1, n_pre).T.to(grad_out.dtype)
                       @ grad_out.reshape(-1, n_post)).to(weight.dtype)
    return grad_spikes, grad_weight, None


_event_dense_matvec.register_autograd(_dense_backward, setup_context=_dense_setup_context)


def event_dense_matvec(spikes: torch.Tensor, weight: torch.Tensor,
                       float_as_event: bool = True) -> torch.Tensor:
    """Event-driven ``e @ W`` for a dense ``(n_pre, n_post)`` weight matrix.

    Parameters
    ----------
    spikes : Tensor, shape ``(..., n_pre)``
        Presynaptic spikes or graded values.
    weight : Tensor, shape ``(n_pre, n_post)``
        Dense weight matrix.
    float_as_event : bool, default True
        Count every nonzero entry of ``spikes`` as one event (``e = spikes != 0``); ``False``
        weights each active row by its value (``e = spikes``).

    Returns
    -------
    Tensor, shape ``(..., n_post)``, of the dtype of ``spikes``.
    """
    if weight.ndim != 2 or spikes.shape[-1] != weight.shape[0]:
        raise ValueError(
            f"event_dense_matvec: spikes have {spikes.shape[-1]} presynaptic entries, the weight "
            f"must have shape ({spikes.shape[-1]}, n_post), got {tuple(weight.shape)}"
        )
    return _event_dense_matvec(spikes, weight, bool(float_as_event))
