"""The Triton kernels of the ELL STDP update (``torchbrain.kernels.stdp_ell``) against the torch op.

Without a GPU the kernels run on CPU tensors through Triton's interpreter (``TRITON_INTERPRET=1``,
small sizes); with CUDA the same tests run natively. The reference is the op's pure-torch
implementation (``_stdp_ell_update_torch``, the CPU path), plus a hand-computed order check and a
float64 comparison for float32. Kernel tests skip, with the reason, when Triton is missing.
"""

import contextlib
import importlib
import os
import sys

import pytest
import torch

from torchbrain import kernels
from torchbrain.ops import stdp as F
from torchbrain.ops._dispatch import triton_kernels

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

MODULE = "torchbrain.kernels.stdp_ell"


@pytest.fixture(scope="module")
def K():
    """``torchbrain.kernels.stdp_ell``, imported through Triton's interpreter on the CPU."""
    return load_kernels(MODULE, "_depress_kernel", _probe_interpreter)


def _probe_interpreter(mod):
    case = make_case(n_pre=3, n_post=2, k=1, batch=(1,), p_pre=1.0, p_post=1.0)
    skip_unless_interpreter_loops(lambda: mod.stdp_ell_update_(*case.args(case.weight.clone())))


@pytest.fixture(autouse=True)
def _interpreter_env(monkeypatch):
    kernel_environment(monkeypatch)


class Case:
    """One update's inputs; ``args(w)`` gives the op's arguments with the weights ``w``."""

    def __init__(self, weight, indices, n_post, pre, post, x_pre, x_post, params, mult):
        self.weight, self.indices = weight, indices
        self.indptr, self.slots = F.ell_post_csr(indices, n_post)
        self.pre, self.post, self.x_pre, self.x_post = pre, post, x_pre, x_post
        self.params, self.mult = params, mult

    def args(self, w):
        return (w, self.indices, self.indptr, self.slots, self.pre, self.post, self.x_pre,
                self.x_post, *self.params, self.mult)

    def torch_result(self, dtype=None):
        """The torch op's weights, on the CPU, optionally computed in another dtype."""
        dtype = dtype or self.weight.dtype
        w = self.weight.cpu().to(dtype, copy=True)
        args = [a.cpu() if isinstance(a, torch.Tensor) else a for a in self.args(w)]
        args = [a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                for a in args]
        F._stdp_ell_update_torch(*args)
        return w


def make_case(n_pre=37, n_post=29, k=7, batch=(3,), p_pre=0.3, p_post=0.3, seed=0,
              dtype=torch.float32, index_dtype=torch.int32, mult=False, graded=False,
              bounds=(0.1, 0.9), amplitudes=(0.05, 0.06), spread=1.0, indices=None):
    """Random table, weights in ``[0, 1]`` (partly outside the bounds, so the clip is
    exercised) and traces in ``[0, 2 spread]`` (large changes hit the bounds)."""
    g = torch.Generator().manual_seed(seed)
    if indices is None:
        indices = torch.randint(0, n_post, (n_pre, k), generator=g)
    indices = indices.to(index_dtype)
    n_pre, k = indices.shape
    w = torch.rand(n_pre, k, generator=g, dtype=dtype)
    pre = (torch.rand(*batch, n_pre, generator=g) < p_pre).to(dtype)
    post = (torch.rand(*batch, n_post, generator=g) < p_post).to(dtype)
    if graded:
        pre = pre * torch.rand(*batch, n_pre, generator=g, dtype=dtype) * 2
        post = post * torch.rand(*batch, n_post, generator=g, dtype=dtype) * 2
    x_pre = torch.rand(*batch, n_pre, generator=g, dtype=dtype) * 2 * spread
    x_post = torch.rand(*batch, n_post, generator=g, dtype=dtype) * 2 * spread
    a_plus, a_minus = amplitudes
    params = [torch.tensor(v, dtype=dtype, device=DEVICE)
              for v in (a_plus, a_minus, *bounds)]
    on = [t.to(DEVICE) for t in (w, indices, pre, post, x_pre, x_post)]
    return Case(on[0], on[1], n_post, *on[2:], params, mult)


def run_kernel(K, case, **config):
    w = case.weight.clone()
    K.stdp_ell_update_(*case.args(w), **config)
    return w.cpu()


SMALL_TILES = dict(programs=2, compact_block=16, block_e=4, block_k=4, block_c=4, block_s=4)


# ---------------------------------------------------------------- values against the torch op


