"""GPU check of the ELL STDP kernels: correctness first, then the update's timing.

Meant to be called by ``benchmarks/gpu/gpu_check.py`` (``run(check, log, sync, left, dry_run)``), or
run alone from the repository root::

    PYTHONUNBUFFERED=1 python benchmarks/gpu/check_stdp.py [--budget 120] [--dry-run-cpu]

What :func:`run` does, in this order:

1. the kernels (:mod:`torchbrain.kernels.stdp_ell`) against the op's torch path on the same
   device and against the torch op in float64 on the CPU, at ragged and realistic sizes: both
   rules, float32 and float64, int32 and int64 tables, batches, no spikes, all spiking, a
   crowded target (duplicates and one long in-synapse list). float64: within 1e-12 of the CPU
   op. float32: within float32 rounding of the CUDA torch path and, three-way, no further from
   the float64 result than 4x the torch path's own error (+1e-7); the share of weights
   bit-equal to the CUDA torch path is reported (expected 1.0 with one batch entry: the same
   operations in the same order). Each case runs twice: the kernels have no atomics on the
   weights, so the bits must not move (the compaction lists' order does);
2. the op through its public function (the registered CUDA kernel) and the update captured in
   a CUDA graph, replayed on new spikes (proves no host synchronisation);
3. the timing at the size of the brief (``n_pre = n_post = 100k``, ``K = 100``, 1 % and 5 % of
   both sides spiking, one batch entry; also the multiplicative rule and a batch of 4): the
   kernel launcher called from Python, the same launches replayed from a CUDA graph, and the
   op's torch path (which reads the number of events on the host, twice); median of CUDA-event
   timings, with the synapses changed per call and synapse updates per second.

``dry_run=True`` runs the same code on CPU tensors through Triton's interpreter at tiny sizes
(the registered function is called directly, no CUDA graph, host-clock timings): it checks this
script, not the GPU, and its timings mean nothing.
"""

from __future__ import annotations

import functools
import importlib
import math
import statistics
import sys

from check_harness import call_times  # the sibling file (this directory is on sys.path)

#: The benchmark size: presynaptic = postsynaptic neurons, fan-out.
BENCH_N, BENCH_K = 100_000, 100
#: The tiny stand-in of the dry run.
DRY_N, DRY_K = 300, 12


