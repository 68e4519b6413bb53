"""Spike encoders and training losses, against closed forms and torch's own losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from torchbrain.training.encoders import delta_encode, latency_encode, poisson_encode
from torchbrain.training.losses import (
    firing_rate_regularizer,
    membrane_cross_entropy,
    rate_mse,
    spike_count_cross_entropy,
)


# ------------------------------------------------------------------------------- encoders
def test_poisson_rates_shapes_and_reproducibility():
    x = torch.tensor([[0.0, 0.1, 0.5, 1.0], [0.25, 0.75, 0.9, 0.05]])
    T = 4000
    s = poisson_encode(x, T, generator=torch.Generator().manual_seed(0))
    assert s.shape == (T, 2, 4) and s.dtype == x.dtype
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    rate = s.mean(0)
    # Binomial standard error sqrt(p (1 - p) / T) <= 0.008: allow 5 of them.
    assert torch.allclose(rate, x, atol=0.04)
    assert rate[0, 0] == 0 and rate[0, 3] == 1
    again = poisson_encode(x, T, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, again)
    bm = poisson_encode(x, 7, generator=torch.Generator().manual_seed(1), time_major=False)
    assert bm.shape == (2, 7, 4)
    half = poisson_encode(torch.ones(1000), 200, scale=0.5,
                          generator=torch.Generator().manual_seed(2))
    assert abs(half.mean().item() - 0.5) < 0.01


def test_poisson_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        poisson_encode(torch.tensor([0.5, 1.5]), 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        poisson_encode(torch.tensor([-0.5]), 3)
    with pytest.raises(ValueError, match="NaN"):
        poisson_encode(torch.tensor([math.nan]), 3)
    with pytest.raises(ValueError, match="'T'"):
        poisson_encode(torch.rand(3), 0)
    with pytest.raises(TypeError, match="floating"):
        poisson_encode(torch.tensor([1, 0]), 3)


def test_latency_linear_times():
    T = 11
    x = torch.tensor([1.0, 0.5, 0.2, 0.0, 0.005])
    s = latency_encode(x, T)
    assert s.shape == (T, 5)
    times = s.argmax(0)
    assert s[:, :3].sum(0).tolist() == [1.0, 1.0, 1.0]   # one spike each
    assert times[:3].tolist() == [0, 5, 8]               # round((1 - x) (T - 1))
    assert s[:, 3:].sum() == 0                            # <= threshold: silent


def test_latency_log_is_monotone_and_normalised():
    T = 50
    x = torch.linspace(0.05, 1.0, 20)
    s = latency_encode(x, T, method="log", tau=5.0, threshold=0.01)
    times = s.argmax(0)
    assert torch.all(s.sum(0) == 1)
    assert torch.all(times[1:] <= times[:-1])             # stronger input, earlier spike
    assert times.max() == T - 1                           # normalised over the window
    # The RC charging time before normalisation: tau ln(x / (x - thr)).
    raw = 5.0 * torch.log(x / (x - 0.01))
    expect = torch.round(raw * (T - 1) / raw.max())
    assert torch.equal(times.to(expect.dtype), expect)
    with pytest.raises(ValueError, match="method"):
        latency_encode(x, T, method="exp")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        latency_encode(x * 2, T)


def test_delta_encode():
    x = torch.tensor([0.0, 0.05, 0.3, 0.3, 0.1, 0.5]).unsqueeze(1)  # (T, 1)
    on = delta_encode(x, threshold=0.2)
    assert on[:, 0].tolist() == [0, 0, 1, 0, 0, 1]
    both = delta_encode(x, threshold=0.2, off_spikes=True)
    assert both[:, 0].tolist() == [0, 0, 1, 0, -1, 1]
    first = delta_encode(x + 0.5, threshold=0.2, initial=0.0)
    assert first[0, 0] == 1
    bm = delta_encode(x.T.contiguous(), threshold=0.2, time_major=False)  # (B, T)
    assert torch.equal(bm, on.T)
    with pytest.raises(ValueError, match="threshold"):
        delta_encode(x, threshold=0.0)


# --------------------------------------------------------------------------------- losses
def _spikes(T=10, B=4, C=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, C, generator=g) < 0.3).float().requires_grad_()


def test_spike_count_cross_entropy_equals_ce_of_counts():
    s = _spikes()
    y = torch.tensor([0, 2, 1, 1])
    loss = spike_count_cross_entropy(s, y, scale=0.5)
    torch.testing.assert_close(loss, F.cross_entropy(0.5 * s.sum(0), y))
    loss.backward()
    assert s.grad is not None
    bm = spike_count_cross_entropy(s.transpose(0, 1), y, scale=0.5, time_major=False)
    torch.testing.assert_close(bm, loss)


def test_rate_mse():
    s = _spikes()
    y = torch.tensor([0, 2, 1, 1])
    goal = torch.full((4, 3), 0.1)
    goal[torch.arange(4), y] = 0.8
    torch.testing.assert_close(rate_mse(s, y, on_rate=0.8, off_rate=0.1),
                               ((s.mean(0) - goal) ** 2).mean())
    torch.testing.assert_close(rate_mse(s, goal), ((s.mean(0) - goal) ** 2).mean())
    with pytest.raises(ValueError, match="on_rate"):
        rate_mse(s, y, on_rate=2.0)
    with pytest.raises(ValueError, match="shape"):
        rate_mse(s, torch.zeros(4, 2))


def test_membrane_cross_entropy_reductions():
    v = torch.randn(7, 4, 3, requires_grad=True)
    y = torch.tensor([2, 0, 1, 0])
    for reduce, logits in (("max", v.amax(0)), ("mean", v.mean(0)), ("last", v[-1])):
        torch.testing.assert_close(membrane_cross_entropy(v, y, reduce=reduce),
                                   F.cross_entropy(logits, y))
    with pytest.raises(ValueError, match="reduce"):
        membrane_cross_entropy(v, y, reduce="min")


def test_loss_input_errors():
    s = _spikes()
    with pytest.raises(ValueError, match=r"\(T, B, C\)"):
        spike_count_cross_entropy(s[0], torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        spike_count_cross_entropy(s, torch.zeros(4))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        membrane_cross_entropy(s, torch.zeros(5, dtype=torch.long))


def test_firing_rate_regularizer_values():
    # Neuron rates over (T, B): 0.0, 0.5, 1.0.
    s = torch.zeros(4, 2, 3)
    s[:, :, 2] = 1.0
    s[::2, :, 1] = 1.0
    lower = firing_rate_regularizer(s, lower=0.2)
    torch.testing.assert_close(lower, torch.tensor(0.2 ** 2 / 3))
    upper = firing_rate_regularizer(s, upper=0.3)              # population mean 0.5
    torch.testing.assert_close(upper, torch.tensor(0.2 ** 2))
    target = firing_rate_regularizer(s, target=0.5)
    torch.testing.assert_close(target, torch.tensor((0.25 + 0 + 0.25) / 3))
    both = firing_rate_regularizer(s, lower=0.2, upper=0.3)
    torch.testing.assert_close(both, lower + upper)
    assert firing_rate_regularizer(s, lower=0.0, upper=1.0) == 0
    with pytest.raises(ValueError, match="at least one"):
        firing_rate_regularizer(s)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        firing_rate_regularizer(s, upper=5.0)
