"""Projections: comm (connectivity) -> syn (synapse state) -> out (membrane current) -> post."""

from .align_post import AlignPostProj

__all__ = ["AlignPostProj"]
