"""An opaque copy that stops Inductor from fusing a producer into its consumers.

Inductor inlines a pointwise producer into each of its consumers. When every step of a chain
reads its input twice (as the rounds of the counter-based hash of
:mod:`torchbrain.inputs._counter_rng` do), the inlined expression doubles per step and its
compile time explodes. :func:`fusion_boundary` returns a copy of its input through a custom op,
which Inductor cannot see into, so the value is materialised once and the expression tree is cut
there. ``register_fake`` keeps ``torch.compile(fullgraph=True)`` free of graph breaks; the body is
the same on every device (one copy).
"""

from __future__ import annotations

import torch

__all__ = ["fusion_boundary"]


@torch.library.custom_op("torchbrain::fusion_boundary", mutates_args=())
def _fusion_boundary(x: torch.Tensor) -> torch.Tensor:
    return x.clone()


@_fusion_boundary.register_fake
def _(x):
    return torch.empty_like(x)


def fusion_boundary(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` that compiled code materialises (see the module docstring); no autograd
    formula (the hash it serves works on integers)."""
    return _fusion_boundary(x)
