r"""Event-driven matrix-vector product over a fixed fan-out (ELL) connectivity table.

``out[b, j] = sum_i s[b, i] * sum_{k : idx[i, k] = j} w[i, k]``

``idx`` is an ``(n_pre, K)`` table of target indices (one row per presynaptic neuron, ``K``
targets each, duplicates allowed and delivered once per entry); ``w`` is a scalar (homogeneous
weight) or an ``(n_pre, K)`` table. Only the rows of presynaptic neurons with a nonzero entry in
``s`` are touched, so the cost grows with ``#events x K``, not with the number of synapses.
``s`` is multiplied in (binary spikes give the classic event semantics; graded values such as
STP-scaled spikes are weighted, unlike the reference, which treats any nonzero float as 1).

One ``torch.library`` custom op. On CPU tensors its forward pass is a native C loop
(:mod:`torchbrain.ops.native`: plain C without torch headers, built once with the system compiler
in a fraction of a second and cached) that tests a block of 64 spikes at once and scatters only the
rows that spiked, in the order of the pure-torch body's ``index_add_`` (same sums, bit for bit).
Measured on the COBA benchmark it replaces the dozen dispatches of the pure-torch body (~20-40 us
per call, twice per step) by ~1 us of ``ctypes`` plus the loop. The pure-torch implementation below
is the reference (also for the GPU kernels) and the fallback when no C compiler is found or
``TORCHBRAIN_NATIVE=0``; ``register_fake`` lets ``torch.compile(fullgraph=True)`` trace through
it without a graph break despite the data-dependent number of events, and ``register_autograd``
gives gradients to the spikes and to the weights.

On CUDA tensors the op runs the Triton kernels of :mod:`torchbrain.kernels.event_ell` (spike
compaction into a device-side event list, then a fixed grid of programs scattering each event's
fan-out row with atomic adds; no host synchronisation, so it can be captured in a CUDA graph),
registered as the op's CUDA kernel; it falls back to the pure-torch path when Triton is missing,
when ``TORCHBRAIN_DISABLE_KERNELS=1``, or for non-float spikes. First-order gradients on CUDA use
the Triton gather kernels through a second op, ``torchbrain::event_ell_matvec_backward``; when a
graph of the gradient is requested (``create_graph=True``), and always on the CPU, the
differentiable pure-torch formula is used.
"""

from __future__ import annotations

import ctypes
import math

import torch

from ._dispatch import register_cuda
from .native import NativeLibrary, contiguous_args

__all__ = ["event_ell_matvec", "event_ell_matvec_reference"]


def event_ell_matvec_reference(spikes, indices, weights, n_post: int) -> torch.Tensor:
    """Dense reference: builds the full weight matrix (tests only; O(n_pre x n_post))."""
    n_pre, K = indices.shape
    dense = torch.zeros(n_pre, n_post, dtype=spikes.dtype, device=spikes.device)
    w = weights.expand(n_pre, K) if weights.ndim == 0 else weights
    dense.index_put_((torch.arange(n_pre, device=spikes.device).repeat_interleave(K),
                      indices.reshape(-1).long()), w.reshape(-1).to(spikes.dtype), accumulate=True)
    return spikes @ dense


def _kernel_supports(spikes: torch.Tensor, indices: torch.Tensor, *_) -> bool:
    return spikes.is_floating_point() and indices.dtype in (torch.int32, torch.int64)


