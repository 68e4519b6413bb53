"""The Triton kernels of the event-driven CSR op against the pure-torch paths and references.

Without a GPU the kernels run on CPU tensors through Triton's interpreter (``TRITON_INTERPRET=1``,
small sizes); with CUDA the same tests run natively. Independent references: the dense
``event_csr_matvec_reference`` (a matrix product over ``csr_to_dense``) in float64, the op's
pure-torch path (``nonzero`` + ``repeat_interleave`` + ``index_add_``) for the float32 three-way
comparisons, and autograd through the dense reference for the gradients. Kernel tests are
skipped, with the reason, when Triton cannot be imported or its interpreter cannot run these
loops; the dispatch glue's fallbacks and the backward op are tested either way.
"""

import importlib
import sys

import pytest
import torch

from torchbrain import kernels
from torchbrain.ops.event_csr import event_csr_matvec, event_csr_matvec_reference

from .triton_interpreter import (
    DEVICE,
    ON_GPU,
    TRITON_ERROR,
    compile_for_hopper,
    dry_run_check_script,
    kernel_environment,
    load_kernels,
    needs_triton,
    skip_unless_interpreter_loops,
)

ops = sys.modules["torchbrain.ops.event_csr"]
MODULE = "torchbrain.kernels.event_csr"
ELL_MODULE = "torchbrain.kernels.event_ell"  # the compaction kernel lives there
F64 = torch.float64


@pytest.fixture(scope="module")
def K():
    """``torchbrain.kernels.event_csr`` (and the ELL module whose compaction it calls), imported
    through Triton's interpreter on the CPU."""
    return load_kernels(MODULE, "_scatter_kernel", _probe_interpreter,
                        also=((ELL_MODULE, "_compact_kernel"),))


def _probe_interpreter(mod):
    skip_unless_interpreter_loops(lambda: mod.event_csr_matvec(
        torch.ones(2), torch.tensor([0, 1, 1]), torch.zeros(1, dtype=torch.int32),
        torch.tensor(1.0), 1))


@pytest.fixture(autouse=True)
def _interpreter_env(monkeypatch):
    kernel_environment(monkeypatch)


