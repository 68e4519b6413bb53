r"""What every network split over ranks shares: the partition, the agreement check and the
batched spike exchange.

A :class:`DistributedNetwork` owns the neurons ``Partition(num, W).range(rank)`` of a network of
``num`` neurons. Each step it queues the spikes its neurons emitted in the step before
(:attr:`outbox`, ``D_min`` steps of them), and every ``D_min`` steps (``D_min``: the shortest
spike-to-synapse latency of the model, in steps) the ranks exchange those spikes as int32
global indices (:func:`~torchbrain.distributed.exchange.all_gather_varlen`: one all_gather of
per-step counts, one of the index lists). The received spikes are put in a canonical order (by
emission step, then global index), so the subclass's :meth:`DistributedNetwork._deliver` sees
the same events, in the same order, on any number of ranks: the basis of bit-identical rasters.

A spike emitted at step ``e`` is needed at step ``e + D_min`` at the earliest, so the exchange
at step ``n`` (``n`` a multiple of ``D_min``) of the spikes emitted in ``[n - D_min, n - 1]`` is
always in time (NEST's batching of spike exchange by the minimum delay). Every exchange also
carries ``(step, D_min, schedule checksum)``, so ranks that are out of step or were set up with
other delays raise :class:`~torchbrain.distributed.exchange.DistributedError` instead of mixing
spikes of different steps.
"""

from __future__ import annotations

import time

import torch

from .. import environ
from ..module import Module
from ..state import ShortTermState
from .exchange import DistributedError, all_gather_varlen, check_same_config, world
from .partition import Partition

__all__ = ["DistributedNetwork"]

#: Entries of the exchange header before the per-step counts: step, D_min, schedule checksum.
_HEADER = 3

#: Smallest payload room (spikes) of the packed exchange.
_MIN_CAPACITY = 64


def expand_counts(counts: torch.Tensor, total: int | None = None) -> torch.Tensor:
    """``[0]*counts[0] + [1]*counts[1] + ...`` (``repeat_interleave(arange, counts)``), written
    with ``searchsorted``: the CPU ``repeat_interleave`` always opens a parallel region, which
    costs milliseconds per call when the cores are busy with other processes."""
    ends = torch.cumsum(counts, 0)
    if total is None:
        total = int(ends[-1]) if ends.numel() else 0
    return torch.searchsorted(ends, torch.arange(total, device=counts.device), right=True)


