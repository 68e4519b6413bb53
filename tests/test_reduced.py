"""FitzHugh-Nagumo and Hindmarsh-Rose against their fixed points, classic RK4 integrations of
the published equations, and their known qualitative behaviour (limit cycle, bursting)."""

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.functional import reduced as F
from torchbrain.neurons.reduced import FitzHughNagumo, HindmarshRose


def simulate(neuron, x, steps, dt, record=("V",)):
    tb.init_all_states(neuron)
    spikes, traces = [], {k: [] for k in record}
    with torch.inference_mode(), tb.environ.context(dt=dt):
        for _ in range(steps):
            spikes.append(neuron(x))
            for k in record:
                traces[k].append(getattr(neuron, k))
    return torch.stack(spikes), {k: torch.stack(v) for k, v in traces.items()}


def rk4_crossings(f, y, T, dt, threshold=1.0):
    """Upward crossings of y[0] through ``threshold`` by a classic RK4 in plain floats."""
    times = []
    for i in range(int(round(T / dt))):
        k1 = f(y)
        k2 = f([a + 0.5 * dt * b for a, b in zip(y, k1, strict=True)])
        k3 = f([a + 0.5 * dt * b for a, b in zip(y, k2, strict=True)])
        k4 = f([a + dt * b for a, b in zip(y, k3, strict=True)])
        new = [a + dt / 6.0 * (b1 + 2 * b2 + 2 * b3 + b4)
               for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4, strict=True)]
        if y[0] < threshold <= new[0]:
            times.append((i + 1) * dt)
        y = new
    return np.array(times)


def spike_times(spikes, dt, col=0):
    return np.flatnonzero(spikes[:, col].numpy()) * dt + dt


# ------------------------------------------------------------------- FitzHugh-Nagumo
def test_fhn_rest_limit_cycle_and_depolarisation_block():
    # With a = 0.7, b = 0.8 the rest state is stable at I = 0, a limit cycle exists for
    # 0.33 < I < 1.42 (Hopf bifurcations), and a depolarised fixed point is stable above.
    I = torch.tensor([0.0, 0.5, 1.0, 1.6], dtype=torch.float64)
    neuron = FitzHughNagumo(4, V_initializer=tb.init.Constant(0.0), dtype=torch.float64)
    spikes, traces = simulate(neuron, I, 3000, 0.1, record=("V", "w"))
    late = traces["V"][1500:]
    amplitude = late.max(0).values - late.min(0).values
    assert amplitude[0] < 1e-3 and amplitude[3] < 1e-3
    assert amplitude[1] > 3.5 and amplitude[2] > 3.0  # relaxation oscillation
    assert spikes[1500:, 1].sum() >= 3 and spikes[1500:, 0].sum() == 0
    # the rest state is the fixed point V - V^3/3 - (V + a)/b = 0, w = (V + a)/b
    roots = np.roots([-1.0 / 3.0, 0.0, 1.0 - 1.0 / 0.8, -0.7 / 0.8])
    V_star = roots[np.abs(roots.imag) < 1e-9].real[0]
    assert traces["V"][-1, 0].item() == pytest.approx(V_star, abs=1e-5)
    assert traces["w"][-1, 0].item() == pytest.approx((V_star + 0.7) / 0.8, abs=1e-5)


def test_fhn_period_matches_rk4():
    I = 0.5

    def f(y):
        return [y[0] - y[0] ** 3 / 3.0 - y[1] + I, (y[0] + 0.7 - 0.8 * y[1]) / 12.5]

    ref = rk4_crossings(f, [-1.2, -0.62], 300.0, 0.01)
    dt = 0.1
    spikes, _ = simulate(FitzHughNagumo(1, dtype=torch.float64), I, 3000, dt)
    got = spike_times(spikes, dt)
    assert len(got) == len(ref) >= 7
    assert np.abs(got[:2] - ref[:2]).max() < 0.2
    assert np.diff(got)[-1] == pytest.approx(np.diff(ref)[-1], rel=0.01)  # 39.4 vs 39.5 ms


def test_fhn_counts_each_upward_crossing_once():
    spikes, traces = simulate(FitzHughNagumo(1), 0.5, 1000, 0.1)
    above = (traces["V"][:, 0] >= 1.0).numpy()
    crossings = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    np.testing.assert_array_equal(np.flatnonzero(spikes[:, 0].numpy()), crossings)