def random_case(n_pre=41, n_post=23, max_fan=9, batch=(3,), homogeneous=False, p=0.4, seed=0,
                dtype=torch.float32, indptr_dtype=torch.int32, index_dtype=torch.int32,
                graded=False, hub=0, empty_last=True):
    """A ragged CSR table: row lengths uniform in 0..max_fan, rows 0, n_pre // 2 and (if
    ``empty_last``) the last forced empty, the last one else forced non-empty; targets drawn
    with replacement (duplicates within a row happen), optionally one row of ``hub`` synapses
    (row 1). Returns ``spikes, indptr, indices, weights, n_post``."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, max_fan + 1, (n_pre,), generator=g)
    counts[[0, n_pre // 2]] = 0
    counts[-1] = 0 if empty_last else max(max_fan, 1)
    if hub:
        counts[1] = hub
    indptr = torch.zeros(n_pre + 1, dtype=torch.int64)
    indptr[1:] = counts.cumsum(0)
    nnz = int(indptr[-1])
    indices = torch.randint(0, n_post, (nnz,), generator=g)
    w = (torch.tensor(0.7, dtype=dtype) if homogeneous
         else torch.randn(nnz, generator=g, dtype=F64).to(dtype))
    s = (torch.rand(*batch, n_pre, generator=g) < p).to(F64)
    if graded:
        s = s * torch.randn(*batch, n_pre, generator=g, dtype=F64)
    s[..., 1] = 1.0 if hub else s[..., 1]  # the hub fires
    return (s.to(DEVICE, dtype), indptr.to(DEVICE, indptr_dtype),
            indices.to(DEVICE, index_dtype), w.to(DEVICE), n_post)


def rel_err(x, ref):
    ref = ref.double().cpu()
    return ((x.double().cpu() - ref).norm() / ref.norm().clamp_min(1e-300)).item()


def reference64(s, indptr, indices, w, n_post):
    return event_csr_matvec_reference(s.double().cpu(), indptr.cpu(), indices.cpu(),
                                      w.double().cpu(), n_post)


def reference_grads(go, s, indptr, indices, w, n_post):
    """Autograd of the dense reference in float64: (grad to spikes, grad to weights)."""
    s_ = s.detach().double().cpu().requires_grad_(True)
    w_ = w.detach().double().cpu().requires_grad_(True)
    torch.autograd.backward(event_csr_matvec_reference(s_, indptr.cpu(), indices.cpu(), w_,
                                                       n_post), go.double().cpu())
    return s_.grad, w_.grad


def cpu(*ts):
    return tuple(t.cpu() for t in ts)


# ---------------------------------------------------------------- no Triton needed


def test_missing_triton_means_torch_fallback(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` now raises ImportError
    kernels.triton_version.cache_clear()
    try:
        assert kernels.available() is False
        s, indptr, idx, w, n_post = cpu(*random_case(dtype=F64)[:4]) + (23,)
        torch.testing.assert_close(ops._event_csr_matvec_cuda(s, indptr, idx, w, n_post),
                                   event_csr_matvec_reference(s, indptr, idx, w, n_post))
        go = torch.randn(3, n_post, dtype=F64)
        gs, gw = ops._event_csr_matvec_backward_cuda(go, s, indptr, idx, w, True, False)
        torch.testing.assert_close(gs, reference_grads(go, s, indptr, idx, w, n_post)[0])
        assert gw.numel() == 0
    finally:
        kernels.triton_version.cache_clear()


@pytest.mark.parametrize("homogeneous", [True, False])
def test_backward_op_opcheck_and_values(homogeneous):
    s, indptr, idx, w, n_post = cpu(*random_case(batch=(2,), homogeneous=homogeneous, dtype=F64,
                                                 graded=True)[:4]) + (23,)
    go = torch.randn(2, n_post, dtype=F64)
    op = torch.ops.torchbrain.event_csr_matvec_backward.default
    for flags in [(True, True), (True, False), (False, True)]:
        torch.library.opcheck(op, (go, s, indptr, idx, w, *flags))
    gs, gw = op(go, s, indptr, idx, w, True, True)
    rs, rw = reference_grads(go, s, indptr, idx, w, n_post)
    torch.testing.assert_close(gs, rs)
    torch.testing.assert_close(gw, rw)


def test_cpu_path_never_imports_kernels(monkeypatch):
    # the CPU path must not depend on Triton: poison the kernel module and run the op on CPU
    monkeypatch.setitem(sys.modules, MODULE, None)
    s, indptr, idx, w, n_post = cpu(*random_case(dtype=F64)[:4]) + (23,)
    s.requires_grad_(True)
    out = event_csr_matvec(s, indptr, idx, w, n_post)
    out.sum().backward()
    torch.testing.assert_close(out, event_csr_matvec_reference(s, indptr, idx, w, n_post))


# ---------------------------------------------------------------- the kernels


@needs_triton
@pytest.mark.parametrize("homogeneous", [True, False])
@pytest.mark.parametrize("batch", [(), (1,), (2, 3)])
@pytest.mark.parametrize("p", [0.0, 0.4, 1.0])
def test_forward_three_way(K, homogeneous, batch, p):
    """float32 kernel vs float32 torch path vs float64 reference, graded events."""
    s, indptr, idx, w, n_post = random_case(batch=batch, homogeneous=homogeneous, p=p,
                                            graded=True, seed=len(batch))
    out = K.event_csr_matvec(s, indptr, idx, w, n_post, compact_block=32)
    assert out.shape == (*batch, n_post) and out.dtype == torch.float32
    if p == 0.0:
        assert torch.equal(out.cpu(), torch.zeros_like(out.cpu()))
        return
    ref = reference64(s, indptr, idx, w, n_post)
    torch_err = rel_err(ops._event_csr_matvec_torch(*cpu(s, indptr, idx, w), n_post), ref)
    assert rel_err(out, ref) <= 4 * torch_err + 1e-6


@needs_triton
@pytest.mark.parametrize("homogeneous", [True, False])
@pytest.mark.parametrize("indptr_dtype,index_dtype", [(torch.int32, torch.int32),
                                                      (torch.int64, torch.int32),
                                                      (torch.int32, torch.int64),
                                                      (torch.int64, torch.int64)])
def test_forward_float64_striding_and_chunks(K, homogeneous, indptr_dtype, index_dtype):
    # 2 programs x 4 pieces per tile over ~60 pieces, rows of 0..9 cut into pieces of <= 4
    # synapses and walked in chunks of 8 lanes: pieces and rows cut by chunk ends, tiles of
    # several chunks, empty rows
    s, indptr, idx, w, n_post = random_case(n_pre=50, batch=(2,), p=0.6, seed=3,
                                            homogeneous=homogeneous, dtype=F64, graded=True,
                                            indptr_dtype=indptr_dtype, index_dtype=index_dtype)
    out = K.event_csr_matvec(s, indptr, idx, w, n_post, compact_block=16, programs=2,
                             block_e=4, chunk=8, piece=4)
    torch.testing.assert_close(out.cpu(), reference64(s, indptr, idx, w, n_post), rtol=1e-12,
                               atol=1e-12)


@needs_triton
@pytest.mark.parametrize("max_fan", [2, 160, 2000])
def test_forward_default_tiles(K, max_fan):
    # mean row length 1, 80 and 1000: the tile sizes the launcher picks (256/4 rows per tile)
    s, indptr, idx, w, n_post = random_case(n_pre=9, n_post=300, max_fan=max_fan, batch=(2,),
                                            p=0.7, seed=max_fan, dtype=F64)
    out = K.event_csr_matvec(s, indptr, idx, w, n_post)
    torch.testing.assert_close(out.cpu(), reference64(s, indptr, idx, w, n_post))


@needs_triton
@pytest.mark.parametrize("block_e,piece", [(1, 4096), (8, 4096), (4, 64), (2, 128)])
def test_forward_long_row_next_to_short_ones(K, block_e, piece):
    """A hub of 700 synapses among rows of 0..3: packed chunks cross from row to row; the hub
    whole (piece 4096) or cut into pieces of 64 or 128 spread over tiles and programs."""
    s, indptr, idx, w, n_post = random_case(n_pre=30, n_post=50, max_fan=3, batch=(2,), p=0.5,
                                            hub=700, dtype=F64, graded=True, seed=5,
                                            empty_last=False)
    out = K.event_csr_matvec(s, indptr, idx, w, n_post, block_e=block_e, chunk=64, programs=3,
                             piece=piece)
    torch.testing.assert_close(out.cpu(), reference64(s, indptr, idx, w, n_post), rtol=1e-12,
                               atol=1e-12)


def test_tile_sizes():
    mod = sys.modules.get(MODULE)
    if TRITON_ERROR is not None:
        pytest.skip(f"triton is not importable ({TRITON_ERROR})")
    if mod is None:  # only the host-side helper is used: no kernel runs here
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TRITON_INTERPRET", "1")
            mod = importlib.import_module(MODULE)
    assert mod.tile_sizes(1000 * 100, 100) == (4, 512)
    assert mod.tile_sizes(80 * 100, 100) == (32, 512)
    assert mod.tile_sizes(100, 100) == (256, 256)
    assert mod.tile_sizes(0, 100) == (1, 16) and mod.tile_sizes(0, 0) == (1, 16)
    for nnz in (1, 7, 99, 1000, 4321, 10**5, 10**7):
        rows, chunk = mod.tile_sizes(nnz, 100)
        mean = nnz / 100
        assert rows & (rows - 1) == 0 and chunk & (chunk - 1) == 0 and 16 <= chunk <= mod.CHUNK
        # a tile reaches TILE_WORK synapses (unless capped) without overshooting twice over
        assert rows == mod.MAX_TILE_ROWS or rows * mean >= mod.TILE_WORK
        assert rows == 1 or (rows // 2) * mean < mod.TILE_WORK


@needs_triton
@pytest.mark.parametrize("piece,block", [(4, 16), (8, 32), (4096, 1024)])
def test_compaction_lists_every_piece_once(K, piece, block):
    """(event, piece) pairs against an enumeration in Python: every fired entry with a
    non-empty row once per piece of at most ``piece`` synapses, nothing else."""
    s, indptr, idx, w, _ = random_case(n_pre=45, max_fan=20, batch=(3,), p=0.5, hub=50,
                                       graded=True, seed=piece)
    s.view(-1)[7] = float("nan")  # nonzero, like torch.nonzero
    flat = s.reshape(-1)
    events, pieces, count = K.compact_pieces(flat, indptr, idx.numel(), piece, block)
    c = int(count.item())
    lengths = (indptr[1:] - indptr[:-1]).cpu().tolist()
    expected = sorted((i, j) for i, v in enumerate(flat.cpu().tolist()) if v != 0
                      for j in range(-(-lengths[i % 45] // piece)))
    assert c == len(expected) and c <= events.numel() == pieces.numel()
    got = sorted(zip(events[:c].cpu().tolist(), pieces[:c].cpu().tolist(), strict=True))
    assert got == expected
    if piece == 4:  # the hub (50 synapses) fired in every batch element: 13 pieces each
        assert sum(1 for e, _ in got if e % 45 == 1) == 3 * 13


@needs_triton
def test_duplicate_targets_contention_and_graded_events(K):
    dev = dict(device=DEVICE)
    indptr = torch.tensor([0, 3, 3, 6], dtype=torch.int32, **dev)  # row 1 empty
    idx = torch.tensor([2, 2, 2, 0, 1, 2], dtype=torch.int32, **dev)
    out = K.event_csr_matvec(torch.ones(3, **dev), indptr, idx, torch.tensor(0.5, **dev), 3)
    assert out.cpu().tolist() == [0.5, 0.5, 2.0]
    out = K.event_csr_matvec(torch.tensor([0.25, 7.0, 2.0], **dev), indptr, idx,
                             torch.tensor(2.0, **dev), 3)
    assert out.cpu().tolist() == [4.0, 4.0, 5.5]
    # every synapse of every neuron onto one target: heavy atomic contention
    indptr = torch.arange(0, 41 * 12, 12, dtype=torch.int64, **dev)
    out = K.event_csr_matvec(torch.ones(40, **dev), indptr,
                             torch.zeros(40 * 12, dtype=torch.int32, **dev),
                             torch.tensor(0.25, **dev), 4, compact_block=16)
    assert out.cpu().tolist() == [120.0, 0.0, 0.0, 0.0]


@needs_triton
def test_empty_shapes(K):
    dev = dict(device=DEVICE)
    no_synapse = torch.zeros(6, dtype=torch.int32, **dev)
    out = K.event_csr_matvec(torch.ones(2, 5, **dev), no_synapse,
                             torch.zeros(0, dtype=torch.int32, **dev), torch.zeros(0, **dev), 3)
    assert out.shape == (2, 3) and not out.any()
    s, indptr, idx, w, n_post = random_case(batch=(0,))
    assert K.event_csr_matvec(s, indptr, idx, w, n_post).shape == (0, n_post)
    s, indptr, idx, w, _ = random_case(n_post=1)
    assert K.event_csr_matvec(s, indptr, idx, w, 0).shape == (3, 0)
    no_rows = torch.zeros(1, dtype=torch.int32, **dev)
    empty_idx = torch.zeros(0, dtype=torch.int32, **dev)
    out = K.event_csr_matvec(torch.ones(2, 0, **dev), no_rows, empty_idx, torch.zeros(0, **dev), 3)
    assert out.shape == (2, 3) and not out.any()
    gs, gw = K.event_csr_matvec_backward(torch.ones(2, 3, **dev), torch.ones(2, 0, **dev),
                                         no_rows, empty_idx, torch.zeros(0, **dev))
    assert gs.shape == (2, 0) and gw.shape == (0,)


@needs_triton
def test_half_precision_accumulates_in_float32(K):
    s, indptr, idx, w, n_post = random_case(n_pre=60, max_fan=30, batch=(2,), p=0.5,
                                            graded=True)
    out = K.event_csr_matvec(s.half(), indptr, idx, w.half(), n_post)
    assert out.dtype == torch.float16
    assert rel_err(out, reference64(s.half(), indptr, idx, w.half(), n_post)) < 2e-3


@needs_triton
@pytest.mark.parametrize("homogeneous", [True, False])
@pytest.mark.parametrize("batch", [(), (3,)])
@pytest.mark.parametrize("tiles", [{}, dict(block_i=1, chunk=16), dict(block_i=4, chunk=16)])
def test_backward_kernels_match_autograd_of_reference(K, homogeneous, batch, tiles):
    """float64: every gradient within 1e-12 of autograd through the dense reference. Small
    tiles cut rows across chunks (the segmented sum's carry) and put empty rows at block ends."""
    s, indptr, idx, w, n_post = random_case(n_pre=45, max_fan=20, batch=batch,
                                            homogeneous=homogeneous, p=0.4, graded=True,
                                            dtype=F64, seed=7, indptr_dtype=torch.int64,
                                            empty_last=not tiles)
    go = torch.randn(*batch, n_post, dtype=F64)
    rs, rw = reference_grads(go, s, indptr, idx, w, n_post)
    gs, gw = K.event_csr_matvec_backward(go.to(DEVICE), s, indptr, idx, w, **tiles)
    assert gs.dtype == s.dtype and gw.dtype == w.dtype and gw.shape == w.shape
    torch.testing.assert_close(gs.cpu(), rs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw.cpu(), rw, rtol=1e-12, atol=1e-12)
    gs, gw = K.event_csr_matvec_backward(go.to(DEVICE), s, indptr, idx, w, need_spikes=False,
                                         **tiles)
    assert gs is None and gw is not None
    gs, gw = K.event_csr_matvec_backward(go.to(DEVICE), s, indptr, idx, w, need_weights=False,
                                         **tiles)
    assert gw is None
    torch.testing.assert_close(gs.cpu(), rs, rtol=1e-12, atol=1e-12)


@needs_triton
def test_backward_long_row_and_determinism(K):
    # a hub row of 700 synapses walked in chunks of 64: 11 carries into the next chunk
    s, indptr, idx, w, n_post = random_case(n_pre=30, n_post=50, max_fan=3, batch=(2,), p=0.5,
                                            hub=700, dtype=F64, graded=True, seed=5,
                                            empty_last=False)
    go = torch.randn(2, n_post, dtype=F64)
    rs, rw = reference_grads(go, s, indptr, idx, w, n_post)
    first = K.event_csr_matvec_backward(go.to(DEVICE), s, indptr, idx, w, block_i=8, chunk=64)
    torch.testing.assert_close(first[0].cpu(), rs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(first[1].cpu(), rw, rtol=1e-12, atol=1e-12)
    again = K.event_csr_matvec_backward(go.to(DEVICE), s, indptr, idx, w, block_i=8, chunk=64)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))  # no atomics


