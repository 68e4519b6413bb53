"""Event streams -> time-major spike tensors (against Tonic's ToFrame), the collate_fn, and
the conv spiking blocks an N-MNIST-style model is built from (synthetic events; no download)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import torchbrain as tb
from torchbrain import u
from torchbrain.data import EventCollate, events_to_spikes
from torchbrain.training.conv import SpikingConv2d, SpikingLinear

# Tonic's event dtype (tonic.datasets.NMNIST.dtype), built here so the tests need no download
EVENT_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
SENSOR = (34, 34, 2)  # N-MNIST (W, H, P)


def _events(n=3000, duration_us=50_000, seed=0, sensor=SENSOR, xmin=0, xmax=None):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    ev["x"] = rng.integers(xmin, sensor[0] if xmax is None else xmax, n)
    ev["y"] = rng.integers(0, sensor[1], n)
    ev["t"] = np.sort(rng.integers(0, duration_us, n))
    ev["p"] = rng.integers(0, sensor[2], n)
    return ev


def test_matches_tonic_to_frame():
    tonic = pytest.importorskip("tonic")
    ev = _events()
    ours = events_to_spikes(ev, SENSOR, dt=1 * u.ms, duration=50 * u.ms)
    ref = tonic.transforms.ToFrame(SENSOR, time_window=1000, start_time=0, end_time=50_000)(ev)
    assert ours.shape == (50, 2, 34, 34) and ours.dtype == torch.float32
    np.testing.assert_array_equal(ours.numpy(), ref)
    # a 1-D sensor (no y field): (T, P, W)
    ev1 = np.zeros(500, dtype=np.dtype([("x", int), ("t", int), ("p", int)]))
    ev1["x"], ev1["t"] = np.arange(500) % 64, np.arange(500) * 37
    ours = events_to_spikes(ev1, (64, 1, 1), dt=2 * u.ms, duration=18.5 * u.ms)
    ref = tonic.transforms.ToFrame((64, 1, 1), time_window=2000, start_time=0,
                                   end_time=20_000)(ev1)
    np.testing.assert_array_equal(ours.numpy(), ref[: ours.shape[0]])


def test_binning_rules():
    ev = np.zeros(4, dtype=EVENT_DTYPE)
    ev["t"] = [0, 999, 1000, 5000]
    ev["x"], ev["y"], ev["p"] = [1, 1, 2, 3], [0, 0, 0, 0], [0, 0, 1, 1]
    s = events_to_spikes(ev, (4, 1, 2), dt=1 * u.ms)
    assert s.shape == (6, 2, 1, 4)  # up to the last event's step
    assert s[0, 0, 0, 1] == 2 and s[1, 1, 0, 2] == 1 and s[5, 1, 0, 3] == 1 and s.sum() == 4
    assert events_to_spikes(ev, (4, 1, 2), dt=1 * u.ms, binary=True)[0, 0, 0, 1] == 1
    late = events_to_spikes(ev, (4, 1, 2), dt=1 * u.ms, t_start=1 * u.ms, duration=2 * u.ms)
    assert late.shape[0] == 2 and late.sum() == 1  # before t_start and after duration: dropped
    assert events_to_spikes(ev, (4, 1, 2), dt=0.5 * u.second).shape[0] == 1


def test_errors_are_clear():
    ev = _events(n=10)
    with pytest.raises(TypeError, match="'dt' must be a time quantity"):
        events_to_spikes(ev, SENSOR, dt=1.0)
    with pytest.raises(ValueError, match="field 'x'.*outside the sensor"):
        events_to_spikes(ev, (4, 34, 2), dt=1 * u.ms)
    with pytest.raises(ValueError, match="missing \\['p'\\]"):
        events_to_spikes(np.zeros(3, dtype=[("x", int), ("t", int)]), SENSOR, dt=1 * u.ms)
    with pytest.raises(ValueError, match="sensor_size"):
        events_to_spikes(ev, (34, 34), dt=1 * u.ms)


def test_collate_in_a_dataloader():
    data = [(_events(n=200 + 50 * i, duration_us=10_000 * (i + 1), seed=i), i % 3)
            for i in range(5)]
    collate = EventCollate(SENSOR, dt=1 * u.ms)
    spikes, labels = next(iter(DataLoader(data, batch_size=5, collate_fn=collate)))
    assert spikes.shape[1:] == (5, 2, 34, 34) and spikes.shape[0] == 50
    assert labels.tolist() == [0, 1, 2, 0, 1]
    for b, (ev, _) in enumerate(data):
        one = events_to_spikes(ev, SENSOR, dt=1 * u.ms)
        assert torch.equal(spikes[: one.shape[0], b], one)
        assert spikes[one.shape[0]:, b].sum() == 0  # padded with silence
    fixed, _ = collate.__class__(SENSOR, dt=1 * u.ms, duration=20 * u.ms)(data)
    assert fixed.shape[0] == 20
    assert "EventCollate" in repr(collate) and pickle.loads(pickle.dumps(collate)).dt == collate.dt


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_gpu():
    ev = _events()
    gpu = events_to_spikes(ev, SENSOR, dt=1 * u.ms, device="cuda")
    assert gpu.is_cuda
    assert torch.equal(gpu.cpu(), events_to_spikes(ev, SENSOR, dt=1 * u.ms))


def _nmnist_net():
    return nn.Sequential(
        SpikingConv2d(2, 4, 5, input_size=(34, 34), stride=2, pool=2),   # -> 4 x 7 x 7
        nn.Flatten(start_dim=2),
        SpikingLinear(4 * 7 * 7, 2),
    )


def test_conv_blocks_train_an_nmnist_style_model():
    torch.manual_seed(0)
    # two synthetic classes: events on the left or on the right half of the sensor
    data = [(_events(n=1500, duration_us=20_000, seed=i, xmin=17 * (i % 2), xmax=17 * (i % 2)
                     + 17), i % 2) for i in range(6)]
    spikes, labels = EventCollate(SENSOR, dt=1 * u.ms, duration=20 * u.ms)(data)
    net = _nmnist_net()
    with torch.no_grad():  # excitatory start: both layers spike, so the surrogate has gradient
        net[0].layer.weight.abs_().mul_(8.0)
        net[2].layer.weight.abs_().mul_(10.0)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    with tb.environ.context(dt=1 * u.ms):
        out = net(spikes)
        assert out.shape == (20, 6, 2) and out.sum() > 0
        for _ in range(4):
            loss = nn.functional.cross_entropy(net(spikes).sum(0), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_blocks_are_well_behaved_modules():
    net = _nmnist_net()
    x = (torch.rand(5, 2, 2, 34, 34) < 0.2).float()
    with tb.environ.context(dt=1 * u.ms):
        y = net(x)
        for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
            assert torch.equal(clone(x), y)
        assert torch.equal(net.to(torch.float64)(x.double()).float(), y)
    block = SpikingLinear(3, 2, dt=0.5 * u.ms)
    assert "dt=0.5 ms" in repr(block) and block(torch.ones(4, 1, 3)).shape == (4, 1, 2)
    drive = 3 * torch.rand(3, 2, 3)
    eager = block(drive)
    tb.init_all_states(block, batch_size=2)
    compiled = tb.compile(lambda inp: block(inp, reset=False), backend="aot_eager")
    assert torch.equal(compiled(drive), eager)
    with pytest.raises(ValueError, match="time-major"):
        block(torch.ones(4, 3))
    with pytest.raises(ValueError, match="population has shape"):
        SpikingLinear(3, 2, neuron=tb.LIF(5))


def test_nmnist_example_builds_and_needs_no_download(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "train_nmnist.py"
    spec = importlib.util.spec_from_file_location("train_nmnist", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--data", str(tmp_path)]) == 0
    assert "N-MNIST is not under" in capsys.readouterr().out
    spikes, _ = EventCollate(SENSOR, dt=1 * u.ms, duration=3 * u.ms)([(_events(n=100), 0)])
    with tb.environ.context(dt=1 * u.ms):
        assert example.build_model()(spikes).shape == (3, 1, 10)
