"""The event-driven fixed fan-out op and the EventFixedProb layer against dense references."""

import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.comm import EventFixedProb, FixedNumConn, fixed_out_degree_table
from torchbrain.ops import event_ell_matvec, event_ell_matvec_reference


def random_case(n_pre=37, n_post=29, k=7, batch=(3,), homogeneous=False, p=0.3, seed=0,
                dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n_post, (n_pre, k), generator=g, dtype=torch.int32)
    w = torch.tensor(0.7, dtype=dtype) if homogeneous else torch.randn(n_pre, k, generator=g,
                                                                        dtype=dtype)
    s = (torch.rand(*batch, n_pre, generator=g) < p).to(dtype)
    return s, idx, w, n_post


@pytest.mark.parametrize("homogeneous", [True, False])
@pytest.mark.parametrize("batch", [(), (1,), (4,), (2, 3)])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_matches_dense_reference(homogeneous, batch, p):
    s, idx, w, n_post = random_case(batch=batch, homogeneous=homogeneous, p=p)
    out = event_ell_matvec(s, idx, w, n_post)
    assert out.shape == (*batch, n_post)
    torch.testing.assert_close(out, event_ell_matvec_reference(s, idx, w, n_post))


def test_duplicate_targets_deliver_once_per_entry():
    idx = torch.tensor([[2, 2, 2], [0, 1, 2]], dtype=torch.int32)
    s = torch.tensor([1.0, 1.0])
    out = event_ell_matvec(s, idx, torch.tensor(0.5), 3)
    assert out.tolist() == [0.5, 0.5, 2.0]


def test_graded_events_are_weighted():
    idx = torch.tensor([[0], [1]], dtype=torch.int32)
    out = event_ell_matvec(torch.tensor([0.25, 2.0]), idx, torch.tensor(2.0), 2)
    assert out.tolist() == [0.5, 4.0]


@pytest.mark.parametrize("homogeneous", [True, False])
def test_gradcheck(homogeneous):
    s, idx, w, n_post = random_case(batch=(2,), homogeneous=homogeneous)
    s.requires_grad_(True)
    w = w.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s, w: event_ell_matvec(s, idx, w, n_post), (s, w))


def test_opcheck_and_compile_without_graph_break():
    s, idx, w, n_post = random_case(batch=(2,))
    torch.library.opcheck(torch.ops.torchbrain.event_ell_matvec.default, (s, idx, w, n_post))
    torch._dynamo.reset()
    f = torch.compile(lambda s: event_ell_matvec(s, idx, w, n_post) * 2, fullgraph=True,
                      backend="aot_eager")
    torch.testing.assert_close(f(s), 2 * event_ell_matvec(s, idx, w, n_post))


def test_fixed_out_degree_table():
    g = torch.Generator().manual_seed(0)
    t = fixed_out_degree_table(100, 50, 20, allow_multi_conn=False, generator=g)
    assert t.dtype == torch.int32 and t.shape == (100, 20)
    assert all(len(set(row)) == 20 for row in t.tolist())
    assert int(t.min()) >= 0 and int(t.max()) < 50
    with pytest.raises(ValueError, match="distinct"):
        fixed_out_degree_table(3, 5, 6, allow_multi_conn=False)
    # in-degree statistics of a uniform draw: mean out-degree * n_pre / n_post
    counts = torch.bincount(fixed_out_degree_table(4000, 4000, 80).flatten().long(),
                            minlength=4000)
    assert counts.float().mean().item() == pytest.approx(80.0)
    assert 6.0 < counts.float().std().item() < 12.0  # binomial: sqrt(80 * (1 - 1/4000)) ~ 8.9


def test_event_fixed_prob_semantics_and_units():
    c = EventFixedProb(4000, 4000, 0.02, 6 * u.nS, seed=1)
    assert c.conn_num == 80 and c.indices.dtype == torch.int32 and c.weight.ndim == 0
    assert c.weight_unit == "nS" and c.weight.item() == 6.0
    assert c.indices.element_size() * c.indices.numel() / c.num_synapses == 4  # bytes/synapse
    same = EventFixedProb(4000, 4000, 0.02, 6 * u.nS, seed=1)
    assert torch.equal(c.indices, same.indices)
    s = (torch.rand(2, 4000) < 0.01).float()
    torch.testing.assert_close(c(s), s @ c.to_dense())
    hetero = EventFixedProb(10, 8, 3, tb.init.Normal(1 * u.nS, 0.1 * u.nS), seed=2,
                            trainable=True)
    assert isinstance(hetero.weight, torch.nn.Parameter) and hetero.weight.shape == (10, 3)
    out = hetero(torch.ones(10))
    out.sum().backward()
    assert torch.allclose(hetero.weight.grad, torch.ones(10, 3))
    assert EventFixedProb(10, 8, 0.0, 1 * u.pA)(torch.ones(10)).abs().sum() == 0
    assert FixedNumConn(10, 8, 2, 0.5 * u.mV).weight_unit == "mV"


def test_event_fixed_prob_errors():
    with pytest.raises(tb.UnitError, match="EventFixedProb: parameter 'weight'"):
        EventFixedProb(10, 10, 2, 5 * u.ms)
    with pytest.raises(ValueError, match="conn_num"):
        EventFixedProb(10, 10, 1.5, 1.0)
    with pytest.raises(ValueError, match="conn_num"):
        EventFixedProb(10, 10, -1, 1.0)
    with pytest.raises(ValueError, match="efferent_target"):
        EventFixedProb(10, 10, 2, 1.0, efferent_target="pre")
    with pytest.raises(ValueError, match="shape"):
        EventFixedProb(10, 10, 2, torch.ones(3, 3))
    with pytest.raises(ValueError, match="presynaptic entries"):
        EventFixedProb(10, 10, 2, 1.0)(torch.ones(11))
    with pytest.raises(ValueError, match="in_size"):
        EventFixedProb(0, 10, 2, 1.0)
