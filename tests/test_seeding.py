"""``seed=`` on the E/I models seeds every draw (connectivity, initial voltages and
conductances) through generators of their own: builds agree whatever torch's global generator
holds, in this process and in another one."""

import copy
import pickle
import subprocess
import sys

import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.init import Normal, Seeded, Uniform
from torchbrain.models import COBAHHNet, COBANet, CUBANet

_DRAWN = ("N.V", "E.comm.indices", "I.comm.indices")


def _draws(net) -> dict[str, torch.Tensor]:
    """Everything a build and an init_all_states drew at random."""
    out = {"N.V": net.N.V, "E.comm.indices": net.E.comm.indices,
           "I.comm.indices": net.I.comm.indices}
    if hasattr(net.E.syn, "g") and isinstance(net, COBAHHNet):
        out["E.syn.g"], out["I.syn.g"] = net.E.syn.g, net.I.syn.g
    return {k: v.detach().clone() for k, v in out.items()}


def _build(model, global_seed: int, seed=5):
    torch.manual_seed(global_seed)
    net = model(scale=0.05, seed=seed)
    torch.rand(1000)  # the global generator moves on between build and init
    tb.init_all_states(net)
    return _draws(net)


@pytest.mark.parametrize("model", [COBANet, CUBANet, COBAHHNet])
def test_same_seed_same_draws_whatever_the_global_generator(model):
    first, second = _build(model, 0), _build(model, 12345)
    assert first.keys() >= set(_DRAWN)
    for name in first:
        assert torch.equal(first[name], second[name]), name
    # a different seed changes every draw
    other = _build(model, 0, seed=6)
    for name in first:
        assert not torch.equal(first[name], other[name]), name
    # the initial voltages are a real sample, not a constant
    assert first["N.V"].std() > 1.0


def test_reset_restarts_from_the_same_initial_state():
    net = COBANet(scale=0.05, seed=3)
    tb.init_all_states(net)
    v0 = net.N.V.clone()
    with tb.environ.context(dt=0.1 * u.ms):
        tb.NetworkRunner(net, compile=False).run(20)
    assert not torch.equal(net.N.V, v0)
    tb.reset_all_states(net)
    assert torch.equal(net.N.V, v0)


def test_seed_none_draws_from_the_global_generator():
    torch.manual_seed(0)
    a = COBANet(scale=0.05, seed=None)
    tb.init_all_states(a)
    torch.manual_seed(0)
    b = COBANet(scale=0.05, seed=None)
    tb.init_all_states(b)
    assert torch.equal(a.N.V, b.N.V)
    torch.manual_seed(1)
    c = COBANet(scale=0.05, seed=None)
    tb.init_all_states(c)
    assert not torch.equal(a.N.V, c.N.V)


_DIGEST = """
import hashlib, torch
import torchbrain as tb

def digest(global_seed):
    torch.manual_seed(global_seed)
    net = tb.models.COBANet(scale=0.05, seed=7)
    tb.init_all_states(net)
    h = hashlib.sha256()
    for t in (net.N.V, net.E.comm.indices, net.I.comm.indices):
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()
"""


def test_another_process_builds_the_same_network():
    namespace = {}
    exec(_DIGEST, namespace)
    here = namespace["digest"](0)
    there = subprocess.run([sys.executable, "-c", _DIGEST + "print(digest(99))"],
                           capture_output=True, text=True, timeout=300, check=True).stdout.strip()
    assert here == there and len(here) == 64


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "abc", True])
def test_bad_seed_names_the_model_and_the_parameter(seed):
    with pytest.raises(ValueError, match="COBANet: parameter 'seed' must be None or an int"):
        COBANet(scale=0.05, seed=seed)


def test_seeded_initializer_repeats_its_draw_and_survives_copies():
    init = Seeded(Normal(-55.0 * u.mV, 5.0 * u.mV), seed=2)
    a = init(1000)
    torch.manual_seed(123)
    b = init(1000)
    assert str(a.units) == "millivolt" and a.magnitude.dtype == torch.float32
    assert torch.equal(a.magnitude, b.magnitude)
    # it is the inner initializer fed from a generator seeded with `seed`
    expected = Normal(-55.0 * u.mV, 5.0 * u.mV)(1000, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.magnitude, expected.magnitude)
    # a distributional check, independent of the implementation: N(-55, 5) moments
    assert abs(b.magnitude.mean().item() + 55.0) < 0.5
    assert abs(b.magnitude.std().item() - 5.0) < 0.4
    for clone in (copy.deepcopy(init), pickle.loads(pickle.dumps(init))):
        assert clone == init and torch.equal(clone(1000).magnitude, a.magnitude)
    assert repr(init) == "Seeded(initializer=Normal(mean=-55.0 mV, std=5.0 mV), seed=2)"
    assert Seeded(Uniform(0.0, 1.0), seed=1)(3).dtype == torch.float32  # unitless stays a tensor


def test_seeded_initializer_bad_arguments():
    with pytest.raises(TypeError, match="Seeded: parameter 'initializer' expects an Initializer"):
        Seeded(5.0, seed=1)
    with pytest.raises(ValueError, match="Seeded: parameter 'seed' expects an int"):
        Seeded(Normal(0.0, 1.0), seed=-3)
    with pytest.raises(TypeError, match="Seeded: draws from its own generator"):
        Seeded(Normal(0.0, 1.0), seed=1)(3, generator=torch.Generator())
