"""Registry cases of the conductance-based, Izhikevich and reduced neurons (see
module_registry.py)."""

import torchbrain as tb
from torchbrain import u
from torchbrain.neurons.hh import HH, MorrisLecar, TraubMilesHH, WangBuzsakiHH
from torchbrain.neurons.izhikevich import Izhikevich, IzhikevichRef
from torchbrain.neurons.reduced import FitzHughNagumo, HindmarshRose

from .module_registry import Case

IZH_KW = dict(a=0.02 / u.ms, b=0.2 / u.ms, c=-65 * u.mV, d=8 * u.mV / u.ms, V_th=30 * u.mV,
              V_initializer=tb.init.Uniform(-70 * u.mV, -50 * u.mV))

CASES = [
    # inputs: uA-scale currents (in pA) for the per-area cells, pA for the COBAHH cell,
    # mV/ms for Izhikevich, dimensionless numbers for the reduced models
    Case("HH", HH, dict(gL=0.3 * u.mS, C=1 * u.uF, V_th=20 * u.mV), {"gNa": 1 * u.mV}, 1e7),
    Case("HH-2d", HH, dict(ENa=50 * u.mV, V_initializer=tb.init.Constant(-65 * u.mV)),
         {"EK": 1 * u.nS}, 1e7, size=(2, 3)),
    Case("WangBuzsakiHH", WangBuzsakiHH, dict(gNa=35 * u.mS, phi=5.0), {"C": 1 * u.mS}, 1e6),
    Case("MorrisLecar", MorrisLecar, dict(C=20 * u.uF, phi=0.04 / u.ms), {"phi": 0.04 * u.ms},
         1e8),
    Case("TraubMilesHH", TraubMilesHH, dict(C=200 * u.pF, gNa=20 * u.uS, V_T=-63 * u.mV),
         {"V_T": 1 * u.nS}, 500.0),
    Case("Izhikevich", Izhikevich, IZH_KW, {"d": 8 * u.mV}, 10.0),
    Case("IzhikevichRef", IzhikevichRef, {**IZH_KW, "tau_ref": 1 * u.ms}, {"tau_ref": 1 * u.mV},
         10.0),
    Case("FitzHughNagumo", FitzHughNagumo, dict(tau=1 * u.ms, tau_w=12.5 * u.ms),
         {"tau_w": 1 * u.mV}, 0.5),
    Case("HindmarshRose", HindmarshRose, dict(tau=1 * u.ms, r=0.006), {"tau": 1 * u.nS}, 2.0),
]