# --------------------------------------------------------------------- Hindmarsh-Rose
def test_hr_bursts_at_moderate_drive_and_spikes_tonically_at_strong_drive():
    dt = 0.02
    I = torch.tensor([2.0, 4.0], dtype=torch.float64)
    spikes, _ = simulate(HindmarshRose(2, dtype=torch.float64), I, 30000, dt)  # 600 ms
    burst = spike_times(spikes, dt, 0)
    tonic = spike_times(spikes, dt, 1)
    isi_b = np.diff(burst[burst > 150.0])
    isi_t = np.diff(tonic[tonic > 300.0])
    # bursting: short intra-burst intervals alternate with long pauses
    short, long = isi_b[isi_b < 50.0], isi_b[isi_b > 50.0]
    assert len(long) >= 3 and len(short) >= len(long) - 1
    assert long.min() > 4.0 * short.max()
    # tonic: regular intervals
    assert isi_t.std() / isi_t.mean() < 0.02
    # the burst period (set by the slow variable z) agrees with RK4 of the published equations
    ref = rk4_crossings(
        lambda y: [y[1] - y[0] ** 3 + 3.0 * y[0] ** 2 - y[2] + 2.0, 1.0 - 5.0 * y[0] ** 2 - y[1],
                   0.006 * (4.0 * (y[0] + 1.6) - y[2])],
        [-1.6, -10.0, 0.0], 600.0, 0.01)
    ref_isi = np.diff(ref[ref > 150.0])
    ref_period = np.mean(ref_isi[:-1:2] + ref_isi[1::2])
    period = np.mean(isi_b[:-1:2] + isi_b[1::2])
    assert period == pytest.approx(ref_period, rel=0.05)


# ------------------------------------------------------------------------- gradients
def smooth(x):
    return torch.sigmoid(4.0 * x)


def test_gradcheck_functional_steps():
    d = dict(dtype=torch.float64, requires_grad=True)
    V = torch.tensor([-1.2, 0.9, 1.5, -0.3], **d)
    w = torch.tensor([-0.6, 0.2, 1.0, 0.0], **d)
    I = torch.tensor([0.5, 0.0, 1.0, -0.2], **d)
    tau_w = torch.tensor(12.5, **d)

    def fhn(V, w, I, tau_w):
        return F.fhn_step(V, w, I, a=0.7, b=0.8, tau=1.0, tau_w=tau_w, dt=0.1, V_th=1.0,
                          spk_fun=smooth)

    assert torch.autograd.gradcheck(fhn, (V, w, I, tau_w))

    def fhn_syn(V, w):
        return F.fhn_step(V, w, lambda v: (0.3 * (1.0 - v), 0.3), a=0.7, b=0.8, tau=1.0,
                          tau_w=12.5, dt=0.1, V_th=1.0, spk_fun=smooth)

    assert torch.autograd.gradcheck(fhn_syn, (V, w))
    y = torch.tensor([-10.0, -3.0, 0.5, -1.0], **d)
    z = torch.tensor([0.0, 1.0, 2.0, 0.5], **d)
    r = torch.tensor(0.006, **d)

    def hr(V, y, z, I, r):
        return F.hr_step(V, y, z, I, a=1.0, b=3.0, c=1.0, d=5.0, r=r, s=4.0, V_r=-1.6, tau=1.0,
                         dt=0.02, V_th=1.0, spk_fun=smooth)

    assert torch.autograd.gradcheck(hr, (V, y, z, I, r))


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [FitzHughNagumo, HindmarshRose])
def test_bad_parameters(cls):
    name = cls.__name__
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'tau' expects a time"):
        cls(2, tau=1 * u.mV)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'tau' must be positive"):
        cls(2, tau=0.0)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'a' expects a dimensionless"):
        cls(2, a=1 * u.mV)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'V_th' must be non-zero"):
        cls(2, V_th=0.0)
    with pytest.raises(TypeError):
        cls(2, spk_reset="soft")
    neuron = cls(2)
    tb.init_all_states(neuron)
    with tb.environ.context(dt=0.1):
        with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'x'"):
            neuron(1 * u.pA)  # the input of a dimensionless model is a number
        assert neuron(0.5 * u.dimensionless).shape == (2,)
    with pytest.raises(ValueError, match=r"HindmarshRose: parameter 'r' must be >= 0"):
        HindmarshRose(2, r=-0.1)
