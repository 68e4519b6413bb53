"""AlignPreProj: spike-for-spike equal to AlignPost on linear synapses, delays and STP on both
projections, nonlinear synapses, sharing, and construction errors."""

import copy
import math

import pytest
import torch
from torch import nn

import torchbrain as tb
from torchbrain import u
from torchbrain.comm import EventFixedProb
from torchbrain.drivers.runner import NetworkRunner
from torchbrain.dynamics import Dynamics
from torchbrain.models import COBANet
from torchbrain.neurons.lif import LIFRef
from torchbrain.outputs import COBA, CUBA
from torchbrain.projections.align_post import AlignPostProj
from torchbrain.projections.align_pre import AlignPreProj
from torchbrain.synapses.expon import Expon
from torchbrain.synapses.kinetic import AMPA
from torchbrain.synapses.stp import STD, STP

DT = 0.1
F64 = dict(dtype=torch.float64)


class Slice(nn.Module):
    """Selects a sub-population of the presynaptic spikes."""

    def __init__(self, start, stop):
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x):
        return x[..., self.start:self.stop]


class Source(Dynamics):
    """A presynaptic population that emits the spikes it is given."""

    def init_state(self, batch_size=None):
        self._state_shape(batch_size)

    def update(self, spikes):
        return spikes


class AlignPreCOBA(tb.Module):
    """The COBA benchmark network of ``ref`` rebuilt with pre-aligned synapses."""

    def __init__(self, ref: COBANet):
        super().__init__()
        n, ne = ref.num, ref.num_exc
        self.N = LIFRef(n, tau=20.0 * u.ms, tau_ref=5.0 * u.ms, V_rest=-60.0 * u.mV,
                        V_reset=-60.0 * u.mV, V_th=-50.0 * u.mV, R=1 / (10.0 * u.nS),
                        spk_reset="hard", **F64)
        self.E = AlignPreProj(Slice(0, ne), pre=self.N, syn=Expon.desc(ne, tau=5 * u.ms, **F64),
                              comm=copy.deepcopy(ref.E.comm), out=COBA(E=0 * u.mV, **F64),
                              post=self.N)
        self.I = AlignPreProj(Slice(ne, n), pre=self.N,
                              syn=Expon.desc(n - ne, tau=10 * u.ms, **F64),
                              comm=copy.deepcopy(ref.I.comm), out=COBA(E=-80 * u.mV, **F64),
                              post=self.N)
        self.register_buffer("drive", ref.drive.clone())

    def forward(self):
        self.E()
        self.I()
        return self.N(self.drive)


def test_identical_rasters_to_align_post_on_the_coba_network():
    torch.manual_seed(0)
    post_net = COBANet(scale=0.1, seed=1, dtype=torch.float64)
    pre_net = AlignPreCOBA(post_net)
    tb.init_all_states(post_net)
    tb.init_all_states(pre_net)
    # AlignPost also transmits the "spikes" of a supra-threshold initial V: clip it below
    post_net.N.V = post_net.N.V.clamp(max=-50.01)
    pre_net.N.V = post_net.N.V.clone()
    with tb.environ.context(dt=DT * u.ms):
        a = NetworkRunner(post_net, compile=False).run(2000)
        b = NetworkRunner(pre_net, compile=False).run(2000)
    ne = post_net.num_exc
    assert a[:, :ne].sum() > 500 and a[:, ne:].sum() > 100  # both populations are active
    assert torch.equal(a, b)
    torch.testing.assert_close(pre_net.N.V, post_net.N.V, rtol=0, atol=1e-9)
    # the synaptic state is pre-sized: one trace per presynaptic neuron
    assert pre_net.E.syn.g.shape == (ne,) and post_net.E.syn.g.shape == (post_net.num,)


def make_post(n):
    return tb.LIF(n, tau=20 * u.ms, V_th=100 * u.mV, V_rest=-60 * u.mV, V_reset=-60 * u.mV,
                  R=0.1 * u.gigaohm, V_initializer=tb.init.Constant(-60 * u.mV), **F64)


def paired_projections(n_pre=12, n_post=7, delay=None, stp=None, batch=None):
    """The same connectivity, once post-aligned and once pre-aligned, on two post copies."""
    comm = EventFixedProb(n_pre, n_post, 4, tb.init.Uniform(0.5 * u.nS, 2 * u.nS), seed=3,
                          **F64)
    post_a, post_b, src = make_post(n_post), make_post(n_post), Source(n_pre, **F64)
    a = AlignPostProj(comm=comm, syn=Expon.desc(n_post, tau=4 * u.ms, **F64),
                      out=COBA.desc(E=0 * u.mV, **F64), post=post_a, delay=delay,
                      stp=None if stp is None else copy.deepcopy(stp))
    b = AlignPreProj(pre=src, syn=Expon.desc(n_pre, tau=4 * u.ms, **F64),
                     comm=copy.deepcopy(comm), out=COBA(E=0 * u.mV, **F64), post=post_b,
                     delay=delay, stp=None if stp is None else copy.deepcopy(stp))
    net = nn.ModuleList([post_a, post_b, src, a, b])
    with tb.environ.context(dt=DT):
        tb.init_all_states(net, batch_size=batch)
    return a, b, src, post_a, post_b


