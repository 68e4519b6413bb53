"""Input generators against closed forms, binomial/Poisson statistics and NumPy references."""

import copy
import io
import math
import pickle

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.drivers.loops import time_range
from torchbrain.inputs import counter_normal, counter_uniform
from torchbrain.inputs.currents import (
    ConstantInput,
    OUProcessInput,
    RampInput,
    SectionInput,
    SinusoidalInput,
    StepInput,
    WienerProcessInput,
    constant_input,
    ou_process,
    ramp_input,
    section_input,
    sinusoidal_input,
    step_input,
    wiener_process,
)
from torchbrain.inputs.poisson import (
    PoissonEncoder,
    PoissonInput,
    PoissonSpike,
    binomial_counts,
    poisson_input,
)
from torchbrain.inputs.spike_time import SpikeTime

F64 = torch.float64


def run(module, steps, dt, *args, batch_size=None, init=True, dtype=F64):
    """Step ``module`` ``steps`` times with ``t`` from time_range; stack the outputs."""
    if init:
        tb.init_all_states(module, batch_size=batch_size)
    outs = []
    with tb.environ.context(dt=dt):
        for t in time_range(steps * dt, dt, dtype=dtype):
            with tb.environ.context(t=t):
                outs.append(module(*args).detach().clone())
    return torch.stack(outs)


# ------------------------------------------------------------------ counter-based RNG
def test_counter_rng_is_uniform_and_uncorrelated():
    seed = torch.tensor([7, 11], dtype=torch.int64)
    u_ = torch.stack([counter_uniform(seed, torch.tensor(c), (20000,), dtype=F64)
                      for c in range(10)])
    assert float(u_.min()) >= 0.0 and float(u_.max()) < 1.0
    n = u_.numel()
    hist = torch.histc(u_.flatten(), 50, 0, 1)
    chi2 = float(((hist - n / 50) ** 2 / (n / 50)).sum())
    assert chi2 < 49 + 6 * math.sqrt(2 * 49)
    lag_step = torch.corrcoef(torch.stack([u_[:-1].flatten(), u_[1:].flatten()]))[0, 1]
    lag_elem = torch.corrcoef(torch.stack([u_[:, :-1].flatten(), u_[:, 1:].flatten()]))[0, 1]
    assert abs(float(lag_step)) < 4 / math.sqrt(n) and abs(float(lag_elem)) < 4 / math.sqrt(n)
    z = counter_normal(seed, torch.tensor(3), (200000,), dtype=F64)
    assert abs(float(z.mean())) < 4 / math.sqrt(2e5)
    assert abs(float(z.var()) - 1) < 4 * math.sqrt(2 / 2e5)
    # float32 draws are the same numbers at lower resolution
    u32 = counter_uniform(seed, torch.tensor(0), (1000,))
    assert u32.dtype == torch.float32
    torch.testing.assert_close(u32.double(), u_[0, :1000], atol=2**-24, rtol=0)


# ------------------------------------------------------------------ PoissonSpike / Encoder
def test_poisson_spike_rate_within_three_sigma():
    n_neurons, steps, dt = 2000, 1000, 0.1
    freqs = torch.where(torch.arange(n_neurons) % 2 == 0, 0.01, 0.1)  # 10 Hz and 100 Hz
    src = PoissonSpike(n_neurons, freqs, seed=1234, dtype=F64)
    spikes = run(src, steps, dt)
    assert spikes.dtype == F64 and set(spikes.unique().tolist()) <= {0.0, 1.0}
    for f in (0.01, 0.1):
        mask = freqs == f
        p = 1 - math.exp(-f * dt)
        trials = steps * int(mask.sum())
        count = float(spikes[:, mask].sum())
        assert abs(count - trials * p) < 3 * math.sqrt(trials * p * (1 - p))


def test_poisson_spike_probability_is_exact_at_high_rate():
    # f dt = 0.9, the highest kind of rate accepted: 1 - exp(-0.9) = 0.593, not 0.9
    src = PoissonSpike(20000, 0.9, seed=5, dtype=F64)
    spikes = run(src, 2, 1.0)
    p = 1 - math.exp(-0.9)
    assert abs(float(spikes.mean()) - p) < 4 * math.sqrt(p * (1 - p) / spikes.numel())