@needs_triton
@pytest.mark.parametrize("homogeneous", [True, False])
def test_backward_float32_three_way_expanded_grad_and_no_events(K, homogeneous):
    s, indptr, idx, w, n_post = random_case(n_pre=60, max_fan=30, batch=(2,), p=0.5,
                                            graded=True, homogeneous=homogeneous, seed=11)
    go = torch.randn(2, n_post, device=DEVICE)
    rs, rw = reference_grads(go, s, indptr, idx, w, n_post)
    ts, tw = ops._csr_backward_torch(*cpu(go, s, indptr, idx, w), True, True)
    gs, gw = K.event_csr_matvec_backward(go, s, indptr, idx, w)
    assert rel_err(gs, rs) <= 4 * rel_err(ts, rs) + 1e-6
    assert rel_err(gw, rw) <= 4 * rel_err(tw, rw) + 1e-6
    # the gradient of .sum(): stride 0; and no event at all -> no weight gradient
    go = torch.ones((), device=DEVICE).expand(2, n_post)
    gs, gw = K.event_csr_matvec_backward(go, torch.zeros_like(s), indptr, idx, w)
    assert not gw.any()
    expected = ops._csr_backward_torch(*cpu(go, torch.zeros_like(s), indptr, idx, w), True,
                                       False)[0]
    torch.testing.assert_close(gs.cpu(), expected)


