"""One time-step rule for both worlds: a module's own ``dt`` argument, else ``tb.environ``'s,
else an error naming the module and how to set one (training layers and populations alike)."""

import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.training import (
    LeakyIntegratorReadout,
    MultiStepALIF,
    MultiStepIF,
    MultiStepLIF,
    RecurrentLIF,
)


def test_one_dt_rule_for_layers_and_populations():
    # the layer's own dt, else tb.environ's, else an error: the rule of the populations too
    x = torch.rand(10, 1, 2) * 3
    with tb.environ.context(dt=0.5 * u.ms):
        env = MultiStepLIF(2, tau=5.0)(x)
        own = MultiStepLIF(2, tau=5.0, dt=1.0)(x)
        readout = LeakyIntegratorReadout(None, 2, tau=4.0)(x)
    torch.testing.assert_close(env, MultiStepLIF(2, tau=5.0, dt=0.5 * u.ms)(x))
    torch.testing.assert_close(readout, LeakyIntegratorReadout(None, 2, tau=4.0, dt=0.5)(x))
    with tb.environ.context(dt=1.0 * u.ms):
        torch.testing.assert_close(own, MultiStepLIF(2, tau=5.0)(x))
    assert not torch.equal(env, own)
    for layer in (MultiStepLIF(2, tau=5.0), MultiStepALIF(2), RecurrentLIF(2),
                  LeakyIntegratorReadout(None, 2)):
        name = type(layer).__name__
        with pytest.raises(KeyError, match=rf"{name} needs the time step 'dt', which is not "
                           rf"set.*or give the layer its own step \({name}\(\.\.\., "
                           rf"dt=1 \* u\.ms\)\)"):
            layer(x)
    population = tb.init_all_states(tb.LIF(2))
    with pytest.raises(KeyError, match=r"LIF needs the time step 'dt', which is not set"):
        population(1.0)
    # no time constant, no step: the perfect integrator needs no dt
    assert MultiStepIF(2)(x).shape == x.shape

