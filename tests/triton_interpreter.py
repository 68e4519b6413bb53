"""What every Triton kernel test file needs: Triton's availability, the kernel modules imported
through Triton's interpreter on a CPU machine, and the environment a kernel runs in.

Without a GPU the kernels run on CPU tensors through the interpreter (``TRITON_INTERPRET=1``);
``@triton.jit`` picks the interpreter when a module is *imported*, so a module imported earlier
without the variable is reloaded. With CUDA the same tests run natively.
"""

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from torchbrain import kernels

ON_GPU = torch.cuda.is_available()
DEVICE = torch.device("cuda" if ON_GPU else "cpu")

try:
    import triton

    TRITON_ERROR = None
except Exception as exc:  # a broken install is as good as none
    triton = None
    TRITON_ERROR = f"{type(exc).__name__}: {exc}"

needs_triton = pytest.mark.skipif(
    TRITON_ERROR is not None,
    reason=f"triton is not importable ({TRITON_ERROR}); the kernels need it "
           "(`pip install triton`: on a CPU machine they run under TRITON_INTERPRET=1)",
)


def interpreted(fn) -> bool:
    """Whether a ``@triton.jit`` function runs on the interpreter."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(fn, InterpretedFunction)


def import_interpreted(name: str, kernel_attr: str):
    """Module ``name``, (re)imported so that its kernel ``kernel_attr`` is interpreted (the
    caller has set ``TRITON_INTERPRET=1``)."""
    mod = sys.modules.get(name)
    if mod is None:
        return importlib.import_module(name)
    if not interpreted(getattr(mod, kernel_attr)):
        return importlib.reload(mod)
    return mod


def load_kernels(name: str, kernel_attr: str, probe: Callable[[object], None],
                 also: tuple[tuple[str, str], ...] = ()):
    """The body of a test file's ``K`` fixture: the kernel module ``name``, natively on a GPU,
    else through the interpreter (``also``: further ``(module, kernel)`` pairs it calls), after
    ``probe(module)`` ran a tiny case (see :func:`skip_unless_interpreter_loops`). Skips when
    Triton cannot be imported."""
    if TRITON_ERROR is not None:
        pytest.skip(f"triton is not importable ({TRITON_ERROR})")
    if ON_GPU:
        return importlib.import_module(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRITON_INTERPRET", "1")
        for other, attr in also:
            import_interpreted(other, attr)
        mod = import_interpreted(name, kernel_attr)
        probe(mod)
    return mod


def skip_unless_interpreter_loops(run_tiny_case: Callable[[], object]) -> None:
    """Skip when this Triton's interpreter cannot run a loop with a run-time bound.

    Triton 3.6's interpreter holds scalars as 1-element arrays, which NumPy >= 2.4 refuses to
    turn into the loop bound; 3.7.1 and later run these kernels (a limit of the interpreter only:
    the compiled GPU kernels are not affected).
    """
    import numpy
    from triton.runtime.errors import InterpreterError

    try:
        run_tiny_case()
    except InterpreterError as exc:
        if "0-dimensional arrays" not in str(exc):
            raise
        pytest.skip(f"the interpreter of triton {triton.__version__} cannot run loops with "
                    f"run-time bounds under NumPy {numpy.__version__} ({exc}); triton>=3.7.1 can")


def kernel_environment(monkeypatch) -> None:
    """The body of an autouse fixture: the interpreter also reads ``TRITON_INTERPRET`` while
    running a kernel, and the kernels must not be switched off."""
    if not ON_GPU:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.delenv(kernels.DISABLE_ENV, raising=False)


def compile_for_hopper(script: str, cache_dir, extra_env: dict | None = None):
    """Run ``script`` (which builds sm_90 binaries with ``triton.compile``) in a fresh process
    without the interpreter; skip when this Triton cannot (no NVIDIA backend, no ptxas, or the
    script printed ``SKIP``). Returns the finished process."""
    import os
    import subprocess

    import triton.backends

    if "nvidia" not in getattr(triton.backends, "backends", {}):
        pytest.skip("this Triton has no NVIDIA backend")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=str(cache_dir), **(extra_env or {}))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    if proc.returncode == 0 and proc.stdout.startswith("SKIP"):
        pytest.skip(proc.stdout.strip())
    if proc.returncode and "ptxas" in proc.stderr.lower() and "not found" in proc.stderr.lower():
        pytest.skip("no ptxas next to this Triton")
    return proc


#: The GPU check and benchmark scripts: tools run on a GPU machine, not part of the package.
GPU_CHECKS = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu"


def import_check_script(name: str):
    """The GPU check script ``benchmarks/gpu/<name>.py`` as a module (its directory goes on
    ``sys.path``, as when the script is run, so it finds its sibling ``check_harness``)."""
    if str(GPU_CHECKS) not in sys.path:
        sys.path.append(str(GPU_CHECKS))
    return importlib.import_module(name)


def dry_run_check_script(name: str, log=None):
    """Call ``run(check, log, sync, left, dry_run=True)`` of the GPU check script ``name`` (see
    :func:`import_check_script`) with a ``check`` that records instead of raising; returns
    ``(result, passed, failures)``."""
    import contextlib

    if ON_GPU:
        pytest.skip("the dry run is the CPU stand-in; on a GPU run the script itself")
    failures, passed = [], []

    @contextlib.contextmanager
    def check(name):
        try:
            yield
        except Exception as exc:
            failures.append((name, repr(exc)))
        else:
            passed.append(name)

    result = import_check_script(name).run(check, log or (lambda *a: None), lambda: None,
                                                 lambda: 1e9, dry_run=True)
    return result, passed, failures
