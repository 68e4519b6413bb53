"""The Triton kernels of the fused multi-step LIF op against the torch paths and references.

Without a GPU the kernels run on CPU tensors through Triton's interpreter (``TRITON_INTERPRET=1``,
small sizes); with CUDA the same tests run natively. Independent references: the op's pure-torch
implementations (``_multistep_lif_torch``, ``_multistep_lif_backward_torch``), autograd through
the step-by-step ``multistep_lif_reference`` in float64, and float64 upcasts for the float32
three-way comparisons. Kernel tests are skipped, with the reason, when Triton cannot be imported
or its interpreter cannot run these loops; the dispatch glue's fallbacks are tested either way.
"""

import itertools
import math
import os
import sys

import pytest
import torch

import torchbrain as tb
from torchbrain import kernels
from torchbrain.ops.multistep_lif import multistep_lif, multistep_lif_reference, surrogate_key

from .triton_interpreter import (
    DEVICE,
    ON_GPU,
    compile_for_hopper,
    dry_run_check_script,
    kernel_environment,
    load_kernels,
    needs_triton,
    skip_unless_interpreter_loops,
)

ops = sys.modules["torchbrain.ops.multistep_lif"]  # the package re-exports the function's name
MODULE = "torchbrain.kernels.multistep_lif"
F64 = torch.float64


@pytest.fixture(scope="module")
def K():
    """``torchbrain.kernels.multistep_lif``, imported through Triton's interpreter on the CPU."""
    return load_kernels(MODULE, "_forward_kernel", _probe_interpreter)


def _probe_interpreter(mod):
    one = torch.ones(())
    skip_unless_interpreter_loops(lambda: mod.multistep_lif_forward(
        torch.ones(2, 1), torch.zeros(1), one, one, one, one * 0, False))


@pytest.fixture(autouse=True)
def _interpreter_env(monkeypatch):
    kernel_environment(monkeypatch)


def make_case(T=12, state=(3, 37), dtype=torch.float32, per_neuron=True, seed=0, scale=1.5,
              offset=0.6):
    """Inputs of the op: ``x`` (T, *state), ``v0`` and the four parameters (per neuron: shape
    ``(state[-1],)``; else 0-d), on DEVICE."""
    g = torch.Generator().manual_seed(seed)
    n = state[-1]
    x = torch.randn(T, *state, generator=g, dtype=F64) * scale + offset
    v0 = 0.3 * torch.randn(*state, generator=g, dtype=F64)
    shape = (n,) if per_neuron else ()
    decay = torch.exp(-1.0 / (2.0 + torch.rand(shape, generator=g, dtype=F64)))
    gain = 1.0 - decay if per_neuron else torch.tensor(0.7, dtype=F64)
    v_th = torch.tensor(1.0, dtype=F64)
    v_reset = -0.2 * torch.rand(shape, generator=g, dtype=F64)
    return tuple(t.to(device=DEVICE, dtype=dtype) for t in (x, v0, decay, gain, v_th, v_reset))


def cpu(ts):
    return tuple(None if t is None else t.cpu() for t in ts)


def rel_err(a, ref):
    a, ref = a.double().cpu(), ref.double().cpu()
    return ((a - ref).norm() / ref.norm().clamp_min(1e-300)).item()


def incoming(h, v, pattern, seed=1):
    """Incoming gradients: 's' spikes, 'v' last V, 'h' pre-reset potentials; 'e' the expanded
    (stride-0) gradient of ``spikes.sum()``."""
    g = torch.Generator().manual_seed(seed)

    def rnd(shape):
        return torch.randn(shape, generator=g, dtype=F64).to(device=h.device, dtype=h.dtype)

    gs = rnd(h.shape) if "s" in pattern else None
    if "e" in pattern:
        gs = torch.ones((), device=h.device, dtype=h.dtype).expand(h.shape)
    return gs, rnd(v.shape) if "v" in pattern else None, rnd(h.shape) if "h" in pattern else None


def kernel_backward(K, grads, out, args, hard, detach, spk, needs, prepass=False, **config):
    """The kernel launcher's gradients, finished as the op's CUDA glue does. ``prepass``: give
    the launcher only ``spk.surrogate_grad`` (evaluated with torch before the kernel), not the
    formula of :func:`~torchbrain.ops.multistep_lif.fused_surrogate` (computed inside the
    kernel when the class is known)."""
    x, v0, decay, gain, v_th, v_reset = args
    h = out[2]
    fused = None if prepass else ops.fused_surrogate(spk)
    raw = K.multistep_lif_backward(*grads, h, v0, x, decay, gain, v_th, v_reset, hard, detach,
                                   spk.surrogate_grad, needs, fused=fused, **config)
    return ops._backward_outputs(raw, needs, (h, v0, decay, gain, v_th, v_reset))


