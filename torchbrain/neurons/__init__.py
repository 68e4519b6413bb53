"""Spiking neuron populations."""

from .base import Neuron
from .exp_if import AdExIF, AdExIFRef, ExpIF, ExpIFRef
from .gif import Gif, GifRef
from .hh import HH, MorrisLecar, TraubMilesHH, WangBuzsakiHH
from .izhikevich import Izhikevich, IzhikevichRef
from .lif import ALIF, IF, LIF, LIFRef
from .quadratic_if import AdQuaIF, AdQuaIFRef, QuaIF
from .reduced import FitzHughNagumo, HindmarshRose
from .synaptic_lif import CobaLIF, CubaLIF

__all__ = [
    "Neuron", "IF", "LIF", "LIFRef", "ALIF", "ExpIF", "ExpIFRef", "AdExIF", "AdExIFRef",
    "QuaIF", "AdQuaIF", "AdQuaIFRef", "Gif", "GifRef", "CubaLIF", "CobaLIF",
    "HH", "WangBuzsakiHH", "MorrisLecar", "TraubMilesHH", "Izhikevich", "IzhikevichRef",
    "FitzHughNagumo", "HindmarshRose",
]
