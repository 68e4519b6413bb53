"""Distributed scaling benchmark: 1 vs 2 vs N processes (strong and weak scaling) of the COBA
network and of the Potjans-Diesmann microcircuit, and a model of the communication volume at the
multi-area scale.

Strong scaling keeps the network fixed and adds ranks; weak scaling keeps the neurons per rank
fixed. Networks (``--nets``):

* ``coba``: :class:`torchbrain.distributed.DistributedCOBANet`, ``--scale`` (strong) or
  ``--weak-scale`` per rank (weak) times 4000 neurons, 80 synapses per neuron;
* ``microcircuit``: :class:`torchbrain.distributed.DistributedMicrocircuit`, ``--mc-scale``
  (strong) or ``--mc-weak-scale`` per rank (weak) of the 77,169 neurons, in-degrees times
  ``--mc-k-scale`` (van Albada compensation), per-synapse delays, ``--mc-drive`` input.

Each configuration is launched with ``torchrun --standalone --nproc_per_node=W`` (gloo on CPU,
or NCCL with one GPU per rank with ``--device cuda``) and reports, per rank: build time
(connectivity from the seed), wall seconds per simulated second, the share spent in the spike
exchange, spikes and bytes exchanged, local synapses and connectivity memory. The table shows the
slowest rank.

Usage::

    python benchmarks/distributed_scaling.py --ranks 1 2 --nets coba microcircuit
    python benchmarks/distributed_scaling.py --model            # communication model only

On a machine with fewer cores than ranks the processes compete for cores: use
``--threads 1`` and at most one rank per core for meaningful scaling numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


# ---------------------------------------------------------------- communication model
def comm_model(neurons: float = 4.13e6, synapses: float = 24.2e9, ranks: int = 8,
               rate_hz: float = 3.0, dt_ms: float = 0.1, d_min_steps: int = 1,
               latency_us: float = 25.0, bandwidth_gbs: float = 100.0,
               imbalance: float = 1.1) -> dict:
    """Per-rank communication of the spike exchange of :mod:`torchbrain.distributed.network`.

    Per exchange (every ``d_min_steps`` steps) each rank receives every rank's header,
    ``3 + d_min`` int64, and every rank's spikes as int32 indices padded to the busiest rank
    (``imbalance`` = busiest / mean). Two all_gathers per exchange, each costing at least
    ``latency_us``; bandwidth time = bytes / ``bandwidth_gbs``.
    """
    spikes_per_step = neurons * rate_hz * dt_ms * 1e-3
    per_exchange_spikes = spikes_per_step * d_min_steps
    header = ranks * (3 + d_min_steps) * 8
    payload = 4 * per_exchange_spikes * imbalance
    bytes_per_step = (header + payload) / d_min_steps
    steps_per_s = 1e3 / dt_ms
    exchanges_per_s = steps_per_s / d_min_steps
    latency_s = exchanges_per_s * 2 * latency_us * 1e-6
    transfer_s = bytes_per_step * steps_per_s / (bandwidth_gbs * 1e9)
    syn_per_rank = synapses / ranks
    return {
        "neurons": neurons, "synapses": synapses, "ranks": ranks, "rate_hz": rate_hz,
        "dt_ms": dt_ms, "d_min_steps": d_min_steps,
        "spikes_per_step": spikes_per_step,
        "bytes_per_step_per_rank": bytes_per_step,
        "MB_per_sim_s_per_rank": bytes_per_step * steps_per_s / 1e6,
        "exchange_latency_s_per_sim_s": latency_s,
        "exchange_transfer_s_per_sim_s": transfer_s,
        "synapses_per_rank": syn_per_rank,
        "GB_targets_per_rank": syn_per_rank * 4 / 1e9,
        "synapse_events_per_step_per_rank": spikes_per_step * synapses / neurons / ranks,
    }


def print_model() -> None:
    print("Communication model, multi-area scale (4.13 M neurons, 24.2 G synapses), 8 GPUs, "
          "dt = 0.1 ms, 2 all_gathers of 25 us per exchange, 100 GB/s")
    print(f"{'rate':>6} {'D_min':>6} | {'spikes/step':>11} {'B/step/rank':>11} "
          f"{'MB/sim-s':>9} | {'latency s/sim-s':>15} {'transfer s/sim-s':>16} | "
          f"{'GB targets/GPU':>14} {'syn events/step/GPU':>19}")
    rows = []
    for rate in (1.0, 3.0, 10.0):
        for d_min in (1, 10):
            m = comm_model(rate_hz=rate, d_min_steps=d_min)
            rows.append(m)
            print(f"{rate:>4.0f}Hz {d_min:>6} | {m['spikes_per_step']:>11,.0f} "
                  f"{m['bytes_per_step_per_rank']:>11,.0f} {m['MB_per_sim_s_per_rank']:>9.1f} | "
                  f"{m['exchange_latency_s_per_sim_s']:>15.3f} "
                  f"{m['exchange_transfer_s_per_sim_s']:>16.4f} | "
                  f"{m['GB_targets_per_rank']:>14.1f} "
                  f"{m['synapse_events_per_step_per_rank']:>19,.0f}")
    print(json.dumps({"benchmark": "distributed_comm_model", "rows": rows}))


# ----------------------------------------------------------------------------- worker
def latency_worker(args) -> None:
    """Median time of a small all_gather and all_reduce (the floor of one spike exchange)."""
    import statistics

    import torch
    import torch.distributed as dist

    from torchbrain.distributed import init_distributed

    torch.set_num_threads(1)
    backend = "nccl" if args.device == "cuda" else "gloo"
    rank, size, device = init_distributed(backend=backend, timeout=600,
                                          device=None if args.device == "cuda" else "cpu")
    x = torch.zeros(70, dtype=torch.int64, device=device)  # a header + 100 spikes, packed
    outs = [torch.empty_like(x) for _ in range(size)]
    timings = {}
    for name, call in (("all_gather", lambda: dist.all_gather(outs, x)),
                       ("all_reduce", lambda: dist.all_reduce(x))):
        for _ in range(100):
            call()
        samples = []
        for _ in range(20):
            dist.barrier()
            tic = time.perf_counter()
            for _ in range(50):
                call()
            if device.type == "cuda":
                torch.cuda.synchronize()
            samples.append((time.perf_counter() - tic) / 50)
        timings[name] = statistics.median(samples)
    if rank == 0:
        print("RESULT " + json.dumps({"ranks": size, "backend": backend, **timings}), flush=True)
    dist.destroy_process_group()


def worker(args) -> None:
    import torch
    import torch.distributed as dist

    import torchbrain as tb
    from torchbrain import u
    from torchbrain.distributed import (
        DistributedCOBANet,
        DistributedMicrocircuit,
        init_distributed,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    backend = "nccl" if args.device == "cuda" else "gloo"
    rank, size, device = init_distributed(backend=backend, timeout=600,
                                          device=None if args.device == "cuda" else "cpu")
    tic = time.perf_counter()
    if args.net == "coba":
        scale = args.scale if args.mode == "strong" else args.weak_scale * size
        net = DistributedCOBANet(scale=scale, seed=0, delay_e=args.delay, delay_i=args.delay,
                                 device=device)
    else:
        scale = args.mc_scale if args.mode == "strong" else args.mc_weak_scale * size
        net = DistributedMicrocircuit(scale=scale, k_scale=args.mc_k_scale,
                                      drive=args.mc_drive, seed=0, device=device)
    build_s = time.perf_counter() - tic
    steps = int(round(args.duration / 0.1))
    with tb.environ.context(dt=0.1 * u.ms):
        tb.init_all_states(net)
        net.run(20)  # warm-up
        for key in net.comm_stats:
            net.comm_stats[key] = 0 if key != "seconds" else 0.0
        if size > 1:
            dist.barrier()
        tic = time.perf_counter()
        spikes = net.run(steps)
        if device.type == "cuda":
            torch.cuda.synchronize()
        run_s = time.perf_counter() - tic
    mine = {
        "rank": rank, "neurons": net.n_local, "build_s": build_s, "run_s": run_s,
        "exchange_s": net.comm_stats["seconds"], "exchanges": net.comm_stats["exchanges"],
        "bytes_received": net.comm_stats["bytes_received"],
        "spikes_local": int(spikes.sum()), "synapses": net.num_local_synapses(),
        "conn_MB": net.connectivity_bytes() / 1e6,
    }
    rows = [None] * size
    if size > 1:
        dist.all_gather_object(rows, mine)
    else:
        rows = [mine]
    if rank == 0:
        total = sum(r["spikes_local"] for r in rows)
        print("RESULT " + json.dumps({
            "net": args.net, "mode": args.mode, "ranks": size, "neurons": net.num,
            "steps": steps, "synapses": sum(r["synapses"] for r in rows),
            "d_min": net.d_min, "rate_Hz": total / net.num / (args.duration * 1e-3),
            "per_rank": rows,
        }), flush=True)
    if size > 1:
        dist.destroy_process_group()


# --------------------------------------------------------------------------- launcher
def launch(args, net: str, mode: str, ranks: int) -> dict | None:
    here = os.path.abspath(__file__)
    exe = os.path.join(os.path.dirname(sys.executable), "torchrun")
    launcher = [exe] if os.path.exists(exe) else [sys.executable, "-m", "torch.distributed.run"]
    cmd = [*launcher, "--standalone", f"--nproc_per_node={ranks}", here, "--worker",
           "--net", net, "--mode", mode, "--scale", str(args.scale),
           "--weak-scale", str(args.weak_scale), "--mc-scale", str(args.mc_scale),
           "--mc-weak-scale", str(args.mc_weak_scale), "--mc-k-scale", str(args.mc_k_scale),
           "--mc-drive", args.mc_drive, "--duration", str(args.duration),
           "--delay", str(args.delay), "--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads or 1)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    print(f"  {net} {mode} W={ranks} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--scale", type=float, default=1.0, help="strong scaling: total size / 4000")
    p.add_argument("--weak-scale", type=float, default=0.5, help="weak scaling: size/rank/4000")
    p.add_argument("--duration", type=float, default=200.0, help="simulated ms")
    p.add_argument("--delay", type=float, default=0.0, help="both delays (ms); D_min = 1+delay/dt")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--modes", nargs="+", default=["strong", "weak"])
    p.add_argument("--nets", nargs="+", default=["coba", "microcircuit"],
                   choices=["coba", "microcircuit"])
    p.add_argument("--mc-scale", type=float, default=0.1,
                   help="microcircuit, strong scaling: neurons / 77,169")
    p.add_argument("--mc-weak-scale", type=float, default=0.05,
                   help="microcircuit, weak scaling: neurons per rank / 77,169")
    p.add_argument("--mc-k-scale", type=float, default=0.1,
                   help="microcircuit in-degrees relative to the full model")
    p.add_argument("--mc-drive", choices=["poisson", "dc"], default="poisson")
    p.add_argument("--net", default="coba", help=argparse.SUPPRESS)  # or "latency"
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--model", action="store_true", help="print the communication model only")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="strong", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        latency_worker(args) if args.net == "latency" else worker(args)
        return
    if args.model:
        print_model()
        return
    results = []
    if max(args.ranks) > 1:
        w = max(args.ranks)
        lat = launch(args, "latency", "strong", w)
        if lat is not None:
            results.append({"latency": lat})
            print(f"{lat['backend']} on {w} ranks: one small all_gather "
                  f"{lat['all_gather'] * 1e6:.0f} us, all_reduce {lat['all_reduce'] * 1e6:.0f} us "
                  "(median); a spike exchange costs at least one all_gather every D_min steps")
    print(f"{'net':>12} {'mode':>6} {'ranks':>5} {'neurons':>8} {'synapses':>11} {'D_min':>5} "
          f"{'rate Hz':>7} | {'build s':>7} {'s/sim-s':>8} {'exch %':>6} {'speed-up':>8} | "
          f"{'kB/step':>8} {'syn/rank':>11} {'conn MB/rank':>12}")
    for net in args.nets:
        for mode in args.modes:
            base = None
            for ranks in args.ranks:
                res = launch(args, net, mode, ranks)
                if res is None:
                    continue
                results.append(res)
                slow = max(res["per_rank"], key=lambda r: r["run_s"])
                sim_s = args.duration * 1e-3
                wall = slow["run_s"] / sim_s
                base = wall if base is None else base
                speedup = base / wall  # strong: ideal W; weak: ideal 1
                kb = slow["bytes_received"] / res["steps"] / 1e3
                print(f"{net:>12} {mode:>6} {ranks:>5} {res['neurons']:>8} "
                      f"{res['synapses']:>11,} {res['d_min']:>5} {res['rate_Hz']:>7.2f} | "
                      f"{max(r['build_s'] for r in res['per_rank']):>7.2f} "
                      f"{wall:>8.2f} {100 * slow['exchange_s'] / slow['run_s']:>6.1f} "
                      f"{speedup:>8.2f} | {kb:>8.2f} "
                      f"{max(r['synapses'] for r in res['per_rank']):>11,} "
                      f"{max(r['conn_MB'] for r in res['per_rank']):>12.2f}", flush=True)
    print("(strong: speed-up = t(1 rank) / t(W ranks), ideal W; weak: efficiency = t(1) / t(W), "
          "ideal 1)")
    print(json.dumps({"benchmark": "distributed_scaling", "cpu_count": os.cpu_count(),
                      "threads": args.threads, "results": results}))


if __name__ == "__main__":
    main()
