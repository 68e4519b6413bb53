r"""The E/I benchmark networks simulated over several processes (ranks) and devices.

:class:`DistributedCOBANet` and :class:`DistributedCUBANet` are the networks of
:mod:`torchbrain.models.ei_network` (Vogels & Abbott 2005; Brette et al. 2007 benchmarks 1 and
2: ``4000 * scale`` LIF neurons, 80 % excitatory, 80 targets per neuron, exponential synapses)
split over the ranks of a ``torch.distributed`` process group. The same script runs on one
process (no process group) or under ``torchrun`` on ``W`` processes, and a seeded network gives
the **same spikes, bit for bit**, on any number of ranks.

How it is split
---------------
* **Neurons**: rank ``r`` owns the neurons ``Partition(num, W).range(r)``: a ``LIFRef`` slice,
  its two synapses (``Expon`` + ``COBA``/``CUBA`` outputs, one per projection) and their States.
* **Synapses**: each rank stores only the *incoming* synapses of its own neurons, as a CSR table
  over the global presynaptic index (:mod:`torchbrain.distributed.connectivity`), built in
  parallel from the shared seed. Connectivity memory per rank is about ``1/W`` of the total.
* **Spikes**: every ``D_min`` steps the ranks exchange the spikes of the last ``D_min`` steps as
  int32 global indices (:func:`~torchbrain.distributed.exchange.all_gather_varlen`: one
  all_gather of per-step counts, one of the padded index lists), and each rank adds the weights
  of the synapses onto its neurons to a ring buffer of future synaptic input.

Timing and delays
-----------------
As in :class:`~torchbrain.projections.AlignPostProj` with ``delay=d``: a spike emitted at step
``e`` reaches the synapse at step ``e + L`` with ``L = 1 + D`` and ``D = delay_steps(d, dt)``
(:func:`torchbrain.delay.delay_steps`). ``D_min = min(L)`` over the projections (``>= 1``): a
spike emitted in the interval ``[n - D_min, n - 1]`` is needed at step ``n`` at the earliest, so
the exchange at step ``n`` (every ``n`` that is a multiple of ``D_min``) is in time, and every
spike is delivered exactly at its delay (the standard batching of spike exchange by the minimum
delay, as in NEST). Longer minimum delays mean fewer, larger exchanges.

Memory per rank: the ``LIFRef``/synapse States (``4 n_local`` values), a ring buffer of ``L``
steps per projection (``L n_local`` values), the outgoing spikes of one interval
(``D_min n_local`` bytes) and the local synapses (4 bytes each, plus ``8 n_pre`` bytes of CSR
row pointers per projection).

Communication model (8 GPUs, multi-area scale)
----------------------------------------------
Per exchange each rank receives the headers (``W (3 + D_min)`` int64: step, ``D_min``, a
schedule checksum and the spike count of each step) and every spike of the interval as a 4-byte
index, padded to the busiest rank. With ``N`` neurons firing at ``f`` Hz and a step ``dt``, the
spikes per step are :math:`S = N f\,dt`, and the bytes received per rank and step are

.. math::

    B = 4\,S\,\rho + \frac{8\,W\,(3 + D_\min)}{D_\min},
    \qquad \rho = \frac{W \max_r n_r}{\sum_r n_r} \gtrsim 1

(:math:`n_r`: spikes of rank ``r`` in the interval; :math:`\rho` is the padding overhead).
For the multi-area model of macaque cortex (Schmidt et al. 2018: 4.13 million neurons,
24.2 billion synapses, rates of a few Hz) on **8 GPUs** at ``dt = 0.1 ms``, ``f = 3 Hz`` and
:math:`\rho = 1.1`: :math:`S = 4.13\cdot 10^6 \times 3 \times 10^{-4} \approx 1240` spikes per
step, so :math:`B \approx 5.5` kB of indices + 0.26 kB of headers :math:`\approx` **5.7 kB per
step and GPU** at ``D_min = 1`` (57 MB per simulated second; 2.1 and 18 kB per step at 1 and
10 Hz). That is far below NVLink (hundreds of GB/s) or InfiniBand (tens of GB/s) bandwidth
(< 2 ms of transfer per simulated second): the cost is latency. Two all_gathers per exchange
and :math:`10^4/D_\min` exchanges per simulated second: at ~25 µs per small NCCL all_gather,
0.5 s of communication per simulated second at ``D_min = 1`` step, 0.05 s at ``D_min = 10``
steps (a 1 ms minimum delay). Synapses per GPU: :math:`24.2\cdot 10^9 / 8 \approx 3\cdot 10^9`,
12 GB of int32 targets (homogeneous weights per projection; 24 GB with float32 per-synapse
weights), which fits an 80 GB H100; delivering one step's spikes touches
:math:`S \times 5860 / 8 \approx 0.9` million local synapses per GPU. The CSR row pointers cost
``8 n_pre`` bytes per projection on every rank, so at this scale group the synapses by
(receptor, delay) with all neurons as presynaptic rows (33 MB per group), not by population
pair (~64 000 pairs). With the fixed out-degree rule every rank draws all 24 billion targets
when building (seconds on a GPU); the fixed in-degree rule draws only its own 3 billion.
``python benchmarks/distributed_scaling.py --model`` prints this model for other rates and
``D_min``.

Not covered: batches (one network per process group), autograd through the exchange (the
simulation runs under ``torch.no_grad``), per-synapse weights, delays or plasticity (a
per-synapse delay would store one more byte per synapse and pick the ring slot per synapse),
``torch.compile`` of the step (the exchange is a collective with data-dependent sizes; the
neuron update inside is ordinary eager code).

References
----------
Vogels, T. P. & Abbott, L. F. (2005). Signal propagation and logic gating in networks of
integrate-and-fire neurons. J. Neurosci. 25, 10786–10795.
Morrison, A., Mehring, C., Geisel, T., Aertsen, A. & Diesmann, M. (2005). Advancing the
boundaries of high-connectivity network simulation with distributed computing. Neural Comput.
17, 1776–1801.
Schmidt, M. et al. (2018). A multi-scale layered spiking network model of macaque visual
cortex. PLoS Comput. Biol. 14, e1006359.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import environ, init
from ..delay import delay_steps
from ..environ import DT
from ..environ import get as env_get
from ..neurons.lif import LIFRef
from ..outputs import COBA, CUBA
from ..state import ShortTermState
from ..synapses.expon import Expon
from ..units import to_canonical, u
from .base import DistributedNetwork, csr_row_entries
from .connectivity import fixed_in_degree_local, fixed_out_degree_local, initial_values_local

__all__ = ["DistributedEINet", "DistributedCOBANet", "DistributedCUBANet", "FAN_OUT"]

#: Synapses per neuron (the benchmark's 2 % of 4000).
FAN_OUT = 80

@dataclass
class _Projection:
    name: str
    pre_start: int
    pre_stop: int
    k: int
    delay_ms: float
    stream: str
    steps: int | None = None  # D, known at init_state

    @property
    def latency(self) -> int:
        return 1 + self.steps


class _ReceptorUpdate(nn.Module):
    """Before the neuron update: advance the synapse, bind its output (as AlignPostProj)."""

    def __init__(self, syn: nn.Module, out: nn.Module):
        super().__init__()
        self.syn = syn
        self.out = out

    def forward(self) -> None:
        self.out.bind_cond(self.syn())


def _time_ms(value, owner: str, name: str) -> float:
    v = float(to_canonical(value, "ms", owner=owner, name=name))
    if not v >= 0 or v == float("inf"):
        raise ValueError(f"{owner}: '{name}' must be a finite time >= 0, got {v} ms")
    return v


class DistributedEINet(DistributedNetwork):
    r"""An E/I network of ``num`` LIFRef neurons split over the ranks of a process group.

    Neurons ``[0, num_exc)`` are excitatory, the rest inhibitory; each neuron makes ``fan_out``
    synapses (fixed out-degree, or fixed in-degree with ``rule='fixed_in'``) drawn in blocks from
    ``seed`` (:mod:`torchbrain.distributed.connectivity`). See the module docstring for the
    partition, the spike exchange and the delays. Use :class:`DistributedCOBANet` or
    :class:`DistributedCUBANet`.

    Parameters
    ----------
    num, num_exc : int
        Neurons in total and excitatory neurons.
    neuron : dict
        Keyword arguments of :class:`~torchbrain.neurons.LIFRef` except ``V_initializer``.
    V_initializer : Initializer or quantity [voltage]
        Initial voltages, drawn per neuron from ``seed`` independently of the split.
    e, i : dict
        The projections: ``weight`` (quantity), ``tau`` (synaptic time constant), ``out``
        (a ``COBA``/``CUBA`` descriptor) and ``delay`` (quantity [time] or ms).
    drive : float
        Constant external current (pA).
    seed : int
        Seed of the connectivity and of the initial voltages.
    fan_out : int, default 80
        Synapses per neuron.
    rule : {'fixed_out', 'fixed_in'}, default 'fixed_out'
        ``'fixed_out'``: each neuron draws ``fan_out`` targets (the benchmark's rule, as
        ``EventFixedProb``); ``'fixed_in'``: each neuron draws ``fan_out`` sources, split
        between E and I in proportion to their sizes (64 + 16), built with less work per rank.
    block_rows : int, default 1024
        Rows per random block (part of the network's identity: same on every rank).
    align : int, default 64
        Alignment of the neuron ranges (:class:`~torchbrain.distributed.Partition`).
    group : ProcessGroup, optional
        Default: the default group, or a single process when none is initialised.
    world_size : int, optional
        The number of ranks the caller expects; a different process-group size raises.
    device, dtype : optional
        Where the rank's neurons and synapses live (one GPU per rank: ``cuda:LOCAL_RANK``).

    Raises
    ------
    DistributedError
        At construction when ``world_size`` does not match the process group, or the ranks
        were given different arguments; during a run when a collective fails or times out
        (a rank died or hangs) or the ranks are out of step.
    ValueError
        For bad sizes, delays, or more ranks than blocks of ``align`` neurons.
    """

    def __init__(self, num: int, num_exc: int, neuron: dict, V_initializer, e: dict, i: dict,
                 drive: float, seed: int, *, fan_out: int = FAN_OUT, rule: str = "fixed_out",
                 block_rows: int = 1024, align: int = 64, group=None,
                 world_size: int | None = None, device=None, dtype=None):
        who = type(self).__name__
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"{who}: 'seed' must be an int shared by every rank, got {seed!r}")
        if not (isinstance(num, int) and isinstance(num_exc, int) and 0 < num_exc < num):
            raise ValueError(f"{who}: need 0 < num_exc < num, got num={num}, num_exc={num_exc}")
        if rule not in ("fixed_out", "fixed_in"):
            raise ValueError(f"{who}: 'rule' must be 'fixed_out' or 'fixed_in', got {rule!r}")
        delays = (_time_ms(e.get("delay", 0.0), who, "delay_e"),
                  _time_ms(i.get("delay", 0.0), who, "delay_i"))
        config = {
            "num_exc": num_exc, "seed": seed, "rule": rule,
            "fan_out": int(fan_out), "block_rows": int(block_rows),
            "delay_e_ms": delays[0], "delay_i_ms": delays[1], "drive_pA": float(drive),
            "neuron": repr(sorted(neuron.items())), "V_initializer": repr(V_initializer),
            "e": repr(sorted((k, v) for k, v in e.items() if k != "delay")),
            "i": repr(sorted((k, v) for k, v in i.items() if k != "delay")),
        }
        super().__init__(num, config, align=align, group=group, world_size=world_size,
                         device=device, dtype=dtype)
        self.num_exc, self.num_inh = num_exc, num - num_exc
        self.seed, self.rule, self.fan_out = seed, rule, int(fan_out)
        self.block_rows = int(block_rows)
        dtype = self._factory["dtype"]
        fac = dict(device=device, dtype=dtype)

        V0 = initial_values_local(V_initializer, num, seed=seed, post_range=(self.start, self.stop),
                                  unit="mV", stream="V0", block_rows=self.block_rows, **fac)
        self.N = LIFRef(self.n_local, V_initializer=V0, name="EI", **neuron, **fac)
        self.projections: list[_Projection] = [
            _Projection("E", 0, num_exc, self.fan_out, delays[0], "E"),
            _Projection("I", num_exc, num, self.fan_out, delays[1], "I"),
        ]
        self._syns: dict[str, Expon] = {}
        for proj, spec in zip(self.projections, (e, i), strict=True):
            table = self._build_table(proj, device)
            # regenerated from the seed, so left out of state_dict (checkpoints stay small)
            self.register_buffer(f"indptr_{proj.name}", table.indptr, persistent=False)
            self.register_buffer(f"targets_{proj.name}", table.targets, persistent=False)
            weight = spec["weight"]
            out = spec["out"]().to(**fac)        # a COBA/CUBA descriptor: a fresh output
            unit = out.cond_unit                 # nS for COBA, pA for CUBA
            w = torch.as_tensor(to_canonical(weight, unit, owner=who, name=f"weight_{proj.name}"),
                                dtype=dtype, device=device)
            self.register_buffer(f"weight_{proj.name}", w.reshape(()).clone(), persistent=True)
            syn = Expon(self.n_local, tau=spec["tau"], name=proj.name, **fac)
            self.N.add_current_input(proj.name, out)
            self.N.add_before_update(proj.name, _ReceptorUpdate(syn, out))
            self._syns[proj.name] = syn
            setattr(self, f"ring_{proj.name}", ShortTermState(None))
        self.register_buffer("drive", torch.as_tensor(float(drive), **fac), persistent=True)

    # ---------------------------------------------------------------- building
    def _build_table(self, proj: _Projection, device):
        n_pre = proj.pre_stop - proj.pre_start
        rng = (self.start, self.stop)
        kw = dict(seed=self.seed, post_range=rng, stream=proj.stream,
                  block_rows=self.block_rows, device=device)
        if self.rule == "fixed_out":
            return fixed_out_degree_local(n_pre, self.num, proj.k, **kw)
        # fixed in-degree: each neuron draws its E and I sources in the network's proportions
        k_in = round(proj.k * n_pre / self.num)
        return fixed_in_degree_local(n_pre, self.num, k_in, **kw)

    def _repr_config(self):
        return {"num": self.num, "rank": self.rank, "world_size": self.world_size,
                "local": (self.start, self.stop), "d_min": self.d_min}

    def connectivity_bytes(self) -> int:
        """Bytes of connectivity stored on this rank."""
        return sum(getattr(self, f"{k}_{p.name}").numel()
                   * getattr(self, f"{k}_{p.name}").element_size()
                   for p in self.projections for k in ("indptr", "targets"))

    def num_local_synapses(self) -> int:
        return sum(getattr(self, f"targets_{p.name}").numel() for p in self.projections)

    # ------------------------------------------------------------------ States
    def init_state(self, batch_size=None):
        if batch_size is not None:
            raise ValueError(f"{type(self).__name__}: batches are not supported (one network "
                             "per process group); call tb.init_all_states(net)")
        dt = env_get(DT, None)
        dt = self._init_dt if dt is None else dt
        if dt is None:
            raise RuntimeError(
                f"{type(self).__name__}: delays are whole time steps, so dt must be known when "
                "the States are initialised; call tb.init_all_states(net) inside "
                "`with tb.environ.context(dt=...)`"
            )
        self._init_dt = float(dt)
        for p in self.projections:
            p.steps = delay_steps(p.delay_ms, dt)
        fac = self._factory_like_states()
        self._init_exchange_states(min(p.latency for p in self.projections), fac["device"])
        for p in self.projections:
            setattr(self, f"ring_{p.name}",
                    ShortTermState(torch.zeros(p.latency, self.n_local, **fac)))

    def _factory_like_states(self):
        return {"device": self.drive.device, "dtype": self.drive.dtype}

    def _schedule(self) -> list[int]:
        return [p.latency for p in self.projections]

    def _local_spikes(self) -> torch.Tensor:
        return self.N.get_spike()

    def _check_ready(self):
        dt = super()._check_ready()
        if dt != self._init_dt and any(delay_steps(p.delay_ms, dt) != p.steps
                                       for p in self.projections):
            raise RuntimeError(
                f"{type(self).__name__}: the delay buffers were sized for dt = {self._init_dt} "
                f"ms, but dt is now {dt} ms; call tb.init_all_states(net) again in the new context"
            )
        return dt

    # -------------------------------------------------------------------- step
    @torch.no_grad()
    def forward(self, drive: torch.Tensor | float | None = None) -> torch.Tensor:
        """One step: queue last step's spikes, exchange every ``d_min`` steps, deliver this
        step's synaptic input, update the local neurons; returns the local spikes."""
        dt = self._check_ready()
        n = int(self.step)
        # spikes emitted at step n - 1 (at n = 0: the initial voltages above threshold, as in
        # COBANet, whose forward sends N.get_spike() before updating)
        self._queue_and_exchange(n)
        for p in self.projections:
            ring = getattr(self, f"ring_{p.name}")
            slot = n % p.latency
            jump = ring[slot].clone()
            ring[slot] = 0
            self._syns[p.name].add_delta_input("spikes", jump)
        with environ.context(t=n * dt):
            spikes = self.N(self.drive if drive is None else drive)
        self.step.add_(1)
        return spikes

    def _deliver(self, n: int, j: torch.Tensor, gid: torch.Tensor) -> None:
        """Add the weights of the synapses of the spikes ``gid`` (emitted at steps
        ``n - d_min + j``) onto the local neurons to the ring buffers at their arrival step."""
        d = self.d_min
        for p in self.projections:
            mask = (gid >= p.pre_start) & (gid < p.pre_stop)
            pre = gid[mask] - p.pre_start
            if pre.numel() == 0:
                continue
            entries = csr_row_entries(getattr(self, f"indptr_{p.name}"), pre)
            if entries is None:
                continue
            spike, pos = entries
            total = pos.numel()
            target = getattr(self, f"targets_{p.name}")[pos].to(torch.int64)
            arrival = j[mask][spike] + (n - d + p.latency)
            slot = torch.remainder(arrival, p.latency)
            ring = getattr(self, f"ring_{p.name}")
            weight = getattr(self, f"weight_{p.name}").to(ring.dtype).expand(total)
            ring.view(-1).index_add_(0, slot * self.n_local + target, weight)


class DistributedCOBANet(DistributedEINet):
    """The conductance-based E/I benchmark (:class:`~torchbrain.models.COBANet`), distributed.

    Same neurons, synapses, weights and drive as ``COBANet`` (see
    :mod:`torchbrain.models.ei_network`); connectivity and initial voltages come from the
    block generator of :mod:`torchbrain.distributed.connectivity` (so they do not depend on the
    number of ranks, and differ from ``COBANet(seed=...)``'s draws).

    Parameters
    ----------
    scale : float, default 1
        Size as a multiple of 4000 neurons (the fan-out stays 80).
    seed : int, default 0
        Seed of the connectivity and of the initial voltages (shared by every rank).
    V0_std : quantity [voltage], default 5 mV
        Spread of the initial voltages around -55 mV.
    delay_e, delay_i : quantity [time] or float (ms), default 0
        Transmission delays of the excitatory and inhibitory projections (whole steps of
        ``dt``; a spike reaches the synapse ``1 + round(delay/dt)`` steps after it is emitted).
    other parameters
        As :class:`DistributedEINet` (``rule``, ``block_rows``, ``align``, ``group``,
        ``world_size``, ``device``, ``dtype``).

    Examples
    --------
    Save as ``coba.py`` and run ``torchrun --standalone --nproc_per_node=2 coba.py`` (or
    ``python coba.py`` for one process)::

        import torchbrain as tb
        from torchbrain import u
        from torchbrain.distributed import DistributedCOBANet, gather_raster, init_distributed

        rank, world_size, device = init_distributed(timeout=60)  # gloo on CPU, NCCL on GPUs
        net = DistributedCOBANet(scale=1.0, seed=0, delay_e=1.0 * u.ms, device=device)
        with tb.environ.context(dt=0.1 * u.ms):
            tb.init_all_states(net)
            local = net.run(10000)                 # (steps, neurons of this rank)
        raster = gather_raster(local, net, dst=0)  # (steps, 4000) on rank 0, None elsewhere
    """

    def __init__(self, scale: float = 1.0, seed: int = 0, V0_std=5.0 * u.mV, *,
                 delay_e=0.0, delay_i=0.0, **kwargs):
        if not scale > 0:
            raise ValueError(f"{type(self).__name__}: 'scale' must be positive, got {scale}")
        num = int(4000 * scale)
        neuron = dict(tau=20.0 * u.ms, tau_ref=5.0 * u.ms, V_rest=-60.0 * u.mV,
                      V_reset=-60.0 * u.mV, V_th=-50.0 * u.mV, R=1 / (10.0 * u.nS),
                      spk_reset="hard")
        e = dict(weight=0.6 * 10.0 * u.nS, tau=5.0 * u.ms, out=COBA.desc(E=0.0 * u.mV),
                 delay=delay_e)
        i = dict(weight=6.7 * 10.0 * u.nS, tau=10.0 * u.ms, out=COBA.desc(E=-80.0 * u.mV),
                 delay=delay_i)
        super().__init__(num, int(0.8 * num), neuron, init.Normal(-55.0 * u.mV, V0_std), e, i,
                         drive=200.0, seed=seed, **kwargs)


class DistributedCUBANet(DistributedEINet):
    """The current-based E/I benchmark (:class:`~torchbrain.models.CUBANet`), distributed.

    Parameters as :class:`DistributedCOBANet` (weights 16.2 pA and -90 pA, no drive).
    """

    def __init__(self, scale: float = 1.0, seed: int = 0, V0_std=5.0 * u.mV, *,
                 delay_e=0.0, delay_i=0.0, **kwargs):
        if not scale > 0:
            raise ValueError(f"{type(self).__name__}: 'scale' must be positive, got {scale}")
        num = int(4000 * scale)
        neuron = dict(tau=20.0 * u.ms, tau_ref=5.0 * u.ms, V_rest=-49.0 * u.mV,
                      V_reset=-60.0 * u.mV, V_th=-50.0 * u.mV, R=1 / (10.0 * u.nS),
                      spk_reset="hard")
        e = dict(weight=1.62 / 0.1 * u.pA, tau=5.0 * u.ms, out=CUBA.desc(), delay=delay_e)
        i = dict(weight=-9.0 / 0.1 * u.pA, tau=10.0 * u.ms, out=CUBA.desc(), delay=delay_i)
        super().__init__(num, int(0.8 * num), neuron, init.Normal(-55.0 * u.mV, V0_std), e, i,
                         drive=0.0, seed=seed, **kwargs)

