"""The Triton kernels of the event-driven ELL op against the pure-torch references.

Without a GPU the kernels run on CPU tensors through Triton's interpreter (``TRITON_INTERPRET=1``,
small sizes); with CUDA the same tests run natively. The kernel tests are skipped, with the reason,
when Triton cannot be imported; the dispatch glue and the backward op are tested either way.
"""

import importlib
import os
import sys

import pytest
import torch

from torchbrain import kernels
from torchbrain.ops import event_ell as ops_ell
from torchbrain.ops import event_ell_matvec, event_ell_matvec_reference

from .triton_interpreter import (
    DEVICE,
    ON_GPU,
    TRITON_ERROR,
    compile_for_hopper,
    kernel_environment,
    load_kernels,
    needs_triton,
    skip_unless_interpreter_loops,
)

MODULE = "torchbrain.kernels.event_ell"


@pytest.fixture(scope="module")
def K():
    """``torchbrain.kernels.event_ell``, imported through Triton's interpreter on the CPU."""
    return load_kernels(MODULE, "_scatter_kernel", _probe_interpreter)


def _probe_interpreter(mod):
    def tiny():
        mod.compact_events(torch.ones(3), block=4)  # no loop: must work everywhere
        mod.event_ell_matvec(torch.ones(2), torch.zeros(2, 1, dtype=torch.int32),
                             torch.tensor(1.0), 1)

    skip_unless_interpreter_loops(tiny)


@pytest.fixture(autouse=True)
def _interpreter_env(monkeypatch):
    kernel_environment(monkeypatch)


def random_case(n_pre=37, n_post=29, k=7, batch=(3,), homogeneous=False, p=0.3, seed=0,
                dtype=torch.float32, index_dtype=torch.int32, graded=False):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n_post, (n_pre, k), generator=g, dtype=index_dtype)
    w = (torch.tensor(0.7, dtype=dtype) if homogeneous
         else torch.randn(n_pre, k, generator=g, dtype=dtype))
    s = (torch.rand(*batch, n_pre, generator=g) < p).to(dtype)
    if graded:
        s = s * torch.randn(*batch, n_pre, generator=g, dtype=dtype)
    return s.to(DEVICE), idx.to(DEVICE), w.to(DEVICE), n_post


def rel_err(x, ref):
    ref = ref.double().cpu()
    return ((x.double().cpu() - ref).norm() / ref.norm().clamp_min(1e-300)).item()


def reference64(s, idx, w, n_post):
    return event_ell_matvec_reference(s.double().cpu(), idx.cpu(), w.double().cpu(), n_post)


# ---------------------------------------------------------------- no Triton needed


def test_available_follows_import_and_env(monkeypatch):
    assert kernels.available() is (TRITON_ERROR is None)
    monkeypatch.setenv(kernels.DISABLE_ENV, "1")
    assert kernels.available() is False