@needs_triton
@pytest.mark.parametrize("mult", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_batch_entry_is_bit_identical_to_the_torch_op(K, mult, dtype):
    """Same operations in the same order: with one batch entry the sums are single products."""
    for seed, (n_pre, n_post, k) in enumerate([(37, 29, 7), (50, 23, 10), (9, 300, 33)]):
        case = make_case(n_pre, n_post, k, batch=(), seed=seed, dtype=dtype, mult=mult,
                         graded=seed == 1, spread=3.0)
        got = run_kernel(K, case, **(SMALL_TILES if seed != 2 else {}))
        expected = case.torch_result()
        assert torch.equal(got, expected), (got - expected).abs().max()
        assert not torch.equal(got, case.weight.cpu())  # the case did change weights


@needs_triton
@pytest.mark.parametrize("mult", [False, True])
@pytest.mark.parametrize("batch", [(1,), (3,), (2, 3)])
def test_batches_sum_like_the_torch_op(K, mult, batch):
    """float32 with batches: within float32 rounding of the torch op, and no further from the
    float64 result than it is (three-way)."""
    case = make_case(60, 45, 12, batch=batch, seed=len(batch), mult=mult, graded=True,
                     p_pre=0.25, p_post=0.25)
    got = run_kernel(K, case, **SMALL_TILES)
    torch32 = case.torch_result()
    ref64 = case.torch_result(torch.float64)
    torch.testing.assert_close(got, torch32, rtol=2e-6, atol=2e-7)
    err_kernel = (got.double() - ref64).abs().max().item()
    err_torch = (torch32.double() - ref64).abs().max().item()
    assert err_kernel <= 4 * err_torch + 1e-7


@needs_triton
@pytest.mark.parametrize("mult", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_sizes_float64(K, mult, seed):
    g = torch.Generator().manual_seed(100 + seed)
    n_pre, n_post, k, b = (int(torch.randint(lo, hi, (), generator=g))
                           for lo, hi in ((1, 80), (1, 70), (1, 40), (1, 4)))
    case = make_case(n_pre, n_post, k, batch=(b,), seed=seed, dtype=torch.float64, mult=mult,
                     p_pre=0.4, p_post=0.4, graded=True,
                     index_dtype=(torch.int32, torch.int64)[seed % 2])
    config = [SMALL_TILES, {}, dict(programs=1, block_e=8, block_k=16, block_c=2, block_s=8)]
    got = run_kernel(K, case, **config[seed])
    torch.testing.assert_close(got, case.torch_result(), rtol=1e-13, atol=1e-15)


@needs_triton
@pytest.mark.parametrize("p", [0.0, 1.0])
def test_no_spikes_and_all_spiking(K, p):
    case = make_case(40, 30, 8, batch=(2,), p_pre=p, p_post=p, mult=True, dtype=torch.float64)
    got = run_kernel(K, case, **SMALL_TILES)
    expected = case.torch_result()
    if p == 0.0:  # nothing is touched: not even the clip of weights outside the bounds
        assert torch.equal(got, case.weight.cpu())
    else:  # every weight was clipped at least
        assert ((got >= 0.1) & (got <= 0.9)).all()
    torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-15)


@needs_triton
@pytest.mark.parametrize("side", ["pre", "post"])
def test_only_one_side_spiking_touches_only_its_synapses(K, side):
    case = make_case(40, 30, 8, batch=(2,), p_pre=0.2 if side == "pre" else 0.0,
                     p_post=0.2 if side == "post" else 0.0, dtype=torch.float64)
    got = run_kernel(K, case, **SMALL_TILES)
    expected = case.torch_result()
    torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-15)
    if side == "pre":
        rows = (case.pre.cpu() != 0).any(0)
        assert torch.equal(got[~rows], case.weight.cpu()[~rows])
    else:
        cols = (case.post.cpu() != 0).any(0)
        onto = cols[case.indices.cpu().long()]
        assert torch.equal(got[~onto], case.weight.cpu()[~onto])
    assert not torch.equal(got, case.weight.cpu())


@needs_triton
@pytest.mark.parametrize("mult", [False, True])
def test_duplicates_and_one_crowded_target(K, mult):
    """Duplicate targets are distinct synapses, each changed once per pass; one target receiving
    half of all synapses makes one column's slot list far longer than the tile."""
    g = torch.Generator().manual_seed(5)
    idx = torch.randint(0, 6, (30, 10), generator=g)
    idx[:, ::2] = 3  # every row has five synapses onto neuron 3
    case = make_case(indices=idx, n_post=6, batch=(2,), p_pre=0.5, p_post=0.5, mult=mult,
                     dtype=torch.float64, seed=6)
    case.post[:, 3] = 1.0
    got = run_kernel(K, case, **SMALL_TILES)
    torch.testing.assert_close(got, case.torch_result(), rtol=1e-13, atol=1e-15)
    got_default = run_kernel(K, case)
    torch.testing.assert_close(got_default, got, rtol=0, atol=0)


