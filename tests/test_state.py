import copy

import pytest
import torch
from torch import nn

import torchbrain as tb
from torchbrain.module import Module


class Toy(Module):
    def __init__(self):
        super().__init__()
        self.w = tb.ParamState(torch.ones(3))
        self.trace = tb.LongTermState(torch.zeros(3))
        self.h = tb.HiddenState(None)
        self.spike_time = tb.ShortTermState(None)

    def init_state(self, batch_size=None):
        shape = (3,) if batch_size is None else (batch_size, 3)
        self.h = tb.HiddenState(torch.zeros(shape))
        self.spike_time = tb.ShortTermState(torch.full(shape, -1.0))

    def forward(self, x):
        self.h = 0.5 * self.h + self.w * x
        return self.h


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = Toy()
        self.b = Toy()
        self.lin = nn.Linear(3, 3)


def test_kinds_are_filtered_with_subclasses():
    net = Net()
    tb.init_all_states(net, batch_size=2)
    hidden = tb.states(net, tb.HiddenState)
    assert list(hidden) == ["a.h", "b.h"]
    assert list(tb.states(net, tb.ShortTermState)) == ["a.h", "a.spike_time", "b.h",
                                                       "b.spike_time"]
    assert list(tb.states(net, tb.LongTermState)) == ["a.w", "a.trace", "b.w", "b.trace",
                                                      "lin.weight", "lin.bias"]
    params = tb.states(net, tb.ParamState)
    assert set(params) == {"a.w", "b.w", "lin.weight", "lin.bias"}
    assert isinstance(net.a.w, nn.Parameter)
    assert hidden["a.h"].shape == (2, 3)
    with pytest.raises(TypeError, match="StateKind"):
        tb.states(net, int)


def test_short_term_states_are_not_in_module_state_dict():
    net = Net()
    tb.init_all_states(net)
    keys = set(net.state_dict())
    assert "a.trace" in keys and "a.w" in keys
    assert "a.h" not in keys and "a.spike_time" not in keys
    full = tb.state_dict(net)
    assert "a.h" in full and "b.spike_time" in full


def test_save_restore_round_trip_exact():
    net = Net()
    tb.init_all_states(net, batch_size=2)
    x = torch.randn(2, 3)
    for _ in range(3):
        net.a(x)
    saved = tb.state_dict(net)
    expected = [net.a(x).clone() for _ in range(4)]
    tb.reset_all_states(net)
    tb.load_state_dict(net, saved)
    got = [net.a(x).clone() for _ in range(4)]
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g)
    del saved["a.h"]
    with pytest.raises(RuntimeError, match="a.h"):
        tb.load_state_dict(net, saved)


def test_rebinding_keeps_kind_and_redeclaration_with_other_kind_fails():
    toy = Toy()
    tb.init_all_states(toy)
    toy.h = torch.ones(3)
    assert toy._state_kinds["h"] is tb.HiddenState
    assert "h" in dict(toy.named_buffers())
    with pytest.raises(TypeError, match="HiddenState"):
        toy.h = tb.LongTermState(torch.ones(3))


def test_detach_states_and_reset_free_graph():
    toy = Toy()
    tb.init_all_states(toy)
    x = torch.ones(3, requires_grad=True)
    toy(x).sum().backward()
    assert toy.h.grad_fn is not None
    tb.detach_states(toy)
    assert toy.h.grad_fn is None and not toy.h.requires_grad
    toy(x).sum().backward()  # no "backward through the graph a second time"


def test_deepcopy_after_forward_detaches_copy_only():
    toy = Toy()
    tb.init_all_states(toy)
    toy(torch.ones(3, requires_grad=True))
    clone = copy.deepcopy(toy)
    assert toy.h.grad_fn is not None
    assert clone.h.grad_fn is None
    assert torch.equal(clone.h, toy.h.detach())


def test_batch_size_validation():
    with pytest.raises(ValueError, match="batch_size"):
        tb.init_all_states(Toy(), batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        tb.reset_all_states(Toy(), batch_size=2.5)


def test_state_kind_wraps_tensors_only():
    with pytest.raises(TypeError, match="HiddenState"):
        tb.HiddenState([1, 2])
    assert repr(tb.HiddenState(torch.zeros(2, 3))) == "HiddenState(float32[2, 3])"
