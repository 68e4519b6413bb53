"""Pair-based STDP (trace form): the STDP window, a NumPy float64 loop of the published rule,
dense vs ELL, bounds, the soft-bound closed form, projections, save/restore, copies, errors."""

import copy
import io
import math
import pickle

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.comm.fixed_num import EventFixedProb
from torchbrain.ops import stdp as F
from torchbrain.outputs import COBA, CUBA
from torchbrain.plasticity.stdp import DenseSTDP, FixedNumConnSTDP
from torchbrain.projections.align_post import AlignPostProj
from torchbrain.synapses.expon import Expon

F64 = dict(dtype=torch.float64)
DT = 0.1
TAU_P, TAU_M = 16.8, 33.7


def run_learning(layer, pre, post, dt=DT):
    """Step ``update_weights`` over spike trains ``(T, ..., n)``; return the weights per step."""
    weights = []
    with tb.environ.context(dt=dt * u.ms), torch.no_grad():
        for s_pre, s_post in zip(pre, post, strict=True):
            layer(s_pre)
            layer.update_weights(s_pre, s_post)
            weights.append(layer.weight.clone())
    return torch.stack(weights)


def numpy_stdp(pre, post, syn_pre, syn_post, w0, *, dt, tau_p, tau_m, a_p, a_m, w_min, w_max,
               multiplicative):
    """The rule of Morrison et al. (2008) per synapse, in float64, one time step at a time.

    ``syn_pre``/``syn_post`` list the two ends of every synapse; ``pre``/``post`` are
    ``(T, B, n)`` spike trains. Returns the weights after every step ``(T, n_syn)``.
    """
    pre, post = np.asarray(pre, np.float64), np.asarray(post, np.float64)
    x_pre = np.zeros(pre.shape[1:])
    x_post = np.zeros(post.shape[1:])
    w = np.array(w0, np.float64).copy()
    span = w_max - w_min
    out = []
    for t in range(pre.shape[0]):
        x_pre *= math.exp(-dt / tau_p)
        x_post *= math.exp(-dt / tau_m)
        # a presynaptic spike meets the post trace of earlier post spikes: depression
        dep = (pre[t][:, syn_pre] * x_post[:, syn_post]).sum(0)
        w = w - a_m * dep * ((w - w_min) / span if multiplicative else 1.0)
        w = np.clip(w, w_min, w_max)
        # a postsynaptic spike meets the pre trace of earlier pre spikes: potentiation
        pot = (post[t][:, syn_post] * x_pre[:, syn_pre]).sum(0)
        w = w + a_p * pot * ((w_max - w) / span if multiplicative else 1.0)
        w = np.clip(w, w_min, w_max)
        x_pre += pre[t]
        x_post += post[t]
        out.append(w.copy())
    return np.stack(out)


def poisson(shape, p, seed):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen, **F64) < p).to(torch.float64)


# -------------------------------------------------------------------- STDP window
LAGS = [-400, -100, -20, -5, -1, 0, 1, 5, 20, 100, 400]  # steps of 0.1 ms


def window_run(make, multiplicative):
    """Pre neuron i spikes once at 450 + lag_i... the single post neuron once at step 450."""
    n = len(LAGS)
    T = 900
    pre = torch.zeros(T, n, **F64)
    post = torch.zeros(T, 1, **F64)
    post[450, 0] = 1.0
    for i, lag in enumerate(LAGS):
        pre[450 - lag, i] = 1.0   # lag = t_post - t_pre in steps
    layer = make(n)
    tb.init_all_states(layer)
    w0 = layer.weight.clone()
    return (run_learning(layer, pre, post)[-1] - w0).reshape(-1)


