"""Registry cases of the synapses and short-term plasticity (see module_registry.py).

Outputs (COBA, CUBA, MgBlock) hold no States and are tested in test_outputs.py instead.
"""

import torchbrain as tb
from torchbrain import u
from torchbrain.synapses.alpha import Alpha
from torchbrain.synapses.expon import DualExpon, Expon
from torchbrain.synapses.kinetic import AMPA, NMDA, GABAa
from torchbrain.synapses.stp import STD, STP

from .module_registry import Case


def delta_drive(module, x):
    """What an AlignPost projection does: register the step's jump, then step the synapse."""
    module.add_delta_input("test", x)
    return module()


def spike_drive(module, x):
    """Spikes (x above a threshold) as floats that pass the gradient of x straight through."""
    spike = (x > 0.9).to(x.dtype) + (x - x.detach())
    return module(spike)


CASES = [
    Case("Expon", Expon, dict(tau=5 * u.ms), {"tau": 5 * u.mV}, 1.0, drive=delta_drive),
    Case("Expon-2d-nS", Expon,
         dict(tau=5 * u.ms, g_initializer=tb.init.Normal(1 * u.nS, 0.1 * u.nS)),
         {"g_initializer": 1 * u.ms}, 1.0, size=(2, 3), drive=delta_drive),
    Case("DualExpon", DualExpon, dict(tau_rise=1 * u.ms, tau_decay=10 * u.ms),
         {"tau_rise": 1 * u.nS}, 1.0, drive=delta_drive),
    Case("Alpha", Alpha, dict(tau=4 * u.ms), {"tau": 2 * u.mV}, 1.0),
    Case("AMPA", AMPA, {}, {"alpha": 1 / u.ms}, 1.0, drive=spike_drive),
    Case("GABAa", GABAa, dict(T_dur=1 * u.ms), {"T": 1 * u.ms}, 1.0, drive=spike_drive),
    Case("NMDA", NMDA, {}, {"beta2": 1 * u.mM}, 1.0, drive=spike_drive),
    Case("STP", STP, dict(U=0.3, tau_f=100 * u.ms, tau_d=50 * u.ms), {"tau_f": 1 * u.mV}, 1.0,
         drive=spike_drive),
    Case("STD", STD, dict(tau=50 * u.ms, U=0.2), {"tau": 1 * u.mV}, 1.0, drive=spike_drive),
]
