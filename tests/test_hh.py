"""Conductance-based neurons against published behaviour, independent references of the
equations (a same-scheme NumPy loop and a classic RK4), and at the rates' singular voltages."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.dynamics import SynapticCurrent
from torchbrain.functional import hh as F
from torchbrain.neurons.hh import HH, MorrisLecar, TraubMilesHH, WangBuzsakiHH

# The published squid axon (gL = 0.3 mS/cm^2, rest at -65 mV), for a 1 uF "cm^2" of membrane.
HH_1952 = dict(gL=0.3 * u.mS, V_initializer=tb.init.Constant(-65.0 * u.mV))


def simulate(neuron, x, steps, dt, batch_size=None, record=("V",), no_grad=True):
    """Drive ``neuron`` with a constant input; returns spikes (steps, ...) and traces."""
    tb.init_all_states(neuron, batch_size=batch_size)
    spikes, traces = [], {k: [] for k in record}
    ctx = torch.inference_mode() if no_grad else torch.enable_grad()
    with ctx, tb.environ.context(dt=dt):
        for i in range(steps):
            with tb.environ.context(t=i * dt):
                spikes.append(neuron(x))
            for k in record:
                traces[k].append(getattr(neuron, k))
    return torch.stack(spikes), {k: torch.stack(v) for k, v in traces.items()}


def spike_times(spikes, dt, col):
    return np.flatnonzero(spikes[:, col].numpy()) * dt


# ------------------------------------------------------------------ singular voltages
SINGULAR = {
    # (rates function, voltage where a 0/0 occurs, index of that rate, limit value in 1/ms)
    "HH alpha_m at -40 mV": (F.hh_rates, -40.0, 0, 1.0),
    "HH alpha_n at -55 mV": (F.hh_rates, -55.0, 4, 0.1),
    "WB alpha_n at -34 mV": (F.wb_rates, -34.0, 2, 0.1),
    "TM alpha_m at V_T+13": (lambda V: F.traub_miles_rates(V, -63.0), -50.0, 0, 1.28),
    "TM beta_m at V_T+40": (lambda V: F.traub_miles_rates(V, -63.0), -23.0, 1, 1.4),
    "TM alpha_n at V_T+15": (lambda V: F.traub_miles_rates(V, -63.0), -48.0, 4, 0.16),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("key", list(SINGULAR))
def test_rates_are_finite_and_continuous_at_removable_singularities(key, dtype):
    rates, V0, index, limit = SINGULAR[key]
    V = torch.tensor([V0, V0 + 1e-3, V0 - 1e-3, V0 + 1e-6], dtype=dtype, requires_grad=True)
    value = rates(V)[index]
    assert torch.isfinite(value).all()
    torch.testing.assert_close(value[0], torch.tensor(limit, dtype=dtype), rtol=1e-6, atol=0)
    # continuous through the singular point (the slope is O(0.05/ms per mV))
    assert (value - limit).abs().max() < 1e-3
    value.sum().backward()
    assert torch.isfinite(V.grad).all()


def test_wang_buzsaki_m_inf_is_finite_at_its_singularity():
    for dtype in (torch.float32, torch.float64):
        V = torch.tensor([-35.0], dtype=dtype, requires_grad=True)
        m = F.wb_m_inf(V)
        m.sum().backward()
        expected = 1.0 / (1.0 + 4.0 * math.exp(-25.0 / 18.0))
        assert m.item() == pytest.approx(expected, rel=1e-6)
        assert torch.isfinite(V.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_module_step_at_singular_voltages_gives_no_nan(dtype):
    neuron = HH(4, dtype=dtype, V_initializer=tb.init.Constant(
        torch.tensor([-40.0, -55.0, -65.0, -35.0]) * u.mV))
    spikes, traces = simulate(neuron, 1e7, 50, 0.01, record=("V", "m", "h", "n"))
    for value in traces.values():
        assert torch.isfinite(value).all()
    tm = TraubMilesHH(3, dtype=dtype,
                      V_initializer=tb.init.Constant(torch.tensor([-50.0, -23.0, -48.0]) * u.mV))
    _, traces = simulate(tm, 0.0, 50, 0.1, record=("V", "m", "h", "n"))
    for value in traces.values():
        assert torch.isfinite(value).all()


# -------------------------------------------------------------- published HH behaviour
def test_hh_repetitive_firing_onset_and_rate_match_published_values():
    # Hodgkin-Huxley (1952) axon with a constant current step from rest: single spikes below
    # ~6.26 uA/cm^2, repetitive firing above; period ~14.6 ms at 10 uA/cm^2 (Rinzel & Miller
    # 1980; Koch 1999 ch. 6).
    currents = torch.tensor([2.0, 6.0, 6.5, 10.0]) * 1e6  # pA = uA for the 1 uF cell
    neuron = HH(4, **HH_1952, dtype=torch.float64)
    dt = 0.025
    spikes, _ = simulate(neuron, currents.double(), 6000, dt)  # 150 ms
    times = [spike_times(spikes, dt, k) for k in range(4)]
    assert len(times[0]) <= 1  # 2 uA: at most the onset spike
    assert len(times[1]) <= 3 and times[1][-1] < 60.0  # 6 uA: a damped train, then silence
    assert len(times[2]) >= 7 and times[2][-1] > 120.0  # 6.5 uA: repetitive firing
    period = np.diff(times[3])[-5:]
    assert np.all((period > 14.0) & (period < 16.0))
    # one spike per action potential: the crossing is counted once
    assert spikes.max() == 1.0


def test_hh_is_not_reset_and_spike_is_stored_for_get_spike():
    neuron = HH(1, **HH_1952)
    tb.init_all_states(neuron)
    peak = -100.0
    with tb.environ.context(dt=0.025):
        for _ in range(800):
            out = neuron(1e7)
            assert torch.equal(neuron.get_spike(), out)
            peak = max(peak, neuron.V.item())
    assert peak > 30.0  # the action potential overshoots the 20 mV detection threshold


def test_float32_and_float64_agree():
    dt = 0.025
    s64, t64 = simulate(HH(1, **HH_1952, dtype=torch.float64), 1e7, 2400, dt)
    s32, t32 = simulate(HH(1, **HH_1952, dtype=torch.float32), 1e7, 2400, dt)
    steps64 = np.flatnonzero(s64[:, 0].numpy())
    steps32 = np.flatnonzero(s32[:, 0].numpy())
    assert len(steps64) == len(steps32) == 4
    assert np.abs(steps64 - steps32).max() <= 1
    # away from the steep upstroke the traces agree to well below a millivolt
    V64, V32 = t64["V"][:, 0], t32["V"][:, 0].double()
    calm = V64 < -50.0
    assert (V64 - V32)[calm].abs().max() < 0.5


# --------------------------------------------------------- independent references
def numpy_hh_same_scheme(V, I, steps, dt, gNa=120.0, gK=36.0, gL=0.3, ENa=50.0, EK=-77.0,
                         EL=-54.387, C=1.0):
    """Float64 NumPy loop of the published HH equations (mS, uF, uA units) with the scheme of
    torchbrain.functional.hh: exact gate steps and exponential Euler in the total conductance."""

    def rates(V):
        am = 0.1 * (V + 40.0) / (1.0 - np.exp(-(V + 40.0) / 10.0))
        bm = 4.0 * np.exp(-(V + 65.0) / 18.0)
        ah = 0.07 * np.exp(-(V + 65.0) / 20.0)
        bh = 1.0 / (1.0 + np.exp(-(V + 35.0) / 10.0))
        an = 0.01 * (V + 55.0) / (1.0 - np.exp(-(V + 55.0) / 10.0))
        bn = 0.125 * np.exp(-(V + 65.0) / 80.0)
        return am, bm, ah, bh, an, bn

    am, bm, ah, bh, an, bn = rates(V)
    m, h, n = am / (am + bm), ah / (ah + bh), an / (an + bn)
    out = []
    for _ in range(steps):
        am, bm, ah, bh, an, bn = rates(V)
        gna, gk = gNa * m ** 3 * h, gK * n ** 4
        G = gna + gk + gL
        f = (-gna * (V - ENa) - gk * (V - EK) - gL * (V - EL) + I) / C
        z = -dt * G / C
        V = V + dt * np.expm1(z) / z * f
        m = am / (am + bm) + (m - am / (am + bm)) * np.exp(-dt * (am + bm))
        h = ah / (ah + bh) + (h - ah / (ah + bh)) * np.exp(-dt * (ah + bh))
        n = an / (an + bn) + (n - an / (an + bn)) * np.exp(-dt * (an + bn))
        out.append((V, m, h, n))
    return np.array(out)


def test_hh_matches_numpy_reference_step_by_step():
    dt, steps = 0.025, 2000
    V0 = np.array([-65.0, -60.0])
    I = np.array([10.0, 3.0])  # uA
    ref = numpy_hh_same_scheme(V0, I, steps, dt)
    neuron = HH(2, **{**HH_1952, "V_initializer": tb.init.Constant(torch.tensor(V0) * u.mV)},
                dtype=torch.float64)
    _, traces = simulate(neuron, torch.tensor(I * 1e6), steps, dt, record=("V", "m", "h", "n"))
    for i, key in enumerate("Vmhn"):
        np.testing.assert_allclose(traces[key].numpy(), ref[:, i], atol=1e-8, rtol=0)


def rk4_hh_spike_times(I, T, dt):
    """Classic RK4 of the published HH equations in plain Python floats (an independent scheme)."""

    def rates(V):
        return (0.1 * (V + 40.0) / (1.0 - math.exp(-(V + 40.0) / 10.0)),
                4.0 * math.exp(-(V + 65.0) / 18.0),
                0.07 * math.exp(-(V + 65.0) / 20.0),
                1.0 / (1.0 + math.exp(-(V + 35.0) / 10.0)),
                0.01 * (V + 55.0) / (1.0 - math.exp(-(V + 55.0) / 10.0)),
                0.125 * math.exp(-(V + 65.0) / 80.0))

    def f(V, m, h, n):
        am, bm, ah, bh, an, bn = rates(V)
        dV = -120.0 * m ** 3 * h * (V - 50.0) - 36.0 * n ** 4 * (V + 77.0) - 0.3 * (V + 54.387) + I
        return (dV, am * (1 - m) - bm * m, ah * (1 - h) - bh * h, an * (1 - n) - bn * n)

    am, bm, ah, bh, an, bn = rates(-65.0)
    y = (-65.0, am / (am + bm), ah / (ah + bh), an / (an + bn))
    times = []
    for i in range(int(round(T / dt))):
        k1 = f(*y)
        k2 = f(*(a + 0.5 * dt * b for a, b in zip(y, k1, strict=True)))
        k3 = f(*(a + 0.5 * dt * b for a, b in zip(y, k2, strict=True)))
        k4 = f(*(a + dt * b for a, b in zip(y, k3, strict=True)))
        new = tuple(a + dt / 6.0 * (b1 + 2 * b2 + 2 * b3 + b4)
                    for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4, strict=True))
        if y[0] < 20.0 <= new[0]:
            times.append((i + 1) * dt)
        y = new
    return np.array(times)


def test_hh_spike_times_converge_to_rk4_at_first_order():
    ref = rk4_hh_spike_times(10.0, 50.0, 0.01)
    errors = []
    for dt in (0.04, 0.02):
        spikes, _ = simulate(HH(1, **HH_1952, dtype=torch.float64), 1e7, int(50 / dt), dt)
        got = spike_times(spikes, dt, 0) + dt
        assert len(ref) == len(got) == 4
        errors.append(np.abs(got - ref))
    # exponential Euler is first order: the error halves with the step (1.07 -> 0.53 ms at the
    # 4th spike, 46 ms into the train)
    assert 1.7 < errors[0][-1] / errors[1][-1] < 2.3
    assert errors[1][0] <= 0.1 and errors[1][-1] < 0.6


# ------------------------------------------------------------ Wang-Buzsaki, Morris-Lecar
def test_wang_buzsaki_is_class_1_with_published_rheobase():
    # Wang & Buzsaki (1996): rheobase ~0.16 uA/cm^2, firing starts at an arbitrarily low rate.
    currents = torch.tensor([0.1, 0.2, 1.0], dtype=torch.float64) * 1e6
    dt = 0.05
    spikes, _ = simulate(WangBuzsakiHH(3, dtype=torch.float64), currents, 6000, dt)  # 300 ms
    times = [spike_times(spikes, dt, k) for k in range(3)]
    assert len(times[0]) == 0
    assert len(times[1]) >= 2 and np.diff(times[1])[-1] > 100.0  # < 10 Hz just above rheobase
    assert 12.0 < np.diff(times[2])[-1] < 25.0  # tens of Hz at 1 uA/cm^2


def test_morris_lecar_is_class_2_with_depolarisation_block():
    currents = torch.tensor([80.0, 100.0, 300.0], dtype=torch.float64) * 1e6
    dt = 0.1
    neuron = MorrisLecar(3, V_initializer=tb.init.Constant(-65 * u.mV), dtype=torch.float64)
    spikes, traces = simulate(neuron, currents, 6000, dt)  # 600 ms
    times = [spike_times(spikes, dt, k) for k in range(3)]
    assert len(times[0]) <= 1  # below the onset current: at most a transient spike
    isi = np.diff(times[1])
    assert len(isi) >= 5 and np.all((isi > 60.0) & (isi < 120.0))  # onset at ~10 Hz, not 0
    assert len(times[2]) <= 1  # depolarisation block
    assert traces["V"][-1000:, 2].min() > -30.0


# ----------------------------------------------------------------------- Traub-Miles
class ConstantConductance(SynapticCurrent):
    """A fixed conductance g towards E: the simplest COBA output."""

    def __init__(self, g, E):
        super().__init__()
        self.g = torch.as_tensor(g)
        self.E = E

    def current(self, V):
        return self.g * (self.E - V)

    def conductance(self, V):
        return self.g


@pytest.mark.slow
def test_traub_miles_runs_5_s_in_float32_without_nan():
    # The COBAHH neuron with constant drives (and a hyperpolarising one), float32, dt = 0.1 ms.
    dt, steps = 0.1, 50_000
    V = torch.tensor([-65.0, -60.0, -70.0, -50.0])
    m, h, n = F.traub_miles_steady_state(V, -63.0)
    I = torch.tensor([0.0, 200.0, 2000.0, -500.0])
    p = dict(gNa=torch.tensor(2e4), gK=torch.tensor(6e3), gL=torch.tensor(10.0), ENa=50.0,
             EK=-90.0, EL=-60.0, V_T=-63.0, C=torch.tensor(200.0), dt=dt)
    count = torch.zeros(4)
    with torch.inference_mode():
        for _ in range(steps):
            V_new, m, h, n = F.traub_miles_update(V, m, h, n, I, **p)
            count += (V_new >= -20.0) & (V < -20.0)
            V = V_new
    # a NaN anywhere on the way would have propagated to the final state
    for value in (V, m, h, n):
        assert value.dtype == torch.float32 and torch.isfinite(value).all()
    assert ((m >= 0) & (m <= 1) & (h >= 0) & (h <= 1) & (n >= 0) & (n <= 1)).all()
    # drive raises the rate; the hyperpolarised cell fires at most once (it starts at -50 mV)
    assert count[0] > 0 and count[1] > count[0] and count[2] > count[1] and count[3] <= 1


def test_traub_miles_takes_synaptic_conductance_inputs():
    dt, steps = 0.1, 2000
    free = TraubMilesHH(2, V_initializer=tb.init.Constant(-65 * u.mV))
    inhibited = TraubMilesHH(2, V_initializer=tb.init.Constant(-65 * u.mV))
    inhibited.add_current_input("gaba", ConstantConductance(50.0, -80.0))  # 50 nS to -80 mV
    excited = TraubMilesHH(2, V_initializer=tb.init.Constant(-65 * u.mV))
    excited.add_current_input("ampa", ConstantConductance(5.0, 0.0))
    s_free, _ = simulate(free, 0.0, steps, dt)
    s_inh, t_inh = simulate(inhibited, 0.0, steps, dt)
    s_exc, _ = simulate(excited, 0.0, steps, dt)
    assert s_inh.sum() == 0 < s_free.sum() < s_exc.sum()
    # silenced: V relaxes between E_K and the inhibitory reversal, near -80 mV
    assert -82.0 < t_inh["V"][-1].mean().item() < -76.0
    # the same step as the functional core given the conductance directly
    neuron = TraubMilesHH(1, V_initializer=tb.init.Constant(-55 * u.mV), dtype=torch.float64)
    neuron.add_current_input("syn", ConstantConductance(torch.tensor(20.0).double(), 0.0))
    tb.init_all_states(neuron)
    V, m, h, n = neuron.V, neuron.m, neuron.h, neuron.n
    with tb.environ.context(dt=dt):
        neuron(100.0)
    expected = F.traub_miles_update(
        V, m, h, n, lambda v: (100.0 + 20.0 * (0.0 - v), 20.0), gNa=2e4, gK=6e3, gL=10.0,
        ENa=50.0, EK=-90.0, EL=-60.0, V_T=-63.0, C=200.0, dt=dt)
    torch.testing.assert_close(neuron.V, expected[0])


# ------------------------------------------------------------------------- gradients
def smooth(x):
    return torch.sigmoid(4.0 * x)


def test_gradcheck_functional_steps():
    d = dict(dtype=torch.float64, requires_grad=True)
    V = torch.tensor([-65.0, -40.0, -55.0, 10.0], **d)  # includes both singular voltages
    m = torch.tensor([0.05, 0.3, 0.1, 0.9], **d)
    h = torch.tensor([0.6, 0.4, 0.5, 0.2], **d)
    n = torch.tensor([0.32, 0.5, 0.4, 0.7], **d)
    I = torch.tensor([1e7, 0.0, 5e6, 2e6], **d)
    hh = dict(gNa=1.2e8, gK=3.6e7, gL=3e5, ENa=50.0, EK=-77.0, EL=-54.387, C=1e6, dt=0.025,
              V_th=20.0, spk_fun=smooth)

    def hh_fn(V, m, h, n, I):
        return F.hh_step(V, m, h, n, I, **hh)

    assert torch.autograd.gradcheck(hh_fn, (V, m, h, n, I))

    gNa = torch.tensor(1.2e8, **d)

    def hh_coba(V, m, gNa):
        return F.hh_step(V, m, h, n, lambda v: (3e5 * (0.0 - v), 3e5), **{**hh, "gNa": gNa})

    assert torch.autograd.gradcheck(hh_coba, (V, m, gNa))

    def wb_fn(V, h, n, I):
        return F.wb_step(V, h, n, I, gNa=3.5e7, gK=9e6, gL=1e5, ENa=55.0, EK=-90.0, EL=-65.0,
                         C=1e6, phi=5.0, dt=0.025, V_th=20.0, spk_fun=smooth)

    Vwb = torch.tensor([-65.0, -34.0, -35.0, 10.0], **d)
    assert torch.autograd.gradcheck(wb_fn, (Vwb, h, n, I))

    def ml_fn(V, W, I):
        return F.morris_lecar_step(V, W, I, g_Ca=4.4e6, g_K=8e6, g_leak=2e6, V_Ca=130.0,
                                   V_K=-84.0, V_leak=-60.0, C=2e7, V1=-1.2, V2=18.0, V3=2.0,
                                   V4=30.0, phi=torch.tensor(0.04, dtype=torch.float64), dt=0.1,
                                   V_th=10.0, spk_fun=smooth)

    W = torch.tensor([0.02, 0.3, 0.5, 0.1], **d)
    assert torch.autograd.gradcheck(ml_fn, (V, W, I * 10.0))

    def tm_fn(V, m, h, n, I):
        return F.traub_miles_step(V, m, h, n, I, gNa=2e4, gK=6e3, gL=10.0, ENa=50.0, EK=-90.0,
                                  EL=-60.0, V_T=-63.0, C=200.0, dt=0.1, V_th=-20.0,
                                  spk_fun=smooth)

    Vtm = torch.tensor([-50.0, -23.0, -48.0, -21.0], **d)  # the Traub-Miles singular voltages
    assert torch.autograd.gradcheck(tm_fn, (Vtm, m, h, n, I * 1e-4))


def test_surrogate_gradient_flows_through_time():
    neuron = TraubMilesHH(3, V_initializer=tb.init.Constant(-65 * u.mV))
    tb.init_all_states(neuron, batch_size=2)
    w = torch.full((2, 3), 300.0, requires_grad=True)
    with tb.environ.context(dt=0.1):
        out = torch.stack([neuron(w) for _ in range(300)])
    out.sum().backward()
    assert out.sum() > 0 and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [HH, WangBuzsakiHH, TraubMilesHH])
def test_bad_parameters(cls):
    name = cls.__name__
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'gNa' expects a conductance"):
        cls(3, gNa=1 * u.mV)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'C' expects a capacitance"):
        cls(3, C=1 * u.nS)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'C' must be positive"):
        cls(3, C=0.0)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'gK' must be >= 0"):
        cls(3, gK=-1 * u.nS)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'EL' contains NaN"):
        cls(3, EL=float("nan"))
    with pytest.raises(ValueError, match=rf"{name}: parameter 'V_th' must be non-zero"):
        cls(3, V_th=0 * u.mV)
    with pytest.raises(ValueError, match="does not broadcast"):
        cls(3, gL=torch.ones(4))
    with pytest.raises(TypeError):
        cls(3, spk_reset="soft")  # no reset in these models
    gate = "h_initializer"
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter '{gate}'"):
        cls(3, **{gate: 0.5 * u.mV})


def test_morris_lecar_bad_parameters():
    with pytest.raises(tb.UnitError, match="MorrisLecar: parameter 'phi' expects a rate"):
        MorrisLecar(2, phi=0.04 * u.ms)
    with pytest.raises(ValueError, match="MorrisLecar: parameter 'V4' must be non-zero"):
        MorrisLecar(2, V4=0.0)
    with pytest.raises(ValueError, match="MorrisLecar: parameter 'phi' must be positive"):
        MorrisLecar(2, phi=0.0)


def test_runtime_errors_are_clear():
    neuron = HH(4)
    with pytest.raises(RuntimeError, match="HH: States are not initialised"):
        with tb.environ.context(dt=0.1):
            neuron(0.0)
    tb.init_all_states(neuron, batch_size=2)
    with pytest.raises(KeyError, match="HH needs the time step 'dt'"):
        neuron(torch.zeros(2, 4))
    with tb.environ.context(dt=0.01):
        with pytest.raises(tb.UnitError, match="'x'"):
            neuron(3 * u.mV)
        with pytest.raises(ValueError, match=r"batch size 3 .* batch size 2"):
            neuron(torch.zeros(3, 4))
        assert neuron(10 * u.uA).shape == (2, 4)


def test_units_are_converted_exactly():
    neuron = HH(1)
    assert neuron.gNa.item() == pytest.approx(1.2e8)
    assert neuron.C.item() == pytest.approx(1e6)
    assert neuron.quantity("gL").to(u.mS).magnitude == pytest.approx(0.03)
    tm = TraubMilesHH(1)
    assert (tm.C.item(), tm.gL.item(), tm.gNa.item(), tm.gK.item()) == (200.0, 10.0, 2e4, 6e3)
    ml = MorrisLecar(1)
    assert ml.phi.item() == pytest.approx(0.04) and ml.C.item() == pytest.approx(2e7)


def test_gates_start_at_steady_state_unless_given():
    neuron = HH(3, V_initializer=tb.init.Constant(-65 * u.mV), dtype=torch.float64)
    tb.init_all_states(neuron)
    m, h, n = F.hh_steady_state(torch.full((3,), -65.0, dtype=torch.float64))
    torch.testing.assert_close(neuron.m, m)
    assert abs(neuron.m[0].item() - 0.0529) < 1e-3 and abs(neuron.h[0].item() - 0.5961) < 1e-3
    given = HH(3, m_initializer=tb.init.Constant(0.1))
    tb.init_all_states(given, batch_size=2)
    assert given.m.shape == (2, 3) and torch.all(given.m == 0.1)
    wb = WangBuzsakiHH(2)
    tb.init_all_states(wb)
    assert torch.allclose(wb.h, torch.tensor(0.6)) and torch.allclose(wb.n, torch.tensor(0.32))
