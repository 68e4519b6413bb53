"""Potjans–Diesmann (2014) microcircuit: build time, real-time factor, per-layer rates, memory.

Builds :class:`torchbrain.models.Microcircuit` at ``--scale`` (neurons) and ``--k-scale``
(in-degrees), simulates ``--transient`` ms (discarded) and then ``--duration`` ms with
:class:`torchbrain.NetworkRunner` at dt = 0.1 ms, and prints the mean rate of every population
next to the published full-scale rates, the build time, the real-time factor (wall seconds per
simulated second, after compilation), the connectivity's bytes per synapse and the peak resident
memory, then one JSON line.

Usage::

    python benchmarks/microcircuit.py --scale 0.1 --duration 1000 --threads 1
    python benchmarks/microcircuit.py --scale 1 --duration 1000 --chunk 1    # full model
    python benchmarks/microcircuit.py --scale 1 --device cuda --chunk 10      # on a GPU

Compilation: the chunk of ``--chunk`` steps is compiled once (``--eager`` skips it). The Poisson
source makes compilation slower on the CPU (measured with a cold cache on the 2-core machine:
16 s for a chunk of 1 step at full scale, about 2 minutes for a chunk of 10), so ``--chunk 1``
is the default; at large scales the per-step work dominates anyway.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--k-scale", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=1000.0, help="measured, ms")
    parser.add_argument("--transient", type=float, default=200.0, help="discarded, ms")
    parser.add_argument("--drive", choices=("poisson", "dc"), default="poisson")
    parser.add_argument("--no-delays", action="store_true",
                        help="every synapse gets its type's mean delay")
    parser.add_argument("--chunk", type=int, default=1)
    parser.add_argument("--eager", action="store_true", help="do not compile")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import torchbrain as tb
    from torchbrain import u
    from torchbrain.models.microcircuit import (
        NEST_REFERENCE_RATES,
        POPULATIONS,
        PUBLISHED_RATES,
        Microcircuit,
    )

    dt = 0.1
    tic = time.perf_counter()
    net = Microcircuit(scale=args.scale, k_scale=args.k_scale, drive=args.drive,
                       delays=not args.no_delays, seed=args.seed, device=args.device)
    build_s = time.perf_counter() - tic
    tb.init_all_states(net)

    class Counts(torch.nn.Module):
        """One step of the network, reduced to spikes per population (small records)."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self):
            return self.net.population_counts(self.net())

    runner = tb.NetworkRunner(Counts(net), chunk=args.chunk, compile=not args.eager,
                              record_dtype=torch.float32)

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    transient = int(round(args.transient / dt))
    steps = int(round(args.duration / dt))
    with tb.environ.context(dt=dt * u.ms):
        tic = time.perf_counter()
        runner.run(args.chunk)  # compilation (part of the transient)
        sync()
        compile_s = time.perf_counter() - tic
        done = args.chunk
        if transient > done:
            runner.run(transient - done, t0=done * dt)
            done = transient
        sync()
        tic = time.perf_counter()
        counts = runner.run(steps, t0=done * dt)
        sync()
        wall = time.perf_counter() - tic

    rates = net.population_rates(counts.cpu())
    rtf = wall / (args.duration / 1000.0)
    conn = net.conn
    peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"Microcircuit scale={args.scale} k_scale={args.k_scale} drive={args.drive} "
          f"delays={not args.no_delays}: {net.num:,} neurons, {conn.num_synapses:,} synapses, "
          f"{conn.n_slots} delay slots")
    print(f"build {build_s:.1f} s | compile {compile_s:.1f} s | simulate {args.duration:g} ms "
          f"in {wall:.2f} s: real-time factor {rtf:.2f} (wall s per simulated s) | "
          f"{conn.bytes_per_synapse:.2f} bytes/synapse | peak RSS {peak_rss_gb:.2f} GB | "
          f"threads {torch.get_num_threads()} | load {os.getloadavg()[0]:.2f}")
    print(f"{'population':>10} {'rate (Hz)':>10} {'published':>10} {'NEST ref.':>10}")
    for name, ref, nest in zip(POPULATIONS, PUBLISHED_RATES, NEST_REFERENCE_RATES, strict=True):
        print(f"{name:>10} {rates[name]:>10.2f} {ref:>10.2f} {nest:>10.3f}")
    print(json.dumps({
        "benchmark": "microcircuit", "scale": args.scale, "k_scale": args.k_scale,
        "drive": args.drive, "delays": not args.no_delays, "device": args.device,
        "threads": torch.get_num_threads(), "load_avg_1min": os.getloadavg()[0],
        "neurons": net.num, "synapses": conn.num_synapses, "chunk": args.chunk,
        "compiled": not args.eager, "build_s": build_s, "compile_s": compile_s,
        "transient_ms": args.transient, "duration_ms": args.duration, "wall_s": wall,
        "real_time_factor": rtf, "bytes_per_synapse": conn.bytes_per_synapse,
        "peak_rss_gb": peak_rss_gb, "rates_hz": rates,
        "published_rates_hz": dict(zip(POPULATIONS, PUBLISHED_RATES, strict=True)),
        "nest_reference_rates_hz": dict(zip(POPULATIONS, NEST_REFERENCE_RATES, strict=True)),
    }))


if __name__ == "__main__":
    main()
