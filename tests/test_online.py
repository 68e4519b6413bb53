"""Online learning (EProp, DRTRL, OTTT): gradients against BPTT, memory independent of T.

Theory checks, in float64 against autograd BPTT through the layers of
:mod:`torchbrain.training.layers` (unfused step-by-step path):

* a feed-forward spiking layer: the eligibility-trace gradient *is* the BPTT gradient when the
  trace is exact (EProp and OTTT with ``detach_reset=True``; DRTRL with any reset, LIF and
  ALIF), to 1e-10;
* recurrent LIF/ALIF: EProp and DRTRL approximate BPTT (cosine similarity reported, required
  above 0.8) and are exact when the recurrent weights are zero;
* OTTT on two feed-forward layers: approximate (cosine similarity reported, required above 0.7);
* a leaky readout's own weights get the exact gradient from every learner.

Memory: bytes autograd saves (``SavedTensorMeter``) plus the learner's traces and States at
``T = 1000`` are within 10 % of ``T = 100``; BPTT's grow with ``T``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchbrain as tb
from torchbrain.training.eprop import DRTRL, EProp
from torchbrain.training.layers import (
    LeakyIntegratorReadout,
    MultiStepALIF,
    MultiStepIF,
    MultiStepLIF,
    RecurrentLIF,
)
from torchbrain.training.online import SavedTensorMeter
from torchbrain.training.ottt import OTTT

T, B, NI, N = 30, 3, 5, 4
DT = torch.float64


@pytest.fixture(autouse=True)
def _one_ms_steps():
    """These tests count time in steps of 1 ms (no layer assumes a default step)."""
    with tb.environ.context(dt=1.0):
        yield


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def _grads(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros_like(p).flatten()
                      for p in model.parameters()])


def _data(seed=0, n_in=NI, n=N, steps=T):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(steps, B, n_in, dtype=DT, generator=g)
    cs = torch.randn(steps, B, n, dtype=DT, generator=g)
    ds = torch.randn(steps, B, n, dtype=DT, generator=g)
    return x, cs, ds


def _loss_t(s, h, t, cs, ds):
    """A loss of step t's spikes and pre-reset potentials only."""
    return (s * cs[t]).sum() + 0.1 * (h.square() * ds[t]).sum()


def _single(layer_cls, seed=1, readout=None, scale=3.0, **kw):
    torch.manual_seed(seed)
    lin = nn.Linear(NI, N, dtype=DT)
    with torch.no_grad():  # a positive mean drive: the neurons spike now and then
        lin.weight.normal_(0.15 * scale, 0.3 * scale)
    if layer_cls is MultiStepIF:  # no leak and no input scaling: a weaker drive
        with torch.no_grad():
            lin.weight.mul_(0.15)
        layer = layer_cls(N, dtype=DT, **kw)
    else:
        layer = layer_cls(N, tau=5.0, dtype=DT, **kw)
    mods = [lin, layer] + ([readout()] if readout is not None else [])
    return nn.Sequential(*mods)


def _bptt_hidden(model, x, cs, ds):
    """BPTT through the layers: loss on the hidden layer's spikes and potentials."""
    s, h = model[1](model[0](x), return_v=True)
    loss = sum(_loss_t(s[t], h[t], t, cs, ds) for t in range(x.shape[0]))
    loss.backward()
    return _grads(model)


def _online_hidden(model, learner_cls, x, cs, ds):
    learner = learner_cls(model)
    for t in range(x.shape[0]):
        s = learner.step(x[t])
        h = learner.potentials[0] if isinstance(learner, OTTT) else learner.potential
        learner.accumulate(_loss_t(s, h, t, cs, ds))
    return _grads(model)