def test_missing_triton_means_unavailable_and_torch_fallback(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` now raises ImportError
    kernels.triton_version.cache_clear()
    try:
        assert kernels.triton_version() is None and kernels.available() is False
        # the op's CUDA kernel falls back to torch; called directly on CPU tensors here
        s, idx, w, n_post = random_case(batch=(2,), dtype=torch.float64)
        s, idx, w = s.cpu(), idx.cpu(), w.cpu()
        torch.testing.assert_close(ops_ell._event_ell_matvec_cuda(s, idx, w, n_post),
                                   event_ell_matvec_reference(s, idx, w, n_post))
        go = torch.randn(2, n_post, dtype=torch.float64)
        gs, gw = ops_ell._event_ell_matvec_backward_cuda(go, s, idx, w, True, False)
        torch.testing.assert_close(gs, ops_ell._backward_torch(go, s, idx, w, True, False)[0])
        assert gw.numel() == 0
    finally:
        kernels.triton_version.cache_clear()


def test_unknown_attribute_of_kernels_package():
    with pytest.raises(AttributeError, match="no_such_kernel"):
        kernels.no_such_kernel  # noqa: B018


@pytest.mark.parametrize("homogeneous", [True, False])
def test_backward_op_opcheck_and_values(homogeneous):
    s, idx, w, n_post = random_case(batch=(2,), homogeneous=homogeneous, dtype=torch.float64)
    s, idx, w = s.cpu(), idx.cpu(), w.cpu()
    go = torch.randn(2, n_post, dtype=torch.float64)
    op = torch.ops.torchbrain.event_ell_matvec_backward.default
    for flags in [(True, True), (True, False), (False, True)]:
        torch.library.opcheck(op, (go, s, idx, w, *flags))
    s_ = s.clone().requires_grad_(True)
    w_ = w.clone().requires_grad_(True)
    torch.autograd.backward(event_ell_matvec_reference(s_, idx, w_, n_post), go)
    gs, gw = op(go, s, idx, w, True, True)
    torch.testing.assert_close(gs, s_.grad)
    torch.testing.assert_close(gw, w_.grad)


# ---------------------------------------------------------------- the kernels


@needs_triton
@pytest.mark.parametrize("n", [1, 31, 32, 33, 200])
def test_compaction_lists_every_event_once(K, n):
    g = torch.Generator().manual_seed(n)
    s = torch.where(torch.rand(n, generator=g) < 0.4, torch.randn(n, generator=g), 0.0)
    s[0] = float("nan")  # nonzero, like torch.nonzero
    s = s.to(DEVICE)
    events, count = K.compact_events(s, block=32)
    assert events.dtype == torch.int32 and count.shape == (1,)
    c = int(count.item())
    expected = torch.nonzero(s.cpu()).flatten().tolist()
    assert c == len(expected)
    assert sorted(events[:c].cpu().tolist()) == expected


@needs_triton
def test_compaction_of_no_and_all_events(K):
    for s in (torch.zeros(70), torch.ones(70)):
        events, count = K.compact_events(s.to(DEVICE), block=32)
        c = int(count.item())
        assert c == int(s.count_nonzero())
        assert sorted(events[:c].cpu().tolist()) == list(range(c))


@needs_triton
@pytest.mark.parametrize("homogeneous", [True, False])
@pytest.mark.parametrize("batch", [(), (1,), (2, 3)])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_forward_three_way(K, homogeneous, batch, p):
    """float32 kernel vs float32 torch path vs float64 reference, graded events."""
    s, idx, w, n_post = random_case(batch=batch, homogeneous=homogeneous, p=p, graded=True,
                                    seed=len(batch))
    out = K.event_ell_matvec(s, idx, w, n_post, compact_block=32)
    assert out.shape == (*batch, n_post) and out.dtype == torch.float32
    ref = reference64(s, idx, w, n_post)
    if p == 0.0:
        assert torch.equal(out.cpu(), torch.zeros_like(out.cpu()))
        return
    torch_err = rel_err(ops_ell._event_ell_matvec_torch(s.cpu(), idx.cpu(), w.cpu(), n_post), ref)
    assert rel_err(out, ref) <= 4 * torch_err + 1e-6


@needs_triton
@pytest.mark.parametrize("homogeneous", [True, False])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_forward_float64_striding_and_ragged_tiles(K, homogeneous, index_dtype):
    # 2 programs x 4 events per tile over 50 events; K = 10 in column chunks of 4 (ragged)
    s, idx, w, n_post = random_case(n_pre=50, n_post=23, k=10, batch=(2,), p=0.6, seed=3,
                                    homogeneous=homogeneous, dtype=torch.float64, graded=True,
                                    index_dtype=index_dtype)
    out = K.event_ell_matvec(s, idx, w, n_post, compact_block=16, programs=2, block_e=4,
                             block_k=4)
    torch.testing.assert_close(out.cpu(), reference64(s, idx, w, n_post), rtol=1e-12,
                               atol=1e-12)


@needs_triton
@pytest.mark.parametrize("k", [1, 80, 1000])
def test_forward_default_tiles(K, k):
    s, idx, w, n_post = random_case(n_pre=9, n_post=300, k=k, batch=(2,), p=0.7, seed=k,
                                    dtype=torch.float64)
    out = K.event_ell_matvec(s, idx, w, n_post)
    torch.testing.assert_close(out.cpu(), reference64(s, idx, w, n_post))


@needs_triton
def test_scatter_block_sizes():
    mod = sys.modules.get(MODULE)
    if mod is None:  # only the host-side helper is used: no kernel runs here
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TRITON_INTERPRET", "1")
            mod = importlib.import_module(MODULE)
    assert mod.scatter_block_sizes(80) == (128, 16)
    assert mod.scatter_block_sizes(1000) == (16, 128)
    assert mod.scatter_block_sizes(7) == (256, 8)
    for k in range(1, 300):
        be, bk = mod.scatter_block_sizes(k)
        assert be * bk == mod.SCATTER_TILE and bk & (bk - 1) == 0
        assert -(-k // bk) * bk <= max(2 * k, k * 9 / 8 + 16)


@needs_triton
def test_duplicate_targets_and_graded_events(K):
    idx = torch.tensor([[2, 2, 2], [0, 1, 2]], dtype=torch.int32, device=DEVICE)
    out = K.event_ell_matvec(torch.tensor([1.0, 1.0], device=DEVICE), idx,
                             torch.tensor(0.5, device=DEVICE), 3)
    assert out.cpu().tolist() == [0.5, 0.5, 2.0]
    idx = torch.tensor([[0], [1]], dtype=torch.int32, device=DEVICE)
    out = K.event_ell_matvec(torch.tensor([0.25, 2.0], device=DEVICE), idx,
                             torch.tensor(2.0, device=DEVICE), 2)
    assert out.cpu().tolist() == [0.5, 4.0]
    # every synapse of every neuron onto one target: heavy atomic contention
    idx = torch.zeros(40, 12, dtype=torch.int32, device=DEVICE)
    out = K.event_ell_matvec(torch.ones(40, device=DEVICE), idx,
                             torch.tensor(0.25, device=DEVICE), 4, compact_block=16)
    assert out.cpu().tolist() == [120.0, 0.0, 0.0, 0.0]


@needs_triton
def test_empty_shapes(K):
    idx = torch.zeros(5, 0, dtype=torch.int32, device=DEVICE)
    out = K.event_ell_matvec(torch.ones(2, 5, device=DEVICE), idx, torch.tensor(1.0), 3)
    assert out.shape == (2, 3) and not out.any()
    s, idx, w, n_post = random_case(batch=(0,))
    assert K.event_ell_matvec(s, idx, w, n_post).shape == (0, n_post)
    s, idx, w, _ = random_case(n_post=1)
    assert K.event_ell_matvec(s, idx, w, 0).shape == (3, 0)


@needs_triton
def test_half_precision_accumulates_in_float32(K):
    s, idx, w, n_post = random_case(n_pre=60, k=16, batch=(2,), p=0.5, graded=True)
    out = K.event_ell_matvec(s.half(), idx, w.half(), n_post)
    assert out.dtype == torch.float16
    ref = reference64(s.half(), idx, w.half(), n_post)
    assert rel_err(out, ref) < 2e-3


@needs_triton
@pytest.mark.parametrize("homogeneous", [True, False])
@pytest.mark.parametrize("batch", [(), (3,)])
def test_backward_kernels_match_autograd_of_reference(K, homogeneous, batch):
    s, idx, w, n_post = random_case(n_pre=45, k=9, batch=batch, homogeneous=homogeneous, p=0.4,
                                    graded=True, dtype=torch.float64, seed=7)
    go = torch.randn(*batch, n_post, dtype=torch.float64)
    s_ = s.cpu().clone().requires_grad_(True)
    w_ = w.cpu().clone().requires_grad_(True)
    torch.autograd.backward(event_ell_matvec_reference(s_, idx.cpu(), w_, n_post), go)
    gs, gw = K.event_ell_matvec_backward(go.to(DEVICE), s, idx, w)
    torch.testing.assert_close(gs.cpu(), s_.grad)
    torch.testing.assert_close(gw.cpu(), w_.grad)
    gs, gw = K.event_ell_matvec_backward(go.to(DEVICE), s, idx, w, need_spikes=False)
    assert gs is None and gw is not None
    gs, gw = K.event_ell_matvec_backward(go.to(DEVICE), s, idx, w, need_weights=False)
    assert gw is None
    torch.testing.assert_close(gs.cpu(), s_.grad)


@needs_triton
def test_backward_float32_expanded_grad_and_no_events(K):
    s, idx, w, n_post = random_case(batch=(2,), p=0.0)
    go = torch.ones((), device=DEVICE).expand(2, n_post)  # the gradient of .sum(): stride 0
    gs, gw = K.event_ell_matvec_backward(go, s, idx, w)
    assert not gw.any()  # no event, no weight gradient
    expected = ops_ell._backward_torch(go.cpu(), s.cpu(), idx.cpu(), w.cpu(), True, True)[0]
    torch.testing.assert_close(gs.cpu(), expected)


@needs_triton
@pytest.mark.parametrize("homogeneous", [True, False])
def test_op_cuda_kernel_glue(K, homogeneous):
    """The functions registered as the op's CUDA kernels, run here on the interpreter."""
    s, idx, w, n_post = random_case(batch=(2,), homogeneous=homogeneous, dtype=torch.float64,
                                    graded=True)
    ref = reference64(s, idx, w, n_post)
    if ON_GPU:  # the real dispatch, forward and backward
        s_ = s.clone().requires_grad_(True)
        w_ = w.clone().requires_grad_(True)
        out = event_ell_matvec(s_, idx, w_, n_post)
        out.backward(torch.ones_like(out))
        s_ref = s.cpu().clone().requires_grad_(True)
        w_ref = w.cpu().clone().requires_grad_(True)
        event_ell_matvec_reference(s_ref, idx.cpu(), w_ref, n_post).sum().backward()
        torch.testing.assert_close(s_.grad.cpu(), s_ref.grad)
        torch.testing.assert_close(w_.grad.cpu(), w_ref.grad)
    else:
        out = ops_ell._event_ell_matvec_cuda(s, idx, w, n_post)
    torch.testing.assert_close(out.cpu(), ref)
    go = torch.randn(2, n_post, dtype=torch.float64, device=DEVICE)
    gs, gw = ops_ell._event_ell_matvec_backward_cuda(go, s, idx, w, True, True)
    ts, tw = ops_ell._backward_torch(go, s, idx, w, True, True)
    torch.testing.assert_close(gs, ts)
    torch.testing.assert_close(gw, tw)
    # non-float spikes are left to the torch path
    s_int = (s != 0).to(torch.int64)
    torch.testing.assert_close(ops_ell._event_ell_matvec_cuda(s_int, idx, w.long(), n_post),
                               ops_ell._event_ell_matvec_torch(s_int, idx, w.long(), n_post))


@needs_triton
def test_env_switch_forces_torch_path(K, monkeypatch):
    monkeypatch.setenv(kernels.DISABLE_ENV, "1")
    calls = []
    monkeypatch.setattr(K, "event_ell_matvec", lambda *a, **kw: calls.append(1))
    s, idx, w, n_post = random_case(dtype=torch.float64)
    out = ops_ell._event_ell_matvec_cuda(s, idx, w, n_post)
    assert not calls
    torch.testing.assert_close(out.cpu(), reference64(s, idx, w, n_post))
    monkeypatch.delenv(kernels.DISABLE_ENV)
    ops_ell._event_ell_matvec_cuda(s, idx, w, n_post)
    assert calls == [1]


_AOT_SCRIPT = r"""
import sys
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from torchbrain.kernels import event_ell as K

assert not K._scatter_kernel.__class__.__name__.startswith("Interpreted")
f32 = dict(spikes_ptr="*fp32", events_ptr="*i32", count_ptr="*i32")
builds = [
    (K._compact_kernel, dict(f32, n="i32", BLOCK="constexpr"), dict(BLOCK=1024)),
    (K._scatter_kernel, dict(f32, idx_ptr="*i32", w_ptr="*fp32", out_ptr="*fp32", n_pre="i32",
                             n_post="i32", K="i32", HOMOGENEOUS="constexpr", BLOCK_E="constexpr",
                             BLOCK_K="constexpr"), dict(HOMOGENEOUS=True, BLOCK_E=128, BLOCK_K=16)),
    (K._scatter_kernel, dict(f32, spikes_ptr="*bf16", idx_ptr="*i64", w_ptr="*bf16",
                             out_ptr="*fp32", n_pre="i32", n_post="i32", K="i32",
                             HOMOGENEOUS="constexpr", BLOCK_E="constexpr", BLOCK_K="constexpr"),
     dict(HOMOGENEOUS=False, BLOCK_E=16, BLOCK_K=128)),
    (K._grad_spikes_kernel, dict(grad_out_ptr="*fp32", idx_ptr="*i32", w_ptr="*fp32",
                                 grad_s_ptr="*fp32", n_pre="i32", n_post="i32", K="i32",
                                 HOMOGENEOUS="constexpr", ACC="constexpr", BLOCK_I="constexpr",
                                 BLOCK_K="constexpr"),
     dict(HOMOGENEOUS=False, ACC=tl.float32, BLOCK_I=32, BLOCK_K=64)),
    (K._grad_weights_kernel, dict(grad_out_ptr="*fp32", spikes_ptr="*fp32", idx_ptr="*i32",
                                  grad_w_ptr="*fp32", batch="i32", n_pre="i32", n_post="i32",
                                  K="i32", ACC="constexpr", BLOCK_I="constexpr",
                                  BLOCK_K="constexpr"),
     dict(ACC=tl.float64, BLOCK_I=32, BLOCK_K=64)),
]
try:
    sources = [ASTSource(fn=fn, signature=sig, constexprs=consts) for fn, sig, consts in builds]
except Exception as exc:  # another Triton's ahead-of-time API
    print(f"SKIP ASTSource API of triton {triton.__version__}: {exc!r}")
    sys.exit(0)
for src in sources:
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32))
    assert "cubin" in compiled.asm, src.name
print("COMPILED", len(sources))
"""


@needs_triton
def test_kernels_compile_for_hopper_without_a_gpu(tmp_path):
    """The interpreter does not type-check like the compiler: build real sm_90 binaries."""
    proc = compile_for_hopper(_AOT_SCRIPT, tmp_path, {"TRITON_DEFAULT_FP_FUSION": "1"})
    assert proc.returncode == 0 and "COMPILED 5" in proc.stdout, proc.stderr[-3000:]


def test_cpu_path_never_imports_kernels(monkeypatch):
    # the CPU path must not depend on Triton: poison the kernel module and run the op on CPU
    monkeypatch.setitem(sys.modules, MODULE, None)
    s, idx, w, n_post = random_case(batch=(2,), dtype=torch.float64)
    s, idx, w = s.cpu().requires_grad_(True), idx.cpu(), w.cpu()
    out = event_ell_matvec(s, idx, w, n_post)
    out.sum().backward()
    torch.testing.assert_close(out, event_ell_matvec_reference(s, idx, w, n_post))
    assert os.environ.get(kernels.DISABLE_ENV) is None
