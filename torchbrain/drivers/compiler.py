"""What compiled drivers need from the machine: a persistent cache, a C++ compiler, a notice.

``torch.compile``'s Inductor backend turns a step into C++ (CPU) or Triton (CUDA) code, compiles
it with the system's C++ compiler and caches the result. torchbrain's compiled drivers
(:class:`~torchbrain.runner.NetworkRunner` with ``compile=True``, :func:`torchbrain.jit`) use
this module so that

* **warm runs do not recompile in a new process**: Inductor's on-disk caches (the FX graph cache
  and the AOTAutograd cache, on by default in torch) are kept under one directory a user can find
  and clear, :func:`cache_dir` ``/ "inductor"`` (``TORCHBRAIN_CACHE_DIR``, default
  ``~/.cache/torchbrain``), instead of torch's default under the temporary directory, which is
  wiped at reboot. A ``TORCHINDUCTOR_CACHE_DIR`` set by the user wins;
* **a machine without a C/C++ compiler runs the same code eagerly** instead of failing with an
  Inductor traceback: :func:`compile_problem` says why a compile cannot work before one is
  tried, :func:`compiler_error` recognises a compile that failed for that reason, and
  :func:`notice` tells the user once per process;
* **the user sees that a first compile is under way**: :func:`first_compile` tells whether a
  compiled function of this signature was ever built with this cache, so the "compiling (first
  run only)" line is printed only when it is true.

To clear every cached compilation: delete the directory printed by
``python -c "import torchbrain; print(torchbrain.drivers.compiler.cache_dir())"``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from ..cache import CACHE_DIR_ENV, cache_dir

__all__ = [
    "CACHE_DIR_ENV",
    "cache_dir",
    "compile_problem",
    "compiler_error",
    "cxx_compiler",
    "first_compile",
    "compiler_error",
    "mark_compiled",
    "notice",
    "notice_eager_fallback",
    "use_persistent_cache",
]


_INDUCTOR_ENV = "TORCHINDUCTOR_CACHE_DIR"
# Read when torchbrain is imported: torch writes its default into the variable the first time
# anything (even an eager custom op) asks for its cache directory, so a value seen later may be
# torch's own rather than the user's.
_USER_INDUCTOR_DIR = os.environ.get(_INDUCTOR_ENV)
_noticed: set[str] = set()


def use_persistent_cache() -> Path:
    """Point Inductor's on-disk caches at ``cache_dir() / "inductor"``; returns the one in use.

    Inductor reads ``TORCHINDUCTOR_CACHE_DIR`` each time it opens its caches, so this runs
    before a torchbrain driver compiles. A value the user set (before importing torchbrain, or
    since, to anything but torch's default) is kept.
    """
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    current = os.environ.get(_INDUCTOR_ENV)
    chosen_by_user = current and (current == _USER_INDUCTOR_DIR
                                  or os.path.abspath(current) != default_cache_dir())
    if chosen_by_user:
        return Path(current)
    target = cache_dir() / "inductor"
    os.environ[_INDUCTOR_ENV] = str(target)
    return target


def cxx_compiler() -> str | None:
    """The C++ compiler Inductor would use (its own search: ``$CXX``, then ``g++``), or ``None``.

    Asked afresh on every call (it runs ``<compiler> --version``, a few milliseconds): a test or
    a user may change ``PATH`` or ``CXX`` within the process.
    """
    from torch._inductor import cpp_builder, exc

    try:
        return cpp_builder.get_cpp_compiler()
    except (exc.InvalidCxxCompiler, OSError):
        return None


def compile_problem(backend) -> str | None:
    """Why ``torch.compile(backend=backend)`` cannot work on this machine, or ``None``.

    Only the Inductor backend (torch's default) builds native code; it needs a working C++
    compiler for CPU kernels (and Triton, on CUDA, a C compiler for its launchers). Calls
    :func:`use_persistent_cache` first.
    """
    if backend != "inductor":
        return None
    # Inductor's compiler search takes a lock in its cache directory, which fixes that
    # directory for the process: choose it first.
    use_persistent_cache()
    if cxx_compiler() is None:
        cxx = os.environ.get("CXX")
        looked = f"CXX={cxx!r}" if cxx else "g++ on PATH, CXX is unset"
        return f"no working C++ compiler was found: looked for {looked}"
    return None


def compiler_error(err: BaseException) -> BaseException | None:
    """The exception in ``err``'s chain saying the C++ build failed, or ``None``.

    That is Inductor's ``InvalidCxxCompiler`` (no compiler) or ``CppCompileError`` (a compiler
    that cannot build the code, e.g. without the Python headers); Dynamo wraps either. Any other
    error (a bug in the user's step, an unsupported construct) is not one.
    """
    from torch._inductor import exc

    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, exc.InvalidCxxCompiler | exc.CppCompileError):
            return err
        inner = getattr(err, "inner_exception", None)
        err = inner if isinstance(inner, BaseException) else (err.__cause__ or err.__context__)
    return None


def notice(kind: str, message: str) -> None:
    """Write ``torchbrain: <message>`` on stderr, once per process for each ``kind``."""
    if kind in _noticed:
        return
    _noticed.add(kind)
    sys.stderr.write(f"torchbrain: {message}\n")
    sys.stderr.flush()


def notice_eager_fallback(problem: str) -> None:
    """The one notice (per process) that a compile asked for runs eagerly because of ``problem``."""
    notice("no-compiler", (
        f"cannot compile ({problem}); running without compiling instead (slower per step, same "
        "results). Install a C++ compiler (e.g. g++) or set CXX to compile."
    ))


def _marker(signature: str) -> Path:
    import torch

    inductor = os.environ.get(_INDUCTOR_ENV, "")
    digest = hashlib.sha256("\0".join((torch.__version__, inductor, signature)).encode())
    return cache_dir() / "compiled" / digest.hexdigest()[:32]


def first_compile(signature: str) -> bool:
    """Whether nothing of this ``signature`` was compiled with the cache now in use.

    ``signature`` names what decides the compiled code (the network's modules and State shapes,
    the chunk, ``dt``, ...); a compiled function records it with :func:`mark_compiled`. The
    answer is about torchbrain's own record: a cache cleared by hand clears it too.
    """
    return not _marker(signature).exists()


def mark_compiled(signature: str) -> None:
    """Record that a function of this ``signature`` is compiled and cached (best effort)."""
    marker = _marker(signature)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(signature[:4096])
    except OSError:
        pass  # a read-only cache only costs the notice its honesty, not the run