def test_poisson_intervals_are_geometric():
    p_dt, steps = 0.05, 4000  # f dt with f = 500 Hz, dt = 0.1 ms
    src = PoissonSpike(200, 500 * u.Hz, seed=9, dtype=F64)
    spikes = run(src, steps, 0.1)
    isis = np.concatenate([np.diff(np.flatnonzero(spikes[:, j].numpy())) for j in range(200)])
    p = 1 - math.exp(-p_dt)
    mean = 1 / p  # geometric number of steps between spikes
    assert abs(isis.mean() - mean) < 4 * math.sqrt((1 - p) / p**2 / len(isis))
    assert abs(isis.std() / isis.mean() - math.sqrt(1 - p)) < 0.03


def test_poisson_spike_units_and_validation():
    src = PoissonSpike(3, 10 * u.Hz)
    assert float(src.freqs) == pytest.approx(0.01)
    with pytest.raises(tb.UnitError, match="PoissonSpike.*'freqs'"):
        PoissonSpike(3, 10 * u.mV)
    with pytest.raises(ValueError, match="'freqs' must be >= 0"):
        PoissonSpike(3, -1 * u.Hz)
    with pytest.raises(ValueError, match="'seed'"):
        PoissonSpike(3, 1.0, seed=-1)
    with pytest.raises(ValueError, match="not both"):
        PoissonSpike(3, 1.0, seed=1, generator=torch.Generator())
    with pytest.raises(RuntimeError, match="not initialised"):
        with tb.environ.context(dt=0.1):
            PoissonSpike(3, 1.0)()


