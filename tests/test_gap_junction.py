"""Gap junctions: analytic two-cell relaxation, steady state, a NumPy reference, errors."""

import math

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.neurons.lif import LIF
from torchbrain.projections.gap_junction import AsymmetryGapJunction, SymmetryGapJunction

TAU, R, V_REST = 10.0, 0.1, -65.0  # ms, GΩ, mV


def cells(n, V0, dtype=torch.float64):
    # passive cells: the threshold is far above anything the tests reach
    return LIF(n, tau=TAU * u.ms, R=R * u.gigaohm, V_rest=V_REST * u.mV, V_reset=-70 * u.mV,
               V_th=100 * u.mV, V_initializer=torch.as_tensor(V0, dtype=dtype), dtype=dtype)


def run(pops, gap, steps, dt, drive=None, order=None):
    trace = []
    with tb.environ.context(dt=dt):
        for _ in range(steps):
            gap()
            for i in order or range(len(pops)):
                pops[i](0.0 if drive is None else drive[i])
            trace.append(torch.cat([p.V.reshape(-1) for p in pops]).clone())
    return torch.stack(trace)


def test_two_cells_relax_with_the_difference_mode_rate():
    g, dt, steps = 5.0, 0.01, 1000  # Rg = 0.5: the difference decays twice as fast
    pop = cells(2, [-55.0, -70.0])
    gap = SymmetryGapJunction(pop, "V", ([0], [1]), g * u.nS)
    tb.init_all_states(pop)
    V = run([pop], gap, steps, dt)
    diff = (V[:, 0] - V[:, 1]) / 15.0
    mean = ((V[:, 0] + V[:, 1]) / 2 - V_REST) / 2.5
    t = dt * torch.arange(1, steps + 1, dtype=torch.float64)
    # continuous solution: difference at (1 + 2Rg)/tau, mean at 1/tau (first order in dt)
    rate = (1 + 2 * R * g) / TAU
    torch.testing.assert_close(diff, torch.exp(-rate * t), rtol=2e-3, atol=0)
    torch.testing.assert_close(mean, torch.exp(-t / TAU), rtol=2e-3, atol=0)
    # the discrete map exactly: exponential Euler with the self-conductance g folded in
    h, k = dt / TAU, 1 + R * g
    f_diff = 1 - (1 + 2 * R * g) / k * (1 - math.exp(-k * h))
    f_mean = 1 - (1 - math.exp(-k * h)) / k
    n = torch.arange(1, steps + 1, dtype=torch.float64)
    torch.testing.assert_close(diff, f_diff ** n, rtol=1e-10, atol=0)
    torch.testing.assert_close(mean, f_mean ** n, rtol=1e-10, atol=0)
    # the cells approach each other faster than they approach rest: e^-2 against e^-1 here
    assert diff[-1].item() < 0.4 * mean[-1].item()


def test_steady_state_with_current_into_one_cell():
    g, I = 5.0, 100.0  # nS, pA (R I = 10 mV)
    pop = cells(2, [V_REST, V_REST])
    gap = SymmetryGapJunction(pop, conn=([1], [0]), weight=g)
    tb.init_all_states(pop)
    with tb.environ.context(dt=0.1):
        for _ in range(3000):  # 300 ms = 30 tau
            gap()
            pop(torch.tensor([I, 0.0], dtype=torch.float64))
    V1, V2 = pop.V.tolist()
    # fixed point of both the ODE and the scheme: V1 - V2 = R I / (1 + 2 R g), mean = rest + RI/2
    assert V1 - V2 == pytest.approx(R * I / (1 + 2 * R * g), abs=1e-9)
    assert (V1 + V2) / 2 == pytest.approx(V_REST + R * I / 2, abs=1e-9)