@needs_triton
@pytest.mark.parametrize("homogeneous", [True, False])
def test_op_cuda_kernel_glue(K, homogeneous, monkeypatch):
    """The functions registered as the op's CUDA kernels (run here on the interpreter) call the
    kernels and give the torch path's values; non-float spikes and other index dtypes keep the
    torch path."""
    s, indptr, idx, w, n_post = random_case(batch=(2,), homogeneous=homogeneous, dtype=F64,
                                            graded=True)
    ref = reference64(s, indptr, idx, w, n_post)
    go = torch.randn(2, n_post, dtype=F64, device=DEVICE)
    rs, rw = reference_grads(go, s, indptr, idx, w, n_post)
    if ON_GPU:  # the real dispatch, forward and backward
        s_ = s.clone().requires_grad_(True)
        w_ = w.clone().requires_grad_(True)
        out = event_csr_matvec(s_, indptr, idx, w_, n_post)
        out.backward(go)
        torch.testing.assert_close(s_.grad.cpu(), rs)
        torch.testing.assert_close(w_.grad.cpu(), rw)
        torch.testing.assert_close(out.detach().cpu(), ref)
    calls = []
    for name in ("event_csr_matvec", "event_csr_matvec_backward"):
        real = getattr(K, name)
        monkeypatch.setattr(K, name, lambda *a, _real=real, _name=name, **kw:
                            calls.append(_name) or _real(*a, **kw))
    torch.testing.assert_close(ops._event_csr_matvec_cuda(s, indptr, idx, w, n_post).cpu(), ref)
    gs, gw = ops._event_csr_matvec_backward_cuda(go, s, indptr, idx, w, True, True)
    torch.testing.assert_close(gs.cpu(), rs)
    torch.testing.assert_close(gw.cpu(), rw)
    gs, gw = ops._event_csr_matvec_backward_cuda(go, s, indptr, idx, w, False, True)
    assert gs.numel() == 0 and gw.shape == w.shape
    assert calls == ["event_csr_matvec", "event_csr_matvec_backward",
                     "event_csr_matvec_backward"]
    # non-float spikes and int16 tables are left to the torch path
    s_int = (s != 0).to(torch.int64)
    torch.testing.assert_close(ops._event_csr_matvec_cuda(s_int, indptr, idx, w.long(), n_post),
                               ops._event_csr_matvec_torch(s_int, indptr, idx, w.long(), n_post))
    torch.testing.assert_close(ops._event_csr_matvec_cuda(s, indptr, idx.short(), w, n_post).cpu(),
                               ref)
    assert len(calls) == 3


