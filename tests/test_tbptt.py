"""Truncated BPTT: chunking, the training loop, and eager / compiled / checkpointed parity."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import torchbrain as tb
from torchbrain.training.layers import LeakyIntegratorReadout, MultiStepLIF
from torchbrain.training.tbptt import chunk_slices, tbptt_chunks, truncated_bptt

T, B, I, K = 12, 3, 4, 4


def _model(seed=1, fused=True):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(I, 8),
        MultiStepLIF(8, tau=3.0, learnable_tau=True, spk_fun=tb.surrogate.Sigmoid(), fused=fused,
                     dt=1.0),
        LeakyIntegratorReadout(8, 2, tau=4.0, dt=1.0),
    )


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(T, B, I, generator=g) * 2, torch.randn(T, B, 2, generator=g)


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_chunks_are_views_with_one_backward_node():
    x = torch.randn(10, 2, 3, requires_grad=True)
    chunks = tbptt_chunks(x, 4)
    assert [c.shape[0] for c in chunks] == [4, 4, 2]
    assert all(c._base is x for c in chunks)
    assert len({c.grad_fn for c in chunks}) == 1           # one SplitBackward for all chunks
    sum((c * (i + 1)).sum() for i, c in enumerate(chunks)).backward()
    expected = torch.tensor([1.0] * 4 + [2.0] * 4 + [3.0] * 2).view(10, 1, 1).expand(10, 2, 3)
    torch.testing.assert_close(x.grad, expected)
    assert chunk_slices(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    bm = tbptt_chunks(torch.zeros(2, 10, 3), 4, time_major=False)
    assert [c.shape[1] for c in bm] == [4, 4, 2]
    with pytest.raises(ValueError, match="'k'"):
        tbptt_chunks(x, 0)


def test_truncated_bptt_equals_manual_loop_and_full_bptt_for_k_equal_T():
    x, y = _data()

    def loss_fn(out, sl):
        return ((out - y[sl]) ** 2).mean()

    m1 = _model()
    losses, outs = truncated_bptt(m1, x, K, loss_fn)
    assert len(losses) == 3 and outs.shape == (T, B, 2) and not outs.requires_grad

    m2 = _model()
    tb.reset_all_states(m2)
    for sl, chunk in zip(chunk_slices(T, K), tbptt_chunks(x, K), strict=True):
        loss_fn(m2(chunk), sl).backward()
        tb.detach_states(m2)
    for name, g in _grads(m1).items():
        torch.testing.assert_close(g, _grads(m2)[name], rtol=0, atol=0)

    # k = T is full BPTT; truncation changes the gradient.
    m3, m4 = _model(), _model()
    truncated_bptt(m3, x, T, loss_fn)
    loss_fn(m4(x), slice(0, T)).backward()
    for name, g in _grads(m3).items():
        torch.testing.assert_close(g, _grads(m4)[name])
    assert not torch.allclose(_grads(m1)["1.tau"], _grads(m3)["1.tau"])


def test_truncated_bptt_with_optimizer_steps_every_chunk():
    x, y = _data()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model[0].weight.detach().clone()
    steps = []
    opt.register_step_post_hook(lambda *a: steps.append(1))
    truncated_bptt(model, x, K, lambda out, sl: ((out - y[sl]) ** 2).mean(), optimizer=opt)
    assert len(steps) == 3 and not torch.equal(before, model[0].weight)


@pytest.mark.slow
def test_eager_compiled_and_checkpointed_gradients_agree():
    """The same TBPTT run three ways: eager, tb.compile (aot_eager, fullgraph) and each chunk
    through tb.checkpointed_for_loop (one model step per loop step, States carried)."""
    x, y = _data()

    def loss_fn(out, sl):
        return ((out - y[sl]) ** 2).mean()

    eager = _model()
    truncated_bptt(eager, x, K, loss_fn)

    compiled_model = _model()
    truncated_bptt(tb.compile(compiled_model, backend="aot_eager"), x, K, loss_fn)

    ckpt = _model()

    def stepwise(chunk):
        return tb.checkpointed_for_loop(lambda x_t: ckpt(x_t.unsqueeze(0)).squeeze(0), chunk,
                                        segment_length=2)

    tb.reset_all_states(ckpt)
    for sl, chunk in zip(chunk_slices(T, K), tbptt_chunks(x, K), strict=True):
        loss_fn(stepwise(chunk), sl).backward()
        tb.detach_states(ckpt)

    ref = _grads(eager)
    assert ref["1.tau"].abs().sum() > 0
    for name, g in _grads(compiled_model).items():
        torch.testing.assert_close(g, ref[name], rtol=1e-5, atol=1e-6)
    for name, g in _grads(ckpt).items():
        torch.testing.assert_close(g, ref[name], rtol=1e-5, atol=1e-6)


def test_unfused_layer_gives_the_same_truncated_gradients():
    x, y = _data()

    def loss_fn(out, sl):
        return ((out - y[sl]) ** 2).mean()

    fused, loop = _model(fused=True), _model(fused=False)
    truncated_bptt(fused, x, K, loss_fn)
    truncated_bptt(loop, x, K, loss_fn)
    for name, g in _grads(fused).items():
        torch.testing.assert_close(g, _grads(loop)[name], rtol=1e-5, atol=1e-6)
