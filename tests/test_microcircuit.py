"""The Potjans–Diesmann (2014) microcircuit: construction statistics against the published
formulas, the per-synapse delay ring buffer against a NumPy reference loop, the PSC integration
against NEST's exact propagator, and short runs against the published rates."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.drivers.runner import NetworkRunner
from torchbrain.models.microcircuit import (
    CONN_PROBS,
    FULL_NUM_NEURONS,
    K_EXT,
    POPULATIONS,
    PUBLISHED_RATES,
    DelayedCSRConn,
    Microcircuit,
    StepAverageCUBA,
)
from torchbrain.neurons import LIFRef
from torchbrain.outputs import CUBA
from torchbrain.projections import AlignPostProj
from torchbrain.synapses import Expon

DT = 0.1


@pytest.fixture(scope="module")
def small():
    return Microcircuit(scale=0.02, k_scale=0.1, seed=1)


def pathway_of(net, index):
    """Population number of each neuron index."""
    return torch.bucketize(index, torch.tensor(net.offsets[1:]), right=True)


def test_full_scale_counts_follow_the_published_formula():
    # K_ab = log(1 - C_ab) / log(1 - 1/(N_a N_b)) / N_a, independently in float64 (log1p: the
    # plain log of 1 - 1e-9 keeps only ~7 digits)
    n = np.array(FULL_NUM_NEURONS, dtype=np.float64)
    total = np.zeros((8, 8))
    for a in range(8):
        for b in range(8):
            total[a, b] = math.log1p(-CONN_PROBS[a][b]) / math.log1p(-1.0 / (n[a] * n[b]))
    # PD14: 77,169 neurons and about 0.3 billion synapses
    assert int(n.sum()) == 77169
    assert 2.95e8 < total.sum() < 3.05e8
    from torchbrain.models.microcircuit import full_synapse_counts

    np.testing.assert_allclose(full_synapse_counts(), total, rtol=1e-12)


def test_synapse_counts_per_pathway_equal_the_formula(small):
    net = small
    n = np.array(FULL_NUM_NEURONS, dtype=np.float64)
    sizes = np.round(n * 0.02).astype(int)
    assert net.num_neurons == tuple(sizes)
    c = np.array(CONN_PROBS)
    expected = np.round(np.log1p(-c) / np.log1p(-1.0 / np.outer(n, n)) * 0.02 * 0.1)
    pre = pathway_of(net, net.conn.pre_indices())
    post = pathway_of(net, net.conn.post_indices())
    got = torch.bincount(post * 8 + pre, minlength=64).reshape(8, 8).numpy()
    np.testing.assert_array_equal(got, expected.astype(np.int64))
    np.testing.assert_array_equal(net.synapse_counts, expected.astype(np.int64))
    assert net.ext_indegree == tuple(int(round(k * 0.1)) for k in K_EXT)
    # fixed total number with random pairs: out-degrees vary (multinomial), not fixed
    rows = (net.conn.indptr[1:] - net.conn.indptr[:-1]).float()
    assert rows.std() > 0
    # storage: int32 codes + float32 weights (+ row pointers): about 8 bytes per synapse
    assert net.conn.codes.dtype == torch.int32 and net.conn.weight.dtype == torch.float32
    assert net.conn.bytes_per_synapse < 8.1


def test_weights_have_the_published_mean_std_and_signs(small):
    net = small
    w = net.conn.weight
    pre = pathway_of(net, net.conn.pre_indices())
    post = pathway_of(net, net.conn.post_indices())
    J = 87.8 / math.sqrt(0.1)  # k_scale compensation 1/sqrt(k)
    for a in range(8):
        for b in range(8):
            sel = w[(post == a) & (pre == b)].double()
            if sel.numel() < 200:
                continue
            mean = J * (-4.0 if b % 2 else 1.0) * (2.0 if (a, b) == (0, 2) else 1.0)
            se = 0.1 * abs(mean) / math.sqrt(sel.numel())
            assert abs(sel.mean().item() - mean) < 5 * se, (a, b)
            assert sel.std().item() == pytest.approx(0.1 * abs(mean), rel=0.1), (a, b)
            assert bool((sel <= 0).all()) if b % 2 else bool((sel >= 0).all())
    assert net.weight_mean[0, 2] == pytest.approx(2 * J)
    assert net.w_ext == pytest.approx(J)


def test_delays_are_truncated_normals_in_whole_steps(small):
    net = small
    d = net.conn.delay_steps().double() * DT
    inh = pathway_of(net, net.conn.pre_indices()) % 2 == 1
    assert d.min().item() >= DT - 1e-12
    for mask, mu in ((~inh, 1.5), (inh, 0.75)):
        sigma = 0.5 * mu
        # mean of N(mu, sigma) truncated below at dt (rounding to steps adds no bias on average)
        alpha = (DT - mu) / sigma
        phi = math.exp(-alpha**2 / 2) / math.sqrt(2 * math.pi)
        expected = mu + sigma * phi / (1 - 0.5 * (1 + math.erf(alpha / math.sqrt(2))))
        x = d[mask]
        assert x.mean().item() == pytest.approx(expected, abs=0.01)
        assert x.std().item() == pytest.approx(sigma, rel=0.1)
        assert x.max().item() < mu + 7 * sigma
    fixed = Microcircuit(scale=0.02, k_scale=0.02, delays=False, seed=2)
    steps = fixed.conn.delay_steps()
    inh = pathway_of(fixed, fixed.conn.pre_indices()) % 2 == 1
    assert set(steps[~inh].tolist()) == {15} and set(steps[inh].tolist()) == {8}


def test_dc_drive_and_downscaling_compensation():
    # DC drive at full in-degree: 8 Hz * K_ext * J * tau_s (pA), no compensation
    net = Microcircuit(scale=0.01, k_scale=1.0, drive="dc", seed=0)
    np.testing.assert_allclose(net.dc_amp, 8.0 * np.array(K_EXT) * 87.8 * 0.5e-3)
    assert net.ext is None
    # van Albada et al. 2015: DC = 1e-3 tau_s (1 - sqrt(k)) (sum_b J_ab K_ab nu_b + J K_ext nu_ext)
    k = 0.05
    net = Microcircuit(scale=0.01, k_scale=k, drive="poisson", seed=0)
    n = np.array(FULL_NUM_NEURONS, dtype=np.float64)
    c = np.array(CONN_PROBS)
    K = np.log1p(-c) / np.log1p(-1.0 / np.outer(n, n)) / n[:, None]
    J = np.where(np.arange(8) % 2 == 0, 87.8, -4 * 87.8)[None, :].repeat(8, 0)
    J[0, 2] *= 2
    rec = (J * K * np.array(PUBLISHED_RATES)).sum(1)
    ext = 87.8 * np.array(K_EXT) * 8.0
    np.testing.assert_allclose(net.dc_amp, 1e-3 * 0.5 * (1 - math.sqrt(k)) * (rec + ext))
    np.testing.assert_allclose(net.weight_mean, J / math.sqrt(k))
    # the DC vector follows the population slices
    for i, name in enumerate(POPULATIONS):
        assert torch.allclose(net.dc[net.slices[name]].double(),
                              torch.tensor(net.dc_amp[i]), rtol=1e-6)


def reference_delivery(pre, post, delay, weight, spikes, n_post):
    """y[n, ..., j] = sum_k w_k s[n - d_k, ..., pre_k] (NumPy, synapse by synapse)."""
    T = spikes.shape[0]
    out = np.zeros((T, *spikes.shape[1:-1], n_post))
    for k in range(len(pre)):
        for n in range(delay[k], T):
            out[n, ..., post[k]] += weight[k] * spikes[n - delay[k], ..., pre[k]]
    return out


@pytest.mark.parametrize("batch", [None, 3])
def test_ring_buffer_delivers_every_synapse_after_its_own_delay(batch):
    rng = np.random.default_rng(0)
    n_pre, n_post, nnz, T = 7, 5, 40, 30
    pre = np.sort(rng.integers(0, n_pre - 1, nnz))  # the last row stays empty
    post = rng.integers(0, n_post, nnz)
    post[:3] = post[0]  # multapses
    delay = rng.integers(0, 6, nnz)
    weight = rng.normal(size=nnz)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(pre, minlength=n_pre))])
    conn = DelayedCSRConn(n_pre, n_post, torch.tensor(indptr), torch.tensor(post),
                          torch.tensor(delay), torch.tensor(weight), DT, dtype=torch.float64)
    assert conn.n_slots == delay.max() + 1
    shape = (T, n_pre) if batch is None else (T, batch, n_pre)
    spikes = (rng.random(shape) < 0.3) * rng.choice([1.0, 0.5], shape)  # graded events too
    expected = reference_delivery(pre, post, delay, weight, spikes, n_post)
    tb.init_all_states(conn, batch_size=batch)
    with tb.environ.context(dt=DT * u.ms), torch.no_grad():
        got = np.stack([conn(torch.tensor(s)).numpy() for s in spikes])
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_array_equal(conn.pre_indices().numpy(), pre)
    np.testing.assert_array_equal(conn.post_indices().numpy(), post)
    np.testing.assert_array_equal(conn.delay_steps().numpy(), delay)
    # with autograd enabled the buffer is rebound instead of written in place: same values
    tb.reset_all_states(conn, batch_size=batch)
    with tb.environ.context(dt=DT * u.ms):
        again = np.stack([conn(torch.tensor(s)).numpy() for s in spikes])
    np.testing.assert_allclose(again, expected, atol=1e-12)


def test_ring_buffer_errors():
    conn = DelayedCSRConn(2, 2, torch.tensor([0, 1, 1]), torch.tensor([1]), torch.tensor([3]),
                          torch.tensor([1.0]) * u.pA, DT)
    assert conn.weight_unit == "pA"
    tb.init_all_states(conn)
    with tb.environ.context(dt=0.2 * u.ms), pytest.raises(RuntimeError, match="steps of 0.1 ms"):
        conn(torch.zeros(2))
    with tb.environ.context(dt=DT * u.ms), pytest.raises(ValueError, match="shape"):
        conn(torch.zeros(3))
    with pytest.raises(ValueError, match="'post' must lie"):
        DelayedCSRConn(2, 2, torch.tensor([0, 1, 1]), torch.tensor([2]), torch.tensor([1]),
                       torch.tensor([1.0]), DT)
    with pytest.raises(ValueError, match="indptr"):
        DelayedCSRConn(2, 2, torch.tensor([0, 2, 1]), torch.tensor([1]), torch.tensor([1]),
                       torch.tensor([1.0]), DT)


def nest_psp(t, J=87.8, C=250.0, tau_m=10.0, tau_s=0.5):
    """Exact PSP of iaf_psc_exp (mV) for a PSC jump J (pA) at t = 0 (t in ms)."""
    return J * tau_s * tau_m / (C * (tau_m - tau_s)) * (np.exp(-t / tau_m) - np.exp(-t / tau_s))


@pytest.mark.parametrize("out_cls, tolerance", [(StepAverageCUBA, 1e-3), (CUBA, None)])
def test_psp_matches_nest_exact_integration(out_cls, tolerance):
    # one synapse, delay 2 steps, onto a neuron at rest: the voltage response is NEST's PSP
    neuron = LIFRef(1, C=250 * u.pF, tau=10 * u.ms, tau_ref=2 * u.ms, V_th=-50 * u.mV,
                    V_reset=-65 * u.mV, V_rest=-65 * u.mV,
                    V_initializer=tb.init.Constant(-65 * u.mV), spk_reset="hard",
                    dtype=torch.float64)
    conn = DelayedCSRConn(1, 1, torch.tensor([0, 1]), torch.tensor([0]), torch.tensor([2]),
                          torch.tensor([87.8], dtype=torch.float64) * u.pA, DT,
                          dtype=torch.float64)
    proj = AlignPostProj(comm=conn, syn=Expon.desc(1, tau=0.5 * u.ms, dtype=torch.float64),
                         out=out_cls.desc(dtype=torch.float64), post=neuron)
    net = torch.nn.ModuleList([neuron, proj])
    tb.init_all_states(net)
    V = []
    with torch.no_grad():
        for n in range(300):
            with tb.environ.context(dt=DT * u.ms, t=n * DT):
                proj(torch.tensor([1.0 if n == 0 else 0.0], dtype=torch.float64))
                neuron(0.0)
                V.append(neuron.V.item())
    V = np.array(V) + 65.0
    # the spike fed at step 0 (time of the step's end, t = 0.1 ms) arrives 2 steps later: the
    # current jumps at the start of step 2 and step n ends (n - 1) steps after the jump
    assert np.all(V[:2] == 0)
    t = (np.arange(2, 300) - 1) * DT
    exact = nest_psp(t)
    # PD14: J = 87.8 pA is the PSC of a 0.15 mV PSP
    assert exact.max() == pytest.approx(0.15, abs=0.001)
    err = np.abs(V[2:] - exact).max() / exact.max()
    if tolerance is None:  # the piecewise-constant current carries ~10 % too much charge
        assert err > 0.05
    else:
        assert err < tolerance


def rates_of(net, steps, transient=0):
    tb.init_all_states(net)

    class Counts(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self):
            return net.population_counts(net())

    runner = NetworkRunner(Counts(), compile=False, record_dtype=torch.float32)
    with tb.environ.context(dt=DT * u.ms):
        if transient:
            runner.run(transient)
        counts = runner.run(steps, t0=transient * DT)
    assert torch.isfinite(net.neurons.V).all()
    return net.population_rates(counts)


@pytest.mark.parametrize("drive", ["poisson", "dc"])
def test_downscaled_network_fires_at_plausible_rates(drive):
    net = Microcircuit(scale=0.02, k_scale=0.1, drive=drive, seed=0)
    rates = rates_of(net, 2000)  # 200 ms
    for name, rate in rates.items():
        assert 0.1 < rate < 30.0, (name, rate)


def test_rate_ordering_at_scale_0_2():
    # 15,435 neurons, 60 million synapses, full in-degrees: the published pattern of rates
    net = Microcircuit(scale=0.2, k_scale=1.0, seed=0)
    r = rates_of(net, 3000, transient=1000)
    for layer in ("L23", "L4", "L6"):
        assert r[layer + "I"] > r[layer + "E"], r
    assert r["L5E"] > r["L23E"] and r["L5E"] > r["L6E"] and r["L4E"] > r["L23E"], r
    for name, ref in zip(POPULATIONS, PUBLISHED_RATES, strict=True):
        assert ref / 2 < r[name] < ref * 2, (name, r[name], ref)


def test_compiled_step_matches_eager():
    # the delayed connectivity is a mutating custom op: it must trace with fullgraph=True
    a = Microcircuit(scale=0.02, k_scale=0.1, drive="dc", seed=3, V0="original")
    b = Microcircuit(scale=0.02, k_scale=0.1, drive="dc", seed=3, V0="original")
    tb.init_all_states(a)
    tb.init_all_states(b)
    with tb.environ.context(dt=DT * u.ms):
        x = NetworkRunner(a, compile=False).run(1000)
        y = NetworkRunner(b, chunk=2).run(1000)
    assert x.sum() > 300
    assert (x != y).sum().item() <= 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="Microcircuit: 'scale'"):
        Microcircuit(scale=0.0)
    with pytest.raises(ValueError, match="'drive'"):
        Microcircuit(scale=0.01, drive="noise")
    with pytest.raises(ValueError, match="without neurons"):
        Microcircuit(scale=1e-4)
