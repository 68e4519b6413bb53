"""Where torchbrain keeps what it builds once: one directory the user can find and clear.

``$TORCHBRAIN_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/torchbrain``, else
``~/.cache/torchbrain``. The native CPU kernels (:mod:`torchbrain.ops.native`) live in its
``native`` subdirectory, compiled chunks (:mod:`torchbrain.drivers.compiler`) in ``inductor``;
deleting the directory clears both (the next run builds again).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_DIR_ENV", "cache_dir"]

#: Environment variable naming torchbrain's cache directory.
CACHE_DIR_ENV = "TORCHBRAIN_CACHE_DIR"


def cache_dir() -> Path:
    """torchbrain's cache directory (not created here)."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser().absolute() / "torchbrain"
