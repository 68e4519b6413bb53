"""Tests of the drivers in torchbrain.drivers.loops: time_range, for_loop, scan, the checkpointed
drivers (results, States and gradients equal to the plain loop) and jit."""

from __future__ import annotations

import contextvars
import math
import sys

import pytest
import torch
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from torchbrain import environ
from torchbrain.drivers.loops import (
    ProgressBar,
    checkpointed_for_loop,
    checkpointed_scan,
    compile,
    for_loop,
    jit,
    scan,
    time_range,
)
from torchbrain.module import Module
from torchbrain.state import HiddenState
from torchbrain.units import UnitError, u

F64 = torch.float64


class Leaky(Module):
    """Leaky integrator ``x <- a*x + w*input`` with a nonlinear readout ``tanh(x)**2``."""

    def __init__(self, n: int, a: float = 0.9, dtype=F64):
        super().__init__(dtype=dtype)
        self.n = n
        self.a = a
        self.w = nn.Parameter(torch.linspace(0.5, 1.5, n, dtype=dtype))
        self.calls = 0

    def init_state(self, batch_size=None):
        shape = (self.n,) if batch_size is None else (batch_size, self.n)
        self.x = HiddenState(torch.zeros(shape, dtype=self._factory["dtype"]))

    def forward(self, inp):
        self.calls += 1
        self.x = self.a * self.x + self.w * inp
        return torch.tanh(self.x) ** 2


class LateWriter(Module):
    """A State ``y`` read at every step but written only from step ``start`` on."""

    def __init__(self, n: int, start: int):
        super().__init__(dtype=F64)
        self.start = start
        self.v = nn.Parameter(torch.linspace(-1.0, 1.0, n, dtype=F64))

    def init_state(self, batch_size=None):
        self.y = HiddenState(torch.full((batch_size, self.v.numel()), 0.5, dtype=F64))
        # a step counter kept as a State (a Python int would not be rewound for the re-run)
        self.step = HiddenState(torch.zeros((), dtype=torch.int64))

    def forward(self, inp):
        out = torch.sin(self.y * inp)
        if self.step >= self.start:
            self.y = 0.8 * self.y + self.v * out
        self.step = self.step + 1
        return out


def make_leaky(batch=3, n=4, seed=0):
    torch.manual_seed(seed)
    m = Leaky(n)
    m.init_state(batch)
    return m


def grads(loss, params):
    return torch.autograd.grad(loss, params, allow_unused=True)


# ----------------------------------------------------------------------------------- time_range
def test_time_range_length_and_values_from_environ():
    with environ.context(dt=0.1 * u.ms):
        ts = time_range(200 * u.ms)
    assert ts.shape == (2000,)
    assert ts.dtype == torch.float64  # exact steps for long runs, whatever the default dtype
    expected = torch.arange(2000, dtype=F64) * 0.1
    torch.testing.assert_close(ts, expected.to(ts.dtype))


