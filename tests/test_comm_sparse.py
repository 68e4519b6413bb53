"""The event-driven CSR op, SparseLinear and FixedProb (Bernoulli connectivity) against dense
references and the binomial statistics of a random graph."""

import copy
import math
import pickle
import warnings

import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.comm import sparse as sparse_mod
from torchbrain.comm.sparse import FixedProb, SparseLinear, fixed_prob_csr
from torchbrain.ops.event_csr import csr_to_dense, event_csr_matvec, event_csr_matvec_reference
from torchbrain.outputs import COBA, CUBA
from torchbrain.projections import AlignPostProj
from torchbrain.synapses import Expon


def random_csr(n_pre=23, n_post=17, max_fan=6, seed=0, index_dtype=torch.int32):
    """A ragged CSR table with some empty rows (rows 0, 5 and the last are forced empty)."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, max_fan + 1, (n_pre,), generator=g)
    counts[[0, 5, n_pre - 1]] = 0
    indptr = torch.zeros(n_pre + 1, dtype=torch.int64)
    indptr[1:] = counts.cumsum(0)
    # distinct targets per row (CSR has no duplicates), not necessarily sorted
    indices = torch.cat([torch.randperm(n_post, generator=g)[: int(c)] for c in counts])
    return indptr.to(index_dtype), indices.to(torch.int32), g


def spikes_like(g, batch, n_pre, p, dtype=torch.float64):
    return (torch.rand(*batch, n_pre, generator=g) < p).to(dtype)


# ------------------------------------------------------------------------------ the op
@pytest.mark.parametrize("homogeneous", [True, False])
@pytest.mark.parametrize("batch", [(), (1,), (4,), (2, 3)])
@pytest.mark.parametrize("p", [0.0, 0.4, 1.0])
def test_csr_op_matches_dense_reference(homogeneous, batch, p):
    indptr, indices, g = random_csr()
    w = torch.tensor(0.7, dtype=torch.float64) if homogeneous else torch.randn(
        indices.shape[0], generator=g, dtype=torch.float64)
    s = spikes_like(g, batch, 23, p)
    out = event_csr_matvec(s, indptr, indices, w, 17)
    assert out.shape == (*batch, 17) and out.dtype == torch.float64
    ref = event_csr_matvec_reference(s, indptr, indices, w, 17)
    torch.testing.assert_close(out, ref)
    # an independent loop over the synapses of the active rows
    flat = s.reshape(-1, 23)
    loop = torch.zeros(flat.shape[0], 17, dtype=torch.float64)
    for b in range(flat.shape[0]):
        for i in range(23):
            for k in range(int(indptr[i]), int(indptr[i + 1])):
                wk = w if homogeneous else w[k]
                loop[b, int(indices[k])] += flat[b, i] * wk
    torch.testing.assert_close(out.reshape(-1, 17), loop)


def test_csr_op_int64_indptr_graded_and_empty_table():
    indptr, indices, g = random_csr(index_dtype=torch.int64)
    w = torch.randn(indices.shape[0], generator=g)
    s = torch.rand(3, 23, generator=g) * (torch.rand(3, 23, generator=g) < 0.5)
    torch.testing.assert_close(event_csr_matvec(s, indptr, indices.long(), w, 17),
                               event_csr_matvec_reference(s, indptr, indices, w, 17))
    # graded values are multiplied in
    out = event_csr_matvec(torch.tensor([0.25, 2.0]), torch.tensor([0, 1, 2], dtype=torch.int32),
                           torch.tensor([0, 1], dtype=torch.int32), torch.tensor(2.0), 3)
    assert out.tolist() == [0.5, 4.0, 0.0]
    with pytest.raises(ValueError, match="2 presynaptic entries, the table has 3 rows"):
        event_csr_matvec(torch.ones(2), torch.zeros(4, dtype=torch.int32),
                         torch.zeros(0, dtype=torch.int32), torch.tensor(1.0), 3)
    empty = event_csr_matvec(torch.ones(2, 4), torch.zeros(5, dtype=torch.int32),
                             torch.zeros(0, dtype=torch.int32), torch.zeros(0), 3)
    assert empty.shape == (2, 3) and not empty.any()


def test_csr_to_dense_sums_repeated_entries():
    indptr = torch.tensor([0, 3, 3], dtype=torch.int32)
    dense = csr_to_dense(indptr, torch.tensor([1, 1, 0], dtype=torch.int32),
                         torch.tensor([1.0, 2.0, 4.0]), 2)
    assert dense.tolist() == [[4.0, 3.0], [0.0, 0.0]]


@pytest.mark.parametrize("homogeneous", [True, False])
def test_csr_op_gradcheck(homogeneous):
    indptr, indices, g = random_csr(n_pre=9, n_post=7, max_fan=4)
    w = (torch.tensor(0.7, dtype=torch.float64) if homogeneous
         else torch.randn(indices.shape[0], generator=g, dtype=torch.float64))
    # graded inputs with some exact zeros (silent rows still get a gradient)
    s = torch.rand(2, 9, generator=g, dtype=torch.float64) * (torch.rand(2, 9, generator=g) < 0.7)
    s.requires_grad_(True)
    w.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s, w: event_csr_matvec(s, indptr, indices, w, 7),
                                    (s, w))


def test_csr_opcheck():
    indptr, indices, g = random_csr(n_pre=9, n_post=7, max_fan=4)
    s = spikes_like(g, (2,), 9, 0.5).requires_grad_(True)
    w = torch.randn(indices.shape[0], generator=g, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.torchbrain.event_csr_matvec.default,
                          (s, indptr, indices, w, 7))
    torch.library.opcheck(torch.ops.torchbrain.event_csr_matvec.default,
                          (s.detach(), indptr, indices, torch.tensor(0.5, dtype=torch.float64), 7))


# ------------------------------------------------------------------ Bernoulli tables
def test_fixed_prob_statistics_are_binomial():
    n_pre, n_post, p = 1500, 1200, 0.05
    g = torch.Generator().manual_seed(0)
    indptr, indices = fixed_prob_csr(n_pre, n_post, p, generator=g)
    assert indptr.dtype == torch.int32 and indices.dtype == torch.int32
    assert indptr.shape == (n_pre + 1,) and int(indptr[0]) == 0
    nnz = indices.shape[0]
    assert int(indptr[-1]) == nnz
    mean, sigma = n_pre * n_post * p, math.sqrt(n_pre * n_post * p * (1 - p))
    assert abs(nnz - mean) < 5 * sigma
    rows = (indptr[1:] - indptr[:-1]).double()
    # out-degrees: Binomial(n_post, p); mean within 5 standard errors, variance within 20 %
    assert abs(rows.mean().item() - n_post * p) < 5 * math.sqrt(n_post * p * (1 - p) / n_pre)
    assert rows.var().item() == pytest.approx(n_post * p * (1 - p), rel=0.2)
    # in-degrees: Binomial(n_pre, p)
    cols = torch.bincount(indices.long(), minlength=n_post).double()
    assert cols.var().item() == pytest.approx(n_pre * p * (1 - p), rel=0.2)
    # CSR rows: distinct targets in range, ascending
    assert int(indices.min()) >= 0 and int(indices.max()) < n_post
    d = indices[1:].long() - indices[:-1].long()
    row_start = torch.zeros(nnz, dtype=torch.bool)
    row_start[indptr[:-1][indptr[:-1] < nnz].long()] = True
    assert bool((d > 0)[~row_start[1:]].all())


def test_fixed_prob_every_pair_has_probability_p(monkeypatch):
    # tiny chunks force many draws per table: the chunk boundaries must not bias any pair
    monkeypatch.setattr(sparse_mod, "_CHUNK", 7)
    g = torch.Generator().manual_seed(1)
    p, n_pre = 0.3, 4000
    indptr, indices = fixed_prob_csr(n_pre, 5, p, generator=g)
    dense = csr_to_dense(indptr, indices, torch.tensor(1.0), 5, dtype=torch.float64)
    assert dense.max().item() == 1.0  # no duplicate synapses
    tol = 5 * math.sqrt(p * (1 - p) / n_pre)
    assert (dense.mean(0) - p).abs().max().item() < tol  # every column
    # neighbouring pairs are independent: P(both) = p^2
    both = (dense.flatten()[1:] * dense.flatten()[:-1]).mean().item()
    assert abs(both - p * p) < 5 * math.sqrt(p * p * (1 - p * p) / (5 * n_pre))
    # the first and the last pair of a table, over repeated draws
    trials = 300
    corners = torch.zeros(2, dtype=torch.float64)
    for _ in range(trials):
        indptr, indices = fixed_prob_csr(2, 2, p, generator=g)
        dense = csr_to_dense(indptr, indices, torch.tensor(1.0), 2, dtype=torch.float64)
        corners += dense.flatten()[[0, -1]]
    assert (corners / trials - p).abs().max().item() < 5 * math.sqrt(p * (1 - p) / trials)


def test_fixed_prob_include_self_edges_and_seeds():
    g = torch.Generator().manual_seed(2)
    for n_pre, n_post in [(300, 300), (400, 250), (250, 400)]:
        indptr, indices = fixed_prob_csr(n_pre, n_post, 0.2, include_self=False, generator=g)
        dense = csr_to_dense(indptr, indices, torch.tensor(1.0), n_post)
        assert dense.diagonal().abs().sum() == 0 and dense.max() == 1
        m = min(n_pre, n_post)
        # the rows with a diagonal pair draw from n_post - 1 candidates
        expected = m * (n_post - 1) * 0.2 + (n_pre - m) * n_post * 0.2
        assert abs(dense.sum().item() - expected) < 5 * math.sqrt(expected * 0.8)
    indptr, indices = fixed_prob_csr(6, 6, 1.0, include_self=False)
    assert torch.equal(csr_to_dense(indptr, indices, torch.tensor(1.0), 6),
                       1 - torch.eye(6))
    indptr, indices = fixed_prob_csr(6, 5, 0.0)
    assert indices.numel() == 0 and not indptr.any()
    a = FixedProb(500, 400, 0.1, 1.0, seed=7)
    b = FixedProb(500, 400, 0.1, 1.0, seed=7)
    c = FixedProb(500, 400, 0.1, 1.0, seed=8)
    assert torch.equal(a.indptr, b.indptr) and torch.equal(a.indices, b.indices)
    assert not torch.equal(a.indices[:1000], c.indices[:1000])
    torch.manual_seed(3)
    d = FixedProb(500, 400, 0.1, 1.0)
    torch.manual_seed(3)
    assert torch.equal(FixedProb(500, 400, 0.1, 1.0).indices, d.indices)


def test_fixed_prob_large_sizes_never_build_a_dense_mask():
    # 4e8 pairs: a dense float mask would take 1.6 GB; the table takes a few MB
    c = FixedProb(20000, 20000, 0.001, 0.5 * u.mV, seed=0)
    mean = 20000 * 20000 * 0.001
    assert abs(c.num_synapses - mean) < 5 * math.sqrt(mean)
    s = torch.zeros(20000)
    s[[3, 19999]] = 1.0
    out = c(s)
    rows = [c.indices[int(c.indptr[i]): int(c.indptr[i + 1])].long() for i in (3, 19999)]
    expected = torch.bincount(torch.cat(rows), minlength=20000).float() * 0.5
    torch.testing.assert_close(out, expected)


# ---------------------------------------------------------------------------- layers
@pytest.mark.parametrize("batch", [(), (3,), (2, 2)])
def test_fixed_prob_layer_matches_dense(batch):
    g = torch.Generator().manual_seed(4)
    c = FixedProb(60, 40, 0.15, tb.init.Normal(1 * u.nS, 0.2 * u.nS), seed=5,
                  dtype=torch.float64)
    assert c.weight.shape == (c.num_synapses,) and c.weight_unit == "nS"
    for p in (0.0, 0.3, 1.0):
        s = spikes_like(g, batch, 60, p)
        torch.testing.assert_close(c(s), s @ c.to_dense())
    graded = torch.rand(*batch, 60, generator=g, dtype=torch.float64)
    torch.testing.assert_close(c(graded), graded @ c.to_dense())
    homogeneous = FixedProb(60, 40, 0.15, 2 * u.pA, seed=5)
    assert homogeneous.weight.ndim == 0 and homogeneous.weight_unit == "pA"
    assert torch.equal(homogeneous.indices, c.indices)  # same seed, same table
    s = spikes_like(g, batch, 60, 0.5, torch.float32)
    torch.testing.assert_close(homogeneous(s), s @ homogeneous.to_dense())
    # bool spikes are accepted
    torch.testing.assert_close(homogeneous(s.bool()), homogeneous(s))


def test_fixed_prob_training_gradients():
    c = FixedProb(8, 6, 0.4, tb.init.Uniform(0.5, 1.5), seed=0, trainable=True,
                  dtype=torch.float64)
    assert isinstance(c.weight, torch.nn.Parameter)
    s = torch.rand(2, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda s, w: torch.func.functional_call(c, {"weight": w}, (s,)),
        (s, c.weight.detach().clone().requires_grad_(True)),
    )
    frozen = FixedProb(8, 6, 0.4, 1.0, seed=0)
    assert "weight" in dict(frozen.named_buffers())


def test_layers_compile_fullgraph_with_backward():
    c = FixedProb(50, 30, 0.2, tb.init.Uniform(0.5, 1.5), seed=1, trainable=True)
    torch._dynamo.reset()
    f = torch.compile(lambda s: (c(s) ** 2).sum(), fullgraph=True, backend="aot_eager")
    s = (torch.rand(3, 50) < 0.3).float()
    loss = f(s)
    loss.backward()
    grad = c.weight.grad.clone()
    c.weight.grad = None
    eager = (c(s) ** 2).sum()
    eager.backward()
    torch.testing.assert_close(loss, eager)
    torch.testing.assert_close(grad, c.weight.grad)


def test_fixed_prob_copies_and_dtype():
    c = FixedProb(30, 20, 0.3, tb.init.Normal(1 * u.nS, 0.1 * u.nS), seed=0, trainable=True)
    c(torch.ones(30)).sum().backward()
    for clone in (copy.deepcopy(c), pickle.loads(pickle.dumps(c))):
        assert torch.equal(clone.indices, c.indices) and torch.equal(clone.weight, c.weight)
        assert clone.weight_unit == "nS"
        torch.testing.assert_close(clone(torch.ones(30)), c(torch.ones(30)))
    d = c.to(torch.float64)
    assert d.weight.dtype == torch.float64 and d.indices.dtype == torch.int32
    assert d(torch.ones(30)).dtype == torch.float64
    assert "prob=0.3" in repr(c) and "nS" in repr(c)


def test_fixed_prob_errors():
    with pytest.raises(ValueError, match="FixedProb: parameter 'prob'"):
        FixedProb(10, 10, 1.5, 1.0)
    with pytest.raises(ValueError, match="'prob'"):
        FixedProb(10, 10, float("nan"), 1.0)
    with pytest.raises(tb.UnitError, match="FixedProb: parameter 'weight'"):
        FixedProb(10, 10, 0.2, 5 * u.ms)
    with pytest.raises(ValueError, match="one value per synapse"):
        FixedProb(10, 10, 0.2, torch.ones(3, 3), seed=0)
    with pytest.raises(ValueError, match="presynaptic entries"):
        FixedProb(10, 10, 0.2, 1.0)(torch.ones(11))
    with pytest.raises(ValueError, match="out_size"):
        FixedProb(10, 0, 0.2, 1.0)


def test_weight_units_are_checked_by_projections():
    post = tb.LIF(20, tau=20 * u.ms, V_th=-50 * u.mV, V_rest=-60 * u.mV, V_reset=-60 * u.mV,
                  R=0.1 * u.gigaohm, V_initializer=tb.init.Constant(-60 * u.mV))
    with pytest.raises(tb.UnitError, match="weights of FixedProb are in pA but COBA"):
        AlignPostProj(comm=FixedProb(10, 20, 0.3, 1 * u.pA), syn=Expon.desc(20, tau=5 * u.ms),
                      out=COBA.desc(E=0 * u.mV), post=post)
    with pytest.raises(tb.UnitError, match="SparseLinear are in nS but CUBA"):
        AlignPostProj(comm=SparseLinear(10, 20, torch.eye(10, 20) * u.nS),
                      syn=Expon.desc(20, tau=5 * u.ms), out=CUBA.desc(), post=post)
    AlignPostProj(comm=FixedProb(10, 20, 0.3, 1 * u.nS), syn=Expon.desc(20, tau=5 * u.ms),
                  out=COBA.desc(E=0 * u.mV), post=post)


def test_sparse_linear_from_every_format():
    g = torch.Generator().manual_seed(6)
    dense = torch.randn(8, 6, generator=g, dtype=torch.float64)
    dense[dense.abs() < 0.7] = 0.0
    dense[2] = 0.0  # an empty row
    x = torch.randn(3, 8, generator=g, dtype=torch.float64) * (torch.rand(3, 8, generator=g) < .6)
    a = SparseLinear(8, 6, dense * u.nS, dtype=torch.float64)
    assert a.weight_unit == "nS" and a.num_synapses == int((dense != 0).sum())
    assert a.indices.dtype == torch.int32 and a.indptr.dtype == torch.int32
    torch.testing.assert_close(a(x), x @ dense)
    torch.testing.assert_close(a.to_dense(), dense)
    b = SparseLinear(8, 6, dense.to_sparse(), dtype=torch.float64)
    torch.testing.assert_close(b(x), x @ dense)
    b_unit = SparseLinear(8, 6, dense.to_sparse() * u.uS, dtype=torch.float64)
    assert b_unit.weight_unit == "nS"
    torch.testing.assert_close(b_unit(x), x @ dense * 1000)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        csr = dense.to_sparse_csr()
    c = SparseLinear(8, 6, csr, b_init=tb.init.Constant(0.5), dtype=torch.float64)
    torch.testing.assert_close(c(x), x @ dense + 0.5)
    d = SparseLinear(8, 6, torch.tensor(2.0), indptr=a.indptr, indices=a.indices,
                     dtype=torch.float64)
    torch.testing.assert_close(d(x), x @ (2.0 * (dense != 0).double()))
    e = SparseLinear(8, 6, a.weight * u.pA, indptr=a.indptr.long(), indices=a.indices.long(),
                     b_init=torch.full((6,), 0.1) * u.pA, dtype=torch.float64)
    assert e.weight_unit == "pA" and e.indices.dtype == torch.int32
    torch.testing.assert_close(e(x), x @ dense + 0.1)


def test_sparse_linear_gradcheck():
    g = torch.Generator().manual_seed(7)
    dense = torch.randn(7, 5, generator=g, dtype=torch.float64)
    dense[dense.abs() < 0.5] = 0.0
    layer = SparseLinear(7, 5, dense, b_init=tb.init.Normal(0.0, 1.0), trainable=True,
                         dtype=torch.float64)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in layer.named_parameters()}
    assert set(params) == {"weight", "bias"}
    x = torch.randn(2, 7, generator=g, dtype=torch.float64, requires_grad=True)

    def f(x, w, b):
        return torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,))

    assert torch.autograd.gradcheck(f, (x, params["weight"], params["bias"]))


def test_sparse_linear_errors():
    indptr = torch.tensor([0, 1, 3], dtype=torch.int32)
    indices = torch.tensor([0, 1, 2], dtype=torch.int32)
    with pytest.raises(ValueError, match="in_size \\+ 1 = 4"):
        SparseLinear(3, 3, 1.0, indptr=indptr, indices=indices)
    with pytest.raises(ValueError, match="never decrease"):
        SparseLinear(2, 3, 1.0, indptr=torch.tensor([0, 2, 1]), indices=indices)
    with pytest.raises(ValueError, match="'indices' must lie in"):
        SparseLinear(2, 2, 1.0, indptr=indptr, indices=indices)
    with pytest.raises(TypeError, match="'indices' must be a 1-D int32 or int64"):
        SparseLinear(2, 3, 1.0, indptr=indptr, indices=indices.float())
    with pytest.raises(ValueError, match="both 'indptr' and 'indices'"):
        SparseLinear(2, 3, 1.0, indptr=indptr)
    with pytest.raises(ValueError, match="one value per synapse"):
        SparseLinear(2, 3, torch.ones(2), indptr=indptr, indices=indices)
    with pytest.raises(ValueError, match="SparseLinear: parameter 'weight' must have shape"):
        SparseLinear(2, 3, torch.ones(3, 2))
    with pytest.raises(tb.UnitError, match="'b_init' must be in nS"):
        SparseLinear(2, 3, torch.ones(2, 3) * u.nS, b_init=1 * u.pA)
    with pytest.raises(TypeError, match="not an initializer"):
        SparseLinear(2, 3, tb.init.Normal())
