"""Synaptic outputs: currents, analytic slope conductances, copying, units."""

import copy
import io
import math
import pickle

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.functional import synapses as F
from torchbrain.outputs import COBA, CUBA, MgBlock, SynOut

F64 = dict(dtype=torch.float64)
V = torch.linspace(-90.0, 30.0, 25, **F64)


def minus_dI_dV(out, V):
    V = V.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(out.current(V).sum(), V)
    return -grad


def test_coba_current_and_conductance():
    out = COBA(E=-80 * u.mV, **F64)
    g = torch.rand(25, **F64) * 10
    out.bind_cond(g)
    torch.testing.assert_close(out.current(V), g * (-80.0 - V))
    torch.testing.assert_close(out.conductance(V), g)
    torch.testing.assert_close(minus_dI_dV(out, V), g)
    assert out(V).shape == V.shape  # out(V) is the current, as in the reference
    assert COBA().E.item() == 0.0


def test_cuba_current_and_scale():
    out = CUBA(**F64)
    assert out.cond_unit == "pA" and out.scale is None
    g = torch.rand(25, **F64)
    out.bind_cond(g)
    torch.testing.assert_close(out.current(V), g)
    assert out.conductance(V) == 0.0  # the fast current-based path of the integrator
    ref = CUBA(scale=1 * u.volt, **F64)  # the reference's default: g in nS times 1000 mV
    assert ref.cond_unit == "nS"
    ref.bind_cond(g)
    torch.testing.assert_close(ref.current(V), 1000.0 * g)
    ref.bind_cond(2 * u.nS)
    assert ref.current(V).item() == pytest.approx(2000.0)
    out.bind_cond(5 * u.pA)
    assert out.current(V).item() == pytest.approx(5.0)
    with pytest.raises(tb.UnitError, match="CUBA: parameter 'g' expects a current"):
        out.bind_cond(1 * u.nS)


def mg_reference(g, V, E=0.0, cc_Mg=1.2, alpha=0.062, beta=3.57, V_offset=0.0):
    """NumPy float64: the current and -dI/dV by central differences."""
    def current(v):
        return g * (E - v) / (1 + cc_Mg / beta * np.exp(alpha * (V_offset - v)))

    h = 1e-5
    return current(V), -(current(V + h) - current(V - h)) / (2 * h)


@pytest.mark.parametrize("params", [
    {},
    dict(E=10.0, cc_Mg=2.0, alpha=0.08, beta=3.0, V_offset=-5.0),
])
def test_mgblock_current_and_analytic_conductance(params):
    q = {"E": u.mV, "cc_Mg": u.mM, "alpha": 1 / u.mV, "beta": u.mM, "V_offset": u.mV}
    out = MgBlock(**{k: v * q[k] for k, v in params.items()}, **F64)
    g = torch.rand(25, generator=torch.Generator().manual_seed(0), **F64) * 5
    out.bind_cond(g)
    I_ref, G_ref = mg_reference(g.numpy(), V.numpy(), **params)
    np.testing.assert_allclose(out.current(V).numpy(), I_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.conductance(V).numpy(), G_ref, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(out.conductance(V), minus_dI_dV(out, V))
    # the NMDA negative-slope region exists with the defaults
    if not params:
        assert (out.conductance(V) < 0).any() and (out.conductance(V) > 0).any()


def test_mgblock_unblocked_fraction_values():
    out = MgBlock(**F64)
    B = out.unblocked_fraction(torch.tensor([0.0, -65.0], **F64))
    assert B[0].item() == pytest.approx(1 / (1 + 1.2 / 3.57))
    assert B[1].item() == pytest.approx(1 / (1 + 1.2 / 3.57 * math.exp(0.062 * 65.0)))


def test_gradcheck_output_functions():
    d = dict(dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.5, 2.0, 4.0], **d)
    v = torch.tensor([-70.0, -30.0, 10.0], **d)
    kw = dict(E=0.0, cc_Mg=1.2, alpha=0.062, beta=3.57, V_offset=0.0)
    assert torch.autograd.gradcheck(lambda g, v: F.mgblock_current(g, v, **kw), (g, v))
    assert torch.autograd.gradcheck(lambda g, v: F.mgblock_conductance(g, v, **kw), (g, v))
    assert torch.autograd.gradcheck(lambda g, v: F.coba_current(g, v, -80.0), (g, v))


