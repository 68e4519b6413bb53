"""Record long runs to disk in chunks, so memory stays flat however long the run.

:class:`StreamingMonitor` records like :class:`torchbrain.Monitor` (same targets, names,
``stride``, ``index``, ``dtype``) but keeps only one chunk of records in memory: every ``chunk``
records it appends them to files and starts the next chunk. Spike-like records can be stored as
events (the indices of the non-zero entries), so a sparse raster costs its spikes, not
``steps x neurons``. :func:`load_stream` reads a recording back (memory-mapped)::

    with StreamingMonitor(neuron, ["V"], "run/", events=["spike"], stride=10,
                          sources={"spike": neuron.get_spike}) as mon:
        for t in tb.time_range(100 * u.second):
            with tb.environ.context(t=t):
                neuron(x)
                mon.record()
    rec = load_stream("run/")
    rec.values["V"]          # (n_records, *shape) memory-mapped array, mV
    rec.dense("spike")       # events back to a (n_records, *shape) 0/1 array

On-disk format (version 1)
--------------------------
A directory holding

* ``meta.json``: ``{"format": "torchbrain-stream", "version": 1, "stride": s, "records": n,
  "arrays": {name: {"file", "dtype", "shape"}}, "events": {name: {"file", "shape"}},
  "times_file": "times.bin"}``; ``shape`` is the shape of one record, ``dtype`` a NumPy dtype
  string; ``records`` is updated at every flush;
* per dense record, a raw little-endian C-order file of ``records x shape`` values (read it with
  ``np.memmap(file, dtype, shape=(records, *shape))``);
* per event record, ``int64`` pairs ``(record index, flat index into shape)`` of its non-zero
  entries;
* ``times.bin``: the ``float64`` time (ms) of each record, NaN when it was taken without a time.

Values are in the recorded States' canonical units (mV, pA, nS, ...), as in :class:`Monitor`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .monitor import Monitor, _check_stride

__all__ = ["StreamingMonitor", "StreamData", "load_stream"]

_FORMAT = "torchbrain-stream"


class StreamingMonitor:
    """A :class:`~torchbrain.Monitor` that writes its records to ``path`` in chunks.

    Parameters
    ----------
    target, names, dtype, index
        What to record, as :class:`~torchbrain.Monitor` (a module and attribute names, or a
        dict of sources).
    path : str or PathLike
        Directory of the recording (created; an existing recording there is replaced).
    stride : int, default 1
        Keep one :meth:`record` call in ``stride``.
    chunk : int, default 1000
        Records held in memory before they are appended to the files.
    events : list of str, optional
        Names stored as events (indices of non-zero entries; for spikes).

    Notes
    -----
    Memory: one chunk, ``chunk x`` (record size) per name, on the CPU. Call :meth:`close` (or
    use ``with``) at the end: it writes the last, partial chunk.
    """

    def __init__(self, target: Any, names: str | Sequence[str] | None = None,
                 path: str | os.PathLike = "stream", *, stride: int = 1, chunk: int = 1000,
                 dtype: torch.dtype | None = None, index: Any = None,
                 events: Sequence[str] | None = None):
        who = "StreamingMonitor"
        self.stride = _check_stride(stride, who)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"{who}: 'chunk' must be a positive int, got {chunk!r}")
        self.chunk = chunk
        # the in-memory chunk: a preallocated Monitor on the CPU, stride handled here
        self._buffer = Monitor(target, names, 1, dtype, index=index, capacity=chunk,
                               device="cpu")
        self.events = list(events or [])
        unknown = set(self.events) - set(self._buffer.names)
        if unknown:
            raise KeyError(f"{who}: 'events' names {sorted(unknown)} are not recorded "
                           f"(recorded: {self._buffer.names})")
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._meta: dict[str, Any] = {"format": _FORMAT, "version": 1, "stride": self.stride,
                                      "records": 0, "arrays": {}, "events": {},
                                      "times_file": "times.bin"}
        self._remove_previous()
        self._files: dict[str, Any] = {}
        self._calls = 0
        self.n_records = 0
        self.closed = False
        self._write_meta()

    @property
    def names(self) -> list[str]:
        return self._buffer.names

    def record(self, t: Any = None) -> bool:
        """Count one step and keep every ``stride``-th; returns whether a record was taken."""
        if self.closed:
            raise RuntimeError("StreamingMonitor: record() after close()")
        call = self._calls
        self._calls += 1
        if call % self.stride:
            return False
        self._buffer.record(t)
        if len(self._buffer) == self.chunk:
            self.flush()
        return True

    def _file(self, key: str, name: str):
        handle = self._files.get(key)
        if handle is None:
            handle = self._files[key] = open(self.path / name, "ab")  # noqa: SIM115
        return handle

    def flush(self) -> None:
        """Append the records held in memory to the files."""
        n = len(self._buffer)
        if n == 0:
            return
        values = self._buffer.values
        for i, name in enumerate(self.names):
            block = values[name].numpy()
            shape = list(block.shape[1:])
            if name in self.events:
                info = self._meta["events"].setdefault(
                    name, {"file": f"events{i}.bin", "shape": shape})
                flat = block.reshape(n, -1)
                rec, idx = np.nonzero(flat)
                pairs = np.stack([rec + self.n_records, idx], axis=1).astype("<i8")
                self._file(name, info["file"]).write(pairs.tobytes())
            else:
                info = self._meta["arrays"].setdefault(
                    name, {"file": f"array{i}.bin", "dtype": block.dtype.newbyteorder("<").str,
                           "shape": shape})
                self._file(name, info["file"]).write(
                    np.ascontiguousarray(block, dtype=info["dtype"]).tobytes())
            if info["shape"] != shape:
                raise ValueError(f"StreamingMonitor: '{name}' changed shape from "
                                 f"{info['shape']} to {shape}")
        times = self._buffer.times
        times = (np.full(n, np.nan) if times is None else times.numpy()).astype("<f8")
        self._file("__times__", "times.bin").write(times.tobytes())
        for handle in self._files.values():
            handle.flush()
        self.n_records += n
        self._meta["records"] = self.n_records
        self._write_meta()
        self._buffer.reset()

    def _remove_previous(self) -> None:
        """Delete the files of an earlier recording in ``path`` (only those its meta lists)."""
        meta_file = self.path / "meta.json"
        if not meta_file.exists():
            return
        try:
            old = json.loads(meta_file.read_text())
        except ValueError:
            return
        if old.get("format") != _FORMAT:
            raise FileExistsError(f"StreamingMonitor: {str(self.path)!r} holds a meta.json that "
                                  "is not a torchbrain stream; choose another path")
        listed = [i["file"] for i in (*old.get("arrays", {}).values(),
                                      *old.get("events", {}).values())]
        for name in [*listed, old.get("times_file", "times.bin")]:
            (self.path / name).unlink(missing_ok=True)

    def _write_meta(self) -> None:
        tmp = self.path / "meta.json.tmp"
        tmp.write_text(json.dumps(self._meta, indent=1))
        tmp.replace(self.path / "meta.json")  # a reader never sees a half-written header

    def close(self) -> None:
        """Write the last chunk and close the files."""
        if self.closed:
            return
        self.flush()
        for handle in self._files.values():
            handle.close()
        self._files = {}
        self.closed = True

    def __enter__(self) -> StreamingMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"StreamingMonitor(names={self.names}, path='{self.path}', stride={self.stride}, "
                f"chunk={self.chunk}, records={self.n_records + len(self._buffer)})")


@dataclass
class StreamData:
    """A recording read by :func:`load_stream`."""

    meta: dict[str, Any]
    values: dict[str, np.ndarray]
    events: dict[str, tuple[np.ndarray, np.ndarray]]
    times: np.ndarray

    @property
    def n_records(self) -> int:
        return int(self.meta["records"])

    def dense(self, name: str, dtype=np.uint8) -> np.ndarray:
        """The event record ``name`` as a dense ``(n_records, *shape)`` 0/1 array."""
        if name not in self.events:
            raise KeyError(f"load_stream: '{name}' is not an event record "
                           f"(events: {list(self.events)})")
        shape = self.meta["events"][name]["shape"]
        out = np.zeros((self.n_records, math.prod(shape)), dtype=dtype)
        rec, idx = self.events[name]
        out[rec, idx] = 1
        return out.reshape(self.n_records, *shape)


def load_stream(path: str | os.PathLike) -> StreamData:
    """Read a :class:`StreamingMonitor` recording (dense records memory-mapped)."""
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.exists():
        raise FileNotFoundError(f"load_stream: no meta.json in {str(path)!r}")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != _FORMAT or meta.get("version") != 1:
        raise ValueError(f"load_stream: {str(path)!r} is not a version-1 torchbrain stream "
                         f"(format={meta.get('format')!r}, version={meta.get('version')!r})")
    n = int(meta["records"])
    values = {}
    for name, info in meta["arrays"].items():
        shape = (n, *info["shape"])
        values[name] = (np.memmap(path / info["file"], dtype=info["dtype"], mode="r",
                                  shape=shape) if n else np.zeros(shape, info["dtype"]))
    events = {}
    for name, info in meta["events"].items():
        pairs = np.fromfile(path / info["file"], dtype="<i8").reshape(-1, 2)
        events[name] = (pairs[:, 0], pairs[:, 1])
    times = np.fromfile(path / meta["times_file"], dtype="<f8")[:n] if n else np.zeros(0)
    return StreamData(meta, values, events, times)
