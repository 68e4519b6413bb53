"""Triton kernels behind torchbrain's custom ops (installed as ``torchbrain.kernels``).

Nothing here imports Triton at import time: CPU builds of torch usually have no Triton, and
``import torchbrain.kernels`` must work there. The kernel modules are loaded on first use
(``torchbrain.kernels.event_ell``), and :func:`available` tells whether they can be.

The custom ops in :mod:`torchbrain.ops` call these kernels for CUDA tensors when
:func:`available` is true and fall back to their pure-torch implementation otherwise. Setting the
environment variable ``TORCHBRAIN_DISABLE_KERNELS=1`` forces the fallback (read on every call, so
a benchmark can compare both paths in one process). On a CPU machine the kernels can still be run
on CPU tensors through Triton's interpreter (``TRITON_INTERPRET=1``, set before the kernel module
is imported); the tests do that.
"""

from __future__ import annotations

import functools
import importlib
import os

__all__ = ["available", "triton_version", "DISABLE_ENV"]

#: Environment variable that, set to ``1``, makes the ops ignore these kernels.
DISABLE_ENV = "TORCHBRAIN_DISABLE_KERNELS"

_SUBMODULES = ("event_ell", "event_csr", "multistep_lif", "stdp_ell")


@functools.lru_cache(maxsize=1)
def triton_version() -> str | None:
    """The importable Triton's version, or ``None`` when Triton cannot be imported."""
    try:
        import triton
    except Exception:  # a broken install counts as missing: the ops then use torch
        return None
    return getattr(triton, "__version__", "unknown")


def available() -> bool:
    """Whether the Triton kernels can be used (Triton importable, not disabled by the env var)."""
    if os.environ.get(DISABLE_ENV, "0") not in ("", "0"):
        return False
    return triton_version() is not None


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
