"""The Open Neuromorphic layer benchmark: one ``Linear(N, N)`` + LIF layer, forward + backward.

A batch of ``B`` random input sequences of ``T`` steps, shape ``(T, B, N)``, goes through
``Linear(N, N)`` (one GEMM over the whole sequence) and a layer of LIF neurons; the loss is the
sum of the output spikes and one backward pass follows. Timed, as the median CPU time
(``time.process_time``) of ``--repeats`` runs after ``--warmup`` runs:

* ``linear only``: the Linear and its backward pass (the floor every framework pays);
* ``torchbrain fused``: :class:`torchbrain.training.MultiStepLIF` with the fused op
  ``torchbrain::multistep_lif``;
* ``torchbrain loop``: the same layer with ``fused=False`` (step-by-step autograd loop);
* ``snnTorch``, ``SpikingJelly``, ``Norse``: when importable (missing ones are listed with a
  note; they are not dependencies of torchbrain).

All LIF layers use the decay 0.9 per step and no input scaling (snnTorch's ``Leaky(beta=0.9)``,
SpikingJelly's ``LIFNode(tau=10, decay_input=False)``, torchbrain's ``decay_input=False`` with
``tau = -1 ms / ln 0.9``). Norse runs ``LIFBoxCell`` (a plain LIF, decay 0.9, but its Euler
step also scales the input by 0.1, so it fires less) stepped over ``unbind(0)``. The table also
gives the memory held for the backward pass (the bytes of the distinct tensors autograd saved,
measured with ``saved_tensors_hooks``) and the mean firing rate.

The "linear only" row backpropagates ``lin(x).sum()``, whose output gradient is an expanded
(stride-0) tensor; the spiking layers hand the Linear a dense gradient instead, which its GEMM
may process faster, so the row is a reference point rather than a strict lower bound.

Usage::

    python benchmarks/train_layer.py                     # N=512, B=16, T=500, 1 thread
    python benchmarks/train_layer.py --N 1024 --json out.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import torchbrain as tb
from torchbrain.training import MultiStepLIF

DECAY = 0.9


def _saved_bytes(fn: Callable[[], torch.Tensor]) -> tuple[int, torch.Tensor]:
    """Bytes of the distinct storages autograd saves while ``fn`` runs, and its output."""
    seen: dict[int, int] = {}

    def pack(t):
        try:
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
        except (RuntimeError, NotImplementedError):
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


class Candidate:
    def __init__(self, name: str, forward: Callable[[torch.Tensor], torch.Tensor],
                 params: list[torch.Tensor], reset: Callable[[], None] = lambda: None):
        self.name, self.forward, self.params, self.reset = name, forward, params, reset

    def step(self, x: torch.Tensor) -> torch.Tensor:
        self.reset()
        out = self.forward(x)
        out.sum().backward()
        for p in self.params:
            p.grad = None
        return out


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _linear(N: int, seed: int) -> nn.Linear:
    """The same initial weights for every candidate (the same activity)."""
    torch.manual_seed(seed)
    return nn.Linear(N, N)


def candidates(N: int, seed: int = 0) -> tuple[list[Candidate], list[str]]:
    found, missing = [], []

    lin = _linear(N, seed)
    found.append(Candidate("linear only", lambda x: lin(x), list(lin.parameters())))

    tau = -1.0 / math.log(DECAY)
    for fused, label in ((True, "torchbrain fused"), (False, "torchbrain loop")):
        lin_t = _linear(N, seed)
        lif = MultiStepLIF(N, tau=tau, decay_input=False, fused=fused, dt=1.0)
        model = nn.Sequential(lin_t, lif)
        found.append(Candidate(label, model, list(model.parameters()),
                               reset=lambda model=model: tb.reset_all_states(model)))

    try:
        import snntorch as snn
    except ImportError:
        missing.append("snnTorch (pip install snntorch)")
    else:
        lin_s = _linear(N, seed)
        leaky = snn.Leaky(beta=DECAY)

        def snn_forward(x, lin_s=lin_s, leaky=leaky):
            cur = lin_s(x)
            mem = torch.zeros_like(cur[0])
            spikes = []
            for c in cur.unbind(0):
                s, mem = leaky(c, mem)
                spikes.append(s)
            return torch.stack(spikes)

        found.append(Candidate(f"snnTorch {snn.__version__}", snn_forward,
                               list(lin_s.parameters())))

    try:
        from spikingjelly.activation_based import functional as sj_functional
        from spikingjelly.activation_based import neuron as sj_neuron
    except ImportError:
        missing.append("SpikingJelly (pip install spikingjelly)")
    else:
        import spikingjelly

        lin_j = _linear(N, seed)
        node = sj_neuron.LIFNode(tau=1.0 / (1.0 - DECAY), decay_input=False, step_mode="m")
        model_j = nn.Sequential(lin_j, node)
        version = getattr(spikingjelly, "__version__", "") or _dist_version("spikingjelly")
        found.append(Candidate(f"SpikingJelly {version}".strip(), model_j,
                               list(model_j.parameters()),
                               reset=lambda m=model_j: sj_functional.reset_net(m)))

    try:
        import norse
        import norse.torch as norse_torch
    except ImportError:
        missing.append("Norse (pip install norse)")
    else:
        lin_n = _linear(N, seed)
        # A plain LIF (no synaptic filter) with the decay 0.9 per step: dt * tau_mem_inv = 0.1.
        cell = norse_torch.LIFBoxCell(
            norse_torch.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0)), dt=0.001)

        def norse_forward(x, lin_n=lin_n, cell=cell):
            state, spikes = None, []
            for c in lin_n(x).unbind(0):
                s, state = cell(c, state)
                spikes.append(s)
            return torch.stack(spikes)

        version = getattr(norse, "__version__", "")
        found.append(Candidate(f"Norse {version} LIFBox".strip(), norse_forward,
                               list(lin_n.parameters())))
    return found, missing


def run(N: int = 512, B: int = 16, T: int = 500, repeats: int = 7, warmup: int = 2,
        threads: int = 1, seed: int = 0, verbose: bool = True) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x = torch.rand(T, B, N)
    cands, missing = candidates(N, seed)
    rows = []
    for cand in cands:
        for _ in range(warmup):
            cand.step(x)
        times = []
        for _ in range(repeats):
            start = time.process_time()
            cand.step(x)
            times.append(time.process_time() - start)
        cand.reset()
        saved, out = _saved_bytes(lambda cand=cand: cand.forward(x))
        rate = None if cand.name == "linear only" else float(out.detach().float().mean())
        del out
        rows.append({"name": cand.name, "median_s": statistics.median(times),
                     "min_s": min(times), "saved_MiB": saved / 2**20, "rate": rate})
        if verbose:
            print(f"  done: {cand.name}", flush=True)
    result = {
        "benchmark": "Linear(N, N) + LIF, forward + backward (Open Neuromorphic layer benchmark)",
        "N": N, "B": B, "T": T, "threads": threads, "repeats": repeats,
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "results": rows, "missing": missing,
    }
    if verbose:
        print_table(result)
    return result


def print_table(result: dict) -> None:
    print(f"\nLinear({result['N']}, {result['N']}) + LIF, B={result['B']}, T={result['T']}, "
          f"{result['threads']} thread(s), CPU-time median of {result['repeats']} runs "
          f"(torch {result['torch']})")
    base = next((r["median_s"] for r in result["results"] if r["name"] == "linear only"), None)
    print(f"{'framework':<24}{'median ms':>11}{'min ms':>9}{'x linear':>10}{'saved MiB':>11}"
          f"{'rate':>8}")
    for r in result["results"]:
        ratio = f"{r['median_s'] / base:.2f}" if base else "-"
        rate = "-" if r["rate"] is None else f"{r['rate']:.3f}"
        print(f"{r['name']:<24}{1e3 * r['median_s']:>11.1f}{1e3 * r['min_s']:>9.1f}"
              f"{ratio:>10}{r['saved_MiB']:>11.1f}{rate:>8}")
    for note in result["missing"]:
        print(f"not measured (not installed): {note}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=512)
    parser.add_argument("--B", type=int, default=16)
    parser.add_argument("--T", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=str, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    result = run(N=args.N, B=args.B, T=args.T, repeats=args.repeats, warmup=args.warmup,
                 threads=args.threads)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return result


if __name__ == "__main__":
    main()