def _event_ell_matvec_torch(spikes, indices, weights, n_post):
    """The pure-torch implementation (CPU path; fallback on CUDA)."""
    n_pre = indices.shape[0]
    batch_shape = spikes.shape[:-1]
    flat_spikes = spikes.reshape(-1)
    batch = math.prod(batch_shape)  # also when n_pre = 0 (an empty population)
    out = torch.zeros(batch * n_post, dtype=spikes.dtype, device=spikes.device)
    # Spike compaction: the positions of the events in the flattened (batch, n_pre) input.
    events = torch.nonzero(flat_spikes).squeeze(1)
    if events.numel():
        pre = events if batch == 1 else events % n_pre
        targets = indices.index_select(0, pre)
        if batch > 1:
            targets = targets + (events // n_pre * n_post).unsqueeze(1).to(targets.dtype)
        amount = flat_spikes.index_select(0, events).unsqueeze(1)
        if weights.ndim == 0:
            values = (amount * weights.to(spikes.dtype)).expand(targets.shape)
        else:
            values = amount * weights.index_select(0, pre).to(spikes.dtype)
        out.index_add_(0, targets.reshape(-1), values.reshape(-1))
    return out.reshape(*batch_shape, n_post)


# One scatter loop per (spike dtype, index dtype). Events are visited in the order of the
# flattened (batch, n_pre) input and each row's targets in table order: the order in which the
# pure-torch body's index_add_ adds them, so both give the same sums bit for bit. A target out of
# range stops the loop and is reported (index_add_ raises there too).
_NATIVE_SOURCE = r"""
#include <stdint.h>
#include <string.h>

/* Spikes are sparse: a block of them is first tested at once (a loop the compiler vectorises)
   and only a block with an event is walked one by one. */
#define BLOCK 64

#define EVENT_ELL(NAME, S, I)                                                               \
int64_t NAME(const S *spikes, int64_t batch, int64_t n_pre, const I *indices, int64_t k,     \
             const S *weights, int per_synapse, int64_t n_post, S *out) {                   \
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
                const I *row = indices + i * k;                                             \
                for (int64_t j = 0; j < k; ++j)                                             \
                    if ((uint64_t)row[j] >= (uint64_t)n_post) return 1 + i * k + j;         \
                if (per_synapse) {                                                          \
                    const S *w = weights + i * k;                                           \
                    for (int64_t j = 0; j < k; ++j) o[row[j]] += s[i] * w[j];               \
                } else {                                                                    \
                    const S v = s[i] * weights[0];                                          \
                    for (int64_t j = 0; j < k; ++j) o[row[j]] += v;                         \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    return 0;                                                                               \
}

EVENT_ELL(event_ell_f32_i32, float, int32_t)
EVENT_ELL(event_ell_f32_i64, float, int64_t)
EVENT_ELL(event_ell_f64_i32, double, int32_t)
EVENT_ELL(event_ell_f64_i64, double, int64_t)
"""

_NATIVE_DTYPES = {torch.float32: "f32", torch.float64: "f64", torch.int32: "i32",
                  torch.int64: "i64"}
_NATIVE_ARGS = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_void_p]
_NATIVE = NativeLibrary("event_ell", _NATIVE_SOURCE, {
    f"event_ell_{s}_{i}": (ctypes.c_int64, _NATIVE_ARGS) for s in ("f32", "f64")
    for i in ("i32", "i64")
})


def _event_ell_matvec_native(spikes, indices, weights, n_post):
    """The CPU path: the C scatter loop above, or the pure-torch body where it does not apply."""
    lib = _NATIVE.load()
    spike_code = _NATIVE_DTYPES.get(spikes.dtype)
    index_code = _NATIVE_DTYPES.get(indices.dtype)
    if (lib is None or spike_code not in ("f32", "f64") or index_code not in ("i32", "i64")
            or indices.ndim != 2 or weights.ndim not in (0, 2)):
        return _event_ell_matvec_torch(spikes, indices, weights, n_post)
    n_pre, k = indices.shape
    if spikes.ndim == 0 or spikes.shape[-1] != n_pre or n_post < 0 or (
            weights.ndim == 2 and weights.shape != indices.shape):
        raise ValueError(
            f"event_ell_matvec: expected spikes (..., n_pre={n_pre}), weights () or {n_pre, k} "
            f"and n_post >= 0 for indices of shape {tuple(indices.shape)}; got spikes "
            f"{tuple(spikes.shape)}, weights {tuple(weights.shape)}, n_post {n_post}")
    spikes, indices, weights = contiguous_args(spikes, indices, weights, dtype=spikes.dtype)
    out = spikes.new_empty((*spikes.shape[:-1], n_post))
    batch = spikes.numel() // n_pre if n_pre else 0
    if batch == 0 or n_post == 0:  # nothing to deliver (or nowhere to)
        return out.zero_()
    bad = getattr(lib, f"event_ell_{spike_code}_{index_code}")(
        spikes.data_ptr(), batch, n_pre, indices.data_ptr(), k, weights.data_ptr(),
        weights.ndim, n_post, out.data_ptr())
    if bad:
        row, col = divmod(bad - 1, k)
        raise IndexError(f"event_ell_matvec: indices[{row}, {col}] = "
                         f"{int(indices[row, col])} is out of range for n_post = {n_post}")
    return out


@torch.library.custom_op("torchbrain::event_ell_matvec", mutates_args=())
def _event_ell_matvec(
    spikes: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor, n_post: int
) -> torch.Tensor:
    return _event_ell_matvec_torch(spikes, indices, weights, n_post)


# The CPU kernel is registered on the dispatcher's CPU key directly rather than through
# ``register_kernel("cpu")``: the custom-op wrapper's per-call checks cost ~3 us of the ~7 us an
# op call took here, twice per COBA step.
_CPU_IMPL = torch.library.Library("torchbrain", "IMPL")
_CPU_IMPL.impl("event_ell_matvec", _event_ell_matvec_native, "CPU")


