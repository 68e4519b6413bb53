"""Spiking neuron populations."""

from .base import Neuron
from .lif import ALIF, IF, LIF, LIFRef

__all__ = ["Neuron", "IF", "LIF", "LIFRef", "ALIF"]