@needs_triton
@pytest.mark.parametrize("mult", [False, True])
def test_depression_then_potentiation_on_one_synapse(K, mult):
    """Both ends of a lone synapse spike: depressed first, potentiated from the depressed weight
    (computed by hand, float64)."""
    lo, hi, a_p, a_m, w0, xp, xq = 0.0, 2.0, 0.3, 0.2, 0.5, 0.7, 0.9
    case = make_case(indices=torch.zeros(1, 1, dtype=torch.int64), n_post=1, batch=(1,),
                     p_pre=1.0, p_post=1.0, dtype=torch.float64, mult=mult, bounds=(lo, hi),
                     amplitudes=(a_p, a_m))
    case.weight.fill_(w0)
    case.x_pre.fill_(xp)
    case.x_post.fill_(xq)
    if mult:
        w1 = w0 - a_m * xq * (w0 - lo) / (hi - lo)
        expected = w1 + a_p * xp * (hi - w1) / (hi - lo)
    else:
        expected = w0 - a_m * xq + a_p * xp
    got = run_kernel(K, case)
    assert got.item() == pytest.approx(expected, rel=1e-15)


@needs_triton
def test_clipping_and_infinite_upper_bound(K):
    # additive rule with w_max = inf (the layers' default) and large amplitudes: w_min binds
    case = make_case(50, 20, 6, batch=(2,), p_pre=0.5, p_post=0.3, bounds=(0.2, float("inf")),
                     amplitudes=(0.5, 2.0), dtype=torch.float64, seed=9)
    got = run_kernel(K, case, **SMALL_TILES)
    expected = case.torch_result()
    torch.testing.assert_close(got, expected, rtol=1e-13, atol=1e-15)
    assert (got == 0.2).any() and torch.isfinite(got).all()
    # an upper bound that binds
    case = make_case(50, 20, 6, batch=(2,), p_pre=0.3, p_post=0.5, bounds=(0.0, 0.6),
                     amplitudes=(2.0, 0.1), dtype=torch.float64, seed=9)
    got = run_kernel(K, case, **SMALL_TILES)
    torch.testing.assert_close(got, case.torch_result(), rtol=1e-13, atol=1e-15)
    assert (got == 0.6).any()


@needs_triton
def test_inputs_in_other_dtypes_and_layouts(K):
    """Spikes as bool, traces in float64 next to float32 weights, non-contiguous traces, a CPU
    parameter: converted as the torch op converts them."""
    case = make_case(33, 21, 5, batch=(2,), seed=4)
    x_pre = torch.rand(33, 2, dtype=torch.float64, device=DEVICE).t()  # non-contiguous
    case.x_pre = x_pre
    case.pre = case.pre != 0
    got = run_kernel(K, case, **SMALL_TILES)
    torch.testing.assert_close(got, case.torch_result(), rtol=0, atol=0)
    case.params[0] = case.params[0].cpu()
    torch.testing.assert_close(run_kernel(K, case), got, rtol=0, atol=0)


@needs_triton
def test_deterministic_despite_unordered_event_lists(K):
    """No atomics on the weights: any order of the compaction lists gives the same bits."""
    case = make_case(200, 150, 16, batch=(2,), p_pre=0.3, p_post=0.3, mult=True, seed=11)
    results = [run_kernel(K, case, **cfg) for cfg in
               (dict(compact_block=16), dict(compact_block=64, programs=1), {})]
    assert all(torch.equal(r, results[0]) for r in results[1:])


@needs_triton
def test_empty_shapes(K):
    # K = 0, no presynaptic neuron, batch 0: nothing to do, nothing touched
    for n_pre, k, batch in ((5, 0, (2,)), (0, 3, (2,)), (5, 3, (0,))):
        case = make_case(n_pre, 4, k, batch=batch)
        w = case.weight.clone()
        K.stdp_ell_update_(*case.args(w))
        assert torch.equal(w, case.weight)
    case = make_case(5, 4, 3, batch=(2,))
    case.post = case.post[:1]
    with pytest.raises(ValueError, match="stdp_ell.*batch"):
        K.stdp_ell_update_(*case.args(case.weight.clone()))


