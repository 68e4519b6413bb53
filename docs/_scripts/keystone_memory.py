"""Measure the numbers quoted in ``docs/keystone.rst`` (AlignPost vs AlignPre vs per-synapse state).

The COBA benchmark network (``tb.models.COBANet``: 4000·scale LIF neurons, fan-out 80, Expon
conductance synapses) is built three ways with the same connectivity:

* ``AlignPost`` — ``tb.models.COBANet`` itself: one synaptic State per post neuron and synapse type;
* ``AlignPre`` — the synapses on the presynaptic side (``AlignPreProj``): one State per
  presynaptic neuron, mapped through the connectivity as a graded product every step;
* ``per-synapse`` — one conductance per synapse (the layout the two alignments avoid), written
  out below as a small module.

For each it measures, at every size:

* bytes of synaptic State (``tb.states``) and of the connectivity buffers;
* bytes saved for the backward pass per simulated step (``torch.autograd.graph
  .saved_tensors_hooks``, storages counted once), i.e. what BPTT must keep;
* CPU time per step without autograd (one thread, median over steps, process CPU time so that
  other processes on a shared machine disturb it less);
* the E and I firing rates over the run, as a check that the three networks do the same thing.

Run from the repository root::

    python docs/_scripts/keystone_memory.py --sizes 4000 16000 --steps 1000
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import torch
from torch import nn

import torchbrain as tb
from torchbrain import u
from torchbrain.projections.align_pre import AlignPreProj


class PerSynapseExpon(tb.Module):
    """An exponential conductance with one State per synapse, summed onto the post neurons.

    Equivalent to ``AlignPostProj(comm, Expon.desc(...), COBA.desc(...), post)`` (same
    conductance at every step up to the order of floating-point sums), but its State has the
    shape of the connectivity table: ``(n_pre, fan_out)``.
    """

    def __init__(self, comm: tb.EventFixedProb, tau_ms: float, out: nn.Module, post):
        super().__init__()
        self.comm = comm
        self.tau_ms = tau_ms
        self.out = out
        self.n_post = post.num
        post.add_current_input(f"per_synapse_{id(self)}", out)
        self.g = tb.HiddenState(None)

    def init_state(self, batch_size=None):
        self.g = tb.HiddenState(torch.zeros(self.comm.indices.shape))

    def forward(self, spikes):
        decay = math.exp(-tb.environ.get_dt_value() / self.tau_ms)
        self.g = decay * self.g + spikes[:, None] * self.comm.weight
        targets = self.comm.indices.flatten().long()
        g_post = torch.zeros(self.n_post, dtype=self.g.dtype).index_add(0, targets,
                                                                       self.g.flatten())
        self.out.bind_cond(g_post)


class Slice(nn.Module):
    """``x[..., start:stop]``: selects a sub-population's spikes for a projection."""

    def __init__(self, start, stop):
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x):
        return x[..., self.start:self.stop]


def build(variant: str, scale: float, seed: int = 0):
    """The COBA network as (population, step function, [synapse-holding modules])."""
    net = tb.models.COBANet(scale=scale, seed=seed)
    if variant == "AlignPost":
        return net, net, [net.E.syn, net.I.syn]
    N, n_exc = net.N, net.num_exc
    # Same neurons and the same connectivity tables, projections rebuilt on a fresh population.
    pop = tb.LIFRef(net.num, tau=20. * u.ms, tau_ref=5. * u.ms, V_rest=-60. * u.mV,
                    V_reset=-60. * u.mV, V_th=-50. * u.mV, R=1 / (10. * u.nS),
                    V_initializer=N.V_initializer, spk_reset="hard")
    comm_e, comm_i = net.E.comm, net.I.comm
    if variant == "AlignPre":
        pe = AlignPreProj(Slice(0, n_exc), pre=pop, syn=tb.Expon.desc(n_exc, tau=5. * u.ms),
                          comm=comm_e, out=tb.COBA.desc(E=0. * u.mV), post=pop)
        pi = AlignPreProj(Slice(n_exc, net.num), pre=pop,
                          syn=tb.Expon.desc(net.num - n_exc, tau=10. * u.ms),
                          comm=comm_i, out=tb.COBA.desc(E=-80. * u.mV), post=pop)
        holder = nn.ModuleList([pop, pe, pi])

        def step():
            # the projections bind W^T g_pre (synapses advanced in pop's after-update last step)
            pe()
            pi()
            return pop(200.0)

        return holder, step, [pe.syn, pi.syn]
    if variant == "per-synapse":
        se = PerSynapseExpon(comm_e, 5.0, tb.COBA(E=0. * u.mV), pop)
        si = PerSynapseExpon(comm_i, 10.0, tb.COBA(E=-80. * u.mV), pop)
        holder = nn.ModuleList([pop, se, si])

        def step():
            spikes = pop.get_spike()
            se(spikes[:n_exc])
            si(spikes[n_exc:])
            return pop(200.0)

        return holder, step, [se, si]
    raise ValueError(variant)


