"""Registry cases of the long-term plasticity layers (see module_registry.py).

The STDP layers are gradient-free by design (traces and weights are updated without autograd),
so their cases set ``graph_states=False``: the deepcopy/pickle check then does not require a
State that carries a graph.
"""

from torchbrain import u
from torchbrain.plasticity.stdp import DenseSTDP, FixedNumConnSTDP

from .module_registry import Case


def learn_drive(module, x):
    """Deliver the step's presynaptic spikes, then learn from them and some post spikes."""
    pre = (x > 0.9).to(x.dtype) + (x - x.detach())
    post = (x < 0.3).to(x.dtype)
    y = module(pre)
    module.update_weights(pre, post)
    return y


CASES = [
    Case("DenseSTDP", DenseSTDP, dict(out_size=6, w_init=0.5 * u.nS, w_max=1 * u.nS),
         {"tau_plus": 1 * u.mV}, drive=learn_drive, graph_states=False),
    Case("FixedNumConnSTDP", FixedNumConnSTDP,
         dict(out_size=6, conn_num=3, w_init=0.5 * u.nS, w_max=1 * u.nS, seed=0,
              rule="multiplicative"),
         {"A_plus": 1 * u.mV}, drive=learn_drive, graph_states=False),
]