@needs_triton
def test_compaction_lists_every_active_neuron_once(K):
    g = torch.Generator().manual_seed(3)
    for batch, n_pre, n_post in ((1, 70, 33), (3, 33, 70), (2, 1, 1)):
        pre = torch.where(torch.rand(batch, n_pre, generator=g) < 0.2, 1.0, 0.0).to(DEVICE)
        post = torch.where(torch.rand(batch, n_post, generator=g) < 0.2, -0.5, 0.0).to(DEVICE)
        rows, cols, counts = K.compact_active(pre, post, block=16)
        for lst, c, s in ((rows, counts[0], pre), (cols, counts[1], post)):
            expected = torch.nonzero((s != 0).any(0)).flatten().cpu().tolist()
            assert int(c) == len(expected)
            assert sorted(lst[: int(c)].cpu().tolist()) == expected


@needs_triton
def test_block_sizes():
    mod = sys.modules.get(MODULE)
    if mod is None:  # only the host-side helper is used: no kernel runs here
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TRITON_INTERPRET", "1")
            mod = importlib.import_module(MODULE)
    assert mod.potentiate_block_sizes(100_000, 100, 100_000) == (128, 16)  # fan-in 100
    assert mod.potentiate_block_sizes(1000, 10, 10) == (16, 128)  # fan-in 1000
    assert mod.potentiate_block_sizes(5, 3, 0) == mod.potentiate_block_sizes(5, 3, 1)


# ---------------------------------------------------------------- the op's CUDA registration


@needs_triton
@pytest.mark.parametrize("mult", [False, True])
def test_op_cuda_kernel_glue(K, mult, monkeypatch):
    """The function registered as the op's CUDA kernel (on the GPU: the real dispatch through
    the public function), spied: it calls the launcher and gives the torch op's weights."""
    case = make_case(45, 31, 9, batch=(2,), mult=mult, dtype=torch.float64, seed=2)
    expected = case.torch_result()
    calls = []
    real = K.stdp_ell_update_
    monkeypatch.setattr(K, "stdp_ell_update_", lambda *a: (calls.append(1), real(*a))[1])
    w = case.weight.clone()
    if ON_GPU:
        a_p, a_m, lo, hi = case.params
        F.stdp_ell_update(w, case.indices, case.indptr, case.slots, case.pre, case.post,
                          case.x_pre, case.x_post, A_plus=a_p, A_minus=a_m, w_min=lo, w_max=hi,
                          multiplicative=mult, inplace=True)
    else:
        F._stdp_ell_update_cuda(*case.args(w))
    assert calls == [1]
    torch.testing.assert_close(w.cpu(), expected, rtol=1e-13, atol=1e-15)


@needs_triton
def test_env_switch_half_precision_and_layout_take_the_torch_path(K, monkeypatch):
    calls = []
    monkeypatch.setattr(K, "stdp_ell_update_", lambda *a: calls.append(1))
    case = make_case(dtype=torch.float64)
    expected = case.torch_result()
    monkeypatch.setenv(kernels.DISABLE_ENV, "1")
    w = case.weight.clone()
    F._stdp_ell_update_cuda(*case.args(w))
    assert not calls
    torch.testing.assert_close(w.cpu(), expected, rtol=0, atol=0)
    monkeypatch.delenv(kernels.DISABLE_ENV)
    half = make_case(dtype=torch.float16)
    w = half.weight.clone()
    F._stdp_ell_update_cuda(*half.args(w))
    assert not calls
    assert torch.equal(w.cpu(), half.torch_result())
    # a non-contiguous weight: the torch path handles it as it does on the CPU
    wt = case.weight.t().contiguous().t()
    with contextlib.suppress(RuntimeError):  # the torch path's own verdict on the layout
        F._stdp_ell_update_cuda(*case.args(wt))
    assert not calls
    F._stdp_ell_update_cuda(*case.args(case.weight.clone()))
    assert calls == [1]


def test_missing_triton_falls_back_to_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)  # `import triton` now raises ImportError
    kernels.triton_version.cache_clear()
    try:
        assert triton_kernels("stdp_ell") is None
        case = make_case(dtype=torch.float64)
        w = case.weight.cpu().clone()
        args = [a.cpu() if isinstance(a, torch.Tensor) else a for a in case.args(w)]
        F._stdp_ell_update_cuda(*args)
        torch.testing.assert_close(w, case.torch_result(), rtol=0, atol=0)
    finally:
        kernels.triton_version.cache_clear()


