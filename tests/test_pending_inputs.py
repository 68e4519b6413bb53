"""One-shot inputs waiting for a population's next step are States: reset, saved and restored."""

import copy

import pytest
import torch
from torch import nn

import torchbrain as tb
from torchbrain import u
from torchbrain.comm import FixedNumConn
from torchbrain.projections.current import DeltaProj

DT = 0.1


class DeltaNet(nn.Module):
    """Poisson-like spikes -> DeltaProj -> LIF: the jump is delivered before the LIF's step and
    consumed by it, and one more is left pending for the next step at the end of each step."""

    def __init__(self):
        super().__init__()
        self.post = tb.LIF(6, tau=5 * u.ms, V_th=1 * u.mV, dtype=torch.float64)
        comm = FixedNumConn(10, 6, 4, tb.init.Uniform(0.1 * u.mV, 0.6 * u.mV), seed=3,
                            dtype=torch.float64)
        self.proj = DeltaProj(comm=comm, post=self.post)

    def forward(self, spikes):
        out = self.post(0.0)      # consumes the jump delivered in the previous step
        self.proj(spikes)         # leaves this step's jump pending for the next one
        return out


def _inputs(steps):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(steps, 10, generator=g, dtype=torch.float64) < 0.3).double()


def _run(net, spikes):
    with tb.environ.context(dt=DT):
        return torch.stack([net(s) for s in spikes])


def test_saved_run_resumes_with_the_pending_jump():
    net = tb.init_all_states(DeltaNet())
    spikes = _inputs(60)
    _run(net, spikes[:25])
    assert net.post.pending_delta.numel() > 0  # a jump is due at the next step
    saved = tb.state_dict(net)
    assert "post.pending_delta" in saved
    expected = _run(net, spikes[25:])
    assert expected.sum() > 0

    tb.load_state_dict(net, saved)
    torch.testing.assert_close(_run(net, spikes[25:]), expected, rtol=0, atol=0)

    fresh = tb.init_all_states(DeltaNet())
    tb.load_state_dict(fresh, saved)
    torch.testing.assert_close(_run(fresh, spikes[25:]), expected, rtol=0, atol=0)


def test_the_pending_jump_changes_the_next_step_and_reset_drops_it():
    net = tb.init_all_states(DeltaNet())
    _run(net, _inputs(5))
    pending = net.post.pending_delta.clone()
    V = net.post.V.clone()
    assert pending.abs().sum() > 0
    ref = copy.deepcopy(net)
    _run(net, torch.zeros(1, 10, dtype=torch.float64))
    # the step with no input still adds the jump left by the previous step (exact LIF decay)
    with tb.environ.context(dt=DT):
        ref.post.pending_delta = ref.post._nothing_pending()
        ref.post(0.0)
    torch.testing.assert_close(net.post.V - ref.post.V, pending, rtol=0, atol=1e-12)
    assert not torch.equal(V, net.post.V)

    tb.reset_all_states(net)
    assert net.post.pending_delta.numel() == 0
    assert "pending_delta" not in repr(net.post)


def test_pending_current_is_a_state_in_pA():
    n = tb.init_all_states(tb.LIF(3, R=1 * u.gigaohm, tau=10 * u.ms, V_th=100 * u.mV))
    n.add_current_input("kick", 2 * u.pA)
    n.add_current_input("kick", torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(n.pending_current, torch.tensor([3.0, 2.0, 2.0]))
    assert "pending_current" in tb.state_dict(n)
    with tb.environ.context(dt=DT):
        n(0.0)
    assert n.pending_current.numel() == 0
    with pytest.raises(TypeError, match=r"LIF: a delta input must be a tensor or number"):
        n.add_delta_input("kick", 1 * u.mV)
    # V = R I (1 - exp(-dt/tau)), R = 1 GOhm
    expected = torch.tensor([3.0, 2.0, 2.0]) * (1 - torch.exp(torch.tensor(-DT / 10)))
    torch.testing.assert_close(n.V, expected)


def test_reset_unbinds_a_synaptic_output():
    from torchbrain.outputs import COBA

    out = COBA(E=0 * u.mV)
    out.bind_cond(torch.ones(3))
    assert torch.equal(out.cond, torch.ones(3))
    tb.reset_all_states(out)
    assert out.cond == 0.0
