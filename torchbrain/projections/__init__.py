"""Projections: comm (connectivity) -> syn (synapse state) -> out (membrane current) -> post."""

from .align_post import AlignPostProj
from .align_pre import AlignPreProj
from .current import CurrentProj, DeltaProj
from .gap_junction import AsymmetryGapJunction, SymmetryGapJunction

__all__ = ["AlignPostProj", "AlignPreProj", "CurrentProj", "DeltaProj", "SymmetryGapJunction",
           "AsymmetryGapJunction"]