def test_two_populations_equal_one_population_in_any_call_order():
    g, dt = 3.0, 0.1
    one = cells(2, [-50.0, -75.0])
    gap_one = SymmetryGapJunction(one, "V", ([0], [1]), g)
    tb.init_all_states(one)
    ref = run([one], gap_one, 200, dt, drive=[torch.tensor([20.0, -5.0], dtype=torch.float64)])
    for order in ([0, 1], [1, 0]):
        a, b = cells(1, [-50.0]), cells(1, [-75.0])
        gap = SymmetryGapJunction((a, b), ("V", "V"), ([0], [0]), g * u.nS)
        tb.init_all_states(torch.nn.ModuleList([a, b]))
        drive = [torch.tensor([20.0], dtype=torch.float64),
                 torch.tensor([-5.0], dtype=torch.float64)]
        V = run([a, b], gap, 200, dt, drive=drive, order=order)
        torch.testing.assert_close(V, ref, rtol=0, atol=1e-12)


def numpy_reference(V0, pre_ids, post_ids, g_post, g_pre, steps, dt, I):
    """Exponential Euler per cell, partner potentials from the start of the step."""
    V = np.array(V0, dtype=np.float64)
    out = []
    for _ in range(steps):
        cur = np.array(I, dtype=np.float64).copy()
        G = np.zeros_like(V)
        for i, j, gf, gb in zip(pre_ids, post_ids, g_post, g_pre, strict=True):
            cur[..., j] += gf * (V[..., i] - V[..., j])
            cur[..., i] += gb * (V[..., j] - V[..., i])
            G[..., j] += gf
            G[..., i] += gb
        f = (-(V - V_REST) + R * cur) / TAU
        J = -(1 + R * G) / TAU
        V = V + (np.expm1(dt * J) / J) * f
        out.append(V.copy())
    return np.stack(out)


def test_asymmetric_network_matches_a_numpy_reference_with_batch():
    rng = np.random.default_rng(0)
    n, pairs = 6, 9
    pre_ids = rng.integers(0, n, pairs)
    post_ids = (pre_ids + rng.integers(1, n, pairs)) % n  # never a self-coupling
    w = rng.uniform(0.5, 4.0, (pairs, 2))
    V0 = rng.uniform(-75, -55, (2, n))
    I = rng.uniform(-50, 150, (2, n))
    pop = LIF(n, tau=TAU, R=R, V_rest=V_REST, V_reset=-80.0, V_th=100.0,
              V_initializer=torch.tensor(V0), dtype=torch.float64)
    gap = AsymmetryGapJunction(pop, "V", pop, "V", np.stack([pre_ids, post_ids], 1),
                               torch.tensor(w) * u.nS)
    tb.init_all_states(pop, batch_size=2)
    with tb.environ.context(dt=0.1):
        got = []
        for _ in range(50):
            gap()
            pop(torch.tensor(I))
            got.append(pop.V.clone())
    ref = numpy_reference(V0, pre_ids, post_ids, w[:, 0], w[:, 1], 50, 0.1, I)
    np.testing.assert_allclose(torch.stack(got).numpy(), ref, rtol=0, atol=1e-10)


def test_one_way_junction_leaves_the_source_untouched():
    g = 4.0
    a, b = cells(1, [-50.0]), cells(1, [-70.0])
    free = cells(1, [-50.0])
    gap = AsymmetryGapJunction(a, "V", b, "V", ([0], [0]), [g, 0.0] * u.nS)
    tb.init_all_states(torch.nn.ModuleList([a, b, free]))
    with tb.environ.context(dt=0.1):
        for _ in range(100):
            gap()
            a(0.0)
            b(0.0)
            free(0.0)
    assert a.V.item() == free.V.item()  # bit for bit: no current into the source
    ref = numpy_reference([-50.0, -70.0], [0], [1], [g], [0.0], 100, 0.1, [0.0, 0.0])
    np.testing.assert_allclose(b.V.item(), ref[-1, 1], rtol=0, atol=1e-10)
    assert b.V.item() > ref[-1, 0] - 20.0  # pulled up towards the source


def test_callable_conn_and_per_pair_weights():
    pop = cells(4, [-60.0] * 4)

    def ring(pre_size, post_size):
        n = pre_size[0]
        return list(range(n)), [(i + 1) % n for i in range(n)]

    gap = SymmetryGapJunction(pop, "V", ring, tb.init.Constant(2 * u.nS))
    cur = gap.currents[0]
    V = torch.tensor([-60.0, -50.0, -60.0, -60.0], dtype=torch.float64)
    # neuron 1 is coupled to 0 and 2 (both 10 mV below): I_1 = 2 nS * (-10 mV) * 2
    torch.testing.assert_close(cur.current(V)[1], torch.tensor(-40.0, dtype=torch.float64))
    torch.testing.assert_close(cur.conductance(V), torch.full((4,), 4.0, dtype=torch.float64))
    assert "pairs=4" in repr(gap)