@pytest.mark.parametrize("form", ["dense", "ell"])
@pytest.mark.parametrize("rule", ["additive", "multiplicative"])
def test_single_pairs_follow_the_stdp_window(form, rule):
    a_p, a_m, w0, w_min, w_max = 0.01, 0.012, 0.4, 0.0, 1.0
    kw = dict(tau_plus=TAU_P * u.ms, tau_minus=TAU_M * u.ms, A_plus=a_p * u.nS,
              A_minus=a_m * u.nS, w_min=w_min * u.nS, w_max=w_max * u.nS, rule=rule, **F64)

    def make(n):
        if form == "dense":
            return DenseSTDP(n, 1, w0 * u.nS, **kw)
        return FixedNumConnSTDP(n, 1, None, w0 * u.nS, indices=torch.zeros(n, 1, dtype=int),
                                **kw)

    dw = window_run(make, rule == "multiplicative")
    scale_p = (w_max - w0) / (w_max - w_min) if rule == "multiplicative" else 1.0
    scale_m = (w0 - w_min) / (w_max - w_min) if rule == "multiplicative" else 1.0
    expected = []
    for lag in LAGS:
        t = lag * DT
        if lag > 0:
            expected.append(a_p * math.exp(-t / TAU_P) * scale_p)
        elif lag < 0:
            expected.append(-a_m * math.exp(t / TAU_M) * scale_m)
        else:
            expected.append(0.0)  # simultaneous spikes do not pair
    torch.testing.assert_close(dw, torch.tensor(expected, **F64), atol=1e-6, rtol=0)
    assert dw[LAGS.index(0)] == 0.0


# ------------------------------------------------------- NumPy float64 reference loop
RULE = dict(tau_plus=TAU_P * u.ms, tau_minus=TAU_M * u.ms, A_plus=0.03 * u.nS,
            A_minus=0.035 * u.nS, w_min=0.0 * u.nS, w_max=1.0 * u.nS)
NP_RULE = dict(dt=DT, tau_p=TAU_P, tau_m=TAU_M, a_p=0.03, a_m=0.035, w_min=0.0, w_max=1.0)


@pytest.mark.parametrize("rule", ["additive", "multiplicative"])
@pytest.mark.parametrize("batch", [None, 3])
def test_dense_matches_numpy_loop_step_by_step(rule, batch):
    n_pre, n_post, T = 7, 5, 250
    lead = () if batch is None else (batch,)
    pre = poisson((T, *lead, n_pre), 0.08, 1)
    post = poisson((T, *lead, n_post), 0.08, 2)
    w0 = torch.rand(n_pre, n_post, generator=torch.Generator().manual_seed(3), **F64)
    layer = DenseSTDP(n_pre, n_post, w0 * u.nS, rule=rule, **RULE, **F64)
    tb.init_all_states(layer, batch_size=batch)
    got = run_learning(layer, pre, post).reshape(T, -1)
    syn_pre, syn_post = np.divmod(np.arange(n_pre * n_post), n_post)
    ref = numpy_stdp(pre.reshape(T, -1, n_pre), post.reshape(T, -1, n_post), syn_pre, syn_post,
                     w0.reshape(-1).numpy(), multiplicative=rule == "multiplicative", **NP_RULE)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-9, rtol=0)
    assert got.min() == 0.0 or rule == "multiplicative"  # the additive run hits a bound


@pytest.mark.parametrize("rule", ["additive", "multiplicative"])
@pytest.mark.parametrize("multi", [True, False])
def test_ell_matches_numpy_loop_step_by_step(rule, multi):
    n_pre, n_post, K, T, B = 9, 6, 4, 250, 2
    pre = poisson((T, B, n_pre), 0.08, 4)
    post = poisson((T, B, n_post), 0.1, 5)
    layer = FixedNumConnSTDP(n_pre, n_post, K, tb.init.Uniform(0.2 * u.nS, 0.8 * u.nS),
                             allow_multi_conn=multi, seed=7, rule=rule, **RULE, **F64)
    if multi:  # the seeded table has duplicate targets: distinct synapses, each learning
        assert any(len(set(r)) < K for r in layer.indices.tolist())
    w0 = layer.weight.clone()
    tb.init_all_states(layer, batch_size=B)
    got = run_learning(layer, pre, post).reshape(T, -1)
    syn_pre = np.repeat(np.arange(n_pre), K)
    syn_post = layer.indices.reshape(-1).long().numpy()
    ref = numpy_stdp(pre, post, syn_pre, syn_post, w0.reshape(-1).numpy(),
                     multiplicative=rule == "multiplicative", **NP_RULE)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-9, rtol=0)


