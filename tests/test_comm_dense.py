"""Dense connectivity layers (Linear, SignedWLinear, AllToAll, OneToOne, EventLinear) and the
event-driven dense op against plain ``x @ W`` references."""

import copy
import pickle

import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.comm.dense import AllToAll, EventLinear, Linear, OneToOne, SignedWLinear
from torchbrain.ops.event_csr import event_dense_matvec, event_dense_matvec_reference
from torchbrain.outputs import COBA
from torchbrain.projections import AlignPostProj
from torchbrain.synapses import Expon

F64 = torch.float64


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def gradcheck_layer(layer, x, names):
    """gradcheck of ``layer(x)`` w.r.t. ``x`` and the named parameters (float64)."""
    params = [getattr(layer, n).detach().clone().requires_grad_(True) for n in names]

    def f(x, *values):
        return torch.func.functional_call(layer, dict(zip(names, values, strict=True)), (x,))

    return torch.autograd.gradcheck(f, (x.detach().clone().requires_grad_(True), *params))


# --------------------------------------------------------------------------------- Linear
def test_linear_matches_reference_and_kaiming_default():
    w, b = rand(7, 4, seed=1), rand(4, seed=2)
    layer = Linear(7, 4, w_init=w, b_init=b, dtype=F64)
    x = rand(3, 5, 7, seed=3)
    torch.testing.assert_close(layer(x), x @ w + b)
    assert isinstance(layer.weight, torch.nn.Parameter) and layer.weight.shape == (7, 4)
    assert layer.weight_unit is None
    # brainstate default: KaimingNormal (Var = 2 / fan_in) and a zero bias
    torch.manual_seed(0)
    big = Linear(400, 300)
    assert big.weight.var().item() == pytest.approx(2 / 400, rel=0.05)
    assert not big.bias.any()
    assert Linear(3, 2, b_init=None).bias is None
    frozen = Linear(3, 2, trainable=False)
    assert not list(frozen.parameters()) and "weight" in dict(frozen.named_buffers())


def test_linear_mask_units_and_gradients():
    w = rand(6, 5, seed=4)
    mask = (rand(6, 5, seed=5) > 0).double()
    layer = Linear(6, 5, w_init=w * u.nS, b_init=tb.init.Constant(0.5 * u.nS), w_mask=mask,
                   dtype=F64)
    assert layer.weight_unit == "nS" and layer.quantity("bias").units == u.nS
    x = rand(2, 6, seed=6)
    torch.testing.assert_close(layer(x), x @ (w * mask) + 0.5)
    torch.testing.assert_close(layer.to_dense(), w * mask)
    assert gradcheck_layer(layer, x, ["weight", "bias"])
    # masked-out entries get no gradient
    layer(x).sum().backward()
    assert not layer.weight.grad[mask == 0].any()
    # the unit comes from the initializer; microsiemens are converted to nS
    assert Linear(3, 2, w_init=tb.init.KaimingNormal(unit=u.uS)).weight_unit == "nS"
    assert Linear(3, 2, w_init=torch.ones(3, 2) * u.pA, b_init=None).weight_unit == "pA"
    # a plain weight with a bias in pA: the layer delivers pA
    assert Linear(3, 2, w_init=torch.ones(3, 2), b_init=torch.ones(2) * u.pA).weight_unit == "pA"


def test_linear_errors():
    with pytest.raises(tb.UnitError, match="Linear: parameter 'w_init'"):
        Linear(3, 2, w_init=torch.ones(3, 2) * u.ms)
    with pytest.raises(tb.UnitError, match="'b_init' is in pA but the weight is in nS"):
        Linear(3, 2, w_init=torch.ones(3, 2) * u.nS, b_init=torch.ones(2) * u.pA)
    with pytest.raises(ValueError, match="Linear: parameter 'w_init' must have shape \\(3, 2\\)"):
        Linear(3, 2, w_init=torch.ones(2, 3))
    with pytest.raises(ValueError, match="'b_init' must have shape"):
        Linear(3, 2, b_init=torch.ones(3))
    with pytest.raises(ValueError, match="'w_mask' must broadcast"):
        Linear(3, 2, w_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="Linear: input has 4 presynaptic entries"):
        Linear(3, 2)(torch.ones(4))
    with pytest.raises(ValueError, match="Linear: 'in_size'"):
        Linear(0, 2)
    with pytest.raises(ValueError, match="contains NaN"):
        Linear(2, 2, w_init=torch.full((2, 2), float("nan")))


