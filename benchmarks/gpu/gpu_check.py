"""One prepared GPU check of the event-driven ELL kernels: correctness first, then timings.

Run from the repository root on a CUDA machine (see kernels/NOTES.md for the exact command,
including the pint wheels a bare machine lacks)::

    PYTHONUNBUFFERED=1 python benchmarks/gpu/gpu_check.py [--budget 210] [--skip-coba]

What it does, in this order, stopping each section early when the time budget runs low:

1. every kernel against the pure-torch path and a float64 upcast reference (three-way, relative
   Frobenius errors) at random and ragged sizes, no spikes, all spiking, graded events, duplicate
   and colliding targets, int32/int64 tables, float64 and half precision; the compaction list
   against ``torch.nonzero``; two runs of the same input (a moving error would be a race);
2. the backward kernels against the float64 torch formula, and the op end to end through
   autograd (the registered CUDA kernels);
3. the op captured in a CUDA graph and replayed on new spikes (proves no host synchronisation),
   and ``torch.compile(fullgraph=True)`` around the op;
4. synaptic events per second at fan-out 1000 (and at fan-out 80 on 4M neurons), kernel vs the
   same run's ``nonzero`` + ``index_add_`` torch path, median of CUDA-event timings;
5. the COBA network (``torchbrain.models.COBANet`` + ``NetworkRunner``, dt = 0.1 ms) at 4k, 40k
   and 400k neurons: wall seconds per simulated second with the kernels, then with the torch path
   (``TORCHBRAIN_DISABLE_KERNELS=1``) while time remains, and the mean rates;
6. between 3 and 4, the fused multi-step LIF kernels (``check_multistep_lif.py``: correctness
   and the Linear + LIF layer benchmark at N = 16384), and last the CUDA-graph runner
   (``check_graph_capture.py``: same raster, launches per step, s/sim-s with and without the
   graph), the CSR event kernels (``check_event_csr.py``) and the STDP update kernels
   (``check_stdp.py``). ``--skip-multistep`` / ``--skip-csr`` / ``--skip-stdp`` /
   ``--skip-graph`` leave them out.

Prints PASS/FAIL per check and the tables last; writes ``gpu_check.json`` under ``$OUT`` when
that variable is set. Exit status 1 if any check failed, 2 if it could not start.

``--dry-run-cpu`` runs the same code on CPU tensors through Triton's interpreter at tiny sizes
(no CUDA graphs, host-clock timings, COBA at 4k for a few ms): it checks the script itself, not
the GPU, and its timings mean nothing.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import statistics
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from check_harness import call_times, import_torchbrain_kernels  # the sibling file

ROOT = Path(__file__).resolve().parents[2]  # the checkout (benchmarks/gpu/ -> root)
START = time.perf_counter()
RESULTS: dict = {"checks": [], "bench_op": [], "bench_coba": [], "env": {}}
FAILURES: list[str] = []


def log(*args):
    print(f"[{time.perf_counter() - START:6.1f}s]", *args, flush=True)


def bootstrap(dry_run: bool):
    """Import torch, triton and torchbrain (with ``torchbrain.kernels``) from this checkout."""
    if dry_run:  # must precede the first `import triton` of the process
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        import pint  # noqa: F401
    except ImportError:
        print("FATAL: pint is not installed; torchbrain needs it. Carry the wheels (pint, "
              "flexcache, flexparser, platformdirs) as kernels/NOTES.md describes.", flush=True)
        sys.exit(2)
    import torch

    if not dry_run and not torch.cuda.is_available():
        print("FATAL: no CUDA device; this script only checks the GPU path.", flush=True)
        sys.exit(2)
    torchbrain = import_torchbrain_kernels()
    kernels = torchbrain.kernels
    if not kernels.available():
        print(f"FATAL: torchbrain.kernels.available() is False (triton "
              f"{kernels.triton_version()}, {kernels.DISABLE_ENV}="
              f"{os.environ.get(kernels.DISABLE_ENV)})", flush=True)
        sys.exit(2)
    return torch, torchbrain, kernels


class SkipCheck(Exception):
    """Raised inside a check that does not apply here."""


@contextmanager
def check(name: str):
    tic = time.perf_counter()
    try:
        yield
    except SkipCheck as exc:
        RESULTS["checks"].append({"name": name, "ok": None, "skipped": str(exc)})
        log(f"SKIP {name}: {exc}")
    except Exception as exc:  # report and go on: one broken case must not hide the others
        FAILURES.append(name)
        RESULTS["checks"].append({"name": name, "ok": False, "error": repr(exc)})
        log(f"FAIL {name}: {exc!r}")
        traceback.print_exc(limit=4)
    else:
        RESULTS["checks"].append({"name": name, "ok": True})
        log(f"PASS {name} ({time.perf_counter() - tic:.1f}s)")


def left(budget: float) -> float:
    return budget - (time.perf_counter() - START)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=420.0,
                        help="seconds; later sections are skipped when they would not fit")
    parser.add_argument("--skip-coba", action="store_true")
    parser.add_argument("--skip-multistep", action="store_true",
                        help="skip the fused multi-step LIF kernels (check_multistep_lif.py)")
    parser.add_argument("--skip-csr", action="store_true",
                        help="skip the CSR event kernels (check_event_csr.py)")
    parser.add_argument("--skip-stdp", action="store_true",
                        help="skip the STDP update kernels (check_stdp.py)")
    parser.add_argument("--skip-graph", action="store_true",
                        help="skip the CUDA-graph runner (check_graph_capture.py)")
    parser.add_argument("--coba-ms", type=float, default=200.0, help="simulated ms per size")
    parser.add_argument("--dry-run-cpu", action="store_true",
                        help="run the script's code on the CPU interpreter at tiny sizes")
    args = parser.parse_args()
    dry = args.dry_run_cpu

    torch, tb, kernels = bootstrap(dry)
    import triton

    def sync():
        if not dry:
            torch.cuda.synchronize()

    def sz(n: int, cap: int = 300) -> int:
        """A size: as given on the GPU, capped in the dry run (the interpreter is slow)."""
        return min(n, cap) if dry else n

    K = importlib.import_module("torchbrain.kernels.event_ell")
    ops_ell = importlib.import_module("torchbrain.ops.event_ell")
    dev = torch.device("cpu" if dry else "cuda")
    RESULTS["env"] = {"torch": torch.__version__, "triton": triton.__version__,
                      "cuda": torch.version.cuda}
    if dry:
        RESULTS["env"]["device"] = "CPU (Triton interpreter dry run: timings are meaningless)"
    else:
        props = torch.cuda.get_device_properties(0)
        RESULTS["env"].update(device=props.name, sms=props.multi_processor_count)
    log("env", RESULTS["env"])
    gen = torch.Generator(device=dev).manual_seed(1234)

    def rel(x, ref):
        x, ref = x.double(), ref.double()
        if not torch.isfinite(x).all():
            return math.inf
        den = ref.norm().item()
        return (x - ref).norm().item() / (den if den > 0 else 1.0)

    def case(n_pre, n_post, k, batch=(), homogeneous=False, p=0.1, dtype=torch.float32,
             index_dtype=torch.int32, graded=False, targets=None):
        n_pre, n_post = sz(n_pre), sz(n_post)
        hi = targets if targets is not None else n_post
        idx = torch.randint(0, hi, (n_pre, k), device=dev, generator=gen, dtype=torch.int64)
        idx = idx.to(index_dtype)
        w = (torch.tensor(0.7, device=dev, dtype=dtype) if homogeneous
             else torch.randn(n_pre, k, device=dev, generator=gen, dtype=dtype))
        s = (torch.rand(*batch, n_pre, device=dev, generator=gen) < p).to(dtype)
        if graded:
            s = s * torch.randn(*batch, n_pre, device=dev, generator=gen, dtype=dtype)
        return s, idx, w, n_post

    def ref64(s, idx, w, n_post):
        return ops_ell._event_ell_matvec_torch(s.double(), idx, w.double(), n_post)

    # ------------------------------------------------------------------ 1. forward
    fwd_cases = [
        dict(n_pre=1, n_post=1, k=1, p=1.0, homogeneous=True),
        dict(n_pre=37, n_post=29, k=7, batch=(3,), p=0.3, graded=True),
        dict(n_pre=1000, n_post=997, k=80, p=0.05, homogeneous=True),
        dict(n_pre=4099, n_post=5003, k=80, batch=(4,), p=0.02, graded=True),
        dict(n_pre=3001, n_post=20011, k=1000, p=0.01),
        dict(n_pre=50000, n_post=40000, k=80, batch=(2,), p=0.2, homogeneous=True),
        dict(n_pre=777, n_post=333, k=13, batch=(5,), p=1.0),  # all spiking
        dict(n_pre=777, n_post=333, k=13, batch=(5,), p=0.0),  # no spike
        dict(n_pre=2000, n_post=1000, k=100, p=0.5, targets=3),  # colliding targets
        dict(n_pre=1025, n_post=4000, k=33, batch=(2, 3), p=0.1, index_dtype=torch.int64,
             graded=True),
        dict(n_pre=300000, n_post=300000, k=80, p=0.01, homogeneous=True),
    ]
    for c in fwd_cases:
        name = "forward " + ",".join(f"{key}={val}" for key, val in c.items())
        with check(name):
            s, idx, w, n_post = case(**c)
            out = K.event_ell_matvec(s, idx, w, n_post)
            sync()
            again = K.event_ell_matvec(s, idx, w, n_post)
            torch32 = ops_ell._event_ell_matvec_torch(s, idx, w, n_post)
            ref = ref64(s, idx, w, n_post)
            e_k, e_t, e_again = rel(out, ref), rel(torch32, ref), rel(again, out)
            log(f"   err kernel {e_k:.2e}  torch32 {e_t:.2e}  run-to-run {e_again:.2e}")
            assert out.shape == torch32.shape and out.dtype == torch32.dtype
            assert e_k <= 4 * e_t + 1e-6, f"kernel error {e_k:.3e} vs torch {e_t:.3e}"
            assert e_again <= 1e-6, f"moving error {e_again:.3e}: a race?"
            if c.get("p") == 0.0:
                assert not out.any()

    with check("forward duplicates within a row delivered once per entry"):
        idx = torch.tensor([[2, 2, 2], [0, 1, 2]], dtype=torch.int32, device=dev)
        out = K.event_ell_matvec(torch.ones(2, device=dev), idx, torch.tensor(0.5, device=dev),
                                 3)
        assert out.tolist() == [0.5, 0.5, 2.0], out.tolist()

    with check("forward float64 exact-ish, half/bf16 accumulate in float32"):
        s, idx, w, n_post = case(5000, 3000, 80, batch=(2,), p=0.1, dtype=torch.float64,
                                 graded=True)
        e = rel(K.event_ell_matvec(s, idx, w, n_post), ref64(s, idx, w, n_post))
        assert e < 1e-12, e
        for half in (torch.float16, torch.bfloat16):
            sh, wh = s.to(half), w.to(half)
            out = K.event_ell_matvec(sh, idx, wh, n_post)
            assert out.dtype == half
            e = rel(out, ref64(sh, idx, wh, n_post))
            assert e < (5e-3 if half == torch.float16 else 2e-2), (half, e)

    with check("forward CPU scalar weight next to CUDA spikes"):
        s, idx, w, n_post = case(500, 400, 20, p=0.3, homogeneous=True)
        out = ops_ell._event_ell_matvec(s, idx, w.cpu(), n_post)
        assert rel(out, ref64(s, idx, w, n_post)) < 1e-6

    with check("compaction vs torch.nonzero (4M x 2, 1%)"):
        s = (torch.rand(sz(2 * 4_000_000, 5000), device=dev, generator=gen) < 0.01).float()
        events, count = K.compact_events(s)
        c = int(count.item())
        expected = torch.nonzero(s).flatten()
        assert c == expected.numel(), (c, expected.numel())
        assert torch.equal(events[:c].long().sort().values, expected)
        m = sz(10_000, 3000)
        events, count = K.compact_events(torch.zeros(m, device=dev))
        assert int(count.item()) == 0
        events, count = K.compact_events(torch.ones(m, device=dev))
        assert int(count.item()) == m
        assert torch.equal(events.long().sort().values, torch.arange(m, device=dev))

    # ------------------------------------------------------------------ 2. backward
    for c in [dict(n_pre=37, n_post=29, k=7, batch=(3,), p=0.3, graded=True),
              dict(n_pre=4099, n_post=5003, k=80, batch=(4,), p=0.02),
              dict(n_pre=4099, n_post=5003, k=80, batch=(4,), p=0.02, homogeneous=True),
              dict(n_pre=3001, n_post=2000, k=1000, p=0.05, graded=True),
              dict(n_pre=500, n_post=300, k=10, batch=(2,), p=0.0)]:
        name = "backward " + ",".join(f"{key}={val}" for key, val in c.items())
        with check(name):
            s, idx, w, n_post = case(**c)
            go = torch.randn(*s.shape[:-1], n_post, device=dev, generator=gen)
            gs, gw = K.event_ell_matvec_backward(go, s, idx, w)
            ts, tw = ops_ell._backward_torch(go, s, idx, w, True, True)
            rs, rw = ops_ell._backward_torch(go.double(), s.double(), idx, w.double(), True, True)
            es, ew = rel(gs, rs), rel(gw, rw)
            log(f"   err grad_s {es:.2e} (torch {rel(ts, rs):.2e})  grad_w {ew:.2e} "
                f"(torch {rel(tw, rw):.2e})")
            assert es <= 4 * rel(ts, rs) + 1e-6 and ew <= 4 * rel(tw, rw) + 1e-6

    with check("op end to end through autograd (registered CUDA kernels)"):
        for homogeneous in (True, False):
            s, idx, w, n_post = case(2000, 1500, 40, batch=(3,), p=0.1, graded=True,
                                     homogeneous=homogeneous, dtype=torch.float64)
            s_ = s.clone().requires_grad_(True)
            w_ = w.clone().requires_grad_(True)
            go = torch.randn(3, n_post, device=dev, dtype=torch.float64, generator=gen)
            if dry:  # the CUDA kernels are what is checked here; on the CPU call them directly
                out = ops_ell._event_ell_matvec_cuda(s, idx, w, n_post)
                gs, gw = ops_ell._event_ell_matvec_backward_cuda(go, s, idx, w, True, True)
                s_.grad, w_.grad = gs, gw
            else:
                out = tb.ops.event_ell_matvec(s_, idx, w_, n_post)
                out.backward(go)
            rs, rw = ops_ell._backward_torch(go, s, idx, w, True, True)
            assert rel(out.detach(), ref64(s, idx, w, n_post)) < 1e-12
            assert rel(s_.grad, rs) < 1e-12 and rel(w_.grad, rw) < 1e-12
        # create_graph=True takes the differentiable torch formula
        s_ = s.clone().requires_grad_(True)
        w_ = w.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(tb.ops.event_ell_matvec(s_, idx, w_, n_post).pow(2).sum(), s_,
                                   create_graph=True)
        g.sum().backward()
        assert w_.grad is not None

    # ------------------------------------------------------------------ 3. graphs, compile
    with check("CUDA graph capture and replay on new spikes"):
        if dry:
            raise SkipCheck("no CUDA graphs on the CPU")
        s, idx, w, n_post = case(20000, 20000, 80, p=0.05, homogeneous=False)
        static_s = s.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                tb.ops.event_ell_matvec(static_s, idx, w, n_post)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = tb.ops.event_ell_matvec(static_s, idx, w, n_post)
        for p in (0.0, 0.01, 0.3, 1.0):
            new = (torch.rand(20000, device=dev, generator=gen) < p).float()
            static_s.copy_(new)
            graph.replay()
            sync()
            e = rel(static_out, ref64(new, idx, w, n_post))
            assert e < 1e-5, (p, e)

    with check("torch.compile(fullgraph=True) around the op"):
        torch._dynamo.reset()
        s, idx, w, n_post = case(3000, 2000, 80, batch=(2,), p=0.1)
        f = torch.compile(lambda s: tb.ops.event_ell_matvec(s, idx, w, n_post) * 2,
                          fullgraph=True, backend="aot_eager")
        assert rel(f(s), 2 * ref64(s, idx, w, n_post)) < 1e-5

    # ----------------------------------------------- 3b. fused multi-step LIF (issue 6)
    if args.skip_multistep:
        RESULTS["multistep_lif"] = {"skipped": "--skip-multistep"}
    else:
        msl = importlib.import_module("check_multistep_lif")
        RESULTS["multistep_lif"] = msl.run(check, log, sync, lambda: left(args.budget),
                                           dry_run=dry)

    # --------------------------------------------- 3b'. event-driven CSR op (issue 5)
    if args.skip_csr:
        RESULTS["event_csr"] = {"skipped": "--skip-csr"}
    else:
        csr = importlib.import_module("check_event_csr")
        RESULTS["event_csr"] = csr.run(check, log, sync, lambda: left(args.budget), dry_run=dry)

    # ------------------------------------------ 3c. STDP update on ELL tables (issue 5)
    if args.skip_stdp:
        RESULTS["stdp_ell"] = {"skipped": "--skip-stdp"}
    else:
        stdp = importlib.import_module("check_stdp")
        RESULTS["stdp_ell"] = stdp.run(check, log, sync, lambda: left(args.budget), dry_run=dry)

    # ------------------------------------------------------------------ 4. op benchmark
    def bench(fn, reps=30, warmup=5):
        times = call_times(fn, sync, dry_run=dry, warmup=warmup, reps=reps)
        return statistics.median(times), min(times), max(times)

    bench_cases = [
        (100_000, 1000, 0.001, True), (100_000, 1000, 0.01, True), (100_000, 1000, 0.1, True),
        (100_000, 1000, 0.01, False), (100_000, 1000, 0.1, False),
        (4_000_000, 80, 0.002, True), (4_000_000, 80, 0.02, True),
    ]
    with check("benchmark: event op vs index_add_ baseline"):
        for n, k, p, homogeneous in bench_cases:
            if left(args.budget) < 100:
                log("   op benchmark cut short by the time budget")
                break
            s, idx, w, n_post = case(n, n, k, p=max(p, 0.02) if dry else p,
                                     homogeneous=homogeneous)
            events = int(s.count_nonzero().item()) * k
            t_k = bench(lambda s=s, idx=idx, w=w, n_post=n_post:
                        K.event_ell_matvec(s, idx, w, n_post))
            t_b = bench(lambda s=s, idx=idx, w=w, n_post=n_post:
                        ops_ell._event_ell_matvec_torch(s, idx, w, n_post))
            # the same kernel pair replayed from a CUDA graph (no Python launch cost)
            graph = None
            t_g = (math.nan,) * 3
            if not dry:
                graph = torch.cuda.CUDAGraph()
                K.event_ell_matvec(s, idx, w, n_post)
                sync()
                with torch.cuda.graph(graph):
                    K.event_ell_matvec(s, idx, w, n_post)
                t_g = bench(graph.replay)
            row = {"n": n, "fan_out": k, "spike_frac": p, "homogeneous": homogeneous,
                   "events": events, "kernel_s": t_k[0], "graph_s": t_g[0], "baseline_s": t_b[0],
                   "kernel_ev_per_s": events / t_k[0], "graph_ev_per_s": events / t_g[0],
                   "baseline_ev_per_s": events / t_b[0]}
            RESULTS["bench_op"].append(row)
            log(f"   n={n} K={k} p={p} hom={homogeneous}: kernel {t_k[0] * 1e6:.1f} us, graph "
                f"{t_g[0] * 1e6:.1f} us, baseline {t_b[0] * 1e6:.1f} us")
            s = idx = w = graph = None  # free the table before the next case's
            if not dry:
                torch.cuda.empty_cache()

    # ------------------------------------------------------------------ 5. COBA network
    def coba(num, duration_ms, disable_kernels_too):
        from torchbrain import u
        from torchbrain.models import COBANet

        torch.manual_seed(0)
        net = COBANet(scale=num / 4000, seed=0, device=dev)
        tb.init_all_states(net)
        runner = tb.NetworkRunner(net, chunk=10)
        steps = int(round(duration_ms / 0.1))
        row = {"neurons": num, "sim_ms": duration_ms}
        with tb.environ.context(dt=0.1 * u.ms):
            tic = time.perf_counter()
            runner.run(10)
            sync()
            row["compile_s"] = time.perf_counter() - tic
            t0 = 1.0
            # kernels, torch, kernels again: the best run of each mode is kept (the first runs
            # after a compile can be slow)
            modes = [("kernels", None)]
            if disable_kernels_too:
                modes += [("torch", "1"), ("kernels", None)]
            for mode, env in modes:
                if mode != "kernels" or row.get("kernels_wall_per_sim_s") is not None:
                    if left(args.budget) < 20:
                        log(f"   COBA {mode} rerun skipped: time budget")
                        break
                if env is None:
                    os.environ.pop(kernels.DISABLE_ENV, None)
                else:
                    os.environ[kernels.DISABLE_ENV] = env
                try:
                    runner.run(50, t0=t0)  # warm: the first chunks after a compile run slow
                    sync()
                    t0 += 5.0
                    tic = time.perf_counter()
                    spikes = runner.run(steps, t0=t0)
                    sync()
                    wall = time.perf_counter() - tic
                    t0 += duration_ms
                finally:
                    os.environ.pop(kernels.DISABLE_ENV, None)
                late = spikes[steps // 2:].float()
                if row.get(f"{mode}_wall_per_sim_s", math.inf) < wall / (duration_ms / 1000):
                    continue
                row[f"{mode}_wall_per_sim_s"] = wall / (duration_ms / 1000)
                row[f"{mode}_rate_E_Hz"] = late[:, : net.num_exc].mean().item() / 1e-4
                row[f"{mode}_rate_I_Hz"] = late[:, net.num_exc:].mean().item() / 1e-4
        return row

    if not args.skip_coba:
        for num in (4_000,) if dry else (4_000, 40_000, 400_000):
            # the first size pays the Inductor compile of the chunk, later ones a recompile
            if left(args.budget) < (70 if num == 4_000 else 50):
                log(f"   COBA {num}: skipped, {left(args.budget):.0f}s of budget left")
                RESULTS["bench_coba"].append({"neurons": num, "skipped": "time budget"})
                continue
            with check(f"COBA {num} neurons"):
                row = coba(num, args.coba_ms, disable_kernels_too=left(args.budget) > 60)
                RESULTS["bench_coba"].append(row)
                log("  ", {k: (round(v, 4) if isinstance(v, float) else v)
                           for k, v in row.items()})
                rate = row["kernels_rate_E_Hz"]
                assert 5 < rate < 60, f"excitatory rate {rate:.1f} Hz is implausible"

    # ------------------------------------------ 6. CUDA-graph capture of the runner
    if args.skip_graph:
        RESULTS["graph_capture"] = {"skipped": "--skip-graph"}
    else:
        cgc = importlib.import_module("check_graph_capture")
        RESULTS["graph_capture"] = cgc.run(check, log, sync, lambda: left(args.budget),
                                           dry_run=dry)

    # ------------------------------------------------------------------ report
    out_dir = os.environ.get("OUT")
    if out_dir:
        Path(out_dir, "gpu_check.json").write_text(json.dumps(RESULTS, indent=1))
    print()
    print(f"device: {RESULTS['env']}")
    print("event op, fan-out K, one batch row (median of CUDA-event timings; ev = spikes x K):")
    print(f"{'n':>9} {'K':>5} {'p':>6} {'w':>5} {'events':>10} {'kernel us':>10} "
          f"{'graph us':>9} {'base us':>9} {'kernel Gev/s':>12} {'graph Gev/s':>11} "
          f"{'base Gev/s':>10}")
    for r in RESULTS["bench_op"]:
        print(f"{r['n']:>9} {r['fan_out']:>5} {r['spike_frac']:>6} "
              f"{'scal' if r['homogeneous'] else 'syn':>5} {r['events']:>10} "
              f"{r['kernel_s'] * 1e6:>10.1f} {r['graph_s'] * 1e6:>9.1f} "
              f"{r['baseline_s'] * 1e6:>9.1f} {r['kernel_ev_per_s'] / 1e9:>12.2f} "
              f"{r['graph_ev_per_s'] / 1e9:>11.2f} {r['baseline_ev_per_s'] / 1e9:>10.2f}")
    print("COBA (COBANet + NetworkRunner chunk 10, dt 0.1 ms): wall s per simulated s")
    print(f"{'neurons':>8} {'kernels':>8} {'torch':>8} {'rate E':>7} {'rate I':>7} "
          f"{'compile s':>9}")
    for r in RESULTS["bench_coba"]:
        if "skipped" in r:
            print(f"{r['neurons']:>8} skipped ({r['skipped']})")
            continue
        torch_s = r.get("torch_wall_per_sim_s")
        print(f"{r['neurons']:>8} {r.get('kernels_wall_per_sim_s', float('nan')):>8.3f} "
              f"{(torch_s if torch_s is not None else float('nan')):>8.3f} "
              f"{r.get('kernels_rate_E_Hz', float('nan')):>7.1f} "
              f"{r.get('kernels_rate_I_Hz', float('nan')):>7.1f} {r['compile_s']:>9.1f}")
    for key, title in (("multistep_lif", "fused multi-step LIF (check_multistep_lif)"),
                       ("event_csr", "event CSR op (check_event_csr)"),
                       ("stdp_ell", "STDP ELL update (check_stdp)"),
                       ("graph_capture", "CUDA-graph runner (check_graph_capture)")):
        print(f"{title}:")
        print(json.dumps(RESULTS.get(key), indent=1, default=str))
    n_checks = sum(c["ok"] is not None for c in RESULTS["checks"])
    print(f"{n_checks - len(FAILURES)}/{n_checks} checks passed"
          + (f"; FAILED: {FAILURES}" if FAILURES else "")
          + f"; total {time.perf_counter() - START:.0f}s")
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
