"""COBA E/I benchmark: wall seconds per simulated second, torchbrain vs BrainPy, side by side.

Runs the Vogels–Abbott network (4000·scale LIF neurons, 80 synapses per neuron, dt = 0.1 ms)
for ``--duration`` ms at each size and prints a table (size, wall s per simulated s, steps/s,
E/I rates, compile time) and a JSON line. BrainPy 2.9 (``brainpy.state``) is measured in the same
run when it is importable (``pip install "brainpy[cpu]"``; BrainPy 2.9 needs Python >= 3.12);
otherwise its column is marked missing, never guessed. ``side_by_side.py`` runs both (and Brian2
and NEST) each in its own environment.

Usage::

    python benchmarks/coba.py --sizes 4000 8000 16000 32000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

# the runners live in benchmarks/peers (one implementation each, shared with side_by_side.py)
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from brainpy_ei import run as run_brainpy_model  # noqa: E402
from torchbrain_ei import run as run_torchbrain_model  # noqa: E402


def run_torchbrain(num: int, duration_ms: float, chunk: int, device: str) -> dict:
    return run_torchbrain_model("coba", num, duration_ms, chunk=chunk, device=device)


def run_brainpy(num: int, duration_ms: float) -> dict | None:
    return run_brainpy_model("coba", num, duration_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 8000, 16000, 32000])
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms")
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-brainpy", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for num in args.sizes:
        row = {"neurons": num, "torchbrain": run_torchbrain(num, args.duration, args.chunk,
                                                            args.device)}
        row["brainpy"] = None if args.no_brainpy else run_brainpy(num, args.duration)
        rows.append(row)
        tb_ = row["torchbrain"]
        bp = row["brainpy"]
        ratio = f"{tb_['wall_per_sim_s'] / bp['wall_per_sim_s']:.2f}" if bp else "n/a"
        bp_text = f"{bp['wall_per_sim_s']:.3f}" if bp else "not installed"
        print(f"{num:>8} neurons | torchbrain {tb_['wall_per_sim_s']:.3f} s/sim-s "
              f"({tb_['steps_per_s']:,.0f} steps/s, E {tb_['rate_E_Hz']:.1f} Hz, "
              f"I {tb_['rate_I_Hz']:.1f} Hz, compile {tb_['compile_s']:.1f} s) | "
              f"BrainPy {bp_text} | ratio {ratio}", flush=True)
    print(json.dumps({"benchmark": "coba", "threads": torch.get_num_threads(),
                      "device": args.device, "rows": rows}))


if __name__ == "__main__":
    main()
