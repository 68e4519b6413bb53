"""Lazy imports of the optional packages the interop modules speak to."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(package: str, who: str, extra: str = "interop") -> ModuleType:
    """Import ``package`` or raise an ``ImportError`` naming the caller and the extra to install.

    The interop packages (nir, neo, pynwb, ...) are not part of torchbrain's core install, so
    they are imported on first use rather than when ``torchbrain`` is imported.
    """
    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise ImportError(
            f"{who} needs the optional package '{package}', which is not installed; install it "
            f"with `pip install torchbrain[{extra}]` (or `pip install {package}`)"
        ) from err
