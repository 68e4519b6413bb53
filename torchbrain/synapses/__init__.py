"""Synaptic dynamics and short-term plasticity.

Linear filters shared by AlignPost projections (``align_post = True``): :class:`Expon`,
:class:`DualExpon`, :class:`Alpha`. Kinetic receptors driven by presynaptic spikes (AlignPre):
:class:`AMPA`, :class:`GABAa`, :class:`NMDA` (alias :data:`BioNMDA`). Short-term plasticity that
modulates presynaptic spikes: :class:`STP`, :class:`STD`.
"""

from .alpha import Alpha
from .base import Synapse
from .expon import DualExpon, Expon
from .kinetic import AMPA, NMDA, BioNMDA, GABAa
from .stp import STD, STP

__all__ = [
    "Synapse",
    "Expon",
    "DualExpon",
    "Alpha",
    "AMPA",
    "GABAa",
    "NMDA",
    "BioNMDA",
    "STP",
    "STD",
]
