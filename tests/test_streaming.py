"""StreamingMonitor: the same records as Monitor, written in chunks; memory bounded by a chunk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.drivers.streaming import StreamingMonitor, load_stream


def _run(monitors, T=257, n=6, seed=0):
    torch.manual_seed(seed)
    neuron = tb.LIF(n, tau=5 * u.ms, R=1 * u.gigaohm, V_th=1 * u.mV, spk_reset="hard")
    tb.init_all_states(neuron)
    mons = [make(neuron) for make in monitors]
    drive = 2.0 + 2.0 * torch.randn(T, n)
    with tb.environ.context(dt=0.1 * u.ms):
        for t in range(T):
            with tb.environ.context(t=t * 0.1 * u.ms):
                neuron(drive[t])
                for m in mons:
                    m.record()
    return mons


def test_stream_equals_monitor(tmp_path):
    plain, stream = _run([
        lambda n: tb.Monitor({"V": n, "spike": n.get_spike}, stride=3),
        lambda n: StreamingMonitor({"V": n, "spike": n.get_spike}, path=tmp_path / "rec",
                                   stride=3, chunk=10, events=["spike"]),
    ])
    assert len(plain) == 86 and stream.n_records == 80  # 8 chunks flushed, 6 records pending
    stream.close()
    rec = load_stream(tmp_path / "rec")
    assert rec.n_records == 86
    np.testing.assert_array_equal(rec.values["V"], plain.values["V"].numpy())
    np.testing.assert_array_equal(rec.times, plain.times.numpy())
    np.testing.assert_array_equal(rec.dense("spike"), plain.values["spike"].numpy())
    assert plain.values["spike"].sum() > 5
    # events cost their spikes: 16 bytes each, not one entry per neuron and record
    assert (tmp_path / "rec" / rec.meta["events"]["spike"]["file"]).stat().st_size == (
        16 * int(plain.values["spike"].sum()))
    with pytest.raises(RuntimeError, match="after close"):
        stream.record()


def test_memory_is_one_chunk(tmp_path):
    (stream,) = _run([lambda n: StreamingMonitor(n, ["V"], path=tmp_path / "r", chunk=16)],
                     T=600)
    # the in-memory part is one preallocated chunk whatever the length of the run
    assert stream._buffer.nbytes == 16 * 6 * 4
    stream.close()
    assert load_stream(tmp_path / "r").values["V"].shape == (600, 6)


def test_new_recording_replaces_the_old_one_and_errors(tmp_path):
    _run([lambda n: StreamingMonitor(n, ["V"], path=tmp_path / "r", chunk=4)])[0].close()
    with StreamingMonitor({"V": lambda: torch.zeros(2)}, path=tmp_path / "r") as mon:
        mon.record()
    assert load_stream(tmp_path / "r").values["V"].shape == (1, 2)
    with pytest.raises(KeyError, match="'events' names"):
        StreamingMonitor({"V": lambda: torch.zeros(2)}, path=tmp_path / "x", events=["spike"])
    with pytest.raises(FileNotFoundError, match="no meta.json"):
        load_stream(tmp_path / "nothing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "meta.json").write_text('{"format": "something else"}')
    with pytest.raises(FileExistsError, match="not a torchbrain stream"):
        StreamingMonitor({"V": lambda: torch.zeros(2)}, path=tmp_path / "other")
