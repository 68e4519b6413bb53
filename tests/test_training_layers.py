"""Multi-step training layers and the fused op ``torchbrain::multistep_lif``.

Independent checks: autograd through the step-by-step loop (the exact BPTT of the recurrence) for
the fused backward, torchbrain's own per-step neurons (``tb.LIF``, ``tb.ALIF``) for the layers'
dynamics, a NumPy float64 loop of the published equations, and closed forms (perfect integrator
spike counts, leaky-integrator step response).
"""

from __future__ import annotations

import copy
import math
import pickle
import sys

import numpy as np
import pytest
import torch
from torch import nn

import torchbrain as tb
from torchbrain import u
from torchbrain.ops.multistep_lif import multistep_lif, multistep_lif_reference, surrogate_key
from torchbrain.surrogate import _CLASSES as SURROGATES
from torchbrain.training.layers import (
    LeakyIntegratorReadout,
    MultiStepALIF,
    MultiStepIF,
    MultiStepLIF,
    RecurrentLIF,
    SeqToANNContainer,
    SpikeCountReadout,
    TimeDistributed,
)

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_ms_steps():
    """These tests count time in steps of 1 ms (no module assumes a default step; the rule
    itself is tested in test_dt_rule.py)."""
    with tb.environ.context(dt=1.0 * u.ms):
        yield


# ------------------------------------------------------------------------------- fused op
def _op_inputs(T=25, B=3, N=5, seed=0, per_neuron=True):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(T, B, N, generator=g, dtype=F64) * 1.5 + 0.6).requires_grad_()
    v0 = (0.3 * torch.randn(B, N, generator=g, dtype=F64)).requires_grad_()
    tau = (2.0 + torch.rand(N if per_neuron else (), generator=g, dtype=F64)).requires_grad_()
    v_th = torch.tensor(1.0, dtype=F64, requires_grad=True)
    v_reset = (-0.2 * torch.rand(N, generator=g, dtype=F64)).requires_grad_()
    return x, v0, tau, v_th, v_reset


def _op_grads(fn, inputs, spk, hard, detach, uses="svh", seed=1):
    x, v0, tau, v_th, v_reset = inputs
    decay = torch.exp(-1.0 / tau)
    gain = 1.0 - decay
    s, v, h = fn(x, v0, decay, gain, v_th, v_reset, spk_fun=spk, hard_reset=hard,
                 detach_reset=detach)
    g = torch.Generator().manual_seed(seed)
    loss = (s * torch.randn(s.shape, generator=g, dtype=F64)).sum()
    if "v" in uses:
        loss = loss + (v * torch.randn(v.shape, generator=g, dtype=F64)).sum()
    if "h" in uses:
        loss = loss + 0.1 * (h * torch.randn(h.shape, generator=g, dtype=F64)).sum()
    grads = torch.autograd.grad(loss, [x, v0, tau, v_th, v_reset])
    return (s, v, h), grads