def test_dense_and_ell_agree_on_the_same_connectivity():
    n_pre, n_post, K, T, B = 12, 10, 4, 200, 2
    ell = FixedNumConnSTDP(n_pre, n_post, K, tb.init.Uniform(0.1 * u.nS, 0.9 * u.nS),
                           allow_multi_conn=False, seed=11, **RULE, **F64)
    mask = ell.to_dense() != 0
    dense = DenseSTDP(n_pre, n_post, ell.to_dense() * u.nS, **RULE, **F64)
    pre = poisson((T, B, n_pre), 0.1, 6)
    post = poisson((T, B, n_post), 0.1, 7)
    for layer in (ell, dense):
        tb.init_all_states(layer, batch_size=B)
    with tb.environ.context(dt=DT * u.ms), torch.no_grad():
        for s_pre, s_post in zip(pre, post, strict=True):
            y_ell = ell(s_pre)
            y_dense = dense(s_pre * 1.0) - s_pre @ (dense.weight * ~mask)  # unconnected removed
            torch.testing.assert_close(y_ell, y_dense, atol=1e-12, rtol=0)
            for layer in (ell, dense):
                layer.update_weights(s_pre, s_post)
    # every connected pair learned exactly as the corresponding dense entry
    torch.testing.assert_close(ell.to_dense()[mask], dense.weight[mask], atol=1e-12, rtol=0)
    torch.testing.assert_close(ell.x_pre, dense.x_pre, atol=0, rtol=0)
    torch.testing.assert_close(ell.x_post, dense.x_post, atol=0, rtol=0)


def test_event_driven_update_equals_the_outer_product_reference_and_touches_only_spikers():
    gen = torch.Generator().manual_seed(0)
    n_pre, n_post, B = 50, 40, 3
    w = torch.rand(n_pre, n_post, generator=gen, **F64)
    pre = torch.zeros(B, n_pre, **F64)
    post = torch.zeros(B, n_post, **F64)
    pre[0, 3] = pre[2, 17] = pre[1, 17] = 1.0
    post[1, 5] = 0.5  # graded
    x_pre = torch.rand(B, n_pre, generator=gen, **F64)
    x_post = torch.rand(B, n_post, generator=gen, **F64)
    for mult in (False, True):
        kw = dict(A_plus=0.2, A_minus=0.3, w_min=0.0, w_max=1.0, multiplicative=mult)
        ref = F.stdp_dense_update_reference(w, pre, post, x_pre, x_post, **kw)
        got = F.stdp_dense_update(w, pre, post, x_pre, x_post, **kw)
        torch.testing.assert_close(got, ref, atol=1e-14, rtol=0)
        changed = (got != w)
        rows = torch.tensor([3, 17])
        outside = changed.clone()
        outside[rows] = False
        outside[:, 5] = False
        assert not outside.any() and changed[rows].any() and changed[:, 5].any()


def test_ell_update_touches_only_rows_of_pre_spikes_and_synapses_onto_post_spikes():
    gen = torch.Generator().manual_seed(2)
    idx = torch.randint(0, 30, (40, 6), generator=gen, dtype=torch.int32)
    w = torch.rand(40, 6, generator=gen, **F64)
    indptr, slots = F.ell_post_csr(idx, 30)
    pre, post = torch.zeros(40, **F64), torch.zeros(30, **F64)
    pre[[4, 9]] = 1.0
    post[7] = 1.0
    x_pre, x_post = torch.rand(40, generator=gen, **F64), torch.rand(30, generator=gen, **F64)
    got = F.stdp_ell_update(w, idx, indptr, slots, pre, post, x_pre, x_post, A_plus=0.1,
                            A_minus=0.1, w_max=1.0)
    allowed = torch.zeros(40, 6, dtype=torch.bool)
    allowed[[4, 9]] = True
    allowed |= idx == 7
    changed = got != w
    assert not (changed & ~allowed).any() and changed.sum() == allowed.sum()


