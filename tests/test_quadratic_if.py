"""QuaIF / AdQuaIF against analytic fixed points and an independent NumPy float64 loop."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.functional import quadratic_if as F
from torchbrain.neurons.quadratic_if import AdQuaIF, AdQuaIFRef, QuaIF

DT = 0.1
F64 = torch.float64
C_, V_REST, V_C = 0.07, -65.0, -50.0


def run(neuron, current, steps, record=("V",), dt=DT):
    tb.init_all_states(neuron)
    spikes, traces = [], {k: [] for k in record}
    with tb.environ.context(dt=dt):
        for i in range(steps):
            with tb.environ.context(t=i * dt):
                spikes.append(neuron(current).detach().clone())
            for k in record:
                traces[k].append(getattr(neuron, k).detach().clone())
    return torch.stack(spikes), {k: torch.stack(v) for k, v in traces.items()}


def fixed_points(RI, c=C_, V_rest=V_REST, V_c=V_C):
    """Roots of c (V - V_rest)(V - V_c) + R I = 0: (stable, unstable)."""
    root = math.sqrt((V_c - V_rest) ** 2 - 4.0 * RI / c)
    return 0.5 * (V_rest + V_c - root), 0.5 * (V_rest + V_c + root)


# -------------------------------------------------------------------- analytic
def test_subthreshold_fixed_points_and_rheobase():
    R = 0.1
    neuron = QuaIF(6, R=R * u.gigaohm, V_initializer=tb.init.Constant(-64.0 * u.mV), dtype=F64)
    I_rh = C_ * (V_C - V_REST) ** 2 / (4 * R)
    assert float(neuron.rheobase()) == pytest.approx(I_rh)
    factors = [0.0, 0.3, 0.6, 0.9, 1.1, 1.5]
    current = torch.tensor(factors, dtype=F64) * I_rh
    spikes, traces = run(neuron, current, 4000)
    counts = spikes.sum(0)
    assert torch.all(counts[:4] == 0) and torch.all(counts[4:] > 0)
    # the discrete exponential-Euler map has exactly the ODE's fixed points
    for k, fac in enumerate(factors[:3]):
        stable, _ = fixed_points(R * fac * I_rh)
        assert traces["V"][-1, k].item() == pytest.approx(stable, abs=1e-6)


def test_unstable_fixed_point_separates_rest_from_spike():
    # without input: V_c is the unstable fixed point, V_rest the stable one
    V0 = torch.tensor([V_C - 0.2, V_C + 0.2], dtype=F64)
    neuron = QuaIF(2, V_initializer=V0, dtype=F64)
    spikes, traces = run(neuron, 0.0, 1500)
    assert spikes[:, 0].sum() == 0 and spikes[:, 1].sum() >= 1
    assert traces["V"][-1, 0].item() == pytest.approx(V_REST, abs=1e-3)  # slow escape from V_c


def test_analytic_jacobian_matches_autograd():
    V = torch.linspace(-80.0, -25.0, 23, dtype=F64, requires_grad=True)
    g = torch.tensor(3.0, dtype=F64)
    current = 200.0 + g * (-80.0 - V)
    f, J = F.quaif_rhs(V, current, g, tau=10.0, c=C_, V_c=V_C, V_rest=V_REST, R=0.1, w=5.0)
    (dfdV,) = torch.autograd.grad(f.sum(), V)
    torch.testing.assert_close(J, dfdV)


def test_adaptation_lengthens_intervals():
    neuron = AdQuaIF(1, R=0.1 * u.gigaohm, tau_w=200 * u.ms, a=0.5 * u.nS, b=40 * u.pA,
                     spk_reset="hard", dtype=F64)
    spikes, _ = run(neuron, 120.0, 4000)
    isi = np.diff(np.flatnonzero(spikes[:, 0].numpy()))
    assert len(isi) >= 4 and isi[-1] > 1.5 * isi[0]


# ------------------------------------------------------------ NumPy reference
def exprel(x):
    return 1.0 if x == 0.0 else math.expm1(x) / x


def reference_quaif(kind, steps, I, p, dt=DT):
    """Independent float64 loop of brainpy.state's QuaIF/AdQuaIF(Ref) updates."""
    adaptive = kind.startswith("Ad")
    V, w, last_i = p["V0"], (p["w0"] if adaptive else 0.0), -10**9
    Vs, ws, spikes = [], [], []
    for i in range(steps):
        if (V - p["V_th"]) / (p["V_th"] - p["V_reset"]) >= 0:
            V = p["V_reset"] if p["hard"] else V - (p["V_th"] - p["V_reset"])
            w = w + (p["b"] if adaptive else 0.0)
        V_after, w_after = V, w
        f = (p["c"] * (V - p["V_rest"]) * (V - p["V_c"]) - p["R"] * w + p["R"] * I) / p["tau"]
        J = p["c"] * (2 * V - p["V_rest"] - p["V_c"]) / p["tau"]
        V = V + dt * exprel(min(dt * J, 50.0)) * f
        if adaptive:
            w_inf = p["a"] * (min(V, p["V_th"]) - p["V_rest"])
            w = w_inf + (w - w_inf) * math.exp(-dt / p["tau_w"])
        if kind.endswith("Ref"):
            # refractory for a whole number of steps (functional.lif.refractory_mask)
            if i - last_i < round(p["tau_ref"] / dt):
                V, w = V_after, w_after
            if V >= p["V_th"]:
                last_i = i
        Vs.append(V)
        ws.append(w)
        spikes.append(1.0 if V >= p["V_th"] else 0.0)
    return np.array(spikes), np.array(Vs), np.array(ws)


