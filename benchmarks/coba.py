"""COBA E/I benchmark: wall seconds per simulated second, torchbrain vs BrainPy, side by side.

Runs the Vogels–Abbott network (4000·scale LIF neurons, 80 synapses per neuron, dt = 0.1 ms)
for ``--duration`` ms at each size and prints a table (size, wall s per simulated s, steps/s,
E/I rates, compile time) and a JSON line. BrainPy 2.9 (``brainpy.state``) is measured in the same
run when it is importable (``pip install "brainpy[cpu]"``); otherwise its column is marked
missing, never guessed.

Usage::

    python benchmarks/coba.py --sizes 4000 8000 16000 32000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def run_torchbrain(num: int, duration_ms: float, chunk: int, device: str) -> dict:
    import torchbrain as tb
    from torchbrain import u
    from torchbrain.models import COBANet

    torch.manual_seed(0)
    net = COBANet(scale=num / 4000, seed=0, device=device)
    tb.init_all_states(net)
    runner = tb.NetworkRunner(net, chunk=chunk, compile=True)  # the compiled step, measured
    steps = int(round(duration_ms / 0.1))
    with tb.environ.context(dt=0.1 * u.ms):
        tic = time.perf_counter()
        runner.run(chunk)  # compile (and warm up) outside the timed region
        compile_s = time.perf_counter() - tic
        tic = time.perf_counter()
        spikes = runner.run(steps, t0=chunk * 0.1)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        wall = time.perf_counter() - tic
    seconds = duration_ms / 1000
    s = spikes.float()
    return {
        "wall_per_sim_s": wall / seconds,
        "steps_per_s": steps / wall,
        "rate_E_Hz": s[:, : net.num_exc].mean().item() / 1e-4,
        "rate_I_Hz": s[:, net.num_exc:].mean().item() / 1e-4,
        "compile_s": compile_s,
    }


def run_brainpy(num: int, duration_ms: float) -> dict | None:
    try:
        import brainpy
        import brainstate
        import braintools
        import brainunit as bu
    except ImportError:
        return None

    class EINet(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.n_exc = int(0.8 * num)
            self.n_inh = num - self.n_exc
            self.N = brainpy.state.LIFRef(
                num, V_rest=-60.0 * bu.mV, V_th=-50.0 * bu.mV, V_reset=-60.0 * bu.mV,
                tau=20.0 * bu.ms, tau_ref=5.0 * bu.ms, R=1 / (10.0 * bu.nS),
                V_initializer=braintools.init.Normal(-55.0 * bu.mV, 5.0 * bu.mV),
            )
            self.E = brainpy.state.AlignPostProj(
                comm=brainstate.nn.EventFixedProb(self.n_exc, num, 80 / num, 6.0 * bu.nS),
                syn=brainpy.state.Expon.desc(num, tau=5.0 * bu.ms),
                out=brainpy.state.COBA.desc(E=0.0 * bu.mV), post=self.N,
            )
            self.I = brainpy.state.AlignPostProj(
                comm=brainstate.nn.EventFixedProb(self.n_inh, num, 80 / num, 67.0 * bu.nS),
                syn=brainpy.state.Expon.desc(num, tau=10.0 * bu.ms),
                out=brainpy.state.COBA.desc(E=-80.0 * bu.mV), post=self.N,
            )

        def update(self, t):
            with brainstate.environ.context(t=t):
                spk = self.N.get_spike() != 0.0
                self.E(spk[: self.n_exc])
                self.I(spk[self.n_exc:])
                self.N(200.0 * bu.pA)
                return self.N.get_spike()

    net = EINet()
    brainstate.nn.init_all_states(net)
    steps = int(round(duration_ms / 0.1))
    with brainstate.environ.context(dt=0.1 * bu.ms):
        times = bu.math.arange(0.0 * bu.ms, duration_ms * bu.ms, brainstate.environ.get_dt())
        tic = time.perf_counter()
        brainstate.transform.for_loop(net.update, times[:10]).block_until_ready()
        compile_s = time.perf_counter() - tic
        tic = time.perf_counter()
        spikes = brainstate.transform.for_loop(net.update, times)
        spikes.block_until_ready()
        wall = time.perf_counter() - tic
    import numpy as np

    s = np.asarray(spikes, dtype=np.float32)
    return {
        "wall_per_sim_s": wall / (duration_ms / 1000),
        "steps_per_s": steps / wall,
        "rate_E_Hz": float(s[:, : net.n_exc].mean() / 1e-4),
        "rate_I_Hz": float(s[:, net.n_exc:].mean() / 1e-4),
        "compile_s": compile_s,
    }


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
