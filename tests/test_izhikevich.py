"""Izhikevich neurons against the published firing patterns and an independent NumPy loop."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.functional import izhikevich as F
from torchbrain.neurons.izhikevich import Izhikevich, IzhikevichRef

DT = 0.1


def simulate(neuron, x, steps, dt=DT, batch_size=None, record=("V", "u")):
    tb.init_all_states(neuron, batch_size=batch_size)
    spikes, traces = [], {k: [] for k in record}
    with torch.inference_mode(), tb.environ.context(dt=dt):
        for i in range(steps):
            with tb.environ.context(t=i * dt):
                spikes.append(neuron(x))
            for k in record:
                traces[k].append(getattr(neuron, k))
    return torch.stack(spikes), {k: torch.stack(v) for k, v in traces.items()}


def test_published_firing_patterns():
    # Izhikevich (2003), Fig. 2, I = 10: regular spiking (RS), fast spiking (FS), chattering (CH).
    params = torch.tensor([[0.02, 0.2, -65.0, 8.0],    # RS
                           [0.1, 0.2, -65.0, 2.0],     # FS
                           [0.02, 0.2, -50.0, 2.0]],   # CH
                          dtype=torch.float64)
    a, b, c, d = params.T
    # per-neuron parameters as tensors in the canonical units (1/ms, 1/ms, mV, mV/ms)
    neuron = Izhikevich(3, a=a, b=b, c=c, d=d, u_initializer=None, dtype=torch.float64)
    spikes, _ = simulate(neuron, 10.0 * u.mV / u.ms, 6000)  # 600 ms
    isi = [np.diff(np.flatnonzero(spikes[:, k].numpy())) * DT for k in range(3)]
    rs, fs, ch = isi
    # RS: tonic firing with spike-frequency adaptation (the first interval is the shortest)
    assert rs[0] < 0.7 * rs[-1] and np.all(np.diff(rs[1:]) > -0.5)
    assert 15.0 < 1000.0 / rs[-1] < 35.0
    # FS: a high, nearly constant rate
    assert 1000.0 / fs[-1] > 100.0
    steady = fs[len(fs) // 2:]
    assert steady.std() / steady.mean() < 0.05
    # CH: bursts of high-frequency spikes (intervals of a few ms) separated by long pauses
    short, long = ch[ch < 10.0], ch[ch > 30.0]
    assert len(long) >= 5 and len(short) >= 3 * len(long)
    assert short.max() < 0.15 * long.min()


def test_default_neuron_rate():
    # the reference's defaults (u starts at 0, above the nullcline b V = -13): first spike at
    # 43 ms, then every 45 ms
    spikes, traces = simulate(Izhikevich(2), 10.0, 5000)
    assert spikes[:, 0].sum().item() == 11
    # hard reset: the step after each spike restarts from c = -65 mV
    k = int(torch.nonzero(spikes[:, 0])[0])
    assert traces["V"][k, 0] >= 30.0
    assert traces["u"][k + 1, 0] > traces["u"][k, 0] + 7.0  # u jumped by d = 8


def reference_izhikevich(steps, I, p, dt=DT, tau_ref=None, u_reads_new_V=True):
    """Float64 NumPy loop of brainpy.state's Izhikevich update (brainpy-semantics §2.2):
    lazy reset from the stored V, exponential Euler for V, then the exact step for u at the
    already-integrated V (its ``du`` reads the updated State), refractory hold of the post-reset
    values. ``u_reads_new_V=False`` is the start-of-step order torchbrain used before."""
    V, uu = p["V0"], p["u0"]
    last = -10**9
    Vs, us, spikes = [], [], []
    for i in range(steps):
        s = 1.0 if V >= p["V_th"] else 0.0
        if s:
            V = p["c"]
        uu = uu + p["d"] * s
        V_reset, u_reset = V, uu
        f = 0.04 * V ** 2 + 5.0 * V + 140.0 - uu + I
        J = 0.08 * V + 5.0
        z = dt * J
        V_new = V + dt * (np.expm1(z) / z if z != 0 else 1.0) * f
        V_u = V_new if u_reads_new_V else V
        u_new = p["b"] * V_u + (uu - p["b"] * V_u) * math.exp(-p["a"] * dt)
        if tau_ref is not None:
            if i - last < round(tau_ref / dt):  # a whole number of steps
                V_new, u_new = V_reset, u_reset
            if V_new >= p["V_th"]:
                last = i
        V, uu = V_new, u_new
        Vs.append(V)
        us.append(uu)
        spikes.append(1.0 if V >= p["V_th"] else 0.0)
    return np.array(spikes), np.array(Vs), np.array(us)


@pytest.mark.parametrize("kind", ["Izhikevich", "IzhikevichRef"])
def test_against_independent_reference(kind):
    p = dict(a=0.02, b=0.2, c=-55.0, d=4.0, V_th=30.0, V0=-70.0, u0=-14.0)
    kw = dict(a=p["a"], b=p["b"], c=p["c"], d=p["d"], V_th=p["V_th"] * u.mV,
              V_initializer=tb.init.Constant(p["V0"] * u.mV),
              u_initializer=tb.init.Constant(p["u0"] * u.mV / u.ms), dtype=torch.float64)
    tau_ref = None
    if kind == "IzhikevichRef":
        tau_ref = 3.0
        neuron = IzhikevichRef(2, tau_ref=tau_ref * u.ms, **kw)
    else:
        neuron = Izhikevich(2, **kw)
    I = 12.0
    spikes, traces = simulate(neuron, I, 3000)
    ref_spikes, ref_V, ref_u = reference_izhikevich(3000, I, p, tau_ref=tau_ref)
    assert ref_spikes.sum() > 10
    np.testing.assert_array_equal(spikes[:, 0].numpy(), ref_spikes)
    # Rounding differences (torch vs NumPy expm1) grow about tenfold per upstroke, since u
    # reads the upstroke's V (tens of mV above threshold): ~1e-6 mV at 180 ms, 1e-3 mV by
    # 280 ms. Traces are compared over the first 200 ms; the spike steps above over all 300 ms.
    np.testing.assert_allclose(traces["V"][:2000, 0].numpy(), ref_V[:2000], atol=1e-4, rtol=0)
    np.testing.assert_allclose(traces["u"][:2000, 0].numpy(), ref_u[:2000], atol=1e-4, rtol=0)


def test_regular_spiking_spike_times_over_one_second():
    # Izhikevich (2003) RS cell at I = 10 for 1 s: every spike time (step) as the reference
    # integrates it; the start-of-step order differs by a step within the first intervals.
    p = dict(a=0.02, b=0.2, c=-65.0, d=8.0, V_th=30.0, V0=-65.0, u0=-13.0)
    neuron = Izhikevich(1, a=p["a"], b=p["b"], c=p["c"], d=p["d"], V_th=p["V_th"] * u.mV,
                        V_initializer=tb.init.Constant(p["V0"] * u.mV),
                        u_initializer=tb.init.Constant(p["u0"] * u.mV / u.ms), dtype=torch.float64)
    steps = 10_000
    spikes, _ = simulate(neuron, 10.0, steps, record=())
    got = np.flatnonzero(spikes[:, 0].numpy())
    ref = np.flatnonzero(reference_izhikevich(steps, 10.0, p)[0])
    old = np.flatnonzero(reference_izhikevich(steps, 10.0, p, u_reads_new_V=False)[0])
    assert len(ref) >= 20
    np.testing.assert_array_equal(got, ref)
    assert len(old) != len(ref) or np.abs(old - ref).max() >= 5  # the test tells them apart


def test_refractory_period_lengthens_intervals():
    free, _ = simulate(Izhikevich(1, d=2 * u.mV / u.ms, c=-50 * u.mV), 10.0, 3000)
    refr, traces = simulate(
        IzhikevichRef(1, d=2 * u.mV / u.ms, c=-50 * u.mV, tau_ref=5 * u.ms), 10.0, 3000)
    isi_free = np.diff(np.flatnonzero(free[:, 0].numpy())) * DT
    isi_ref = np.diff(np.flatnonzero(refr[:, 0].numpy())) * DT
    assert isi_free.min() < 5.0 and isi_ref.min() >= 5.0
    k = int(torch.nonzero(refr[:, 0])[0])
    held = traces["V"][k + 1: k + 50, 0]
    assert torch.all(held == -50.0)  # held at c during the refractory period


def test_spike_is_robust_to_the_sign_of_the_threshold():
    # The reference's (V - V_th)/V_th never fires for a negative threshold; here V >= V_th does.
    neuron = Izhikevich(1, V_th=-20 * u.mV, c=-65 * u.mV)
    spikes, traces = simulate(neuron, 10.0, 2000)
    assert spikes.sum() >= 3
    k = np.flatnonzero(spikes[:, 0].numpy())
    assert torch.all(traces["V"][k, 0] >= -20.0)
    assert torch.all(traces["V"][k - 1, 0] < -20.0)


def test_input_units():
    a, _ = simulate(Izhikevich(1, dtype=torch.float64), 10.0 * u.mV / u.ms, 500)
    b, _ = simulate(Izhikevich(1, dtype=torch.float64), 10.0 * u.volt / u.s, 500)
    c, _ = simulate(Izhikevich(1, dtype=torch.float64), torch.tensor([10.0]).double(), 500)
    assert torch.equal(a, b) and torch.equal(a, c) and a.sum() > 0


def test_u_initializer_none_starts_on_the_nullcline():
    neuron = Izhikevich(3, b=torch.tensor([0.2, 0.25, 0.3]), u_initializer=None)
    tb.init_all_states(neuron, batch_size=2)
    torch.testing.assert_close(neuron.u, torch.tensor([0.2, 0.25, 0.3]).expand(2, 3) * -65.0)


def smooth(x):
    return torch.sigmoid(4.0 * x)


def test_gradcheck_functional_steps():
    d = dict(dtype=torch.float64, requires_grad=True)
    V = torch.tensor([-65.0, 31.0, 20.0, -50.0], **d)
    uu = torch.tensor([-13.0, -10.0, 0.0, 2.0], **d)
    I = torch.tensor([10.0, 0.0, 5.0, 20.0], **d)
    a = torch.tensor(0.02, **d)
    params = dict(b=0.2, c=-65.0, d=8.0, V_th=30.0, dt=0.1, spk_fun=smooth)
    # The soft reset; the hard one stops the gradient through the reset amount on purpose.
    def step(V, uu, I, a):
        return F.izhikevich_step(V, uu, I, a=a, hard_reset=False, **params)

    assert torch.autograd.gradcheck(step, (V, uu, I, a))

    def coba(V, uu):
        return F.izhikevich_step(V, uu, lambda v: (0.5 * (0.0 - v), 0.5), a=0.02,
                                 hard_reset=False, **params)

    assert torch.autograd.gradcheck(coba, (V, uu))
    last = torch.tensor([-1e7, 9.9, 8.0, -1e7], dtype=torch.float64)

    def ref(V, uu, I):
        return F.izhikevichref_step(V, uu, last, I, 10.0, a=0.02, tau_ref=1.0, hard_reset=False,
                                    **params)[:3]

    assert torch.autograd.gradcheck(ref, (V, uu, I))


def test_surrogate_gradient_flows_through_time():
    neuron = Izhikevich(4)
    tb.init_all_states(neuron, batch_size=2)
    w = torch.full((2, 4), 10.0, requires_grad=True)
    with tb.environ.context(dt=DT):
        out = torch.stack([neuron(w) for _ in range(1000)])
    out.sum().backward()
    assert out.sum() > 0 and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("cls", [Izhikevich, IzhikevichRef])
def test_bad_parameters(cls):
    name = cls.__name__
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'd' expects"):
        cls(3, d=8 * u.mV)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'a' expects"):
        cls(3, a=0.02 * u.ms)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'a' must be >= 0"):
        cls(3, a=-0.02)
    with pytest.raises(ValueError, match=rf"{name}: parameter 'V_th' must be above 'c'"):
        cls(3, V_th=-70 * u.mV)
    with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'u_initializer'"):
        cls(3, u_initializer=1 * u.mV)
    with pytest.raises(tb.UnitError, match=rf"{name}: .*'u'"):  # initializers: at init_state
        tb.init_all_states(cls(3, u_initializer=tb.init.Constant(1 * u.mV)))
    with pytest.raises(ValueError, match=rf"{name}: parameter 'spk_reset' must be 'hard'"):
        cls(3, spk_reset="soft")
    with pytest.raises(ValueError, match="spk_reset"):
        cls(3, spk_reset="never")
    with pytest.raises(ValueError, match="does not broadcast"):
        cls(3, c=torch.full((2,), -65.0))
    neuron = cls(3)
    tb.init_all_states(neuron)
    with tb.environ.context(dt=DT, t=0.0):
        with pytest.raises(tb.UnitError, match=rf"{name}: parameter 'x'"):
            neuron(10 * u.pA)  # the model's input is in mV/ms, not a current


def test_ref_needs_time():
    neuron = IzhikevichRef(2, tau_ref=1 * u.ms)
    tb.init_all_states(neuron)
    with tb.environ.context(dt=DT):
        with pytest.raises(KeyError, match="IzhikevichRef .*'t'"):
            neuron(0.0)
    with pytest.raises(ValueError, match="tau_ref"):
        IzhikevichRef(2, tau_ref=-1 * u.ms)
