"""Monitors: record chosen States during a run without keeping every step.

:class:`Monitor` stores the values of chosen States (or any tensor a callable returns) every
``stride`` steps, optionally for a subset of neurons; :class:`RateMonitor` only accumulates spike
counts. Both are called once per step from the user's loop, outside compiled code::

    mon = Monitor(neuron, ["V"], stride=10, index=[0, 5, 7])
    rates = RateMonitor(neuron)
    with tb.environ.context(dt=0.1 * u.ms):
        for t in tb.time_range(1000 * u.ms):
            with tb.environ.context(t=t):
                neuron(x)
                mon.record()   # inside the t context: the record is stamped with t
                rates.record()
    mon.values["V"]            # (n_records, 3) tensor in mV, on the neuron's device
    mon.times                  # (n_records,) times in ms (None if recorded without a t)
    rates.neuron_rates()       # per neuron, Hz

Memory
------
A :class:`Monitor` holds ``ceil(steps / stride)`` records of every recorded State, restricted to
``index`` when given, in ``dtype`` when given (e.g. ``torch.float16`` halves the cost of
``float32`` traces, ``torch.bool`` suits spikes), on the State's device unless ``device`` is given
(``device="cpu"`` moves each record off the GPU as it is taken). Without ``capacity`` the records
are kept as a list of small tensors and stacked when :attr:`Monitor.values` is read: the stacked
copy is cached until the next record, so reading it costs a second copy of the data at that moment.
With ``capacity=n`` one ``(n, ...)`` tensor per name is allocated at the first record and written
in place (no per-step allocation, no stacking copy; ``values`` returns views of it), and going
past ``n`` records raises. A :class:`RateMonitor` holds one count per neuron whatever the length
of the run (plus one number per step and batch element with ``track_population=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import environ
from ..units import to_canonical

__all__ = ["Monitor", "RateMonitor"]


def _describe(obj: Any) -> str:
    return type(obj).__name__


def _reader(module: nn.Module, attr: str, who: str) -> Callable[[], Any]:
    """A zero-argument function that reads ``module.attr`` (calling it when it is a method)."""
    if not isinstance(attr, str):
        raise TypeError(f"{who}: State names must be strings, got {attr!r}")
    if not hasattr(module, attr):
        known = list(getattr(module, "_state_kinds", {}))
        hint = f"; its States are {known}" if known else ""
        raise AttributeError(f"{who}: {_describe(module)} has no attribute '{attr}'{hint}")

    def read():
        value = getattr(module, attr)
        if callable(value) and not isinstance(value, torch.Tensor):
            value = value()
        if value is None:
            raise RuntimeError(f"{who}: '{attr}' of {_describe(module)} is None; initialise "
                               "the States first (tb.init_all_states(net))")
        return value

    return read


def _sources(target: Any, names: Any, who: str) -> dict[str, Callable[[], Any]]:
    if isinstance(target, Mapping):
        if names is not None:
            raise TypeError(f"{who}: 'names' is only used with a module target; with a dict "
                            "the keys are the names")
        out = {}
        for key, src in target.items():
            if not isinstance(key, str):
                raise TypeError(f"{who}: dict keys must be strings, got {key!r}")
            if isinstance(src, nn.Module):
                out[key] = _reader(src, key, who)
            elif (isinstance(src, tuple) and len(src) == 2 and isinstance(src[0], nn.Module)):
                out[key] = _reader(src[0], src[1], who)
            elif callable(src):
                out[key] = src
            else:
                raise TypeError(
                    f"{who}: the value for '{key}' must be a module (whose attribute '{key}' is "
                    f"recorded), a (module, attribute) pair or a callable, got {_describe(src)}")
        if not out:
            raise ValueError(f"{who}: nothing to record (empty dict)")
        return out
    if isinstance(target, nn.Module):
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, Sequence) or not names:
            raise TypeError(f"{who}: with a module target, 'names' must be a non-empty list of "
                            f"attribute names, got {names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"{who}: duplicate names in {list(names)}")
        return {name: _reader(target, name, who) for name in names}
    raise TypeError(f"{who}: 'target' must be a module or a dict of sources, got "
                    f"{_describe(target)}")


def _check_stride(stride: Any, who: str) -> int:
    if isinstance(stride, bool) or not isinstance(stride, int | np.integer) or stride < 1:
        raise ValueError(f"{who}: 'stride' must be a positive int, got {stride!r}")
    return int(stride)


def _time_value(t: Any, who: str) -> torch.Tensor:
    t = to_canonical(t, "ms", owner=who, name="t")
    if isinstance(t, torch.Tensor):
        if t.numel() != 1:
            raise ValueError(f"{who}: 't' must be a scalar time, got shape {tuple(t.shape)}")
        # kept on its device: no host synchronisation per record
        return t.detach().reshape(())
    return torch.tensor(float(t), dtype=torch.float64)


class Monitor:
    """Record chosen States every ``stride`` steps.

    Parameters
    ----------
    target : nn.Module or dict
        A module whose attributes ``names`` are recorded (``Monitor(neuron, ["V", "a"])``), or a
        dict from record names to sources: a module (its attribute of the same name,
        ``{"V": neuron}``), a ``(module, attribute)`` pair (``{"E.V": (E, "V")}``) or a
        zero-argument callable returning a tensor (``{"spike": neuron.get_spike}``). An attribute
        that is a method is called with no arguments (``Monitor(neuron, ["V", "get_spike"])``).
    names : str or list of str, optional
        Attribute names, with a module target only.
    stride : int, default 1
        Keep one call of :meth:`record` in ``stride``: calls ``0, stride, 2 stride, ...`` (so
        10 calls with stride 3 keep calls 0, 3, 6, 9).
    dtype : torch.dtype, optional
        Store the records in this dtype (e.g. ``torch.float16``, ``torch.bool``). Default: the
        State's dtype.
    index : int sequence, tensor, slice or dict, optional
        Keep only these neurons (indices into the **last** dimension, the neuron dimension of a
        ``(batch, N)`` State); a single int keeps a last dimension of length 1. A dict gives an
        index per name (names missing from it are kept whole).
    capacity : int, optional
        Preallocate room for this many records (see the memory notes of
        :mod:`torchbrain.drivers.monitor`); more raises ``RuntimeError``.
    device : torch.device or str, optional
        Store the records on this device (e.g. ``"cpu"`` to keep GPU memory free). Default: the
        State's device.

    Attributes
    ----------
    values : dict of str to torch.Tensor
        ``values[name]`` has shape ``(n_records, *state_shape)`` (the last dimension reduced by
        ``index``), detached from autograd, in the State's canonical unit.
    times : torch.Tensor or None
        The time (ms, float64) of each record: ``t`` given to :meth:`record`, else ``t`` from
        :mod:`torchbrain.environ`; NaN for records taken without either; ``None`` when no record
        had a time.
    steps : torch.Tensor
        The index of the :meth:`record` call of each record (``arange(n) * stride``).

    Notes
    -----
    The step count is a Python ``int`` and :meth:`record` is plain Python: call it from the
    loop, outside ``torch.compile``-d code. Records are copies, so later in-place writes of the
    States (``copy_`` under ``no_grad``) do not change them.
    """

    def __init__(
        self,
        target: Any,
        names: str | Sequence[str] | None = None,
        stride: int = 1,
        dtype: torch.dtype | None = None,
        *,
        index: Any = None,
        capacity: int | None = None,
        device: torch.device | str | None = None,
    ):
        who = "Monitor"
        self._sources = _sources(target, names, who)
        self.stride = _check_stride(stride, who)
        if dtype is not None and not isinstance(dtype, torch.dtype):
            raise TypeError(f"{who}: 'dtype' must be a torch.dtype, got {dtype!r}")
        self.dtype = dtype
        self.device = None if device is None else torch.device(device)
        if capacity is not None and (
            isinstance(capacity, bool) or not isinstance(capacity, int | np.integer)
            or capacity < 1
        ):
            raise ValueError(f"{who}: 'capacity' must be a positive int or None, got "
                             f"{capacity!r}")
        self.capacity = None if capacity is None else int(capacity)
        if isinstance(index, Mapping):
            unknown = set(index) - set(self._sources)
            if unknown:
                raise KeyError(f"{who}: 'index' names {sorted(unknown)} are not recorded "
                               f"(recorded: {list(self._sources)})")
            self._index = {k: self._check_index(index.get(k)) for k in self._sources}
        else:
            idx = self._check_index(index)
            self._index = dict.fromkeys(self._sources, idx)
        self.reset()

    @staticmethod
    def _check_index(index: Any) -> Any:
        if index is None or isinstance(index, slice):
            return index
        if isinstance(index, int | np.integer) and not isinstance(index, bool):
            return torch.tensor([int(index)])
        idx = torch.as_tensor(index)
        if idx.ndim != 1 or idx.is_floating_point() or idx.dtype == torch.bool:
            raise TypeError(f"Monitor: 'index' must be an int, a 1-D sequence of ints or a "
                            f"slice, got {index!r}")
        return idx.to(torch.long)

    # ------------------------------------------------------------------------------- recording
    @property
    def names(self) -> list[str]:
        """The recorded names, in order."""
        return list(self._sources)

    def reset(self) -> None:
        """Forget every record and restart the step count (buffers are released)."""
        self._step = 0
        self._n = 0
        self._records: dict[str, list[torch.Tensor]] = {k: [] for k in self._sources}
        self._buffers: dict[str, torch.Tensor] = {}
        self._shapes: dict[str, tuple[torch.Size, torch.dtype]] = {}
        self._times: list[torch.Tensor | None] = []
        self._stacked: dict[str, torch.Tensor] | None = None
        self._index_ready: set[str] = set()

    def _take(self, name: str, value: Any) -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            value = torch.as_tensor(value)
        value = value.detach()
        idx = self._index[name]
        fresh = False
        if idx is not None:
            if value.ndim == 0:
                raise ValueError(f"Monitor: 'index' selects neurons on the last dimension, but "
                                 f"'{name}' is a scalar")
            if isinstance(idx, torch.Tensor):
                if name not in self._index_ready or idx.device != value.device:
                    # checked and normalised once per name (no host sync on later records)
                    n = value.shape[-1]
                    if idx.numel() and (int(idx.max()) >= n or int(idx.min()) < -n):
                        raise IndexError(f"Monitor: 'index' for '{name}' is out of range for "
                                         f"{n} neurons")
                    idx = (idx % n).to(value.device)
                    self._index[name] = idx
                    self._index_ready.add(name)
                value = value.index_select(-1, idx)
                fresh = True
            else:
                value = value[..., idx]
        dtype = self.dtype or value.dtype
        device = self.device or value.device
        return value.to(device=device, dtype=dtype, copy=not fresh)

    def record(self, t: Any = None) -> bool:
        """Count one step and, on every ``stride``-th call, store the current values.

        Parameters
        ----------
        t : quantity, float or tensor, optional
            Time of this record (ms when a number). Default: ``t`` of
            :mod:`torchbrain.environ` when set.

        Returns
        -------
        bool
            Whether this call stored a record.
        """
        step = self._step
        self._step += 1
        if step % self.stride:
            return False
        if self.capacity is not None and self._n >= self.capacity:
            raise RuntimeError(f"Monitor: capacity of {self.capacity} records exceeded; pass a "
                               "larger 'capacity', or capacity=None to append")
        values = {}
        for name, read in self._sources.items():
            v = self._take(name, read())
            sig = (v.shape, v.dtype)
            known = self._shapes.setdefault(name, sig)
            if known != sig:
                raise ValueError(
                    f"Monitor: '{name}' changed from shape {tuple(known[0])} ({known[1]}) to "
                    f"{tuple(v.shape)} ({v.dtype}) at record {self._n}; call reset() after "
                    "changing the batch size")
            values[name] = v
        for name, v in values.items():
            if self.capacity is None:
                self._records[name].append(v)
            else:
                if name not in self._buffers:
                    self._buffers[name] = torch.empty((self.capacity, *v.shape), dtype=v.dtype,
                                                      device=v.device)
                self._buffers[name][self._n].copy_(v)
        if t is None:
            t = environ.get(environ.T, None)
        self._times.append(None if t is None else _time_value(t, "Monitor"))
        self._n += 1
        self._stacked = None
        return True

    # ---------------------------------------------------------------------------------- results
    def __len__(self) -> int:
        return self._n

    @property
    def n_steps(self) -> int:
        """Number of :meth:`record` calls since the last reset."""
        return self._step

    @property
    def values(self) -> dict[str, torch.Tensor]:
        if self._n == 0:
            raise RuntimeError("Monitor: no record yet; call record() once per step")
        if self._stacked is None:
            if self.capacity is None:
                self._stacked = {k: torch.stack(v) for k, v in self._records.items()}
            else:
                self._stacked = {k: b[: self._n] for k, b in self._buffers.items()}
        return dict(self._stacked)

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._sources:
            raise KeyError(f"Monitor: '{name}' is not recorded (recorded: {self.names})")
        return self.values[name]

    @property
    def times(self) -> torch.Tensor | None:
        if all(t is None for t in self._times):
            return None
        nan = torch.tensor(float("nan"), dtype=torch.float64)
        return torch.stack([nan if t is None else t.to("cpu", torch.float64)
                            for t in self._times])

    @property
    def steps(self) -> torch.Tensor:
        return torch.arange(self._n) * self.stride

    @property
    def nbytes(self) -> int:
        """Bytes held by the records (preallocated capacity included)."""
        if self.capacity is not None:
            return sum(b.numel() * b.element_size() for b in self._buffers.values())
        return sum(v.numel() * v.element_size() for vs in self._records.values() for v in vs)

    def __repr__(self) -> str:
        return (f"Monitor(names={self.names}, stride={self.stride}, records={self._n}, "
                f"steps={self._step})")


class RateMonitor:
    """Accumulate spike counts on the device, without storing spikes over time.

    Parameters
    ----------
    source : module, callable, (module, attribute) pair or None
        Where :meth:`record` reads the spikes: a neuron (its ``get_spike()``), a zero-argument
        callable, or a ``(module, attribute)`` pair. ``None``: pass the spikes to
        :meth:`record`.
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt`` at each :meth:`record`.
    dtype : torch.dtype, default ``torch.float32``
        Dtype of the counts (float32 counts exactly up to 2**24 spikes per neuron).
    track_population : bool, default False
        Also keep the population spike count of every step (one number per step and batch
        element), for :meth:`population_rate`.

    Notes
    -----
    Memory is one count per neuron (shape of the spikes, batch included), independent of the
    run length. :meth:`record` is plain Python: call it outside ``torch.compile``-d code.
    """

    def __init__(
        self,
        source: Any = None,
        dt: Any = None,
        *,
        dtype: torch.dtype = torch.float32,
        track_population: bool = False,
    ):
        who = "RateMonitor"
        if source is None or callable(source) and not isinstance(source, nn.Module):
            self._read = source
        elif isinstance(source, nn.Module):
            self._read = _reader(source, "get_spike", who)
        elif isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], nn.Module):
            self._read = _reader(source[0], source[1], who)
        else:
            raise TypeError(f"{who}: 'source' must be a module, a callable, a (module, "
                            f"attribute) pair or None, got {_describe(source)}")
        if dt is not None:
            from ..analysis import _scalar_ms

            dt = _scalar_ms(dt, who, "dt")
        self.dt = dt
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"{who}: 'dtype' must be a floating torch.dtype, got {dtype!r}")
        self.dtype = dtype
        self.track_population = bool(track_population)
        self.reset()

    def reset(self) -> None:
        """Zero the counts and the elapsed time."""
        self._counts: torch.Tensor | None = None
        self._n = 0
        self._duration = 0.0
        self._population: list[torch.Tensor] = []

    def record(self, spikes: Any = None) -> None:
        """Add one step of spikes (read from the source when ``spikes`` is None)."""
        if spikes is None:
            if self._read is None:
                raise TypeError("RateMonitor: no source was given; pass the spikes to record()")
            spikes = self._read()
        if not isinstance(spikes, torch.Tensor):
            spikes = torch.as_tensor(spikes)
        s = spikes.detach().to(self.dtype)
        if s.ndim == 0:
            raise ValueError("RateMonitor: spikes must have a neuron dimension, got a scalar")
        dt = self.dt if self.dt is not None else environ.get_dt_value(desc="RateMonitor")
        if self._counts is None:
            self._counts = torch.zeros_like(s)
        elif self._counts.shape != s.shape:
            raise ValueError(f"RateMonitor: spikes changed shape from "
                             f"{tuple(self._counts.shape)} to {tuple(s.shape)}; call reset()")
        self._counts.add_(s)
        if self.track_population:
            self._population.append(s.sum(-1))
        self._n += 1
        self._duration += dt

    def _need_records(self) -> None:
        if self._n == 0:
            raise RuntimeError("RateMonitor: no step recorded yet; call record() once per step")

    @property
    def counts(self) -> torch.Tensor:
        """Spike count of every neuron, shape of the spikes."""
        self._need_records()
        return self._counts

    @property
    def n_steps(self) -> int:
        return self._n

    @property
    def duration(self) -> float:
        """Recorded time in ms (the sum of the steps' ``dt``)."""
        return self._duration

    def neuron_rates(self) -> torch.Tensor:
        """Mean rate of each neuron in Hz, shape of the spikes."""
        self._need_records()
        return self._counts * (1000.0 / self._duration)

    def mean_rate(self) -> torch.Tensor:
        """Mean rate over the neurons (last dimension) in Hz, shape ``(*batch)``."""
        return self.neuron_rates().mean(-1)

    def population_rate(self, width: Any = None) -> torch.Tensor:
        """Population rate per step in Hz, shape ``(n_steps, *batch)``.

        Needs ``track_population=True``; assumes a constant ``dt``. ``width`` smooths as in
        :func:`torchbrain.analysis.firing_rate`.
        """
        self._need_records()
        if not self.track_population:
            raise RuntimeError("RateMonitor: population_rate() needs track_population=True")
        from ..analysis import firing_rate

        n = self._counts.shape[-1]
        pop = torch.stack(self._population).unsqueeze(-1) / n
        return firing_rate(pop, self._duration / self._n, width)

    def __repr__(self) -> str:
        return f"RateMonitor(steps={self._n}, duration={self._duration:g} ms)"
