"""AlignPostProj: shared post-aligned synapses equal per-synapse filtering; timing; errors."""

import math

import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.comm import EventFixedProb
from torchbrain.outputs import COBA, CUBA
from torchbrain.projections import AlignPostProj
from torchbrain.synapses import Expon

DT = 0.1


def make_post(n=30):
    return tb.LIF(n, tau=20 * u.ms, V_th=-50 * u.mV, V_rest=-60 * u.mV, V_reset=-60 * u.mV,
                  R=0.1 * u.gigaohm, V_initializer=tb.init.Constant(-60 * u.mV),
                  dtype=torch.float64)


def test_equal_descriptors_share_one_synapse_state():
    post = make_post()
    a = AlignPostProj(comm=EventFixedProb(20, 30, 5, 1 * u.nS, seed=0),
                      syn=Expon.desc(30, tau=5 * u.ms), out=COBA.desc(E=0 * u.mV), post=post)
    b = AlignPostProj(comm=EventFixedProb(40, 30, 5, 2 * u.nS, seed=1),
                      syn=Expon.desc(30, tau=5 * u.ms), out=COBA.desc(E=0 * u.mV), post=post)
    c = AlignPostProj(comm=EventFixedProb(40, 30, 5, 2 * u.nS, seed=1),
                      syn=Expon.desc(30, tau=10 * u.ms), out=COBA.desc(E=0 * u.mV), post=post)
    d = AlignPostProj(comm=EventFixedProb(40, 30, 5, 2 * u.nS, seed=1),
                      syn=Expon.desc(30, tau=5 * u.ms), out=COBA.desc(E=0 * u.mV), post=post,
                      label="private")
    assert a.syn is b.syn and a.out is b.out
    assert c.syn is not a.syn and d.syn is not a.syn
    net = torch.nn.ModuleDict(dict(post=post, a=a, b=b, c=c, d=d))
    tb.init_all_states(net, batch_size=2)
    # one State of size N_post per distinct (synapse, output) pair, whatever the synapse count
    synapse_states = [k for k in tb.states(net, tb.HiddenState) if k.endswith(".g")]
    assert len({id(v) for v in tb.states(net, tb.HiddenState).values()}) == 1 + 3
    assert all(v.shape == (2, 30) for k, v in tb.states(net, tb.HiddenState).items()
               if k in synapse_states)


def test_shared_state_equals_per_synapse_filtering():
    torch.manual_seed(0)
    post = make_post()
    comms = [EventFixedProb(20, 30, 6, tb.init.Uniform(0.5 * u.nS, 2 * u.nS), seed=s,
                            dtype=torch.float64) for s in (0, 1)]
    projs = [AlignPostProj(comm=c, syn=Expon.desc(30, tau=5 * u.ms, dtype=torch.float64),
                           out=COBA.desc(E=0 * u.mV, dtype=torch.float64), post=post)
             for c in comms]
    net = torch.nn.ModuleList([post, *projs])
    tb.init_all_states(net)
    dense = [c.to_dense() for c in comms]
    # reference: every synapse filtered on its own, then summed on the post side
    per_synapse = torch.zeros(2, 20, 30, dtype=torch.float64)
    decay = math.exp(-DT / 5.0)
    with tb.environ.context(dt=DT):
        for _ in range(200):
            spikes = [(torch.rand(20) < 0.1).double() for _ in comms]
            for p, s in zip(projs, spikes, strict=True):
                p(s)
            post(0.0)
            for j, (s, w) in enumerate(zip(spikes, dense, strict=True)):
                per_synapse[j] = per_synapse[j] * decay + s[:, None] * w
            torch.testing.assert_close(projs[0].syn.g, per_synapse.sum((0, 1)), atol=1e-9,
                                       rtol=0)
    # The conductance drives the membrane: V is pulled towards E = 0 mV.
    assert bool((post.V > -60.0).all())


def test_one_step_latency_from_pre_spike_to_post_conductance():
    post = make_post(3)
    proj = AlignPostProj(comm=EventFixedProb(1, 3, 3, 5 * u.nS, allow_multi_conn=False, seed=0),
                         syn=Expon.desc(3, tau=5 * u.ms), out=COBA.desc(E=0 * u.mV), post=post)
    net = torch.nn.ModuleList([post, proj])
    tb.init_all_states(net)
    with tb.environ.context(dt=DT):
        proj(torch.ones(1))            # a presynaptic spike emitted at step k
        assert proj.syn.g.abs().sum() == 0  # not delivered before post updates
        post(0.0)                      # step k+1: synapse advances, then the membrane
        torch.testing.assert_close(proj.syn.g, torch.full((3,), 5.0))


def test_current_based_projection():
    post = make_post(4)
    proj = AlignPostProj(comm=EventFixedProb(2, 4, 4, 100 * u.pA, allow_multi_conn=False,
                                             seed=0, dtype=torch.float64),
                         syn=Expon.desc(4, tau=5 * u.ms, dtype=torch.float64),
                         out=CUBA.desc(dtype=torch.float64), post=post)
    tb.init_all_states(torch.nn.ModuleList([post, proj]))
    with tb.environ.context(dt=DT):
        proj(torch.tensor([1.0, 0.0]))
        post(0.0)
    # one exact step of the membrane with a 100 pA current through 0.1 GΩ from rest
    expected = -60.0 + 10.0 * (1 - math.exp(-DT / 20.0))
    torch.testing.assert_close(post.V, torch.full((4,), expected, dtype=torch.float64))


def test_construction_errors():
    post = make_post(30)
    good = dict(comm=EventFixedProb(20, 30, 5, 1 * u.nS), syn=Expon.desc(30, tau=5 * u.ms),
                out=COBA.desc(E=0 * u.mV), post=post)
    with pytest.raises(TypeError, match="'post' must be a torchbrain population"):
        AlignPostProj(**{**good, "post": torch.nn.Linear(2, 2)})
    with pytest.raises(ValueError, match="comm maps onto 31 neurons but post has 30"):
        AlignPostProj(**{**good, "comm": EventFixedProb(20, 31, 5, 1 * u.nS)})
    with pytest.raises(ValueError, match="synapse has 29 units"):
        AlignPostProj(**{**good, "syn": Expon.desc(29, tau=5 * u.ms)})
    with pytest.raises(TypeError, match="both be descriptors"):
        AlignPostProj(**{**good, "out": COBA(E=0 * u.mV)})
    with pytest.raises(tb.UnitError, match="weights of EventFixedProb are in pA but COBA"):
        AlignPostProj(**{**good, "comm": EventFixedProb(20, 30, 5, 1 * u.pA)})
    with pytest.raises(tb.UnitError, match="in nS but CUBA needs weights in pA"):
        AlignPostProj(**{**good, "out": CUBA.desc()})
    with pytest.raises(TypeError, match=r"Expon.desc\(...\): .*unknown"):
        Expon.desc(30, tau=5 * u.ms, unknown=1)
