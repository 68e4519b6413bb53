"""The one device-dispatch rule of every op: on CUDA, the Triton kernel when it can run, else the
pure-torch body.

Every op of this package has a pure-torch body (its CPU path and the reference of its kernels).
On CUDA tensors :func:`register_cuda` makes the op call the launcher of
:mod:`torchbrain.kernels` instead, when

* Triton can be imported and ``TORCHBRAIN_DISABLE_KERNELS`` is not set
  (:func:`torchbrain.kernels.available`), and
* the op's ``supports(*args)`` accepts the arguments (dtypes, layouts the kernel handles);

otherwise the pure-torch body runs on the GPU. The choice is made on every call, not when a graph
is traced: the op is opaque to ``torch.compile``, so the environment switch takes effect without
recompiling, and a benchmark can compare both paths in one process.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

__all__ = ["triton_kernels", "register_cuda"]


def triton_kernels(name: str) -> ModuleType | None:
    """``torchbrain.kernels.<name>`` when the Triton kernels can be used, else ``None``.

    Imported by its full name on first use only: CPU builds of torch have no Triton, and
    ``torchbrain.kernels`` itself imports nothing heavy.
    """
    kernels = importlib.import_module("torchbrain.kernels")
    if not kernels.available():
        return None
    return importlib.import_module(f"torchbrain.kernels.{name}")


def register_cuda(op, kernels: str, launch: str | Callable, torch_body: Callable,
                  supports: Callable[..., bool]) -> Callable:
    """Register ``op``'s CUDA implementation.

    Parameters
    ----------
    op : torch.library.CustomOpDef
        The custom op.
    kernels : str
        The module of :mod:`torchbrain.kernels` holding its launcher.
    launch : str or callable
        The launcher's name in that module, called with the op's arguments; or a callable
        ``launch(module, *args)`` when the launcher takes them differently.
    torch_body : callable
        The pure-torch implementation, called with the op's arguments.
    supports : callable
        ``supports(*args) -> bool``: whether the kernel takes these arguments.

    Returns
    -------
    callable
        The registered CUDA implementation.
    """

    def cuda(*args):
        module = triton_kernels(kernels) if supports(*args) else None
        if module is None:
            return torch_body(*args)
        if isinstance(launch, str):
            return getattr(module, launch)(*args)
        return launch(module, *args)

    cuda.__name__ = cuda.__qualname__ = f"{op._name}_cuda"
    op.register_kernel("cuda")(cuda)
    return cuda
