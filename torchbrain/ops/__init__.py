"""``torch.library`` custom ops: every op of torchbrain, one file per op.

Each file holds an op's schema, its pure-torch body (the CPU path and the reference of its
kernels), ``register_fake`` (no graph break under ``torch.compile(fullgraph=True)``),
``register_autograd`` where it has a gradient, and its CUDA dispatch into
:mod:`torchbrain.kernels` through the one rule of ``ops/_dispatch.py``.
"""

from . import stdp
from .delayed_csr import delayed_csr_deliver
from .event_csr import (
    csr_to_dense,
    event_csr_matvec,
    event_csr_matvec_reference,
    event_dense_matvec,
    event_dense_matvec_reference,
)
from .event_ell import event_ell_matvec, event_ell_matvec_reference
from .fusion_boundary import fusion_boundary
from .multistep_lif import multistep_lif, multistep_lif_reference, surrogate_key

__all__ = [
    "event_ell_matvec", "event_ell_matvec_reference", "event_csr_matvec",
    "event_csr_matvec_reference", "csr_to_dense", "event_dense_matvec",
    "event_dense_matvec_reference", "multistep_lif", "multistep_lif_reference", "surrogate_key",
    "delayed_csr_deliver", "fusion_boundary", "stdp",
]