def test_per_neuron_time_constants():
    lags = torch.tensor([3, 10, 40, 90])
    taus = torch.tensor([5.0, 10.0, 20.0, 40.0], **F64)
    T = 200
    # potentiation windows of 4 presynaptic neurons onto one post neuron
    pre = torch.zeros(T, 4, **F64)
    post = torch.zeros(T, 1, **F64)
    post[150] = 1.0
    pre[150 - lags, torch.arange(4)] = 1.0
    layer = DenseSTDP(4, 1, 0.5, tau_plus=taus * u.ms, A_plus=0.01, w_max=1.0, **F64)
    tb.init_all_states(layer)
    dw = run_learning(layer, pre, post)[-1].reshape(-1) - 0.5
    expected = 0.01 * torch.exp(-lags.double() * DT / taus)
    torch.testing.assert_close(dw, expected, atol=1e-12, rtol=0)
    # depression windows of one presynaptic neuron onto 4 post neurons
    pre, post = torch.zeros(T, 1, **F64), torch.zeros(T, 4, **F64)
    pre[150] = 1.0
    post[150 - lags, torch.arange(4)] = 1.0
    layer = DenseSTDP(1, 4, 0.5, tau_minus=taus, A_minus=0.02, w_max=1.0, **F64)
    tb.init_all_states(layer)
    dw = run_learning(layer, pre, post)[-1].reshape(-1) - 0.5
    expected = -0.02 * torch.exp(-lags.double() * DT / taus)
    torch.testing.assert_close(dw, expected, atol=1e-12, rtol=0)


def test_batched_changes_sum_over_the_batch():
    gen = torch.Generator().manual_seed(1)
    w = torch.full((6, 4), 5.0, **F64)
    pre, post = poisson((2, 6), 0.5, 8), poisson((2, 4), 0.5, 9)
    x_pre, x_post = torch.rand(2, 6, generator=gen, **F64), torch.rand(2, 4, generator=gen, **F64)
    kw = dict(A_plus=0.1, A_minus=0.2)
    both = F.stdp_dense_update(w, pre, post, x_pre, x_post, **kw) - w
    each = sum(F.stdp_dense_update(w, pre[b], post[b], x_pre[b], x_post[b], **kw) - w
               for b in range(2))
    torch.testing.assert_close(both, each, atol=1e-14, rtol=0)


# ----------------------------------------------------------------- bounds, closed form
@pytest.mark.parametrize("rule", ["additive", "multiplicative"])
def test_weights_stay_within_bounds_under_heavy_activity(rule):
    T, B = 100, 4
    layer = FixedNumConnSTDP(20, 15, 6, tb.init.Uniform(-1.0 * u.mV, 2.0 * u.mV),
                             A_plus=0.5 * u.mV, A_minus=0.6 * u.mV, w_min=-1 * u.mV,
                             w_max=2 * u.mV, rule=rule, seed=3)
    dense = DenseSTDP(20, 15, tb.init.Uniform(-1.0, 2.0), A_plus=0.5, A_minus=0.6,
                      w_min=-1.0, w_max=2.0, rule=rule)
    for net in (layer, dense):
        tb.init_all_states(net, batch_size=B)
        w = run_learning(net, poisson((T, B, 20), 0.4, 10).float(),
                         poisson((T, B, 15), 0.4, 11).float())
        assert w.min() >= -1.0 and w.max() <= 2.0
        if rule == "additive":  # clipping is active
            assert (w == -1.0).any() and (w == 2.0).any()


def test_soft_bound_rule_matches_its_closed_form():
    # fixed traces and one spike per call: w_n = w_max - (w_max - w_0) (1 - A c / span)^n
    w_min, w_max, a, c = -0.5, 2.0, 0.3, 0.7
    span = w_max - w_min
    w0 = torch.tensor([[-0.2, 0.5, 1.9]], **F64)
    one, zero3 = torch.ones(1, **F64), torch.zeros(3, **F64)
    kw = dict(A_plus=a, A_minus=a, w_min=w_min, w_max=w_max, multiplicative=True)
    w = w0.clone()
    for _ in range(25):
        w = F.stdp_dense_update(w, torch.zeros(1, **F64), torch.ones(3, **F64),
                                torch.full((1,), c, **F64), zero3, **kw)
    n = 25
    torch.testing.assert_close(w, w_max - (w_max - w0) * (1 - a * c / span) ** n,
                               atol=1e-12, rtol=0)
    w = w0.clone()
    for _ in range(n):
        w = F.stdp_dense_update(w, one, torch.zeros(3, **F64), torch.zeros(1, **F64),
                                torch.full((3,), c, **F64), **kw)
    torch.testing.assert_close(w, w_min + (w0 - w_min) * (1 - a * c / span) ** n,
                               atol=1e-12, rtol=0)


