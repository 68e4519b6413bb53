"""Connectivity layers ("comm"): map presynaptic activity onto postsynaptic populations."""

from .base import Comm
from .fixed_num import EventFixedNumConn, EventFixedProb, FixedNumConn, fixed_out_degree_table

__all__ = ["Comm", "EventFixedNumConn", "EventFixedProb", "FixedNumConn",
           "fixed_out_degree_table"]
