"""Short-term plasticity against the Tsodyks–Markram closed forms and NumPy float64 loops."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.functional import synapses as F
from torchbrain.synapses.stp import STD, STP

F64 = dict(dtype=torch.float64)


def run(module, spikes, dt, batch_size=None):
    tb.init_all_states(module, batch_size=batch_size)
    outs, us, xs = [], [], []
    with tb.environ.context(dt=dt * u.ms):
        for s in spikes:
            outs.append(module(s).detach().clone())
            xs.append(module.x.detach().clone())
            if isinstance(module, STP):
                us.append(module.u.detach().clone())
    return torch.stack(outs), (torch.stack(us) if us else None), torch.stack(xs)


def regular_trains(n_steps, periods):
    spikes = torch.zeros(n_steps, len(periods), **F64)
    for j, m in enumerate(periods):
        spikes[m - 1::m, j] = 1.0
    return spikes


def last_spike_values(out, spikes):
    idx = [int(torch.nonzero(spikes[:, j]).max()) for j in range(spikes.shape[1])]
    return torch.stack([out[i, j] for j, i in enumerate(idx)]), idx


# ------------------------------------------------------------------------- STP
U = [0.15, 0.5, 0.05, 0.3]
TAU_F = [1500.0, 50.0, 300.0, 20.0]
TAU_D = [200.0, 100.0, 20.0, 50.0]
PERIODS = [20, 50, 10, 100]  # steps of 0.5 ms: 10, 25, 5, 50 ms


def test_stp_regular_train_converges_to_the_analytic_steady_state():
    dt = 0.5
    stp = STP(4, U=torch.tensor(U, **F64), tau_f=torch.tensor(TAU_F, **F64) * u.ms,
              tau_d=torch.tensor(TAU_D, **F64) * u.ms, **F64)
    spikes = regular_trains(6000, PERIODS)
    out, us, xs = run(stp, spikes, dt)
    release, idx = last_spike_values(out, spikes)
    Ut, tf, td = (torch.tensor(v, **F64) for v in (U, TAU_F, TAU_D))
    delta = torch.tensor(PERIODS, **F64) * dt
    u_inf = Ut / (1 - (1 - Ut) * torch.exp(-delta / tf))
    x_inf = (1 - torch.exp(-delta / td)) / (1 - (1 - u_inf) * torch.exp(-delta / td))
    torch.testing.assert_close(release, u_inf * x_inf, atol=1e-9, rtol=0)
    u_after = torch.stack([us[i, j] for j, i in enumerate(idx)])
    x_after = torch.stack([xs[i, j] for j, i in enumerate(idx)])
    torch.testing.assert_close(u_after, u_inf, atol=1e-9, rtol=0)
    torch.testing.assert_close(x_after, x_inf * (1 - u_inf), atol=1e-9, rtol=0)
    assert torch.all(out[spikes == 0] == 0)
    # small U, long tau_f, fast recovery: facilitating; large U: depressing
    first = torch.stack([out[m - 1, j] for j, m in enumerate(PERIODS)])
    assert release[2] > 2 * first[2] and release[1] < first[1] / 2


def numpy_tm(spikes, U, tau_f, tau_d, dt, u0):
    """The Tsodyks–Markram event map, float64: relax exactly, then facilitate, release, deplete."""
    u, x = np.full(spikes.shape[1], u0), np.ones(spikes.shape[1])
    outs, us, xs = [], [], []
    for s in spikes:
        u = u * math.exp(-dt / tau_f)
        x = 1 - (1 - x) * math.exp(-dt / tau_d)
        u = u + s * U * (1 - u)
        r = s * u * x
        x = x - r
        outs.append(r)
        us.append(u)
        xs.append(x)
    return np.array(outs), np.array(us), np.array(xs)


def numpy_reference_order(spikes, U, tau_f, tau_d, dt):
    """brainpy.state's STP.update literally (jumps from the pre-relaxation values)."""
    u, x = np.full(spikes.shape[1], U), np.ones(spikes.shape[1])
    us, xs = [], []
    for s in spikes:
        u_new = u * math.exp(-dt / tau_f) + s * U * (1 - u)
        x_new = 1 - (1 - x) * math.exp(-dt / tau_d) - s * u_new * x
        u, x = u_new, x_new
        us.append(u)
        xs.append(x)
    return np.array(us), np.array(xs)


@pytest.mark.parametrize("u0", [None, 0.0])
def test_stp_against_numpy_loop(u0):
    gen = torch.Generator().manual_seed(0)
    spikes = (torch.rand(3000, 5, generator=gen, **F64) < 0.03).to(torch.float64)
    spikes[100:110, 2] *= 0.5  # graded spikes scale the jumps (the reference multiplies too)
    p = dict(U=0.2, tau_f=300.0, tau_d=100.0, dt=0.1)
    stp = STP(5, U=p["U"], tau_f=p["tau_f"] * u.ms, tau_d=p["tau_d"] * u.ms, u_initializer=u0,
              **F64)
    out, us, xs = run(stp, spikes, p["dt"])
    ref_out, ref_u, ref_x = numpy_tm(spikes.numpy(), u0=p["U"] if u0 is None else u0, **p)
    np.testing.assert_allclose(out.numpy(), ref_out, atol=1e-12, rtol=0)
    np.testing.assert_allclose(us.numpy(), ref_u, atol=1e-12, rtol=0)
    np.testing.assert_allclose(xs.numpy(), ref_x, atol=1e-12, rtol=0)
    if u0 is None:
        # the reference's ordering differs by O(dt / tau) only (documented deviation)
        lit_u, lit_x = numpy_reference_order(spikes.numpy(), **p)
        assert np.abs(us.numpy() - lit_u).max() < 2 * p["dt"] / p["tau_d"]
        assert np.abs(xs.numpy() - lit_x).max() < 2 * p["dt"] / p["tau_d"]


