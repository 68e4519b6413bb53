"""The generic suite: every public module in the registry gets the same checks."""

import copy
import io
import pickle

import pytest
import torch

import torchbrain as tb
from torchbrain import u

from .module_registry import all_cases

CASES = all_cases()

IDS = [c.name for c in CASES]
DT = 0.1


def drive_steps(case, module, n, batch_size=None, start=0, seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    shape = case.size if batch_size is None else (batch_size, *case.size)
    outs = []
    dtype = next(iter(module.buffers())).dtype
    with tb.environ.context(dt=DT * u.ms):
        for i in range(start, start + n):
            x = case.input_scale * torch.rand(shape, generator=gen, dtype=dtype) * 1.5
            x.requires_grad_(requires_grad)
            with tb.environ.context(t=i * DT):
                outs.append(case.step(module, x))
    return torch.stack(outs)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_repr_shows_units_and_states(case):
    module = case.make()
    tb.init_all_states(module)
    text = repr(module)
    assert type(module).__name__ in text
    assert " ms" in text or " mV" in text
    assert "HiddenState(" in text


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_unit_is_rejected(case):
    name = next(iter(case.wrong_unit))
    with pytest.raises(tb.UnitError) as err:
        case.make(**case.wrong_unit)
    assert case.cls.__name__ in str(err.value) and f"'{name}'" in str(err.value)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_init_and_reset_with_and_without_batch(case):
    module = case.make()
    tb.init_all_states(module)
    for value in tb.states(module, tb.HiddenState).values():
        assert tuple(value.shape) == case.size
    out = drive_steps(case, module, 3)
    assert tuple(out.shape) == (3, *case.size)
    tb.reset_all_states(module, batch_size=4)
    for value in tb.states(module, tb.HiddenState).values():
        assert tuple(value.shape) == (4, *case.size)
    out = drive_steps(case, module, 3, batch_size=4)
    assert tuple(out.shape) == (3, 4, *case.size)
    with pytest.raises(ValueError, match="batch size"):
        drive_steps(case, module, 1, batch_size=5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_to_dtype_and_device(case):
    module = case.make().to(torch.float64)
    tb.init_all_states(module)
    for value in list(module.buffers()):
        if value.is_floating_point():
            assert value.dtype == torch.float64
    out = drive_steps(case, module, 3)
    assert out.dtype == torch.float64
    module.to("cpu")  # device round trip on what CI has
    made = case.make(dtype=torch.float64, device="cpu")
    tb.init_all_states(made)
    assert all(v.dtype == torch.float64 for v in tb.states(made, tb.HiddenState).values())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_deepcopy_and_pickle_after_autograd_forward(case):
    module = case.make()
    tb.init_all_states(module, batch_size=2)
    drive_steps(case, module, 4, batch_size=2, requires_grad=True)
    if case.graph_states:
        assert any(v.requires_grad for v in tb.states(module, tb.HiddenState).values())
    clone = copy.deepcopy(module)
    buf = io.BytesIO()
    torch.save(module, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    again = pickle.loads(pickle.dumps(module))
    for other in (clone, loaded, again):
        a = drive_steps(case, other, 5, batch_size=2, start=4, seed=1)
        b = drive_steps(case, copy.deepcopy(module), 5, batch_size=2, start=4, seed=1)
        torch.testing.assert_close(a, b)
        for (ka, va), (kb, vb) in zip(tb.states(other).items(),
                                      tb.states(copy.deepcopy(module)).items(), strict=True):
            assert ka == kb and va.shape == vb.shape


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_state_save_and_restore_is_exact(case):
    torch.manual_seed(0)
    module = case.make()
    tb.init_all_states(module, batch_size=3)
    drive_steps(case, module, 20, batch_size=3)
    saved = tb.state_dict(module)
    first = drive_steps(case, module, 30, batch_size=3, start=20, seed=5)
    tb.reset_all_states(module, batch_size=7)  # scramble, including the batch size
    tb.load_state_dict(module, saved)
    second = drive_steps(case, module, 30, batch_size=3, start=20, seed=5)
    assert torch.equal(first, second)
    fresh = case.make()
    tb.load_state_dict(fresh, saved)
    third = drive_steps(case, fresh, 30, batch_size=3, start=20, seed=5)
    assert torch.equal(first, third)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compile_fullgraph_matches_eager(case):
    torch._dynamo.reset()
    eager = case.make()
    tb.init_all_states(eager, batch_size=2)
    compiled_module = copy.deepcopy(eager)
    x = case.input_scale * torch.rand(6, 2, *case.size, generator=torch.Generator().manual_seed(3))

    def step_fn(module, xt, t):
        with tb.environ.context(t=t):
            return case.step(module, xt)

    compiled = tb.compile(step_fn, fullgraph=True)
    with tb.environ.context(dt=DT):
        for i in range(6):
            t = torch.tensor(i * DT)
            expected = step_fn(eager, x[i], t)
            got = compiled(compiled_module, x[i], t)
            torch.testing.assert_close(got, expected)
    for (k, a), b in zip(tb.states(eager).items(), tb.states(compiled_module).values(),
                         strict=True):
        torch.testing.assert_close(a, b, msg=k)