def test_cpu_path_never_imports_the_kernels(monkeypatch):
    monkeypatch.setitem(sys.modules, MODULE, None)  # importing it now raises
    case = make_case(dtype=torch.float64)
    a_p, a_m, lo, hi = (p.cpu() for p in case.params)
    cpu = [t.cpu() for t in (case.weight, case.indices, case.indptr, case.slots, case.pre,
                             case.post, case.x_pre, case.x_post)]
    out = F.stdp_ell_update(*cpu, A_plus=a_p, A_minus=a_m, w_min=lo, w_max=hi)
    torch.testing.assert_close(out, case.torch_result(), rtol=0, atol=0)


# ---------------------------------------------------------------- compiled code, GPU check

_AOT_SCRIPT = r"""
import sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from torchbrain.kernels import stdp_ell as K

assert not K._depress_kernel.__class__.__name__.startswith("Interpreted")
TARGET = GPUTarget("cuda", 90, 32)


def depress(ty, ity, mult):
    sig = dict(s_pre_ptr=f"*{ty}", x_post_ptr=f"*{ty}", rows_ptr="*i32", count_ptr="*i32",
               idx_ptr=f"*{ity}", w_ptr=f"*{ty}", gain_ptr=f"*{ty}", lo_ptr=f"*{ty}",
               hi_ptr=f"*{ty}", n_pre="i32", n_post="i32", batch="i32", K="i32",
               MULTIPLICATIVE="constexpr", BLOCK_E="constexpr", BLOCK_K="constexpr")
    return K._depress_kernel, sig, dict(MULTIPLICATIVE=mult, BLOCK_E=128, BLOCK_K=16)


def potentiate(ty, ity, mult):
    sig = dict(s_post_ptr=f"*{ty}", x_pre_ptr=f"*{ty}", cols_ptr="*i32", count_ptr="*i32",
               indptr_ptr=f"*{ity}", slots_ptr=f"*{ity}", w_ptr=f"*{ty}", gain_ptr=f"*{ty}",
               lo_ptr=f"*{ty}", hi_ptr=f"*{ty}", n_pre="i32", n_post="i32", batch="i32",
               K="i32", MULTIPLICATIVE="constexpr", BLOCK_C="constexpr", BLOCK_S="constexpr")
    return K._potentiate_kernel, sig, dict(MULTIPLICATIVE=mult, BLOCK_C=128, BLOCK_S=16)


compact = (K._compact_kernel,
           dict(s_pre_ptr="*fp32", s_post_ptr="*fp32", rows_ptr="*i32", cols_ptr="*i32",
                count_ptr="*i32", n_pre="i32", n_post="i32", batch="i32", pre_blocks="i32",
                BLOCK="constexpr"), dict(BLOCK=1024))
builds = [compact] + [make(ty, ity, mult) for make in (depress, potentiate)
                      for ty, ity in (("fp32", "i32"), ("fp64", "i64")) for mult in (False, True)]
try:
    sources = [(ASTSource(fn=fn, signature=sig, constexprs=c), c) for fn, sig, c in builds]
except Exception as exc:  # another Triton's ahead-of-time API
    print(f"SKIP ASTSource API of triton {triton.__version__}: {exc!r}")
    sys.exit(0)
for src, consts in sources:
    compiled = triton.compile(src, target=TARGET,
                              options=dict(num_warps=4, enable_fp_fusion=False))
    ptx = compiled.asm["ptx"]
    assert "cubin" in compiled.asm, src.name
    # contraction off: w - A m and the batch sums round like torch's separate operations
    assert "fma" not in ptx, src.name
    # float32 divisions correctly rounded, as torch's
    assert "div.full" not in ptx and "div.approx" not in ptx, src.name
    if consts.get("MULTIPLICATIVE"):
        assert "div.rn.f32" in ptx or "div.rn.f64" in ptx, src.name
print("COMPILED", len(sources))
"""


@needs_triton
def test_kernels_compile_for_hopper_without_a_gpu(tmp_path):
    """The interpreter does not type-check like the compiler: build real sm_90 binaries (both
    dtypes and index widths, both rules), with no fma and correctly rounded float32 division."""
    proc = compile_for_hopper(_AOT_SCRIPT, tmp_path)
    assert proc.returncode == 0 and "COMPILED 9" in proc.stdout, proc.stderr[-3000:]


@needs_triton
def test_gpu_check_script_dry_run(K):
    """benchmarks/gpu/check_stdp.py's own code, on the interpreter at tiny sizes."""
    result, passed, failures = dry_run_check_script("check_stdp")
    assert not failures, failures
    assert len(passed) >= 8
    assert result["bench"] and all(row["kernel_s"] > 0 and row["synapses"] > 0
                                   for row in result["bench"])
    assert os.environ.get(kernels.DISABLE_ENV) is None