def test_ell_post_csr_lists_every_synapse_once_by_target():
    idx = torch.tensor([[2, 0, 2], [1, 1, 3], [0, 3, 2]], dtype=torch.int32)
    indptr, slots = F.ell_post_csr(idx, 5)
    assert indptr.dtype == torch.int32 and slots.dtype == torch.int32
    assert indptr.tolist() == [0, 2, 4, 7, 9, 9]
    assert slots.tolist() == [1, 6, 3, 4, 0, 2, 8, 5, 7]
    for j in range(5):
        assert all(idx.reshape(-1)[s] == j for s in slots[indptr[j]:indptr[j + 1]].tolist())


# --------------------------------------------------------- write rule, eval, projection
def test_inplace_without_grad_and_rebinding_with_grad():
    layer = DenseSTDP(5, 4, 0.5, w_max=1.0, A_plus=0.1, A_minus=0.1)
    tb.init_all_states(layer)
    ones5, ones4 = torch.ones(5), torch.ones(4)
    with tb.environ.context(dt=DT):
        with torch.no_grad():
            ptr = layer.weight.data_ptr()
            layer.update_weights(ones5, ones4)
            layer.update_weights(ones5, ones4)
            assert layer.weight.data_ptr() == ptr and not torch.all(layer.weight == 0.5)
        # with autograd: the delivery's graph keeps the weights it saved; the update rebinds
        x = torch.ones(5, requires_grad=True)
        y = layer(x)
        old = layer.weight
        before = old.clone()
        layer.update_weights(ones5, ones4)
        assert layer.weight is not old and torch.equal(old, before)
        y.sum().backward()
        torch.testing.assert_close(x.grad, before.sum(1))
        assert not layer.weight.requires_grad and not layer.x_pre.requires_grad


def test_eval_mode_freezes_weights_but_runs_traces():
    layer = FixedNumConnSTDP(5, 4, 2, 0.5, w_max=1.0, seed=0)
    tb.init_all_states(layer)
    layer.eval()
    w = layer.weight.clone()
    with tb.environ.context(dt=DT):
        layer.update_weights(torch.ones(5), torch.ones(4))
        layer.update_weights(torch.ones(5), torch.ones(4))
    assert torch.equal(layer.weight, w)
    torch.testing.assert_close(layer.x_pre, torch.full((5,), 1 + math.exp(-DT / TAU_P)))


def make_net(form, seed=0, batch_size=None):
    torch.manual_seed(seed)
    post = tb.LIF(8, tau=10 * u.ms, V_th=-50 * u.mV, V_rest=-65 * u.mV, V_reset=-65 * u.mV,
                  R=1 * u.gigaohm, V_initializer=tb.init.Constant(-60 * u.mV), **F64)
    rule = dict(A_plus=0.5 * u.pA, A_minus=0.6 * u.pA, w_max=40 * u.pA, **F64)
    if form == "dense":
        comm = DenseSTDP(12, 8, tb.init.Uniform(5 * u.pA, 30 * u.pA), **rule)
    else:
        comm = FixedNumConnSTDP(12, 8, 4, tb.init.Uniform(5 * u.pA, 30 * u.pA), seed=seed,
                                **rule)
    proj = AlignPostProj(comm=comm, syn=Expon.desc(8, tau=5 * u.ms, **F64), out=CUBA.desc(),
                         post=post)
    comm.attach_post(post)
    net = torch.nn.ModuleDict(dict(post=post, proj=proj))
    tb.init_all_states(net, batch_size=batch_size)
    return net


