"""Native CPU bodies for the custom ops: small plain-C sources, built once and cached.

Why plain C through ``ctypes`` rather than a C++ extension: a source including
``torch/extension.h`` took about 40 s to compile here, which would move the first-run wait from
Inductor to the C++ compiler. These sources include nothing beyond ``<stdint.h>`` and
``<string.h>``; the system C compiler builds one in a fraction of a second, once per source,
compiler and machine, into a shared library that later processes load from the cache. The op
passes the raw data pointers of contiguous tensors, so a call costs its loop plus about a
microsecond of ``ctypes`` (a Python-bodied op costs a dozen dispatches, ~20-40 us, instead).

Where the libraries live (the user can find and clear them): ``$TORCHBRAIN_CACHE_DIR/native``
when that variable is set, else ``$XDG_CACHE_HOME/torchbrain/native``, else
``~/.cache/torchbrain/native``. A file is named after the SHA-256 of the source, the compiler's
path, size and modification time, the flags and the platform: a changed kernel or compiler builds
a new file, and a stale one is never loaded.

Which compiler: ``$CC`` when set (``CC=/nonexistent`` hides the compiler), else ``cc``, ``gcc`` or
``clang`` from ``PATH``. When none is found, the build fails, or ``TORCHBRAIN_NATIVE=0`` is set,
:meth:`NativeLibrary.load` returns ``None`` and the op runs its pure-torch body (the reference).
The variables are read on first use; :func:`refresh` reads them again (a test, or a benchmark
comparing both paths in one process). The reason for a fallback is logged once at level INFO on
the logger ``torchbrain.ops.native`` and kept in :func:`unavailable_reason`, for a caller that
wants to tell the user.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..cache import cache_dir as torchbrain_cache_dir

__all__ = ["NATIVE_ENV", "NativeLibrary", "cache_dir", "compiler", "contiguous_args", "enabled",
           "refresh", "unavailable_reason"]

logger = logging.getLogger(__name__)

#: Environment variable that, set to ``0``, makes the ops skip their native CPU bodies.
NATIVE_ENV = "TORCHBRAIN_NATIVE"

# -O3 vectorises the scans; without -ffast-math nothing is reassociated, so the sums stay in the
# order written (the pure-torch bodies' order). No -march=native: a cache shared between machines
# never loads foreign instructions.
_FLAGS = ("-O3", "-shared", "-fPIC", "-std=c99")
_COMPILE_TIMEOUT_S = 60

_failures: dict[str, str] = {}
# name -> the library in use (or None) under the current settings: one dict look-up per op call
_active: dict[str, ctypes.CDLL | None] = {}


def enabled() -> bool:
    """Whether the native bodies may be used (``TORCHBRAIN_NATIVE`` is not ``0``)."""
    return _settings()[0]


def cache_dir() -> Path:
    """Where the built libraries are kept: the ``native`` subdirectory of torchbrain's cache."""
    return torchbrain_cache_dir() / "native"


def compiler() -> str | None:
    """The C compiler to use: ``$CC`` if set (``None`` when it does not exist), else from PATH."""
    return _settings()[1]


