r"""Truncated backpropagation through time (TBPTT).

A long sequence is cut into chunks of ``k`` steps. Each chunk runs forward from the States the
previous chunk left, is backpropagated on its own, and the States are then detached, so the
next chunk's graph starts fresh: memory is bounded by ``k`` steps instead of ``T``. The pattern,
with torchbrain's stateful layers::

    for x, y in loader:                               # x: (T, B, ...), time-major
        tb.reset_all_states(model)                    # new, independent sequences
        for sl, chunk in zip(chunk_slices(T, k), tbptt_chunks(x, k)):
            out = model(chunk)                        # continues from the held States
            loss = loss_fn(out, y[sl])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            tb.detach_states(model)                   # cut the graph between chunks

:func:`truncated_bptt` runs exactly this loop for one batch. Inside a chunk, activation memory
can be cut further with :func:`torchbrain.checkpointed_for_loop` (the step function calls the
model on one step, ``model(x_t[None])[0]``); it gives the same gradients. Lightning 2.x has no
TBPTT support of its own: use manual optimisation and this loop in ``training_step``.

The chunks come from :func:`torch.split`, views with one backward node for all chunks, so the
backward pass stays ``O(T)`` even when ``x`` requires grad (per-chunk ``x[i:i+k]`` indexing
would add a full-size gradient buffer per chunk).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..state import detach_states, reset_all_states

__all__ = ["tbptt_chunks", "chunk_slices", "truncated_bptt"]


def _check_k(k, who: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{who}: 'k' (steps per chunk) must be a positive int, got {k!r}")
    return k


def tbptt_chunks(x: torch.Tensor, k: int, *, time_major: bool = True) -> tuple[torch.Tensor, ...]:
    """Split ``x`` along time into chunks of ``k`` steps (the last one may be shorter).

    Parameters
    ----------
    x : Tensor ``(T, B, ...)`` (``(B, T, ...)`` when ``time_major=False``)
    k : int
        Steps per chunk.
    time_major : bool, default True

    Returns
    -------
    tuple of Tensor
        Views of ``x`` (:func:`torch.split`), in time order.
    """
    who = "tbptt_chunks"
    k = _check_k(k, who)
    if not isinstance(x, torch.Tensor) or x.dim() < (1 if time_major else 2):
        raise ValueError(f"{who}: 'x' must be a tensor with a time dimension, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    return torch.split(x, k, dim=0 if time_major else 1)


def chunk_slices(T: int, k: int) -> list[slice]:
    """The time slices of :func:`tbptt_chunks`: ``[slice(0, k), slice(k, 2k), ...]``."""
    k = _check_k(k, "chunk_slices")
    return [slice(t, min(t + k, T)) for t in range(0, T, k)]


def truncated_bptt(
    model: nn.Module,
    x: torch.Tensor,
    k: int,
    loss_fn: Callable[[torch.Tensor, slice], torch.Tensor],
    optimizer: torch.optim.Optimizer | None = None,
    *,
    time_major: bool = True,
    reset: bool = True,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Run one batch through ``model`` with truncated BPTT (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        A stateful model taking ``(T, B, ...)`` chunks (or ``(B, T, ...)``).
    x : Tensor
        The whole input sequence.
    k : int
        Steps per chunk.
    loss_fn : callable
        ``loss_fn(output_chunk, time_slice) -> scalar``; ``time_slice`` selects the chunk's
        steps (e.g. of the targets).
    optimizer : torch.optim.Optimizer, optional
        When given, ``zero_grad`` / ``step`` run around every chunk's backward pass; without it
        the gradients of all chunks accumulate in ``.grad``.
    time_major : bool, default True
    reset : bool, default True
        Call :func:`torchbrain.reset_all_states` first (the sequences are new).

    Returns
    -------
    losses : list of Tensor
        The (detached) loss of every chunk.
    outputs : Tensor
        The model's outputs for the whole sequence, detached, concatenated along time.
    """
    chunks = tbptt_chunks(x, k, time_major=time_major)
    T = x.shape[0 if time_major else 1]
    if reset:
        reset_all_states(model)
    losses, outputs = [], []
    for sl, chunk in zip(chunk_slices(T, k), chunks, strict=True):
        out = model(chunk)
        loss = loss_fn(out, sl)
        if optimizer is not None:
            optimizer.zero_grad()
        loss.backward()
        if optimizer is not None:
            optimizer.step()
        detach_states(model)
        losses.append(loss.detach())
        outputs.append(out.detach())
    return losses, torch.cat(outputs, dim=0 if time_major else 1)
