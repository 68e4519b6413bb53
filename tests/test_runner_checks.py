"""NetworkRunner's run-time checks: simulation time kept with the States, the record estimate,
spike-index recording, the NaN watchdog and the time-step checks (issue 18)."""

import warnings

import pytest
import torch

import torchbrain as tb
from torchbrain import u


class PoissonDriven(tb.Module):
    """A refractory population driven by a seeded Poisson source: its raster depends on t."""

    def __init__(self, n=40, drive=None):
        super().__init__()
        self.src = tb.PoissonSpike(n, freqs=400 * u.Hz, seed=3)
        self.pop = tb.LIFRef(n, tau=10 * u.ms, V_th=-50 * u.mV, V_rest=-65 * u.mV,
                             V_reset=-65 * u.mV, tau_ref=5 * u.ms, R=1.0,
                             V_initializer=tb.init.Constant(-65 * u.mV))
        self.drive = drive

    def forward(self):
        x = 18.0 + 300.0 * self.src().float()
        if self.drive is not None:
            x = x + self.drive(tb.environ.get("t"))
        self.pop(x)
        return self.pop.get_spike()


def fresh(**kw):
    return tb.init_all_states(PoissonDriven(**kw))


def test_resumed_run_continues_without_t0():
    with tb.environ.context(dt=0.1 * u.ms):
        whole = tb.NetworkRunner(fresh(), chunk=5, compile=False).run(400)
        net = fresh()
        runner = tb.NetworkRunner(net, chunk=5, compile=False)
        first = runner.run(200)
        assert tb.state.simulation_time(net) == pytest.approx(20.0)
        saved = tb.state_dict(net)
        second = runner.run(200)
        assert torch.equal(torch.cat([first, second]), whole)
        assert whole[200:].any()  # the comparison is not between empty rasters
        other = fresh()
        tb.load_state_dict(other, saved)
        resumed = tb.NetworkRunner(other, chunk=5, compile=False).run(200)
        assert torch.equal(resumed, second)
        # reset starts the clock again
        tb.reset_all_states(net)
        assert tb.state.simulation_time(net) == 0.0
        # an explicit t0 (a quantity) overrides the network's own time
        tb.load_state_dict(other, saved)
        again = tb.NetworkRunner(other, chunk=5, compile=False).run(200, t0=20 * u.ms)
        assert torch.equal(again, second)


def test_index_recording_equals_the_dense_raster():
    with tb.environ.context(dt=0.1 * u.ms):
        dense = tb.NetworkRunner(fresh(), chunk=7, compile=False).run(300)
        idx = tb.NetworkRunner(fresh(), chunk=7, compile=False, record="indices").run(300)
        assert tb.NetworkRunner(fresh(), chunk=7, compile=False, record=None).run(30) is None
    assert idx.dtype == torch.long and idx.shape == (int(dense.sum()), 2)
    rebuilt = torch.zeros_like(dense)
    rebuilt[idx[:, 0], idx[:, 1]] = True
    assert torch.equal(rebuilt, dense)
    assert torch.equal(idx[:, 0], idx[:, 0].sort().values)  # step order


def test_a_record_that_cannot_fit_is_refused_before_the_run():
    net = fresh()
    before = {k: v.clone() for k, v in tb.states(net).items()}
    with tb.environ.context(dt=0.1 * u.ms):
        runner = tb.NetworkRunner(net, chunk=5, compile=False, max_record_bytes=40 * 999)
        with pytest.raises(MemoryError, match=r"needs 40 kB \(1000 steps x 40 outputs x 1 B.*"
                                              r"at most 999 steps.*record='indices'"):
            runner.run(1000)
        for k, v in tb.states(net).items():
            assert torch.equal(v, before[k]), k
        assert tb.state.simulation_time(net) == 0.0
        assert runner.run(999).shape == (999, 40)
        # the estimate uses the memory available by default: 10**12 steps never fit
        with pytest.raises(MemoryError, match="memory available on cpu"):
            tb.NetworkRunner(net, chunk=5, compile=False).run(10**12)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_watchdog_names_the_state_and_the_steps(bad):
    def drive(t):
        return torch.where(t >= 3.0, torch.tensor(bad), torch.tensor(0.0))

    with tb.environ.context(dt=0.1 * u.ms):
        runner = tb.NetworkRunner(fresh(drive=drive), chunk=10, compile=False)
        with pytest.raises(FloatingPointError, match=r"State 'pop.V' became non-finite "
                                                     r".*steps \[30, 40\).*t = 3 to 4 ms"):
            runner.run(100)
        try:
            tb.NetworkRunner(fresh(drive=drive), chunk=10, compile=False).run(100)
        except FloatingPointError as err:
            assert err.records.shape == (40, 40)  # the steps run before it stopped
        off = tb.NetworkRunner(fresh(drive=drive), chunk=10, compile=False, check_finite=False)
        assert off.run(100).shape == (100, 40)