def test_factory_kwargs_copies_and_projection_units():
    layer = Linear(4, 3, w_init=tb.init.Normal(1 * u.nS, 0.1 * u.nS), dtype=F64)
    assert layer.weight.dtype == F64 and layer.bias.dtype == F64
    layer(torch.ones(4)).sum().backward()
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        torch.testing.assert_close(clone(torch.ones(4)), layer(torch.ones(4)))
        assert clone.weight_unit == "nS"
    assert layer.to(torch.float32)(torch.ones(4)).dtype == torch.float32
    ev = EventLinear(4, 3, 1 * u.pA, device="cpu")
    assert ev.weight.device.type == "cpu" and ev.weight.dtype == torch.get_default_dtype()
    post = tb.LIF(3, tau=20 * u.ms, V_th=-50 * u.mV, V_rest=-60 * u.mV, V_reset=-60 * u.mV,
                  R=0.1 * u.gigaohm, V_initializer=tb.init.Constant(-60 * u.mV))
    with pytest.raises(tb.UnitError, match="weights of EventLinear are in pA but COBA"):
        AlignPostProj(comm=ev, syn=Expon.desc(3, tau=5 * u.ms), out=COBA.desc(E=0 * u.mV),
                      post=post)
    AlignPostProj(comm=AllToAll(4, 3, 0.5 * u.nS), syn=Expon.desc(3, tau=5 * u.ms),
                  out=COBA.desc(E=0 * u.mV), post=post)


# -------------------------------------------------------------------------- SignedWLinear
def test_signed_linear_obeys_dales_law():
    n_exc, n_inh, n_post = 6, 3, 5
    sign = torch.cat([torch.ones(n_exc), -torch.ones(n_inh)]).unsqueeze(1)
    layer = SignedWLinear(n_exc + n_inh, n_post, w_init=rand(9, 5, seed=7) * u.nS, w_sign=sign,
                          dtype=F64)
    assert layer.weight_unit == "nS"
    w = layer.to_dense()
    assert bool((w[:n_exc] >= 0).all()) and bool((w[n_exc:] <= 0).all())
    torch.testing.assert_close(w, layer.weight.detach().abs() * sign)
    x = rand(2, 9, seed=8).abs()
    torch.testing.assert_close(layer(x), x @ w)
    exc_only = torch.cat([torch.ones(n_exc), torch.zeros(n_inh)]).double()
    inh_only = 1 - exc_only
    assert bool((layer(exc_only) >= 0).all()) and bool((layer(inh_only) <= 0).all())
    # the signs survive training: a gradient step changes magnitudes, never the sign pattern
    layer(x).sum().backward()
    with torch.no_grad():
        layer.weight -= 10.0 * layer.weight.grad
    w = layer.to_dense()
    assert bool((w[:n_exc] >= 0).all()) and bool((w[n_exc:] <= 0).all())
    assert gradcheck_layer(layer, x, ["weight"])
    unsigned = SignedWLinear(3, 2, w_init=-torch.ones(3, 2))
    assert bool((unsigned.to_dense() == 1).all())
    with pytest.raises(ValueError, match="'w_sign' must hold only -1, 0 or \\+1"):
        SignedWLinear(3, 2, w_sign=torch.full((3, 1), 0.5))
    with pytest.raises(ValueError, match="'w_sign' must broadcast"):
        SignedWLinear(3, 2, w_sign=torch.ones(3))


# ------------------------------------------------------------------------------ AllToAll
@pytest.mark.parametrize("shape", [(5, 5), (7, 4), (4, 7)])
@pytest.mark.parametrize("include_self", [True, False])
def test_all_to_all_matrix_and_scalar(shape, include_self):
    n_pre, n_post = shape
    w = rand(n_pre, n_post, seed=9)
    keep = torch.ones(n_pre, n_post, dtype=F64)
    if not include_self:
        for i in range(min(shape)):
            keep[i, i] = 0.0
    x = rand(3, n_pre, seed=10)
    mat = AllToAll(n_pre, n_post, w_init=w, b_init=rand(n_post, seed=11),
                   include_self=include_self, dtype=F64)
    torch.testing.assert_close(mat(x), x @ (w * keep) + mat.bias.detach())
    torch.testing.assert_close(mat.to_dense(), w * keep)
    scalar = AllToAll(n_pre, n_post, w_init=0.3 * u.pA, include_self=include_self, dtype=F64)
    assert scalar.weight.ndim == 0 and scalar.weight_unit == "pA"
    torch.testing.assert_close(scalar(x), x @ (0.3 * keep))
    torch.testing.assert_close(scalar(x[0]), x[0] @ (0.3 * keep))
    assert gradcheck_layer(mat, x, ["weight", "bias"])
    assert gradcheck_layer(scalar, x, ["weight"])


def test_all_to_all_errors():
    with pytest.raises(ValueError, match="AllToAll: parameter 'w_init' must have shape"):
        AllToAll(3, 2, w_init=torch.ones(3))
    with pytest.raises(tb.UnitError, match="AllToAll: parameter 'w_init'"):
        AllToAll(3, 2, w_init=1 * u.ms)


