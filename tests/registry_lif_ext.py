"""Registry cases of the rest of the LIF family: exponential, quadratic, generalized and
synaptic LIF neurons (see module_registry.py)."""

import torchbrain as tb
from torchbrain import u
from torchbrain.neurons.exp_if import AdExIF, AdExIFRef, ExpIF, ExpIFRef
from torchbrain.neurons.gif import Gif, GifRef
from torchbrain.neurons.quadratic_if import AdQuaIF, AdQuaIFRef, QuaIF
from torchbrain.neurons.synaptic_lif import CobaLIF, CubaLIF

from .module_registry import Case

V0 = tb.init.Normal(-62 * u.mV, 4 * u.mV)
EXP_KW = dict(R=0.1 * u.gigaohm, tau=10 * u.ms, V_th=-30 * u.mV, V_reset=-68 * u.mV,
              V_rest=-65 * u.mV, V_T=-59.9 * u.mV, delta_T=3.48 * u.mV, V_initializer=V0)
ADEX_KW = dict(EXP_KW, tau_w=30 * u.ms, a=2 * u.nS, b=40 * u.pA,
               w_initializer=tb.init.Uniform(0 * u.pA, 20 * u.pA))
QUA_KW = dict(R=0.1 * u.gigaohm, tau=10 * u.ms, V_th=-30 * u.mV, V_reset=-68 * u.mV,
              V_rest=-65 * u.mV, V_c=-50 * u.mV, c=0.07 / u.mV, V_initializer=V0)
ADQUA_KW = dict(QUA_KW, tau_w=20 * u.ms, a=1 * u.nS, b=30 * u.pA)
GIF_KW = dict(R=0.1 * u.gigaohm, tau=20 * u.ms, V_rest=-70 * u.mV, V_reset=-70 * u.mV,
              V_th_inf=-50 * u.mV, V_th_reset=-60 * u.mV, a=0.005 / u.ms, b=0.01 / u.ms,
              k1=0.2 / u.ms, k2=0.02 / u.ms, R1=0.0, R2=1.0, A1=20 * u.pA, A2=-5 * u.pA,
              V_initializer=tb.init.Normal(-65 * u.mV, 4 * u.mV))
SYN_KW = dict(R=0.1 * u.gigaohm, tau=10 * u.ms, tau_syn=5 * u.ms, V_th=-50 * u.mV,
              V_reset=-65 * u.mV, V_rest=-65 * u.mV, V_initializer=V0)


def _with_synaptic_jumps(scale):
    """Drive a synaptic LIF with a current and, every step, jumps of its g."""
    def drive(module, x):
        module.add_delta_input("test", scale * x)
        return module(x)
    return drive


CASES = [
    Case("ExpIF", ExpIF, EXP_KW, {"delta_T": 1 * u.ms}, 300.0),
    Case("ExpIFRef", ExpIFRef, {**EXP_KW, "tau_ref": 2 * u.ms}, {"tau_ref": 1 * u.mV}, 300.0),
    Case("AdExIF", AdExIF, ADEX_KW, {"a": 1 * u.pA}, 400.0),
    Case("AdExIFRef", AdExIFRef, {**ADEX_KW, "tau_ref": 2 * u.ms}, {"b": 1 * u.nS}, 400.0),
    Case("AdExIF-2d", AdExIF, ADEX_KW, {"tau_w": 1 * u.mV}, 400.0, size=(2, 3)),
    Case("QuaIF", QuaIF, QUA_KW, {"c": 1 * u.mV}, 300.0),
    Case("AdQuaIF", AdQuaIF, ADQUA_KW, {"a": 1 * u.mV}, 400.0),
    Case("AdQuaIFRef", AdQuaIFRef, {**ADQUA_KW, "tau_ref": 2 * u.ms}, {"tau_w": 1 * u.mV},
         400.0),
    Case("Gif", Gif, GIF_KW, {"k1": 1 * u.ms}, 300.0),
    Case("GifRef", GifRef, {**GIF_KW, "tau_ref": 2 * u.ms}, {"A1": 1 * u.mV}, 300.0),
    Case("CubaLIF", CubaLIF, {**SYN_KW, "g_initializer": tb.init.Uniform(0 * u.pA, 50 * u.pA)},
         {"tau_syn": 1 * u.mV}, 150.0, drive=_with_synaptic_jumps(0.5)),
    Case("CobaLIF", CobaLIF, {**SYN_KW, "E": 0 * u.mV,
                              "g_initializer": tb.init.Uniform(0 * u.nS, 2 * u.nS)},
         {"E": 1 * u.nS}, 150.0, drive=_with_synaptic_jumps(0.01)),
]
