"""LIF family against analytic solutions and an independent NumPy reference of the equations."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.functional import lif as F

DT = 0.1


def run(neuron, current, steps, record=("V",), batch_size=None):
    tb.init_all_states(neuron, batch_size=batch_size)
    spikes, traces = [], {k: [] for k in record}
    with tb.environ.context(dt=DT * u.ms):
        for i, t in enumerate(tb.time_range(steps * DT * u.ms, dtype=torch.float64)):
            with tb.environ.context(t=t):
                spikes.append(neuron(current).detach().clone())
            for k in record:
                traces[k].append(getattr(neuron, k).detach().clone())
            assert i < steps
    return torch.stack(spikes), {k: torch.stack(v) for k, v in traces.items()}


def mental_model_lif(reset="hard", **kw):
    params = dict(tau=10.0 * u.ms, V_th=-50.0 * u.mV, V_rest=-65.0 * u.mV, V_reset=-65.0 * u.mV,
                  V_initializer=tb.init.Constant(-65.0 * u.mV), spk_reset=reset,
                  dtype=torch.float64)
    params.update(kw)
    return params


def test_lif_first_spike_and_isi_match_analytic():
    neuron = tb.LIF(3, **mental_model_lif())
    spikes, _ = run(neuron, 20.0 * u.mA, 1000)
    steps = torch.nonzero(spikes[:, 0]).flatten().tolist()
    isi = 10.0 * math.log(20.0 / (20.0 - 15.0))  # tau ln(RI / (RI - (V_th - V_rest)))
    first_spike_time = (steps[0] + 1) * DT
    assert abs(first_spike_time - isi) <= DT
    intervals = np.diff(steps) * DT
    assert np.all(np.abs(intervals - isi) <= DT)
    assert len(steps) == pytest.approx(100.0 / isi, abs=1)


def test_lif_relaxes_with_exact_exponential():
    neuron = tb.LIF(4, **mental_model_lif(V_initializer=tb.init.Constant(-55.0 * u.mV)))
    _, traces = run(neuron, 0.0, 300)
    n = torch.arange(1, 301, dtype=torch.float64)
    expected = -65.0 + 10.0 * torch.exp(-n * DT / 10.0)
    torch.testing.assert_close(traces["V"][:, 0], expected, atol=1e-6, rtol=0)


def test_capacitance_parameterisation_equals_resistance():
    a = tb.LIF(2, C=200 * u.pF, tau=20 * u.ms, V_th=-50 * u.mV, V_rest=-60 * u.mV,
               V_reset=-60 * u.mV, V_initializer=tb.init.Constant(-60 * u.mV), dtype=torch.float64)
    b = tb.LIF(2, R=0.1 * u.gigaohm, tau=20 * u.ms, V_th=-50 * u.mV, V_rest=-60 * u.mV,
               V_reset=-60 * u.mV, V_initializer=tb.init.Constant(-60 * u.mV),
               dtype=torch.float64)
    assert a.R.item() == pytest.approx(0.1)
    sa, ta = run(a, 200 * u.pA, 400)
    sb, tb_ = run(b, 200 * u.pA, 400)
    torch.testing.assert_close(ta["V"], tb_["V"])
    with pytest.raises(ValueError, match="either 'R' or 'C'"):
        tb.LIF(2, R=1 * u.ohm, C=1 * u.pF)


def reference_lif_family(kind, steps, I, p, dt=DT):
    """Independent float64 loop of brainpy.state's update equations (brainpy-semantics §2)."""
    V = p["V0"]
    a = 0.0
    last_i = -10**9
    Vs, spikes = [], []
    heav = lambda x: 1.0 if x >= 0 else 0.0  # noqa: E731
    for i in range(steps):
        if kind == "IF":
            s = heav((V - p["V_th"]) / p["V_th"])
            V = V - (p["V_th"] if p["soft"] else V) * s
            V_inf = p["R"] * I
        elif kind == "ALIF":
            s = heav((V - p["V_th"] - p["beta"] * a) / (p["V_th"] - p["V_reset"]))
            V = V - ((p["V_th"] if p["soft"] else V) - p["V_reset"]) * s
            a = (a + s) * math.exp(-dt / p["tau_a"])
            V_inf = p["V_rest"] + p["R"] * I
        else:
            s = heav((V - p["V_th"]) / (p["V_th"] - p["V_reset"]))
            V = V - ((p["V_th"] if p["soft"] else V) - p["V_reset"]) * s
            V_inf = p["V_rest"] + p["R"] * I
        V_after_reset = V
        V = V_inf + (V - V_inf) * math.exp(-dt / p["tau"])
        if kind == "LIFRef":
            # refractory for a whole number of steps (functional.lif.refractory_mask)
            if i - last_i < round(p["tau_ref"] / dt):
                V = V_after_reset
            if V >= p["V_th"]:
                last_i = i
        Vs.append(V)
        if kind == "IF":
            spikes.append(heav((V - p["V_th"]) / p["V_th"]))
        elif kind == "ALIF":
            spikes.append(heav((V - p["V_th"] - p["beta"] * a) / (p["V_th"] - p["V_reset"])))
        else:
            spikes.append(heav((V - p["V_th"]) / (p["V_th"] - p["V_reset"])))
    return np.array(spikes), np.array(Vs)


