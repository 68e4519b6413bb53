"""Spiking neuron populations."""

from .base import Neuron
from .exp_if import AdExIF, AdExIFRef, ExpIF, ExpIFRef
from .gif import Gif, GifRef
from .lif import ALIF, IF, LIF, LIFRef
from .quadratic_if import AdQuaIF, AdQuaIFRef, QuaIF
from .synaptic_lif import CobaLIF, CubaLIF

__all__ = [
    "Neuron", "IF", "LIF", "LIFRef", "ALIF", "ExpIF", "ExpIFRef", "AdExIF", "AdExIFRef",
    "QuaIF", "AdQuaIF", "AdQuaIFRef", "Gif", "GifRef", "CubaLIF", "CobaLIF",
]
