"""Monitors store the right States at the right steps, and RateMonitor counts spikes."""

import pytest
import torch

import torchbrain as tb
from torchbrain import analysis as A
from torchbrain import u
from torchbrain.drivers.monitor import Monitor, RateMonitor
from torchbrain.module import Module


class Ramp(Module):
    """V grows by x each step (V_k = (k + 1) x + offset); a halves towards 1; spikes on odd V."""

    def __init__(self, n=4):
        super().__init__()
        self.n = n
        self.V = tb.HiddenState(None)
        self.a = tb.HiddenState(None)

    def init_state(self, batch_size=None):
        shape = (self.n,) if batch_size is None else (batch_size, self.n)
        self.V = tb.HiddenState(torch.arange(self.n, dtype=torch.float32).expand(shape).clone())
        self.a = tb.HiddenState(torch.zeros(shape))

    def get_spike(self):
        return (self.V.round().remainder(2) == 1).float()

    def forward(self, x=1.0):
        self.V = self.V + x
        self.a = 0.5 * self.a + 1.0
        return self.get_spike()


def run(net, monitors, steps, x=1.0, dt=None):
    """Step ``net`` and record; returns the States after every step (the expected records)."""
    history = []
    for k in range(steps):
        ctx = {"t": k * 0.5} if dt is None else {"t": k * dt, "dt": dt}
        with tb.environ.context(**ctx):
            net(x)
            for m in monitors:
                m.record()
        history.append({"V": net.V.detach().clone(), "a": net.a.detach().clone(),
                        "spike": net.get_spike()})
    return history


def test_stride_3_over_10_steps_keeps_steps_0_3_6_9():
    net = Ramp()
    tb.init_all_states(net)
    mon = Monitor(net, ["V", "a"], stride=3)
    hist = run(net, [mon], 10)
    assert len(mon) == 4 and mon.n_steps == 10
    assert mon.steps.tolist() == [0, 3, 6, 9]
    for name in ("V", "a"):
        expected = torch.stack([hist[k][name] for k in (0, 3, 6, 9)])
        assert torch.equal(mon.values[name], expected)
        assert torch.equal(mon[name], expected)
    # V_k = (k + 1) + neuron index: an independent check of what was stored
    assert torch.equal(mon.values["V"][:, 0], torch.tensor([1.0, 4.0, 7.0, 10.0]))
    torch.testing.assert_close(mon.times, torch.tensor([0.0, 1.5, 3.0, 4.5], dtype=torch.float64))


def test_index_subset_dtype_and_batch():
    net = Ramp(6)
    tb.init_all_states(net, batch_size=2)
    mon = Monitor({"V": net, "rate": (net, "a")}, index=[1, 4, -1], dtype=torch.float64)
    per_name = Monitor(net, ["V", "a"], index={"V": slice(0, 2)})
    hist = run(net, [mon, per_name], 5)
    assert mon.values["V"].shape == (5, 2, 3) and mon.values["V"].dtype == torch.float64
    expected = torch.stack([h["V"][:, [1, 4, 5]] for h in hist]).double()
    assert torch.equal(mon.values["V"], expected)
    expected_a = torch.stack([h["a"][:, [1, 4, 5]] for h in hist]).double()
    assert torch.equal(mon.values["rate"], expected_a)
    assert per_name.values["V"].shape == (5, 2, 2) and per_name.values["a"].shape == (5, 2, 6)
    with pytest.raises(IndexError, match="out of range"):
        Monitor(net, "V", index=[6]).record()


def test_callable_and_method_sources_and_times():
    net = Ramp()
    tb.init_all_states(net)
    mon = Monitor({"spike": net.get_spike, "double": lambda: 2 * net.V}, dtype=torch.bool)
    by_name = Monitor(net, ["get_spike"])
    hist = run(net, [mon, by_name], 4)
    assert mon.values["spike"].dtype == torch.bool
    assert torch.equal(mon.values["spike"], torch.stack([h["spike"] for h in hist]).bool())
    assert torch.equal(by_name.values["get_spike"], torch.stack([h["spike"] for h in hist]))
    # explicit times (quantities) override the environment; none at all -> None
    explicit = Monitor(net, "V")
    explicit.record(t=2 * u.s)
    assert explicit.times.tolist() == [2000.0]
    untimed = Monitor(net, "V")
    untimed.record()
    assert untimed.times is None