@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("kind", ["LIF", "LIFRef", "ALIF", "IF"])
def test_against_independent_reference(kind, reset):
    p = dict(tau=8.0, V_th=-50.0, V_reset=-70.0, V_rest=-65.0, R=0.05, V0=-62.0, tau_ref=2.0,
             tau_a=50.0, beta=3.0, soft=reset == "soft")
    current = 500.0  # pA: R*I = 25 mV
    common = dict(R=p["R"] * u.gigaohm, tau=p["tau"] * u.ms, spk_reset=reset, dtype=torch.float64)
    if kind == "IF":
        p.update(V_th=10.0, V0=2.0)
        neuron = tb.IF(2, V_th=10 * u.mV, V_initializer=tb.init.Constant(2 * u.mV), **common)
    else:
        kw = dict(V_th=p["V_th"] * u.mV, V_reset=p["V_reset"] * u.mV, V_rest=p["V_rest"] * u.mV,
                  V_initializer=tb.init.Constant(p["V0"] * u.mV), **common)
        if kind == "LIFRef":
            neuron = tb.LIFRef(2, tau_ref=p["tau_ref"] * u.ms, **kw)
        elif kind == "ALIF":
            neuron = tb.ALIF(2, tau_a=p["tau_a"] * u.ms, beta=p["beta"] * u.mV, **kw)
        else:
            neuron = tb.LIF(2, **kw)
    spikes, traces = run(neuron, current, 1000)
    ref_spikes, ref_V = reference_lif_family(kind, 1000, current, p)
    assert ref_spikes.sum() >= 5
    np.testing.assert_array_equal(spikes[:, 0].numpy(), ref_spikes)
    np.testing.assert_allclose(traces["V"][:, 0].numpy(), ref_V, atol=1e-6, rtol=0)


def test_lifref_isi_includes_refractory_period():
    neuron = tb.LIFRef(1, tau_ref=2.0 * u.ms, **mental_model_lif())
    spikes, traces = run(neuron, 20.0 * u.mA, 1000)
    steps = torch.nonzero(spikes[:, 0]).flatten().tolist()
    expected = 2.0 + 10.0 * math.log(20.0 / 5.0)
    assert np.all(np.abs(np.diff(steps) * DT - expected) <= DT + 1e-9)
    # V is clamped at V_reset during the refractory period.
    after = traces["V"][steps[0] + 1: steps[0] + 19, 0]
    torch.testing.assert_close(after, torch.full_like(after, -65.0))