def test_two_population_coupling_must_be_called():
    a, b = cells(1, [-50.0]), cells(1, [-70.0])
    SymmetryGapJunction((a, b), "V", ([0], [0]), 1.0)
    tb.init_all_states(torch.nn.ModuleList([a, b]))
    with tb.environ.context(dt=0.1), pytest.raises(RuntimeError, match="call the gap-junction"):
        a(0.0)


def test_construction_errors():
    pop, other = cells(3, [-60.0] * 3), cells(2, [-60.0] * 2)
    with pytest.raises(ValueError, match=r"indices in \[3, 3\] but the population has 3"):
        SymmetryGapJunction(pop, "V", ([0], [3]), 1.0)
    with pytest.raises(ValueError, match="2 pre indices but 1 post"):
        SymmetryGapJunction((pop, other), "V", ([0, 1], [1]), 1.0)
    with pytest.raises(ValueError, match="couples neuron 1 to itself"):
        SymmetryGapJunction(pop, "V", ([1], [1]), 1.0)
    with pytest.raises(ValueError, match=r"one value per junction \(2,\)"):
        SymmetryGapJunction(pop, "V", ([0, 1], [1, 2]), torch.ones(3))
    with pytest.raises(tb.UnitError, match="'weight' expects a conductance"):
        SymmetryGapJunction(pop, "V", ([0], [1]), 1.0 * u.pA)
    with pytest.raises(ValueError, match="must be >= 0"):
        SymmetryGapJunction(pop, "V", ([0], [1]), -1.0 * u.nS)
    with pytest.raises(ValueError, match="has no State named 'v'"):
        SymmetryGapJunction(pop, "v", ([0], [1]), 1.0)
    with pytest.raises(TypeError, match="must hold integer indices"):
        SymmetryGapJunction(pop, "V", ([0.0], [1.0]), 1.0)
    with pytest.raises(TypeError, match="'pre' must be a torchbrain population"):
        SymmetryGapJunction((torch.nn.Linear(1, 1), pop), "V", ([0], [1]), 1.0)
    with pytest.raises(ValueError, match=r"shape \(2,\) .* or \(1, 2\)"):
        AsymmetryGapJunction(pop, "V", other, "V", ([0], [1]), 1.0 * u.nS)
    with pytest.raises(ValueError, match=r"shape \(n_pairs, 2\)"):
        AsymmetryGapJunction(pop, "V", other, "V", np.zeros((2, 3), dtype=int), [1.0, 1.0])
    # nothing was registered by the failed constructions
    assert len(pop.current_inputs) == 0 and len(other.current_inputs) == 0


def test_copies_dtype_and_repr_after_an_autograd_forward():
    import copy
    import pickle

    a = cells(2, [-50.0, -60.0], dtype=torch.float32)
    b = cells(2, [-70.0, -65.0], dtype=torch.float32)
    gap = SymmetryGapJunction((a, b), "V", ([0, 1], [1, 0]), 2 * u.nS)
    net = torch.nn.ModuleList([a, b, gap])
    tb.init_all_states(net)
    x = torch.tensor([10.0, 0.0], requires_grad=True)
    with tb.environ.context(dt=0.1):
        for _ in range(2):
            gap()
            a(x)
            b(0.0)
        # the coupling carries the gradient of a's input into b (from the second step on)
        b.V.sum().backward(retain_graph=True)
        assert x.grad is not None and bool((x.grad > 0).all())
        for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
            ca, cb, cgap = clone
            cgap()
            ca(0.0)
            cb(0.0)
        net64 = copy.deepcopy(net).to(torch.float64)
        net64[2]()
        net64[0](0.0)
        assert net64[0].V.dtype == torch.float64
    assert "pairs=2" in repr(gap) and "weight=2 nS" in repr(gap)