def test_poisson_reproducible_with_seed_and_generator():
    def spikes(**kw):
        return run(PoissonSpike(50, 0.2, **kw), 30, 0.1, batch_size=2)

    a = spikes(generator=torch.Generator().manual_seed(3))
    b = spikes(generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.sum() > 0
    assert not torch.equal(a, spikes(generator=torch.Generator().manual_seed(4)))
    assert torch.equal(spikes(seed=11), spikes(seed=11))
    torch.manual_seed(0)
    c = spikes()
    torch.manual_seed(0)
    assert torch.equal(c, spikes())
    assert not torch.equal(a[:, 0], a[:, 1])  # batch rows are independent


def test_poisson_stream_survives_copies_and_resets():
    src = PoissonSpike(40, 0.3, seed=2)
    run(src, 5, 0.1, batch_size=3)
    saved = tb.state_dict(src)
    clone, again = copy.deepcopy(src), pickle.loads(pickle.dumps(src))
    buf = io.BytesIO()
    torch.save(src, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    ref = run(src, 10, 0.1, init=False)
    for other in (clone, again, loaded):
        assert torch.equal(run(other, 10, 0.1, init=False), ref)
    fresh = PoissonSpike(40, 0.3, seed=99)
    tb.init_all_states(fresh, batch_size=3)
    tb.load_state_dict(fresh, saved)
    assert torch.equal(run(fresh, 10, 0.1, init=False), ref)
    # reset_state keeps the stream going (new trial, new spikes); reseed restarts it
    first = run(src, 10, 0.1, batch_size=3)
    assert not torch.equal(first, run(src, 10, 0.1, batch_size=3))
    src.reseed(5)
    a = run(src, 10, 0.1, batch_size=3)
    src.reseed(5)
    assert torch.equal(a, run(src, 10, 0.1, batch_size=3))


def test_poisson_encoder_matches_spike_source_and_checks_batch():
    rates = torch.rand(2, 30) * 0.5
    enc = PoissonEncoder(30, seed=4)
    src = PoissonSpike(30, rates[0], seed=4)
    a = run(enc, 20, 0.1, rates[0])
    assert torch.equal(a, run(src, 20, 0.1))
    out = run(enc, 3, 0.1, rates * 1000 * u.Hz, batch_size=2)
    assert out.shape == (3, 2, 30) and torch.equal(enc.get_spike(), out[-1])
    with pytest.raises(ValueError, match="batch size"):
        run(enc, 1, 0.1, torch.rand(3, 30), init=False)
    with pytest.raises(tb.UnitError, match="PoissonEncoder.*'freqs'"):
        run(enc, 1, 0.1, torch.rand(2, 30) * u.mV, init=False)


# ------------------------------------------------------------------ PoissonInput
def binomial_pmf(n, p):
    return np.array([math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)])


def chi2_against(counts, pmf, min_expected=5.0):
    """Pearson's statistic and degrees of freedom, pooling sparse cells into the tail."""
    total = len(counts)
    observed = np.bincount(counts.astype(np.int64), minlength=len(pmf))[:len(pmf)]
    expected = pmf * total
    keep = expected >= min_expected
    obs = np.append(observed[keep], total - observed[keep].sum())
    exp = np.append(expected[keep], total - expected[keep].sum())
    mask = exp > 0
    return float(((obs[mask] - exp[mask]) ** 2 / exp[mask]).sum()), int(mask.sum()) - 1


@pytest.mark.parametrize("n, p", [(20, 0.1), (8, 0.6), (6, 0.5)])
def test_poisson_input_exact_branch_is_binomial(n, p):
    freq = -math.log1p(-p)  # 1/ms, dt = 1 ms
    assert not (n * p > 5 and n * (1 - p) > 5)
    mod = PoissonInput(5000, n, freq, 1.0, seed=n, dtype=F64)
    counts = run(mod, 20, 1.0).flatten().numpy()
    assert np.all(counts == np.round(counts)) and counts.min() >= 0 and counts.max() <= n
    stat, df = chi2_against(counts, binomial_pmf(n, p))
    assert stat < df + 5 * math.sqrt(2 * df)
    assert abs(counts.mean() - n * p) < 4 * math.sqrt(n * p * (1 - p) / len(counts))


def test_poisson_input_normal_branch_mean_and_variance():
    n, p = 1000, 0.02  # n p = 20 and n (1-p) = 980: the normal approximation
    mod = PoissonInput((50, 100), n, -math.log1p(-p) * u.kHz, 0.5 * u.mV, seed=3, dtype=F64)
    out = run(mod, 20, 1.0)
    counts = (out / 0.5).flatten()
    assert torch.equal(counts, torch.round(counts)) and float(counts.min()) >= 0
    var = n * p * (1 - p) + 1 / 12  # rounding adds the variance of a uniform on a unit bin
    N = counts.numel()
    assert abs(float(counts.mean()) - n * p) < 4 * math.sqrt(var / N)
    assert abs(float(counts.var()) - var) < 4 * var * math.sqrt(2 / N)


def test_poisson_input_mixed_branches_per_target():
    freqs = torch.tensor([0.002, 0.05] * 1000, dtype=F64)  # n p = 0.2 (exact) and 5.1 (normal)
    mod = PoissonInput(2000, 100, freqs, 1.0, seed=8, dtype=F64)
    counts = run(mod, 40, 1.0)
    for f, col in ((0.002, slice(0, None, 2)), (0.05, slice(1, None, 2))):
        p = 1 - math.exp(-f)
        c = counts[:, col].flatten()
        assert abs(float(c.mean()) - 100 * p) < 4 * math.sqrt(100 * p * (1 - p) / c.numel())
    # the per-dt plan only skips samplers nobody needs: forcing both gives the same numbers
    a = PoissonInput(2000, 100, 0.002, 1.0, seed=8, dtype=F64)
    b = copy.deepcopy(a)
    b._plan = lambda p, dt: (True, True, 32)
    assert torch.equal(run(a, 5, 1.0), run(b, 5, 1.0))


@pytest.mark.parametrize("n,q", [(100, 0.002), (2900, 0.0008), (40, 0.11), (6, 0.5), (50, 0.0)])
def test_exact_sampler_terms_cut_the_tail_below_1e_14(n, q):
    from fractions import Fraction

    from torchbrain.inputs.poisson import exact_sampler_terms

    k_cut = exact_sampler_terms(n, q)
    qf = Fraction(q)

    def tail(k):  # P(X >= k), exact rational arithmetic
        return 1 - sum(math.comb(n, j) * qf**j * (1 - qf) ** (n - j) for j in range(k))

    assert 1 <= k_cut <= 32
    if k_cut < min(n, 32) and q > 0:  # else every value is reachable: nothing is cut
        assert tail(k_cut) < 1e-14 <= tail(k_cut - 1)
    # the cut sampler gives the 32-term sampler's counts (the tail is never reached here)
    p = torch.full((4000,), q, dtype=F64)
    uni = torch.rand(4000, dtype=F64, generator=torch.Generator().manual_seed(n))
    assert torch.equal(binomial_counts(n, p, None, uni, k_cut), binomial_counts(n, p, None, uni))


def test_binomial_counts_edge_cases():
    p = torch.tensor([0.0, 1.0, 0.5], dtype=F64)
    z = torch.zeros(3, dtype=F64)
    uni = torch.full((3,), 0.999999, dtype=F64)
    out = binomial_counts(4, p, z, uni)
    assert out.tolist() == [0.0, 4.0, 4.0]
    # the normal approximation is clipped to [0, n] (the reference clips at 0 only)
    big = binomial_counts(100, torch.tensor([0.93], dtype=F64), torch.tensor([5.0]), None)
    assert float(big) == 100.0


def test_poisson_input_as_persistent_delta_input_of_a_neuron():
    neurons = tb.LIF(50, tau=10 * u.ms, V_th=1000 * u.mV, dtype=F64)
    noise = PoissonInput(50, 200, 20 * u.Hz, 0.5 * u.mV, seed=1, dtype=F64)
    neurons.add_delta_input("poisson", noise)
    tb.init_all_states(neurons, batch_size=2)
    twin = copy.deepcopy(noise)
    V = torch.zeros(2, 50, dtype=F64)
    with tb.environ.context(dt=0.1):
        for i in range(20):
            with tb.environ.context(t=i * 0.1):
                neurons(0.0)
                V = V * math.exp(-0.1 / 10) + twin()
    assert float(V.abs().sum()) > 0
    torch.testing.assert_close(neurons.V, V, atol=1e-12, rtol=0)


def test_poisson_input_function():
    target = torch.zeros(4000, dtype=F64)
    out = poisson_input(50 * u.Hz, 40, 2 * u.pA, target, dt=1.0, seed=3)
    p = 1 - math.exp(-0.05)
    assert abs(float(out.mean()) / 2 - 40 * p) < 4 * math.sqrt(40 * p * (1 - p) / 4000)
    assert torch.equal(out, poisson_input(50 * u.Hz, 40, 2 * u.pA, target, dt=1.0, seed=3))
    refractory = torch.arange(4000) < 2000
    masked = poisson_input(50 * u.Hz, 40, 2 * u.pA, target, dt=1.0, seed=3,
                           refractory=refractory)
    assert float(masked[:2000].abs().sum()) == 0 and torch.equal(masked[2000:], out[2000:])
    assert poisson_input(0.01, 10, 1.0, shape=(3, 2), dt=0.1).shape == (3, 2)
    with pytest.raises(tb.UnitError, match="poisson_input.*'freq'"):
        poisson_input(1 * u.mV, 10, 1.0, target, dt=0.1)
    with pytest.raises(ValueError, match="'num_input'"):
        poisson_input(0.01, -1, 1.0, target, dt=0.1)


# ------------------------------------------------------------------ SpikeTime
def raster(module, steps, dt, batch_size=None, dtype=F64):
    out = run(module, steps, dt, batch_size=batch_size, dtype=dtype)
    return sorted(tuple(x) for x in torch.nonzero(out).tolist())


@pytest.mark.parametrize("rule, steps", [
    ("round", [3, 2, 3, 3, 10]),
    ("floor", [3, 2, 2, 3, 10]),
    ("ceil", [3, 3, 3, 4, 10]),
])
def test_spike_time_emits_at_the_right_steps(rule, steps):
    times = [0.3, 0.25, 0.26, 0.34, 1.0]  # ms, dt = 0.1 ms; 0.25 rounds half to even
    indices = [0, 1, 2, 3, 4]
    mod = SpikeTime(5, indices, times * u.ms, time_as_step=rule)
    expected = sorted(zip(steps, indices, strict=True))
    assert raster(mod, 15, 0.1) == expected
    assert raster(mod, 15, 0.1, dtype=torch.float32) == expected  # float32 t works too


def test_spike_time_batch_duplicates_weight_and_dt_change():
    mod = SpikeTime((2, 3), [5, 5, 0], [1.0, 1.02, 2.0], weight=2.0)
    out = run(mod, 30, 0.1, batch_size=2)
    assert out.shape == (30, 2, 2, 3)
    assert torch.equal(out[:, 0], out[:, 1])
    assert out[10, 0, 1, 2] == 2.0 and out[20, 0, 0, 0] == 2.0  # two spikes in a step: one
    assert float(out.sum()) == 2 * 2 * 2.0
    # a different dt builds a different table
    out = run(mod, 30, 0.5)
    assert sorted(torch.nonzero(out).tolist()) == [[2, 1, 2], [4, 0, 0]]
    assert set(mod._tables) == {(0.1, "cpu"), (0.5, "cpu")}


def test_spike_time_compile_fallback_equals_table(monkeypatch):
    mod = SpikeTime(6, [0, 5, 2, 2, 3], [0.0, 0.5, 0.5, 0.9, 1.7])
    table = run(mod, 25, 0.1)
    mod._tables.clear()
    monkeypatch.setattr(torch.compiler, "is_dynamo_compiling", lambda: True)
    fallback = run(mod, 25, 0.1)
    assert not mod._tables and torch.equal(table, fallback) and float(table.sum()) == 5


def test_spike_time_errors():
    with pytest.raises(ValueError, match="'times' must hold finite times >= 0"):
        SpikeTime(3, [0], [-1.0])
    with pytest.raises(ValueError, match=r"'indices' must be in \[0, 3\).*got 3"):
        SpikeTime(3, [3], [1.0])
    with pytest.raises(ValueError, match="got -1"):
        SpikeTime(3, [-1], [1.0])
    with pytest.raises(ValueError, match="same length"):
        SpikeTime(3, [0, 1], [1.0])
    with pytest.raises(ValueError, match="time_as_step"):
        SpikeTime(3, [0], [1.0], time_as_step="trunc")
    with pytest.raises(ValueError, match="integers"):
        SpikeTime(3, [0.5], [1.0])
    with pytest.raises(tb.UnitError, match="SpikeTime.*'times'"):
        SpikeTime(3, [0], [1.0] * u.mV)
    empty = SpikeTime(3, [], [])
    assert float(run(empty, 3, 0.1).sum()) == 0


# ------------------------------------------------------------------ deterministic generators
def module_trace(module, duration, dt, dtype=torch.float32):
    return run(module, round(duration / dt), dt, dtype=dtype)


def test_section_input_closed_form_and_module_agreement():
    values = [0.0, 1.0, -2.0] * u.nA
    current = section_input(values, [2, 3, 1] * u.ms, dt=0.1, dtype=F64)
    expected = torch.cat([torch.zeros(20), torch.full((30,), 1000.0),
                          torch.full((10,), -2000.0)]).to(F64)
    assert torch.equal(current, expected)
    mod = SectionInput(4, values, [2, 3, 1] * u.ms, dtype=F64)
    trace = module_trace(mod, 7.0, 0.1)
    assert torch.equal(trace[:60], expected[:, None].expand(60, 4))
    assert float(trace[60:].abs().sum()) == 0  # zero after the last section
    per_unit = section_input([torch.tensor([1.0, 2.0]), 3.0], [0.5, 0.5], dt=0.25)
    assert per_unit.tolist() == [[1, 2], [1, 2], [3, 3], [3, 3]]
    out, total = section_input([1, 2], [0.3, 0.3], dt=0.1, return_length=True)
    assert total == pytest.approx(0.6) and out.tolist() == [1, 1, 1, 2, 2, 2]


def test_constant_input_keeps_the_kind_of_the_value():
    signal, total = constant_input([(5 * u.mV, 1 * u.ms), (0 * u.mV, 1 * u.ms)], dt=0.5)
    assert signal.tolist() == [5, 5, 0, 0] and total == 2.0  # a voltage stays in mV
    g, _ = constant_input([(2 * u.uS, 1 * u.ms)], dt=0.5)
    assert g.tolist() == [2000, 2000]  # a conductance in nS
    mod = ConstantInput(3, 20 * u.pA, duration=0.3 * u.ms)
    trace = module_trace(mod, 0.6, 0.1)
    assert trace[:, 0].tolist() == [20, 20, 20, 0, 0, 0]
    always = ConstantInput(2, 1 * u.nA)
    with tb.environ.context(dt=0.1):  # without a duration, t is not needed
        assert always().tolist() == [1000, 1000]
    with pytest.raises(tb.UnitError, match="constant_input: parameter 'values'"):
        constant_input([(1 * u.pA, 1 * u.ms), (1 * u.mV, 1 * u.ms)], dt=0.1)


def test_step_input_staircase():
    current = step_input([3, 1, 2] * u.pA, [0.4, 0.1, 0.2] * u.ms, 0.6 * u.ms, dt=0.1)
    assert current.tolist() == [0, 1, 2, 2, 3, 3]
    mod = StepInput(2, [3, 1, 2] * u.pA, [0.4, 0.1, 0.2] * u.ms)
    assert module_trace(mod, 0.6, 0.1)[:, 1].tolist() == current.tolist()
    with pytest.raises(ValueError, match="same length"):
        StepInput(2, [1, 2], [0.1])


def test_ramp_input_closed_form():
    dt = 0.1
    current = ramp_input(10 * u.pA, 30 * u.pA, 5.0, t_start=1.0, t_end=3.0, dt=dt, dtype=F64)
    t = torch.arange(50, dtype=F64) * dt
    inside = (torch.arange(50) >= 10) & (torch.arange(50) < 30)
    expected = torch.where(inside, 10 + 20 * (t - 1.0) / 2.0, 0.0)
    torch.testing.assert_close(current, expected, atol=1e-12, rtol=0)
    mod = RampInput(3, 10 * u.pA, 30 * u.pA, 2 * u.ms, t_start=1 * u.ms, dtype=F64)
    torch.testing.assert_close(module_trace(mod, 5.0, dt)[:, 2], expected, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="'duration' must be positive"):
        RampInput(3, 0, 1, 0 * u.ms)


def test_sinusoidal_input_closed_form():
    dt = 0.1
    current = sinusoidal_input(2 * u.nA, 40 * u.Hz, 100.0, dt=dt, t_start=10.0, t_end=80.0,
                               phase=0.3, bias=1 * u.nA, dtype=F64)
    t = torch.arange(1000, dtype=F64) * dt
    inside = (t >= 10.0 - 1e-9) & (t < 80.0 - 1e-9)
    expected = torch.where(inside, 2000 * torch.sin(2 * math.pi * 0.04 * (t - 10) + 0.3) + 1000,
                           0.0)
    torch.testing.assert_close(current, expected, atol=1e-9, rtol=0)
    mod = SinusoidalInput(2, 2 * u.nA, 40 * u.Hz, duration=70 * u.ms, t_start=10 * u.ms,
                          phase=0.3, bias=1 * u.nA, dtype=F64)
    trace = module_trace(mod, 100.0, dt)  # float32 t: the grid index keeps the phase exact
    torch.testing.assert_close(trace[:, 0], expected, atol=1e-9, rtol=0)
    shifted = sinusoidal_input(1.0, 0.25, 4.0, dt=1.0, bias=True)  # brainpy's bias=True
    torch.testing.assert_close(shifted, torch.tensor([1.0, 2.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    with pytest.raises(tb.UnitError, match="SinusoidalInput.*'frequency'"):
        SinusoidalInput(2, 1 * u.pA, 1 * u.ms)


# ------------------------------------------------------------------ OU and Wiener noise
def test_ou_update_matches_numpy_reference():
    mu, sigma, tau, dt = 5.0, 2.0, 4.0, 0.5
    mod = OUProcessInput(3, mu * u.pA, sigma * u.pA, tau * u.ms, seed=21, dtype=F64)
    trace = run(mod, 30, dt).numpy()
    x = np.full(3, mu)
    a = math.exp(-dt / tau)
    for k in range(30):
        xi = counter_normal(mod.rng_seed, torch.tensor(k), (3,), dtype=F64).numpy()
        x = mu + (x - mu) * a + sigma * math.sqrt(1 - a * a) * xi
        np.testing.assert_allclose(trace[k], x, atol=1e-12, rtol=0)


@pytest.mark.parametrize("dt", [1.0, 10.0])  # exact: right statistics even with dt = 2 tau
def test_ou_stationary_statistics_and_autocorrelation(dt):
    mu, sigma, tau, n = -3.0, 1.5, 5.0, 4000
    mod = OUProcessInput(n, mu, sigma, tau, seed=int(dt), dtype=F64)
    steps = round(200 / dt)
    trace = run(mod, steps, dt)
    every = max(1, round(10 * tau / dt))  # samples 10 tau apart are independent
    samples = trace[every - 1::every].flatten()
    N = samples.numel()
    assert abs(float(samples.mean()) - mu) < 4 * sigma / math.sqrt(N)
    assert abs(float(samples.var()) - sigma**2) < 4 * sigma**2 * math.sqrt(2 / N)
    lag = max(1, round(tau / dt))
    x = trace[every:] - mu
    rho = float((x[:-lag] * x[lag:]).mean() / (x * x).mean())
    assert rho == pytest.approx(math.exp(-lag * dt / tau), abs=0.03)


def test_ou_window_freezes_and_zeroes():
    mod = OUProcessInput(5, 2 * u.mV, 1 * u.mV, 1 * u.ms, duration=0.5 * u.ms,
                         t_start=0.3 * u.ms, seed=1, dtype=F64)
    trace = run(mod, 12, 0.1)
    assert float(trace[:3].abs().sum()) == 0 and float(trace[8:].abs().sum()) == 0
    assert bool((trace[3:8] != 0).all())
    assert torch.equal(mod.x, trace[7])  # frozen after the window


def test_ou_units_and_function():
    with pytest.raises(tb.UnitError, match="OUProcessInput.*'sigma'"):
        OUProcessInput(2, 1 * u.mV, 1 * u.pA, 5 * u.ms)
    with pytest.raises(tb.UnitError, match="OUProcessInput.*'tau'"):
        OUProcessInput(2, 1 * u.pA, 1 * u.pA, 5 * u.pA)
    with pytest.raises(ValueError, match="'sigma' must be >= 0"):
        OUProcessInput(2, 1 * u.pA, -1 * u.pA, 5 * u.ms)
    x = ou_process(10 * u.pA, 2 * u.pA, 2 * u.ms, 400 * u.ms, dt=1.0, n=500, seed=0, dtype=F64)
    assert x.shape == (400, 500)
    samples = x[19::20].flatten()
    assert abs(float(samples.mean()) - 10) < 4 * 2 / math.sqrt(samples.numel())
    assert abs(float(samples.var()) - 4) < 4 * 4 * math.sqrt(2 / samples.numel())
    w = ou_process(1.0, 1.0, 1.0, 10.0, dt=1.0, t_start=2.0, t_end=5.0, seed=1)
    assert float(w[:2].abs().sum()) == 0 and float(w[5:].abs().sum()) == 0
    assert bool((w[2:5] != 0).all())
    assert torch.equal(ou_process(1.0, 1.0, 1.0, 10.0, dt=1.0, seed=3),
                       ou_process(1.0, 1.0, 1.0, 10.0, dt=1.0, seed=3))


def test_wiener_variance_grows_linearly():
    sigma, dt, n = 2.0, 0.5, 4000
    mod = WienerProcessInput(n, sigma * u.pA / u.ms**0.5, seed=4, dtype=F64)
    increments = run(mod, 100, dt)
    assert abs(float(increments.var()) - sigma**2 * dt) < 4 * sigma**2 * dt * math.sqrt(
        2 / increments.numel())
    W = increments.cumsum(0)
    torch.testing.assert_close(mod.W, W[-1])
    for k in (9, 49, 99):
        t = (k + 1) * dt
        assert abs(float(W[k].var()) - sigma**2 * t) < 4 * sigma**2 * t * math.sqrt(2 / n)
    with pytest.raises(tb.UnitError, match="WienerProcessInput.*'sigma'.*per square root"):
        WienerProcessInput(2, 1 * u.pA)
    win = WienerProcessInput(3, 1.0, duration=0.2, t_start=0.1, seed=1, dtype=F64)
    trace = run(win, 5, 0.1)
    assert float(trace[0].abs().sum()) == 0 and float(trace[3:].abs().sum()) == 0


def test_wiener_process_function():
    dW = wiener_process(50 * u.ms, dt=0.5, n=4000, sigma=1 * u.mV / u.ms**0.5, seed=2,
                        dtype=F64)
    assert dW.shape == (100, 4000)
    W = dW.cumsum(0)
    assert abs(float(W[-1].var()) - 50.0) < 4 * 50.0 * math.sqrt(2 / 4000)
    gated = wiener_process(5.0, dt=1.0, n=2, t_start=1.0, t_end=3.0, seed=0)
    assert float(gated[[0, 3, 4]].abs().sum()) == 0 and bool((gated[1:3] != 0).all())
