"""Resident memory of recording a long run: StreamingMonitor (chunks to disk) vs Monitor (RAM).

A population of ``N`` LIF neurons driven by noisy currents is simulated for 10 s and 100 s of
model time at ``dt``, recording ``V`` (float32, every step) and the spikes (as events for the
stream, dense bool for the in-memory Monitor). Each (monitor, duration) runs in a fresh
subprocess that reports

* ``peak RSS increase``: growth of the process's peak resident memory (``VmHWM``) from just
  before the run (States and input generator allocated) to its end;
* ``on disk``: bytes the stream wrote;
* ``time``: wall seconds of the run (noisy on a shared machine; only same-run ratios count).

A flat streaming column (about the same at 10 s and 100 s) is the claim; the Monitor column
grows with ``T x N x 5`` bytes.

Usage::

    python benchmarks/streaming_memory.py                  # N=256, dt=1 ms, 10 s and 100 s
    python benchmarks/streaming_memory.py --N 1000 --dt 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def _hwm_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _child(kind: str, seconds: float, N: int, dt: float, chunk: int) -> dict:
    import torch

    import torchbrain as tb
    from torchbrain import u
    from torchbrain.drivers.streaming import StreamingMonitor

    torch.set_num_threads(1)
    torch.manual_seed(0)
    neuron = tb.LIF(N, tau=10 * u.ms, R=1 * u.gigaohm, V_th=1 * u.mV, spk_reset="hard")
    tb.init_all_states(neuron)
    steps = round(seconds * 1000 / dt)
    out = tempfile.mkdtemp(prefix="tb_stream_")
    sources = {"V": neuron, "spike": neuron.get_spike}
    if kind == "stream":
        mon = StreamingMonitor(sources, path=out, chunk=chunk, events=["spike"])
    else:
        mon = tb.Monitor(sources, index=None, dtype=None)
    noise = torch.empty(N)
    base = _hwm_kib()
    start = time.perf_counter()
    with torch.no_grad(), tb.environ.context(dt=dt * u.ms):
        for _ in range(steps):
            neuron(noise.normal_(1.2, 3.0))
            mon.record()
    if kind == "stream":
        mon.close()
    elapsed = time.perf_counter() - start
    disk = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    return {"kind": kind, "seconds": seconds, "steps": steps,
            "peak_rss_increase_mib": (_hwm_kib() - base) / 1024,
            "disk_mib": disk / 2**20 if kind == "stream" else 0.0, "time_s": elapsed}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--N", type=int, default=256)
    parser.add_argument("--dt", type=float, default=1.0, help="ms")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 100.0])
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, seconds = args.child[0], float(args.child[1])
        print(json.dumps(_child(kind, seconds, args.N, args.dt, args.chunk)))
        return
    rows = []
    for seconds in args.seconds:
        for kind in ("stream", "monitor"):
            cmd = [sys.executable, __file__, "--N", str(args.N), "--dt", str(args.dt),
                   "--chunk", str(args.chunk), "--child", kind, str(seconds)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"N={args.N}, dt={args.dt} ms, chunk={args.chunk}, 1 torch thread")
    print(f"{'monitor':>8} {'model s':>8} {'steps':>8} {'peak RSS +MiB':>14} {'disk MiB':>9} "
          f"{'time s':>7}")
    for r in rows:
        print(f"{r['kind']:>8} {r['seconds']:>8.0f} {r['steps']:>8} "
              f"{r['peak_rss_increase_mib']:>14.1f} {r['disk_mib']:>9.1f} {r['time_s']:>7.1f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
