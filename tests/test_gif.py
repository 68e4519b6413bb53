"""Gif / GifRef against analytic solutions and an independent NumPy float64 loop."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.functional import gif as F
from torchbrain.neurons.gif import Gif, GifRef

DT = 0.1
F64 = torch.float64
RECORD = ("V", "I1", "I2", "V_th")


def run(neuron, current, steps, record=RECORD, dt=DT):
    tb.init_all_states(neuron)
    spikes, traces = [], {k: [] for k in record}
    with tb.environ.context(dt=dt):
        for i in range(steps):
            with tb.environ.context(t=i * dt):
                spikes.append(neuron(current).detach().clone())
            for k in record:
                traces[k].append(getattr(neuron, k).detach().clone())
    return torch.stack(spikes), {k: torch.stack(v) for k, v in traces.items()}


# -------------------------------------------------------------------- analytic
def test_free_relaxation_is_exact():
    # no input, no spike: I_j decay exponentially, V_th relaxes to V_th_inf with rate b (a = 0),
    # V relaxes to V_rest + R (I1 + I2) as in the linear equations' exact solution
    neuron = Gif(1, R=0.1 * u.gigaohm, k1=0.2 / u.ms, k2=0.04 / u.ms,
                 V_th_initializer=tb.init.Constant(-45 * u.mV),
                 I1_initializer=tb.init.Constant(30 * u.pA),
                 I2_initializer=tb.init.Constant(-10 * u.pA), dtype=F64)
    _, traces = run(neuron, 0.0, 300)
    t = torch.arange(1, 301, dtype=F64) * DT
    torch.testing.assert_close(traces["I1"][:, 0], 30 * torch.exp(-0.2 * t), atol=1e-9, rtol=0)
    torch.testing.assert_close(traces["I2"][:, 0], -10 * torch.exp(-0.04 * t), atol=1e-9,
                               rtol=0)
    torch.testing.assert_close(traces["V_th"][:, 0], -50 + 5 * torch.exp(-0.01 * t), atol=1e-9,
                               rtol=0)
    # V: tau dV/dt = -(V - V_rest) + R (I1 + I2), with the currents piecewise constant over a
    # step, stays within O(k dt) of the continuous solution
    def v_exact(tt, A, k):  # response of the leaky membrane to R A e^{-k t}, V(0) = V_rest
        return 0.1 * A / (1 - 20 * k) * (torch.exp(-k * tt) - torch.exp(-tt / 20))
    expected = -70 + v_exact(t, 30, 0.2) + v_exact(t, -10, 0.04)
    assert (traces["V"][:, 0] - expected).abs().max() < 0.05


def test_reduces_to_lif_with_fixed_threshold_and_analytic_isi():
    # default parameters: A1 = A2 = 0, a = 0, V_th(0) = V_th_inf: a LIF with threshold -50 mV
    neuron = Gif(2, R=0.1 * u.gigaohm, spk_reset="hard", dtype=F64)
    spikes, traces = run(neuron, 300.0, 1500)
    steps = np.flatnonzero(spikes[:, 0].numpy())
    isi = 20.0 * math.log(30.0 / (30.0 - 20.0))  # tau ln(RI / (RI - (V_th - V_reset)))
    assert len(steps) >= 5
    assert abs((steps[0] + 1) * DT - isi) <= DT
    assert np.all(np.abs(np.diff(steps) * DT - isi) <= DT + 1e-9)
    assert torch.all(traces["V_th"] == -50.0)


def test_spike_triggered_updates_and_adaptation():
    # a hyperpolarising spike current that accumulates (R2 = 1, A2 < 0) adapts the rate; the
    # threshold is raised to V_th_reset at each spike
    neuron = Gif(1, R=0.1 * u.gigaohm, A1=50 * u.pA, R1=0.0, A2=-30 * u.pA, R2=1.0,
                 V_th_initializer=tb.init.Constant(-58 * u.mV), V_th_inf=-58 * u.mV,
                 V_th_reset=-52 * u.mV, b=0.05 / u.ms, spk_reset="hard", dtype=F64)
    spikes, traces = run(neuron, 350.0, 3000)
    steps = np.flatnonzero(spikes[:, 0].numpy())
    assert len(steps) >= 4 and np.diff(steps)[-1] > 1.25 * np.diff(steps)[0]
    k = steps[0]
    # the step after the spike: I1 -> (0 * I1 + 50) e^{-k1 dt}, V_th -> max(-52, V_th) relaxed
    assert traces["I1"][k + 1, 0].item() == pytest.approx(50 * math.exp(-0.2 * DT), abs=1e-9)
    assert traces["V_th"][k + 1, 0].item() > -52.5


def test_refractory_holds_all_variables():
    neuron = GifRef(1, R=0.1 * u.gigaohm, tau_ref=3 * u.ms, A1=20 * u.pA, A2=-10 * u.pA,
                    spk_reset="hard", ref_var=True, dtype=F64)
    spikes, traces = run(neuron, 400.0, 800, record=(*RECORD, "refractory"))
    k = int(np.flatnonzero(spikes[:, 0].numpy())[0])
    held = slice(k + 1, k + 30)
    for name in RECORD:
        assert torch.all(traces[name][held, 0] == traces[name][k + 1, 0]), name
    assert traces["V"][k + 1, 0].item() == -70.0
    assert traces["refractory"][held, 0].all()
    assert np.all(np.diff(np.flatnonzero(spikes[:, 0].numpy())) * DT >= 3.0 - 1e-9)


# ------------------------------------------------------------ NumPy reference
def exprel(x):
    return 1.0 if x == 0.0 else math.expm1(x) / x


def reference_gif(kind, steps, I, p, dt=DT):
    """Independent float64 loop of brainpy.state's Gif update (GifRef: + refractory hold)."""
    V, I1, I2, Vth, last_i = p["V0"], p["I10"], p["I20"], p["Vth0"], -10**9
    out = {k: [] for k in ("spike", "V", "I1", "I2", "V_th")}
    for i in range(steps):
        if (V - Vth) / (Vth - p["V_reset"]) >= 0:
            V = p["V_reset"] if p["hard"] else V - (Vth - p["V_reset"])
            I1 = p["R1"] * I1 + p["A1"]
            I2 = p["R2"] * I2 + p["A2"]
            Vth = max(p["V_th_reset"], Vth)
        held = (V, I1, I2, Vth)
        I1 = I1 * math.exp(-p["k1"] * dt)
        I2 = I2 * math.exp(-p["k2"] * dt)
        dVth = p["a"] * (V - p["V_rest"]) - p["b"] * (Vth - p["V_th_inf"])
        Vth = Vth + dt * exprel(-p["b"] * dt) * dVth
        V_inf = p["V_rest"] + p["R"] * (I1 + I2 + I)
        V = V_inf + (V - V_inf) * math.exp(-dt / p["tau"])
        if kind == "GifRef":
            # refractory for a whole number of steps (functional.lif.refractory_mask)
            if i - last_i < round(p["tau_ref"] / dt):
                V, I1, I2, Vth = held
            if V >= Vth:
                last_i = i
        for k, x in zip(out, (1.0 if V >= Vth else 0.0, V, I1, I2, Vth), strict=True):
            out[k].append(x)
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("kind", ["Gif", "GifRef"])
def test_against_independent_reference(kind, reset):
    p = dict(R=0.1, tau=15.0, V_rest=-70.0, V_reset=-72.0, V_th_inf=-50.0, V_th_reset=-55.0,
             a=0.004, b=0.02, k1=0.3, k2=0.03, R1=0.5, R2=0.9, A1=30.0, A2=-20.0, V0=-68.0,
             I10=10.0, I20=-5.0, Vth0=-52.0, tau_ref=3.0, hard=reset == "hard")
    current = 260.0
    kw = dict(R=p["R"] * u.gigaohm, tau=p["tau"] * u.ms, V_rest=p["V_rest"] * u.mV,
              V_reset=p["V_reset"] * u.mV, V_th_inf=p["V_th_inf"] * u.mV,
              V_th_reset=p["V_th_reset"] * u.mV, a=p["a"] / u.ms, b=p["b"] / u.ms,
              k1=p["k1"] / u.ms, k2=p["k2"] / u.ms, R1=p["R1"], R2=p["R2"], A1=p["A1"] * u.pA,
              A2=p["A2"] * u.pA, V_initializer=tb.init.Constant(p["V0"] * u.mV),
              I1_initializer=tb.init.Constant(p["I10"] * u.pA),
              I2_initializer=tb.init.Constant(p["I20"] * u.pA),
              V_th_initializer=tb.init.Constant(p["Vth0"] * u.mV), spk_reset=reset, dtype=F64)
    if kind == "GifRef":
        kw["tau_ref"] = p["tau_ref"] * u.ms
    neuron = (GifRef if kind == "GifRef" else Gif)(2, **kw)
    spikes, traces = run(neuron, current, 2000)
    ref = reference_gif(kind, 2000, current, p)
    assert ref["spike"].sum() >= 5
    np.testing.assert_array_equal(spikes[:, 0].numpy(), ref["spike"])
    for name in RECORD:
        np.testing.assert_allclose(traces[name][:, 0].numpy(), ref[name], atol=1e-6, rtol=0,
                                   err_msg=name)


