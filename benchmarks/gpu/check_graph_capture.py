"""GPU check of CUDA-graph capture in ``NetworkRunner``: same raster, launches, speed.

Meant to be called by ``benchmarks/gpu/gpu_check.py`` (one prepared GPU session)::

    from torchbrain.kernels import check_graph_capture
    RESULTS["graph_capture"] = check_graph_capture.run(
        check, log, sync, lambda: left(args.budget), dry_run=dry)

and runnable alone from the repository root (``python benchmarks/gpu/check_graph_capture.py
[--dry-run-cpu]``). What it does, in this order, each part skipped when the time left is short:

1. **raster**: the COBA network (``torchbrain.models.COBANet``, 4000 neurons, dt 0.1 ms) run for
   300 steps by the compiled chunk without a graph, by the same chunk captured in a CUDA graph,
   and by the eager loop. The captured and uncaptured chunks run the same kernels, so their
   rasters may differ only through the order of the float atomic adds of the event scatter
   (DESIGN's tolerance: at most 2 differing entries); the States after one chunk from the same
   start agree to float32 rounding.
2. **launches**: ``torch.profiler`` over one replay of the captured chunk, one call of the
   compiled chunk and one eager chunk: device kernels (and copies) per simulated step.
3. **speed**: wall seconds per simulated second for 4k, 40k and 400k neurons, with the compiled
   chunk, with the compiled chunk captured in a graph, and with an eager chunk of 100 steps
   captured in a graph (no compilation at all), plus setup times and mean rates.

``dry_run=True`` runs the same code on the CPU at 200 neurons with the CPU emulation of a CUDA
graph (:class:`torchbrain.drivers.graph_capture.EmulatedGraph`) and eager chunks: it checks the
script, not the GPU, and its numbers mean nothing.

Parameters of :func:`run`: ``check(name)`` is a context manager that records a check as passed
or failed (failures are exceptions raised inside it); ``log(*args)`` prints; ``sync()`` waits for
the device; ``left()`` returns the seconds of budget left.
"""

from __future__ import annotations

import copy
import time
from typing import Any

#: Steps of the raster comparison.
RASTER_STEPS = 300


def _make_coba(tb, torch, num: int, device):
    from torchbrain import u
    from torchbrain.models import COBANet

    torch.manual_seed(0)
    net = COBANet(scale=num / 4000, seed=0, device=device)
    with tb.environ.context(dt=0.1 * u.ms):
        tb.init_all_states(net)
    return net


