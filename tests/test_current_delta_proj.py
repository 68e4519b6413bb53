"""CurrentProj and DeltaProj: exact membrane responses, sources, delays, units and sizes."""

import math

import numpy as np
import pytest
import torch
from torch import nn

import torchbrain as tb
from torchbrain import u
from torchbrain.comm import EventFixedProb, FixedNumConn
from torchbrain.outputs import COBA, CUBA
from torchbrain.projections.current import CurrentProj, DeltaProj
from torchbrain.synapses.expon import Expon

DT, TAU, R, V_REST = 0.1, 20.0, 0.1, -60.0
F64 = dict(dtype=torch.float64)


def make_post(n, V_th=100.0):
    return tb.LIF(n, tau=TAU * u.ms, V_th=V_th * u.mV, V_rest=V_REST * u.mV,
                  V_reset=V_REST * u.mV, R=R * u.gigaohm,
                  V_initializer=tb.init.Constant(V_REST * u.mV), **F64)


class Scale(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return self.k * x


def test_constant_conductance_gives_the_exact_coba_membrane():
    post = make_post(4)
    comm = FixedNumConn(3, 4, 2, tb.init.Uniform(1 * u.nS, 3 * u.nS), seed=0, **F64)
    g_pre = torch.tensor([0.5, 1.0, 2.0], **F64)
    proj = CurrentProj(g_pre, comm=comm, out=COBA.desc(E=0 * u.mV, **F64), post=post)
    tb.init_all_states(nn.ModuleList([post, proj]))
    g = (g_pre @ comm.to_dense()).numpy()
    with tb.environ.context(dt=DT):
        for _ in range(30):
            proj()
            post(0.0)
    # tau dV/dt = -(V - V_rest) + R g (E - V): exponential relaxation at (1 + R g)/tau
    V_inf = V_REST / (1 + R * g)
    expected = V_inf + (V_REST - V_inf) * np.exp(-(1 + R * g) * 30 * DT / TAU)
    np.testing.assert_allclose(post.V.numpy(), expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(proj.out.cond, torch.as_tensor(g))


def test_prefetched_synapse_is_read_not_stepped():
    pre_syn = Expon(5, tau=5 * u.ms, **F64)
    post = make_post(3)
    comm = EventFixedProb(5, 3, 2, 2 * u.nS, seed=1, **F64)
    proj = CurrentProj(pre_syn, comm=comm, out=COBA(E=0 * u.mV, **F64), post=post)
    tb.init_all_states(nn.ModuleList([pre_syn, post, proj]))
    with tb.environ.context(dt=DT):
        pre_syn(torch.tensor([1.0, 0.0, 2.0, 0.0, 0.0], **F64))
        g_before = pre_syn.g.clone()
        proj()
        proj()
    torch.testing.assert_close(pre_syn.g, g_before)
    torch.testing.assert_close(proj.out.cond, g_before @ comm.to_dense())


def test_callable_source_modules_and_delay():
    post = make_post(2)
    comm = FixedNumConn(2, 2, 2, 10 * u.pA, allow_multi_conn=False, seed=0, **F64)
    values = iter(torch.arange(1.0, 11.0, **F64).reshape(5, 2))
    proj = CurrentProj(lambda: next(values), Scale(2.0), comm=comm, out=CUBA(**F64), post=post,
                       delay=0.2 * u.ms)
    with tb.environ.context(dt=DT):
        tb.init_all_states(nn.ModuleList([post, proj]))
        bound = []
        for _ in range(5):
            proj()
            bound.append(proj.out.cond.clone())
    bound = torch.stack(bound)
    # every post neuron receives both inputs (10 pA each), twice the value, 2 steps late
    assert (bound[:2] == 0).all()
    src = torch.arange(1.0, 11.0, **F64).reshape(5, 2)
    torch.testing.assert_close(bound[2:], (2 * 10 * src[:3].sum(1, keepdim=True)).expand(3, 2))


def test_value_passed_at_call_time():
    post = make_post(2)
    proj = CurrentProj(comm=FixedNumConn(2, 2, 1, 1.0, seed=0, **F64), out=CUBA(**F64),
                       post=post)
    tb.init_all_states(nn.ModuleList([post, proj]))
    with tb.environ.context(dt=DT):
        proj(torch.tensor([100.0, 0.0], **F64))
        post(0.0)
    assert post.V.sum() > 2 * V_REST  # a 100 pA current went in
    with pytest.raises(TypeError, match=r"call the projection with the value: proj\(x\)"):
        proj()
    fixed = CurrentProj(torch.ones(2), comm=FixedNumConn(2, 2, 1, 1.0, seed=0),
                        out=CUBA(), post=post)
    with pytest.raises(TypeError, match="call it without an argument"):
        fixed(torch.ones(2))


def test_current_projection_errors():
    post = make_post(4)
    comm = FixedNumConn(3, 4, 2, 1 * u.nS, seed=0)
    with pytest.raises(ValueError, match=r"prefetched tensor has shape \(5,\) but comm takes 3"):
        CurrentProj(torch.ones(5), comm=comm, out=COBA(), post=post)
    with pytest.raises(ValueError, match="prefetched Expon has 6 units but comm takes 3"):
        CurrentProj(Expon(6), comm=comm, out=COBA(), post=post)
    with pytest.raises(tb.UnitError, match="in nS but CUBA needs weights in pA"):
        CurrentProj(torch.ones(3), comm=comm, out=CUBA(), post=post)
    with pytest.raises(ValueError, match="comm maps onto 4 neurons but post has 5"):
        CurrentProj(torch.ones(3), comm=comm, out=COBA(), post=make_post(5))
    with pytest.raises(TypeError, match="'out' must be a synaptic output"):
        CurrentProj(torch.ones(3), comm=comm, out=nn.Identity(), post=post)
    with pytest.raises(TypeError, match="'post' must be a torchbrain population"):
        CurrentProj(torch.ones(3), comm=comm, out=COBA(), post=nn.Identity())
    with pytest.raises(TypeError, match="prefetch source must be a tensor"):
        CurrentProj("g", comm=comm, out=COBA(), post=post)
    with pytest.raises(ValueError, match="'delay' must be a finite time >= 0"):
        CurrentProj(torch.ones(3), comm=comm, out=COBA(), post=post, delay=-1.0)
    assert len(post.current_inputs) == 0
    # a quantity source is converted to its canonical unit
    proj = CurrentProj(torch.ones(3) * u.uS, comm=comm, out=COBA(), post=post)
    torch.testing.assert_close(proj.source, torch.full((3,), 1000.0))


def test_delta_projection_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    n_pre, n_post, steps = 8, 5, 200
    comm = EventFixedProb(n_pre, n_post, 3, tb.init.Uniform(0.2 * u.mV, 1.5 * u.mV), seed=2,
                          **F64)
    post = make_post(n_post, V_th=-50.0)
    proj = DeltaProj(comm=comm, post=post)
    tb.init_all_states(nn.ModuleList([post, proj]))
    spikes = (rng.random((steps, n_pre)) < 0.1).astype(np.float64)
    W = comm.to_dense().numpy()
    I = 150.0  # pA: V_inf = -45 mV, above threshold, so the neurons also fire and reset
    V = np.full(n_post, V_REST)
    decay = math.exp(-DT / TAU)
    fired = 0
    with tb.environ.context(dt=DT):
        for s in spikes:
            proj(torch.as_tensor(s))
            post(I)
            # reference: (lazy, soft) reset of the last spike, exact leak, then the jump
            fired += int((V >= -50.0).sum())
            V = V - (V >= -50.0) * 10.0
            V_inf = V_REST + R * I
            V = V_inf + (V - V_inf) * decay + s @ W
            np.testing.assert_allclose(post.V.numpy(), V, rtol=0, atol=1e-9)
    assert fired > 5


def test_delta_jump_size_and_timing():
    post = make_post(2)
    proj = DeltaProj(Scale(1.0), comm=EventFixedProb(1, 2, 2, 2.5, allow_multi_conn=False,
                                                     seed=0, **F64), post=post)
    tb.init_all_states(nn.ModuleList([post, proj]))
    with tb.environ.context(dt=DT):
        proj(torch.ones(1, **F64))
        post(0.0)
        torch.testing.assert_close(post.V, torch.full((2,), V_REST + 2.5, **F64))
        post(0.0)  # consumed once
        torch.testing.assert_close(post.V, torch.full((2,), V_REST + 2.5 * math.exp(-DT / TAU),
                                                      **F64))


def test_delta_projection_into_a_2d_population():
    post = tb.LIF((2, 3), V_th=100.0, V_initializer=tb.init.Constant(0.0), **F64)
    proj = DeltaProj(comm=FixedNumConn(2, 6, 6, 1 * u.mV, allow_multi_conn=False, seed=0,
                                       **F64), post=post)
    tb.init_all_states(nn.ModuleList([post, proj]), batch_size=4)
    with tb.environ.context(dt=DT):
        proj(torch.ones(4, 2, **F64))
        post(0.0)
    torch.testing.assert_close(post.V, torch.full((4, 2, 3), 2.0, **F64))


def test_delta_projection_errors():
    post = make_post(4)
    with pytest.raises(tb.UnitError, match="are in nS but a delta projection onto neurons"):
        DeltaProj(comm=EventFixedProb(3, 4, 2, 1 * u.nS), post=post)
    with pytest.raises(tb.UnitError, match="are in pA but a delta projection"):
        DeltaProj(comm=EventFixedProb(3, 4, 2, 1 * u.pA), post=post)
    with pytest.raises(ValueError, match="comm maps onto 3 neurons but post has 4"):
        DeltaProj(comm=EventFixedProb(3, 3, 2, 1 * u.mV), post=post)
    with pytest.raises(TypeError, match="'post' must be a torchbrain population"):
        DeltaProj(comm=EventFixedProb(3, 4, 2, 1 * u.mV), post=nn.Linear(1, 1))
    with pytest.raises(TypeError, match="modules must be nn.Modules"):
        DeltaProj(lambda x: x, comm=EventFixedProb(3, 4, 2, 1 * u.mV), post=post)
    with pytest.raises(ValueError, match="'delay' must be a finite time >= 0"):
        DeltaProj(comm=EventFixedProb(3, 4, 2, 1 * u.mV), post=post, delay=-2 * u.ms)
    with pytest.raises(TypeError, match="unexpected keyword argument 'out'"):
        DeltaProj(comm=EventFixedProb(3, 4, 2, 1 * u.mV), post=post, out=COBA())