# ------------------------------------------------------------------------------ OneToOne
def test_one_to_one():
    w, b = rand(6, seed=12), rand(6, seed=13)
    layer = OneToOne(6, w_init=w * u.mV, b_init=b * u.mV, dtype=F64)
    assert layer.n_pre == layer.n_post == 6 and layer.weight_unit == "mV"
    x = rand(2, 6, seed=14)
    torch.testing.assert_close(layer(x), x * w + b)
    torch.testing.assert_close(layer.to_dense(), torch.diag(w))
    assert gradcheck_layer(layer, x, ["weight", "bias"])
    scalar = OneToOne(6, w_init=2.0, dtype=F64)
    torch.testing.assert_close(scalar(x), 2 * x)
    torch.manual_seed(0)
    assert OneToOne(10000).weight.std().item() == pytest.approx(1.0, rel=0.05)  # Normal()
    with pytest.raises(ValueError, match="OneToOne: parameter 'w_init' must have shape"):
        OneToOne(6, w_init=torch.ones(5))
    with pytest.raises(ValueError, match="input has 5 presynaptic entries"):
        layer(torch.ones(5, dtype=F64))


# ---------------------------------------------------------------------------- EventLinear
@pytest.mark.parametrize("float_as_event", [True, False])
@pytest.mark.parametrize("batch", [(), (1,), (4,), (2, 3)])
@pytest.mark.parametrize("p", [0.0, 0.4, 1.0])
def test_event_linear_matches_dense(float_as_event, batch, p):
    g = torch.Generator().manual_seed(15)
    w = torch.randn(11, 6, generator=g, dtype=F64)
    # graded values at the active entries, exact zeros elsewhere
    x = torch.rand(*batch, 11, generator=g, dtype=F64) * 3
    x = x * (torch.rand(*batch, 11, generator=g) < p)
    layer = EventLinear(11, 6, w, float_as_event=float_as_event, dtype=F64)
    events = (x != 0).double() if float_as_event else x
    out = layer(x)
    assert out.shape == (*batch, 6)
    torch.testing.assert_close(out, events @ w)
    torch.testing.assert_close(event_dense_matvec(x, w, float_as_event),
                               event_dense_matvec_reference(x, w, float_as_event))
    scalar = EventLinear(11, 6, 0.5, float_as_event=float_as_event, dtype=F64)
    torch.testing.assert_close(scalar(x), events @ torch.full((11, 6), 0.5, dtype=F64))


def test_event_linear_float_as_event_semantics_and_gradients():
    w = rand(4, 3, seed=16)
    x = torch.tensor([0.0, 0.5, -2.0, 0.0], dtype=F64)
    binary = EventLinear(4, 3, w, dtype=F64, trainable=True)
    graded = EventLinear(4, 3, w, float_as_event=False, dtype=F64)
    # any nonzero value is one event (the reference's semantics), or weights the row by value
    torch.testing.assert_close(binary(x), w[1] + w[2])
    torch.testing.assert_close(graded(x), 0.5 * w[1] - 2.0 * w[2])
    assert isinstance(binary.weight, torch.nn.Parameter)
    assert "weight" in dict(graded.named_buffers())  # not trainable by default
    assert gradcheck_layer(graded, rand(2, 4, seed=17), ["weight"])
    # binary events: weight gradient e^T g, input gradient g W^T (straight through)
    xg = x.clone().requires_grad_(True)
    grad_out = rand(3, seed=18)
    binary(xg).backward(grad_out)
    torch.testing.assert_close(binary.weight.grad, torch.outer((x != 0).double(), grad_out))
    torch.testing.assert_close(xg.grad, w @ grad_out)
    scalar = EventLinear(4, 3, torch.tensor(0.7, dtype=F64), dtype=F64, trainable=True)
    xs = x.clone().requires_grad_(True)
    scalar(xs).backward(grad_out)
    torch.testing.assert_close(xs.grad, torch.full((4,), 0.7, dtype=F64) * grad_out.sum())
    torch.testing.assert_close(scalar.weight.grad, 2 * grad_out.sum())


def test_event_dense_opcheck_and_errors():
    x = (rand(2, 5, seed=19) > 0).double().requires_grad_(True)
    w = rand(5, 3, seed=20).requires_grad_(True)
    for float_as_event in (True, False):
        torch.library.opcheck(torch.ops.torchbrain.event_dense_matvec.default,
                              (x, w, float_as_event))
    with pytest.raises(ValueError, match="event_dense_matvec: spikes have 5"):
        event_dense_matvec(x, w.T)
    with pytest.raises(ValueError, match="EventLinear: parameter 'weight' must have shape"):
        EventLinear(5, 3, torch.ones(5))
    with pytest.raises(tb.UnitError, match="EventLinear: parameter 'weight'"):
        EventLinear(5, 3, 1 * u.mM)