@needs_triton
def test_env_switch_forces_torch_path(K, monkeypatch):
    monkeypatch.setenv(kernels.DISABLE_ENV, "1")
    calls = []
    monkeypatch.setattr(K, "event_csr_matvec", lambda *a, **kw: calls.append(1))
    monkeypatch.setattr(K, "event_csr_matvec_backward", lambda *a, **kw: calls.append(2))
    s, indptr, idx, w, n_post = random_case(dtype=F64)
    out = ops._event_csr_matvec_cuda(s, indptr, idx, w, n_post)
    go = torch.ones(3, n_post, dtype=F64, device=DEVICE)
    gs, _ = ops._event_csr_matvec_backward_cuda(go, s, indptr, idx, w, True, False)
    assert not calls
    torch.testing.assert_close(out.cpu(), reference64(s, indptr, idx, w, n_post))
    torch.testing.assert_close(gs.cpu(), reference_grads(go, s, indptr, idx, w, n_post)[0])
    monkeypatch.delenv(kernels.DISABLE_ENV)
    ops._event_csr_matvec_cuda(s, indptr, idx, w, n_post)
    assert calls == [1]


_AOT_SCRIPT = r"""
import re
import sys
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from torchbrain.kernels import event_csr as K

assert not K._scatter_kernel.__class__.__name__.startswith("Interpreted")
scatter = dict(spikes_ptr="*fp32", event_ptr="*i32", piece_ptr="*i32", count_ptr="*i32",
               indptr_ptr="*i32", idx_ptr="*i32", w_ptr="*fp32", out_ptr="*fp32", n_pre="i32",
               n_post="i32", HOMOGENEOUS="constexpr", PIECE="constexpr", BLOCK_E="constexpr",
               CHUNK="constexpr")
grad_s = dict(grad_out_ptr="*fp32", indptr_ptr="*i32", idx_ptr="*i32", w_ptr="*fp32",
              grad_s_ptr="*fp32", n_pre="i32", n_post="i32", HOMOGENEOUS="constexpr",
              ACC="constexpr", BLOCK_I="constexpr", CHUNK="constexpr")
grad_w = dict(grad_out_ptr="*fp32", spikes_ptr="*fp32", indptr_ptr="*i32", idx_ptr="*i32",
              grad_w_ptr="*fp32", batch="i32", n_pre="i32", n_post="i32", ACC="constexpr",
              BLOCK_I="constexpr", CHUNK="constexpr")
compact = dict(spikes_ptr="*fp32", indptr_ptr="*i32", event_ptr="*i32", piece_ptr="*i32",
               count_ptr="*i32", n="i32", n_pre="i32", PIECE="constexpr", BLOCK="constexpr")
builds = [
    (K._compact_kernel, compact, dict(PIECE=4096, BLOCK=1024)),
    (K._compact_kernel, dict(compact, spikes_ptr="*fp16", indptr_ptr="*i64", event_ptr="*i64",
                             count_ptr="*i64"), dict(PIECE=4096, BLOCK=1024)),
    (K._scatter_kernel, scatter, dict(HOMOGENEOUS=True, PIECE=4096, BLOCK_E=32, CHUNK=512)),
    (K._scatter_kernel, dict(scatter, spikes_ptr="*bf16", indptr_ptr="*i64", idx_ptr="*i64",
                             w_ptr="*bf16", event_ptr="*i64", count_ptr="*i64"),
     dict(HOMOGENEOUS=False, PIECE=4096, BLOCK_E=1, CHUNK=512)),
    (K._grad_spikes_kernel, grad_s, dict(HOMOGENEOUS=False, ACC=tl.float32, BLOCK_I=32,
                                         CHUNK=512)),
    (K._grad_spikes_kernel, dict(grad_s, grad_out_ptr="*fp64", indptr_ptr="*i64",
                                 grad_s_ptr="*fp64", w_ptr="*fp64"),
     dict(HOMOGENEOUS=True, ACC=tl.float64, BLOCK_I=4, CHUNK=256)),
    (K._grad_weights_kernel, grad_w, dict(ACC=tl.float32, BLOCK_I=4, CHUNK=512)),
]
try:
    sources = [ASTSource(fn=fn, signature=sig, constexprs=consts) for fn, sig, consts in builds]
except Exception as exc:  # another Triton's ahead-of-time API
    print(f"SKIP ASTSource API of triton {triton.__version__}: {exc!r}")
    sys.exit(0)
for src in sources:
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32))
    assert "cubin" in compiled.asm, src.name
    if src.fn is K._compact_kernel:  # one relaxed atomic per block, with its result
        assert re.search(r"\batom\.global\.gpu\.relaxed\.add", compiled.asm["ptx"])
    elif src.fn is K._scatter_kernel:  # relaxed scatter-adds (Triton 3.6 writes atom.*, 3.9
        # red.*; ptxas turns both into REDG, checked with cuobjdump)
        assert re.search(r"\b(atom|red)\.global\.gpu\.relaxed\.add", compiled.asm["ptx"])
    else:  # the gathers need no atomics at all
        assert not re.search(r"\b(atom|red)\.", compiled.asm["ptx"]), src.name
print("COMPILED", len(sources))
"""