def csr_row_entries(indptr: torch.Tensor, rows: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Every entry of the CSR rows ``rows``: ``(which, position)``, where ``position`` indexes
    the table and ``which`` the row in ``rows`` it belongs to (rows in order, entries of a row in
    table order); ``None`` when the rows are empty."""
    start = indptr[rows]
    count = indptr[rows + 1] - start
    total = int(count.sum()) if count.numel() else 0
    if total == 0:
        return None
    which = expand_counts(count, total)
    first = torch.cumsum(count, 0) - count
    position = start[which] + torch.arange(total, device=rows.device) - first[which]
    return which, position


class DistributedNetwork(Module):
    """Base of the networks of :mod:`torchbrain.distributed` (see the module docstring).

    Subclasses build their neurons and local synapses, call :meth:`_init_exchange_states` from
    ``init_state`` with their ``D_min``, call :meth:`_queue_and_exchange` at the start of every
    step, and implement :meth:`_deliver` and :meth:`_schedule` (the integers every rank must
    agree on, e.g. the latencies).

    Parameters
    ----------
    num : int
        Neurons in the whole network.
    config : dict
        Everything that identifies the model (arguments, seed, dtype...): checked to be the same
        on every rank at construction, and stored in checkpoints.
    align : int
        Alignment of the neuron ranges (:class:`~torchbrain.distributed.Partition`).
    group, world_size, device, dtype
        As :class:`~torchbrain.distributed.DistributedEINet`.
    """

    def __init__(self, num: int, config: dict, *, align: int = 64, group=None,
                 world_size: int | None = None, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        who = type(self).__name__
        rank, size, group = world(group)
        if world_size is not None and world_size != size:
            raise DistributedError(
                f"{who}: the model was built for world_size={world_size} but this process "
                f"group has {size} ranks (launched with torchrun --nproc_per_node={size}?); "
                "launch as many processes as the model expects, or leave world_size=None"
            )
        self.rank, self.world_size, self.group = rank, size, group
        self.num = int(num)
        self.align = int(align)
        self.config = {"class": who, "num": self.num, "align": self.align, **config,
                       "dtype": str(self._factory["dtype"]),
                       "device_type": torch.device(device or "cpu").type}
        check_same_config(self.config, who=who, group=group)
        self.partition = Partition(self.num, size, self.align)
        self.start, self.stop = self.partition.range(rank)
        self.n_local = self.stop - self.start
        self.outbox = ShortTermState(None)
        self.step = ShortTermState(None)
        self.d_min: int | None = None
        self._init_dt: float | None = None
        self.comm_stats = {"exchanges": 0, "spikes": 0, "bytes_received": 0, "seconds": 0.0}
        # payload room of the next exchange's single all_gather: the same on every rank (it
        # follows the global maximum), twice the last exchange's busiest rank
        self._capacity = _MIN_CAPACITY

    # ----------------------------------------------------------------- subclass hooks
    def _schedule(self) -> list[int]:
        """Integers that fix when spikes arrive (latencies...): equal on every rank."""
        raise NotImplementedError

    def _deliver(self, n: int, j: torch.Tensor, gid: torch.Tensor) -> None:
        """Deliver the spikes of global neurons ``gid`` emitted at steps ``n - d_min + j`` onto
        the local synapses (canonical order: by ``j``, then ``gid``)."""
        raise NotImplementedError

    def _local_spikes(self) -> torch.Tensor:
        """The spikes the local neurons emitted in the last step, ``(n_local,)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------------ States
    def _init_exchange_states(self, d_min: int, device) -> None:
        if d_min < 1:
            raise ValueError(f"{type(self).__name__}: the minimum latency must be >= 1 step, "
                             f"got {d_min}")
        self.d_min = int(d_min)
        self.outbox = ShortTermState(torch.zeros(self.d_min, self.n_local, dtype=torch.bool,
                                                 device=device))
        self.step = ShortTermState(torch.zeros((), dtype=torch.int64, device=device))

    def _require_states(self) -> None:
        if self.step is None:
            raise RuntimeError(f"{type(self).__name__}: States are not initialised; call "
                               "tb.init_all_states(net) inside `with tb.environ.context(dt=...)`")

    def _schedule_checksum(self) -> int:
        return self.d_min * 1_000_003 + sum(v * (31 ** (n + 1))
                                            for n, v in enumerate(self._schedule()))

    # -------------------------------------------------------------------------- steps
    def _queue_and_exchange(self, n: int) -> None:
        """Queue the spikes of step ``n - 1``; exchange and deliver when ``n`` is a multiple of
        ``d_min``."""
        self.outbox[(n - 1) % self.d_min] = self._local_spikes() > 0
        if n % self.d_min == 0:
            self._exchange(n)

    @torch.no_grad()
    def run(self, steps: int, *args) -> torch.Tensor:
        """Advance ``steps`` steps (``args`` go to every call); returns this rank's raster,
        ``(steps, n_local)`` bool.

        Gather the full raster with :func:`torchbrain.distributed.gather_raster`.
        """
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"{type(self).__name__}.run: 'steps' must be an int >= 0, "
                             f"got {steps!r}")
        self._check_ready()
        out = torch.empty(steps, self.n_local, dtype=torch.bool, device=self.step.device)
        for s in range(steps):
            out[s] = self(*args) > 0
        return out

    def _check_ready(self) -> float:
        self._require_states()
        return environ.get_dt_value(desc=type(self).__name__)

    # ---------------------------------------------------------------------- exchange
    def _exchange(self, n: int) -> None:
        tic = time.perf_counter()
        d = self.d_min
        dev = self.outbox.device
        nz = self.outbox.nonzero()                       # (m, 2): (step offset j, local), sorted
        counts = torch.bincount(nz[:, 0], minlength=d)
        gids = (nz[:, 1] + self.start).to(torch.int32)
        checksum = self._schedule_checksum()
        header = torch.cat([torch.tensor([n, d, checksum], dtype=torch.int64, device=dev),
                            counts.to(torch.int64)])
        capacity = self._capacity
        headers, payloads = all_gather_varlen(
            header, gids, who=type(self).__name__, what=f"the spike exchange at step {n}",
            group=self.group, length_of=lambda h: int(h[_HEADER:].sum()), capacity=capacity,
        )
        self._check_headers(headers, n, checksum)
        j = torch.cat([expand_counts(h[_HEADER:].to(dev)) for h in headers])
        gid = torch.cat(payloads).to(torch.int64)
        if gid.numel():
            # canonical order (by step, then global index) whatever the number of ranks
            order = torch.argsort(j * self.num + gid, stable=True)
            j, gid = j[order], gid[order]
            self._deliver(n, j, gid)
        self.outbox.zero_()
        stats = self.comm_stats
        stats["exchanges"] += 1
        stats["spikes"] += int(gid.numel())
        if self.world_size > 1:
            width = max(int(h[_HEADER:].sum()) for h in headers)
            room = max(width, capacity + capacity % 2)
            stats["bytes_received"] += self.world_size * (headers.shape[1] * 8 + room * 4)
            self._capacity = max(_MIN_CAPACITY, 2 * width)
        stats["seconds"] += time.perf_counter() - tic

    def _check_headers(self, headers: torch.Tensor, n: int, checksum: int) -> None:
        expected = (n, self.d_min, checksum)
        bad = [r for r, h in enumerate(headers) if tuple(int(v) for v in h[:_HEADER]) != expected]
        if bad:
            rows = "; ".join(f"rank {r}: step {int(h[0])}, d_min {int(h[1])}"
                             for r, h in enumerate(headers))
            raise DistributedError(
                f"{type(self).__name__}: the ranks are out of step at the spike exchange of "
                f"rank {self.rank} (step {n}, d_min {self.d_min}): {rows}. Every rank must run "
                "the same number of steps with the same dt and delays"
            )
