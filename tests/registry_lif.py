"""Registry cases of the LIF family (see module_registry.py)."""

import torchbrain as tb
from torchbrain import u

from .module_registry import Case

LIF_KW = dict(tau=10 * u.ms, V_th=-50 * u.mV, V_rest=-65 * u.mV, V_reset=-65 * u.mV,
              R=0.1 * u.gigaohm, V_initializer=tb.init.Normal(-60 * u.mV, 5 * u.mV))

CASES = [
    Case("LIF", tb.LIF, LIF_KW, {"tau": 10 * u.mV}, 300.0),
    Case("LIFRef", tb.LIFRef, {**LIF_KW, "tau_ref": 2 * u.ms}, {"tau_ref": 1 * u.mV}, 300.0),
    Case("ALIF", tb.ALIF, {**LIF_KW, "tau_a": 100 * u.ms, "beta": 1 * u.mV},
         {"beta": 1 * u.ms}, 300.0),
    Case("IF", tb.IF, dict(tau=10 * u.ms, V_th=10 * u.mV, R=0.1 * u.gigaohm),
         {"V_th": 10 * u.nS}, 300.0),
    Case("LIF-2d", tb.LIF, LIF_KW, {"V_th": 1 * u.ms}, 300.0, size=(2, 3)),
]
