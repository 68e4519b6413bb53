"""Memory and time of online learning (EProp, DRTRL, OTTT) against BPTT, for T = 100 and 10,000.

Two models, float32, batch ``B``:

* recurrent: ``Linear(40 -> N) -> RecurrentLIF(N, adaptive) -> LeakyIntegratorReadout(N -> 2)``
  (an LSNN), trained with BPTT, :class:`~torchbrain.training.eprop.EProp` and
  :class:`~torchbrain.training.eprop.DRTRL`;
* feed-forward: ``Linear(40 -> N) -> MultiStepLIF -> Linear(N -> N) -> MultiStepLIF ->
  LeakyIntegratorReadout(N -> 2)``, trained with BPTT and
  :class:`~torchbrain.training.ottt.OTTT`.

The loss is the cross-entropy of the readout at every step (for the online learners one
``accumulate`` per step, the worst case), followed by one optimizer update. For each method and
``T`` the benchmark reports

* ``learning memory``: the peak of the bytes autograd keeps for backward passes
  (:class:`~torchbrain.training.online.SavedTensorMeter`, each storage counted once) plus the
  learner's traces and running State (:meth:`~torchbrain.training.online.OnlineLearner.
  state_bytes`); BPTT's States are inside its saved tensors;
* ``peak RSS increase`` (``--rss``, the default): the growth of the process's peak resident
  memory during the run, each run in a fresh subprocess (the input sequence is allocated before
  the baseline is taken; allocator caching makes small values noisy, about +-1 MiB);
* ``time``: CPU seconds of the run (``time.process_time``: forward, learning, one update).

With ``--bptt-max-T`` smaller than a ``T``, BPTT at that ``T`` is not run: its learning memory is
*estimated* by linear extrapolation from the measured ``T = 100`` run (marked ``est.``).

Usage::

    python benchmarks/online_memory.py                       # N=128, B=16, T=100 and 10000
    python benchmarks/online_memory.py --T 100 1000 --json out.json --no-rss
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import torchbrain as tb
from torchbrain.training import LeakyIntegratorReadout, MultiStepLIF, RecurrentLIF
from torchbrain.training.eprop import DRTRL, EProp
from torchbrain.training.online import SavedTensorMeter
from torchbrain.training.ottt import OTTT

N_IN = 40
METHODS = {"recurrent": ["bptt", "eprop", "drtrl"], "feedforward": ["bptt", "ottt"]}


def build(kind: str, n: int) -> nn.Module:
    torch.manual_seed(0)
    if kind == "recurrent":
        return nn.Sequential(nn.Linear(N_IN, n),
                             RecurrentLIF(n, tau=20.0, adaptive=True, tau_a=200.0, beta=0.1,
                                          detach_reset=True, decay_input=False, dt=1.0),
                             LeakyIntegratorReadout(n, 2, tau=20.0, dt=1.0))
    return nn.Sequential(nn.Linear(N_IN, n), MultiStepLIF(n, tau=20.0, decay_input=False, dt=1.0),
                         nn.Linear(n, n),
                         MultiStepLIF(n, tau=20.0, decay_input=False, dt=1.0),
                         LeakyIntegratorReadout(n, 2, tau=20.0, dt=1.0))


def data(T: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((T, batch, N_IN), 0.05), generator=g)
    return x, torch.randint(0, 2, (batch,), generator=g)


def _train(kind: str, method: str, T: int, n: int, batch: int) -> dict:
    model = build(kind, n)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = data(T, batch)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    with SavedTensorMeter() as meter:
        if method == "bptt":
            tb.reset_all_states(model)
            out = model(x)
            loss = F.cross_entropy(out.flatten(0, 1), y.repeat(T))
            loss.backward()
            held = 0
            del out, loss
        else:
            cls = {"eprop": EProp, "drtrl": DRTRL, "ottt": OTTT}[method]
            learner = cls(model)
            learner.reset()
            held = 0
            for t in range(T):
                out = learner.step(x[t])
                learner.accumulate(F.cross_entropy(out, y) / T)
                if t == 0 or t == T - 1:
                    held = max(held, learner.state_bytes())
        opt.step()
    seconds = time.process_time() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0  # KiB on Linux
    return {"model": kind, "method": method, "T": T, "saved_bytes": meter.peak_bytes,
            "state_bytes": held, "learning_bytes": meter.peak_bytes + held,
            "rss_increase_bytes": rss * 1024, "seconds": seconds, "estimated": False}


def run_once(kind: str, method: str, T: int, n: int, batch: int) -> dict:
    """One training pass over a sequence of ``T`` steps (after a 3-step warm-up pass, so
    one-time allocations are not counted); returns bytes and seconds."""
    _train(kind, method, 3, n, batch)
    return _train(kind, method, T, n, batch)


def run_in_subprocess(kind: str, method: str, T: int, n: int, batch: int,
                      threads: int) -> dict:
    code = (f"import json, torch; torch.set_num_threads({threads}); "
            f"import sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r}); "
            f"import online_memory as m; "
            f"print(json.dumps(m.run_once({kind!r}, {method!r}, {T}, {n}, {batch})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def mib(value: float) -> str:
    return f"{value / 2**20:10.2f}"


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--N", type=int, default=128, help="neurons per layer")
    parser.add_argument("--B", type=int, default=16, help="batch size")
    parser.add_argument("--bptt-max-T", type=int, default=None,
                        help="longest T at which BPTT runs; longer ones are extrapolated")
    parser.add_argument("--models", nargs="+", default=["recurrent", "feedforward"],
                        choices=list(METHODS))
    parser.add_argument("--no-rss", action="store_true",
                        help="run in this process and skip the RSS measurement (faster)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=str, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for kind in args.models:
        for method in METHODS[kind]:
            for T in sorted(args.T):
                if method == "bptt" and args.bptt_max_T is not None and T > args.bptt_max_T:
                    base = next(r for r in results if r["model"] == kind
                                and r["method"] == "bptt")
                    scale = T / base["T"]
                    results.append({**base, "T": T, "saved_bytes": base["saved_bytes"] * scale,
                                    "learning_bytes": base["learning_bytes"] * scale,
                                    "rss_increase_bytes": float("nan"),
                                    "seconds": base["seconds"] * scale, "estimated": True})
                    continue
                if args.no_rss:
                    r = run_once(kind, method, T, args.N, args.B)
                    r["rss_increase_bytes"] = float("nan")
                else:
                    r = run_in_subprocess(kind, method, T, args.N, args.B, args.threads)
                results.append(r)
                print(f"  {kind:11s} {method:6s} T={T:6d}: {r['seconds']:.2f} s", flush=True)
    print(f"\nN = {args.N}, B = {args.B}, float32, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {args.threads} thread(s)\n")
    print(f"{'model':11s} {'method':6s} {'T':>6s} {'learning MiB':>12s} {'(traces MiB)':>12s} "
          f"{'RSS +MiB':>10s} {'CPU s':>8s}")
    for r in results:
        est = " est." if r["estimated"] else ""
        print(f"{r['model']:11s} {r['method']:6s} {r['T']:6d} {mib(r['learning_bytes']):>12s} "
              f"{mib(r['state_bytes']):>12s} {mib(r['rss_increase_bytes']):>10s} "
              f"{r['seconds']:8.2f}{est}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
