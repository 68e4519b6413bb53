r"""The Potjans–Diesmann microcircuit split over the ranks of a process group.

:class:`DistributedMicrocircuit` is :class:`torchbrain.models.Microcircuit` (same populations,
neuron and synapse models, weights, per-synapse delays, Poisson or DC drive, van Albada
downscaling; see :mod:`torchbrain.models.microcircuit`) with its neurons partitioned by index
over the ranks (:class:`~torchbrain.distributed.Partition`). The same script runs on one process
or under ``torchrun``, and a seeded network gives the **same spikes, bit for bit, on any number
of ranks**.

Connectivity, drawn in parallel
-------------------------------
The :math:`S_{ab}` synapses of pathway ``b -> a`` are independent uniform (pre, post) pairs
(NEST's ``fixed_total_number``). Drawing them as "uniform post, then uniform pre" lets each rank
draw only the synapses onto its own neurons:

1. the postsynaptic population ``a`` is cut into blocks of ``block_rows`` neurons, and the
   :math:`S_{ab}` synapses are split over the blocks by a multinomial draw (sequential
   binomials, from a generator seeded by ``(seed, pathway)``: :math:`O(\#\text{blocks})` work,
   the same on every rank);
2. block ``k`` draws its ``c_k`` synapses -- target uniform in the block, source uniform in
   population ``b``, weight and delay as in ``Microcircuit`` -- from its own generator
   (:func:`~torchbrain.distributed.block_generator` of ``(seed, pathway, k)``), and a rank draws
   only the blocks that overlap its neurons and keeps the synapses onto them.

The result has the distribution of ``Microcircuit``'s table (which draws per pre neuron from one
generator, so the two differ draw by draw), it never depends on the number of ranks, and build
time and memory per rank shrink as :math:`1/W`. Each rank stores the incoming synapses of its
neurons as CSR rows over the *global* presynaptic index, one int32 code ``delay * n_local +
post`` and one weight per synapse (8 bytes, as ``DelayedCSRConn``), plus ``8 (num + 1)`` bytes
of row pointers.

Spikes and delays
-----------------
A spike emitted at step ``e`` jumps the synaptic current of its targets at the start of step
``e + 1 + d`` (``d >= 1``: the synapse's delay in steps), as in ``Microcircuit``. So the minimum
latency is ``D_min = 1 + min(d)`` steps (2 with the published delay distributions, 9 with
``delays=False``), and the ranks exchange spikes every ``D_min`` steps
(:class:`~torchbrain.distributed.base.DistributedNetwork`). Received spikes are deposited into a
ring buffer of postsynaptic input, ``max(d) + 1`` slots of ``n_local`` values (``max``/``min``
over the whole network, agreed at construction). The Poisson drive uses a counter-based stream
indexed by the *global* neuron index (``PoissonInput(index_offset=start)``), and the initial
potentials are drawn for all neurons and sliced, so neither depends on the split.

On one rank the network is ``Microcircuit`` with this connectivity: given the same table, the
same initial potentials and the same Poisson seed, both give the same raster bit for bit (a
test). The step runs eagerly (the exchange is a collective with data-dependent sizes); batches
are not supported.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import environ
from ..inputs import PoissonInput
from ..models.microcircuit.connectivity import _CHUNK, _index_dtype, draw_synapse_values
from ..models.microcircuit.initial_potentials import initial_potentials
from ..models.microcircuit.parameters import (
    _NEURON,
    _TAU_SYN,
    POPULATIONS,
    PUBLISHED_RATES,
    MicrocircuitParameters,
    check_microcircuit_arguments,
    microcircuit_parameters,
)
from ..models.microcircuit.synapse_output import StepAverageCUBA
from ..neurons.lif import LIFRef
from ..outputs import CUBA
from ..state import ShortTermState
from ..synapses.expon import Expon
from ..units import u
from .base import DistributedNetwork, csr_row_entries
from .connectivity import _stable_seed, block_generator
from .exchange import guarded
from .network import _ReceptorUpdate

__all__ = ["DistributedMicrocircuit", "microcircuit_connectivity_local"]


def _block_counts(total: int, sizes: list[int], gen: torch.Generator) -> list[int]:
    """Multinomial(``total``, probabilities proportional to ``sizes``) by sequential binomials
    (every rank draws the same split from the same generator)."""
    out, left, rows_left = [], total, sum(sizes)
    for size in sizes[:-1]:
        if left == 0 or size == 0:
            out.append(0)
        else:
            draw = torch.binomial(torch.tensor([float(left)], dtype=torch.float64),
                                  torch.tensor([size / rows_left], dtype=torch.float64),
                                  generator=gen)
            out.append(int(draw.item()))
        left -= out[-1]
        rows_left -= size
    out.append(left)
    return out


def microcircuit_connectivity_local(params: MicrocircuitParameters, *, seed: int,
                                    post_range: tuple[int, int], delays: bool = True,
                                    dt: float = 0.1, block_rows: int = 1024, dtype=None):
    """The incoming synapses of the neurons ``post_range`` of the microcircuit ``params``.

    See the module docstring for the draw (identical on any split of the neurons). Returns
    ``(indptr, post, delay_steps, weight)`` on the CPU: int64 row pointers over the global
    presynaptic index (``num + 1``), local targets (``post - post_range[0]``, int32), delays in
    steps of ``dt`` (int16) and weights in pA (``dtype``); rows hold their synapses in the order
    (post population, block, draw).
    """
    lo, hi = (int(v) for v in post_range)
    if not 0 <= lo < hi <= params.num:
        raise ValueError(f"microcircuit_connectivity_local: 'post_range' must satisfy 0 <= start "
                         f"< stop <= {params.num}, got {post_range}")
    if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
        raise ValueError(f"microcircuit_connectivity_local: 'block_rows' must be a positive "
                         f"int, got {block_rows!r}")
    wdtype = dtype or torch.get_default_dtype()
    off, sizes = params.offsets, params.num_neurons
    row_counts = torch.zeros(params.num, dtype=torch.int64)
    post_parts, delay_parts, weight_parts = [], [], []
    for b in range(8):  # source population: its rows are contiguous, so sort per source
        pre_b, post_b, delay_b, weight_b = [], [], [], []
        for a in range(8):
            total = int(params.synapse_counts[a, b])
            if not total:
                continue
            first, n_a = off[a], sizes[a]
            bounds = [(first + r, first + min(n_a, r + block_rows))
                      for r in range(0, n_a, block_rows)]
            counts = _block_counts(total, [r1 - r0 for r0, r1 in bounds],
                                   block_generator(seed, f"microcircuit.count.{a}.{b}", 0))
            for k, ((r0, r1), c) in enumerate(zip(bounds, counts, strict=True)):
                if c == 0 or r1 <= lo or r0 >= hi:
                    continue
                gen = block_generator(seed, f"microcircuit.{a}.{b}", k)
                for start in range(0, c, _CHUNK):
                    m = min(_CHUNK, c - start)
                    post = torch.randint(r0, r1, (m,), generator=gen)
                    pre = torch.randint(off[b], off[b + 1], (m,), generator=gen)
                    weight, delay = draw_synapse_values(gen, m, a, b, params, delays, dt, wdtype)
                    keep = torch.nonzero((post >= lo) & (post < hi)).squeeze(1)
                    if keep.numel() < m:
                        post, pre, weight, delay = post[keep], pre[keep], weight[keep], delay[keep]
                    pre_b.append(pre)
                    post_b.append((post - lo).to(torch.int32))
                    delay_b.append(delay)
                    weight_b.append(weight)
        if pre_b:
            pre = torch.cat(pre_b)
            del pre_b
            order = torch.argsort(pre, stable=True)
            row_counts += torch.bincount(pre, minlength=params.num)
            del pre
            post_parts.append(torch.cat(post_b)[order])
            delay_parts.append(torch.cat(delay_b)[order])
            weight_parts.append(torch.cat(weight_b)[order])
            del order, post_b, delay_b, weight_b
    indptr = torch.zeros(params.num + 1, dtype=torch.int64)
    torch.cumsum(row_counts, 0, out=indptr[1:])
    if not post_parts:
        return (indptr, torch.empty(0, dtype=torch.int32), torch.empty(0, dtype=torch.int16),
                torch.empty(0, dtype=wdtype))
    return indptr, torch.cat(post_parts), torch.cat(delay_parts), torch.cat(weight_parts)


class DistributedMicrocircuit(DistributedNetwork):
    r"""The Potjans–Diesmann (2014) microcircuit over the ranks of a process group.

    See the module docstring for the partition, the parallel connectivity and the exchange, and
    :class:`torchbrain.models.Microcircuit` for the model.

    Parameters
    ----------
    scale, k_scale, drive, delays, seed, dt, V0, full_mean_rates, psc_step_average
        As :class:`~torchbrain.models.Microcircuit` (``seed`` seeds the connectivity, the
        initial potentials and the Poisson streams, all independent of the number of ranks).
    block_rows : int, default 1024
        Postsynaptic neurons per random block (part of the network's identity).
    align, group, world_size, device, dtype
        As :class:`~torchbrain.distributed.DistributedEINet`.

    Attributes
    ----------
    params : MicrocircuitParameters
        Sizes, synapse counts, weights and drive.
    pop_index : Tensor
        Population (0-7) of each local neuron.
    ext_seed : int
        Seed of the Poisson drive's counter-based stream.

    Examples
    --------
    Save as ``pd.py`` and run ``torchrun --standalone --nproc_per_node=2 pd.py``::

        import torchbrain as tb
        from torchbrain import u
        from torchbrain.distributed import DistributedMicrocircuit, init_distributed

        rank, world_size, device = init_distributed(timeout=300)
        net = DistributedMicrocircuit(scale=0.1, k_scale=0.1, seed=0, device=device)
        with tb.environ.context(dt=0.1 * u.ms):
            tb.init_all_states(net)
            local = net.run(10000)                 # (steps, neurons of this rank)
        rates = net.population_rates(local)        # Hz per population (collective)
    """

    def __init__(self, scale: float = 1.0, k_scale: float = 1.0, drive: str = "poisson",
                 delays: bool = True, seed: int = 0, *, dt=0.1 * u.ms, V0: str = "optimized",
                 full_mean_rates=PUBLISHED_RATES, psc_step_average: bool = True,
                 block_rows: int = 1024, align: int = 64, group=None,
                 world_size: int | None = None, device=None, dtype=None):
        who = type(self).__name__
        dt_ms = check_microcircuit_arguments(who, scale, k_scale, drive, V0, full_mean_rates, dt)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise TypeError(f"{who}: 'seed' must be an int >= 0 shared by every rank, got "
                            f"{seed!r}")
        if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
            raise ValueError(f"{who}: 'block_rows' must be a positive int, got {block_rows!r}")
        params = microcircuit_parameters(float(scale), float(k_scale), drive, full_mean_rates)
        config = {
            "scale": float(scale), "k_scale": float(k_scale), "drive": drive,
            "delays": bool(delays), "seed": seed, "dt_ms": dt_ms, "V0": V0,
            "full_mean_rates": [float(r) for r in full_mean_rates],
            "psc_step_average": bool(psc_step_average), "block_rows": block_rows,
        }
        super().__init__(params.num, config, align=align, group=group, world_size=world_size,
                         device=device, dtype=dtype)
        self.params, self.dt, self.seed = params, dt_ms, seed
        self.scale, self.k_scale, self.drive_kind = float(scale), float(k_scale), drive
        self.num_neurons, self.offsets = params.num_neurons, params.offsets
        self.block_rows = block_rows
        dtype = self._factory["dtype"]
        fac = dict(device=device, dtype=dtype)
        lo, hi = self.start, self.stop

        # ------------------------------------------------------------- connectivity
        indptr, post, delay, weight = microcircuit_connectivity_local(
            params, seed=seed, post_range=(lo, hi), delays=delays, dt=dt_ms,
            block_rows=block_rows, dtype=dtype)
        d_lo, d_hi = self._global_delay_range(delay)
        self.n_slots = d_hi + 1
        code_dtype = _index_dtype(self.n_slots * self.n_local - 1)
        codes = torch.empty(post.shape[0], dtype=code_dtype)
        for at in range(0, post.shape[0], _CHUNK):  # bounded int64 temporaries
            sl = slice(at, at + _CHUNK)
            codes[sl] = (delay[sl].to(torch.int64) * self.n_local + post[sl]).to(code_dtype)
        del post, delay
        # regenerated from the seed, so left out of state_dict (checkpoints stay small)
        self.register_buffer("indptr", indptr.to(device=device, dtype=_index_dtype(
            int(indptr[-1]))), persistent=False)
        self.register_buffer("codes", codes.to(device), persistent=False)
        self.register_buffer("weight", weight.to(device), persistent=False)
        self._latency = (1 + d_lo, 1 + d_hi)

        # ------------------------------------------------------------------ neurons
        sizes = torch.tensor(params.num_neurons)
        pop_index = torch.repeat_interleave(torch.arange(8), sizes)[lo:hi]
        self.register_buffer("pop_index", pop_index.to(device), persistent=False)
        V_all = initial_potentials(V0, params.num_neurons, _stable_seed(seed, "microcircuit.V0",
                                                                         0))
        V_local = V_all((params.num,), dtype=torch.float64)[lo:hi].to(**fac)
        p = _NEURON
        self.N = LIFRef(
            self.n_local, C=p["C"] * u.pF, tau=p["tau"] * u.ms, tau_ref=p["tau_ref"] * u.ms,
            V_th=p["V_th"] * u.mV, V_reset=p["V_reset"] * u.mV, V_rest=p["E_L"] * u.mV,
            V_initializer=V_local, spk_reset="hard", name="microcircuit", **fac,
        )
        self.syn = Expon(self.n_local, tau=_TAU_SYN * u.ms, name="recurrent", **fac)
        out = (StepAverageCUBA(tau=_TAU_SYN * u.ms, **fac) if psc_step_average
               else CUBA(**fac))
        self.N.add_current_input("recurrent", out)
        self.N.add_before_update("recurrent", _ReceptorUpdate(self.syn, out))
        self.ext_seed = _stable_seed(seed, "microcircuit.ext", 0)
        self.ext = None
        if drive == "poisson":
            freq = torch.from_numpy(params.poisson_frequencies()[lo:hi]).to(dtype)
            self.ext = PoissonInput(self.n_local, max(params.ext_indegree),
                                    u.Quantity(freq, "Hz"), params.w_ext * u.pA,
                                    seed=self.ext_seed, index_offset=lo, name="external", **fac)
        dc = torch.from_numpy(np.repeat(params.dc_amp, params.num_neurons)[lo:hi]).to(dtype)
        self.register_buffer("dc", dc.to(device), persistent=True)
        self._has_dc = bool(np.any(params.dc_amp != 0.0))
        self.ring = ShortTermState(None)

    def _global_delay_range(self, delay: torch.Tensor) -> tuple[int, int]:
        """(min, max) delay in steps over the whole network (one all_reduce each on W > 1)."""
        local = torch.tensor([int(delay.min()) if delay.numel() else 2**30,
                              -int(delay.max()) if delay.numel() else 2**30],
                             dtype=torch.int64)
        if self.world_size > 1:
            import torch.distributed as dist

            device = "cuda" if self.config["device_type"] == "cuda" else "cpu"
            local = local.to(device)
            guarded(type(self).__name__, "the delay range agreement (all_reduce)",
                    lambda: dist.all_reduce(local, op=dist.ReduceOp.MIN, group=self.group),
                    self.group)
            local = local.cpu()
        d_lo, d_hi = int(local[0]), -int(local[1])
        if d_lo > d_hi:  # no synapse at all
            d_lo = d_hi = 1
        return d_lo, d_hi

    def _repr_config(self):
        return {"scale": self.scale, "k_scale": self.k_scale, "num": self.num,
                "rank": self.rank, "world_size": self.world_size,
                "local": (self.start, self.stop), "d_min": self.d_min}

    # ------------------------------------------------------------------ reporting
    def num_local_synapses(self) -> int:
        return int(self.codes.shape[0])

    def connectivity_bytes(self) -> int:
        """Bytes of connectivity stored on this rank (row pointers, codes, weights)."""
        return sum(t.numel() * t.element_size() for t in (self.indptr, self.codes, self.weight))

    def post_indices(self) -> torch.Tensor:
        """Global target of every local synapse (int64, decoded from the codes)."""
        return torch.remainder(self.codes.long(), self.n_local) + self.start

    def delay_steps(self) -> torch.Tensor:
        """Delay of every local synapse in steps (int64)."""
        return torch.div(self.codes.long(), self.n_local, rounding_mode="floor")

    def population_rates(self, raster: torch.Tensor) -> dict[str, float]:
        """Mean rate (Hz) of each population from this rank's raster ``(steps, n_local)``.

        Collective on ``W > 1`` ranks (one all_reduce of 8 counts): every rank gets the rates of
        the whole network.
        """
        if raster.ndim != 2 or raster.shape[1] != self.n_local:
            raise ValueError(f"{type(self).__name__}.population_rates: expected this rank's "
                             f"raster of shape (steps, {self.n_local}), got {tuple(raster.shape)}")
        counts = torch.zeros(8, dtype=torch.float64, device=raster.device)
        counts.index_add_(0, self.pop_index, raster.sum(0).to(torch.float64))
        if self.world_size > 1:
            import torch.distributed as dist

            guarded(type(self).__name__, "the rate reduction (all_reduce)",
                    lambda: dist.all_reduce(counts, group=self.group), self.group)
        seconds = raster.shape[0] * self.dt * 1e-3
        return {p: float(counts[i]) / self.num_neurons[i] / seconds
                for i, p in enumerate(POPULATIONS)}

    # ---------------------------------------------------------------------- States
    def init_state(self, batch_size=None):
        if batch_size is not None:
            raise ValueError(f"{type(self).__name__}: batches are not supported (one network "
                             "per process group); call tb.init_all_states(net)")
        self._init_dt = self.dt
        device = self.dc.device
        self._init_exchange_states(self._latency[0], device)
        self.ring = ShortTermState(torch.zeros(self.n_slots, self.n_local, dtype=self.dc.dtype,
                                               device=device))

    def _schedule(self) -> list[int]:
        return [self._latency[0], self._latency[1], self.n_slots]

    def _local_spikes(self) -> torch.Tensor:
        return self.N.get_spike()

    def _check_ready(self) -> float:
        dt = super()._check_ready()
        if not math.isclose(dt, self.dt, rel_tol=1e-9):
            raise RuntimeError(
                f"{type(self).__name__}: the delays are counted in steps of {self.dt} ms but dt "
                f"is now {dt} ms; build the network with dt={dt} ms"
            )
        return dt

    # ------------------------------------------------------------------------ step
    @torch.no_grad()
    def forward(self) -> torch.Tensor:
        """One step: queue last step's spikes, exchange every ``d_min`` steps, jump the synaptic
        current by what arrives now and by the Poisson drive, update the local neurons; returns
        the local spikes ``(n_local,)``."""
        dt = self._check_ready()
        n = int(self.step)
        self._queue_and_exchange(n)
        slot = n % self.n_slots
        self.syn.add_delta_input("spikes", self.ring[slot].clone())
        self.ring[slot] = 0
        if self.ext is not None:
            self.syn.add_delta_input("ext", self.ext())
        with environ.context(t=n * dt):
            spikes = self.N(self.dc if self._has_dc else 0.0)
        self.step.add_(1)
        return spikes

    def _deliver(self, n: int, j: torch.Tensor, gid: torch.Tensor) -> None:
        """Deposit the synapses of the spikes ``gid`` (emitted at steps ``n - d_min + j``) at
        their arrival steps ``emission + 1 + delay`` into the ring buffer."""
        entries = csr_row_entries(self.indptr, gid)
        if entries is None:
            return
        which, pos = entries
        code = self.codes[pos].to(torch.int64)
        delay = torch.div(code, self.n_local, rounding_mode="floor")
        post = code - delay * self.n_local
        arrival = j[which] + delay + (n - self.d_min + 1)
        slot = torch.remainder(arrival, self.n_slots)
        values = self.weight[pos].to(self.ring.dtype)
        self.ring.view(-1).index_add_(0, slot * self.n_local + post, values)