def drive_net(net, pre, n0=0):
    outs, weights = [], []
    with tb.environ.context(dt=DT * u.ms), torch.no_grad():
        for i, s in enumerate(pre):
            with tb.environ.context(t=(n0 + i) * DT):
                net["proj"](s)
                outs.append(net["post"](300.0))
            weights.append(net["proj"].comm.weight.clone())
    return torch.stack(outs), torch.stack(weights)


@pytest.mark.parametrize("form", ["dense", "ell"])
def test_in_a_projection_attach_post_learns_like_explicit_updates(form):
    pre = poisson((100, 2, 12), 0.2, 12)
    net = make_net(form, batch_size=2)
    spikes, weights = drive_net(net, pre)
    assert spikes.sum() > 5  # post fires, so both signs of learning happen
    # the same run by hand: deliver, step post, then update with both spike trains
    other = make_net(form, batch_size=2)
    other["post"].after_updates.clear()
    comm = other["proj"].comm
    with tb.environ.context(dt=DT * u.ms), torch.no_grad():
        for i, s in enumerate(pre):
            with tb.environ.context(t=i * DT):
                other["proj"](s)
                out = other["post"](300.0)
                comm.update_weights(s, out)
            torch.testing.assert_close(comm.weight, weights[i], atol=0, rtol=0)
    assert not torch.equal(weights[-1], weights[0])


def test_weight_unit_is_checked_by_the_projection():
    post = tb.LIF(4)
    with pytest.raises(tb.UnitError, match="pA"):
        AlignPostProj(comm=DenseSTDP(3, 4, 1 * u.pA), syn=Expon.desc(4), out=COBA.desc(E=0.0),
                      post=post)
    with pytest.raises(ValueError, match="5 neurons, got LIF with 4"):
        DenseSTDP(3, 5, 1 * u.nS).attach_post(post)