def test_coarse_dt_warns_for_hh_and_poisson_rate_above_one_per_step_is_refused():
    class One(tb.Module):
        def __init__(self, neuron):
            super().__init__()
            self.n = neuron

        def forward(self):
            self.n(0.0)
            return self.n.get_spike()

    hh = tb.init_all_states(One(tb.HH(2)))
    with tb.environ.context(dt=1.0 * u.ms):
        with pytest.warns(tb.TimeStepWarning, match=r"HH: dt = 1 ms is too coarse.*0\.75"):
            tb.NetworkRunner(hh, chunk=2, compile=False).run(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tb.environ.context(dt=0.05 * u.ms):
            tb.NetworkRunner(hh, chunk=2, compile=False).run(4)
    src = tb.init_all_states(tb.PoissonSpike(3, freqs=20 * u.kHz, seed=0))
    with tb.environ.context(dt=0.1 * u.ms):
        with pytest.raises(ValueError, match=r"PoissonSpike: parameter 'freqs' must be at most "
                                             r"1/dt = 10 kHz.*got 20 kHz"):
            tb.NetworkRunner(src, chunk=2, compile=False).run(4)
        with pytest.raises(ValueError, match="'freqs' must be at most"):
            src()  # eager use is checked as well
    with tb.environ.context(dt=0.01 * u.ms):
        assert tb.NetworkRunner(src, chunk=2, compile=False).run(4).shape == (4, 3)


class Driven(tb.Module):
    """A LIFRef driven so hard that it spikes in the first free step after each refractory."""

    def __init__(self, tau_ref=5 * u.ms, dtype=None):
        super().__init__()
        self.pop = tb.LIFRef(3, tau=10 * u.ms, V_th=-50 * u.mV, V_rest=-65 * u.mV,
                             V_reset=-65 * u.mV, tau_ref=tau_ref, R=1.0,
                             V_initializer=tb.init.Constant(-65 * u.mV), spk_reset="hard",
                             dtype=dtype)

    def forward(self):
        self.pop(1e4)
        return self.pop.get_spike()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_refractory_period_is_a_whole_number_of_steps_after_hours(dtype):
    with tb.environ.context(dt=0.1 * u.ms):
        starts = (0.0, 0.3, 3.6e7, 3.6e7 + 0.1)  # and ten hours of simulated time later
        rasters = [tb.NetworkRunner(tb.init_all_states(Driven(dtype=dtype)), chunk=10,
                                    compile=False).run(400, t0=t0) for t0 in starts]
    steps = torch.nonzero(rasters[0][:, 0]).flatten()
    assert len(steps) == 8 and bool((steps.diff() == 50).all())  # 5 ms = exactly 50 steps
    for raster in rasters[1:]:
        assert torch.equal(raster, rasters[0])


def test_time_range_is_float64_and_exact_for_long_runs():
    ts = tb.time_range(10 * u.second, dt=0.1 * u.ms)
    assert ts.dtype == torch.float64 and len(ts) == 100_000
    assert float((ts.diff() - 0.1).abs().max()) < 1e-9
    assert tb.time_range(1 * u.ms, dt=0.1, dtype=torch.float32).dtype == torch.float32
