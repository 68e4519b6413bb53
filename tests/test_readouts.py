"""Readouts against hand-written recurrences of their equations, gradients and input checks."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.functional import lif as F
from torchbrain.readouts import LeakyRateReadout, LeakySpikeReadout, leaky_rate_step

F64 = torch.float64


def drive(module, xs, dts):
    outs = []
    for x, dt in zip(xs, dts, strict=True):
        with tb.environ.context(dt=dt):
            outs.append(module(x))
    return torch.stack(outs)


def test_leaky_rate_readout_matches_recurrence_and_reads_dt_at_run_time():
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(5, 3, generator=gen, dtype=F64)
    tau = torch.tensor([2.0, 5.0, 20.0], dtype=F64)
    # built with no dt in the environment (the reference needs dt at construction)
    ro = LeakyRateReadout(5, 3, tau=tau * u.ms, w_init=W, dtype=F64)
    tb.init_all_states(ro, batch_size=2)
    xs = torch.rand(40, 2, 5, generator=gen, dtype=F64)
    dts = [0.1] * 20 + [1.0] * 20  # dt changes mid-run
    out = drive(ro, xs, dts).detach().numpy()
    r = np.zeros((2, 3))
    for k in range(40):
        r = np.exp(-dts[k] / tau.numpy()) * r + xs[k].numpy() @ W.numpy()
        np.testing.assert_allclose(out[k], r, rtol=1e-12, atol=1e-12)
    assert isinstance(ro.weight, torch.nn.Parameter)
    assert ro.weight.shape == (5, 3)


def test_leaky_rate_readout_default_weight_is_kaiming():
    ro = LeakyRateReadout(400, 300)
    assert float(ro.weight.detach().std()) == pytest.approx(math.sqrt(2 / 400), rel=0.05)
    assert float(ro.tau) == 5.0


def reference_spike_readout(xs, W, tau, V_th, dt, soft):
    """The IF readout of brainstate, in float64 NumPy: lazy reset, exact leak towards x W."""
    V = np.zeros(W.shape[1])
    Vs, spikes = [], []
    for x in xs:
        s = (V - V_th) / V_th >= 0
        V = np.where(s, V - V_th, V) if soft else np.where(s, 0.0, V)
        V_inf = x @ W
        V = V_inf + (V - V_inf) * math.exp(-dt / tau)
        Vs.append(V)
        spikes.append(((V - V_th) / V_th >= 0).astype(float))
    return np.array(spikes), np.array(Vs)


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_leaky_spike_readout_matches_if_equations(reset):
    gen = torch.Generator().manual_seed(1)
    W = torch.rand(8, 4, generator=gen, dtype=F64) * 0.6
    xs = (torch.rand(300, 8, generator=gen, dtype=F64) < 0.5).to(F64)
    ro = LeakySpikeReadout(8, 4, tau=8 * u.ms, V_th=0.8 * u.mV, w_init=W * u.mV,
                           spk_reset=reset, dtype=F64)
    tb.init_all_states(ro)
    spikes, Vs = [], []
    with tb.environ.context(dt=0.5 * u.ms):
        for x in xs:
            spikes.append(ro(x).detach())
            Vs.append(ro.V.detach())
    ref_s, ref_V = reference_spike_readout(xs.numpy(), W.numpy(), 8.0, 0.8, 0.5,
                                           reset == "soft")
    assert ref_s.sum() > 20
    np.testing.assert_array_equal(torch.stack(spikes).numpy(), ref_s)
    np.testing.assert_allclose(torch.stack(Vs).numpy(), ref_V, atol=1e-12, rtol=0)


def smooth(x):
    return torch.sigmoid(4.0 * x)


def test_gradcheck_readout_steps():
    d = dict(dtype=F64, requires_grad=True)
    gen = torch.Generator().manual_seed(2)
    r = torch.randn(2, 3, generator=gen, dtype=F64).requires_grad_()
    x = torch.rand(2, 4, generator=gen, dtype=F64).requires_grad_()
    W = torch.randn(4, 3, generator=gen, dtype=F64).requires_grad_()
    tau = torch.tensor([3.0, 5.0, 9.0], **d)
    assert torch.autograd.gradcheck(lambda r, x, W, tau: leaky_rate_step(r, x, W, tau, 0.5),
                                    (r, x, W, tau))
    V = torch.tensor([[0.2, 0.9, 1.3], [0.0, 0.5, 1.1]], **d)

    def spike_step(V, x, W):
        return F.if_step(V, x @ W, tau=5.0, V_th=1.0, R=1.0, dt=0.5, spk_fun=smooth)

    assert torch.autograd.gradcheck(spike_step, (V, x, W))


@pytest.mark.parametrize("cls", [LeakyRateReadout, LeakySpikeReadout])
def test_gradients_flow_to_the_weight_through_time(cls):
    gen = torch.Generator().manual_seed(3)
    ro = cls(6, 2, w_init=torch.rand(6, 2, generator=gen, dtype=F64) * 0.5, dtype=F64)
    tb.init_all_states(ro, batch_size=3)
    xs = torch.rand(20, 3, 6, generator=gen, dtype=F64)
    out = drive(ro, xs, [1.0] * 20)
    out.sum().backward()
    assert ro.weight.grad is not None and float(ro.weight.grad.abs().sum()) > 0


def test_readout_input_checks():
    ro = LeakyRateReadout(4, 2)
    tb.init_all_states(ro, batch_size=3)
    with tb.environ.context(dt=0.1):
        with pytest.raises(ValueError, match=r"LeakyRateReadout: input 'x' must have shape"):
            ro(torch.rand(3, 5))
        with pytest.raises(ValueError, match="batch size 2 but the States were initialised "
                                             "for batch size 3"):
            ro(torch.rand(2, 4))
        with pytest.raises(TypeError, match="quantity"):
            ro(torch.rand(3, 4) * u.mV)
        assert ro(torch.ones(4)).shape == (3, 2)  # an unbatched input is shared by the batch
        assert ro(torch.ones(3, 4, dtype=torch.int64)).dtype == torch.float32
    tb.reset_all_states(ro)
    with tb.environ.context(dt=0.1):
        with pytest.raises(ValueError, match="without a batch"):
            ro(torch.rand(3, 4))
    with pytest.raises(ValueError, match=r"'weight' must have shape \(in_size, out_size\)"):
        LeakyRateReadout(4, 2, w_init=torch.ones(1, 2))
    with pytest.raises(ValueError, match="'weight' has shape"):
        LeakyRateReadout(4, 2, w_init=torch.ones(2, 4))
    with pytest.raises(ValueError, match="'in_size' must be an int"):
        LeakyRateReadout((2, 2), 2)
    with pytest.raises(tb.UnitError, match="LeakyRateReadout.*'tau'"):
        LeakyRateReadout(4, 2, tau=1 * u.mV)
    with pytest.raises(ValueError, match="'V_th' must be above"):
        LeakySpikeReadout(4, 2, V_th=-1 * u.mV)
    with pytest.raises(tb.UnitError, match="LeakySpikeReadout.*'weight'"):
        LeakySpikeReadout(4, 2, w_init=torch.ones(4, 2) * u.ms)