@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("kind", ["QuaIF", "AdQuaIF", "AdQuaIFRef"])
def test_against_independent_reference(kind, reset):
    p = dict(tau=8.0, V_th=-35.0, V_reset=-68.0, V_rest=-66.0, V_c=-52.0, c=0.05, R=0.1,
             V0=-60.0, tau_w=60.0, a=1.5, b=20.0, w0=3.0, tau_ref=2.5, hard=reset == "hard")
    current = 150.0
    kw = dict(R=p["R"] * u.gigaohm, tau=p["tau"] * u.ms, V_th=p["V_th"] * u.mV,
              V_reset=p["V_reset"] * u.mV, V_rest=p["V_rest"] * u.mV, V_c=p["V_c"] * u.mV,
              c=p["c"] / u.mV, V_initializer=tb.init.Constant(p["V0"] * u.mV), spk_reset=reset,
              dtype=F64)
    if kind.startswith("Ad"):
        kw.update(tau_w=p["tau_w"] * u.ms, a=p["a"] * u.nS, b=p["b"] * u.pA,
                  w_initializer=tb.init.Constant(p["w0"] * u.pA))
    if kind.endswith("Ref"):
        kw.update(tau_ref=p["tau_ref"] * u.ms)
    neuron = {"QuaIF": QuaIF, "AdQuaIF": AdQuaIF, "AdQuaIFRef": AdQuaIFRef}[kind](2, **kw)
    record = ("V", "w") if kind.startswith("Ad") else ("V",)
    spikes, traces = run(neuron, current, 1500, record=record)
    ref_spikes, ref_V, ref_w = reference_quaif(kind, 1500, current, p)
    assert ref_spikes.sum() >= 5
    np.testing.assert_array_equal(spikes[:, 0].numpy(), ref_spikes)
    np.testing.assert_allclose(traces["V"][:, 0].numpy(), ref_V, atol=1e-6, rtol=0)
    if "w" in traces:
        np.testing.assert_allclose(traces["w"][:, 0].numpy(), ref_w, atol=1e-6, rtol=0)


