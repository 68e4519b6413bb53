"""Transmission delays: the rounding rule, exact once-only delivery, projections, state, errors."""

import copy
import math
import pickle

import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.comm import EventFixedProb
from torchbrain.delay import Delay, SpikeDelay, delay_steps
from torchbrain.outputs import COBA
from torchbrain.projections.align_post import AlignPostProj
from torchbrain.projections.current import DeltaProj
from torchbrain.synapses.expon import Expon

DT = 0.1


@pytest.mark.parametrize(
    ("delay", "dt", "steps"),
    [
        (0.25, 0.1, 3),   # an exact half rounds up (0.25/0.1 is 2.4999999999999996 in floats)
        (0.3, 0.1, 3),    # 2.9999999999999996 in floats
        (0.2, 0.1, 2),
        (0.24, 0.1, 2),
        (0.26, 0.1, 3),
        (0.05, 0.1, 1),   # half a step: one step
        (0.04, 0.1, 0),   # below half a step: no extra delay
        (0.0, 0.1, 0),
        (1.5 * u.ms, 0.1 * u.ms, 15),
        (2 * u.us, 0.001, 2),
        (1.0, 0.025, 40),
    ],
)
def test_rounding_rule(delay, dt, steps):
    assert delay_steps(delay, dt) == steps


def drive(delay_module, signals):
    with tb.environ.context(dt=DT):
        return torch.stack([delay_module(s) for s in signals])


def test_value_pushed_at_step_k_comes_out_at_k_plus_D_exactly_once():
    d = Delay(3, 0.25 * u.ms)
    with tb.environ.context(dt=DT):
        tb.init_all_states(d)
    assert d.steps == 3 and d.buffer.shape == (4, 3)
    torch.manual_seed(0)
    x = (torch.rand(40, 3) < 0.3).float() * torch.rand(40, 3)
    y = drive(d, x)
    torch.testing.assert_close(y[3:], x[:-3], rtol=0, atol=0)
    assert (y[:3] == 0).all()
    # a single spike is delivered once, whole (the reference splits it 0.5/0.5 and then
    # delivers it twice)
    d.reset_state()
    spike = torch.zeros(10, 3)
    spike[2, 1] = 1.0
    out = drive(d, spike)
    assert out.sum() == 1.0 and out[5, 1] == 1.0
    # retrieve: what was pushed k steps before the last push
    assert d.retrieve(0)[1] == 0 and d.retrieve().shape == (3,)
    with pytest.raises(ValueError, match=r"'steps_ago' must be an int in \[0, 3\]"):
        d.retrieve(4)


def test_zero_steps_is_the_identity():
    d = SpikeDelay(2, 0.04 * u.ms)
    with tb.environ.context(dt=DT):
        tb.init_all_states(d)
        x = torch.tensor([1.0, 0.0])
        assert d.steps == 0 and d(x) is not None
        torch.testing.assert_close(d(x), x)


def test_batched_buffer_and_wrong_batch():
    d = Delay((2, 3), 0.2)
    with tb.environ.context(dt=DT):
        tb.init_all_states(d, batch_size=4)
        assert d.buffer.shape == (3, 4, 2, 3)
        x = torch.randn(5, 4, 2, 3)
        y = torch.stack([d(v) for v in x])
        torch.testing.assert_close(y[2:], x[:3])
        with pytest.raises(ValueError, match="batch size 5 but the States were initialised"):
            d(torch.zeros(5, 2, 3))


def test_gradient_flows_through_the_delay_and_no_grad_path_agrees():
    d = Delay(4, 0.3)
    with tb.environ.context(dt=DT):
        tb.init_all_states(d)
        x = torch.randn(10, 4, requires_grad=True)
        y = torch.stack([d(v) for v in x.unbind(0)])
        (y * torch.arange(10.0)[:, None]).sum().backward()
        # d out[n] / d x[k] = 1 for n = k + 3: the gradient of x[k] is the weight of step k + 3
        expected = torch.tensor([k + 3.0 if k + 3 < 10 else 0.0 for k in range(10)])
        torch.testing.assert_close(x.grad, expected[:, None].expand(10, 4))
        tb.reset_all_states(d)
        with torch.no_grad():
            y2 = torch.stack([d(v) for v in x.unbind(0)])
    torch.testing.assert_close(y2, y.detach(), rtol=0, atol=0)


