"""What every peer runner shares: the benchmark networks' parameters, the command line, the output.

Stdlib only: the runners import this from the virtual environment of their own simulator
(Brian2 needs numpy < 2, BrainPy 2.9 Python >= 3.12), so nothing here may need torch or numpy.

Each runner simulates one network once and prints one JSON object as its **last line of
stdout**: ``wall_per_sim_s`` (wall seconds per simulated second of the timed run, compilation
and C++ build excluded), ``steps_per_s``, ``rate_E_Hz`` / ``rate_I_Hz`` (mean over the run),
``compile_s`` (JIT or C++ build, when the simulator has one), ``threads``, ``peak_rss_mb`` and
the simulator's version. The driver (``benchmarks/side_by_side.py``) reads that line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys

#: Integration step of every benchmark (ms).
DT_MS = 0.1

#: Synapses per presynaptic neuron (fixed out-degree; the benchmark's 2 % of 4000).
FAN_OUT = 80

#: Fraction of excitatory neurons (the first ones).
EXC_FRACTION = 0.8

#: The Vogels–Abbott / Brette et al. (2007) networks as ``torchbrain.models`` builds them
#: (COBANet, CUBANet, COBAHHNet), in ms, mV, nS, pA, pF. ``w_e``/``w_i`` are conductance jumps
#: (nS) for the conductance-based networks and current jumps (pA) for CUBA.
NETWORKS = {
    "coba": dict(tau_m=20.0, tau_ref=5.0, E_L=-60.0, V_reset=-60.0, V_th=-50.0, g_L=10.0,
                 I_e=200.0, tau_e=5.0, tau_i=10.0, E_e=0.0, E_i=-80.0, w_e=6.0, w_i=67.0,
                 V0_mean=-55.0, V0_std=5.0),
    # CUBA: jumps of R*I of 1.62 mV and -9 mV through R = 1/g_L = 0.1 GOhm
    "cuba": dict(tau_m=20.0, tau_ref=5.0, E_L=-49.0, V_reset=-60.0, V_th=-50.0, g_L=10.0,
                 I_e=0.0, tau_e=5.0, tau_i=10.0, w_e=16.2, w_i=-90.0,
                 V0_mean=-55.0, V0_std=5.0),
    # COBAHH (benchmark 3): Traub–Miles HH, spike = upward crossing of -20 mV, no external
    # drive, random initial V and conductances; gates start at their steady state
    "cobahh": dict(C=200.0, g_L=10.0, g_Na=20000.0, g_K=6000.0, E_L=-60.0, E_K=-90.0,
                   E_Na=50.0, V_T=-63.0, V_th=-20.0, tau_e=5.0, tau_i=10.0, E_e=0.0,
                   E_i=-80.0, w_e=6.0, w_i=67.0, V0_mean=-65.0, V0_std=5.0,
                   ge0_mean=40.0, ge0_std=15.0, gi0_mean=200.0, gi0_std=120.0),
}


def parse_args(description: str, models=tuple(NETWORKS),
               build_dir: bool = False) -> argparse.Namespace:
    """The command line every E/I runner takes (``build_dir``: a runner that builds code)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", choices=models, default="coba")
    parser.add_argument("--neurons", type=int, default=4000)
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms (timed)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    if build_dir:
        parser.add_argument("--build-dir", default=None,
                            help="keep the generated code here between runs (default: a "
                                 "fresh temporary directory, removed afterwards)")
    args = parser.parse_args()
    if args.neurons < 10:
        parser.error(f"--neurons must be at least 10, got {args.neurons}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


def split(num: int) -> tuple[int, int]:
    """Excitatory and inhibitory counts of a network of ``num`` neurons (torchbrain's rule)."""
    num_exc = int(EXC_FRACTION * num)
    return num_exc, num - num_exc


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its waited-for children (MiB, Linux)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def rates_hz(spikes_exc: float, spikes_inh: float, num: int, duration_ms: float) -> dict:
    """Mean E and I rates from spike totals over ``duration_ms``."""
    num_exc, num_inh = split(num)
    seconds = duration_ms / 1000.0
    return {"rate_E_Hz": spikes_exc / (num_exc * seconds),
            "rate_I_Hz": spikes_inh / (num_inh * seconds)}


def emit(simulator: str, version: str, args: argparse.Namespace, wall_s: float,
         **fields) -> None:
    """Print the runner's result as the last line of stdout (one JSON object)."""
    seconds = args.duration / 1000.0
    result = {
        "simulator": simulator, "version": version, "model": args.model,
        "neurons": args.neurons, "duration_ms": args.duration, "threads": args.threads,
        "wall_s": wall_s, "wall_per_sim_s": wall_s / seconds,
        "steps_per_s": round(args.duration / DT_MS) / wall_s,
        **fields, "peak_rss_mb": peak_rss_mb(), "python": sys.version.split()[0],
        "pid": os.getpid(),
    }
    sys.stdout.flush()
    print(json.dumps(result), flush=True)