def test_refractory_holds_V_and_w():
    neuron = AdQuaIFRef(1, R=0.1 * u.gigaohm, tau_ref=4 * u.ms, a=1 * u.nS, b=20 * u.pA,
                        spk_reset="hard", ref_var=True, dtype=F64)
    spikes, traces = run(neuron, 400.0, 800, record=("V", "w", "refractory"))
    k = int(torch.nonzero(spikes[:, 0])[0])
    held = slice(k + 1, k + 40)
    assert torch.all(traces["V"][held, 0] == -68.0)
    assert torch.all(traces["w"][held, 0] == traces["w"][k + 1, 0])
    assert traces["refractory"][held, 0].all()
    assert np.all(np.diff(np.flatnonzero(spikes[:, 0].numpy())) * DT >= 4.0 - 1e-9)


# ------------------------------------------------------------------- gradients
def smooth(x):
    return torch.sigmoid(4.0 * x)


def test_gradcheck_functional_steps():
    d = dict(dtype=F64, requires_grad=True)
    V = torch.tensor([-62.0, -51.0, -38.0], **d)
    I = torch.tensor([100.0, 250.0, 30.0], **d)
    w = torch.tensor([0.0, 15.0, 40.0], **d)
    c = torch.tensor(0.06, **d)
    V_c = torch.tensor(-50.0, **d)
    base = dict(V_th=-35.0, V_reset=-68.0, V_rest=-65.0, R=0.1, dt=0.1, spk_fun=smooth)

    def quaif(V, I, c, V_c):
        return F.quaif_step(V, I, tau=10.0, c=c, V_c=V_c, **base)

    assert torch.autograd.gradcheck(quaif, (V, I, c, V_c))

    g = torch.tensor([1.0, 4.0, 10.0], **d)

    def quaif_coba(V, g):
        return F.quaif_step(V, lambda v: (g * (0.0 - v), g), tau=10.0, c=0.07, V_c=-50.0, **base)

    assert torch.autograd.gradcheck(quaif_coba, (V, g))

    a = torch.tensor(1.5, **d)
    b = torch.tensor(20.0, **d)

    def adquaif(V, w, I, a, b):
        return F.adquaif_step(V, w, I, tau=10.0, tau_w=50.0, a=a, b=b, c=0.07, V_c=-50.0, **base)

    assert torch.autograd.gradcheck(adquaif, (V, w, I, a, b))

    last = torch.tensor([-1e7, 4.5, 0.0], dtype=F64)

    def adquaifref(V, w, I):
        return F.adquaifref_step(V, w, last, I, 5.0, tau_ref=2.0, tau=10.0, tau_w=50.0, a=1.0,
                                 b=20.0, c=0.07, V_c=-50.0, **base)[:3]

    assert torch.autograd.gradcheck(adquaifref, (V, w, I))


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [QuaIF, AdQuaIF, AdQuaIFRef])
def test_bad_parameters(cls):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: parameter 'V_th' must be above 'V_reset'"):
        cls(3, V_th=-70 * u.mV)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'c' must be positive"):
        cls(3, c=-0.07 / u.mV)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'V_c' must be above 'V_rest'"):
        cls(3, V_c=-70 * u.mV)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'c' expects"):
        cls(3, c=0.07 * u.mV)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'V_c' expects a voltage"):
        cls(3, V_c=1 * u.ms)
    if name.startswith("Ad"):
        with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'a' expects a conductance"):
            cls(3, a=1 * u.mV)
        with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'w_initializer' expects"):
            cls(3, w_initializer=1 * u.mV)


def test_defaults_follow_the_reference():
    n = AdQuaIFRef(1)
    assert n.V_th.item() == -30.0 and n.V_c.item() == -50.0 and n.c.item() == pytest.approx(0.07)
    assert n.tau_w.item() == 10.0 and n.tau_ref.item() == pytest.approx(1.7)
    assert n.b.item() == pytest.approx(1e8) and n.a.item() == pytest.approx(1e9)
    assert n.spk_reset == "soft" and QuaIF(1).tau.item() == 10.0