def test_state_save_and_restore_of_the_ring_buffer():
    d = Delay(5, 0.7)
    torch.manual_seed(1)
    x = torch.randn(30, 5)
    with tb.environ.context(dt=DT):
        tb.init_all_states(d)
        drive(d, x[:11])
        saved = tb.state_dict(d)
        first = drive(d, x[11:])
        tb.load_state_dict(d, saved)
        again = drive(d, x[11:])
        # into a fresh module (its own buffer, batch size and step count come from the dict)
        fresh = Delay(5, 0.7)
        tb.init_all_states(fresh, batch_size=3)
        tb.load_state_dict(fresh, saved)
        assert fresh.batch_size is None and fresh.steps == 7
        third = drive(fresh, x[11:])
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    torch.testing.assert_close(third, first, rtol=0, atol=0)


def test_copies_after_an_autograd_forward_and_dtype():
    d = Delay(3, 0.2)
    with tb.environ.context(dt=DT):
        tb.init_all_states(d)
        d(torch.ones(3, requires_grad=True) * 2)
        for clone in (copy.deepcopy(d), pickle.loads(pickle.dumps(d))):
            torch.testing.assert_close(clone.buffer, d.buffer.detach())
        d64 = copy.deepcopy(d).to(torch.float64)
        assert d64.buffer.dtype == torch.float64 and d64.ptr.dtype == torch.int64
        assert d64(torch.ones(3, dtype=torch.float64)).dtype == torch.float64
    assert "delay=0.2 ms" in repr(d) and "steps=2" in repr(d)


def test_errors():
    with pytest.raises(ValueError, match=r"Delay: .*'delay' must be a finite time >= 0, got -0\.1"):
        Delay(3, -0.1 * u.ms)
    with pytest.raises(tb.UnitError, match="'delay' expects a time"):
        Delay(3, 1.0 * u.mV)
    with pytest.raises(ValueError, match="must be a scalar .* per-synapse delays"):
        Delay(3, torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="finite time"):
        Delay(3, math.inf)
    d = Delay(3, 0.25)
    with pytest.raises(RuntimeError, match=r"inside `with tb.environ.context\(dt=...\)`"):
        tb.init_all_states(d)
    with tb.environ.context(dt=DT):
        tb.init_all_states(d)
    with tb.environ.context(dt=0.05), pytest.raises(RuntimeError, match="dt is now 0.05 ms"):
        d(torch.zeros(3))
    with tb.environ.context(dt=0.1 - 1e-12):
        d(torch.zeros(3))  # another dt with the same number of steps is fine
    with pytest.raises(ValueError, match="'dt' must be a positive"):
        delay_steps(1.0, 0.0)


# ------------------------------------------------------------------ delays in projections
def make_post(n=3):
    return tb.LIF(n, tau=20 * u.ms, V_th=-50 * u.mV, V_rest=-60 * u.mV, V_reset=-60 * u.mV,
                  R=0.1 * u.gigaohm, V_initializer=tb.init.Constant(-60 * u.mV),
                  dtype=torch.float64)


@pytest.mark.parametrize("merging", [True, False])
def test_align_post_delay_total_lag_is_one_plus_D_steps(merging):
    post = make_post()
    f64 = dict(dtype=torch.float64)
    syn = Expon.desc(3, tau=5 * u.ms, **f64) if merging else Expon(3, tau=5 * u.ms, **f64)
    out = COBA.desc(E=0 * u.mV, **f64) if merging else COBA(E=0 * u.mV, **f64)
    proj = AlignPostProj(
        comm=EventFixedProb(1, 3, 3, 2 * u.nS, allow_multi_conn=False, seed=0, **f64),
        syn=syn, out=out, post=post, delay=0.25 * u.ms,
    )
    net = torch.nn.ModuleList([post, proj])
    with tb.environ.context(dt=DT):
        tb.init_all_states(net)
        g = []
        for step in range(12):
            # the network's order: last step's spikes to the projection, then the population
            proj(torch.tensor([1.0 if step == 1 else 0.0], **f64))  # emitted at step k = 0
            if not merging:
                g.append(proj.syn.g.clone())
            post(0.0)
            if merging:
                g.append(proj.syn.g.clone())
    g = torch.stack(g)[:, 0]
    arrival = 1 + 3  # one step of base latency plus D = round(0.25 / 0.1) = 3
    decay = math.exp(-DT / 5.0)
    expected = torch.tensor([0.0 if n < arrival else 2.0 * decay ** (n - arrival)
                             for n in range(12)], **f64)
    torch.testing.assert_close(g, expected, rtol=1e-12, atol=0)