@needs_triton
def test_kernels_compile_for_hopper_without_a_gpu(tmp_path):
    """The interpreter does not type-check like the compiler: build real sm_90 binaries."""
    proc = compile_for_hopper(_AOT_SCRIPT, tmp_path, {"TRITON_DEFAULT_FP_FUSION": "1"})
    assert proc.returncode == 0 and "COMPILED 7" in proc.stdout, proc.stderr[-3000:]


@needs_triton
def test_gpu_check_script_dry_run(K):
    """benchmarks/gpu/check_event_csr.py's own code, on the interpreter at tiny sizes (~25 s)."""
    result, passed, failures = dry_run_check_script("check_event_csr")
    assert not failures, failures
    assert len(passed) >= 20
    forward = [v for k, v in result["checks"].items() if k.startswith("csr forward n_pre")]
    assert forward and all(r["err_kernel"] <= 4 * r["err_torch32"] + 1e-6 for r in forward)
    assert [r["fan_out"] for r in result["bench"] if "fan_out" in r] == [16] * 5 + [4] * 2
    assert [r["hubs"] for r in result["bench"] if "hubs" in r] == [0, 1, 1]
    assert len(result["tiles"]) == 18 and len(result["bench_backward"]) == 3
    assert all(r["events"] > 0 for r in result["bench"])
