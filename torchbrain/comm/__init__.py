"""Connectivity layers ("comm"): map presynaptic activity onto postsynaptic populations."""

from .base import Comm
from .dense import AllToAll, EventLinear, Linear, OneToOne, SignedWLinear
from .fixed_num import EventFixedNumConn, EventFixedProb, FixedNumConn, fixed_out_degree_table
from .sparse import FixedProb, SparseLinear, fixed_prob_csr

__all__ = [
    "Comm", "Linear", "SignedWLinear", "AllToAll", "OneToOne", "EventLinear",
    "EventFixedNumConn", "EventFixedProb", "FixedNumConn", "fixed_out_degree_table",
    "FixedProb", "SparseLinear", "fixed_prob_csr",
]
