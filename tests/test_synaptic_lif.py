"""CubaLIF / CobaLIF against analytic solutions and an independent NumPy float64 loop."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.functional import synaptic_lif as F
from torchbrain.neurons.synaptic_lif import CobaLIF, CubaLIF

DT = 0.1
F64 = torch.float64
LIF_KW = dict(R=0.1 * u.gigaohm, tau=10 * u.ms, V_th=-50 * u.mV, V_reset=-65 * u.mV,
              V_rest=-65 * u.mV, V_initializer=tb.init.Constant(-65 * u.mV), dtype=F64)


def run(neuron, current, steps, jumps=None, dt=DT):
    """Constant ``current``; ``jumps[i]`` (if given and nonzero) is added to g at step i."""
    tb.init_all_states(neuron)
    spikes, Vs, gs = [], [], []
    with tb.environ.context(dt=dt):
        for i in range(steps):
            if jumps is not None and jumps[i] != 0:
                neuron.add_delta_input("test", torch.tensor(float(jumps[i]), dtype=F64))
            spikes.append(neuron(current).detach().clone())
            Vs.append(neuron.V.detach().clone())
            gs.append(neuron.g.detach().clone())
    return torch.stack(spikes), torch.stack(Vs), torch.stack(gs)


# -------------------------------------------------------------------- analytic
def test_cuba_jump_decays_exactly_and_gives_the_alpha_like_psp():
    neuron = CubaLIF(1, tau_syn=5 * u.ms, **LIF_KW)
    jumps = np.zeros(600)
    jumps[0] = 100.0  # pA
    _, V, g = run(neuron, 0.0, 600, jumps)
    t = torch.arange(600, dtype=F64) * DT
    torch.testing.assert_close(g[:, 0], 100.0 * torch.exp(-t / 5.0), atol=1e-9, rtol=0)
    # continuous solution: V - V_rest = R dg tau_s/(tau_s - tau) (e^{-t/tau_s} - e^{-t/tau});
    # the step holds g at its post-decay value, an O(dt) lag
    t_end = t + DT
    psp = 0.1 * 100.0 * 5.0 / (5.0 - 10.0) * (torch.exp(-t_end / 5.0) - torch.exp(-t_end / 10.0))
    assert (V[:, 0] + 65.0 - psp).abs().max() < 0.02 * psp.max()
    t_peak = 10.0 * 5.0 / (10.0 - 5.0) * math.log(10.0 / 5.0)
    assert abs((int(V[:, 0].argmax()) + 1) * DT - t_peak) <= 2 * DT


def test_coba_constant_conductance_relaxes_exactly():
    # tau_syn -> infinity keeps g constant: the membrane relaxes exactly to
    # (V_rest + R g E)/(1 + R g) with time constant tau/(1 + R g)
    g0, E, R, tau = 20.0, 0.0, 0.1, 10.0
    neuron = CobaLIF(1, tau_syn=1e15 * u.ms, E=E * u.mV,
                     g_initializer=tb.init.Constant(g0 * u.nS),
                     **{**LIF_KW, "V_th": 100 * u.mV})
    _, V, g = run(neuron, 0.0, 200)
    V_inf = (-65.0 + R * g0 * E) / (1 + R * g0)
    n = torch.arange(1, 201, dtype=F64)
    expected = V_inf + (-65.0 - V_inf) * torch.exp(-n * DT * (1 + R * g0) / tau)
    torch.testing.assert_close(V[:, 0], expected, atol=1e-9, rtol=0)


def test_delta_inputs_jump_g_not_V():
    neuron = CobaLIF(1, **LIF_KW)
    tb.init_all_states(neuron)
    with tb.environ.context(dt=DT):
        neuron(0.0)
        V_before, g_before = neuron.V.clone(), neuron.g.clone()
        neuron.add_delta_input("syn", torch.tensor(3.0, dtype=F64))
        neuron(0.0)
    assert neuron.g.item() == pytest.approx(g_before.item() * math.exp(-DT / 5.0) + 3.0)
    # V moved only through one step of the new conductance towards E = 0 mV: far less than 3 mV
    assert 0 < (neuron.V - V_before).item() < 0.5


# ------------------------------------------------------------ NumPy reference
def reference(kind, steps, I, jumps, p, dt=DT):
    """Independent float64 loop: lazy reset, g decays and jumps, then the exact step of the
    linear membrane with g held (brainpy.state's order for an AlignPost synapse + LIF)."""
    V, g = p["V0"], p["g0"]
    spikes, Vs, gs = [], [], []
    for i in range(steps):
        if (V - p["V_th"]) / (p["V_th"] - p["V_reset"]) >= 0:
            V = p["V_reset"] if p["hard"] else V - (p["V_th"] - p["V_reset"])
        g = g * math.exp(-dt / p["tau_syn"]) + jumps[i]
        if kind == "CubaLIF":
            V_inf, rate = p["V_rest"] + p["R"] * (g + I), 1.0 / p["tau"]
        else:  # tau dV/dt = -(V - V_rest) + R (g (E - V) + I)
            lam = 1.0 + p["R"] * g
            V_inf, rate = (p["V_rest"] + p["R"] * (g * p["E"] + I)) / lam, lam / p["tau"]
        V = V_inf + (V - V_inf) * math.exp(-dt * rate)
        spikes.append(1.0 if V >= p["V_th"] else 0.0)
        Vs.append(V)
        gs.append(g)
    return np.array(spikes), np.array(Vs), np.array(gs)


@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("kind", ["CubaLIF", "CobaLIF"])
def test_against_independent_reference(kind, reset):
    p = dict(R=0.08, tau=12.0, tau_syn=4.0, E=-5.0, V_th=-52.0, V_reset=-68.0, V_rest=-66.0,
             V0=-60.0, hard=reset == "hard")
    rng = np.random.default_rng(0)
    jump_scale = 80.0 if kind == "CubaLIF" else 1.5  # pA or nS
    jumps = np.where(rng.random(1500) < 0.05, jump_scale * rng.random(1500), 0.0)
    p["g0"] = 0.3 * jump_scale
    current = 120.0
    cls = CubaLIF if kind == "CubaLIF" else CobaLIF
    unit = u.pA if kind == "CubaLIF" else u.nS
    kw = dict(R=p["R"] * u.gigaohm, tau=p["tau"] * u.ms, tau_syn=p["tau_syn"] * u.ms,
              V_th=p["V_th"] * u.mV, V_reset=p["V_reset"] * u.mV, V_rest=p["V_rest"] * u.mV,
              V_initializer=tb.init.Constant(p["V0"] * u.mV),
              g_initializer=tb.init.Constant(p["g0"] * unit), spk_reset=reset, dtype=F64)
    if kind == "CobaLIF":
        kw["E"] = p["E"] * u.mV
    spikes, V, g = run(cls(2, **kw), current, 1500, jumps)
    ref_spikes, ref_V, ref_g = reference(kind, 1500, current, jumps, p)
    assert ref_spikes.sum() >= 5
    np.testing.assert_array_equal(spikes[:, 0].numpy(), ref_spikes)
    np.testing.assert_allclose(V[:, 0].numpy(), ref_V, atol=1e-6, rtol=0)
    np.testing.assert_allclose(g[:, 0].numpy(), ref_g, atol=1e-9, rtol=0)


# ------------------------------------------------------------------- gradients
def smooth(x):
    return torch.sigmoid(4.0 * x)


def test_gradcheck_functional_steps():
    d = dict(dtype=F64, requires_grad=True)
    V = torch.tensor([-62.0, -51.0, -49.0], **d)
    g = torch.tensor([0.0, 15.0, 40.0], **d)
    I = torch.tensor([100.0, 250.0, 30.0], **d)
    jump = torch.tensor([0.0, 5.0, 1.0], **d)
    tau_syn = torch.tensor(5.0, **d)
    base = dict(tau=10.0, V_th=-50.0, V_reset=-65.0, V_rest=-65.0, R=0.1, dt=0.1,
                spk_fun=smooth)

    def cuba(V, g, I, jump, tau_syn):
        return F.cubalif_step(V, g, I, tau_syn=tau_syn, delta=jump, **base)

    assert torch.autograd.gradcheck(cuba, (V, g, I, jump, tau_syn))

    E = torch.tensor(0.0, **d)
    g_small = torch.tensor([0.0, 1.5, 4.0], **d)
    syn = torch.tensor(2.0, **d)

    def coba(V, g, I, jump, E, syn):
        return F.cobalif_step(V, g, lambda v: (I + syn * (-80.0 - v), syn), tau_syn=5.0, E=E,
                              delta=jump, **base)

    assert torch.autograd.gradcheck(coba, (V, g_small, I, jump, E, syn))


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [CubaLIF, CobaLIF])
def test_bad_parameters(cls):
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: parameter 'V_th' must be above 'V_reset'"):
        cls(3, V_th=-50 * u.mV)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'tau_syn' must be positive"):
        cls(3, tau_syn=0 * u.ms)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'tau_syn' expects a time"):
        cls(3, tau_syn=5 * u.mV)
    wrong_g = 1 * u.mV
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'g_initializer' expects"):
        cls(3, g_initializer=wrong_g)
    if cls is CobaLIF:
        with pytest.raises(tb.UnitError, match=r"CobaLIF: parameter 'g_initializer' expects a "
                                               r"conductance"):
            cls(3, g_initializer=1 * u.pA)
        with pytest.raises(tb.UnitError, match=r"CobaLIF: parameter 'E' expects a voltage"):
            cls(3, E=1 * u.nS)
    else:
        with pytest.raises(tb.UnitError, match=r"CubaLIF: parameter 'g_initializer' expects a "
                                               r"current"):
            cls(3, g_initializer=1 * u.nS)


def test_defaults_follow_the_reference():
    for cls in (CubaLIF, CobaLIF):
        n = cls(2)
        assert n.tau.item() == 5.0 and n.tau_syn.item() == 5.0 and n.V_th.item() == 1.0
        assert n.V_reset.item() == 0.0 and n.R.item() == pytest.approx(1e-9)
        assert n.spk_reset == "soft"
        tb.init_all_states(n, batch_size=3)
        assert n.g.shape == (3, 2) and torch.all(n.g == 0)
    assert CobaLIF(1).E.item() == 0.0
