"""Spike-train analysis against hand-built trains, closed forms and NumPy re-computations."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import analysis as A
from torchbrain import u

DT = 0.1  # ms


def regular_train(T, periods, offsets=None):
    """Neuron i spikes every periods[i] steps (0 = silent), starting at offsets[i]."""
    s = torch.zeros(T, len(periods))
    for i, p in enumerate(periods):
        if p:
            s[(offsets[i] if offsets else 0)::p, i] = 1.0
    return s


def bernoulli(T, N, p, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, N, generator=g, dtype=torch.float64) < p).to(torch.float32)


# ---------------------------------------------------------------------------------------- rates
def test_rates_of_regular_trains_are_exact():
    # every 10 ms (100 steps) -> 100 Hz, every 20 ms -> 50 Hz, silent -> 0, over 1 s
    s = regular_train(10_000, [100, 200, 0])
    for dt in (DT, DT * u.ms, 1e-4 * u.s, torch.tensor(DT)):
        rates = A.neuron_rates(s, dt)
        torch.testing.assert_close(rates, torch.tensor([100.0, 50.0, 0.0]))
        assert float(A.mean_rate(s, dt)) == pytest.approx(50.0, rel=1e-6)
    with tb.environ.context(dt=DT * u.ms):
        torch.testing.assert_close(A.neuron_rates(s), torch.tensor([100.0, 50.0, 0.0]))
    # bool and int spikes are accepted
    torch.testing.assert_close(A.neuron_rates(s.bool(), DT), A.neuron_rates(s, DT))
    torch.testing.assert_close(A.neuron_rates(s.to(torch.int8), DT), A.neuron_rates(s, DT))


def test_windowed_rates_and_partial_window_dropped():
    s = regular_train(10_050, [100, 200])
    w = A.windowed_rates(s, DT, 100 * u.ms)
    assert w.shape == (10, 2)  # the 50 trailing steps do not make a window
    torch.testing.assert_close(w, torch.tensor([[100.0, 50.0]]).expand(10, 2))
    # pop rate per window and rounding of the window to whole steps
    torch.testing.assert_close(A.windowed_rates(s, DT, 100.00001).mean(-1), torch.full((10,), 75.0))


def test_firing_rate_unsmoothed_counts_per_step():
    s = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(A.firing_rate(s, 0.5), torch.tensor([500.0, 2000.0, 0.0]))


def test_firing_rate_window_matches_numpy_convolution():
    s = bernoulli(3000, 40, 0.02, seed=1)
    width = 5 * u.ms  # 5 / 0.1 -> 51 steps (not 49 as int(5 / 2 / 0.1) * 2 + 1 gives)
    got = A.firing_rate(s, DT, width).double().numpy()
    pop = s.double().numpy().mean(1) * 1000.0 / DT
    expected = np.convolve(pop, np.ones(51) / 51, mode="same")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)
    # a constant rate is preserved away from the edges (normalised by the actual window length)
    const = torch.ones(200, 3)
    r = A.firing_rate(const, 1.0, 9.0)
    torch.testing.assert_close(r[10:-10], torch.full((180,), 1000.0))
    # too narrow a window: no smoothing
    torch.testing.assert_close(A.firing_rate(s, DT, 0.15), A.firing_rate(s, DT))


def test_batched_shapes_match_per_trial_results():
    s = bernoulli(500, 2 * 7, 0.05, seed=2).reshape(500, 2, 7)
    r = A.firing_rate(s, DT, 2.0)
    assert r.shape == (500, 2)
    for b in range(2):
        torch.testing.assert_close(r[:, b], A.firing_rate(s[:, b], DT, 2.0))
        torch.testing.assert_close(A.neuron_rates(s, DT)[b], A.neuron_rates(s[:, b], DT))
        torch.testing.assert_close(A.isi_cv(s).per_neuron[b], A.isi_cv(s[:, b]).per_neuron)
    assert A.mean_rate(s, DT).shape == (2,)
    assert A.windowed_rates(s, DT, 10.0).shape == (5, 2, 7)


def test_rates_are_differentiable():
    s = bernoulli(100, 5, 0.1).requires_grad_()
    A.mean_rate(s, DT).backward()
    torch.testing.assert_close(s.grad, torch.full_like(s, 1000.0 / DT / 500))


# ---------------------------------------------------------------------------------- spike times
def test_raster_times_and_indices():
    s = torch.zeros(6, 4, dtype=torch.bool)
    s[1, 3] = s[1, 0] = s[4, 2] = s[5, 3] = True
    times, idx = A.raster(s, 0.5 * u.ms, t0=10.0)
    rows, cols = np.nonzero(s.numpy())
    np.testing.assert_array_equal(idx.numpy(), cols)
    np.testing.assert_allclose(times.numpy(), 10.0 + 0.5 * rows)
    assert times.dtype == torch.float64 and idx.dtype == torch.int64
    with pytest.raises(ValueError, match="one trial"):
        A.raster(torch.zeros(5, 2, 3), DT)


def test_isi_lists_match_numpy_diff():
    s = torch.zeros(50, 3)
    spike_steps = {0: [2, 5, 11, 30], 1: [7], 2: []}
    for i, steps in spike_steps.items():
        s[steps, i] = 1.0
    out = A.isi(s, DT)
    assert len(out) == 3
    for i, steps in spike_steps.items():
        np.testing.assert_allclose(out[i].numpy(), np.diff(steps) * DT)


def test_isi_cv_regular_is_zero_and_short_trains_are_nan():
    s = regular_train(2000, [100, 37, 0, 900])  # the last neuron has 3 spikes, the one before 0
    s[[5, 20], 2] = 1.0  # 2 spikes -> one interval -> NaN
    cv = A.isi_cv(s, DT)
    assert cv.per_neuron[0] == 0.0 and cv.per_neuron[1] == 0.0 and cv.per_neuron[3] == 0.0
    assert math.isnan(cv.per_neuron[2])
    assert cv.mean == 0.0
    silent = A.isi_cv(torch.zeros(100, 2))
    assert torch.isnan(silent.per_neuron).all() and math.isnan(silent.mean)


def test_isi_cv_of_poisson_train_is_one_and_matches_numpy():
    # Bernoulli steps with p = 50 Hz * 0.1 ms: geometric ISIs, CV = sqrt(1 - p) = 0.9975
    p = 0.005
    s = bernoulli(200_000, 40, p, seed=3)
    cv = A.isi_cv(s, DT)
    assert float(cv.mean) == pytest.approx(math.sqrt(1 - p), abs=0.03)
    intervals = A.isi(s, DT)
    ref = np.array([np.std(d.numpy()) / np.mean(d.numpy()) for d in intervals])
    np.testing.assert_allclose(cv.per_neuron.numpy(), ref, rtol=1e-5)


def test_fano_factor_poisson_one_regular_zero():
    p = 0.005
    s = bernoulli(200_000, 40, p, seed=4)
    ff = A.fano_factor(s, 1000)
    assert float(ff.mean) == pytest.approx(1 - p, abs=0.06)
    counts = s.numpy().reshape(200, 1000, 40).sum(1)
    np.testing.assert_allclose(ff.per_neuron.numpy(), counts.var(0) / counts.mean(0), rtol=1e-5)
    reg = A.fano_factor(regular_train(10_000, [100, 250, 0]), 500)
    assert reg.per_neuron[0] == 0.0 and reg.per_neuron[1] == 0.0
    assert math.isnan(reg.per_neuron[2]) and reg.mean == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        A.fano_factor(s[:1500], 1000)


# -------------------------------------------------------------------------------- correlations
def numpy_xcorr(x, y, max_lag):
    """C(k) = mean over the overlap of z_x(t) z_y(t + k), by direct loops."""
    zx = (x - x.mean()) / x.std()
    zy = (y - y.mean()) / y.std()
    n = len(x)
    out = []
    for k in range(-max_lag, max_lag + 1):
        terms = [zx[t] * zy[t + k] for t in range(n) if 0 <= t + k < n]
        out.append(np.mean(terms))
    return np.array(out)


def shifted(s, k):
    out = torch.zeros_like(s)
    out[k:] = s[:-k]
    return out


def test_cross_correlation_peaks_at_imposed_lag():
    a = bernoulli(20_000, 20, 0.01, seed=5)
    b = shifted(a, 7)  # b follows a by 7 steps
    lags, cc = A.cross_correlation(a, b, max_lag=20)
    assert lags.tolist() == list(range(-20, 21))
    assert int(lags[cc.argmax()]) == 7 and float(cc.max()) > 0.99
    # binned: 14 steps in bins of 2 -> 7 bins
    lags, cc = A.cross_correlation(a, shifted(a, 14), bin_steps=2, max_lag=10)
    assert int(lags[cc.argmax()]) == 7
    # negative lag when a follows b
    lags, cc = A.cross_correlation(b, a, max_lag=20)
    assert int(lags[cc.argmax()]) == -7


def test_cross_correlation_matches_direct_numpy_sums():
    a = bernoulli(400, 6, 0.05, seed=6)
    b = bernoulli(400, 4, 0.05, seed=7) + shifted(a[:, :4], 3)
    lags, cc = A.cross_correlation(a, b, bin_steps=2, max_lag=8)
    xa = a.double().numpy().reshape(200, 2, 6).sum(1)
    xb = b.double().numpy().reshape(200, 2, 4).sum(1)
    np.testing.assert_allclose(cc.numpy(), numpy_xcorr(xa.sum(1), xb.sum(1), 8), rtol=1e-5,
                               atol=1e-6)
    # pairwise: the average of the 6 x 4 single-pair correlations
    _, pw = A.cross_correlation(a, b, bin_steps=2, max_lag=8, mode="pairwise")
    ref = np.mean([numpy_xcorr(xa[:, i], xb[:, j], 8) for i in range(6) for j in range(4)], 0)
    np.testing.assert_allclose(pw.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_cross_correlation_pairwise_skips_silent_neurons_and_batches():
    a = bernoulli(1000, 3, 0.05, seed=8)
    a[:, 1] = 0.0
    b = a.clone()
    _, pw = A.cross_correlation(a, b, max_lag=0, mode="pairwise")
    # pairs (0,0), (2,2) are 1, (0,2), (2,0) near 0: mean over the 4 valid pairs
    assert float(pw[0]) == pytest.approx(0.5, abs=0.05)
    _, nan = A.cross_correlation(torch.zeros(100, 2), a[:100], max_lag=1)
    assert torch.isnan(nan).all()
    batched = torch.stack([a, shifted(a, 2)], 1)  # (T, 2, 3)
    lags, cc = A.cross_correlation(batched, shifted(batched, 3), max_lag=5)
    assert cc.shape == (11, 2)
    assert int(lags[cc[:, 0].argmax()]) == 3 and int(lags[cc[:, 1].argmax()]) == 3
    with pytest.raises(ValueError, match="share T"):
        A.cross_correlation(a, a[:10])
    with pytest.raises(ValueError, match="max_lag"):
        A.cross_correlation(a, a, max_lag=5000)


# ------------------------------------------------------------------------------------- spectra
def test_power_spectrum_peak_at_rate_modulation_frequency():
    # 500 neurons, rate 50 Hz (1 + 0.5 sin(2 pi 40 Hz t)) over 0.5 s
    T, N = 5000, 500
    t_s = torch.arange(T, dtype=torch.float64) * DT / 1000.0
    p = 50.0 * (1 + 0.5 * torch.sin(2 * math.pi * 40.0 * t_s)) * DT / 1000.0
    g = torch.Generator().manual_seed(9)
    s = (torch.rand(T, N, generator=g, dtype=torch.float64) < p[:, None]).float()
    freqs, power = A.power_spectrum(s, DT * u.ms)
    np.testing.assert_allclose(freqs.numpy(), np.fft.rfftfreq(T, DT / 1000.0), rtol=1e-6)
    assert float(freqs[power.argmax()]) == pytest.approx(40.0)


def test_power_spectrum_matches_numpy_periodogram_and_parseval():
    T, dt = 1001, 0.5  # odd length: no Nyquist bin
    g = torch.Generator().manual_seed(10)
    x = torch.randn(T, generator=g, dtype=torch.float64) + 3.0
    freqs, power = A.power_spectrum(x, dt)
    xc = x.numpy() - x.numpy().mean()
    ref = np.abs(np.fft.rfft(xc)) ** 2 * (dt / 1000.0) / T
    ref[1:] *= 2
    np.testing.assert_allclose(power.numpy(), ref, rtol=1e-10, atol=1e-14)
    df = 1.0 / (T * dt / 1000.0)
    assert float(power.sum() * df) == pytest.approx(xc.var(), rel=1e-10)
    # even length with a batched signal
    xb = torch.randn(1000, 3, generator=g, dtype=torch.float64)
    _, pb = A.power_spectrum(xb, dt, is_spikes=False)
    assert pb.shape == (501, 3)
    np.testing.assert_allclose((pb.sum(0) / (1000 * dt / 1000.0)).numpy(),
                               xb.numpy().var(0), rtol=1e-10)


def test_van_rossum_distance_closed_form():
    tau, dt = 5.0, DT

    def closed(ta, tb_):
        # D^2 = 1/2 [sum_ij e^-|a_i-a_j|/tau + sum_ij e^-|b_i-b_j|/tau - 2 sum_ij e^-|a_i-b_j|/tau]
        k = lambda x, y: np.exp(-np.abs(np.subtract.outer(x, y)) / tau).sum()  # noqa: E731
        return math.sqrt(0.5 * (k(ta, ta) + k(tb_, tb_) - 2 * k(ta, tb_)))

    T = 600
    a, b = torch.zeros(T, 3), torch.zeros(T, 3)
    a[100, 0] = 1.0  # one unmatched spike: 1/sqrt(2)
    a[[50, 120, 400], 1] = 1.0
    b[[55, 300, 590], 1] = 1.0
    a[[10, 200], 2] = b[[10, 200], 2] = 1.0  # identical: 0
    d = A.van_rossum_distance(a, b, DT * u.ms, tau=tau * u.ms)
    assert float(d[0]) == pytest.approx(1 / math.sqrt(2), rel=1e-6)
    ta, tb_ = np.array([50, 120, 400]) * dt, np.array([55, 300, 590]) * dt
    assert float(d[1]) == pytest.approx(closed(ta, tb_), rel=1e-5)
    assert float(d[2]) == pytest.approx(0.0, abs=1e-6)


# -------------------------------------------------------------------------------------- errors
def test_bad_inputs_raise_clear_errors():
    s = torch.zeros(10, 3)
    with pytest.raises(tb.UnitError, match="'dt' expects a time"):
        A.firing_rate(s, 0.1 * u.mV)
    with pytest.raises(ValueError, match="positive"):
        A.neuron_rates(s, -1.0)
    with pytest.raises(ValueError, match=r"\(T, N\)"):
        A.mean_rate(torch.zeros(10), DT)
    with pytest.raises(KeyError, match="dt"):
        A.mean_rate(s)
    with pytest.raises(ValueError, match="window_steps"):
        A.fano_factor(s, 0)
    with pytest.raises(ValueError, match="mode"):
        A.cross_correlation(s, s, mode="pairs")
    with pytest.raises(TypeError, match="quantity"):
        A.power_spectrum(np.ones(10) * u.mV, DT)
    with pytest.raises(tb.UnitError, match="'width'"):
        A.firing_rate(s, DT, width=5 * u.mV)
