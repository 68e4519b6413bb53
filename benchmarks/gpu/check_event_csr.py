"""GPU check of the event-driven CSR kernels: correctness first, then events per second.

Meant to be called by ``benchmarks/gpu/gpu_check.py`` (``run(check, log, sync, left, dry_run)``), or
run alone from the repository root::

    PYTHONUNBUFFERED=1 python benchmarks/gpu/check_event_csr.py [--budget 200] [--dry-run-cpu]

What :func:`run` does, in this order:

1. forward kernels against the op's pure-torch path and a float64 upcast reference (three-way:
   kernel error <= 4 x torch float32 error + 1e-6, relative Frobenius) on ragged tables with
   empty rows, mean fan-out 1000 and 80, a power-law table with hub rows of 10^5 synapses, no
   spikes, all spiking, graded events, colliding targets, int32/int64 ``indptr``/``indices``,
   batches; float64 (1e-12), float16/bfloat16 (accumulated in float32); a CPU scalar weight;
   two runs of the same input (a moving error beyond rounding would be a race); the
   compaction's (event, piece) list against an enumeration with torch;
2. the backward kernels against the float64 torch formula (three-way), bit-equal across two runs
   (no atomics), and the op end to end through autograd (the registered CUDA kernels), with
   ``create_graph=True`` taking the differentiable torch formula;
3. the op captured in a CUDA graph and replayed on new spikes (no host synchronisation), and
   ``torch.compile(fullgraph=True)`` around it;
4. synaptic events per second (events = sum over spiking neurons of their row length) at
   fan-out ~1000 on 100k neurons and ~80 on 4M, per-synapse and scalar weights: the kernels
   called from Python, the same kernels replayed from a CUDA graph, the torch path
   (``nonzero`` + ``repeat_interleave`` + ``index_add_``) and, on the same uniform table stored
   as a fixed fan-out table, the ELL kernels (the price of packing variable rows); a table
   with hub rows of 100x the mean, cut into pieces and uncut (load balance), against uniform
   rows of the same size; a sweep of the tile sizes (``block_e`` x ``chunk``) at fan-out 1000
   and 80; and the backward (kernels vs torch formula). Median of CUDA-event timings.

``dry_run=True`` runs the same code on CPU tensors through Triton's interpreter at tiny sizes
(the kernel glue is called directly, no CUDA graph, host-clock timings): it checks this script,
not the GPU, and its timings mean nothing.
"""

from __future__ import annotations

import functools
import importlib
import math
import statistics
import sys

from check_harness import call_times  # the sibling file (this directory is on sys.path)

#: Benchmark sizes (neurons, mean fan-out) and the dry run's stand-ins.
BENCH_SIZES = ((100_000, 1000), (4_000_000, 80))
DRY_SIZES = ((200, 16), (160, 4))