# ------------------------------------------------------------------ (1) exact cases
@pytest.mark.parametrize("learner_cls", [EProp, DRTRL, OTTT])
@pytest.mark.parametrize("layer_cls,kw", [
    (MultiStepLIF, dict(detach_reset=True, fused=False)),
    (MultiStepLIF, dict(detach_reset=True, spk_reset="hard", fused=False)),
    (MultiStepLIF, dict(detach_reset=True, decay_input=False, fused=False)),
    (MultiStepIF, dict(detach_reset=True, fused=False)),
    (MultiStepALIF, dict(detach_reset=True, beta=0.5, tau_a=20.0)),
])
def test_feedforward_layer_with_detached_reset_equals_bptt(learner_cls, layer_cls, kw):
    """Exact trace e_t = dH_t/dW (low-pass filtered presynaptic input): online == BPTT."""
    x, cs, ds = _data()
    g_bptt = _bptt_hidden(_single(layer_cls, **kw), x, cs, ds)
    if learner_cls is OTTT and layer_cls is MultiStepALIF:
        # OTTT's trace holds only the membrane path; the adaptation's is left out.
        g = _online_hidden(_single(layer_cls, **kw), learner_cls, x, cs, ds)
        assert _cos(g, g_bptt) > 0.9
        return
    g = _online_hidden(_single(layer_cls, **kw), learner_cls, x, cs, ds)
    assert g.abs().max() > 0.1  # the task is not trivial: neurons spike, gradients flow
    torch.testing.assert_close(g, g_bptt, rtol=0, atol=1e-10)


@pytest.mark.parametrize("layer_cls,kw", [
    (MultiStepLIF, dict(fused=False)),
    (MultiStepLIF, dict(spk_reset="hard", fused=False)),
    (MultiStepLIF, dict()),                              # fused op as the BPTT reference
    (MultiStepALIF, dict(beta=0.5, tau_a=20.0)),
    (MultiStepALIF, dict(beta=0.5, tau_a=20.0, spk_reset="hard")),
])
def test_drtrl_is_exact_for_a_feedforward_layer_with_any_reset(layer_cls, kw):
    x, cs, ds = _data(seed=2)
    g_bptt = _bptt_hidden(_single(layer_cls, **kw), x, cs, ds)
    g = _online_hidden(_single(layer_cls, **kw), DRTRL, x, cs, ds)
    torch.testing.assert_close(g, g_bptt, rtol=0, atol=1e-10)
    # e-prop leaves the reset's derivative out: close, not equal.
    g_e = _online_hidden(_single(layer_cls, **kw), EProp, x, cs, ds)
    assert 0.8 < _cos(g_e, g_bptt) < 1 - 1e-6


def test_per_neuron_time_constants_use_per_synapse_traces_and_stay_exact():
    x, cs, ds = _data(seed=3)
    tau = torch.linspace(2.0, 10.0, N, dtype=DT)
    g_bptt = _bptt_hidden(_per_tau(tau), x, cs, ds)
    model = _per_tau(tau)
    learner = EProp(model)
    for t in range(T):
        s = learner.step(x[t])
        learner.accumulate(_loss_t(s, learner.potential, t, cs, ds))
    assert learner._eH.shape[1] == N  # per synapse: the decay differs per neuron
    torch.testing.assert_close(_grads(model), g_bptt, rtol=0, atol=1e-10)


def _per_tau(tau):
    torch.manual_seed(1)
    lin = nn.Linear(NI, N, dtype=DT)
    with torch.no_grad():
        lin.weight.mul_(3.0)
    return nn.Sequential(lin, MultiStepLIF(N, tau=tau, detach_reset=True, fused=False, dtype=DT))


