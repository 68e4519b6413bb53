"""Synapses against closed forms and an independent NumPy float64 loop of the reference's
equations (brainpy-semantics.md §2.3)."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.functional import synapses as F
from torchbrain.synapses import BioNMDA, Synapse
from torchbrain.synapses.alpha import Alpha
from torchbrain.synapses.expon import DualExpon, Expon
from torchbrain.synapses.kinetic import AMPA, NMDA, GABAa

DT = 0.1
F64 = dict(dtype=torch.float64)


def run_jumps(syn, jumps, batch_size=None, via_x=False):
    """Step ``syn`` once per row of ``jumps`` (delta inputs); return the stacked outputs."""
    tb.init_all_states(syn, batch_size=batch_size)
    outs = []
    with tb.environ.context(dt=DT * u.ms):
        for row in jumps:
            if via_x:
                outs.append(syn(row).detach().clone())
            else:
                syn.add_delta_input("proj", row)
                outs.append(syn().detach().clone())
    return torch.stack(outs)


def run_spikes(syn, spikes, record=("g",), t0=0.0):
    tb.init_all_states(syn)
    traces = {k: [] for k in record}
    with tb.environ.context(dt=DT):
        for i, s in enumerate(spikes):
            with tb.environ.context(t=t0 + i * DT):
                syn(s)
            for k in record:
                traces[k].append(getattr(syn, k).detach().clone())
    return {k: torch.stack(v) for k, v in traces.items()}


def single_jump(n, size, value=1.0):
    jumps = torch.zeros(n, size, **F64)
    jumps[0] = value
    return jumps


# ------------------------------------------------------------------------- Expon
def test_expon_decay_is_exactly_exponential():
    syn = Expon(3, tau=5 * u.ms, g_initializer=tb.init.Constant(2.0 * u.nS), **F64)
    out = run_jumps(syn, torch.zeros(300, 3, **F64))
    n = torch.arange(1, 301, **F64)
    torch.testing.assert_close(out[:, 0], 2.0 * torch.exp(-n * DT / 5.0), atol=1e-6, rtol=0)


def test_expon_filters_jumps_like_the_convolution_sum():
    gen = torch.Generator().manual_seed(0)
    jumps = (torch.rand(400, 4, generator=gen, **F64) < 0.05) * torch.rand(400, 4, **F64)
    tau = torch.tensor([2.0, 5.0, 8.0, 20.0], **F64)
    out = run_jumps(Expon(4, tau=tau, **F64), jumps).numpy()
    # g_n = sum_{k <= n} jump_k exp(-(n - k) dt / tau), computed independently with NumPy
    n = np.arange(400)
    kernel = np.exp(-(n[:, None, None] - n[None, :, None]) * DT / tau.numpy()[None, None, :])
    kernel = np.where((n[:, None] >= n[None, :])[..., None], kernel, 0.0)
    expected = np.einsum("nkc,kc->nc", kernel, jumps.numpy())
    np.testing.assert_allclose(out, expected, atol=1e-9, rtol=0)


def test_expon_is_linear_so_one_shared_state_filters_every_projection():
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(50, 5, generator=gen, **F64)
    b = torch.rand(50, 5, generator=gen, **F64)
    shared = Expon(5, tau=3.0, **F64)
    tb.init_all_states(shared)
    outs = []
    with tb.environ.context(dt=DT):
        for xa, xb in zip(a, b, strict=True):
            shared.add_delta_input("E", xa)
            shared.add_delta_input("I", xb)
            outs.append(shared())
    separate = run_jumps(Expon(5, tau=3.0, **F64), a) + run_jumps(Expon(5, tau=3.0, **F64), b)
    torch.testing.assert_close(torch.stack(outs), separate)
    assert Expon.align_post and DualExpon.align_post and Alpha.align_post
    assert not (AMPA.align_post or GABAa.align_post or NMDA.align_post)


def test_expon_x_argument_and_quantities():
    syn = Expon(2, tau=4 * u.ms)
    tb.init_all_states(syn, batch_size=3)
    with tb.environ.context(dt=DT):
        syn.add_delta_input("p", torch.ones(2))
        g = syn(2.0 * u.nS)  # quantity x in its own canonical unit, plus the delta input
        assert g.shape == (3, 2) and torch.allclose(g, torch.full((3, 2), 3.0))
        assert syn.get_output() is syn.g
        with pytest.raises(tb.UnitError, match=r"Expon: parameter 'x' expects"):
            syn(1 * u.ms)
        syn.add_delta_input("p", torch.ones(5, 2))
        with pytest.raises(ValueError, match="batch size 5"):
            syn()


def test_aligned_to_the_pre_population():
    # AlignPre: a synapse sized by N_pre, updated with the pre spikes as x
    spikes = torch.zeros(30, 4, **F64)
    spikes[0, 1] = spikes[10, 1] = spikes[5, 3] = 1.0
    out = run_jumps(Expon(4, tau=2 * u.ms, **F64), spikes, via_x=True)
    assert out[9, 1].item() == pytest.approx(math.exp(-0.9 / 2.0), abs=1e-12)
    assert out[10, 1].item() == pytest.approx(1.0 + math.exp(-1.0 / 2.0), abs=1e-12)
    assert out[:, 0].abs().sum() == 0


# ------------------------------------------------------------------------- DualExpon
@pytest.mark.parametrize("tau_rise,tau_decay", [(1.0, 10.0), (0.5, 3.0), (2.0, 40.0)])
def test_dual_expon_peak_time_and_value(tau_rise, tau_decay):
    n_steps = int(8 * tau_decay / DT)
    syn = DualExpon(1, tau_decay=tau_decay * u.ms, tau_rise=tau_rise * u.ms, A=2.5, **F64)
    out = run_jumps(syn, single_jump(n_steps, 1, 0.8))[:, 0]
    t_peak = tau_rise * tau_decay / (tau_decay - tau_rise) * math.log(tau_decay / tau_rise)
    assert abs(int(out.argmax()) * DT - t_peak) <= DT
    assert out.max().item() == pytest.approx(2.5 * 0.8, rel=1e-3)
    # the whole trace is the normalised difference of exponentials, exactly on the grid
    t = torch.arange(n_steps, **F64) * DT
    peak_value = math.exp(-t_peak / tau_decay) - math.exp(-t_peak / tau_rise)
    expected = 2.5 * 0.8 / peak_value * (torch.exp(-t / tau_decay) - torch.exp(-t / tau_rise))
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert F.dual_expon_peak_time(tau_rise, tau_decay) == pytest.approx(t_peak)


def test_dual_expon_both_components_receive_the_jump_and_normalize_flag():
    syn = DualExpon(3, normalize=False, A=None)
    tb.init_all_states(syn)
    with tb.environ.context(dt=DT):
        syn.add_delta_input("p", torch.ones(3))
        syn()
        assert torch.equal(syn.g_rise, syn.g_decay) and torch.all(syn.g_rise == 1.0)
        syn()
    expected = math.exp(-DT / 10.0) - math.exp(-DT / 1.0)
    torch.testing.assert_close(syn.g, torch.full((3,), expected))
    assert torch.equal(syn.get_output(), syn.g)
    assert DualExpon(1).g is None  # no output before init_state


# ------------------------------------------------------------------------- Alpha
def test_alpha_is_the_alpha_function_on_the_grid():
    tau, jump = 4.0, 1.7
    out = run_jumps(Alpha(1, tau=tau * u.ms, **F64), single_jump(400, 1, jump))[:, 0]
    t = torch.arange(400, **F64) * DT
    torch.testing.assert_close(out, jump * t / tau * torch.exp(-t / tau), atol=1e-6, rtol=0)
    assert int(out.argmax()) * DT == pytest.approx(tau)
    assert out.max().item() == pytest.approx(jump / math.e, abs=1e-6)


def test_alpha_against_the_reference_exp_euler_loop():
    # The reference holds h constant over the step: its response is the alpha function times
    # (e^eps - 1)/eps, eps = dt/tau (documented deviation); same peak time.
    tau, n = 8.0, 400
    h, g, ref = 1.0, 0.0, []
    for _ in range(n):
        h_new = h * math.exp(-DT / tau)
        g = h + (g - h) * math.exp(-DT / tau)  # exp-Euler of dg = (-g + h)/tau, h held
        h = h_new
        ref.append(g)
    ours = run_jumps(Alpha(1, tau=tau, **F64), single_jump(n + 1, 1))[1:, 0].numpy()
    eps = DT / tau
    np.testing.assert_allclose(np.array(ref), ours * math.expm1(eps) / eps, rtol=1e-9)
    assert np.argmax(ref) == np.argmax(ours)


def test_alpha_x_argument_goes_into_h():
    syn = Alpha(2, tau=2.0, **F64)
    tb.init_all_states(syn)
    with tb.environ.context(dt=DT):
        g = syn(torch.tensor([1.0, 0.0], **F64))
        assert torch.all(g == 0) and syn.h[0] == 1.0
        g = syn()
    assert g[0].item() == pytest.approx(DT / 2.0 * math.exp(-DT / 2.0))


# ------------------------------------------------------------------------- kinetic receptors
def reference_kinetic(kind, spikes, p, dt=DT):
    """Float64 NumPy loop of brainpy.state's AMPA/BioNMDA update with exponential Euler
    x + dt * exprel(dt J) f(x). The pulse test ``t - t_arrival < T_dur`` is made exact by
    counting steps (k * dt < T_dur), which is the comparison the reference means."""

    def exp_euler(x, f, J):
        z = dt * J
        return x + dt * (np.expm1(z) / z) * f

    n, size = spikes.shape
    g, x = np.zeros(size), np.zeros(size)
    last = np.full(size, -(10**9))
    gs, xs = [], []
    for i in range(n):
        last = np.where(spikes[i] != 0, i, last)
        TT = np.where((i - last) * dt < p["T_dur"], p["T"], 0.0)
        if kind == "AMPA":
            g = exp_euler(g, p["alpha"] * TT * (1 - g) - p["beta"] * g,
                          -p["alpha"] * TT - p["beta"])
        else:
            x = exp_euler(x, p["alpha2"] * TT * (1 - x) - p["beta2"] * x,
                          -p["alpha2"] * TT - p["beta2"])
            g = exp_euler(g, p["alpha1"] * x * (1 - g) - p["beta1"] * g,
                          -p["alpha1"] * x - p["beta1"])
        gs.append(g)
        xs.append(x)
    return np.array(gs), np.array(xs)


AMPA_P = dict(alpha=0.98, beta=0.18, T=0.5, T_dur=0.5)
GABA_P = dict(alpha=0.53, beta=0.18, T=1.0, T_dur=1.0)
NMDA_P = dict(alpha1=2.0, beta1=0.01, alpha2=1.0, beta2=0.5, T=1.0, T_dur=0.5)


@pytest.mark.parametrize("kind,cls,params,override", [
    ("AMPA", AMPA, AMPA_P, {}),
    ("AMPA", GABAa, GABA_P, {}),
    ("AMPA", AMPA, {**AMPA_P, "T_dur": 0.25}, {"T_dur": 0.25 * u.ms}),  # 2.5 steps -> 3
    ("NMDA", NMDA, NMDA_P, {}),
])
def test_kinetic_receptors_against_reference_loop(kind, cls, params, override):
    gen = torch.Generator().manual_seed(2)
    spikes = (torch.rand(1500, 6, generator=gen, **F64) < 0.02).to(torch.float64)
    spikes[5:9, 0] = 1.0  # a burst: the pulse restarts with every spike
    syn = cls(6, **override, **F64)
    record = ("g", "x") if kind == "NMDA" else ("g",)
    traces = run_spikes(syn, spikes, record)
    ref_g, ref_x = reference_kinetic(kind, spikes.numpy(), params)
    np.testing.assert_allclose(traces["g"].numpy(), ref_g, atol=1e-10, rtol=0)
    if kind == "NMDA":
        np.testing.assert_allclose(traces["x"].numpy(), ref_x, atol=1e-10, rtol=0)
    assert traces["g"].max() > 0.05


def test_defaults_are_the_reference_defaults():
    a, g, n = AMPA(1), GABAa(1), BioNMDA(1)
    assert issubclass(BioNMDA, NMDA) and isinstance(n, Synapse)
    got = {k: getattr(a, k).item() for k in ("alpha", "beta", "T", "T_dur")}
    assert got == pytest.approx(AMPA_P)
    got = {k: getattr(g, k).item() for k in ("alpha", "beta", "T", "T_dur")}
    assert got == pytest.approx(GABA_P)
    got = {k: getattr(n, k).item() for k in NMDA_P}
    assert got == pytest.approx(NMDA_P)
    assert Expon(1).tau.item() == 8.0 and Alpha(1).tau.item() == 8.0
    d = DualExpon(1)
    assert (d.tau_rise.item(), d.tau_decay.item()) == (1.0, 10.0)


def test_ampa_relaxes_to_the_analytic_open_fraction_under_a_long_pulse():
    syn = AMPA(1, T_dur=1000 * u.ms, **F64)
    spikes = torch.zeros(300, 1, **F64)
    spikes[0] = 1.0
    g = run_spikes(syn, spikes)["g"][:, 0]
    k = 0.98 * 0.5 + 0.18
    t = torch.arange(1, 301, **F64) * DT
    torch.testing.assert_close(g, 0.98 * 0.5 / k * (1 - torch.exp(-k * t)), atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype,spike_steps", [
    (torch.float32, [9, 18, 36, 77, 159, 318, 636, 1277, 10236]),
    (torch.float64, [38, 76, 157, 319, 638, 1276, 10238]),
])
def test_pulse_length_is_robust_to_rounded_time(dtype, spike_steps):
    # At these steps t_{s+5} - t_s rounds to just below 0.5 ms (t_i = i * dt in `dtype`), so
    # comparing with T_dur directly would add a 6th step to the pulse; every pulse lasts 5.
    syn = AMPA(1, dtype=dtype)
    tb.init_all_states(syn)
    lengths = []
    with tb.environ.context(dt=DT):
        for s in spike_steps:
            g_prev, rising = syn.g.clone(), 0
            for i in range(s, s + 12):
                t = torch.tensor(i, dtype=dtype) * torch.tensor(DT, dtype=dtype)
                with tb.environ.context(t=t):
                    g = syn(torch.tensor([1.0 if i == s else 0.0], dtype=dtype))
                rising += bool(g > g_prev)
                g_prev = g.clone()
            lengths.append(rising)
    assert lengths == [5] * len(spike_steps)


def test_spike_gradient_passes_straight_through_the_pulse():
    syn = AMPA(3, **F64)
    tb.init_all_states(syn)
    spike = torch.tensor([1.0, 0.0, 1.0], requires_grad=True, **F64)
    with tb.environ.context(dt=DT, t=0.0):
        g = syn(spike)
    g.sum().backward()
    k = 0.98 * 0.5 + 0.18
    # d g/d s = d g/d[T] * T: positive at every neuron, 0 nowhere
    assert torch.all(spike.grad > 0)
    torch.testing.assert_close(g[0], torch.tensor(0.49 / k * -math.expm1(-k * DT), **F64))
    # a spike is any nonzero value (the reference's convention for float spikes)
    syn2 = AMPA(2, **F64)
    tb.init_all_states(syn2)
    with tb.environ.context(dt=DT, t=0.0):
        torch.testing.assert_close(syn2(torch.tensor([0.3, 1.0], **F64)), g[[0, 0]].detach())
        syn2(torch.tensor([True, False]))  # bool spikes are accepted


def smooth_spikes(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen, dtype=torch.float64)


def test_gradcheck_functional_steps():
    d = dict(dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.1, 0.5, 2.0], **d)
    h = torch.tensor([0.3, 0.0, 1.0], **d)
    tau = torch.tensor([2.0, 5.0, 8.0], **d)
    delta = torch.tensor([0.0, 1.0, 0.5], **d)
    assert torch.autograd.gradcheck(lambda g, tau, dl: F.expon_step(g, tau, DT, dl),
                                    (g, tau, delta))
    assert torch.autograd.gradcheck(lambda g, h, tau, dl: F.alpha_step(g, h, tau, DT, dl),
                                    (g, h, tau, delta))
    tr = torch.tensor([0.5, 1.0, 2.0], **d)
    td = torch.tensor([3.0, 10.0, 20.0], **d)

    def dual(gr, gd, tr, td, dl):
        gr, gd = F.dual_expon_step(gr, gd, tr, td, DT, dl)
        return F.dual_expon_output(gr, gd, F.dual_expon_norm(tr, td))

    assert torch.autograd.gradcheck(dual, (h, g, tr, td, delta))
    # kinetic: g, x and rates (spikes are events; their straight-through gradient is tested above)
    spike = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    arrival = torch.tensor([-1e7, -0.2, -1e7], dtype=torch.float64)
    frac = torch.tensor([0.1, 0.4, 0.9], **d)
    alpha = torch.tensor(0.98, **d)
    beta = torch.tensor(0.18, **d)

    def ampa(g, alpha, beta):
        return F.ampa_step(g, arrival, spike, 0.0, alpha=alpha, beta=beta, T=0.5, T_dur=0.5,
                           dt=DT)[0]

    assert torch.autograd.gradcheck(ampa, (frac, alpha, beta))
    x = torch.tensor([0.2, 0.6, 0.05], **d)

    def nmda(g, x, alpha1, beta2):
        return F.nmda_step(g, x, arrival, spike, 0.0, alpha1=alpha1, beta1=0.01, alpha2=1.0,
                           beta2=beta2, T=1.0, T_dur=0.5, dt=DT)[:2]

    assert torch.autograd.gradcheck(nmda, (frac, x, torch.tensor(2.0, **d),
                                           torch.tensor(0.5, **d)))


# ------------------------------------------------------------------------- descriptors
def test_desc_identifiers():
    a = Expon.desc(100, tau=5 * u.ms)
    b = Expon.desc(100, tau=5 * u.ms)
    assert a.identifier == b.identifier and hash(a) == hash(b)
    assert a.identifier != Expon.desc(100, tau=10 * u.ms).identifier
    assert a.identifier != Expon.desc(50, tau=5 * u.ms).identifier
    assert a.identifier != DualExpon.desc(100).identifier
    assert Alpha.desc(10, tau=2.0).identifier == Alpha.desc(10, tau=2.0).identifier
    syn = a()
    assert isinstance(syn, Expon) and syn.tau.item() == 5.0 and syn.in_size == (100,)
    assert syn is not a()  # a descriptor builds a fresh instance each call
    assert issubclass(a.cls, Synapse) and a.cls.align_post


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls,name", [(Expon, "tau"), (Alpha, "tau"), (DualExpon, "tau_rise"),
                                      (AMPA, "T_dur"), (NMDA, "T_dur")])
def test_bad_time_constants(cls, name):
    with pytest.raises(ValueError, match=rf"{cls.__name__}: parameter '{name}' must be positive"):
        cls(3, **{name: -1 * u.ms})
    with pytest.raises(tb.UnitError, match=rf"{cls.__name__}: parameter '{name}' expects a time"):
        cls(3, **{name: 1 * u.mV})
    with pytest.raises(ValueError, match="does not broadcast"):
        cls(3, **{name: torch.ones(4)})


def test_bad_parameters():
    with pytest.raises(ValueError, match="DualExpon: parameter 'tau_decay' must be larger"):
        DualExpon(2, tau_decay=1 * u.ms, tau_rise=1 * u.ms)
    with pytest.raises(ValueError, match="AMPA: parameter 'beta' must be positive"):
        AMPA(2, beta=0.0)
    with pytest.raises(ValueError, match="NMDA: parameter 'alpha1' must be >= 0"):
        NMDA(2, alpha1=-1 / u.ms)
    with pytest.raises(tb.UnitError, match="GABAa: parameter 'alpha' expects"):
        GABAa(2, alpha=0.5 / u.ms)
    with pytest.raises(tb.UnitError, match="AMPA: parameter 'g_initializer' expects dimensionless"):
        AMPA(2, g_initializer=0 * u.mS)  # the open fraction is dimensionless here
    with pytest.raises(tb.UnitError, match="Expon: parameter 'g_initializer' expects"):
        Expon(2, g_initializer=1 * u.ms)
    with pytest.raises(TypeError, match="normalize"):
        DualExpon(2, normalize="yes")
    with pytest.raises(ValueError, match="initial value 'g'"):
        tb.init_all_states(Expon(3, g_initializer=torch.ones(4)))


def test_runtime_errors_are_clear():
    syn = Expon(3)
    with tb.environ.context(dt=DT):
        with pytest.raises(RuntimeError, match="Expon: States are not initialised"):
            syn()
    tb.init_all_states(syn)
    with pytest.raises(KeyError, match="Expon needs the time step 'dt'"):
        syn()
    ampa = AMPA(3)
    tb.init_all_states(ampa, batch_size=2)
    with tb.environ.context(dt=DT):
        with pytest.raises(KeyError, match=r"AMPA .*needs the environment value 't'"):
            ampa(torch.zeros(2, 3))
        with tb.environ.context(t=0.0):
            with pytest.raises(ValueError, match=r"'pre_spike' has shape \(2, 4\)"):
                ampa(torch.zeros(2, 4))
