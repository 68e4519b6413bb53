"""Long-term synaptic plasticity: connectivity layers whose weights learn from spike timing."""

from .stdp import DenseSTDP, FixedNumConnSTDP, STDPComm

__all__ = ["STDPComm", "DenseSTDP", "FixedNumConnSTDP"]