def test_reset_and_capacity():
    net = Ramp()
    tb.init_all_states(net)
    mon = Monitor(net, "V", stride=2, capacity=3)
    hist = run(net, [mon], 6)
    assert torch.equal(mon.values["V"], torch.stack([hist[k]["V"] for k in (0, 2, 4)]))
    assert mon.nbytes == 3 * 4 * 4
    with pytest.raises(RuntimeError, match="capacity"):
        run(net, [mon], 1)
    mon.reset()
    assert len(mon) == 0 and mon.n_steps == 0
    with pytest.raises(RuntimeError, match="no record"):
        _ = mon.values
    hist = run(net, [mon], 1)
    assert torch.equal(mon.values["V"], hist[0]["V"][None])


def test_records_are_detached_copies():
    net = Ramp()
    tb.init_all_states(net)
    mon = Monitor(net, "V")
    x = torch.ones(4, requires_grad=True)
    run(net, [mon], 2, x=x)
    assert net.V.requires_grad and not mon.values["V"].requires_grad
    with torch.no_grad():
        net.V.copy_(torch.full((4,), -1.0))  # an in-place write does not reach the records
    assert mon.values["V"][1, 0] == 2.0


def test_shape_change_and_bad_arguments():
    net = Ramp()
    tb.init_all_states(net)
    mon = Monitor(net, "V")
    mon.record()
    tb.init_all_states(net, batch_size=3)
    with pytest.raises(ValueError, match="reset"):
        mon.record()
    with pytest.raises(AttributeError, match="no attribute 'W'.*States are"):
        Monitor(net, ["W"])
    with pytest.raises(ValueError, match="stride"):
        Monitor(net, "V", stride=0)
    with pytest.raises(TypeError, match="names"):
        Monitor({"V": net}, ["V"])
    with pytest.raises(TypeError, match="target"):
        Monitor(3, ["V"])
    fresh = Ramp()
    with pytest.raises(RuntimeError, match="init_all_states"):
        Monitor(fresh, "V").record()


def test_rate_monitor_counts_match_analysis():
    net = Ramp(5)
    tb.init_all_states(net, batch_size=2)
    counter = RateMonitor(net, track_population=True)
    explicit = RateMonitor(dt=0.25 * u.ms)
    hist = []
    with tb.environ.context(dt=0.25 * u.ms):
        for _ in range(40):
            spk = net(1.0)
            counter.record()
            explicit.record(spk)
            hist.append(spk)
    spikes = torch.stack(hist)
    assert counter.n_steps == 40 and counter.duration == pytest.approx(10.0)
    assert torch.equal(counter.counts, spikes.sum(0))
    assert torch.equal(counter.counts[0], torch.full((5,), 20.0))  # every other step
    torch.testing.assert_close(counter.neuron_rates(), A.neuron_rates(spikes, 0.25))
    torch.testing.assert_close(counter.mean_rate(), torch.full((2,), 2000.0))
    torch.testing.assert_close(explicit.neuron_rates(), counter.neuron_rates())
    torch.testing.assert_close(counter.population_rate(1.0), A.firing_rate(spikes, 0.25, 1.0))
    with pytest.raises(RuntimeError, match="track_population"):
        explicit.population_rate()
    counter.reset()
    with pytest.raises(RuntimeError, match="no step"):
        counter.neuron_rates()
    with pytest.raises(TypeError, match="source"):
        RateMonitor().record()


def test_monitor_inside_for_loop_driver():
    transform = pytest.importorskip("torchbrain.drivers.loops")
    net = Ramp(3)
    tb.init_all_states(net)
    mon = Monitor(net, "V", stride=4)

    def step(t):
        with tb.environ.context(t=t):
            out = net(1.0)
            mon.record()
        return out

    with tb.environ.context(dt=0.5 * u.ms):
        spikes = transform.for_loop(step, transform.time_range(10 * u.ms))
    assert spikes.shape == (20, 3) and len(mon) == 5
    torch.testing.assert_close(mon.times, torch.arange(0, 20, 4, dtype=torch.float64) * 0.5)
    assert torch.equal(mon.values["V"][:, 0], torch.arange(1.0, 21.0, 4))