def test_stp_first_spike():
    with tb.environ.context(dt=0.1):
        rested = STP(1, U=0.3, u_initializer=0.0, **F64)
        tb.init_all_states(rested)
        assert rested(torch.ones(1, **F64)).item() == pytest.approx(0.3)  # U exactly
        default = STP(1, U=0.3, tau_f=100 * u.ms, **F64)  # u starts at U, as the reference
        tb.init_all_states(default)
        ud = 0.3 * math.exp(-0.1 / 100.0)
        assert default(torch.ones(1, **F64)).item() == pytest.approx(ud + 0.3 * (1 - ud))
        assert default(torch.tensor([True])).shape == (1,)  # bool spikes are accepted


def test_stp_batch_and_get_output():
    stp = STP(3)
    spikes = (torch.rand(20, 2, 3, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    out, us, xs = run(stp, spikes, 0.1, batch_size=2)
    assert out.shape == (20, 2, 3)
    torch.testing.assert_close(stp.get_output(), (stp.u + stp.U * (1 - stp.u)) * stp.x)


# ------------------------------------------------------------------------- STD
def test_std_regular_train_converges_to_the_analytic_steady_state():
    dt, Us, taus = 0.5, [0.07, 0.3, 0.6], [200.0, 50.0, 500.0]
    periods = [20, 40, 100]
    std = STD(3, tau=torch.tensor(taus, **F64) * u.ms, U=torch.tensor(Us, **F64), **F64)
    spikes = regular_trains(8000, periods)
    out, _, xs = run(std, spikes, dt)
    eff, _ = last_spike_values(out, spikes)
    e = torch.exp(-torch.tensor(periods, **F64) * dt / torch.tensor(taus, **F64))
    Ut = torch.tensor(Us, **F64)
    torch.testing.assert_close(eff, (1 - e) / (1 - (1 - Ut) * e), atol=1e-9, rtol=0)
    assert out[periods[0] - 1, 0].item() == pytest.approx(1.0)  # a rested synapse: efficacy 1


def test_std_against_numpy_loop():
    gen = torch.Generator().manual_seed(1)
    spikes = (torch.rand(2000, 4, generator=gen, **F64) < 0.05).to(torch.float64)
    std = STD(4, tau=80 * u.ms, U=0.25, **F64)
    out, _, xs = run(std, spikes, 0.1)
    x, ref_out, ref_x = np.ones(4), [], []
    for s in spikes.numpy():
        x = 1 - (1 - x) * math.exp(-0.1 / 80.0)
        ref_out.append(s * x)
        x = x - s * 0.25 * x
        ref_x.append(x)
    np.testing.assert_allclose(out.numpy(), np.array(ref_out), atol=1e-12, rtol=0)
    np.testing.assert_allclose(xs.numpy(), np.array(ref_x), atol=1e-12, rtol=0)
    assert torch.equal(std.get_output(), std.x)


# ------------------------------------------------------------------------- gradients, errors
def test_gradcheck_functional_steps():
    d = dict(dtype=torch.float64, requires_grad=True)
    uu = torch.tensor([0.1, 0.5, 0.9], **d)
    x = torch.tensor([1.0, 0.4, 0.2], **d)
    spike = torch.tensor([1.0, 0.0, 0.7], **d)
    U = torch.tensor([0.2, 0.5, 0.05], **d)
    tf = torch.tensor([100.0, 20.0, 500.0], **d)
    td = torch.tensor([50.0, 200.0, 80.0], **d)
    assert torch.autograd.gradcheck(
        lambda uu, x, s, U, tf, td: F.stp_step(uu, x, s, U=U, tau_f=tf, tau_d=td, dt=0.1),
        (uu, x, spike, U, tf, td),
    )
    assert torch.autograd.gradcheck(
        lambda x, s, U, td: F.std_step(x, s, U=U, tau=td, dt=0.1), (x, spike, U, td)
    )


def test_bad_parameters():
    with pytest.raises(ValueError, match=r"STP: parameter 'U' must be a fraction in \[0, 1\]"):
        STP(3, U=1.5)
    with pytest.raises(ValueError, match="STD: parameter 'U' must be >= 0"):
        STD(3, U=-0.1)
    with pytest.raises(tb.UnitError, match="STP: parameter 'U' expects a dimensionless"):
        STP(3, U=0.5 * u.ms)
    with pytest.raises(ValueError, match="STP: parameter 'tau_d' must be positive"):
        STP(3, tau_d=-1 * u.ms)
    with pytest.raises(tb.UnitError, match="STD: parameter 'tau' expects a time"):
        STD(3, tau=200 * u.mV)
    with pytest.raises(tb.UnitError, match="STP: parameter 'u_initializer' expects"):
        STP(3, u_initializer=0.1 * u.nS)
    stp = STP(3)
    tb.init_all_states(stp, batch_size=2)
    with tb.environ.context(dt=0.1):
        with pytest.raises(ValueError, match="batch size 4"):
            stp(torch.zeros(4, 3))
        with pytest.raises(ValueError, match=r"'pre_spike' has shape \(2, 5\)"):
            stp(torch.zeros(2, 5))