def test_time_range_units_numbers_t0_dtype():
    ts = time_range(0.2 * u.second, dt=100 * u.us, t0=5 * u.ms, dtype=F64)
    assert ts.shape == (2000,) and ts.dtype == F64
    assert ts[0].item() == 5.0
    assert math.isclose(ts[-1].item(), 5.0 + 1999 * 0.1, rel_tol=1e-14)
    # plain numbers are ms; a duration that is not a whole number of steps keeps the partial one
    assert time_range(1.0, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert time_range(1.05, 0.1).numel() == 11
    assert time_range(1.1, 0.1).numel() == 11  # 1.1 / 0.1 == 11.000000000000002
    assert time_range(torch.tensor(3.0), dt=1.0).tolist() == [0.0, 1.0, 2.0]


def test_time_range_errors():
    with pytest.raises(ValueError, match="duration"):
        time_range(0.0, 0.1)
    with pytest.raises(ValueError, match="duration"):
        time_range(-5 * u.ms, 0.1)
    with pytest.raises(ValueError, match="dt"):
        time_range(10.0, -0.1)
    with pytest.raises(UnitError, match="duration"):
        time_range(10 * u.mV, 0.1)
    with pytest.raises(ValueError, match="scalar"):
        time_range(torch.ones(2), 0.1)
    # no dt given and none in the environment (run in a fresh, empty context)
    with pytest.raises(KeyError, match="dt"):
        contextvars.Context().run(time_range, 10.0)


# ------------------------------------------------------------------------------------- for_loop
def test_for_loop_stacks_tensors_and_several_inputs():
    T, B, N = 6, 2, 3
    ts = torch.arange(T, dtype=F64)
    xs = torch.randn(T, B, N, dtype=F64)
    out = for_loop(lambda t, x: x * t, ts, xs)
    assert out.shape == (T, B, N)
    torch.testing.assert_close(out, xs * ts.view(T, 1, 1))


def test_for_loop_pytrees_in_and_out():
    T = 5
    inp = {"a": torch.arange(T * 2.0).view(T, 2), "b": (torch.ones(T), None)}

    def step(d):
        assert d["b"][1] is None
        return {"sum": d["a"].sum(), "pair": (d["a"] * 2, None), "n": 3, "f": 0.5}

    out = for_loop(step, inp)
    assert out["sum"].shape == (T,)
    assert out["pair"][0].shape == (T, 2) and out["pair"][1] is None
    assert out["n"].tolist() == [3] * T and out["n"].dtype == torch.int64
    assert out["f"].shape == (T,)
    torch.testing.assert_close(out["sum"], inp["a"].sum(1))
    assert for_loop(lambda x: None, torch.ones(3)) is None


def test_for_loop_reverse_keeps_index_order():
    visited = []

    def step(t):
        visited.append(int(t))
        return t * 10

    out = for_loop(step, torch.arange(5), reverse=True)
    assert visited == [4, 3, 2, 1, 0]
    assert out.tolist() == [0, 10, 20, 30, 40]

    # with a State: a reversed running sum
    m = Leaky(1, a=1.0)
    m.init_state()
    with torch.no_grad():
        m.w.fill_(1.0)
        xs = torch.arange(1.0, 5.0, dtype=F64).view(4, 1)
        for_loop(lambda x: m(x), xs, reverse=True)
    assert m.x.item() == 10.0


def test_for_loop_length_only():
    counter = iter(range(100))
    out = for_loop(lambda: next(counter), length=4)
    assert out.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="length"):
        for_loop(lambda: 0)


def test_for_loop_input_errors():
    with pytest.raises(ValueError, match=r"xs\[0\]: 5.*xs\[1\]\['a'\]: 4"):
        for_loop(lambda a, b: a, torch.ones(5), {"a": torch.ones(4)})
    with pytest.raises(ValueError, match="length=3"):
        for_loop(lambda a: a, torch.ones(5), length=3)
    with pytest.raises(TypeError, match="float"):
        for_loop(lambda a: a, [1.0, 2.0])
    with pytest.raises(ValueError, match="0-dimensional"):
        for_loop(lambda a: a, torch.tensor(1.0))
    with pytest.raises(ValueError, match="zero steps"):
        for_loop(lambda a: a, torch.ones(0, 3))


def test_for_loop_output_errors():
    with pytest.raises(TypeError, match="same structure"):
        for_loop(lambda t: (t,) if t < 2 else (t, t), torch.arange(4))
    with pytest.raises(TypeError, match=r"output\[1\]"):
        for_loop(lambda t: (t, None if t < 2 else t), torch.arange(4))
    with pytest.raises(ValueError, match="stack"):
        for_loop(lambda t: torch.ones(int(t) + 1), torch.arange(3))