@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detach_reset"])
@pytest.mark.parametrize("uses", ["s", "svh"])
def test_fused_op_matches_autograd_loop(hard, detach, uses):
    """Exact BPTT: every gradient (input, initial V, tau, threshold, reset) equals autograd
    through the unfused loop to 1e-10 in float64; spikes and potentials are equal."""
    inputs = _op_inputs()
    spk = tb.surrogate.Sigmoid(3.0)
    out_f, g_f = _op_grads(multistep_lif, inputs, spk, hard, detach, uses)
    out_r, g_r = _op_grads(multistep_lif_reference, inputs, spk, hard, detach, uses)
    assert 0.05 < out_f[0].mean() < 0.5  # the neurons do spike
    assert torch.equal(out_f[0], out_r[0])
    torch.testing.assert_close(out_f[1], out_r[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(out_f[2], out_r[2], rtol=0, atol=1e-12)
    for name, a, b in zip(["x", "v0", "tau", "V_th", "V_reset"], g_f, g_r, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-10), name


def test_fused_op_without_learnable_parameters_and_scalar_params():
    x, v0, _, _, _ = _op_inputs(per_neuron=False)
    decay, gain, v_th, v_reset = (torch.tensor(v, dtype=F64) for v in (0.8, 0.2, 1.0, 0.0))
    gx = []
    for fn in (multistep_lif, multistep_lif_reference):
        s, _, _ = fn(x, v0, decay, gain, v_th, v_reset)
        gx.append(torch.autograd.grad(s.sum(), [x, v0]))
    for a, b in zip(*gx, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("chunk", [1, 40, 1 << 20])
def test_fused_backward_chunking_is_exact(monkeypatch, chunk):
    """The backward pass processes time in chunks; the result does not depend on their size."""
    # the package re-exports the function under the module's name: take the module itself
    op = sys.modules["torchbrain.ops.multistep_lif"]

    monkeypatch.setattr(op, "_CHUNK_ELEMS", chunk)
    inputs = _op_inputs(T=13)
    spk = tb.surrogate.ReluGrad()
    _, g_f = _op_grads(multistep_lif, inputs, spk, False, False)
    _, g_r = _op_grads(multistep_lif_reference, inputs, spk, False, False)
    for a, b in zip(g_f, g_r, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cls", SURROGATES, ids=lambda c: c.__name__)
def test_fused_op_supports_every_surrogate(cls):
    """The backward rebuilds the surrogate from its class path and hyperparameters."""
    spk = cls()
    assert surrogate_key(spk) is not None
    inputs = _op_inputs(T=8, B=2, N=3, seed=3)
    _, g_f = _op_grads(multistep_lif, inputs, spk, False, False, "s")
    _, g_r = _op_grads(multistep_lif_reference, inputs, spk, False, False, "s")
    for a, b in zip(g_f, g_r, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


def test_fused_op_opcheck():
    x = torch.randn(6, 2, 3, requires_grad=True)
    args = (x, torch.zeros(2, 3, requires_grad=True), torch.full((3,), 0.8, requires_grad=True),
            torch.tensor(0.2, requires_grad=True), torch.tensor(1.0, requires_grad=True),
            torch.tensor(0.0), False, False, "torchbrain.surrogate:ReluGrad", [0.3, 1.0])
    torch.library.opcheck(torch.ops.torchbrain.multistep_lif.default, args)


def test_fused_op_saves_one_value_per_neuron_and_step():
    """Memory held for backward: H (T x B x N) plus O(B x N), in a handful of tensors."""
    T, B, N = 50, 4, 16
    x = torch.randn(T, B, N, requires_grad=True)

    def saved(fn):
        sizes = []

        def pack(t):
            sizes.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(x, torch.zeros(B, N), 0.9, 0.1, 1.0, 0.0)
        return sizes

    fused = saved(multistep_lif)
    assert len(fused) <= 7
    assert sum(fused) <= T * B * N + 2 * B * N + 10
    assert sum(saved(multistep_lif_reference)) >= T * B * N


def test_fused_op_compiles_fullgraph():
    """register_fake lets torch.compile trace the op as one node (aot_eager for speed)."""
    lif = MultiStepLIF(4, tau=3.0, learnable_tau=True)
    x = torch.randn(10, 2, 4, requires_grad=True) * 2

    def run(layer):
        tb.reset_all_states(layer)
        s = layer(x)
        return torch.autograd.grad((s * torch.arange(4.0)).sum() + layer.V.sum(), [layer.tau])

    eager = run(lif)
    compiled = run(tb.compile(lif, backend="aot_eager"))
    torch.testing.assert_close(eager, compiled)


def test_fused_op_input_errors():
    x = torch.randn(5, 2, 3)
    with pytest.raises(ValueError, match="state shape"):
        multistep_lif(x, torch.zeros(3), 0.9, 0.1, 1.0, 0.0)
    with pytest.raises(TypeError, match="dtype"):
        multistep_lif(x, torch.zeros(2, 3), torch.tensor(0.9, dtype=F64), 0.1, 1.0, 0.0)
    with pytest.raises(ValueError, match="does not broadcast"):
        multistep_lif(x, torch.zeros(2, 3), torch.ones(4), 0.1, 1.0, 0.0)

    class LocalSurrogate(tb.surrogate.Sigmoid):
        pass

    with pytest.raises(ValueError, match="class path"):
        multistep_lif(x, torch.zeros(2, 3), 0.9, 0.1, 1.0, 0.0, spk_fun=LocalSurrogate())


# ----------------------------------------------------------------------- layer dynamics
def test_multistep_lif_matches_tb_lif_stepping():
    """Same spikes as tb.LIF (V_rest = 0, R = 1 GΩ, x in pA); H equals LIF's lazy V."""
    T, B, N = 60, 3, 7
    g = torch.Generator().manual_seed(0)
    x = torch.rand(T, B, N, generator=g, dtype=F64) * 3.0
    for reset in ("soft", "hard"):
        layer = MultiStepLIF(N, tau=4 * u.ms, V_th=1.0, V_reset=-0.5, spk_reset=reset,
                             dt=0.5 * u.ms, dtype=F64)
        spikes, h = layer(x, return_v=True)
        neuron = tb.LIF(N, R=1 * u.gigaohm, tau=4 * u.ms, V_th=1 * u.mV, V_reset=-0.5 * u.mV,
                        V_rest=0 * u.mV, spk_reset=reset, dtype=F64)
        tb.init_all_states(neuron, batch_size=B)
        with tb.environ.context(dt=0.5 * u.ms):
            ref_s, ref_v = [], []
            for x_t in x.unbind(0):
                ref_s.append(neuron(x_t))
                ref_v.append(neuron.V)
        assert 0.05 < spikes.mean() < 0.6
        assert torch.equal(spikes, torch.stack(ref_s))
        torch.testing.assert_close(h, torch.stack(ref_v), rtol=0, atol=1e-12)


def _numpy_lif(x, v0, a, b, th, vr, hard):
    """The published LIF recurrence in NumPy float64 (reset after the spike, same step)."""
    v = v0.copy()
    spikes, hs = [], []
    for x_t in x:
        h = a * v + b * x_t
        s = (h >= th).astype(np.float64)
        v = np.where(s > 0, vr, h) if hard else h - (th - vr) * s
        spikes.append(s)
        hs.append(h)
    return np.stack(spikes), np.stack(hs), v


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_multistep_lif_numpy_reference(fused, reset):
    T, B, N = 40, 2, 6
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 0.6, size=(T, B, N))
    layer = MultiStepLIF(N, tau=10.0, V_th=1.0, V_reset=0.0, spk_reset=reset, decay_input=False,
                         dt=1.0, fused=fused, dtype=F64)
    s, h = layer(torch.from_numpy(x), return_v=True)
    a = math.exp(-0.1)
    ref_s, ref_h, ref_v = _numpy_lif(x, np.zeros((B, N)), a, 1.0, 1.0, 0.0, reset == "hard")
    np.testing.assert_array_equal(s.numpy(), ref_s)
    np.testing.assert_allclose(h.numpy(), ref_h, rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.V.numpy(), ref_v, rtol=0, atol=1e-12)


def test_multistep_if_counts_spikes_exactly():
    """A perfect integrator with input c and a soft reset fires floor(t c / V_th) times."""
    T = 64
    x = torch.full((T, 1, 3), 0.25, dtype=F64) * torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    layer = MultiStepIF(3, V_th=1.0, dtype=F64)
    counts = layer(x).cumsum(0)[:, 0]
    t = torch.arange(1, T + 1, dtype=F64).unsqueeze(1)
    torch.testing.assert_close(counts, torch.floor(t * 0.25 * torch.tensor([1.0, 2.0, 3.0],
                                                                          dtype=F64)))
    assert layer.tau is None and "decay_input" not in repr(layer)


def test_multistep_alif_matches_tb_alif_stepping():
    T, B, N = 80, 2, 5
    x = torch.rand(T, B, N, generator=torch.Generator().manual_seed(2), dtype=F64) * 4.0
    layer = MultiStepALIF(N, tau=5 * u.ms, tau_a=30 * u.ms, beta=0.5 * u.mV, V_th=1.0,
                          V_reset=0.0, dt=1.0, dtype=F64)
    spikes = layer(x)
    neuron = tb.ALIF(N, R=1 * u.gigaohm, tau=5 * u.ms, tau_a=30 * u.ms, beta=0.5 * u.mV,
                     V_th=1 * u.mV, V_reset=0 * u.mV, dtype=F64)
    tb.init_all_states(neuron, batch_size=B)
    with tb.environ.context(dt=1.0 * u.ms):
        ref = torch.stack([neuron(x_t) for x_t in x.unbind(0)])
    assert spikes.sum() > 20
    assert torch.equal(spikes, ref)
    # Adaptation lowers the rate compared with the plain LIF.
    plain = MultiStepLIF(N, tau=5 * u.ms, V_th=1.0, dt=1.0, dtype=F64)(x)
    assert spikes.sum() < plain.sum()


def _numpy_rlif(x, w, a, b, th):
    T, B, N = x.shape
    v, s = np.zeros((B, N)), np.zeros((B, N))
    out = []
    for x_t in x:
        h = a * v + b * (x_t + s @ w.T)
        s = (h >= th).astype(np.float64)
        v = h - th * s
        out.append(s)
    return np.stack(out)


def test_recurrent_lif_numpy_reference_and_gradients():
    T, B, N = 30, 2, 6
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 2.5, size=(T, B, N))
    layer = RecurrentLIF(N, tau=5.0, V_th=1.0, dt=1.0, dtype=F64)
    with torch.no_grad():
        layer.rec.weight.copy_(torch.from_numpy(rng.normal(0, 0.8, (N, N))) * layer.rec_mask)
    out = layer(torch.from_numpy(x))
    a = math.exp(-0.2)
    np.testing.assert_array_equal(out.detach().numpy(),
                                  _numpy_rlif(x, layer.rec.weight.detach().numpy(), a, 1 - a, 1))
    assert torch.all(layer.rec.weight.diagonal() == 0)
    out.sum().backward()
    assert layer.rec.weight.grad.abs().sum() > 0
    assert torch.all(layer.rec.weight.grad.diagonal() == 0)  # masked: no self-connections


def test_recurrent_lif_without_recurrence_equals_multistep_lif_and_adaptive_runs():
    x = torch.rand(20, 3, 4, dtype=F64) * 3
    rec = RecurrentLIF(4, tau=3.0, dtype=F64)
    with torch.no_grad():
        rec.rec.weight.zero_()
    torch.testing.assert_close(rec(x), MultiStepLIF(4, tau=3.0, dtype=F64)(x))
    lsnn = RecurrentLIF(4, tau=3.0, adaptive=True, beta=1.0, tau_a=20.0, dtype=F64)
    with torch.no_grad():
        lsnn.rec.weight.zero_()
    tb.reset_all_states(rec)
    assert lsnn(x).sum() < rec(x).sum()  # threshold adaptation lowers the rate
    assert lsnn.a is not None and lsnn.a.shape == (3, 4)
    with pytest.raises(ValueError, match="'size' is required"):
        RecurrentLIF(None)


def test_leaky_integrator_readout_step_response():
    """Constant input I: y_t = I (1 - a^{t+1}) / (1 - a) (b = 1), -> I with decay_input."""
    T = 30
    ro = LeakyIntegratorReadout(None, 2, tau=4.0, dt=1.0, dtype=F64)
    y = ro(torch.ones(T, 1, 2, dtype=F64) * torch.tensor([1.0, -2.0], dtype=F64))
    a = math.exp(-0.25)
    t = torch.arange(T, dtype=F64)
    expected = ((1 - a ** (t + 1)) / (1 - a)).view(T, 1, 1) * torch.tensor([1.0, -2.0],
                                                                           dtype=F64)
    torch.testing.assert_close(y, expected)
    ro2 = LeakyIntegratorReadout(None, 2, tau=4.0, dt=1.0, decay_input=True, dtype=F64)
    y2 = ro2(torch.ones(T, 1, 2, dtype=F64))
    torch.testing.assert_close(y2[:, 0, 0], 1 - a ** (t + 1))
    # With a Linear: the readout of W x + c.
    ro3 = LeakyIntegratorReadout(3, 2, tau=4.0, dt=1.0, dtype=F64)
    x = torch.rand(T, 1, 3, dtype=F64)
    ref = LeakyIntegratorReadout(None, 2, tau=4.0, dt=1.0, dtype=F64)(ro3.linear(x))
    torch.testing.assert_close(ro3(x), ref)


def test_spike_count_readout_and_time_distributed_conv():
    x = torch.rand(6, 2, 1, 8, 8)
    net = nn.Sequential(
        TimeDistributed(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)),
        MultiStepLIF(None, tau=2.0),
        SeqToANNContainer(nn.MaxPool2d(2), nn.Flatten()),
        nn.Linear(4 * 4 * 4, 3),
        MultiStepLIF(3),
        SpikeCountReadout(),
    )
    counts = net(x * 4)
    assert counts.shape == (2, 3)
    counts.sum().backward()
    assert net[0][0].weight.grad is not None
    assert net[1].V.shape == (2, 4, 8, 8)
    s = torch.rand(5, 2, 3)
    torch.testing.assert_close(SpikeCountReadout("mean")(s), s.mean(0))
    torch.testing.assert_close(SpikeCountReadout(time_major=False)(s), s.sum(1))
    with pytest.raises(ValueError, match="reduce"):
        SpikeCountReadout("max")
    assert SeqToANNContainer is TimeDistributed


# ----------------------------------------------------------------------------- states
@pytest.mark.parametrize("fused", [True, False])
def test_streaming_in_pieces_equals_one_run(fused):
    """The held V continues the sequence: two halves give the spikes and gradients of one run."""
    x = torch.randn(40, 3, 5, dtype=F64) * 2 + 0.5
    w = torch.randn(40, 3, 5, dtype=F64)

    def run(pieces):
        layer = MultiStepLIF(5, tau=3.0, learnable_tau=True, fused=fused, dtype=F64)
        outs = [layer(p) for p in torch.split(x, pieces)]
        s = torch.cat(outs)
        (grad,) = torch.autograd.grad((s * w).sum(), [layer.tau])
        return s, grad

    s1, g1 = run(40)
    s2, g2 = run(17)
    assert torch.equal(s1, s2)
    torch.testing.assert_close(g1, g2, rtol=0, atol=1e-10)


def test_fused_and_unfused_layers_agree_in_float32():
    x = torch.randn(30, 4, 8) * 2
    a = MultiStepLIF(8, tau=4.0, learnable_threshold=True)
    b = MultiStepLIF(8, tau=4.0, learnable_threshold=True, fused=False)
    sa, sb = a(x), b(x)
    assert torch.equal(sa, sb)
    (ga,) = torch.autograd.grad(sa.sum(), [a.V_th])
    (gb,) = torch.autograd.grad(sb.sum(), [b.V_th])
    torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-5)


def test_state_lifecycle_reset_detach_and_batch_size():
    layer = MultiStepLIF(4)
    assert layer.V is None
    layer(torch.rand(5, 3, 4))
    assert layer.V.shape == (3, 4)
    tb.reset_all_states(layer)
    assert layer.V is None
    tb.reset_all_states(layer, batch_size=2)
    assert torch.equal(layer.V, torch.zeros(2, 4))
    out = layer(torch.rand(5, 2, 4, requires_grad=True) * 3)
    assert layer.V.grad_fn is not None
    tb.detach_states(layer)
    assert layer.V.grad_fn is None
    out.sum().backward()
    with pytest.raises(ValueError, match=r"batch size 3.*tb\.reset_all_states"):
        layer(torch.rand(5, 3, 4))
    # A (B, T, N) input to a time-major layer is caught against the held State.
    with pytest.raises(ValueError, match="time_major=False"):
        layer(torch.rand(2, 5, 4))


def test_graph_already_consumed_error_names_the_fix():
    layer = MultiStepLIF(4)
    lin = nn.Linear(3, 4)
    layer(lin(torch.rand(6, 2, 3)) * 3).sum().backward()
    with pytest.raises(RuntimeError, match=r"reset_all_states.*detach_states"):
        layer(lin(torch.rand(6, 2, 3)))
    tb.detach_states(layer)
    layer(lin(torch.rand(6, 2, 3))).sum().backward()  # continuing after a detach is fine
    tb.reset_all_states(layer)
    layer(lin(torch.rand(6, 2, 3))).sum().backward()


def test_alif_and_recurrent_states_reset():
    for layer in (MultiStepALIF(3), RecurrentLIF(3, adaptive=True)):
        layer(torch.rand(4, 2, 3))
        tb.reset_all_states(layer, batch_size=5)
        assert layer.V.shape == (5, 3) and layer.a.shape == (5, 3)
        layer(torch.rand(4, 5, 3))
        tb.reset_all_states(layer)
        assert layer.V is None and layer.a is None


def test_time_major_false_and_initial_value():
    x = torch.rand(3, 20, 4) * 3  # (B, T, N)
    bm = MultiStepLIF(4, time_major=False, V_init=0.5)
    tm = MultiStepLIF(4, V_init=0.5 * u.mV)
    torch.testing.assert_close(bm(x), tm(x.transpose(0, 1)).transpose(0, 1))
    init = MultiStepLIF(4, V_init=tb.init.Constant(0.9 * u.mV))
    tb.reset_all_states(init, batch_size=2)
    torch.testing.assert_close(init.V, torch.full((2, 4), 0.9))


def test_input_errors():
    layer = MultiStepLIF(8)
    with pytest.raises(TypeError, match=r"dtype torch\.float64.*model\.to"):
        layer(torch.rand(5, 2, 8, dtype=F64))
    with pytest.raises(TypeError, match="floating"):
        layer(torch.ones(5, 2, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"no batch dimension.*unsqueeze\(1\)"):
        layer(torch.rand(5, 8))
    with pytest.raises(ValueError, match=r"\(T, B, 8\)"):
        layer(torch.rand(5, 2, 7))
    with pytest.raises(ValueError, match="feature dimension must come last"):
        layer(torch.rand(8, 2, 5))
    with pytest.raises(TypeError, match="tensor"):
        layer([1.0, 2.0])


def test_construction_errors_and_units():
    with pytest.raises(ValueError, match="above 'V_reset'"):
        MultiStepLIF(3, V_th=0.0, V_reset=0.5)
    with pytest.raises(ValueError, match="spk_reset"):
        MultiStepLIF(3, spk_reset="zero")
    with pytest.raises(ValueError, match="spk_fun"):
        MultiStepLIF(3, spk_fun="nope")
    with pytest.raises(tb.UnitError):
        MultiStepLIF(3, tau=5 * u.mV)
    with pytest.raises(ValueError, match="positive"):
        MultiStepLIF(3, tau=-1.0)
    with pytest.raises(ValueError, match="size"):
        MultiStepLIF(0)

    class LocalSurrogate(tb.surrogate.Sigmoid):
        pass

    assert MultiStepLIF(3, spk_fun=LocalSurrogate()).fused is False  # falls back to the loop
    with pytest.raises(ValueError, match="fused=True"):
        MultiStepLIF(3, spk_fun=LocalSurrogate(), fused=True)
    layer = MultiStepLIF(3, tau=20 * u.ms, V_th=15 * u.mV)
    assert float(layer.quantity("tau").to("s").magnitude) == pytest.approx(0.02)
    assert "tau=20 ms" in repr(layer)


def test_learnable_parameters():
    layer = MultiStepLIF(6, tau=5.0, learnable_tau=True, learnable_threshold=True, dt=1.0)
    names = dict(layer.named_parameters())
    assert set(names) == {"tau", "V_th"} and names["tau"].shape == (6,)
    layer(torch.rand(10, 2, 6) * 3).sum().backward()
    assert names["tau"].grad is not None and names["V_th"].grad is not None


def test_copy_pickle_and_dtype_after_autograd_forward():
    layer = MultiStepLIF(4, learnable_tau=True)
    layer(torch.rand(5, 2, 4, requires_grad=True))
    clone = copy.deepcopy(layer)
    assert clone.V.grad_fn is None and torch.equal(clone.V, layer.V.detach())
    again = pickle.loads(pickle.dumps(layer))
    assert torch.equal(again.V, layer.V.detach())
    tb.reset_all_states(layer)
    layer.to(F64)
    assert layer(torch.rand(5, 2, 4, dtype=F64)).dtype == F64