def test_align_post_delay_errors():
    post = make_post(30)
    good = dict(comm=EventFixedProb(20, 30, 5, 1 * u.nS), syn=Expon.desc(30, tau=5 * u.ms),
                out=COBA.desc(E=0 * u.mV), post=post)
    with pytest.raises(ValueError, match="'delay' must be a finite time >= 0"):
        AlignPostProj(**good, delay=-1 * u.ms)
    with pytest.raises(ValueError, match="the delay buffers 19 values per step"):
        AlignPostProj(**good, delay=Delay(19, 1.0))
    with pytest.raises(tb.UnitError, match="'delay' expects a time"):
        AlignPostProj(**good, delay=1 * u.nS)
    assert len(post.current_inputs) == 0 and len(post.before_updates) == 0
    # init without dt: a clear error, not a failure deep inside a run
    proj = AlignPostProj(**good, delay=1 * u.ms)
    with pytest.raises(RuntimeError, match="time step must be known"):
        tb.init_all_states(torch.nn.ModuleList([post, proj]))


def test_delta_projection_with_delay():
    post = make_post(2)
    proj = DeltaProj(comm=EventFixedProb(1, 2, 2, 1.5 * u.mV, allow_multi_conn=False, seed=0,
                                         dtype=torch.float64), post=post, delay=0.2 * u.ms)
    with tb.environ.context(dt=DT):
        tb.init_all_states(torch.nn.ModuleList([post, proj]))
        V = []
        for step in range(6):
            proj(torch.tensor([1.0 if step == 0 else 0.0], dtype=torch.float64))
            post(0.0)
            V.append(post.V[0].item())
    # the jump arrives at step 0 + D = 2 (DeltaProj fed the spike at step 0), once
    assert V[:2] == [-60.0, -60.0]
    assert V[2] == pytest.approx(-58.5, abs=1e-12)
    assert V[3] == pytest.approx(-60.0 + 1.5 * math.exp(-DT / 20.0), abs=1e-12)


def test_network_state_with_delay_and_stp_restores_exactly():
    from torchbrain.synapses.stp import STP

    post = make_post(4)
    proj = AlignPostProj(comm=EventFixedProb(6, 4, 3, 3 * u.nS, seed=1, dtype=torch.float64),
                         syn=Expon.desc(4, tau=5 * u.ms, dtype=torch.float64),
                         out=COBA.desc(E=0 * u.mV, dtype=torch.float64), post=post,
                         delay=0.5 * u.ms, stp=STP(6, U=0.2, dtype=torch.float64))
    net = torch.nn.ModuleList([post, proj])
    torch.manual_seed(5)
    spikes = (torch.rand(40, 2, 6, dtype=torch.float64) < 0.3).double()

    def run(xs):
        out = []
        for s in xs:
            proj(s)
            post(0.0)
            out.append(post.V.clone())
        return torch.stack(out)

    with tb.environ.context(dt=DT):
        tb.init_all_states(net, batch_size=2)
        run(spikes[:13])
        saved = tb.state_dict(net)
        assert "1.delay.buffer" in saved and saved["1.delay.buffer"].shape == (6, 2, 6)
        first = run(spikes[13:])
        tb.load_state_dict(net, saved)
        second = run(spikes[13:])
    torch.testing.assert_close(second, first, rtol=0, atol=0)
    assert (first != -60.0).any()
