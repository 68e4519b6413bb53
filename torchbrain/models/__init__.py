"""Ready-made networks: the classic benchmarks, built from the public building blocks."""

from .ei_network import COBAHHNet, COBANet, CUBANet
from .microcircuit import Microcircuit

__all__ = ["COBANet", "CUBANet", "COBAHHNet", "Microcircuit"]
