"""Ready-made networks: the classic benchmarks, built from the public building blocks."""

from .ei_network import COBAHHNet, COBANet, CUBANet

__all__ = ["COBANet", "CUBANet", "COBAHHNet"]
