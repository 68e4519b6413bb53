r"""Event-driven CSR delivery with one delay per synapse, into a ring buffer of future input.

For every nonzero input ``s[b, i]`` and every synapse ``k`` of row ``i``, whose code is
``codes[k] = d * n_post + j`` (delay ``d`` in steps, target ``j``), ``s[b, i] * weights[k]`` is
added to ``ring[(ptr + d) mod n_slots, b, j]``; the slot ``ptr`` is then returned and cleared.

One ``torch.library`` custom op that mutates ``ring``. Its pure-torch body serves CPU and CUDA
tensors alike (no Triton kernel yet); ``register_fake`` lets ``torch.compile(fullgraph=True)``
trace through it. No autograd formula: the delayed table is for simulation.
"""

from __future__ import annotations

import torch

__all__ = ["delayed_csr_deliver"]


def _deposit_addresses(spikes, indptr, codes, weights, ptr, n_post: int, n_slots: int):
    """Flat ring-buffer addresses and values of the synapses of the active inputs."""
    n_pre = indptr.shape[0] - 1
    s = spikes.reshape(-1, n_pre)
    batch = s.shape[0]
    device = spikes.device
    b_idx, pre_idx = torch.nonzero(s, as_tuple=True)
    if not pre_idx.numel():
        return None
    starts = indptr.index_select(0, pre_idx).long()
    counts = indptr.index_select(0, pre_idx + 1).long() - starts
    total = int(counts.sum())
    if not total:
        return None
    # one entry per delivered synapse: the event it belongs to and its position in the table
    event = torch.repeat_interleave(torch.arange(pre_idx.numel(), device=device), counts,
                                    output_size=total)
    first = torch.cumsum(counts, 0) - counts
    synapse = (starts - first).index_select(0, event) + torch.arange(total, device=device)
    code = codes.index_select(0, synapse).long()
    delay = torch.div(code, n_post, rounding_mode="floor")
    target = code - delay * n_post
    slot = torch.remainder(ptr.reshape(()).long() + delay, n_slots)
    addr = slot * (batch * n_post) + target
    if batch > 1:
        addr = addr + (b_idx * n_post).index_select(0, event)
    amount = s[b_idx, pre_idx].index_select(0, event)
    values = amount * weights.index_select(0, synapse).to(spikes.dtype)
    return addr, values


@torch.library.custom_op("torchbrain::delayed_csr_deliver", mutates_args=("ring",))
def _delayed_csr_deliver(
    ring: torch.Tensor, spikes: torch.Tensor, indptr: torch.Tensor, codes: torch.Tensor,
    weights: torch.Tensor, ptr: torch.Tensor,
) -> torch.Tensor:
    n_slots, n_post = ring.shape[0], ring.shape[-1]
    deposit = _deposit_addresses(spikes.to(ring.dtype), indptr, codes, weights, ptr, n_post,
                                 n_slots)
    if deposit is not None:
        ring.view(-1).index_add_(0, *deposit)
    slot = ptr.reshape(1).long()
    out = ring.index_select(0, slot).squeeze(0)
    ring.index_fill_(0, slot, 0.0)
    return out


@_delayed_csr_deliver.register_fake
def _(ring, spikes, indptr, codes, weights, ptr):
    return ring.new_empty(ring.shape[1:])


def delayed_csr_deliver(ring: torch.Tensor, spikes: torch.Tensor, indptr: torch.Tensor,
                        codes: torch.Tensor, weights: torch.Tensor,
                        ptr: torch.Tensor) -> torch.Tensor:
    """One step of event-driven CSR connectivity with per-synapse delays, in a ring buffer.

    ``ring`` has shape ``(n_slots, *batch, n_post)`` and is **modified in place**: for every
    nonzero input ``s[b, i]`` and every synapse ``k`` of row ``i`` (positions ``indptr[i]`` to
    ``indptr[i + 1]``), whose code is ``codes[k] = d * n_post + j`` (delay ``d`` in steps, target
    ``j``), ``s[b, i] * weights[k]`` is added to ``ring[(ptr + d) mod n_slots, b, j]``; then slot
    ``ptr`` (what arrives now) is returned as a new tensor of shape ``(*batch, n_post)`` and
    cleared. Cost: ``#events x fan-out`` plus ``O(n_post)``.

    A ``torch.library`` custom op that mutates ``ring`` (pure torch inside, CPU and CUDA
    tensors): ``torch.compile(fullgraph=True)`` traces through it and keeps the update in place
    (an in-place scatter into a buffer written as traced torch code is functionalised into a copy
    of the whole buffer per step, 8x slower at full scale). No autograd formula.
    """
    return _delayed_csr_deliver(ring, spikes, indptr, codes, weights, ptr)