def _count_device_work(torch, fn, sync, device_type: str) -> dict[str, int]:
    """Kernels and copies/fills recorded by the profiler while ``fn()`` runs."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device_type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    sync()
    with profile(activities=activities) as prof:
        fn()
        sync()
    kernels = copies = 0
    for event in prof.events():
        if device_type == "cuda":
            if event.device_type != torch.autograd.DeviceType.CUDA:
                continue
        elif not event.name.startswith("aten::") or event.cpu_parent is not None:
            continue  # dry run: top-level CPU ops stand in for launches
        name = event.name.lower()
        if "memcpy" in name or "memset" in name:
            copies += 1
        else:
            kernels += 1
    return {"kernels": kernels, "copies": copies}


def run(check, log, sync, left, dry_run: bool = False, *,
        sizes: tuple[int, ...] = (4_000, 40_000, 400_000), sim_ms: float = 200.0,
        chunk: int = 10) -> dict[str, Any]:
    """Run the checks (see the module docstring); returns the results as a dict."""
    import torch

    import torchbrain as tb
    from torchbrain import u
    from torchbrain.drivers.graph_capture import EmulatedGraph
    from torchbrain.drivers.runner import NetworkRunner

    device = torch.device("cpu" if dry_run else "cuda")
    factory = EmulatedGraph if dry_run else None
    compile_chunks = not dry_run  # Inductor on a small CPU takes minutes; the dry run is eager
    if dry_run:
        sizes, sim_ms = (200,), 5.0
    results: dict[str, Any] = {"timings": [], "launches": {}}
    dt = 0.1
    steps = 50 if dry_run else RASTER_STEPS

    def runner(net, graph, compile=compile_chunks, n=chunk):
        return NetworkRunner(net, chunk=n, compile=compile, graph=graph,
                             graph_factory=factory if graph else None)

    # ------------------------------------------------------------------ 1. raster
    captured_runner = compiled_runner = None
    with check("graph capture: COBA 4k raster equals the uncaptured chunk's"):
        num = 200 if dry_run else 4_000
        base = _make_coba(tb, torch, num, device)
        nets = [copy.deepcopy(base) for _ in range(3)]
        with tb.environ.context(dt=0.1 * u.ms):
            # one chunk from the same start: States agree to rounding
            one_c, one_g = runner(nets[0], False), runner(nets[1], True)
            spikes_c, spikes_g = one_c.run(chunk), one_g.run(chunk)
            sync()
            v_err = (nets[0].N.V - nets[1].N.V).abs().max().item()
            # then the rest of the run
            tic = time.perf_counter()
            rest_c = one_c.run(steps - chunk, t0=chunk * dt)
            rest_g = one_g.run(steps - chunk, t0=chunk * dt)
            eager = NetworkRunner(nets[2], chunk=chunk, compile=False, graph=False).run(steps)
            sync()
        compiled = torch.cat([spikes_c, rest_c])
        graphed = torch.cat([spikes_g, rest_g])
        mismatches = int((compiled != graphed).sum().item())
        row = {"neurons": num, "steps": steps, "spikes_compiled": int(compiled.sum().item()),
               "spikes_graph": int(graphed.sum().item()), "mismatches": mismatches,
               "mismatches_vs_eager": int((eager != graphed).sum().item()),
               "V_max_abs_diff_after_one_chunk_mV": v_err,
               "capture_s": one_g.capture_seconds, "compile_s_graph": one_g.compile_seconds,
               "compile_s_chunk": one_c.compile_seconds,
               "run_s": time.perf_counter() - tic}
        results["raster_4k"] = row
        log("   ", row)
        assert one_g._captured is not None, "the graph runner did not capture"
        assert graphed.sum() > 0
        assert v_err <= 1e-3, f"V differs by {v_err:.3e} mV after one chunk"
        assert mismatches <= (0 if dry_run else 2), f"{mismatches} raster entries differ"
        captured_runner, compiled_runner = one_g, one_c

    # ------------------------------------------------------------------ 2. launches
    with check("graph capture: device launches per step"):
        if captured_runner is None:
            raise RuntimeError("no captured runner (the raster check failed)")
        kind = device.type
        # the uncaptured chunks take t0 as a CPU tensor, as NetworkRunner passes it (another
        # device would recompile the chunk)
        t_start = torch.tensor(0.0, dtype=torch.float64)
        with tb.environ.context(dt=0.1 * u.ms), torch.inference_mode():
            tb.environ.sync_for_compiled_call()
            chunk_fn = compiled_runner._compiled or compiled_runner._run_chunk
            counts = {
                "graph replay": _count_device_work(
                    torch, lambda: captured_runner._captured.replay(0.0), sync, kind),
                "compiled chunk": _count_device_work(
                    torch, lambda: chunk_fn(t_start, dt, chunk), sync, kind),
                "eager chunk": _count_device_work(
                    torch, lambda: compiled_runner._run_chunk(t_start, dt, chunk), sync, kind),
            }
        for mode, c in counts.items():
            c["kernels_per_step"] = c["kernels"] / chunk
            log(f"   {mode}: {c['kernels']} kernels + {c['copies']} copies per chunk of "
                f"{chunk} ({c['kernels_per_step']:.1f} kernels/step)")
        results["launches"] = counts
        if dry_run:
            log("   (dry run: CPU operators, not kernels)")

    # ------------------------------------------------------------------ 3. speed
    modes = [("compiled chunk", dict(graph=False)), ("graph", dict(graph=True)),
             ("graph, eager chunk of 100", dict(graph=True, compile=False, n=100))]
    for num in sizes:
        need = 40 if num <= 4_000 else 60
        if left() < need:
            log(f"   graph timings at {num}: skipped, {left():.0f}s of budget left")
            results["timings"].append({"neurons": num, "skipped": "time budget"})
            continue
        with check(f"graph capture: COBA {num} s per simulated s"):
            net = _make_coba(tb, torch, num, device)
            sim_steps = int(round(sim_ms / dt))
            t0 = 0.0
            for mode, kw in modes:
                if left() < need / 2:
                    log(f"   {mode} at {num}: skipped (time budget)")
                    continue
                r = runner(net, **kw)
                n = kw.get("n", chunk)
                with tb.environ.context(dt=0.1 * u.ms):
                    tic = time.perf_counter()
                    r.run(2 * n, t0=t0)  # compile and/or capture
                    sync()
                    setup = time.perf_counter() - tic
                    t0 += 2 * n * dt
                    tic = time.perf_counter()
                    spikes = r.run(sim_steps, t0=t0)
                    sync()
                    wall = time.perf_counter() - tic
                    t0 += sim_steps * dt
                late = spikes[sim_steps // 2:].float()
                row = {"neurons": num, "mode": mode, "chunk": n,
                       "s_per_sim_s": wall / (sim_ms / 1000), "setup_s": setup,
                       "capture_s": r.capture_seconds, "compile_s": r.compile_seconds,
                       "captured": r._captured is not None,
                       "rate_E_Hz": late[:, : net.num_exc].mean().item() / 1e-4,
                       "rate_I_Hz": late[:, net.num_exc:].mean().item() / 1e-4}
                results["timings"].append(row)
                log("   ", {k: (round(v, 4) if isinstance(v, float) else v)
                            for k, v in row.items()})
                assert row["captured"] == bool(kw["graph"]), f"{mode}: captured={row['captured']}"
            del net
            if not dry_run:
                torch.cuda.empty_cache()
    return results


def _report(results, log):  # pragma: no cover - a script for the GPU machine
    import json

    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":  # pragma: no cover - a script for the GPU machine
    from check_harness import run_standalone  # the sibling file: this directory is on sys.path

    raise SystemExit(run_standalone(run, name="graph_capture",
                                    description=__doc__.splitlines()[0], default_budget=240.0,
                                    report=_report))