def test_usable_before_bind_cond():
    for out in (COBA(), CUBA(), CUBA(scale=2.0), MgBlock()):
        assert out.cond == 0.0
        current = out.current(torch.tensor([-65.0]))
        assert float(torch.as_tensor(current).abs().sum()) == 0.0


@pytest.mark.parametrize("cls,kwargs", [(COBA, dict(E=-80 * u.mV)), (CUBA, {}),
                                        (CUBA, dict(scale=1 * u.volt)), (MgBlock, {})])
def test_pickle_deepcopy_to_and_repr(cls, kwargs):
    out = cls(**kwargs)
    assert isinstance(out, SynOut)
    text = repr(out)
    assert type(out).__name__ in text
    assert " mV" in text or "scale=None" in text
    g = torch.rand(4, requires_grad=True) * 3  # a non-leaf bound value, as after a forward
    out.bind_cond(g)
    V0 = torch.full((4,), -60.0)
    expected = out.current(V0).detach()
    clone = copy.deepcopy(out)
    buf = io.BytesIO()
    torch.save(out, buf)
    buf.seek(0)
    for other in (clone, pickle.loads(pickle.dumps(out)), torch.load(buf, weights_only=False)):
        torch.testing.assert_close(other.current(V0), expected)
        assert other.cond.grad_fn is None
    assert out.cond.grad_fn is not None  # the original keeps its graph
    out64 = cls(**kwargs).to(torch.float64)
    assert all(b.dtype == torch.float64 for b in out64.buffers())
    out64.bind_cond(torch.ones(4, **F64))
    assert out64.current(torch.zeros(4, **F64)).dtype == torch.float64
    made = cls(**kwargs, dtype=torch.float64)
    assert all(b.dtype == torch.float64 for b in made.buffers())


def test_bad_parameters():
    with pytest.raises(tb.UnitError, match="COBA: parameter 'E' expects a voltage"):
        COBA(E=1 * u.ms)
    with pytest.raises(tb.UnitError, match="CUBA: parameter 'scale' expects a voltage"):
        CUBA(scale=1 * u.nS)
    with pytest.raises(tb.UnitError, match="MgBlock: parameter 'alpha'"):
        MgBlock(alpha=0.062 / u.ms)
    with pytest.raises(tb.UnitError, match="MgBlock: parameter 'cc_Mg' expects a concentration"):
        MgBlock(cc_Mg=1.2 * u.mV)
    with pytest.raises(ValueError, match="MgBlock: parameter 'beta' must be positive"):
        MgBlock(beta=0.0)
    with pytest.raises(ValueError, match="MgBlock: parameter 'cc_Mg' must be >= 0"):
        MgBlock(cc_Mg=-1.0)
    assert MgBlock(alpha=0.062, beta=3.57, cc_Mg=1.2).alpha.item() == pytest.approx(0.062)


def test_coba_output_drives_a_lif_membrane_exactly():
    # A constant conductance g towards E: V relaxes to (V_rest + R g E)/(1 + R g) with time
    # constant tau/(1 + R g) (the integrator folds conductance() into its exponential step).
    neuron = tb.LIF(2, R=0.1 * u.gigaohm, tau=10 * u.ms, V_th=100 * u.mV, V_rest=-65 * u.mV,
                    V_reset=-65 * u.mV, V_initializer=tb.init.Constant(-65 * u.mV), **F64)
    out = COBA(E=0 * u.mV, **F64)
    neuron.add_current_input("exc", out)
    tb.init_all_states(neuron)
    g = torch.tensor([5.0, 20.0], **F64)
    with tb.environ.context(dt=0.1):
        for _ in range(50):
            out.bind_cond(g)
            neuron(0.0)
    V_inf = -65.0 / (1 + 0.1 * g)
    expected = V_inf + (-65.0 - V_inf) * torch.exp(-5.0 * (1 + 0.1 * g) / 10.0)
    torch.testing.assert_close(neuron.V, expected, atol=1e-9, rtol=0)
