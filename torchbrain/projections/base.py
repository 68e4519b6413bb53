"""Construction-time checks shared by projections: sizes and weight units agree."""

from __future__ import annotations

import torch
from torch import nn

from ..units import UnitError

__all__ = ["check_sizes", "check_weight_unit"]


def _num(module) -> int | None:
    return getattr(module, "num", None)


def check_sizes(owner: str, *, comm: nn.Module, post, syn=None, pre=None) -> None:
    """Raise at construction when comm, syn, pre and post disagree on population sizes."""
    n_post = getattr(comm, "n_post", None)
    if n_post is not None and n_post != post.num:
        raise ValueError(
            f"{owner}: comm maps onto {n_post} neurons but post has {post.num} "
            f"(post in_size={post.in_size})"
        )
    if syn is not None and _num(syn) is not None:
        expected = post.num if pre is None else pre.num
        side = "post" if pre is None else "pre"
        if syn.num != expected:
            raise ValueError(
                f"{owner}: the synapse has {syn.num} units but the {side} population has "
                f"{expected}; size the synapse like the population it is aligned to"
            )
    n_pre = getattr(comm, "n_pre", None)
    if pre is not None and n_pre is not None and n_pre != pre.num:
        raise ValueError(f"{owner}: comm takes {n_pre} inputs but pre has {pre.num} neurons")


def check_weight_unit(owner: str, comm: nn.Module, out: nn.Module) -> None:
    """Reject a weight whose unit the output cannot take (e.g. a current into COBA)."""
    given = getattr(comm, "weight_unit", None)
    # outputs declare the canonical unit of the synaptic variable they consume
    expected = getattr(out, "cond_unit", None)
    if given is not None and expected is not None and given != expected:
        raise UnitError(
            f"{owner}: the weights of {type(comm).__name__} are in {given} but "
            f"{type(out).__name__} needs weights in {expected}"
        )
    check_conductance_weights(owner, comm, out)


def check_conductance_weights(owner: str, comm: nn.Module, out: nn.Module) -> None:
    """Reject negative weights into a conductance output (COBA, MgBlock): g < 0 is unphysical."""
    weight = getattr(comm, "weight", None)
    if not (getattr(out, "nonnegative_weights", False) and isinstance(weight, torch.Tensor)):
        return
    with torch.no_grad():
        if weight.numel() and bool((weight < 0).any()):
            unit = getattr(comm, "weight_unit", None)
            raise ValueError(
                f"{owner}: the weights of {type(comm).__name__} (parameter 'weight') are "
                f"conductances into {type(out).__name__} and must be >= 0, got "
                f"{float(weight.min()):g}{' ' + unit if unit else ''} (smallest); make a synapse "
                "inhibitory with a reversal potential E below rest, not a negative weight"
            )