def state_bytes(modules) -> int:
    return sum(v.numel() * v.element_size() for m in modules for v in tb.states(m).values()
               if isinstance(v, torch.Tensor))


def comm_bytes(holder) -> int:
    seen, total = set(), 0
    for mod in holder.modules():
        if isinstance(mod, tb.EventFixedProb) and id(mod) not in seen:
            seen.add(id(mod))
            total += sum(b.numel() * b.element_size() for b in mod.buffers())
    return total


def saved_bytes_per_step(holder, step, steps: int = 20) -> float:
    """Bytes autograd keeps for backward over ``steps`` steps, divided by ``steps``."""
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    tb.reset_all_states(holder)
    # make the drive a leaf that requires grad so that the whole rollout is recorded
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with tb.environ.context(dt=0.1):
            outs = []
            for i in range(steps):
                with tb.environ.context(t=torch.tensor(i * 0.1)):
                    outs.append(step())
    return sum(storages.values()) / steps


def time_per_step(holder, step, steps: int) -> tuple[float, torch.Tensor]:
    tb.reset_all_states(holder)
    times, spikes = [], []
    with torch.no_grad(), tb.environ.context(dt=0.1):
        for i in range(steps):
            tic = time.process_time()
            with tb.environ.context(t=torch.tensor(i * 0.1)):
                spikes.append(step().bool())
            times.append(time.process_time() - tic)
    return statistics.median(times[steps // 10:]), torch.stack(spikes)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 16000])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"1 thread, float32")
    header = ("| neurons | synapses | layout | synaptic State | connectivity | saved for backward "
              "per step | CPU time per step | E / I rate |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for n in args.sizes:
        scale = n / 4000
        for variant in ("AlignPost", "AlignPre", "per-synapse"):
            torch.manual_seed(0)
            holder, step, syn_modules = build(variant, scale)
            tb.init_all_states(holder)
            # give the neurons a grad-requiring parameter so that the rollout is recorded
            pop = next(m for m in holder.modules() if isinstance(m, tb.LIFRef))
            pop.tau.requires_grad_(True)
            saved = saved_bytes_per_step(holder, step)
            pop.tau.requires_grad_(False)
            torch.manual_seed(0)
            tb.reset_all_states(holder)
            per_step, spikes = time_per_step(holder, step, args.steps)
            n_exc = int(0.8 * n)
            late = spikes[spikes.shape[0] // 5:].float()
            rate_e = late[:, :n_exc].mean().item() * 1e4
            rate_i = late[:, n_exc:].mean().item() * 1e4
            synapses = 80 * n
            print(f"| {n:,} | {synapses:,} | {variant} | {state_bytes(syn_modules) / 1e6:.3f} MB "
                  f"| {comm_bytes(holder) / 1e6:.2f} MB | {saved / 1e6:.2f} MB "
                  f"| {per_step * 1e3:.2f} ms | {rate_e:.1f} / {rate_i:.1f} Hz |", flush=True)


if __name__ == "__main__":
    main()
