"""ExpIF / AdEx against analytic results, published firing patterns and an independent NumPy
float64 loop of the equations."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.functional import exp_if as F
from torchbrain.functional._if_common import reset_membrane
from torchbrain.functional.lif import lif_reset
from torchbrain.neurons.exp_if import AdExIF, AdExIFRef, ExpIF, ExpIFRef

DT = 0.1
F64 = torch.float64


def run(neuron, current, steps, record=("V",), batch_size=None, dt=DT):
    """Drive ``neuron`` with a constant ``current`` for ``steps`` steps (t = i * dt)."""
    tb.init_all_states(neuron, batch_size=batch_size)
    spikes, traces = [], {k: [] for k in record}
    with tb.environ.context(dt=dt):
        for i in range(steps):
            with tb.environ.context(t=i * dt):
                spikes.append(neuron(current).detach().clone())
            for k in record:
                traces[k].append(getattr(neuron, k).detach().clone())
    return torch.stack(spikes), {k: torch.stack(v) for k, v in traces.items()}


class ConstantCOBA(tb.SynapticCurrent):
    """A fixed conductance ``g`` (nS) towards ``E`` (mV): I = g (E - V), dI/dV = -g."""

    def __init__(self, g, E):
        super().__init__()
        self.g, self.E = g, E

    def current(self, V):
        return self.g * (self.E - V)

    def conductance(self, V):
        return self.g


# ------------------------------------------------------------ NumPy reference
def exprel(x):
    return 1.0 if x == 0.0 else math.expm1(x) / x


def reference_expif(kind, steps, I, p, dt=DT):
    """Independent float64 loop of brainpy.state's ExpIF/AdEx updates (brainpy-semantics §2),
    with the documented deviations: hard reset to exactly V_reset, growth exponent <= 50, w driven
    by V capped at V_th."""
    V, w, last_i = p["V0"], p.get("w0", 0.0), -10**9
    g, E = p.get("g", 0.0), p.get("E", 0.0)
    adaptive = kind.startswith("AdEx")
    Vs, ws, spikes = [], [], []
    for i in range(steps):
        s = 1.0 if (V - p["V_th"]) / (p["V_th"] - p["V_reset"]) >= 0 else 0.0
        if s:
            V = p["V_reset"] if p["hard"] else V - (p["V_th"] - p["V_reset"])
            if adaptive:
                w = w + p["b"]
        V_after, w_after = V, w
        z = (V - p["V_T"]) / p["delta_T"]
        drive = p["delta_T"] * math.exp(min(z, 20.0))
        I_tot = I + g * (E - V)
        f = (-(V - p["V_rest"]) + drive - p["R"] * (w if adaptive else 0.0)
             + p["R"] * I_tot) / p["tau"]
        J = (-1.0 + (math.exp(z) if z < 20.0 else 0.0) - p["R"] * g) / p["tau"]
        V = V + dt * exprel(min(dt * J, 50.0)) * f
        if adaptive:
            w_inf = p["a"] * (min(V, p["V_th"]) - p["V_rest"])  # documented cap
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


# (V_th, I): a cut-off near V_T, where the soft reset works, and a far one (-40 mV with
# Delta_T = 2 mV), where the overshoot makes the reference's soft reset run away.
REGIMES = {"near-cutoff": (-50.0, 250.0), "far-cutoff": (-40.0, 150.0)}


@pytest.mark.parametrize("regime", list(REGIMES))
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("kind", ["ExpIF", "ExpIFRef", "AdExIF", "AdExIFRef"])
def test_against_independent_reference(kind, reset, regime):
    V_th, current = REGIMES[regime]  # mV, pA
    p = dict(tau=12.0, V_th=V_th, V_reset=-66.0, V_rest=-65.0, V_T=-55.0, delta_T=2.0, R=0.08,
             V0=-63.0, tau_ref=2.0, tau_w=80.0, a=3.0, b=25.0, w0=5.0, g=2.0, E=0.0,
             hard=reset == "hard")
    kw = dict(R=p["R"] * u.gigaohm, tau=p["tau"] * u.ms, V_th=p["V_th"] * u.mV,
              V_reset=p["V_reset"] * u.mV, V_rest=p["V_rest"] * u.mV, V_T=p["V_T"] * u.mV,
              delta_T=p["delta_T"] * u.mV, V_initializer=tb.init.Constant(p["V0"] * u.mV),
              spk_reset=reset, dtype=F64)
    if kind.startswith("AdEx"):
        kw.update(tau_w=p["tau_w"] * u.ms, a=p["a"] * u.nS, b=p["b"] * u.pA,
                  w_initializer=tb.init.Constant(p["w0"] * u.pA))
    if kind.endswith("Ref"):
        kw.update(tau_ref=p["tau_ref"] * u.ms)
    cls = {"ExpIF": ExpIF, "ExpIFRef": ExpIFRef, "AdExIF": AdExIF, "AdExIFRef": AdExIFRef}[kind]
    neuron = cls(2, **kw)
    # a conductance input: its g enters the exponential-Euler Jacobian
    neuron.add_current_input("coba", ConstantCOBA(p["g"], p["E"]))
    record = ("V", "w") if kind.startswith("AdEx") else ("V",)
    spikes, traces = run(neuron, current, 1500, record=record)
    ref_spikes, ref_V, ref_w = reference_expif(kind, 1500, current, p)
    assert ref_spikes.sum() >= 5
    np.testing.assert_array_equal(spikes[:, 0].numpy(), ref_spikes)
    np.testing.assert_allclose(traces["V"][:, 0].numpy(), ref_V, atol=1e-6, rtol=1e-9)
    if "w" in traces:
        np.testing.assert_allclose(traces["w"][:, 0].numpy(), ref_w, atol=1e-6, rtol=1e-9)


# -------------------------------------------------------------------- analytic
def test_rheobase_separates_rest_from_firing():
    # tau dV/dt = -(V - V_rest) + dT exp((V - V_T)/dT) + R I has a fixed point iff
    # R I <= V_T - V_rest - dT (the two fixed points merge at V = V_T).
    neuron = ExpIF(4, R=0.1 * u.gigaohm, dtype=F64)
    I_rh = (-59.9 + 65.0 - 3.48) / 0.1
    assert float(neuron.rheobase()) == pytest.approx(I_rh)
    factors = torch.tensor([0.8, 0.95, 1.08, 1.3], dtype=F64)
    spikes, traces = run(neuron, I_rh * factors, 5000)
    counts = spikes.sum(0)
    assert counts[0] == 0 and counts[1] == 0
    assert counts[2] >= 1 and counts[3] > counts[2]
    # below the rheobase V settles on the stable fixed point (exp-Euler keeps the ODE's fixed
    # points exactly), found here by bisection of the right-hand side
    for k, tol in ((0, 1e-6), (1, 1e-3)):  # near the saddle-node the approach is slow
        RI = 0.1 * I_rh * factors[k].item()
        lo, hi = -65.0, -59.9  # f(lo) > 0 > f(hi) for R I below the rheobase
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            f = -(mid + 65.0) + 3.48 * math.exp((mid + 59.9) / 3.48) + RI
            lo, hi = (mid, hi) if f > 0 else (lo, mid)
        assert traces["V"][-1, k].item() == pytest.approx(lo, abs=tol)


def test_analytic_jacobian_matches_autograd():
    V = torch.linspace(-80.0, -25.0, 23, dtype=F64, requires_grad=True)
    g = torch.tensor(3.0, dtype=F64)
    params = dict(tau=10.0, V_rest=-65.0, V_T=-59.9, delta_T=3.48, R=0.1, w=20.0)
    current = 200.0 + g * (0.0 - V)
    f, J = F.expif_rhs(V, current, g, **params)
    (dfdV,) = torch.autograd.grad(f.sum(), V)
    torch.testing.assert_close(J, dfdV)


def _naud(pattern_b, tau_w, g_L):
    return dict(tau=200.0 / g_L, tau_w=tau_w, b=pattern_b)


def test_naud_2008_tonic_and_adapting_patterns():
    # Naud, Marcille, Clopath & Gerstner (2008), Table 1: C = 200 pF, E_L = -70 mV,
    # V_T = -50 mV, Delta_T = 2 mV, a = 2 nS, V_r = -58 mV, I = 500 pA;
    # tonic: g_L = 10 nS, tau_w = 30 ms, b = 0; adaptation: g_L = 12 nS, tau_w = 300 ms, b = 60 pA.
    tonic, adapting = _naud(0.0, 30.0, 10.0), _naud(60.0, 300.0, 12.0)
    neuron = AdExIF(
        2, C=200 * u.pF, tau=torch.tensor([tonic["tau"], adapting["tau"]]),
        tau_w=torch.tensor([tonic["tau_w"], adapting["tau_w"]]),
        b=torch.tensor([tonic["b"], adapting["b"]]), a=2 * u.nS, V_rest=-70 * u.mV,
        V_T=-50 * u.mV, delta_T=2 * u.mV, V_reset=-58 * u.mV, V_th=0 * u.mV,
        V_initializer=tb.init.Constant(-70 * u.mV), dtype=F64,
    )
    spikes, _ = run(neuron, 500 * u.pA, 4000)
    isi_tonic = np.diff(np.flatnonzero(spikes[:, 0].numpy())) * DT
    isi_adapt = np.diff(np.flatnonzero(spikes[:, 1].numpy())) * DT
    assert len(isi_tonic) > 10 and len(isi_adapt) > 4
    # tonic: after the first interval the intervals settle within 6 % and end up constant
    # (within one step); the weak subthreshold adaptation (a = 2 nS) equilibrates in a few spikes
    assert np.ptp(isi_tonic[1:]) <= 0.06 * isi_tonic[1:].mean()
    assert np.ptp(isi_tonic[-20:]) <= DT + 1e-9
    # adapting: intervals grow monotonically, the last much longer than the first
    assert np.all(np.diff(isi_adapt) >= -1e-9)
    assert isi_adapt[-1] > 3 * isi_adapt[0]


def test_default_hard_reset_does_not_run_away_but_soft_does():
    # The reference's defaults with its soft reset: the spiking step overshoots far above V_th,
    # subtracting V_th - V_reset leaves V above threshold and the neuron fires on every step.
    soft = ExpIF(1, spk_reset="soft", dtype=F64)
    hard = ExpIF(1, dtype=F64)
    assert hard.spk_reset == "hard"
    s_soft, v_soft = run(soft, 3 * u.mA, 3000)
    s_hard, v_hard = run(hard, 3 * u.mA, 3000)
    first = int(torch.nonzero(s_hard[:, 0])[0])
    assert s_soft[first:, 0].mean() > 0.9
    assert 1 <= s_hard[:, 0].sum() <= 10
    after = torch.nonzero(s_hard[:, 0]).flatten() + 1
    after = after[after < 3000]
    assert torch.all(v_hard["V"][after, 0] < -60.0)  # reset to V_reset = -68 mV, then one step


def test_hard_reset_is_exact_after_a_huge_overshoot():
    V = torch.tensor([1e20, 3.0e5, -20.0])
    spike = torch.ones(3)
    out = reset_membrane(V, spike, -30.0, -68.0, hard=True)
    assert out.tolist() == [-68.0, -68.0, -68.0]
    # same value and gradients as the LIF family's hard reset where that one is exact
    V = torch.tensor([-20.0, -45.0], dtype=F64, requires_grad=True)
    s = torch.tensor([1.0, 0.3], dtype=F64, requires_grad=True)
    a = reset_membrane(V, s, -30.0, -68.0, hard=True)
    b = lif_reset(V, s, -30.0, -68.0, hard=True)
    torch.testing.assert_close(a, b)
    ga = torch.autograd.grad(a.sum(), (V, s))
    gb = torch.autograd.grad(b.sum(), (V, s))
    for x, y in zip(ga, gb, strict=True):
        torch.testing.assert_close(x, y)


def test_float32_stays_finite_with_a_far_cutoff_and_coarse_step():
    # V_th far above V_T: the upstroke's exponential-Euler factor would overflow (the reference
    # gives inf, then NaN after the reset); the capped growth keeps everything finite.
    neuron = AdExIF(3, R=0.1 * u.gigaohm, V_th=0 * u.mV, a=2 * u.nS, b=50 * u.pA)
    spikes, traces = run(neuron, torch.tensor([100.0, 400.0, 2000.0]), 400, record=("V", "w"),
                         dt=0.5)
    assert torch.isfinite(traces["V"]).all() and torch.isfinite(traces["w"]).all()
    assert (spikes.sum(0)[1:] > 0).all()


def test_refractory_holds_V_and_w_and_ref_var():
    neuron = AdExIFRef(1, R=0.1 * u.gigaohm, tau_ref=3 * u.ms, a=2 * u.nS, b=50 * u.pA,
                       ref_var=True, dtype=F64)
    spikes, traces = run(neuron, 600.0, 600, record=("V", "w", "refractory"))
    k = int(torch.nonzero(spikes[:, 0])[0])
    held = slice(k + 1, k + 30)  # tau_ref = 3 ms = 30 steps, counted from the spike step
    assert torch.all(traces["V"][held, 0] == -68.0)
    assert torch.all(traces["w"][held, 0] == traces["w"][k + 1, 0])
    assert traces["refractory"].dtype == torch.bool
    assert traces["refractory"][held, 0].all() and not traces["refractory"][k + 31, 0]
    isi = np.diff(np.flatnonzero(spikes[:, 0].numpy())) * DT
    assert np.all(isi >= 3.0 - 1e-9)


def test_reference_defaults_in_canonical_units():
    n = AdExIF(2)
    assert n.quantity("a").to("S").magnitude == pytest.approx(1.0)
    assert n.quantity("b").to("mA").magnitude == pytest.approx(1.0)
    assert n.a.item() == pytest.approx(1e9) and n.b.item() == pytest.approx(1e9)
    assert (n.a * n.R).item() == pytest.approx(1.0)  # a R = 1: the unusual regime
    assert n.V_th.item() == -55.0 and n.tau_w.item() == 30.0
    e = ExpIFRef(1)
    assert e.tau_ref.item() == pytest.approx(1.7) and e.V_T.item() == pytest.approx(-59.9)
    assert e.delta_T.item() == pytest.approx(3.48) and e.V_th.item() == -30.0


# ------------------------------------------------------------------- gradients
def smooth(x):
    return torch.sigmoid(4.0 * x)


def test_gradcheck_functional_steps():
    d = dict(dtype=F64, requires_grad=True)
    V = torch.tensor([-62.0, -57.0, -41.0], **d)  # below, near and past V_T; below V_th
    I = torch.tensor([100.0, 250.0, 30.0], **d)
    w = torch.tensor([0.0, 15.0, 40.0], **d)
    tau = torch.tensor(10.0, **d)
    delta_T = torch.tensor(3.0, **d)
    base = dict(V_th=-40.0, V_reset=-68.0, V_rest=-65.0, V_T=-58.0, R=0.1, dt=0.1,
                spk_fun=smooth, hard_reset=False)

    def expif(V, I, tau, delta_T):
        return F.expif_step(V, I, tau=tau, delta_T=delta_T, **base)

    assert torch.autograd.gradcheck(expif, (V, I, tau, delta_T))

    g = torch.tensor([1.0, 4.0, 10.0], **d)

    def expif_coba(V, g):
        return F.expif_step(V, lambda v: (g * (0.0 - v), g), tau=10.0, delta_T=3.0, **base)

    assert torch.autograd.gradcheck(expif_coba, (V, g))

    a = torch.tensor(2.0, **d)
    b = torch.tensor(30.0, **d)

    def adex(V, w, I, a, b):
        return F.adexif_step(V, w, I, tau=10.0, tau_w=50.0, a=a, b=b, delta_T=3.0, **base)

    assert torch.autograd.gradcheck(adex, (V, w, I, a, b))

    last = torch.tensor([-1e7, 4.5, 0.0], dtype=F64)

    def expifref(V, I):
        return F.expifref_step(V, last, I, 5.0, tau_ref=2.0, tau=10.0, delta_T=3.0, **base)[:2]

    assert torch.autograd.gradcheck(expifref, (V, I))

    def adexref(V, w, I):
        return F.adexifref_step(V, w, last, I, 5.0, tau_ref=2.0, tau=10.0, tau_w=50.0, a=2.0,
                                b=30.0, delta_T=3.0, **base)[:3]

    assert torch.autograd.gradcheck(adexref, (V, w, I))


def test_surrogate_gradient_flows_through_time():
    neuron = AdExIF(4, R=0.1 * u.gigaohm, a=2 * u.nS, b=20 * u.pA)
    tb.init_all_states(neuron, batch_size=2)
    w_in = torch.full((2, 4), 300.0, requires_grad=True)
    with tb.environ.context(dt=DT):
        out = tb.for_loop(lambda: neuron(w_in), length=300)
    out.sum().backward()
    assert out.sum() > 0 and torch.isfinite(w_in.grad).all() and w_in.grad.abs().sum() > 0


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [ExpIF, ExpIFRef, AdExIF, AdExIFRef])
def test_bad_parameters(cls):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: parameter 'V_th' must be above 'V_reset'"):
        cls(3, V_th=-70 * u.mV)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'delta_T' must be positive"):
        cls(3, delta_T=0 * u.mV)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'V_T' expects a voltage"):
        cls(3, V_T=1 * u.ms)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'tau' expects a time"):
        cls(3, tau=10 * u.mV)
    with pytest.raises(ValueError, match="spk_reset"):
        cls(3, spk_reset="sometimes")
    with pytest.raises(ValueError, match="either 'R' or 'C'"):
        cls(3, R=1 * u.ohm, C=1 * u.pF)
    if name.startswith("AdEx"):
        with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'a' expects a conductance"):
            cls(3, a=1 * u.pA)
        with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'b' expects a current"):
            cls(3, b=1 * u.nS)
        with pytest.raises(ValueError, match=rf"{name}: parameter 'tau_w' must be positive"):
            cls(3, tau_w=0.0)
    if name.endswith("Ref"):
        with pytest.raises(ValueError, match=rf"{name}: parameter 'tau_ref' must be >= 0"):
            cls(3, tau_ref=-1 * u.ms)
        with pytest.raises(TypeError, match="ref_var"):
            cls(3, ref_var="yes")


def test_runtime_errors_are_clear():
    neuron = ExpIFRef(2)
    with pytest.raises(RuntimeError, match="ExpIFRef: States are not initialised"):
        with tb.environ.context(dt=0.1):
            neuron(0.0)
    tb.init_all_states(neuron)
    with tb.environ.context(dt=0.1):
        with pytest.raises(KeyError, match="ExpIFRef .*needs the environment value 't'"):
            neuron(0.0)
        with tb.environ.context(t=0.0), pytest.raises(tb.UnitError, match="'x'"):
            neuron(3 * u.mV)