def test_lifref_refractory_flag_follows_the_spikes():
    # LIFRef shares the refractory mixin of the other *Ref neurons: ref_var adds the flag only
    flagged = tb.LIFRef(1, tau_ref=2.05 * u.ms, ref_var=True, **mental_model_lif())
    spikes, traces = run(flagged, 20.0 * u.mA, 1000, record=("V", "refractory"))
    plain_spikes, plain = run(tb.LIFRef(1, tau_ref=2.05 * u.ms, **mental_model_lif()),
                              20.0 * u.mA, 1000)
    torch.testing.assert_close(traces["V"], plain["V"], rtol=0, atol=0)
    assert torch.equal(spikes, plain_spikes)
    # flag at step k: a spike at step j <= k with (k - j) * dt < tau_ref (the spike step too)
    steps = torch.nonzero(spikes[:, 0]).flatten().tolist()
    assert len(steps) >= 3
    expected = [any(0 <= (k - j) * DT < 2.05 for j in steps) for k in range(1000)]
    assert traces["refractory"][:, 0].tolist() == expected
    assert "ref_var=True" in repr(flagged)


def test_alif_adaptation_lengthens_intervals():
    neuron = tb.ALIF(1, tau_a=200 * u.ms, beta=2 * u.mV, **mental_model_lif())
    spikes, _ = run(neuron, 20.0 * u.mA, 3000, record=("V", "a"))
    steps = np.flatnonzero(spikes[:, 0].numpy())
    isi = np.diff(steps)
    assert isi[-1] > isi[0]


def test_soft_reset_subtracts_threshold_distance():
    neuron = tb.LIF(1, **mental_model_lif(reset="soft"))
    spikes, traces = run(neuron, 20.0 * u.mA, 200)
    k = int(torch.nonzero(spikes[:, 0])[0])
    V_spike = traces["V"][k, 0].item()
    # next step: reset by 15 mV, then one exact step towards V_inf = -45 mV
    expected = -45.0 + (V_spike - 15.0 + 45.0) * math.exp(-DT / 10.0)
    assert traces["V"][k + 1, 0].item() == pytest.approx(expected, abs=1e-9)


def smooth(x):
    return torch.sigmoid(4.0 * x)


def test_gradcheck_functional_steps():
    d = dict(dtype=torch.float64, requires_grad=True)
    V = torch.tensor([-52.0, -49.0, -60.0], **d)
    I = torch.tensor([100.0, 300.0, 0.0], **d)
    tau = torch.tensor(10.0, **d)
    params = dict(V_th=-50.0, V_reset=-65.0, V_rest=-65.0, R=0.1, dt=0.1, spk_fun=smooth)

    def lif(V, I, tau):
        return F.lif_step(V, I, tau=tau, **params)

    assert torch.autograd.gradcheck(lif, (V, I, tau))

    def coba(V, g):
        return F.lif_step(V, lambda v: (g * (0.0 - v), g), tau=10.0, **params)

    g = torch.tensor([1.0, 5.0, 20.0], **d)
    assert torch.autograd.gradcheck(coba, (V, g))

    def alif(V, a, I):
        return F.alif_step(V, a, I, tau=10.0, tau_a=100.0, beta=1.0, **params)

    a = torch.tensor([0.0, 0.5, 2.0], **d)
    assert torch.autograd.gradcheck(alif, (V, a, I))

    def ifn(V, I):
        return F.if_step(V, I, tau=10.0, V_th=1.0, R=0.1, dt=0.1, spk_fun=smooth)

    assert torch.autograd.gradcheck(ifn, (V.detach().clone().requires_grad_(), I))

    last = torch.tensor([-1e7, 0.0, 4.0], dtype=torch.float64)

    def lifref(V, I):
        return F.lifref_step(V, last, I, 5.0, tau=10.0, tau_ref=2.0, **params)[:2]

    assert torch.autograd.gradcheck(lifref, (V, I))


