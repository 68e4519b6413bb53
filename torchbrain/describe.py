"""Deferred constructors: ``Cls.desc(*args, **kw)``.

A descriptor records a class and its arguments without building anything. Projections use the
descriptor's ``identifier`` to decide whether two projections onto one post population can share a
single synapse (equal identifiers: share one State of size ``N_post``). That sharing is what keeps
synaptic memory linear in neurons rather than in synapses.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from .units import is_quantity

__all__ = ["ParamDescriber"]


def _hashable(value: Any) -> Any:
    """A hashable stand-in for an argument, equal for equal arguments."""
    if is_quantity(value):
        mag = value.magnitude
        if isinstance(mag, torch.Tensor):
            mag = tuple(mag.detach().cpu().flatten().tolist())
        elif hasattr(mag, "tolist"):
            mag = mag.tolist()
        return ("quantity", _hashable(mag), str(value.units))
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), tuple(value.detach().cpu().flatten().tolist()))
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


class ParamDescriber:
    """A class and the arguments to build it with; calling it builds a new instance.

    Parameters
    ----------
    cls : type
        The module class.
    *args, **kwargs
        Constructor arguments.
    """

    def __init__(self, cls: type, *args: Any, **kwargs: Any):
        try:
            inspect.signature(cls).bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{cls.__name__}.desc(...): {err}") from None
        self.cls = cls
        self.args = args
        self.kwargs = kwargs
        self.identifier = (cls, _hashable(args), _hashable(kwargs))

    def __call__(self, *extra_args: Any, **extra_kwargs: Any):
        return self.cls(*self.args, *extra_args, **{**self.kwargs, **extra_kwargs})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamDescriber) and self.identifier == other.identifier

    def __hash__(self) -> int:
        return hash(self.identifier)

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.cls.__name__}.desc({', '.join(parts)})"
