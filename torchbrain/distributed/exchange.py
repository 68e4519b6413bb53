r"""Process groups, guarded collectives and the compact spike exchange.

Every collective used by :mod:`torchbrain.distributed` goes through :func:`guarded`, which turns
the backend's failure (a peer that died, a peer that hangs past the process group's timeout, a
peer that called another collective) into a :class:`DistributedError` naming the operation, the
rank, the step and the likely causes, instead of a hang or a bare backend message.

Timeouts come from the process group: ``dist.init_process_group(backend, timeout=...)`` (or
:func:`init_distributed`). With ``gloo`` every collective honours it. With ``nccl`` a collective
that never completes is aborted by NCCL's watchdog after the same timeout when
``TORCH_NCCL_ASYNC_ERROR_HANDLING=1`` (the default in recent PyTorch); the process then exits
instead of raising.

Spike exchange (:func:`all_gather_varlen`): each rank sends a small int64 *header* (step
counter, schedule fingerprint and its spike count per step of the interval) and its spikes as
int32 global indices. Without a capacity, two ``all_gather`` calls: the headers first, whose
counts give the largest payload, then the payloads padded to that size (``all_gather`` needs
equal sizes). With a capacity (what the networks use: twice the last exchange's largest
payload), header and payload travel packed in one call, and a second carries only an overflow.
Received bytes per exchange and rank: :math:`W (H \cdot 8 + 4 \max_r n_r)`, where ``H`` is the
header length and :math:`n_r` the spikes of rank ``r`` in the interval. ``all_gather_object``
would do it in one call but pickles, which costs far more per spike and does not work on
``nccl`` without extra copies.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DistributedError",
    "init_distributed",
    "world",
    "guarded",
    "all_gather_varlen",
    "check_same_config",
]


class DistributedError(RuntimeError):
    """A distributed run cannot go on: ranks disagree, a collective failed or timed out."""


def init_distributed(backend: str | None = None, timeout: float | datetime.timedelta = 300.0,
                     device: str | torch.device | None = None) -> tuple[int, int, torch.device]:
    """Start the default process group from ``torchrun``'s environment (or do nothing).

    Parameters
    ----------
    backend : {'gloo', 'nccl'}, optional
        Default: ``nccl`` when CUDA is available and ``device`` is not a CPU, else ``gloo``.
    timeout : float (seconds) or timedelta, default 300
        How long a collective may wait for the other ranks before it fails (with
        :class:`DistributedError` once wrapped by :func:`guarded`). Short values make a dead
        or hung rank fail fast; they must exceed the longest legitimate gap between collectives
        (e.g. connectivity generation, checkpoint writing).
    device : optional
        The device of this rank. Default: ``cuda:LOCAL_RANK`` with NCCL, else CPU.

    Returns
    -------
    (rank, world_size, device)
        ``(0, 1, device)`` without ``torchrun`` (no ``WORLD_SIZE`` in the environment, or 1):
        the same script then runs on one process without a process group.
    """
    if not isinstance(timeout, datetime.timedelta):
        timeout = datetime.timedelta(seconds=float(timeout))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        if device is None:
            nccl = "nccl" in str(dist.get_backend()) and torch.cuda.is_available()
            device = f"cuda:{local_rank}" if nccl else "cpu"
        return dist.get_rank(), dist.get_world_size(), torch.device(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if backend is None:
        cpu = device is not None and torch.device(device).type == "cpu"
        backend = "nccl" if torch.cuda.is_available() and not cpu else "gloo"
    if device is None:
        device = torch.device(f"cuda:{local_rank}") if backend == "nccl" else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size == 1:
        return 0, 1, device
    if not dist.is_available():
        raise DistributedError("init_distributed: this PyTorch build has no torch.distributed")
    dist.init_process_group(backend=backend, timeout=timeout)
    return dist.get_rank(), dist.get_world_size(), device


def world(group=None) -> tuple[int, int, Any]:
    """``(rank, world_size, group)`` of ``group`` (default: the default group; ``(0, 1, None)``
    when no process group is initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        if group is not None:
            raise DistributedError("a process group was given but torch.distributed is not "
                                   "initialised; call dist.init_process_group first")
        return 0, 1, None
    return dist.get_rank(group), dist.get_world_size(group), group


def _timeout_text(group) -> str:
    try:  # private API: where the backend keeps its timeout (moves between PyTorch versions)
        pg = group if group is not None else dist.distributed_c10d._get_default_group()
        for dev in ("cpu", "cuda"):
            try:
                seconds = pg._get_backend(torch.device(dev)).options._timeout
            except Exception:
                continue
            if isinstance(seconds, datetime.timedelta):
                return f"{seconds.total_seconds():g} s"
    except Exception:  # pragma: no cover
        pass
    return "the process group's timeout"


def guarded(who: str, what: str, fn: Callable[[], Any], group=None) -> Any:
    """Run the collective ``fn()``; turn a backend failure into a :class:`DistributedError`."""
    try:
        return fn()
    except DistributedError:
        raise
    except (RuntimeError, ValueError) as err:
        rank = dist.get_rank() if dist.is_initialized() else 0
        size = dist.get_world_size(group) if dist.is_initialized() else 1
        raise DistributedError(
            f"{who}: {what} failed on rank {rank} of {size}: another rank has probably died, "
            f"hung for longer than the collective timeout ({_timeout_text(group)}), or is "
            f"running a different program (a different number of steps, another model); "
            f"backend error: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from err


def all_gather_varlen(header: torch.Tensor, payload: torch.Tensor, *, who: str,
                      what: str = "the spike exchange", group=None,
                      length_of: Callable[[torch.Tensor], int] | None = None,
                      capacity: int | None = None,
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """All-gather a fixed-size int64 ``header`` and a variable-length 1-d ``payload``.

    ``length_of(header_row)`` gives a rank's payload length from its header (default: the
    payload lengths are exchanged as the header's last entry, appended here).

    ``capacity`` (int32 payloads only; the same value on every rank): send the header and the
    first ``capacity`` payload entries in **one** all_gather (packed into one int64 buffer), and
    only when some rank has more, the rest in a second one. With a good guess (e.g. twice the
    last exchange's largest payload) an exchange costs one collective's latency instead of two.

    Returns ``(headers, payloads)``: a ``(W, H)`` CPU tensor and the ``W`` payloads (on the
    payload's device), in rank order. Without a process group (one rank) no collective runs.
    """
    rank, size, group = world(group)
    if length_of is None:
        header = torch.cat([header.reshape(-1).to(torch.int64),
                            torch.tensor([payload.numel()], dtype=torch.int64,
                                         device=header.device)])

        def length_of(h):
            return int(h[-1])

    if size == 1:
        return header.reshape(1, -1).cpu(), [payload]
    device = payload.device
    header = header.reshape(-1).to(device=device, dtype=torch.int64)
    if capacity is not None and payload.dtype == torch.int32:
        return _all_gather_packed(header, payload, int(capacity), who, what, group, size,
                                  length_of)
    heads = [torch.empty_like(header) for _ in range(size)]
    guarded(who, f"{what} (header all_gather)",
            lambda: dist.all_gather(heads, header, group=group), group)
    headers = torch.stack(heads).cpu()
    lengths = [length_of(h) for h in headers]
    width = max(lengths)
    if width == 0:
        return headers, [payload[:0] for _ in range(size)]
    padded = torch.zeros(width, dtype=payload.dtype, device=device)
    padded[: payload.numel()] = payload
    bodies = [torch.empty_like(padded) for _ in range(size)]
    guarded(who, f"{what} (payload all_gather)",
            lambda: dist.all_gather(bodies, padded, group=group), group)
    return headers, [b[:n] for b, n in zip(bodies, lengths, strict=True)]


def _all_gather_packed(header, payload, capacity, who, what, group, size, length_of):
    """One all_gather of ``[header | payload[:capacity]]`` (int32 pairs viewed as int64), and a
    second one of the overflow only when a rank's payload is longer than ``capacity``."""
    capacity += capacity % 2  # whole int64 words
    h = header.numel()
    packed = torch.zeros(h + capacity // 2, dtype=torch.int64, device=header.device)
    packed[:h] = header
    first = min(payload.numel(), capacity)
    packed[h:].view(torch.int32)[:first] = payload[:first]
    gathered = [torch.empty_like(packed) for _ in range(size)]
    guarded(who, f"{what} (all_gather)",
            lambda: dist.all_gather(gathered, packed, group=group), group)
    headers = torch.stack([g[:h] for g in gathered]).cpu()
    lengths = [length_of(row) for row in headers]
    parts = [g[h:].view(torch.int32)[:min(n, capacity)]
             for g, n in zip(gathered, lengths, strict=True)]
    width = max(lengths)
    if width > capacity:
        rest = torch.zeros(width - capacity, dtype=torch.int32, device=payload.device)
        rest[: max(0, payload.numel() - capacity)] = payload[capacity:]
        bodies = [torch.empty_like(rest) for _ in range(size)]
        guarded(who, f"{what} (overflow all_gather)",
                lambda: dist.all_gather(bodies, rest, group=group), group)
        parts = [torch.cat([p, b[: max(0, n - capacity)]])
                 for p, b, n in zip(parts, bodies, lengths, strict=True)]
    return headers, parts


def check_same_config(config: dict, *, who: str, group=None) -> None:
    """Raise :class:`DistributedError` on every rank when the ranks' ``config`` dicts differ.

    One ``all_gather_object`` (pickled; used once, at construction). The message lists the
    entries that differ and their value on each rank.
    """
    rank, size, group = world(group)
    if size == 1:
        return
    gathered: list[Any] = [None] * size
    guarded(who, "the model agreement check (all_gather_object)",
            lambda: dist.all_gather_object(gathered, config, group=group), group)
    keys = sorted({k for c in gathered for k in c}, key=str)
    diffs = []
    for key in keys:
        values = [c.get(key, "<missing>") for c in gathered]
        if any(v != values[0] for v in values[1:]):
            diffs.append(f"{key}: " + ", ".join(f"rank {r}={v!r}" for r, v in enumerate(values)))
    if diffs:
        raise DistributedError(
            f"{who}: the {size} ranks disagree on the model, so their spikes would not fit "
            "together; every rank must build the same model (same arguments, seed, dtype and "
            "world size). Differences: " + "; ".join(diffs)
        )