def run(check, log, sync, left, dry_run: bool = False, reps: int = 30,
        warmup: int = 5) -> dict:
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
        ``left()`` -> seconds of the caller's budget left; each benchmark row is skipped below
        40 s, the tile sweep below 60 s.
    dry_run : bool
        CPU tensors through Triton's interpreter (which must be on for
        ``torchbrain.kernels.event_csr`` and ``torchbrain.kernels.event_ell``), tiny sizes.
    reps, warmup : int
        Timed and untimed repetitions per benchmark row.
    """
    import torch

    import torchbrain as tb

    ops = importlib.import_module("torchbrain.ops.event_csr")
    K = importlib.import_module("torchbrain.kernels.event_csr")
    ELL = importlib.import_module("torchbrain.kernels.event_ell")
    if dry_run:
        from triton.runtime.interpreter import InterpretedFunction

        if not all(isinstance(f, InterpretedFunction)
                   for f in (K._scatter_kernel, ELL._compact_kernel)):
            raise RuntimeError("check_event_csr: the dry run needs the kernels imported with "
                               "TRITON_INTERPRET=1")
    dev = torch.device("cpu" if dry_run else "cuda")
    results: dict = {"checks": {}, "bench": [], "tiles": [], "bench_backward": []}
    gen = torch.Generator(device=dev).manual_seed(2468)

    def sz(n: int, cap: int = 200) -> int:
        """A size: as given on the GPU, capped in the dry run (the interpreter is slow)."""
        return min(n, cap) if dry_run else n

    def rel(x, ref):
        x, ref = x.double(), ref.double()
        if not torch.isfinite(x).all():
            return math.inf
        den = ref.norm().item()
        return (x - ref).norm().item() / (den if den > 0 else 1.0)

    def table(n_pre, n_post, fan, spread=0.1, hubs=0, hub_len=0, indptr_dtype=torch.int64,
              index_dtype=torch.int32, targets=None, empty_every=0):
        """A CSR table on the device: row lengths uniform in fan * (1 +- spread), every
        ``empty_every``-th row empty, ``hubs`` rows of ``hub_len`` synapses; targets drawn with
        replacement in ``[0, targets or n_post)``."""
        lo, hi = int(fan * (1 - spread)), int(fan * (1 + spread))
        counts = torch.randint(lo, hi + 1, (n_pre,), device=dev, generator=gen)
        if empty_every:
            counts[::empty_every] = 0
        if hubs:
            where = torch.randperm(n_pre, device=dev, generator=gen)[:hubs]
            counts[where] = hub_len
        indptr = torch.zeros(n_pre + 1, dtype=torch.int64, device=dev)
        indptr[1:] = counts.cumsum(0)
        nnz = int(indptr[-1].item())
        idx = torch.randint(0, targets or n_post, (nnz,), device=dev, generator=gen,
                            dtype=torch.int64)
        return indptr.to(indptr_dtype), idx.to(index_dtype)

    def case(n_pre, n_post, fan, batch=(), homogeneous=False, p=0.1, dtype=torch.float32,
             graded=False, **table_kw):
        n_pre, n_post, fan = sz(n_pre), sz(n_post), sz(fan, 16)
        if dry_run and table_kw.get("hub_len"):
            table_kw["hub_len"] = 300
        indptr, idx = table(n_pre, n_post, fan, **table_kw)
        w = (torch.tensor(0.7, device=dev, dtype=dtype) if homogeneous
             else torch.randn(idx.numel(), device=dev, generator=gen, dtype=dtype))
        s = (torch.rand(*batch, n_pre, device=dev, generator=gen) < p).to(dtype)
        if graded:
            s = s * torch.randn(*batch, n_pre, device=dev, generator=gen, dtype=dtype)
        return s, indptr, idx, w, n_post

    def ref64(s, indptr, idx, w, n_post):
        return ops._event_csr_matvec_torch(s.double(), indptr, idx, w.double(), n_post)

    # ------------------------------------------------------------------ 1. forward
    fwd_cases = [
        dict(n_pre=1, n_post=1, fan=1, spread=0.0, p=1.0, homogeneous=True),
        dict(n_pre=37, n_post=29, fan=7, spread=1.0, batch=(3,), p=0.3, graded=True,
             empty_every=5),
        dict(n_pre=3001, n_post=20011, fan=1000, p=0.01),
        dict(n_pre=3001, n_post=20011, fan=1000, batch=(2,), p=0.05, homogeneous=True,
             indptr_dtype=torch.int32),
        dict(n_pre=4099, n_post=5003, fan=80, spread=0.5, batch=(4,), p=0.02, graded=True,
             empty_every=7),
        dict(n_pre=20000, n_post=20000, fan=8, spread=1.0, p=0.2, hubs=3, hub_len=100_000),
        dict(n_pre=777, n_post=333, fan=13, batch=(5,), p=1.0),  # all spiking
        dict(n_pre=777, n_post=333, fan=13, batch=(5,), p=0.0),  # no spike
        dict(n_pre=2000, n_post=1000, fan=100, p=0.5, targets=3),  # colliding targets
        dict(n_pre=1025, n_post=4000, fan=33, batch=(2, 3), p=0.1, index_dtype=torch.int64,
             graded=True),
        dict(n_pre=300000, n_post=300000, fan=80, p=0.01, homogeneous=True),
    ]
    for c in fwd_cases:
        name = "csr forward " + ",".join(f"{key}={val}" for key, val in c.items())
        with check(name):
            s, indptr, idx, w, n_post = case(**c)
            out = K.event_csr_matvec(s, indptr, idx, w, n_post)
            sync()
            again = K.event_csr_matvec(s, indptr, idx, w, n_post)
            torch32 = ops._event_csr_matvec_torch(s, indptr, idx, w, n_post)
            ref = ref64(s, indptr, idx, w, n_post)
            e_k, e_t, e_again = rel(out, ref), rel(torch32, ref), rel(again, out)
            results["checks"][name] = {"err_kernel": e_k, "err_torch32": e_t,
                                       "run_to_run": e_again}
            log(f"   err kernel {e_k:.2e}  torch32 {e_t:.2e}  run-to-run {e_again:.2e}")
            assert out.shape == torch32.shape and out.dtype == torch32.dtype
            assert e_k <= 4 * e_t + 1e-6, f"kernel error {e_k:.3e} vs torch {e_t:.3e}"
            assert e_again <= 1e-6, f"moving error {e_again:.3e}: a race?"
            if c.get("p") == 0.0:
                assert not out.any()

    with check("csr forward duplicates within a row delivered once per entry, empty rows"):
        indptr = torch.tensor([0, 3, 3, 6], dtype=torch.int32, device=dev)
        idx = torch.tensor([2, 2, 2, 0, 1, 2], dtype=torch.int32, device=dev)
        out = K.event_csr_matvec(torch.tensor([0.25, 7.0, 2.0], device=dev), indptr, idx,
                                 torch.tensor(2.0, device=dev), 3)
        assert out.tolist() == [4.0, 4.0, 5.5], out.tolist()

    with check("csr forward float64 exact-ish, half/bf16 accumulate in float32, CPU scalar w"):
        s, indptr, idx, w, n_post = case(5000, 3000, 80, batch=(2,), p=0.1, dtype=torch.float64,
                                         graded=True, spread=0.5)
        e = rel(K.event_csr_matvec(s, indptr, idx, w, n_post), ref64(s, indptr, idx, w, n_post))
        assert e < 1e-12, e
        for half in (torch.float16, torch.bfloat16):
            sh, wh = s.to(half), w.to(half)
            out = K.event_csr_matvec(sh, indptr, idx, wh, n_post)
            assert out.dtype == half
            e = rel(out, ref64(sh, indptr, idx, wh, n_post))
            assert e < (5e-3 if half == torch.float16 else 2e-2), (half, e)
        s, indptr, idx, w, n_post = case(500, 400, 20, p=0.3, homogeneous=True)
        out = ops._event_csr_matvec_cuda(s, indptr, idx, w.cpu(), n_post)
        assert rel(out, ref64(s, indptr, idx, w, n_post)) < 1e-6

    with check("csr compaction into pieces vs torch enumeration (hubs, batch, int64 indptr)"):
        for piece in (K.PIECE, 64):
            s, indptr, idx, w, n_post = case(200_000, 1000, 20, batch=(2,), p=0.05, hubs=5,
                                             hub_len=50_000, spread=1.0)
            n_pre = indptr.numel() - 1
            flat = s.reshape(-1)
            events, pieces, count = K.compact_pieces(flat, indptr, idx.numel(), piece)
            c = int(count.item())
            fired = torch.nonzero(flat).flatten()
            lengths = (indptr[1:] - indptr[:-1]).long()[fired % n_pre]
            per_event = (lengths + piece - 1) // piece
            exp_e = torch.repeat_interleave(fired, per_event)
            exp_j = torch.arange(exp_e.numel(), device=dev) - torch.repeat_interleave(
                torch.cumsum(per_event, 0) - per_event, per_event)
            assert c == exp_e.numel(), (c, exp_e.numel())
            key = events[:c].long() * 2**20 + pieces[:c].long()
            assert torch.equal(key.sort().values, (exp_e * 2**20 + exp_j).sort().values)
            out = K.event_csr_matvec(s, indptr, idx, w, n_post, piece=piece)
            e_k = rel(out, ref64(s, indptr, idx, w, n_post))
            e_t = rel(ops._event_csr_matvec_torch(s, indptr, idx, w, n_post),
                      ref64(s, indptr, idx, w, n_post))
            assert e_k <= 4 * e_t + 1e-6, (piece, e_k, e_t)

    # ------------------------------------------------------------------ 2. backward
    bwd_cases = [
        dict(n_pre=37, n_post=29, fan=7, spread=1.0, batch=(3,), p=0.3, graded=True,
             empty_every=5),
        dict(n_pre=4099, n_post=5003, fan=80, spread=0.5, batch=(4,), p=0.02),
        dict(n_pre=4099, n_post=5003, fan=80, batch=(4,), p=0.02, homogeneous=True),
        dict(n_pre=3001, n_post=2000, fan=1000, p=0.05, graded=True, indptr_dtype=torch.int32),
        dict(n_pre=20000, n_post=20000, fan=8, spread=1.0, batch=(2,), p=0.2, hubs=3,
             hub_len=100_000),
        dict(n_pre=500, n_post=300, fan=10, batch=(2,), p=0.0),
    ]
    for c in bwd_cases:
        name = "csr backward " + ",".join(f"{key}={val}" for key, val in c.items())
        with check(name):
            s, indptr, idx, w, n_post = case(**c)
            go = torch.randn(*s.shape[:-1], n_post, device=dev, generator=gen)
            gs, gw = K.event_csr_matvec_backward(go, s, indptr, idx, w)
            again = K.event_csr_matvec_backward(go, s, indptr, idx, w)
            ts, tw = ops._csr_backward_torch(go, s, indptr, idx, w, True, True)
            rs, rw = ops._csr_backward_torch(go.double(), s.double(), indptr, idx, w.double(),
                                             True, True)
            es, ew = rel(gs, rs), rel(gw, rw)
            results["checks"][name] = {"err_grad_s": es, "err_grad_s_torch32": rel(ts, rs),
                                       "err_grad_w": ew, "err_grad_w_torch32": rel(tw, rw)}
            log(f"   err grad_s {es:.2e} (torch {rel(ts, rs):.2e})  grad_w {ew:.2e} "
                f"(torch {rel(tw, rw):.2e})")
            assert es <= 4 * rel(ts, rs) + 1e-6 and ew <= 4 * rel(tw, rw) + 1e-6
            assert torch.equal(gs, again[0]) and torch.equal(gw, again[1]), "not deterministic"

    with check("csr op end to end through autograd (registered CUDA kernels)"):
        for homogeneous in (True, False):
            s, indptr, idx, w, n_post = case(2000, 1500, 40, batch=(3,), p=0.1, graded=True,
                                             homogeneous=homogeneous, dtype=torch.float64,
                                             spread=1.0, empty_every=9)
            s_ = s.clone().requires_grad_(True)
            w_ = w.clone().requires_grad_(True)
            go = torch.randn(3, n_post, device=dev, dtype=torch.float64, generator=gen)
            if dry_run:  # the CUDA kernels are what is checked; on the CPU call them directly
                out = ops._event_csr_matvec_cuda(s, indptr, idx, w, n_post)
                gs, gw = ops._event_csr_matvec_backward_cuda(go, s, indptr, idx, w, True, True)
                s_.grad, w_.grad = gs, gw
            else:
                out = tb.ops.event_csr_matvec(s_, indptr, idx, w_, n_post)
                out.backward(go)
            rs, rw = ops._csr_backward_torch(go, s, indptr, idx, w, True, True)
            assert rel(out.detach(), ref64(s, indptr, idx, w, n_post)) < 1e-12
            assert rel(s_.grad, rs) < 1e-12 and rel(w_.grad, rw) < 1e-12
        # create_graph=True takes the differentiable torch formula
        s_ = s.clone().requires_grad_(True)
        w_ = w.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(tb.ops.event_csr_matvec(s_, indptr, idx, w_, n_post)
                                   .pow(2).sum(), s_, create_graph=True)
        g.sum().backward()
        assert w_.grad is not None

    # ------------------------------------------------------------------ 3. graphs, compile
    with check("csr CUDA graph capture and replay on new spikes"):
        if dry_run:
            log("   skipped: no CUDA graphs on the CPU")
        else:
            s, indptr, idx, w, n_post = case(20000, 20000, 80, p=0.05, spread=0.5)
            static_s = s.clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    tb.ops.event_csr_matvec(static_s, indptr, idx, w, n_post)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = tb.ops.event_csr_matvec(static_s, indptr, idx, w, n_post)
            for p in (0.0, 0.01, 0.3, 1.0):
                new = (torch.rand(20000, device=dev, generator=gen) < p).float()
                static_s.copy_(new)
                graph.replay()
                sync()
                e = rel(static_out, ref64(new, indptr, idx, w, n_post))
                assert e < 1e-5, (p, e)

    with check("csr torch.compile(fullgraph=True) around the op"):
        torch._dynamo.reset()
        s, indptr, idx, w, n_post = case(3000, 2000, 80, batch=(2,), p=0.1)
        f = torch.compile(lambda s: tb.ops.event_csr_matvec(s, indptr, idx, w, n_post) * 2,
                          fullgraph=True, backend="aot_eager")
        assert rel(f(s), 2 * ref64(s, indptr, idx, w, n_post)) < 1e-5

    # ------------------------------------------------------------------ 4. benchmark
    def timed(fn):
        return statistics.median(call_times(fn, sync, dry_run=dry_run, warmup=warmup, reps=reps))

    def graph_timed(fn):
        """The same call replayed from a CUDA graph (no Python launch cost); NaN in the dry run."""
        if dry_run:
            return math.nan
        fn()
        sync()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        t = timed(graph.replay)
        del graph
        return t

    def synaptic_events(s, indptr):
        lengths = (indptr[1:] - indptr[:-1]).to(torch.float64)
        return int(((s != 0).to(torch.float64) * lengths).sum().item())

    def free():
        if not dry_run:
            torch.cuda.empty_cache()

    def budget_for(what, seconds):
        if left() >= seconds:
            return True
        log(f"   {what} skipped: {left():.0f}s of budget left")
        results.setdefault("skipped", []).append(what)
        return False

    sizes = DRY_SIZES if dry_run else BENCH_SIZES
    bench_cases = [(n, fan, p, hom) for n, fan in sizes[:1]
                   for p, hom in ((0.001, True), (0.01, True), (0.1, True), (0.01, False),
                                  (0.1, False))]
    bench_cases += [(n, fan, p, True) for n, fan in sizes[1:] for p in (0.002, 0.02)]
    with check("csr benchmark: kernels vs torch path vs ELL kernels on the same table"):
        for n, fan, p, homogeneous in bench_cases:
            if left() < 40:
                log("   csr benchmark cut short by the time budget")
                break
            # uniform rows: the same connectivity is also a fixed fan-out (ELL) table
            s, indptr, idx, w, n_post = case(n, n, fan, p=max(p, 0.02) if dry_run else p,
                                             homogeneous=homogeneous, spread=0.0)
            events = synaptic_events(s, indptr)
            ell_idx = idx.view(n, fan)
            ell_w = w if homogeneous else w.view(n, fan)
            row = {"n": n, "fan_out": fan, "spike_frac": p, "homogeneous": homogeneous,
                   "events": events, "tiles": K.tile_sizes(idx.numel(), n)}
            kernel = functools.partial(K.event_csr_matvec, s, indptr, idx, w, n_post)
            row["kernel_s"] = timed(kernel)
            row["graph_s"] = graph_timed(kernel)
            row["torch_s"] = timed(functools.partial(ops._event_csr_matvec_torch, s, indptr, idx,
                                                     w, n_post))
            row["ell_graph_s"] = graph_timed(functools.partial(ELL.event_ell_matvec, s, ell_idx,
                                                               ell_w, n_post))
            for key in ("kernel", "graph", "torch", "ell_graph"):
                row[f"{key}_ev_per_s"] = events / row[f"{key}_s"]
            results["bench"].append(row)
            log(f"   n={n} fan={fan} p={p} hom={homogeneous} ev={events}: kernels "
                f"{row['kernel_s'] * 1e6:.1f} us, graph {row['graph_s'] * 1e6:.1f} us "
                f"({row['graph_ev_per_s'] / 1e9:.2f} Gev/s), torch {row['torch_s'] * 1e6:.1f} "
                f"us, ELL graph {row['ell_graph_s'] * 1e6:.1f} us")
            s = indptr = idx = w = ell_idx = ell_w = kernel = None
            free()

    with check("csr benchmark: power-law rows (hubs) vs uniform rows of the same nnz"):
        n, fan = sizes[0]
        hubs, hub_len = (1, 300) if dry_run else (n // 10_000, 100 * fan)
        for with_hubs in (False, True) if budget_for("power-law benchmark", 40) else ():
            # hub rows of 100x the mean fan-out; the other rows shortened to keep nnz
            k = hubs if with_hubs else 0
            s, indptr, idx, w, n_post = case(n, n, (fan * n - k * hub_len) / (n - k),
                                             spread=0.9, hubs=k, hub_len=hub_len)
            s[..., :] = 0
            fired = torch.randperm(n, device=dev, generator=gen)[: max(1, n // 100)]
            s[fired] = 1.0
            lengths = indptr[1:] - indptr[:-1]
            s[lengths.argmax()] = 1.0  # a hub fires (when there is one)
            events = synaptic_events(s, indptr)
            # with hubs, also uncut (one piece per row, as without the piece compaction)
            for piece in (K.PIECE, 2**30) if k else (K.PIECE,):
                row = {"n": n, "mean_fan_out": idx.numel() / n, "hubs": k,
                       "hub_len": hub_len if k else 0, "piece": piece, "events": events}
                kernel = functools.partial(K.event_csr_matvec, s, indptr, idx, w, n_post,
                                           piece=piece)
                row["graph_s"] = graph_timed(kernel)
                row["kernel_s"] = timed(kernel)
                row["graph_ev_per_s"] = events / row["graph_s"]
                results["bench"].append(row)
                log(f"   hubs={k} piece={piece}: {events} events, graph "
                    f"{row['graph_s'] * 1e6:.1f} us ({row['graph_ev_per_s'] / 1e9:.2f} Gev/s), "
                    f"eager {row['kernel_s'] * 1e6:.1f} us")
            s = indptr = idx = w = kernel = None
            free()

    with check("csr tile sweep (block_e x chunk), CUDA-graph replay"):
        for n, fan in sizes if budget_for("tile sweep", 60) else ():
            s, indptr, idx, w, n_post = case(n, n, fan, p=0.01 if not dry_run else 0.05,
                                             spread=0.1)
            events = synaptic_events(s, indptr)
            default_e, _ = K.tile_sizes(idx.numel(), n)
            for block_e in sorted({max(1, default_e // 4), default_e, default_e * 4}):
                for chunk in (256, 512, 1024):
                    if left() < 40:
                        break
                    kernel = functools.partial(K.event_csr_matvec, s, indptr, idx, w, n_post,
                                               block_e=block_e, chunk=chunk)
                    t = timed(kernel) if dry_run else graph_timed(kernel)
                    results["tiles"].append({"n": n, "fan_out": fan, "block_e": block_e,
                                             "chunk": chunk, "graph_s": t,
                                             "ev_per_s": events / t})
            best = max((r for r in results["tiles"] if r["n"] == n), key=lambda r: r["ev_per_s"])
            log(f"   n={n} fan={fan}: default block_e={default_e}; best block_e="
                f"{best['block_e']} chunk={best['chunk']} {best['ev_per_s'] / 1e9:.2f} Gev/s")
            s = indptr = idx = w = kernel = None
            free()

    with check("csr benchmark: backward kernels vs torch formula"):
        n, fan = sizes[0]
        cases = ((False, 1), (True, 1), (False, 8))
        for homogeneous, batch in cases if budget_for("backward benchmark", 40) else ():
            s, indptr, idx, w, n_post = case(n, n, fan, batch=(batch,),
                                             p=0.01 if not dry_run else 0.05,
                                             homogeneous=homogeneous)
            go = torch.randn(batch, n_post, device=dev, generator=gen)
            row = {"n": n, "fan_out": fan, "batch": batch, "homogeneous": homogeneous,
                   "synapses": idx.numel()}
            row["kernel_s"] = timed(functools.partial(K.event_csr_matvec_backward, go, s,
                                                      indptr, idx, w))
            try:
                row["torch_s"] = timed(functools.partial(ops._csr_backward_torch, go, s, indptr,
                                                         idx, w, True, True))
            except torch.OutOfMemoryError:  # the formula's (batch, nnz) intermediates
                row["torch_s"] = math.nan
            row["kernel_synapses_per_s"] = batch * idx.numel() / row["kernel_s"]
            results["bench_backward"].append(row)
            log(f"   batch={batch} hom={homogeneous}: kernels {row['kernel_s'] * 1e3:.3f} ms "
                f"({row['kernel_synapses_per_s'] / 1e9:.1f} G synapse-gradients/s), torch "
                f"{row['torch_s'] * 1e3:.3f} ms")
            s = indptr = idx = w = go = None
            free()
    return results


# ------------------------------------------------------------------------------ stand-alone
if __name__ == "__main__":  # pragma: no cover - a script for the GPU machine
    from check_harness import run_standalone  # the sibling file: this directory is on sys.path

    sys.exit(run_standalone(run, name="check_event_csr", description=__doc__.splitlines()[0],
                            default_budget=200.0))