# ------------------------------------------------------------------- gradients
def smooth(x):
    return torch.sigmoid(4.0 * x)


def test_gradcheck_functional_steps():
    d = dict(dtype=F64, requires_grad=True)
    V = torch.tensor([-62.0, -51.0, -49.0], **d)
    I1 = torch.tensor([0.0, 15.0, 40.0], **d)
    I2 = torch.tensor([-5.0, 0.0, 8.0], **d)
    V_th = torch.tensor([-50.0, -52.0, -49.5], **d)
    I = torch.tensor([100.0, 250.0, 30.0], **d)
    k1 = torch.tensor(0.2, **d)
    a = torch.tensor(0.01, **d)
    A1 = torch.tensor(20.0, **d)
    R1 = torch.tensor(0.3, **d)
    base = dict(tau=20.0, R=0.1, V_rest=-70.0, V_reset=-70.0, V_th_inf=-50.0, V_th_reset=-55.0,
                b=0.02, k2=0.02, R2=1.0, A2=-5.0, dt=0.1, spk_fun=smooth)

    def gif(V, I1, I2, V_th, I, k1, a, A1, R1):
        return F.gif_step(V, I1, I2, V_th, I, k1=k1, a=a, A1=A1, R1=R1, **base)

    assert torch.autograd.gradcheck(gif, (V, I1, I2, V_th, I, k1, a, A1, R1))

    last = torch.tensor([-1e7, 4.5, 0.0], dtype=F64)

    def gifref(V, I1, I2, V_th, I):
        return F.gifref_step(V, I1, I2, V_th, last, I, 5.0, tau_ref=2.0, k1=0.2, a=0.01,
                             A1=20.0, R1=0.3, **base)[:5]

    assert torch.autograd.gradcheck(gifref, (V, I1, I2, V_th, I))


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [Gif, GifRef])
def test_bad_parameters(cls):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: parameter 'V_th_inf' must be above"):
        cls(3, V_th_inf=-80 * u.mV)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'V_th_reset' must be above"):
        cls(3, V_th_reset=-75 * u.mV)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'k1' must be >= 0"):
        cls(3, k1=-0.1 / u.ms)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'k2' expects a rate"):
        cls(3, k2=0.1 * u.ms)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'R1' expects"):
        cls(3, R1=0.1 * u.mV)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'A2' expects a current"):
        cls(3, A2=1 * u.mV)
    n = cls(3, V_th_initializer=tb.init.Constant(-75 * u.mV))
    with pytest.raises(ValueError, match=rf"{name}: the initial threshold 'V_th' must be above"):
        tb.init_all_states(n)


def test_defaults_follow_the_reference():
    n = GifRef(1)
    assert n.R.item() == pytest.approx(2e-8) and n.tau.item() == 20.0
    assert n.tau_ref.item() == pytest.approx(1.7) and n.b.item() == pytest.approx(0.01)
    assert n.k1.item() == pytest.approx(0.2) and n.k2.item() == pytest.approx(0.02)
    assert n.R2.item() == 1.0 and n.V_th_reset.item() == -60.0
    tb.init_all_states(n)
    assert n.V_th.item() == -50.0 and n.V.item() == -70.0
    c = Gif(1, C=200 * u.pF)
    assert c.R.item() == pytest.approx(0.1)  # tau / C = 20 ms / 200 pF
