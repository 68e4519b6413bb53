"""Registry cases of the stateful inputs and readouts (see module_registry.py).

The generic suite drives every case with a random tensor of shape ``(batch, *size)``. The noise
generators take no input: their drive first checks the tensor against the module's State shape
(``_check_input``, which raises the suite's expected "batch size" error) and then steps the
module. They are built with ``trainable=True`` so that their States carry an autograd graph
(the suite checks deepcopy/pickle after an autograd forward).

Poisson sources, ``PoissonInput`` and ``SpikeTime`` are not registered: their outputs are
spikes or counts with no autograd graph and no time/voltage parameter, which this suite's
checks presume; tests/test_inputs.py checks their batch handling, copying, pickling and exact
save/restore instead.
"""

from torchbrain import u
from torchbrain.inputs.currents import OUProcessInput, WienerProcessInput
from torchbrain.readouts import LeakyRateReadout, LeakySpikeReadout

from .module_registry import Case


def _no_input(module, x):
    module._check_input(x)
    return module()


CASES = [
    Case("OUProcessInput", OUProcessInput,
         dict(mean=50 * u.pA, sigma=10 * u.pA, tau=5 * u.ms, trainable=True, seed=1),
         {"tau": 5 * u.pA}, drive=_no_input),
    Case("OUProcessInput-window", OUProcessInput,
         dict(mean=1 * u.mV, sigma=0.5 * u.mV, tau=2 * u.ms, duration=1.0 * u.ms,
              t_start=0.2 * u.ms, trainable=True, seed=2),
         {"sigma": 1 * u.pA}, drive=_no_input, size=(2, 3)),
    Case("WienerProcessInput", WienerProcessInput,
         dict(sigma=3 * u.pA / u.ms ** 0.5, trainable=True, seed=3),
         {"sigma": 3 * u.pA}, drive=_no_input),
    Case("LeakyRateReadout", LeakyRateReadout, dict(out_size=6, tau=10 * u.ms),
         {"tau": 10 * u.mV}),
    Case("LeakySpikeReadout", LeakySpikeReadout,
         dict(out_size=6, tau=5 * u.ms, V_th=0.5 * u.mV, spk_reset="soft"),
         {"V_th": 1 * u.ms}, 2.0),
    Case("LeakySpikeReadout-hard", LeakySpikeReadout,
         dict(out_size=6, tau=5 * u.ms, V_th=0.5 * u.mV, spk_reset="hard"),
         {"tau": 1 * u.nS}, 2.0),
]