def test_for_loop_equals_hand_loop_with_gradients():
    T = 30
    xs = torch.randn(T, 3, 4, dtype=F64, requires_grad=True)
    m = make_leaky()
    out = for_loop(m, xs)
    loss = (out ** 2).sum() + m.x.sum()
    g_loop = grads(loss, [m.w, xs])

    m2 = make_leaky()
    outs = []
    for t in range(T):
        outs.append(m2(xs[t]))
    ref = torch.stack(outs)
    loss2 = (ref ** 2).sum() + m2.x.sum()
    g_ref = grads(loss2, [m2.w, xs])
    assert torch.equal(out, ref)
    assert torch.equal(m.x, m2.x)
    for a, b in zip(g_loop, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------- scan
def test_scan_carry_and_outputs():
    carry, ys = scan(lambda c, x: (c + x, c * x), torch.tensor(0.0), torch.arange(1.0, 5.0))
    assert carry.item() == 10.0
    assert ys.tolist() == [0.0, 2.0, 9.0, 24.0]

    # pytree carry, no xs
    (a, b), ys = scan(lambda c, x: ((c[0] + 1, c[1] * 2), x), (0, torch.tensor(1.0)), length=3)
    assert a == 3 and b.item() == 8.0 and ys is None

    carry, ys = scan(lambda c, x: (c + x, c), torch.tensor(0), torch.arange(4), reverse=True)
    assert carry.item() == 6 and ys.tolist() == [6, 5, 3, 0]


def test_scan_errors():
    with pytest.raises(TypeError, match="pair"):
        scan(lambda c, x: c, 0.0, torch.ones(3))
    with pytest.raises(TypeError, match="structure"):
        scan(lambda c, x: ((c, c), x), torch.tensor(0.0), torch.ones(3))
    with pytest.raises(ValueError, match="length"):
        scan(lambda c, x: (c, x), 0.0)


# --------------------------------------------------------------------------- checkpointed drivers
T_CK = 23


def _run_leaky(driver, xs, **kw):
    m = make_leaky()
    out = driver(m, xs, **kw)
    final = m.x
    t = torch.arange(1, xs.shape[0] + 1, dtype=F64).view(-1, 1, 1)
    loss = (out * t).sum() + (m.x ** 2).sum()
    return m, out, final, loss


@pytest.mark.parametrize("segment_length", [1, 2, 5, 7, T_CK, 40, None])
def test_checkpointed_for_loop_matches_for_loop(segment_length):
    torch.manual_seed(1)
    xs = torch.randn(T_CK, 3, 4, dtype=F64, requires_grad=True)
    m_ref, out_ref, final_ref, loss_ref = _run_leaky(for_loop, xs)
    g_ref = grads(loss_ref, [m_ref.w, xs])

    m, out, final, loss = _run_leaky(checkpointed_for_loop, xs, segment_length=segment_length)
    assert torch.equal(out, out_ref)
    assert torch.equal(final, final_ref)
    loss.backward()
    torch.testing.assert_close(m.w.grad, g_ref[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(xs.grad, g_ref[1], rtol=1e-6, atol=1e-6)
    # the re-runs during backward left the module holding its real final State
    assert m.x is final
    # every step ran once forward and at most once more to recompute
    assert T_CK < m.calls <= 2 * T_CK


def test_checkpointed_two_modules_and_late_written_state():
    T = 20
    torch.manual_seed(2)
    xs = torch.randn(T, 2, 3, dtype=F64)

    def build():
        a, b = Leaky(3, a=0.8), LateWriter(3, start=9)
        a.init_state(2)
        b.init_state(2)
        return a, b

    def run(driver, **kw):
        a, b = build()

        def step(x):
            h = a(x)
            return {"h": h, "o": b(h), "none": None}

        out = driver(step, xs, **kw)
        loss = (out["o"] ** 2).sum() + out["h"].sum() + b.y.sum() * a.x.sum()
        return a, b, out, loss

    a_ref, b_ref, out_ref, loss_ref = run(for_loop)
    g_ref = grads(loss_ref, [a_ref.w, b_ref.v])
    for seg in (1, 4, 6, T):
        a, b, out, loss = run(checkpointed_for_loop, segment_length=seg)
        finals = (a.x, b.y)
        assert out["none"] is None
        assert torch.equal(out["o"], out_ref["o"])
        assert torch.equal(a.x, a_ref.x) and torch.equal(b.y, b_ref.y)
        loss.backward()
        torch.testing.assert_close(a.w.grad, g_ref[0], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(b.v.grad, g_ref[1], rtol=1e-6, atol=1e-6)
        assert a.x is finals[0] and b.y is finals[1]


def test_checkpointed_restores_rng_and_environ():
    T = 12
    xs = torch.randn(T, 2, 4, dtype=F64)

    def run(driver, **kw):
        m = make_leaky(batch=2)

        def step(t, x):
            with environ.context(t=t):
                noise = 0.1 * torch.randn(x.shape, dtype=F64)
                return m(x + noise + environ.get("t") * environ.get_dt_value())

        torch.manual_seed(3)
        with environ.context(dt=0.5):
            out = driver(step, torch.arange(T, dtype=F64), xs, **kw)
        return m, out

    m_ref, out_ref = run(for_loop)
    g_ref = grads(out_ref.sum(), [m_ref.w])[0]
    m, out = run(checkpointed_for_loop, segment_length=5)
    assert torch.equal(out, out_ref)
    out.sum().backward()  # outside the environ context that had dt: the re-run restores it
    torch.testing.assert_close(m.w.grad, g_ref, rtol=1e-6, atol=1e-6)


def test_checkpointed_scan_matches_scan():
    T = 17
    xs = torch.randn(T, 3, 4, dtype=F64)

    def run(driver, **kw):
        m = make_leaky()
        c0 = torch.zeros(3, 4, dtype=F64)

        def step(c, x):
            y = m(x)
            return c * 0.5 + y, y.sum()

        carry, ys = driver(step, c0, xs, **kw)
        return m, carry, ys, (carry ** 2).sum() + (ys ** 2).sum()

    m_ref, c_ref, ys_ref, loss_ref = run(scan)
    g_ref = grads(loss_ref, [m_ref.w])[0]
    m, c, ys, loss = run(checkpointed_scan, segment_length=4)
    assert torch.equal(c, c_ref) and torch.equal(ys, ys_ref) and torch.equal(m.x, m_ref.x)
    loss.backward()
    torch.testing.assert_close(m.w.grad, g_ref, rtol=1e-6, atol=1e-6)


def test_checkpointed_no_grad_retain_graph_and_errors():
    xs = torch.randn(10, 3, 4, dtype=F64)
    with torch.no_grad():
        _, out_ref, _, _ = _run_leaky(for_loop, xs)
        _, out, _, _ = _run_leaky(checkpointed_for_loop, xs, segment_length=3)
    assert torch.equal(out, out_ref)

    # two backward passes through the same checkpointed graph
    m_ref, _, _, loss_ref = _run_leaky(for_loop, xs)
    g_ref = grads(loss_ref, [m_ref.w])[0]
    m, _, final, loss = _run_leaky(checkpointed_for_loop, xs, segment_length=3)
    loss.backward(retain_graph=True)
    loss.backward()
    torch.testing.assert_close(m.w.grad, 2 * g_ref, rtol=1e-6, atol=1e-6)
    assert m.x is final

    with pytest.raises(ValueError, match="segment_length"):
        checkpointed_for_loop(lambda x: x, xs, segment_length=0)
    out = checkpointed_for_loop(lambda: torch.ones(2), length=3)
    assert out.shape == (3, 2)


def test_checkpointed_saves_far_fewer_tensors():
    T = 400
    xs = torch.randn(T, 8, 64, dtype=F64)

    def saved_bytes(driver, **kw):
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        m = make_leaky(batch=8, n=64)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = driver(m, xs, **kw)
        out.sum().backward()
        return total

    full = saved_bytes(for_loop)
    ck = saved_bytes(checkpointed_for_loop)
    assert full > 0
    assert ck < full / 4


class _LiveStorages(TorchDispatchMode):
    """Remembers (weakly) the storage of every tensor produced by an op inside the mode."""

    def __init__(self):
        super().__init__()
        self.refs = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                self.refs.append((StorageWeakRef(storage), storage.nbytes()))
        return out

    def live_bytes(self, exclude):
        skip = {StorageWeakRef(t.untyped_storage()).cdata for t in exclude}
        seen, total = set(), 0
        for ref, nbytes in self.refs:
            if not ref.expired() and ref.cdata not in seen and ref.cdata not in skip:
                seen.add(ref.cdata)
                total += nbytes
        return total


def test_checkpointed_live_memory_grows_like_sqrt_T():
    def held_bytes(driver, T):
        xs = torch.randn(T, 4, 32, dtype=F64)
        m = make_leaky(batch=4, n=32)
        mode = _LiveStorages()
        with mode:
            out = driver(m, xs)
        # what the graph keeps for backward, besides the inputs and the stacked outputs
        held = mode.live_bytes(exclude=[xs, out])
        out.sum().backward()
        return held

    state_bytes = 4 * 32 * 8
    ck_small = held_bytes(checkpointed_for_loop, 400)
    ck_large = held_bytes(checkpointed_for_loop, 1600)
    full_small, full_large = held_bytes(for_loop, 400), held_bytes(for_loop, 1600)
    assert full_small >= 400 * state_bytes and full_large >= 3.5 * full_small
    # one State per segment start: sqrt(T) of them
    assert ck_small <= 25 * state_bytes and ck_large <= 2.5 * ck_small
    assert ck_small < full_small / 10


# ------------------------------------------------------------------------------------- progress
def test_pbar_text_fallback_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    for_loop(lambda t: t, torch.arange(10), pbar=True)
    err = capsys.readouterr().err
    assert "for_loop" in err and "10/10" in err and "100%" in err

    scan(lambda c, x: (c, x), 0, torch.arange(7), pbar=ProgressBar(freq=3, desc="sim"))
    err = capsys.readouterr().err
    assert "sim: 3/7" in err and "sim: 7/7" in err

    checkpointed_for_loop(lambda t: t * 1.0, torch.arange(6.0), pbar=2)
    assert "6/6" in capsys.readouterr().err


def test_pbar_with_tqdm_and_errors(capsys):
    pytest.importorskip("tqdm")
    for_loop(lambda t: t, torch.arange(5), pbar=ProgressBar(desc="tq"))
    assert "tq" in capsys.readouterr().err
    for_loop(lambda t: t, torch.arange(5), pbar=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="pbar"):
        for_loop(lambda t: t, torch.arange(5), pbar="yes")
    with pytest.raises(ValueError, match="freq"):
        ProgressBar(freq=0)


# ------------------------------------------------------------------------------------------ jit
def test_jit_matches_eager_and_recompiles_on_dt():
    def inner(x):
        # reads dt and t from the environment inside the compiled graph
        return x * environ.get_dt_value() + environ.get("t")

    compiled = jit(inner, backend="aot_eager")
    x = torch.linspace(0.0, 1.0, 5, dtype=F64)
    for dt in (0.1, 0.25):
        with environ.context(dt=dt):
            for t in (torch.tensor(1.0, dtype=F64), torch.tensor(2.0, dtype=F64)):
                with environ.context(t=t):
                    torch.testing.assert_close(compiled(x), inner(x))
    assert callable(compiled.compiled) and compiled.fn is inner
    assert compiled.__name__ == "inner"


def test_jit_with_context_inside_fullgraph():
    def step(t, x):
        with environ.context(t=t):
            return x * environ.get_dt_value() + environ.get("t")

    compiled = jit(step, backend="aot_eager")
    ts = torch.arange(4, dtype=F64)
    x = torch.ones(3, dtype=F64)
    for dt in (0.1, 0.5):
        with environ.context(dt=dt):
            torch.testing.assert_close(for_loop(compiled, ts, x.expand(4, 3)),
                                       for_loop(step, ts, x.expand(4, 3)))


# Dynamo reads `.grad` of the non-leaf State tensors while guarding, which warns.
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_jit_module_in_loops_and_decorators():
    m = make_leaky(batch=2)
    jm = compile(m, backend="aot_eager")
    assert [name for name, _ in jm.named_parameters()] == ["w"]
    xs = torch.randn(8, 2, 4, dtype=F64)
    out = for_loop(jm, xs)
    out.sum().backward()
    g, final = m.w.grad.clone(), m.x.detach().clone()

    m2 = make_leaky(batch=2)
    ref = for_loop(m2, xs)
    ref.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(final, m2.x.detach())
    torch.testing.assert_close(g, m2.w.grad)

    @jit
    def plain(x):
        """Doc."""
        return x + 1

    assert plain.__doc__ == "Doc." and plain.fn(1) == 2  # not compiled until called

    class Holder:
        @jit(backend="eager")
        def double(self, x):
            return 2 * x

    assert Holder().double(torch.ones(2)).tolist() == [2.0, 2.0]


def test_jit_fullgraph_rejects_graph_breaks():
    def breaks(x):
        torch._dynamo.graph_break()
        return x + 1

    with pytest.raises(torch._dynamo.exc.Unsupported):
        jit(breaks, backend="eager")(torch.ones(2))
    assert jit(breaks, backend="eager", fullgraph=False)(torch.ones(2)).tolist() == [2.0, 2.0]


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_jit_compiles_a_chunk_of_unrolled_steps():
    # for_loop itself traces without graph breaks: K steps become one graph
    m = make_leaky(batch=2)
    chunk = jit(lambda xs: for_loop(m, xs), backend="aot_eager")
    xs = torch.randn(5, 2, 4, dtype=F64)
    first, second = chunk(xs), chunk(xs)
    m_ref = make_leaky(batch=2)
    torch.testing.assert_close(first, for_loop(m_ref, xs))
    torch.testing.assert_close(second, for_loop(m_ref, xs))
    torch.testing.assert_close(m.x, m_ref.x)
