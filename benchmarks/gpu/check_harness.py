"""Running one GPU check (``benchmarks/gpu/check_*.py``) on its own, outside ``gpu_check.py``.

Each check script exposes ``run(check, log, sync, left, dry_run)``; ``gpu_check.py`` calls it
with its own bookkeeping. :func:`run_standalone` gives a script the same arguments when started
directly (``python benchmarks/gpu/check_stdp.py [--budget S] [--dry-run-cpu]``): it sets
``TRITON_INTERPRET=1`` for the dry run before Triton is imported, makes ``torchbrain`` and
``torchbrain.kernels`` importable from a source checkout, prints PASS/FAIL lines with a clock,
writes ``$OUT/<name>.json`` when ``OUT`` is set, and returns the exit status (1 on a failure).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

__all__ = ["run_standalone", "import_torchbrain_kernels", "call_times"]

_ROOT = Path(__file__).resolve().parents[2]  # the checkout (benchmarks/gpu/ -> root)


def import_torchbrain_kernels():
    """Import and return ``torchbrain`` from the checkout, with ``torchbrain.kernels`` mapped onto
    ``kernels/`` as setup.cfg's ``package_dir`` does when the project is not pip-installed."""
    # the checkout first; this directory (the sibling check scripts) stays importable
    sys.path.insert(0, str(_ROOT))
    import torchbrain

    try:
        importlib.import_module("torchbrain.kernels")
    except ModuleNotFoundError:
        from importlib import util

        spec = util.spec_from_file_location(
            "torchbrain.kernels", _ROOT / "kernels" / "__init__.py",
            submodule_search_locations=[str(_ROOT / "kernels")])
        mod = util.module_from_spec(spec)
        sys.modules["torchbrain.kernels"] = mod
        spec.loader.exec_module(mod)
        torchbrain.kernels = mod
    return torchbrain


def call_times(fn: Callable[[], object], sync: Callable[[], None], *, dry_run: bool,
               warmup: int, reps: int) -> list[float]:
    """Seconds per call of ``fn``: ``reps`` calls timed with CUDA events after ``warmup`` calls
    and a ``sync()``; in a dry run one call on the host clock (it checks the code path only)."""
    if dry_run:
        tic = time.perf_counter()
        fn()
        return [time.perf_counter() - tic]
    import torch

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1e-3)
    return times


def run_standalone(run: Callable[..., dict], *, name: str, description: str,
                   default_budget: float,
                   report: Callable[[dict, Callable[..., None]], None] | None = None) -> int:
    """Parse ``--budget``/``--dry-run-cpu``, call ``run`` as ``gpu_check.py`` would, write
    ``$OUT/<name>.json``; ``report(results, log)`` prints script-specific lines at the end."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--budget", type=float, default=default_budget, help="seconds")
    parser.add_argument("--dry-run-cpu", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.dry_run_cpu:  # before the first import of triton
        os.environ["TRITON_INTERPRET"] = "1"
    import_torchbrain_kernels()
    import torch

    failures: list[str] = []

    def log(*a):
        print(f"[{time.perf_counter() - start:6.1f}s]", *a, flush=True)

    @contextlib.contextmanager
    def check(label):
        tic = time.perf_counter()
        try:
            yield
        except Exception as exc:
            failures.append(label)
            log(f"FAIL {label}: {exc!r}")
            traceback.print_exc(limit=6)
        else:
            log(f"PASS {label} ({time.perf_counter() - tic:.1f}s)")

    def sync():
        if not args.dry_run_cpu:
            torch.cuda.synchronize()

    if not args.dry_run_cpu:
        log(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    results = run(check, log, sync, lambda: args.budget - (time.perf_counter() - start),
                  dry_run=args.dry_run_cpu)
    results["failures"] = failures
    out = os.environ.get("OUT")
    if out:
        Path(out, f"{name}.json").write_text(json.dumps(results, indent=1, default=str))
    if report is not None:
        report(results, log)
    log(f"{len(failures)} failed" + (f": {failures}" if failures else ""))
    return 1 if failures else 0