def test_the_online_forward_is_the_layers_forward():
    """Same spikes and readout as the layers' own multi-step forward."""
    x, _, _ = _data(seed=4, steps=40)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(NI, 6, dtype=DT),
                          RecurrentLIF(6, tau=4.0, adaptive=True, beta=0.3, tau_a=30.0,
                                       dtype=DT, spk_reset="hard"),
                          LeakyIntegratorReadout(6, 2, tau=8.0, decay_input=True, dtype=DT))
    with torch.no_grad():
        model[0].weight.mul_(4.0)
        model[1].rec.weight.normal_(0, 1.0)
        model[1].rec.weight.mul_(model[1].rec_mask)
        y_ref = model(x)
        tb.reset_all_states(model)
        spikes_ref = model[1](model[0](x))
        tb.reset_all_states(model)
    for cls in (EProp, DRTRL):
        learner = cls(model)
        ys, ss = [], []
        for t in range(x.shape[0]):
            ys.append(learner.step(x[t]).detach())
            ss.append(learner.spikes.detach())
        torch.testing.assert_close(torch.stack(ys), y_ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(torch.stack(ss), spikes_ref, rtol=0, atol=0)
        assert spikes_ref.sum() > 10
    # OTTT on a feed-forward stack, and outputs under no_grad (evaluation)
    torch.manual_seed(0)
    ff = nn.Sequential(nn.Linear(NI, 6, dtype=DT), MultiStepALIF(6, tau=4.0, dtype=DT),
                       nn.Linear(6, 3, dtype=DT), MultiStepIF(3, dtype=DT),
                       LeakyIntegratorReadout(3, 2, tau=8.0, dtype=DT))
    with torch.no_grad():
        ff[0].weight.mul_(4.0)
        ref = ff(x)
        out, _ = OTTT(ff).run(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    learner = EProp(model)
    with torch.no_grad():
        out, _ = learner.run(x)
    torch.testing.assert_close(out, y_ref, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ readout
@pytest.mark.parametrize("learner_cls", [EProp, DRTRL, OTTT])
def test_leaky_readout_weights_get_the_exact_gradient(learner_cls):
    x, _, _ = _data(seed=5)
    target = torch.tensor([0, 1, 1])

    def build():
        return _single(MultiStepLIF, readout=lambda: LeakyIntegratorReadout(N, 2, tau=10.0,
                                                                             dtype=DT),
                       detach_reset=True, fused=False)

    model = build()
    y = model(x)
    sum(F.cross_entropy(y[t], target) for t in range(T)).backward()
    ro_bptt = [p.grad.clone() for p in model[2].parameters()]
    hidden_bptt = torch.cat([p.grad.flatten() for p in model[0].parameters()])
    model = build()
    learner_cls(model).run(x, lambda y_t, t: F.cross_entropy(y_t, target))
    assert ro_bptt[0].abs().max() > 0.1  # the hidden layer spikes
    for p, ref in zip(model[2].parameters(), ro_bptt, strict=True):
        torch.testing.assert_close(p.grad, ref, rtol=0, atol=1e-10)
    # the hidden layer's learning signal is the immediate one: approximate
    hidden = torch.cat([p.grad.flatten() for p in model[0].parameters()])
    assert _cos(hidden, hidden_bptt) > 0.8


def test_without_readout_filter_the_whole_gradient_is_exact():
    """A plain Linear readout (no filter) keeps every learning signal in its step."""
    x, _, _ = _data(seed=6)
    target = torch.tensor([1, 0, 1])

    def build():
        return _single(MultiStepLIF, readout=lambda: nn.Linear(N, 2, dtype=DT),
                       detach_reset=True, fused=False)

    model = build()
    y = model(x)
    sum(F.cross_entropy(y[t], target) for t in range(T)).backward()
    ref = _grads(model)
    for cls in (EProp, DRTRL, OTTT):
        model = build()
        cls(model).run(x, lambda y_t, t: F.cross_entropy(y_t, target))
        torch.testing.assert_close(_grads(model), ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("learner_cls,layer_cls,kw", [
    (EProp, MultiStepLIF, dict(detach_reset=True, fused=False)),
    (EProp, MultiStepALIF, dict(detach_reset=True, beta=0.5, tau_a=20.0)),
    (DRTRL, MultiStepLIF, dict(fused=False)),
    (DRTRL, MultiStepALIF, dict(beta=0.5, tau_a=20.0, spk_reset="hard")),
])
def test_filtered_traces_make_a_leaky_readout_exact(learner_cls, layer_cls, kw):
    """Bellec et al.'s readout-filtered eligibility traces: a spike's later effect through the
    readout's decay is counted, so the whole gradient equals BPTT's (feed-forward layer)."""
    x, _, ds = _data(seed=7)
    target = torch.tensor([0, 1, 1])

    def build():
        return _single(layer_cls, readout=lambda: LeakyIntegratorReadout(N, 2, tau=10.0,
                                                                         dtype=DT), **kw)

    def step_loss(y_t, h_t, t):  # the readout, plus a direct term on the potential
        return F.cross_entropy(y_t, target) + 0.01 * (h_t.square() * ds[t]).sum()

    model = build()
    s, h = model[1](model[0](x), return_v=True)
    y = model[2](s)
    sum(step_loss(y[t], h[t], t) for t in range(T)).backward()
    ref = _grads(model)
    model = build()
    learner = learner_cls(model, filter_readout=True)
    learner.run(x, lambda y_t, t: step_loss(y_t, learner.potential, t))
    torch.testing.assert_close(_grads(model), ref, rtol=0, atol=1e-10)
    assert learner._eF.shape == (B, N, NI + 1)  # per synapse


# ------------------------------------------------------------------ (2) recurrent
def _recurrent(adaptive, seed, rec_scale, **kw):
    torch.manual_seed(seed)
    n = 8
    lin = nn.Linear(NI, n, dtype=DT)
    layer = RecurrentLIF(n, tau=5.0, adaptive=adaptive, beta=0.3, tau_a=20.0, dtype=DT, **kw)
    with torch.no_grad():
        lin.weight.normal_(0.45, 0.9)
        layer.rec.weight.normal_(0.0, rec_scale / n ** 0.5)
        layer.rec.weight.mul_(layer.rec_mask)
    return nn.Sequential(lin, layer)


def _recurrent_grads(model, learner_cls, x, cs, ds):
    if learner_cls is None:
        return _bptt_hidden(model, x, cs, ds)
    return _online_hidden(model, learner_cls, x, cs, ds)


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("learner_cls", [EProp, DRTRL])
def test_recurrent_layer_gradient_approximates_bptt(adaptive, learner_cls):
    """E-prop / D-RTRL drop the paths through other neurons: reported cosine similarity."""
    sims = []
    for seed in range(3):
        x, cs, ds = _data(seed=10 + seed, n=8)
        ref = _recurrent_grads(_recurrent(adaptive, seed, 1.0), None, x, cs, ds)
        g = _recurrent_grads(_recurrent(adaptive, seed, 1.0), learner_cls, x, cs, ds)
        sims.append(_cos(g, ref))
    print(f"\n{learner_cls.__name__} recurrent {'ALIF' if adaptive else 'LIF'}: cosine "
          f"similarity with BPTT {[round(s, 4) for s in sims]}")
    assert min(sims) > 0.8
    assert max(sims) < 1 - 1e-6  # an approximation indeed


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("learner_cls,kw", [
    (DRTRL, dict()),
    (DRTRL, dict(spk_reset="hard")),
    (EProp, dict(detach_reset=True)),
])
def test_recurrent_layer_with_zero_recurrent_weights_is_exact(adaptive, learner_cls, kw):
    """With W_rec = 0 the Jacobian is diagonal; the recurrent weights' gradient (through the
    previous spikes) is exact too, and the masked diagonal gets none."""
    x, cs, ds = _data(seed=20, n=8)
    ref = _recurrent_grads(_recurrent(adaptive, 0, 0.0, **kw), None, x, cs, ds)
    model = _recurrent(adaptive, 0, 0.0, **kw)
    g = _recurrent_grads(model, learner_cls, x, cs, ds)
    torch.testing.assert_close(g, ref, rtol=0, atol=1e-10)
    rec_grad = model[1].rec.weight.grad
    assert rec_grad.abs().max() > 1e-3 and bool((rec_grad.diagonal() == 0).all())


# ------------------------------------------------------------------ (3) OTTT
def test_ottt_two_layers_approximates_bptt():
    sims = []
    for seed in range(3):
        g = torch.Generator().manual_seed(30 + seed)
        x = torch.rand(T, B, NI, dtype=DT, generator=g)
        target = torch.randint(0, 3, (B,), generator=g)

        def build(seed=seed):
            torch.manual_seed(seed)
            model = nn.Sequential(
                nn.Linear(NI, 8, dtype=DT), MultiStepLIF(8, tau=5.0, detach_reset=True,
                                                          fused=False, dtype=DT),
                nn.Linear(8, 6, dtype=DT), MultiStepLIF(6, tau=5.0, detach_reset=True,
                                                         fused=False, dtype=DT),
                nn.Linear(6, 3, dtype=DT))
            with torch.no_grad():
                model[0].weight.normal_(0.45, 0.9)
                model[2].weight.normal_(1.0, 1.0)
            return model

        model = build()
        y = model(x)
        sum(F.cross_entropy(y[t], target) for t in range(T)).backward()
        ref = _grads(model)
        model = build()
        OTTT(model).run(x, lambda y_t, t, target=target: F.cross_entropy(y_t, target))
        sims.append(_cos(_grads(model), ref))
        assert model[4].weight.grad.abs().max() > 1e-3  # the second layer spikes
    print(f"\nOTTT two feed-forward LIF layers: cosine similarity with BPTT "
          f"{[round(s, 5) for s in sims]}")
    assert min(sims) > 0.7
    assert max(sims) < 1 - 1e-8  # an approximation indeed


# ------------------------------------------------------------------ memory
def _peak_online(learner_cls, model, steps):
    x = torch.rand(steps, 4, 10)
    learner = learner_cls(model)
    worst = 0
    with SavedTensorMeter() as meter:
        learner.reset()
        for t in range(steps):
            out = learner.step(x[t])
            learner.accumulate(out.square().mean())
            worst = max(worst, learner.state_bytes())
    return meter.peak_bytes + worst, learner


def _peak_bptt(model, steps):
    x = torch.rand(steps, 4, 10)
    tb.reset_all_states(model)
    with SavedTensorMeter() as meter:
        model(x).square().mean().backward()
    tb.reset_all_states(model)
    return meter.peak_bytes


@pytest.mark.parametrize("learner_cls", [EProp, DRTRL, OTTT])
def test_memory_does_not_grow_with_sequence_length(learner_cls):
    torch.manual_seed(0)
    if learner_cls is OTTT:
        model = nn.Sequential(nn.Linear(10, 16), MultiStepLIF(16, tau=5.0), nn.Linear(16, 16),
                              MultiStepLIF(16, tau=5.0), LeakyIntegratorReadout(16, 2))
    else:
        model = nn.Sequential(nn.Linear(10, 16), RecurrentLIF(16, adaptive=True, tau=5.0),
                              LeakyIntegratorReadout(16, 2))
    short, learner = _peak_online(learner_cls, model, 100)
    long, _ = _peak_online(learner_cls, model, 1000)
    assert learner.trace_bytes() > 0
    assert abs(long - short) <= 0.1 * short, (short, long)
    b_short, b_long = _peak_bptt(model, 100), _peak_bptt(model, 1000)
    assert b_long > 5 * b_short and b_short > short


def test_eprop_lif_traces_live_on_the_presynaptic_population():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), RecurrentLIF(16, tau=5.0, detach_reset=True),
                          LeakyIntegratorReadout(16, 2))
    learner = EProp(model)
    learner.step(torch.rand(4, 10))
    learner.step(torch.rand(4, 10))
    pre = 10 + 16 + 1
    # hidden: (B, 1, n_in + N + 1); readout: (B, 1, N + 1) -- no N x N_pre tensor
    assert learner.trace_bytes() == 4 * 4 * (pre + 16 + 1)
    drtrl = DRTRL(nn.Sequential(nn.Linear(10, 16), RecurrentLIF(16, tau=5.0),
                                LeakyIntegratorReadout(16, 2)))
    drtrl.step(torch.rand(4, 10))
    drtrl.step(torch.rand(4, 10))
    assert drtrl.trace_bytes() == 4 * 4 * (16 * pre + 16 + 1)  # per synapse


def test_saved_tensor_meter_counts_live_and_peak():
    w = torch.ones(1000, requires_grad=True)
    with SavedTensorMeter() as meter:
        loss = (w * torch.full((1000,), 2.0)).sin().sum()
        assert meter.live_bytes >= 8000
        loss.backward()
        assert meter.live_bytes == 0
        loss2 = (w * 3).sum()
        del loss2
    assert meter.peak_bytes >= 8000 and meter.live_bytes == 0


# ------------------------------------------------------------------ the loop
class _CountingOptimizer(torch.optim.SGD):
    def __init__(self, params):
        super().__init__(params, lr=0.0)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


def test_run_updates_every_k_steps_and_at_the_end():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(NI, 6), RecurrentLIF(6), LeakyIntegratorReadout(6, 2))
    opt = _CountingOptimizer(model.parameters())
    x = torch.rand(23, 2, NI)
    target = torch.tensor([0, 1])
    out, loss = EProp(model).run(x, lambda y, t: F.cross_entropy(y, target), optimizer=opt,
                                 update_every=5)
    assert opt.steps == 5 and out.shape == (23, 2, 2) and loss > 0
    opt.steps = 0
    out, loss = EProp(model).run(x.transpose(0, 1), lambda y, t: None, optimizer=opt,
                                 time_major=False, keep_outputs=False)
    assert opt.steps == 1 and out is None and loss == 0
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())