def run_pair(a, b, src, post_a, post_b, spikes):
    ga, gb = [], []
    prev = torch.zeros_like(spikes[0])
    with tb.environ.context(dt=DT):
        for s in spikes:
            a(prev)   # AlignPost: the projection gets the previous step's spikes
            b()       # AlignPre: the projection reads the trace of the previous steps
            post_a(0.0)
            post_b(0.0)
            ga.append(a.out.cond.clone())
            gb.append(b.out.cond.clone())
            src(s)    # the presynaptic step advances the pre-aligned synapse
            prev = s
    return torch.stack(ga), torch.stack(gb)


@pytest.mark.parametrize(
    ("delay", "stp"),
    [(None, None), (0.25 * u.ms, None),
     # u starts at rest (0): AlignPost steps its stages once more at the start, on the
     # initial spikes, which changes nothing only for stages at rest
     (None, STP(12, U=0.3, tau_f=50 * u.ms, tau_d=20 * u.ms, u_initializer=0.0, **F64)),
     (0.3, STD(12, tau=30 * u.ms, U=0.2, **F64))],
)
def test_align_pre_equals_align_post_with_delay_and_stp(delay, stp):
    torch.manual_seed(2)
    spikes = (torch.rand(150, 12, dtype=torch.float64) < 0.15).double()
    a, b, src, post_a, post_b = paired_projections(delay=delay, stp=stp)
    ga, gb = run_pair(a, b, src, post_a, post_b, spikes)
    assert ga.abs().sum() > 0
    torch.testing.assert_close(gb, ga, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(post_b.V, post_a.V, rtol=0, atol=1e-12)


def test_batched_align_pre():
    torch.manual_seed(3)
    spikes = (torch.rand(60, 2, 12, dtype=torch.float64) < 0.2).double()
    a, b, src, post_a, post_b = paired_projections(batch=2, delay=0.2)
    ga, gb = run_pair(a, b, src, post_a, post_b, spikes)
    assert gb.shape == (60, 2, 7) and b.syn.g.shape == (2, 12)
    torch.testing.assert_close(gb, ga, rtol=1e-12, atol=1e-12)


def test_stp_on_align_post_releases_U_w_on_the_first_spike():
    U, w = 0.3, 2.0
    post = make_post(1)
    proj = AlignPostProj(
        comm=EventFixedProb(1, 1, 1, w * u.nS, **F64), syn=Expon.desc(1, tau=5 * u.ms, **F64),
        out=COBA.desc(E=0 * u.mV, **F64), post=post,
        stp=STP(1, U=U, tau_f=100 * u.ms, tau_d=50 * u.ms, u_initializer=0.0, **F64),
    )
    ref = STP(1, U=U, tau_f=100 * u.ms, tau_d=50 * u.ms, u_initializer=0.0, **F64)
    net = nn.ModuleList([post, proj, ref])
    tb.init_all_states(net)
    train = torch.zeros(80, 1, **F64)
    train[[0, 5, 10, 15, 40]] = 1.0
    decay = math.exp(-DT / 5.0)
    g_expected, g = 0.0, []
    with tb.environ.context(dt=DT):
        for n, s in enumerate(train):
            proj(s)
            post(0.0)
            g.append(proj.syn.g.item())
            release = ref(s).item()  # the STP module's own output for the same spikes
            if n == 0:
                assert release == pytest.approx(U)  # a rested synapse releases U
            g_expected = g_expected * decay + w * release
            assert g[-1] == pytest.approx(g_expected, rel=1e-12, abs=1e-15)
    assert g[0] == pytest.approx(U * w)
    # facilitation then depression: the second spike releases more than U at these settings
    assert g[5] - g[4] * decay > U * w


def test_nonlinear_synapse_through_align_pre():
    torch.manual_seed(4)
    n_pre, n_post = 10, 6
    src, post = Source(n_pre, **F64), make_post(n_post)
    comm = EventFixedProb(n_pre, n_post, 3, 1.5 * u.nS, seed=0, **F64)
    proj = AlignPreProj(pre=src, syn=AMPA(n_pre, **F64), comm=comm,
                        out=COBA.desc(E=0 * u.mV, **F64), post=post)
    ampa = AMPA(n_pre, **F64)  # an independent per-presynaptic-neuron receptor
    net = nn.ModuleList([src, post, proj, ampa])
    tb.init_all_states(net)
    W = comm.to_dense()
    with tb.environ.context(dt=DT):
        for step in range(100):
            with tb.environ.context(t=step * DT):
                proj()
                torch.testing.assert_close(proj.out.cond, ampa.g @ W, rtol=1e-12, atol=0)
                post(0.0)
                s = (torch.rand(n_pre, **F64) < 0.1).double()
                src(s)
                ampa(s)
    assert ampa.g.sum() > 0


def test_descriptors_share_one_presynaptic_synapse():
    src = Source(8, **F64)
    posts = [make_post(5), make_post(3)]
    kw = dict(pre=src, syn=Expon.desc(8, tau=5 * u.ms, **F64), out=COBA.desc(E=0 * u.mV, **F64))
    p1 = AlignPreProj(comm=EventFixedProb(8, 5, 2, 1 * u.nS, **F64), post=posts[0], **kw)
    p2 = AlignPreProj(comm=EventFixedProb(8, 3, 2, 1 * u.nS, **F64), post=posts[1], **kw)
    p3 = AlignPreProj(comm=EventFixedProb(8, 3, 2, 1 * u.nS, **F64), post=posts[1], **kw,
                      label="own")
    assert p1.syn is p2.syn and p3.syn is not p1.syn
    assert len(src.after_updates) == 2
    net = nn.ModuleList([src, *posts, p1, p2, p3])
    tb.init_all_states(net)
    with tb.environ.context(dt=DT):
        src(torch.ones(8, **F64))
    # advanced once per step, not once per projection
    torch.testing.assert_close(p1.syn.g, torch.ones(8, **F64))
    # an instance drives one projection; a second use would step it twice per step
    syn = Expon(8, **F64)
    AlignPreProj(pre=src, syn=syn, comm=EventFixedProb(8, 5, 2, 1 * u.nS), out=COBA(),
                 post=posts[0])
    with pytest.raises(ValueError, match="already driven by another AlignPreProj"):
        AlignPreProj(pre=src, syn=syn, comm=EventFixedProb(8, 5, 2, 1 * u.nS), out=COBA(),
                     post=posts[0])


def test_construction_errors():
    src, post = Source(20), make_post(30)
    good = dict(pre=src, comm=EventFixedProb(20, 30, 5, 1 * u.nS),
                syn=Expon.desc(20, tau=5 * u.ms), out=COBA.desc(E=0 * u.mV), post=post)
    with pytest.raises(TypeError, match="'pre' must be a torchbrain population"):
        AlignPreProj(**{**good, "pre": nn.Linear(2, 2)})
    with pytest.raises(TypeError, match="'post' must be a torchbrain population"):
        AlignPreProj(**{**good, "post": nn.Linear(2, 2)})
    with pytest.raises(ValueError, match="synapse has 19 units but comm takes 20"):
        AlignPreProj(**{**good, "syn": Expon.desc(19)})
    with pytest.raises(ValueError, match="synapse has 21 units but the pre population has 20"):
        AlignPreProj(**{**good, "syn": Expon.desc(21),
                        "comm": EventFixedProb(21, 30, 5, 1 * u.nS)})
    with pytest.raises(ValueError, match="comm maps onto 31 neurons but post has 30"):
        AlignPreProj(**{**good, "comm": EventFixedProb(20, 31, 5, 1 * u.nS)})
    with pytest.raises(tb.UnitError, match="weights of EventFixedProb are in pA but COBA"):
        AlignPreProj(**{**good, "comm": EventFixedProb(20, 30, 5, 1 * u.pA)})
    with pytest.raises(tb.UnitError, match="in nS but CUBA needs weights in pA"):
        AlignPreProj(**{**good, "out": CUBA.desc()})
    with pytest.raises(ValueError, match="short-term plasticity has 10 units"):
        AlignPreProj(**good, stp=STP(10))
    with pytest.raises(ValueError, match="'delay' must be a finite time >= 0"):
        AlignPreProj(**good, delay=-0.5 * u.ms)
    with pytest.raises(TypeError, match=r"Expon.desc\(...\): .*unknown"):
        AlignPreProj(**{**good, "syn": Expon.desc(20, unknown=1)})
    with pytest.raises(TypeError, match="unexpected keyword argument 'wieght'"):
        AlignPreProj(**good, wieght=1)
    # a failed construction leaves both populations untouched
    assert len(src.after_updates) == 0 and len(post.current_inputs) == 0
    with pytest.raises(ValueError, match="short-term plasticity has 10 units"):
        AlignPostProj(comm=EventFixedProb(20, 30, 5, 1 * u.nS), syn=Expon.desc(30),
                      out=COBA.desc(), post=post, stp=STP(10))
    proj = AlignPreProj(**good)
    with pytest.raises(RuntimeError, match="has no State yet"):
        proj()