def run(check, log, sync, left, dry_run: bool = False, reps: int = 30, warmup: int = 5) -> dict:
    """Run the checks and the benchmark; returns a JSON-ready dict.

    Parameters
    ----------
    check : callable
        ``check(name)`` -> context manager that records PASS/FAIL of the block it wraps (an
        exception inside is a failure; the caller goes on with the next block).
    log : callable
        ``print``-like.
    sync : callable
        Waits for the device (no-op in the dry run).
    left : callable
        ``left()`` -> seconds of the caller's budget left; the benchmark is skipped below 30 s.
    dry_run : bool
        CPU tensors through Triton's interpreter (which must be on for
        ``torchbrain.kernels.stdp_ell``), tiny sizes.
    reps, warmup : int
        Timed and untimed repetitions per benchmark row.
    """
    import torch

    F = importlib.import_module("torchbrain.ops.stdp")
    K = importlib.import_module("torchbrain.kernels.stdp_ell")
    if dry_run and not K._interpreted():
        raise RuntimeError("check_stdp: the dry run needs the kernels imported with "
                           "TRITON_INTERPRET=1")
    dev = torch.device("cpu" if dry_run else "cuda")
    results: dict = {"checks": {}, "bench": []}
    gen = torch.Generator(device=dev).manual_seed(2024)

    def case(n_pre, n_post, k, batch=(), p=0.05, dtype=torch.float32, index_dtype=torch.int32,
             mult=False, crowded=False):
        idx = torch.randint(0, n_post, (n_pre, k), generator=gen, device=dev)
        if crowded:  # a third of every row onto neuron 0: long slot list, duplicates
            idx[:, ::3] = 0
        idx = idx.to(index_dtype)
        indptr, slots = F.ell_post_csr(idx, n_post)
        w = torch.rand(n_pre, k, generator=gen, device=dev, dtype=dtype)

        def spikes(n):
            return (torch.rand(*batch, n, generator=gen, device=dev) < p).to(dtype)

        def trace(n):
            return 2 * torch.rand(*batch, n, generator=gen, device=dev, dtype=dtype)

        params = [torch.tensor(v, device=dev, dtype=dtype) for v in (0.05, 0.06, 0.1, 0.9)]
        return [w, idx, indptr, slots, spikes(n_pre), spikes(n_post), trace(n_pre),
                trace(n_post), *params, mult]

    def with_weight(args, w):
        return [w, *args[1:]]

    def torch_path(args, dtype=None, device=None):
        """The op's torch implementation on a copy of the weights (optionally upcast/moved)."""
        moved = []
        for a in args:
            if isinstance(a, torch.Tensor):
                a = a.to(device or a.device)
                if dtype is not None and a.is_floating_point():
                    a = a.to(dtype)
            moved.append(a)
        moved[0] = moved[0].clone()
        F._stdp_ell_update_torch(*moved)
        return moved[0]

    def kernel(args, **config):
        w = args[0].clone()
        K.stdp_ell_update_(*with_weight(args, w), **config)
        return w

    def max_abs(a, b):
        return (a.double().cpu() - b.double().cpu()).abs().max().item() if a.numel() else 0.0

    def bit_share(a, b):
        return (a.cpu() == b.cpu()).double().mean().item() if a.numel() else 1.0

    # ------------------------------------------------------------------ 1. values
    small = (37, 29, 7)
    big = (DRY_N, DRY_N, DRY_K) if dry_run else (20_011, 15_013, 100)
    cases = [
        dict(size=small, batch=(3,), p=0.3, mult=False),
        dict(size=small, batch=(3,), p=0.3, mult=True, dtype=torch.float64),
        dict(size=big, p=0.05, mult=False),
        dict(size=big, p=0.05, mult=True),
        dict(size=big, p=0.05, mult=True, dtype=torch.float64, index_dtype=torch.int64),
        dict(size=big, batch=(4,), p=0.02, mult=False),
        dict(size=big, batch=(4,), p=0.02, mult=True),
        dict(size=big, p=0.0, mult=True),
        dict(size=big, p=1.0, mult=True),
        dict(size=big, p=0.05, mult=False, crowded=True),
    ]
    for c in cases:
        c = dict(c)
        size = c.pop("size")
        name = "stdp " + ",".join(f"{k}={v}" for k, v in [("size", size), *c.items()])
        with check(name):
            args = case(*size, **c)
            got = kernel(args)
            again = kernel(args)
            assert torch.equal(got, again), "two runs of the same input differ"
            same_device = torch_path(args)
            ref64 = torch_path(args, torch.float64, torch.device("cpu"))
            row = {"bit_equal_vs_torch_path": bit_share(got, same_device),
                   "max_abs_vs_torch_path": max_abs(got, same_device),
                   "max_abs_vs_f64": max_abs(got, ref64),
                   "torch_path_max_abs_vs_f64": max_abs(same_device, ref64),
                   "changed_share": 1.0 - bit_share(got, args[0])}
            results["checks"][name] = row
            log(f"   {name}: {row}")
            if got.dtype == torch.float64:
                assert row["max_abs_vs_f64"] < 1e-12, row
            else:
                assert row["max_abs_vs_torch_path"] < 1e-6, row
                assert row["max_abs_vs_f64"] <= 4 * row["torch_path_max_abs_vs_f64"] + 1e-7, row
            if c.get("p") == 0.0:
                assert torch.equal(got, args[0]), "no spike changed weights"

    # ------------------------------------------------------------------ 2. op, graphs
    with check("stdp op through the registered CUDA kernel"):
        args = case(2000, 1500, 40, batch=(2,), p=0.1, mult=True, dtype=torch.float64)
        expected = torch_path(args, device=torch.device("cpu"))
        w = args[0].clone()
        if dry_run:  # the function registered as the CUDA kernel, called directly
            F._stdp_ell_update_cuda(*with_weight(args, w))
        else:
            a_p, a_m, lo, hi = args[8:12]
            F.stdp_ell_update(w, *args[1:8], A_plus=a_p, A_minus=a_m, w_min=lo, w_max=hi,
                              multiplicative=True, inplace=True)
        assert max_abs(w, expected) < 1e-12

    with check("stdp CUDA graph capture and replay on new spikes"):
        if dry_run:
            results["checks"]["graph"] = "skipped: no CUDA graphs on the CPU"
        else:
            args = case(20_000, 20_000, 80, p=0.05, mult=True)
            static = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # compile outside the capture
                K.stdp_ell_update_(*with_weight(static, static[0].clone()))
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                K.stdp_ell_update_(*static)
            for p in (0.0, 0.01, 0.3, 1.0):
                before = static[0].clone()
                for i in (4, 5):
                    static[i].copy_((torch.rand(static[i].shape, generator=gen, device=dev)
                                     < p).float())
                expected = torch_path(with_weight(static, before))
                graph.replay()
                sync()
                err = max_abs(static[0], expected)
                assert err < 1e-6, (p, err)

    # ------------------------------------------------------------------ 3. benchmark
    if left() < 30:
        log(f"   stdp benchmark skipped: {left():.0f}s of budget left")
        results["bench"] = [{"skipped": "time budget"}]
        return results

    def timed(fn):
        return statistics.median(call_times(fn, sync, dry_run=dry_run, warmup=warmup, reps=reps))

    n, k = (DRY_N, DRY_K) if dry_run else (BENCH_N, BENCH_K)
    for p, mult, batch in ((0.01, False, ()), (0.05, False, ()), (0.01, True, ()),
                           (0.01, False, (4,))):
        if left() < 20:
            log("   stdp benchmark cut short by the time budget")
            break
        name = f"stdp benchmark n={n} K={k} p={p} mult={mult} batch={batch}"
        with check(name):
            args = case(n, n, k, batch=batch, p=p, mult=mult)
            # synapses changed per call: K per active row, the in-synapses of every active column
            rows = (args[4] != 0).reshape(-1, n).any(0)
            cols = (args[5] != 0).reshape(-1, n).any(0)
            in_degree = (args[2][1:] - args[2][:-1]).long()
            synapses = int(rows.sum()) * k + int(in_degree[cols].sum())
            # each path on its own copy of the weights (they drift over the repetitions)
            on_kernel = with_weight(args, args[0].clone())
            on_torch = with_weight(args, args[0].clone())
            row = {"n": n, "K": k, "spike_frac": p, "multiplicative": mult,
                   "batch": list(batch), "synapses": synapses}
            row["kernel_s"] = timed(functools.partial(K.stdp_ell_update_, *on_kernel))
            row["torch_path_s"] = timed(functools.partial(F._stdp_ell_update_torch, *on_torch))
            row["graph_s"] = math.nan
            if not dry_run:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    K.stdp_ell_update_(*on_kernel)
                row["graph_s"] = timed(graph.replay)
                graph = None
            for key in ("kernel", "graph", "torch_path"):
                row[f"{key}_syn_per_s"] = synapses / row[f"{key}_s"]
            results["bench"].append(row)
            log(f"   {name}: {synapses} synapses; kernel {row['kernel_s'] * 1e6:.1f} us, "
                f"graph {row['graph_s'] * 1e6:.1f} us, torch path "
                f"{row['torch_path_s'] * 1e6:.1f} us")
            args = on_kernel = on_torch = None
            if not dry_run:
                torch.cuda.empty_cache()
    return results


# ------------------------------------------------------------------------------ stand-alone
def _report(results, log):
    for row in results["bench"]:
        log("   bench", row)


if __name__ == "__main__":  # pragma: no cover - a script for the GPU machine
    from check_harness import run_standalone  # the sibling file: this directory is on sys.path

    sys.exit(run_standalone(run, name="check_stdp", description=__doc__.splitlines()[0],
                            default_budget=120.0, report=_report))