@pytest.mark.parametrize("form", ["dense", "ell"])
def test_state_save_and_restore_continues_exactly(form):
    pre = poisson((80, 3, 12), 0.2, 13)
    net = make_net(form, seed=1, batch_size=3)
    drive_net(net, pre[:30])
    # Like nn.Module.state_dict, the dict holds the live weight tensor, which learning under
    # no_grad updates in place: snapshot it (as one does with parameters and optimizer.step).
    saved = copy.deepcopy(tb.state_dict(net))
    assert "proj.comm.weight" in net.state_dict()  # LongTermState: in the plain state_dict
    first = drive_net(net, pre[30:], 30)
    tb.reset_all_states(net, batch_size=5)
    tb.load_state_dict(net, saved)
    second = drive_net(net, pre[30:], 30)
    fresh = make_net(form, seed=2)  # a different table, unbatched
    tb.load_state_dict(fresh, saved)
    third = drive_net(fresh, pre[30:], 30)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(first, third, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("form", ["dense", "ell"])
def test_deepcopy_pickle_and_to_float32(form):
    pre = poisson((40, 2, 12), 0.2, 14)
    net = make_net(form, batch_size=2)
    drive_net(net, pre[:10])
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    copies = [copy.deepcopy(net), pickle.loads(pickle.dumps(net)),
              torch.load(buf, weights_only=False)]
    expected = drive_net(copy.deepcopy(net), pre[10:], 10)
    for other in copies:
        # the copied hook drives the copied layer, not the original
        assert other["post"].after_updates[next(iter(other["post"].after_updates))].__dict__[
            "stdp"] is other["proj"].comm
        got = drive_net(other, pre[10:], 10)
        for a, b in zip(expected, got, strict=True):
            assert torch.equal(a, b)
    net32 = copy.deepcopy(net).to(torch.float32)
    comm = net32["proj"].comm
    assert comm.weight.dtype == torch.float32 and comm.x_pre.dtype == torch.float32
    tb.reset_all_states(net32, batch_size=2)
    assert comm.x_post.dtype == torch.float32
    drive_net(net32, pre[10:15].float())


def test_batch_size_and_readiness_errors():
    layer = DenseSTDP(3, 2, 0.5)
    with tb.environ.context(dt=DT):
        with pytest.raises(RuntimeError, match="init_all_states"):
            layer.update_weights(torch.ones(3), torch.ones(2))
        tb.init_all_states(layer, batch_size=4)
        assert layer.x_pre.shape == (4, 3) and layer.x_post.shape == (4, 2)
        with pytest.raises(ValueError, match="batch size"):
            layer.update_weights(torch.ones(5, 3), torch.ones(5, 2))
        with pytest.raises(ValueError, match="expected 2"):
            layer.update_weights(torch.ones(4, 3), torch.ones(4, 3))
    with pytest.raises(KeyError, match="dt"):
        layer.update_weights(torch.ones(4, 3), torch.ones(4, 2))


def test_compile_fullgraph_matches_eager():
    # first with autograd on (the update rebinds the weights), then under no_grad (in place)
    torch._dynamo.reset()
    nets = [make_net(f, batch_size=2) for f in ("dense", "ell")]
    initial = [net["proj"].comm.weight.clone() for net in nets]
    compiled_nets = copy.deepcopy(nets)
    pre = poisson((16, 2, 12), 0.3, 15)

    def step(nets, s, t):
        with tb.environ.context(t=t):
            out = []
            for net in nets:
                net["proj"](s)
                out.append(net["post"](300.0))
            return out

    compiled = tb.compile(step, fullgraph=True)
    with tb.environ.context(dt=DT):
        for i, s in enumerate(pre):
            with torch.set_grad_enabled(i < 8):
                t = torch.tensor(i * DT, **F64)
                expected = step(nets, s, t)
                got = compiled(compiled_nets, s, t)
            torch.testing.assert_close(got, expected)
    for a, b, w0 in zip(nets, compiled_nets, initial, strict=True):
        for (k, va), vb in zip(tb.states(a).items(), tb.states(b).values(), strict=True):
            torch.testing.assert_close(va, vb, msg=k)
        assert not torch.equal(b["proj"].comm.weight, w0)


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(tau_plus=-1 * u.ms), ValueError, "'tau_plus' must be positive"),
    (dict(tau_minus=0.0), ValueError, "'tau_minus' must be positive"),
    (dict(tau_plus=5 * u.mV), tb.UnitError, "'tau_plus'"),
    (dict(A_plus=0.01 * u.ms), tb.UnitError, "'A_plus'"),
    (dict(A_minus=0.01 * u.pA), tb.UnitError, "'A_minus'"),
    (dict(w_max=1 * u.mV), tb.UnitError, "'w_max'"),
    (dict(A_minus=-0.1), ValueError, "'A_minus' must be >= 0"),
    (dict(w_min=2.0, w_max=1.0), ValueError, "must not exceed"),
    (dict(w_max=0.2), ValueError, "within"),
    (dict(rule="multiplicative"), ValueError, "finite"),
    (dict(rule="hebbian"), ValueError, "'rule'"),
    (dict(A_plus=torch.ones(3)), ValueError, "scalar"),
])
def test_bad_parameters_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        DenseSTDP(3, 2, 0.5 * u.nS, **kwargs)
    with pytest.raises(error, match=match):
        FixedNumConnSTDP(3, 2, 2, 0.5 * u.nS, seed=0, **kwargs)


def test_bad_connectivity_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        DenseSTDP(3, 2, torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        FixedNumConnSTDP(3, 2, None, 0.5, indices=torch.full((3, 1), 2))
    with pytest.raises(ValueError, match="disagrees"):
        FixedNumConnSTDP(3, 2, 2, 0.5, indices=torch.zeros(3, 1, dtype=int))
    with pytest.raises(ValueError, match="conn_num"):
        FixedNumConnSTDP(3, 2, None, 0.5)
    with pytest.raises(TypeError, match="conn_num"):
        FixedNumConnSTDP(3, 2, "4", 0.5)


def test_from_comm_copies_table_weights_and_unit():
    static = EventFixedProb(10, 7, 3, tb.init.Uniform(0.1 * u.nS, 0.5 * u.nS), seed=4)
    plastic = FixedNumConnSTDP.from_comm(static, w_max=1 * u.nS)
    assert plastic.weight_unit == "nS" and torch.equal(plastic.indices, static.indices)
    x = poisson((3, 10), 0.5, 16).float()
    torch.testing.assert_close(plastic(x), static(x))
    assert "rule=additive" in repr(plastic) and "16.8 ms" in repr(plastic)