def test_online_updates_change_the_weights_within_a_sequence():
    """Every-step updates: the weights move while the traces carry on."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(NI, 6), MultiStepLIF(6, tau=5.0, decay_input=False),
                          LeakyIntegratorReadout(6, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    learner = OTTT(model)
    before = model[0].weight.detach().clone()
    x = torch.rand(10, 2, NI) * 2
    for t in range(10):
        y = learner.step(x[t])
        learner.accumulate(F.cross_entropy(y, torch.tensor([0, 1])))
        learner.apply(opt)
        assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    assert not torch.equal(before, model[0].weight)


def test_a_temporal_task_is_learned_online():
    """Remember which of two input groups was active at the start, answer after a delay (an
    LSNN trained with e-prop, a per-step firing-rate penalty on the spikes)."""
    torch.manual_seed(0)
    T_, B_ = 40, 32
    model = nn.Sequential(nn.Linear(4, 32),
                          RecurrentLIF(32, tau=10.0, adaptive=True, tau_a=200.0, beta=0.3,
                                       detach_reset=True, decay_input=False),
                          LeakyIntegratorReadout(32, 2, tau=10.0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    learner = EProp(model)
    gen = torch.Generator().manual_seed(0)

    def batch(size=B_):
        y = torch.randint(0, 2, (size,), generator=gen)
        prob = torch.full((T_, size, 4), 0.02)
        prob[:10, torch.arange(size), y] = 0.6     # the cue: group 0 or 1
        prob[-10:, :, 3] = 0.6                     # the recall cue
        return torch.bernoulli(prob, generator=gen), y

    def loss_fn(y):
        def step_loss(out, t):
            loss = 0.1 * learner.spikes.mean(0).sub(0.05).square().sum() / T_
            if t >= T_ - 10:
                loss = loss + F.cross_entropy(out, y) / 10
            return loss
        return step_loss

    for _ in range(40):
        x, y = batch()
        learner.run(x, loss_fn(y), optimizer=opt)
    x, y = batch(256)
    with torch.no_grad():
        out, _ = learner.run(x)
    acc = float((out[-10:].mean(0).argmax(-1) == y).float().mean())
    assert acc >= 0.85, acc


# ------------------------------------------------------------------ errors
def test_errors_name_the_learner_and_the_fix():
    lif = MultiStepLIF(4, tau=5.0)
    with pytest.raises(TypeError, match=r"EProp: expected a model \[nn.Linear\]"):
        EProp(nn.Sequential(nn.Linear(3, 4), nn.ReLU()))
    with pytest.raises(TypeError, match="model' must be an nn.Module"):
        DRTRL("net")
    with pytest.raises(ValueError, match="3 outputs but the spiking layer has 4"):
        EProp(nn.Sequential(nn.Linear(3, 3), lif))
    with pytest.raises(ValueError, match="learnable 'tau'.*requires_grad_"):
        EProp(nn.Sequential(nn.Linear(3, 4), MultiStepLIF(4, learnable_tau=True)))
    with pytest.raises(ValueError, match="one-dimensional 'size'"):
        EProp(MultiStepLIF(None))
    with pytest.raises(ValueError, match="filter_readout=True needs a readout"):
        EProp(nn.Sequential(nn.Linear(3, 4), MultiStepLIF(4)), filter_readout=True)
    with pytest.raises(TypeError, match="OTTT is for feed-forward.*EProp"):
        OTTT(nn.Sequential(nn.Linear(3, 4), RecurrentLIF(4)))
    with pytest.raises(TypeError, match="module 1 is a ReLU"):
        OTTT(nn.Sequential(nn.Linear(3, 4), nn.ReLU()))
    with pytest.raises(ValueError, match="one time constant per layer.*DRTRL"):
        OTTT(nn.Sequential(nn.Linear(3, 4), MultiStepLIF(4, tau=torch.tensor([1., 2, 3, 4]))
                           )).step(torch.rand(2, 3))
    learner = EProp(nn.Sequential(nn.Linear(3, 4), lif))
    with pytest.raises(RuntimeError, match="before the first step"):
        learner.accumulate(torch.zeros((), requires_grad=True))
    with pytest.raises(ValueError, match="single time step"):
        learner.step(torch.rand(5, 2, 3))
    with pytest.raises(TypeError, match="dtype torch.float64"):
        learner.step(torch.rand(2, 3, dtype=torch.float64))
    s = learner.step(torch.rand(2, 3))
    with pytest.raises(ValueError, match="batch size 5 but the running state has 2.*reset"):
        learner.step(torch.rand(5, 3))
    with pytest.raises(ValueError, match="no graph"):
        learner.accumulate(s.detach().sum())
    learner.accumulate(s.sum())
    with pytest.raises(RuntimeError, match="already called for this step"):
        learner.accumulate(s.sum())
    with pytest.raises(ValueError, match="update_every"):
        learner.run(torch.rand(4, 2, 3), update_every=0)
    learner.reset(batch_size=5)
    with torch.no_grad():
        learner.step(torch.rand(5, 3))
    with pytest.raises(RuntimeError, match="under torch.no_grad.*reset"):
        learner.step(torch.rand(5, 3))


# ------------------------------------------------------------------ Lightning
def test_lightning_manual_optimisation():
    L = pytest.importorskip("lightning")
    import warnings

    class OnlineModule(L.LightningModule):
        def __init__(self, model):
            super().__init__()
            self.model = model
            self.automatic_optimization = False
            self.learner = EProp(model, backward=self.manual_backward)

        def training_step(self, batch, batch_idx):
            x, y = batch                                           # (B, T, N)
            steps = x.shape[1]
            out, loss = self.learner.run(
                x, lambda o, t: F.cross_entropy(o, y) if t >= steps - 3 else None,
                optimizer=self.optimizers(), update_every=4, time_major=False)
            self.log("train_loss", loss)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), RecurrentLIF(8), LeakyIntegratorReadout(8, 2))
    before = model[1].rec.weight.detach().clone()
    data = torch.utils.data.TensorDataset(torch.rand(8, 10, 3) * 3, torch.randint(0, 2, (8,)))
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's notices (few workers, ...)
        trainer.fit(OnlineModule(model), torch.utils.data.DataLoader(data, batch_size=4))
    assert "train_loss" in trainer.callback_metrics
    assert not torch.equal(before, model[1].rec.weight)


# ------------------------------------------------------------------ example and benchmark
def _load(relative: str, name: str):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / relative
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_and_benchmark_run_at_a_small_size():
    example = _load("examples/online_evidence.py", "online_evidence_example")
    x, y = example.make_batch(4, n_cues=3, delay=5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (example.trial_length(3, 10, 5, 5, 20), 4, 40) and y.shape == (4,)
    for method in ("eprop", "bptt"):
        r = example.train(method, iterations=2, batch=4, hidden=12, delay=5, n_cues=3,
                          test_size=8, verbose=False)
        assert 0 <= r["test_accuracy"] <= 1 and r["peak_learning_memory_MiB"] > 0
    bench = _load("benchmarks/online_memory.py", "online_memory_benchmark")
    online = bench.run_once("recurrent", "eprop", 5, 8, 2)
    bptt = bench.run_once("feedforward", "bptt", 5, 8, 2)
    assert online["state_bytes"] > 0 and bptt["saved_bytes"] > 0
