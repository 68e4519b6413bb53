"""Speaking the field's formats: NIR graphs in and out, Neo and NWB out.

* :mod:`torchbrain.interop.nir` -- :func:`~torchbrain.interop.nir.import_from_nir` and
  :func:`~torchbrain.interop.nir.export_to_nir` (the Neuromorphic Intermediate Representation);
* :mod:`torchbrain.interop.neo` -- monitor and run results as ``neo.SpikeTrain`` /
  ``neo.AnalogSignal`` (for Elephant);
* :mod:`torchbrain.interop.nwb` -- an NWB file (pynwb) with the spikes, traces and the network's
  description.

The third-party packages are optional (``pip install torchbrain[interop]``) and imported only
when one of these functions is called.
"""

from .graph import SpikingGraph
from .neo import to_neo
from .nir import NIR_UNITS, export_to_nir, import_from_nir
from .nwb import describe_network, read_nwb, write_nwb

__all__ = [
    "NIR_UNITS",
    "SpikingGraph",
    "describe_network",
    "export_to_nir",
    "import_from_nir",
    "read_nwb",
    "to_neo",
    "write_nwb",
]