def test_coba_input_step_is_exponential_euler_in_total_conductance():
    # With a constant conductance g towards E, the membrane relaxes exactly to
    # (V_rest + R g E) / (1 + R g) with time constant tau / (1 + R g).
    g, E, R, tau = 20.0, 0.0, 0.1, 10.0
    V = torch.tensor([-65.0], dtype=torch.float64)
    for _ in range(50):
        V = F.lif_update(V, lambda v: (g * (E - v), g), tau=tau, V_th=100.0, V_reset=-65.0,
                         V_rest=-65.0, R=R, dt=DT, spk_fun=torch.zeros_like)
    V_inf = (-65.0 + R * g * E) / (1 + R * g)
    expected = V_inf + (-65.0 - V_inf) * math.exp(-50 * DT * (1 + R * g) / tau)
    assert V.item() == pytest.approx(expected, abs=1e-9)


def test_surrogate_gradient_flows_through_time():
    neuron = tb.LIF(5, **mental_model_lif(reset="soft", dtype=torch.float32))
    tb.init_all_states(neuron, batch_size=2)
    w = torch.full((2, 5), 20.0, requires_grad=True)
    with tb.environ.context(dt=DT):
        out = tb.for_loop(lambda: neuron(w * 1e9), length=300)  # pA; R = 1e-9 GΩ
    out.sum().backward()
    assert out.sum() > 0 and w.grad is not None and torch.isfinite(w.grad).all()
    assert w.grad.abs().sum() > 0


# ---------------------------------------------------------------- bad input
def test_threshold_must_be_above_reset():
    with pytest.raises(ValueError, match=r"LIF: parameter 'V_th' must be above 'V_reset'"):
        tb.LIF(10, V_th=-50 * u.mV)  # default V_reset = 0 mV: the reference never spikes
    with pytest.raises(ValueError, match="V_th"):
        tb.IF(10, V_th=-1 * u.mV)


@pytest.mark.parametrize("cls", [tb.LIF, tb.LIFRef, tb.ALIF, tb.IF])
def test_bad_parameters(cls):
    with pytest.raises(tb.UnitError, match=rf"{cls.__name__}: parameter 'tau' expects a time"):
        cls(3, tau=10 * u.mV)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: parameter 'tau' must be positive"):
        cls(3, tau=-1 * u.ms)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: parameter 'tau' must be positive"):
        cls(3, tau=0.0)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: parameter 'tau' contains NaN"):
        cls(3, tau=float("nan"))
    with pytest.raises(ValueError, match="does not broadcast"):
        cls(3, tau=torch.ones(4))
    with pytest.raises(ValueError, match="spk_reset"):
        cls(3, spk_reset="sometimes")


def test_runtime_errors_are_clear():
    neuron = tb.LIF(4)
    with pytest.raises(RuntimeError, match="LIF: States are not initialised"):
        with tb.environ.context(dt=0.1):
            neuron(0.0)
    tb.init_all_states(neuron, batch_size=8)
    with pytest.raises(KeyError, match="LIF needs the time step 'dt'"):
        neuron(torch.zeros(8, 4))
    with tb.environ.context(dt=0.1):
        with pytest.raises(ValueError, match=r"batch size 16 .* batch size 8.*reset_all_states"):
            neuron(torch.zeros(16, 4))
        with pytest.raises(ValueError, match=r"shape \(8, 5\)"):
            neuron(torch.zeros(8, 5))
        with pytest.raises(tb.UnitError, match="'x'"):
            neuron(3 * u.mV)
        tb.reset_all_states(neuron, batch_size=16)
        assert neuron(torch.zeros(16, 4)).shape == (16, 4)
    refr = tb.LIFRef(2)
    tb.init_all_states(refr)
    with tb.environ.context(dt=0.1):
        with pytest.raises(KeyError, match="LIFRef .*needs the environment value 't'"):
            refr(0.0)