_event_ell_matvec_cuda = register_cuda(
    _event_ell_matvec, "event_ell", "event_ell_matvec", _event_ell_matvec_torch, _kernel_supports)


@_event_ell_matvec.register_fake
def _(spikes, indices, weights, n_post):
    return spikes.new_empty((*spikes.shape[:-1], n_post))


def _setup_context(ctx, inputs, output):
    spikes, indices, weights, _ = inputs
    ctx.save_for_backward(spikes, indices, weights)


def _backward_torch(grad_out, spikes, indices, weights, need_spikes, need_weights):
    """Differentiable pure-torch gradients (``None`` where not needed)."""
    grad_spikes = grad_weights = None
    # Gather the output gradient at every synapse's target: (..., n_pre, K).
    gathered = grad_out[..., indices.long()]
    if need_spikes:
        w = weights.to(grad_out.dtype)
        grad_spikes = (gathered * w).sum(-1) if weights.ndim else gathered.sum(-1) * w
    if need_weights:
        per_synapse = gathered * spikes.unsqueeze(-1)
        if weights.ndim == 0:
            grad_weights = per_synapse.sum().to(weights.dtype)
        else:
            grad_weights = per_synapse.reshape(-1, *indices.shape).sum(0).to(weights.dtype)
    return grad_spikes, grad_weights


@torch.library.custom_op("torchbrain::event_ell_matvec_backward", mutates_args=())
def _event_ell_matvec_backward(
    grad_out: torch.Tensor, spikes: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor,
    need_spikes: bool, need_weights: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients to ``spikes`` and ``weights``; an empty tensor stands for one not asked for."""
    return _event_ell_matvec_backward_torch(grad_out, spikes, indices, weights, need_spikes,
                                            need_weights)


def _event_ell_matvec_backward_torch(grad_out, spikes, indices, weights, need_spikes,
                                     need_weights):
    grads = _backward_torch(grad_out, spikes, indices, weights, need_spikes, need_weights)
    return _backward_outputs(*grads, spikes, weights)


def _backward_outputs(grad_spikes, grad_weights, spikes, weights):
    # custom ops cannot return None (nor an input): empty placeholders instead
    if grad_spikes is None:
        grad_spikes = spikes.new_empty(0)
    if grad_weights is None:
        grad_weights = weights.new_empty(0)
    return grad_spikes, grad_weights


def _launch_backward(K, grad_out, spikes, indices, weights, need_spikes, need_weights):
    grads = K.event_ell_matvec_backward(grad_out, spikes, indices, weights, need_spikes,
                                        need_weights)
    return _backward_outputs(*grads, spikes, weights)


_event_ell_matvec_backward_cuda = register_cuda(
    _event_ell_matvec_backward, "event_ell", _launch_backward, _event_ell_matvec_backward_torch,
    lambda grad_out, spikes, indices, *_: _kernel_supports(spikes, indices))


@_event_ell_matvec_backward.register_fake
def _(grad_out, spikes, indices, weights, need_spikes, need_weights):
    grad_spikes = spikes.new_empty(spikes.shape if need_spikes else (0,))
    grad_weights = weights.new_empty(weights.shape if need_weights else (0,))
    return grad_spikes, grad_weights


def _backward(ctx, grad_out):
    spikes, indices, weights = ctx.saved_tensors
    need_spikes, need_weights = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
    if grad_out.device.type == "cuda" and not torch.is_grad_enabled():
        # first-order gradient on CUDA: the fused gather kernels (not differentiable themselves)
        grad_spikes, grad_weights = _event_ell_matvec_backward(
            grad_out, spikes, indices, weights, need_spikes, need_weights)
        return (grad_spikes if need_spikes else None, None,
                grad_weights if need_weights else None, None)
    grad_spikes, grad_weights = _backward_torch(grad_out, spikes, indices, weights, need_spikes,
                                                need_weights)
    return grad_spikes, None, grad_weights, None


_event_ell_matvec.register_autograd(_backward, setup_context=_setup_context)


def event_ell_matvec(spikes: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor,
                     n_post: int) -> torch.Tensor:
    """Event-driven ``spikes @ W`` for a fixed fan-out table (see the module docstring).

    Parameters
    ----------
    spikes : Tensor, shape ``(..., n_pre)``
        Presynaptic spikes (0/1) or graded events.
    indices : Tensor of int32/int64, shape ``(n_pre, K)``
        Target neuron of each synapse.
    weights : Tensor, shape ``()`` or ``(n_pre, K)``
        Homogeneous or per-synapse weights.
    n_post : int
        Number of postsynaptic neurons.

    Returns
    -------
    Tensor, shape ``(..., n_post)``
    """
    return _event_ell_matvec(spikes, indices, weights, n_post)