def torch_backward(grads, out, args, hard, detach, spk, needs):
    x, v0, decay, gain, v_th, v_reset = args
    key, hparams = surrogate_key(spk)
    return ops._multistep_lif_backward_torch(*grads, out[2], v0, x, decay, gain, v_th, v_reset,
                                             hard, detach, key, hparams, needs)


def reference_grads(grads, args, hard, detach, spk):
    """Autograd of the step-by-step reference (float64, CPU) for the same incoming gradients."""
    leaves = [t.detach().cpu().double().clone().requires_grad_(True) for t in args]
    outs = multistep_lif_reference(*leaves, spk_fun=spk, hard_reset=hard, detach_reset=detach)
    pairs = [(o, g.cpu().double()) for o, g in zip(outs, grads, strict=True) if g is not None]
    return torch.autograd.grad([o for o, _ in pairs], leaves, [g for _, g in pairs],
                               allow_unused=True)


ALL = [True] * 6
NEED_SETS = {"all": ALL, "x": [True] + [False] * 5, "params": [False] + [True] * 5,
             "v0": [False, True, False, False, False, False]}


# ---------------------------------------------------------------- no Triton needed


def test_missing_triton_means_torch_fallback(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` now raises ImportError
    kernels.triton_version.cache_clear()
    try:
        assert not kernels.available()
        args = cpu(make_case(T=5, dtype=F64))
        out = ops._multistep_lif_cuda(*args, False, False, *surrogate_key(tb.surrogate.ReluGrad()))
        for a, b in zip(out, ops._multistep_lif_torch(*args, False), strict=True):
            assert torch.equal(a, b)
        spk = tb.surrogate.ReluGrad()
        grads = incoming(out[2], out[1], "svh")
        got = ops._multistep_lif_backward_cuda(*grads, out[2], args[1], args[0], *args[2:],
                                               False, False, *surrogate_key(spk), ALL)
        for a, b in zip(got, torch_backward(grads, out, args, False, False, spk, ALL),
                        strict=True):
            assert torch.equal(a, b)
    finally:
        kernels.triton_version.cache_clear()


def test_kernels_package_lists_the_module():
    assert "multistep_lif" in kernels._SUBMODULES


def test_cpu_path_never_imports_kernels(monkeypatch):
    # the CPU path must not depend on Triton: poison the kernel module and run the op on CPU
    monkeypatch.setitem(sys.modules, MODULE, None)
    args = [t.cpu().double().requires_grad_(True) for t in make_case(T=4, state=(2, 3))]
    s, v, _ = multistep_lif(*args)
    (s.sum() + v.sum()).backward()
    assert args[0].grad is not None


# ---------------------------------------------------------------- forward kernel


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
@pytest.mark.parametrize("per_neuron", [True, False], ids=["per_neuron", "scalar"])
def test_forward_equals_torch_path_bit_for_bit(K, dtype, hard, per_neuron):
    """Same operations in the same order as the torch loop (``a V + b x`` rounded once, like
    torch's ``addcmul_``): spikes, V_T and H are identical, float32 included. 111 neurons in
    blocks of 32 (a ragged last block)."""
    args = make_case(dtype=dtype, per_neuron=per_neuron, seed=int(hard) + 2 * per_neuron)
    out = K.multistep_lif_forward(*args, hard, block=32)
    ref = ops._multistep_lif_torch(*cpu(args), hard)
    assert 0.05 < ref[0].mean() < 0.6  # the neurons do spike, and not always
    for a, b in zip(out, ref, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a.cpu(), b)


@needs_triton
@pytest.mark.parametrize("T", [1, 2, 3, 4, 7])
def test_forward_short_sequences_and_default_block(K, T):
    """The input is prefetched three steps ahead: sequences shorter than that must not read
    past the end. Also the default block size and a state with one trailing dimension."""
    args = make_case(T=T, state=(53,), dtype=F64, seed=T)
    out = K.multistep_lif_forward(*args, True)
    for a, b in zip(out, ops._multistep_lif_torch(*cpu(args), True), strict=True):
        assert torch.equal(a.cpu(), b)


@needs_triton
@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
def test_forward_float64_matches_reference(K, hard):
    args = make_case(T=10, state=(2, 29), dtype=F64, seed=5)
    s, v, h = K.multistep_lif_forward(*args, hard, block=16)
    rs, rv, rh = multistep_lif_reference(*cpu(args), hard_reset=hard)
    assert torch.equal(s.cpu(), rs)
    torch.testing.assert_close(h.cpu(), rh, rtol=0, atol=1e-12)
    torch.testing.assert_close(v.cpu(), rv, rtol=0, atol=1e-12)


@needs_triton
def test_forward_no_input_and_all_spiking(K):
    x, v0, decay, gain, v_th, v_reset = make_case(T=6, state=(2, 21))
    s, v, h = K.multistep_lif_forward(torch.zeros_like(x), torch.zeros_like(v0), decay, gain,
                                      v_th, v_reset, False, block=16)
    assert not s.any() and not v.any() and not h.any()
    for hard in (False, True):
        big = torch.full_like(x, 40.0)
        out = K.multistep_lif_forward(big, v0, decay, gain, v_th, v_reset, hard, block=16)
        assert out[0].all()
        for a, b in zip(out, ops._multistep_lif_torch(*cpu((big, v0, decay, gain, v_th,
                                                             v_reset)), hard), strict=True):
            assert torch.equal(a.cpu(), b)
        if hard:  # V_reset - (H - (H - V_reset)) is not exact, but close
            torch.testing.assert_close(out[1].cpu(), v_reset.cpu().expand_as(v0))


@needs_triton
def test_forward_non_contiguous_input(K):
    x, *rest = make_case(T=5, state=(4, 9), dtype=F64)
    xt = x.transpose(1, 2).contiguous().transpose(1, 2)  # same values, permuted strides
    assert not xt.is_contiguous()
    out = K.multistep_lif_forward(xt, *rest, False, block=8)
    for a, b in zip(out, ops._multistep_lif_torch(*cpu((x, *rest)), False), strict=True):
        assert a.is_contiguous() and torch.equal(a.cpu(), b)


@needs_triton
def test_launcher_argument_errors(K):
    args = make_case(T=2, state=(5,))
    with pytest.raises(ValueError, match="power of two"):
        K.multistep_lif_forward(*args, False, block=24)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.multistep_lif_forward(*(t.half() for t in args), False)
    out = K.multistep_lif_forward(*args, False)
    with pytest.raises(ValueError, match="needs 'x'"):
        K.multistep_lif_backward(out[0], None, None, out[2], args[1], None, *args[2:], False,
                                 False, tb.surrogate.ReluGrad().surrogate_grad,
                                 [False, False, False, True, False, False])
    assert K.block_size(1000, torch.device("cpu")) == 1024
    assert K.block_size(5, torch.device("cpu")) == 8


# ---------------------------------------------------------------- backward kernel


@needs_triton
@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detach"])
@pytest.mark.parametrize("pattern", ["s", "v", "h", "svh", "e"])
def test_backward_every_flag_combination(K, hard, detach, pattern):
    """float64: kernel = torch path to 1e-12 and = autograd of the reference loop to 1e-10, for
    every set of needed gradients (x only, parameters only, v0 only, all)."""
    spk = tb.surrogate.Sigmoid(3.0)
    args = make_case(T=9, state=(2, 19), dtype=F64, seed=11)
    out = ops._multistep_lif_torch(*args, hard)
    grads = incoming(out[2], out[1], pattern)
    ref = reference_grads(grads, args, hard, detach, spk)
    for name, needs in NEED_SETS.items():
        got = kernel_backward(K, grads, out, args, hard, detach, spk, needs, block=16)
        want = torch_backward(cpu(grads), cpu(out), cpu(args), hard, detach, spk, needs)
        for i, (g, w, r, need) in enumerate(zip(got, want, ref, needs, strict=True)):
            if not need:
                assert g.numel() == 0 and w.numel() == 0
                continue
            r = torch.zeros_like(w) if r is None else r
            assert g.shape == w.shape, (name, i)
            torch.testing.assert_close(g.cpu(), w, rtol=1e-12, atol=1e-12, msg=f"{name} {i}")
            torch.testing.assert_close(g.cpu(), r, rtol=1e-10, atol=1e-10, msg=f"{name} {i}")


@needs_triton
@pytest.mark.parametrize("cls", ["ReluGrad", "Arctan", "PiecewiseQuadratic", "GaussianGrad",
                                 "SlayerGrad", "MultiGaussianGrad"])
def test_backward_surrogates_and_scalar_parameters(K, cls):
    """The surrogate is evaluated with torch (any Surrogate works); 0-d parameters get their
    gradients summed over the state."""
    spk = getattr(tb.surrogate, cls)()
    args = make_case(T=8, state=(3, 11), dtype=F64, per_neuron=False, seed=3)
    out = ops._multistep_lif_torch(*args, False)
    grads = incoming(out[2], out[1], "svh")
    got = kernel_backward(K, grads, out, args, False, False, spk, ALL, block=8)
    ref = reference_grads(grads, args, False, False, spk)
    for g, r in zip(got, ref, strict=True):
        assert g.shape == r.shape
        torch.testing.assert_close(g.cpu(), r, rtol=1e-10, atol=1e-10)


@needs_triton
@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
def test_backward_float32_three_way(K, hard):
    """float32 kernel vs float32 torch path vs float64 torch path on the same (upcast) inputs:
    the kernel's error is at most 4x the torch path's (+1e-6)."""
    spk = tb.surrogate.ReluGrad()
    args = make_case(T=12, state=(3, 37), seed=7)
    out = ops._multistep_lif_torch(*cpu(args), hard)
    out_d = tuple(t.to(DEVICE) for t in out)
    grads = incoming(out_d[2], out_d[1], "svh")
    got = kernel_backward(K, grads, out_d, args, hard, False, spk, ALL, block=32)
    t32 = torch_backward(cpu(grads), out, cpu(args), hard, False, spk, ALL)

    def up(ts):
        return tuple(None if t is None else t.double() for t in cpu(ts))

    t64 = torch_backward(up(grads), up(out), up(args), hard, False, spk, ALL)
    for i, (g, t, r) in enumerate(zip(got, t32, t64, strict=True)):
        assert g.dtype == torch.float32
        assert rel_err(g, r) <= 4 * rel_err(t, r) + 1e-6, i


@needs_triton
@pytest.mark.parametrize("chunk_steps", [1, 4, 100])
def test_backward_time_chunks_do_not_change_the_result(K, chunk_steps):
    """The torch pre-pass evaluates the surrogate derivative a chunk of steps at a time and the
    recurrence is carried between chunks through a buffer: bit-identical to one chunk."""
    spk = tb.surrogate.MultiGaussianGrad()
    assert ops.fused_surrogate(spk) is None  # not computed in the kernel: the pre-pass
    args = make_case(T=11, state=(2, 13), seed=9)
    out = ops._multistep_lif_torch(*cpu(args), True)
    out = tuple(t.to(DEVICE) for t in out)
    grads = incoming(out[2], out[1], "svh")
    S = out[1].numel()
    whole = kernel_backward(K, grads, out, args, True, False, spk, ALL, block=16)
    parts = kernel_backward(K, grads, out, args, True, False, spk, ALL, block=16,
                            chunk_elems=chunk_steps * S)
    for a, b in zip(whole, parts, strict=True):
        assert torch.equal(a, b)


@needs_triton
def test_backward_time_invariant_gradient_and_inputs_untouched(K):
    """A stride-0 gradient (``spikes.sum()``) is read as one slice: same result as the
    materialised one. The caller's tensors are not written to."""
    spk = tb.surrogate.Sigmoid()
    args = make_case(T=7, state=(4, 5), dtype=F64, seed=2)
    out = ops._multistep_lif_torch(*args, False)
    gs_e, gv, _ = incoming(out[2], out[1], "ev")
    keep = [t.clone() for t in (gv, *out, *args)]
    a = kernel_backward(K, (gs_e, gv, None), out, args, False, False, spk, ALL, block=8)
    b = kernel_backward(K, (gs_e.contiguous(), gv, None), out, args, False, False, spk, ALL,
                        block=8)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    for before, after in zip(keep, (gv, *out, *args), strict=True):
        assert torch.equal(before, after)


@needs_triton
def test_backward_no_input_and_all_spiking(K):
    spk = tb.surrogate.ReluGrad()
    for level, hard in itertools.product((0.0, 40.0), (False, True)):
        x, v0, *params = make_case(T=5, state=(2, 9), dtype=F64)
        args = (torch.full_like(x, level), v0 * (level > 0), *params)
        out = ops._multistep_lif_torch(*args, hard)
        assert out[0].all() if level else not out[0].any()
        grads = incoming(out[2], out[1], "svh")
        got = kernel_backward(K, grads, out, args, hard, False, spk, ALL, block=8)
        for g, r in zip(got, reference_grads(grads, args, hard, False, spk), strict=True):
            torch.testing.assert_close(g.cpu(), r, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- surrogates in the kernel

#: Every class the kernel computes: default hyperparameters, then other values (edges that are
#: not exact in float32, negative leaks).
SURROGATE_CASES = {
    "ReluGrad": [{}, {"alpha": 0.37, "width": 1.3}],
    "Sigmoid": [{}, {"alpha": 2.3}],
    "Arctan": [{}, {"alpha": 1.7}],
    "SuperSpike": [{}, {"alpha": 13.3}],
    "InvSquareGrad": [{}, {"alpha": 3.7}],
    "GaussianGrad": [{}, {"sigma": 0.3, "alpha": 0.7}],
    "PiecewiseQuadratic": [{}, {"alpha": 0.7}],
    "PiecewiseLeakyRelu": [{}, {"c": 0.05, "w": 0.3}],
    "LeakyRelu": [{}, {"alpha": -0.2, "beta": 1.7}],
    "SoftSign": [{}, {"alpha": 2.9}],
    "ERF": [{}, {"alpha": 0.6}],
    "PiecewiseExp": [{}, {"alpha": 1.9}],
    "SlayerGrad": [{}, {"alpha": 0.45}],
    "NonzeroSignLog": [{}, {"alpha": 0.3}],
    "LogTailedRelu": [{}, {"alpha": -0.3}],
}
#: Classes whose formula has an exp: libm/Sleef/numpy/libdevice differ in the last bits there.
WITH_EXP = {"Sigmoid", "GaussianGrad", "ERF", "PiecewiseExp", "SlayerGrad"}


def surrogate_grid(spk, dtype):
    """z values: a dense sweep, far tails, +-0, and every kink/edge of ``spk`` with its two
    neighbours in ``dtype`` (the edge computed from the hyperparameters, then rounded)."""
    hp = spk.hparams
    edges = [0.0, 1.0]
    for name in ("width", "w", "sigma"):
        if name in hp:
            edges.append(hp[name])
    if type(spk).__name__ == "PiecewiseQuadratic":
        edges.append(1.0 / hp["alpha"])
    e = torch.tensor(edges, dtype=dtype)
    e = torch.cat([e, torch.nextafter(e, e + 1), torch.nextafter(e, e - 1)])
    tails = torch.tensor([3.0, 7.5, 30.0, 100.0, 1e4], dtype=dtype)
    z = torch.cat([torch.linspace(-5, 5, 401, dtype=dtype), e, -e, tails, -tails,
                   torch.tensor([-0.0], dtype=dtype)])
    return z.to(DEVICE)


def kernel_surrogate_grad(K, spk, z):
    """g(z) as the backward kernel computes it: with ``h = z``, ``V_th = 0``, ``V_reset = -1``
    (so ``z = (h - V_th) / 1`` exactly), ``dL/dS = 1``, decay 0, gain 1 and a detached reset,
    ``dL/dx = 1 * (g / 1)`` is ``g`` to the bit."""
    import numpy

    one = torch.ones((), dtype=z.dtype, device=z.device)
    h = z.reshape(1, -1)
    # the interpreter computes with numpy, which warns where exp overflows to inf (Sigmoid's
    # far tail: 1 / (1 + inf) = 0, as in torch)
    with numpy.errstate(over="ignore"):
        dx = K.multistep_lif_backward(torch.ones_like(h), None, None, h, torch.zeros_like(z),
                                      None, 0 * one, one, 0 * one, -one, False, True, None,
                                      NEED_SETS["x"], fused=ops.fused_surrogate(spk))[0]
    return dx.reshape(-1)


@needs_triton
@pytest.mark.parametrize("name", sorted(SURROGATE_CASES))
def test_kernel_surrogates_equal_surrogate_grad(K, name):
    """g inside the kernel vs the class's own ``surrogate_grad`` (torch, CPU) on a grid with the
    kinks and edges, default and other hyperparameters, float32 and float64. Formulas without
    exp: within 6 eps relative (measured on the interpreter: at most 2.2 eps; libdevice's expf
    is within 2 ulp, torch's within 1), plus the smallest normal number (libdevice flushes
    subnormals). Sigmoid's ``1 - s`` cancels where ``s`` is near 1, where torch's own sigmoid
    and ``1 / (1 + exp(-u))`` differ by an ulp or two of ``s``: there it gets an absolute
    ``2 eps alpha``, 4 ulp of ``s`` (an ulp is eps/2 there) times ``alpha``."""
    cls = getattr(tb.surrogate, name)
    for hparams, dtype in itertools.product(SURROGATE_CASES[name], (torch.float32, F64)):
        spk = cls(**hparams)
        assert ops.fused_surrogate(spk) is not None, spk
        z = surrogate_grid(spk, dtype)
        got = kernel_surrogate_grad(K, spk, z).cpu()
        want = spk.surrogate_grad(z.cpu())
        assert got.dtype == dtype and torch.isfinite(got).all()
        if name not in WITH_EXP:
            assert torch.equal(got, want), (spk, dtype, z[got != want], got[got != want],
                                            want[got != want])
            continue
        eps = torch.finfo(dtype).eps
        atol = 2 * eps * spk.alpha if name == "Sigmoid" else torch.finfo(dtype).tiny
        torch.testing.assert_close(got, want, rtol=6 * eps, atol=atol, msg=f"{spk} {dtype}")


@needs_triton
@pytest.mark.parametrize("name", sorted(SURROGATE_CASES))
def test_kernel_surrogate_and_torch_prepass_give_the_same_gradients(K, name):
    """The whole backward with g computed in the kernel (one launch) vs g from the torch
    pre-pass (the same kernel reading it), every gradient, non-default hyperparameters; the
    reset mode, detach_reset and dtype rotate with the class. Without exp: bit-identical; with
    exp: float64 within 1e-13, float32 within 8 eps (norm-wise)."""
    i = sorted(SURROGATE_CASES).index(name)
    hard, detach = bool(i % 2), bool(i // 2 % 2)
    dtype = F64 if i // 4 % 2 else torch.float32
    spk = getattr(tb.surrogate, name)(**SURROGATE_CASES[name][1])
    args = make_case(T=7, state=(2, 13), dtype=dtype, seed=20 + i)
    out = tuple(t.to(DEVICE) for t in ops._multistep_lif_torch(*cpu(args), hard))
    grads = incoming(out[2], out[1], "svh", seed=i)
    fused = kernel_backward(K, grads, out, args, hard, detach, spk, ALL, block=16)
    prepass = kernel_backward(K, grads, out, args, hard, detach, spk, ALL, block=16,
                              prepass=True)
    for j, (a, b) in enumerate(zip(fused, prepass, strict=True)):
        if name in WITH_EXP:
            tol = 1e-13 if dtype == F64 else 8 * torch.finfo(dtype).eps
            assert rel_err(a, b) <= tol, (j, rel_err(a, b))
        else:
            assert torch.equal(a, b), (j, (a - b).abs().max())


class _ReluGradVariant(tb.surrogate.ReluGrad):
    """A user subclass that changes the formula: must not be taken for a ReluGrad."""

    @staticmethod
    def _grad(x, alpha, width):
        return alpha * torch.clamp_min(width - torch.abs(x), 0.0) ** 2


@needs_triton
def test_surrogate_selection_by_exact_class(K):
    """Which surrogates the kernel computes: the listed classes by exact type (aliases too), not
    subclasses or callables, with the hyperparameters turned into the constants of ``_grad``."""
    sur = tb.surrogate
    assert set(ops.FUSED_SURROGATES) == set(SURROGATE_CASES)
    assert {type(getattr(sur, n)()) for n in ops.FUSED_SURROGATES} == set(ops._fused_table())
    formulas = {n: ops.fused_surrogate(getattr(sur, n)())[0] for n in ops.FUSED_SURROGATES}
    assert formulas["SuperSpike"] == formulas["InvSquareGrad"]  # one formula
    assert set(formulas.values()) == set(K.SURROGATE_FORMULAS)  # every formula is reached
    assert len(set(formulas.values())) == len(formulas) - 1
    assert 0 not in K.SURROGATE_FORMULAS.values()  # 0: the pre-pass
    assert ops.fused_surrogate(sur.Arctan(1.7))[1] == (0.5 * 1.7, 0.5 * math.pi * 1.7, 0.0)
    assert ops.fused_surrogate(sur.ReluGrad())[1] == (0.3, 1.0, 0.0)
    assert ops.fused_surrogate(sur.FastSigmoid(2.0)) == ops.fused_surrogate(sur.SuperSpike(2.0))
    for other in (_ReluGradVariant(), sur.ReluGrad().surrogate_grad, sur.MultiGaussianGrad(),
                  sur.S2NN(), sur.QPseudoSpike(), lambda z: z):
        assert ops.fused_surrogate(other) is None, other
    # the subclass goes through the torch pre-pass, with its own formula
    spk = _ReluGradVariant(alpha=0.5)
    args = make_case(T=6, state=(2, 9), dtype=F64, seed=8)
    out = ops._multistep_lif_torch(*args, False)
    grads = incoming(out[2], out[1], "svh")
    got = kernel_backward(K, grads, out, args, False, False, spk, ALL, block=8)
    ref = reference_grads(grads, args, False, False, spk)
    base = kernel_backward(K, grads, out, args, False, False, sur.ReluGrad(alpha=0.5), ALL,
                           block=8)
    assert not torch.equal(got[0], base[0])
    for g, r in zip(got, ref, strict=True):
        torch.testing.assert_close(g.cpu(), r, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- dispatch glue


@needs_triton
def test_op_cuda_glue_uses_the_kernels(K, monkeypatch):
    """The functions registered as the ops' CUDA kernels (on CPU tensors here, through the
    interpreter): they call the launchers and give the torch path's values."""
    calls = []
    for name in ("multistep_lif_forward", "multistep_lif_backward"):
        real = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *a, _real=real, _n=name, **kw: (
            calls.append(_n), _real(*a, **kw))[1])
    spk = tb.surrogate.Sigmoid(2.0)
    key = surrogate_key(spk)
    args = make_case(T=6, state=(2, 7), dtype=F64, seed=4)
    if ON_GPU:  # the real dispatch, forward and backward through autograd
        leaves = [t.clone().requires_grad_(True) for t in args]
        out = multistep_lif(*leaves, spk_fun=spk)
        got = torch.autograd.grad(out[0].sum() + out[1].sum(), leaves)
        ref = reference_grads((torch.ones_like(out[0]), torch.ones_like(out[1]), None), args,
                              False, False, spk)
        for g, r in zip(got, ref, strict=True):
            torch.testing.assert_close(g.cpu(), r, rtol=1e-10, atol=1e-10)
        assert calls == ["multistep_lif_forward", "multistep_lif_backward"]
        return
    out = ops._multistep_lif_cuda(*args, False, False, *key)
    for a, b in zip(out, ops._multistep_lif_torch(*args, False), strict=True):
        assert torch.equal(a, b)
    grads = incoming(out[2], out[1], "sv")
    needs = [True, True, False, True, True, False]
    got = ops._multistep_lif_backward_cuda(*grads, out[2], args[1], args[0], *args[2:], False,
                                           False, *key, needs)
    want = torch_backward(grads, out, args, False, False, spk, needs)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
    assert calls == ["multistep_lif_forward", "multistep_lif_backward"]


@needs_triton
def test_env_switch_and_unsupported_dtypes_take_the_torch_path(K, monkeypatch):
    calls = []
    for i, name in enumerate(("multistep_lif_forward", "multistep_lif_backward")):
        real = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *a, _real=real, _i=i + 1, **kw: (
            calls.append(_i), _real(*a, **kw))[1])
    spk = tb.surrogate.ReluGrad()
    key = surrogate_key(spk)
    args = make_case(T=4, state=(2, 5), dtype=F64)
    monkeypatch.setenv(kernels.DISABLE_ENV, "1")
    out = ops._multistep_lif_cuda(*args, True, False, *key)
    grads_args = (*incoming(out[2], out[1], "s"), out[2], args[1], args[0], *args[2:], True,
                  False, *key, ALL)
    ops._multistep_lif_backward_cuda(*grads_args)
    assert not calls
    monkeypatch.delenv(kernels.DISABLE_ENV)
    half = tuple(t.half() for t in args)  # float16: the kernels do not compute in half
    out_h = ops._multistep_lif_cuda(*half, True, False, *key)
    for a, b in zip(out_h, ops._multistep_lif_torch(*half, True), strict=True):
        assert torch.equal(a, b)
    mixed = (args[0], args[1], args[2].float(), *args[3:])  # mixed dtypes: torch's promotion
    for a, b in zip(ops._multistep_lif_cuda(*mixed, True, False, *key),
                    ops._multistep_lif_torch(*mixed, True), strict=True):
        assert torch.equal(a, b)
    assert not calls
    ops._multistep_lif_cuda(*args, True, False, *key)
    ops._multistep_lif_backward_cuda(*grads_args)
    assert calls == [1, 2]


# ---------------------------------------------------------------- compiled code, GPU check

_AOT_SCRIPT = r"""
import importlib
import sys
import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from torchbrain import surrogate as sur
from torchbrain.kernels import multistep_lif as K

ops = importlib.import_module("torchbrain.ops.multistep_lif")  # the attribute is the function

assert not K._forward_kernel.__class__.__name__.startswith("Interpreted")
TARGET = GPUTarget("cuda", 90, 32)
FWD = ("x_ptr", "v0_ptr", "a_ptr", "b_ptr", "th_ptr", "reset_ptr", "spikes_ptr", "h_ptr", "v_ptr")
BWD = ("h_ptr", "sg_ptr", "gs_ptr", "gh_ptr", "x_ptr", "v0_ptr", "a_ptr", "b_ptr", "th_ptr",
       "reset_ptr", "gv_ptr", "dx_ptr", "acc_a_ptr", "acc_b_ptr", "acc_th_ptr", "acc_z_ptr",
       "acc_r_ptr")
FLAGS = dict(SURROGATE=0, LIBDEVICE=True, HAS_GS=True, HAS_GH=True, HARD=False, DETACH=False,
             NEED_X=True, NEED_A=True, NEED_B=True, NEED_TH_RESET=True, BLOCK=512)
IDS = {n: K.SURROGATE_FORMULAS[ops.fused_surrogate(getattr(sur, n)())[0]]
       for n in ops.FUSED_SURROGATES}
WITH_EXP = {"Sigmoid", "GaussianGrad", "ERF", "PiecewiseExp", "SlayerGrad"}
NO_EXP_IDS = {0} | {i for n, i in IDS.items() if n not in WITH_EXP}


def fwd(ty, hard):
    sig = {n: "*" + ty for n in FWD}
    sig.update(S="i32", T="i32", HARD="constexpr", BLOCK="constexpr")
    return K._forward_kernel, sig, dict(HARD=hard, BLOCK=512), True


def bwd(ty, **flags):
    sig = {n: "*" + ty for n in BWD}
    sig.update(S="i32", t0="i32", t1="i32", gs_step="i32", gh_step="i32", c0="fp64", c1="fp64",
               c2="fp64")
    consts = dict(FLAGS, **flags)
    sig.update({k: "constexpr" for k in consts})
    return K._backward_kernel, sig, consts, False  # the launcher's fp fusion: off in backward


builds = [fwd("fp32", False), fwd("fp64", True), bwd("fp32"), bwd("fp64", HARD=True),
          bwd("fp32", HARD=True, DETACH=True, HAS_GH=False, NEED_A=False, NEED_B=False),
          bwd("fp32", HAS_GS=False, NEED_TH_RESET=False, NEED_X=False)]
# every surrogate computed in the kernel, in both dtypes
builds += [bwd(ty, SURROGATE=i, HARD=i % 2 == 0) for i in sorted(set(IDS.values()))
           for ty in ("fp32", "fp64")]
try:
    sources = [(ASTSource(fn=fn, signature=sig, constexprs=c), c, fusion)
               for fn, sig, c, fusion in builds]
except Exception as exc:  # another Triton's ahead-of-time API
    print(f"SKIP ASTSource API of triton {triton.__version__}: {exc!r}")
    sys.exit(0)
for src, consts, fusion in sources:
    compiled = triton.compile(src, target=TARGET,
                              options=dict(num_warps=4, enable_fp_fusion=fusion))
    assert "cubin" in compiled.asm, src.name
    if consts.get("SURROGATE") in NO_EXP_IDS:
        # contraction off: no fma, the formulas round as torch's separate ops (libdevice's
        # exp has its own explicit fmas)
        assert "fma" not in compiled.asm["ptx"], consts
print("COMPILED", len(sources))

# the launcher passes the surrogate's constants as Python floats: the kernel's annotations must
# make them float64 arguments (Triton types an unannotated float as float32)
try:
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    fn = K._backward_kernel
    binder = create_function_from_signature(fn.signature, fn.params, make_backend(TARGET))
except Exception as exc:  # another Triton's internals
    print(f"BOUND-SKIP {exc!r}")
    sys.exit(0)
values = dict(FLAGS, SURROGATE=IDS["ReluGrad"], c0=0.3, c1=1.0, c2=0.0)
args = [torch.empty(1) if n.endswith("_ptr") else values.get(n, 16) for n in fn.arg_names]
_, spec, _ = binder(*args, num_warps=4, enable_fp_fusion=False)
types = dict(zip(fn.arg_names, (t for t, _ in spec), strict=True))
assert types["c0"] == types["c1"] == types["c2"] == "fp64", types
print("BOUND fp64")
"""


@needs_triton
def test_kernels_compile_for_hopper_without_a_gpu(tmp_path):
    """The interpreter does not type-check like the compiler: build real sm_90 binaries (every
    surrogate id, both dtypes; no contraction where the formulas must round like torch; the
    surrogate constants bound as float64 arguments)."""
    proc = compile_for_hopper(_AOT_SCRIPT, tmp_path, {"TRITON_DEFAULT_FP_FUSION": "1"})
    assert proc.returncode == 0 and "COMPILED 34" in proc.stdout, proc.stderr[-3000:]
    assert "BOUND fp64" in proc.stdout or "BOUND-SKIP" in proc.stdout, proc.stdout


@needs_triton
def test_gpu_check_script_dry_run(K, monkeypatch):
    """benchmarks/gpu/check_multistep_lif.py's own code, on the interpreter at tiny sizes."""
    lines = []
    result, passed, failures = dry_run_check_script(
        "check_multistep_lif", log=lambda *a: lines.append(a))
    assert not failures, failures
    assert len(passed) >= 10
    assert [row["matmul"] for row in result["bench"]] == ["fp32", "tf32"]
    row = result["bench"][0]
    assert row["ratio_kernels"] > 0 and 0 <= row["spike_rate"] <= 1
    assert os.environ.get(kernels.DISABLE_ENV) is None  # the benchmark restored the switch
    forward = [v for k, v in result["checks"].items() if k.startswith("msl forward state")]
    assert forward and all(r["bit_equal_h_vs_cpu_torch"] == 1.0 for r in forward)