@functools.lru_cache(maxsize=1)
def _settings() -> tuple[bool, str | None]:
    # Read once per process (an op call must not pay for environment look-ups and a PATH search
    # twice per step); refresh() reads them again.
    on = os.environ.get(NATIVE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")
    chosen = os.environ.get("CC")
    if chosen:
        return on, shutil.which(chosen)
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return on, found
    return on, None


def refresh() -> None:
    """Read ``TORCHBRAIN_NATIVE``, ``CC`` and ``PATH`` again (e.g. after changing them in a test).

    Libraries already built stay in the cache directory; a library is loaded again only for a
    different compiler.
    """
    _settings.cache_clear()
    _active.clear()


def unavailable_reason(name: str) -> str | None:
    """Why the library ``name`` could not be built or loaded in this process (``None``: it was)."""
    return _failures.get(name)


class NativeLibrary:
    """A plain-C source and its functions' signatures, built and loaded on first use.

    Parameters
    ----------
    name : str
        Short name of the library (part of its file name and of the messages).
    source : str
        C99 source; it must include nothing beyond the C standard headers.
    signatures : dict
        ``{function: (restype, [argtypes])}`` set on the loaded library's functions.
    """

    def __init__(self, name: str, source: str, signatures: dict):
        self.name = name
        self.source = source
        self.signatures = tuple((k, v[0], tuple(v[1])) for k, v in signatures.items())

    def load(self) -> ctypes.CDLL | None:
        """The loaded library, or ``None`` when native code cannot be used (see the module)."""
        try:
            return _active[self.name]
        except KeyError:
            pass
        on, cc = _settings()
        if on:
            lib = _load(self.name, self.source, self.signatures, cc, cache_dir())
        else:
            lib = None
            _failures[self.name] = (f"torchbrain.ops.native: the native CPU kernels "
                                    f"'{self.name}' are not used ({NATIVE_ENV}=0)")
        _active[self.name] = lib
        return lib

    def __repr__(self) -> str:
        return f"NativeLibrary({self.name!r})"


def contiguous_args(*tensors, dtype=None):
    """The tensors as the C bodies read them: contiguous, the last one also in ``dtype``.

    Each conversion is a dispatch, so a tensor that is already as needed is passed through (this
    runs twice per simulation step)."""
    *front, last = tensors
    out = [t if t.is_contiguous() else t.contiguous() for t in front]
    if (dtype is not None and last.dtype != dtype) or not last.is_contiguous():
        last = last.to(dtype if dtype is not None else last.dtype).contiguous()
    return (*out, last)


@functools.cache
def _load(name: str, source: str, signatures: tuple, cc: str | None,
          directory: Path) -> ctypes.CDLL | None:
    # cached per compiler and directory, so a test hiding the compiler sees no stale library
    try:
        path = _build(name, source, cc, directory)
        lib = ctypes.CDLL(str(path))
        for function, restype, argtypes in signatures:
            fn = getattr(lib, function)
            fn.restype, fn.argtypes = restype, list(argtypes)
    except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as err:
        reason = f"torchbrain.ops.native: the native CPU kernels '{name}' are not used ({err})"
        _failures[name] = reason
        # no compiler is a supported set-up (told once by the runner); a failing one is a fault
        level = logging.INFO if cc is None else logging.WARNING
        logger.log(level, "%s; the ops run their pure-torch body", reason)
        return None
    _failures.pop(name, None)
    return lib


def _build(name: str, source: str, cc: str | None, directory: Path) -> Path:
    if cc is None:
        wanted = os.environ.get("CC")
        raise RuntimeError(f"no C compiler: CC={wanted!r} does not exist" if wanted else
                           "no C compiler (cc, gcc, clang) on PATH; set CC to use one")
    stat = os.stat(cc)
    key = "\0".join((source, os.path.realpath(cc), str(stat.st_size), str(stat.st_mtime_ns),
                     " ".join(_FLAGS), sys.platform, platform.machine()))
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    suffix = ".dll" if sys.platform == "win32" else ".so"
    target = directory / f"{name}-{digest}{suffix}"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    # build in a private temporary directory, then rename: concurrent processes never load a
    # half-written library
    with tempfile.TemporaryDirectory(dir=directory, prefix=f".{name}-build-") as tmp:
        src = Path(tmp) / f"{name}.c"
        src.write_text(source)
        out = Path(tmp) / f"{name}{suffix}"
        result = subprocess.run([cc, *_FLAGS, "-o", str(out), str(src)], capture_output=True,
                                text=True, timeout=_COMPILE_TIMEOUT_S)
        if result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()
            raise RuntimeError(f"{os.path.basename(cc)} failed: "
                               f"{message[0] if message else result.returncode}")
        os.replace(out, target)
    return target
