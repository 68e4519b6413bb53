r"""Event-camera (and other event-stream) data as time-major spike tensors.

Tonic and most neuromorphic datasets hand out events as a NumPy structured array with fields
``x``, ``y`` (absent for 1-D sensors such as cochleas), ``t`` and ``p`` (polarity), ``t`` in
microseconds. :func:`events_to_spikes` bins them at a step ``dt`` (a time quantity) into a
tensor ``(T, P, H, W)`` (``(T, P, W)`` without ``y``), on any device; :class:`EventCollate`
does it for a batch, as a ``DataLoader`` ``collate_fn``, and stacks to ``(T, B, P, H, W)``::

    from torch.utils.data import DataLoader
    import tonic

    train = tonic.datasets.NMNIST(save_to="data", train=True)
    loader = DataLoader(train, batch_size=64, shuffle=True,
                        collate_fn=EventCollate(train.sensor_size, dt=1 * u.ms,
                                                duration=300 * u.ms))
    for spikes, labels in loader:      # spikes: (300, 64, 2, 34, 34), float32 counts
        ...

Binning: event ``k`` lands in step :math:`\lfloor (t_k - t_\mathrm{start}) / \Delta t \rfloor`
(step ``n`` covers :math:`[t_\mathrm{start} + n\Delta t, t_\mathrm{start} + (n+1)\Delta t)`, the
windows of Tonic's ``ToFrame(time_window=dt)``), and the value is the number of events of that
pixel and polarity in the step (``binary=True`` clips it to 1). With ``duration`` the tensor has
``ceil(duration / dt)`` steps and later events are dropped; without, it ends with the step of the
last event.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .units import to_canonical, u

__all__ = ["events_to_spikes", "EventCollate"]


def _in_time_unit(value, time_unit, who: str, name: str) -> float:
    """``value`` (a time quantity) as a number in ``time_unit``."""
    if not hasattr(value, "units"):
        raise TypeError(f"{who}: '{name}' must be a time quantity such as 1 * u.ms (event "
                        f"times are counted in {time_unit}), got {value!r}")
    ms = float(to_canonical(value, "ms", owner=who, name=name))
    return ms / float(to_canonical(1.0 * u.Unit(str(time_unit)), "ms", owner=who,
                                   name="time_unit"))


def _sensor(sensor_size, who: str) -> tuple[int, int, int]:
    if (not isinstance(sensor_size, Sequence | np.ndarray) or len(sensor_size) != 3
            or not all(int(s) == s and s >= 1 for s in sensor_size)):
        raise ValueError(f"{who}: 'sensor_size' must be Tonic's (W, H, P) of positive ints, got "
                         f"{sensor_size!r}")
    return tuple(int(s) for s in sensor_size)


def events_to_spikes(events: np.ndarray, sensor_size, dt, *, t_start=None, duration=None,
                     time_unit: Any = "microsecond", binary: bool = False,
                     device: torch.device | str | None = None,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Bin an event stream into a time-major spike tensor.

    Parameters
    ----------
    events : numpy structured array
        Fields ``x``, ``t``, ``p`` and, for 2-D sensors, ``y`` (Tonic's layout).
    sensor_size : (int, int, int)
        Tonic's ``(W, H, P)``: width, height (1 for a 1-D sensor) and number of polarities.
    dt : quantity [time]
        Step of the output.
    t_start : quantity [time], optional
        Time of the start of step 0; default 0 (Tonic's recordings start near 0).
    duration : quantity [time], optional
        Length of the output, ``ceil(duration / dt)`` steps; default: up to the last event.
    time_unit : str or pint unit, default "microsecond"
        Unit of the ``t`` field.
    binary : bool, default False
        Clip counts to 1 (spike / no spike).
    device, dtype : optional
        Where and as what to build the tensor (the binning runs on ``device``).

    Returns
    -------
    torch.Tensor
        ``(T, P, H, W)`` (``(T, P, W)`` when the events have no ``y``), event counts per step.
    """
    who = "events_to_spikes"
    names = getattr(getattr(events, "dtype", None), "names", None) or ()
    missing = [f for f in ("x", "t", "p") if f not in names]
    if missing:
        raise ValueError(f"{who}: 'events' must be a structured array with fields x, (y,) t, "
                         f"p; missing {missing} (fields: {list(names)})")
    W, H, P = _sensor(sensor_size, who)
    step = _in_time_unit(dt, time_unit, who, "dt")
    if not step > 0:
        raise ValueError(f"{who}: 'dt' must be positive, got {dt!r}")
    t0 = 0.0 if t_start is None else _in_time_unit(t_start, time_unit, who, "t_start")
    has_y = "y" in names
    device = torch.device(device) if device is not None else torch.device("cpu")

    def field(name):
        return torch.as_tensor(np.ascontiguousarray(events[name]).astype(np.int64),
                               device=device)

    t = torch.as_tensor(np.ascontiguousarray(events["t"]).astype(np.float64), device=device)
    bins = torch.floor((t - t0) / step).to(torch.int64)
    if duration is not None:
        T = math.ceil(_in_time_unit(duration, time_unit, who, "duration") / step - 1e-9)
    else:
        T = int(bins.max().item()) + 1 if bins.numel() else 0
    x, p = field("x"), field("p")
    y = field("y") if has_y else torch.zeros_like(x)
    for name, v, size in (("x", x, W), ("y", y, H), ("p", p, P)):
        if v.numel() and (int(v.min()) < 0 or int(v.max()) >= size):
            raise ValueError(f"{who}: field '{name}' has values in [{int(v.min())}, "
                             f"{int(v.max())}], outside the sensor's 0..{size - 1} "
                             f"(sensor_size={sensor_size})")
    keep = (bins >= 0) & (bins < T)
    flat = ((bins * P + p) * H + y) * W + x
    counts = torch.bincount(flat[keep], minlength=T * P * H * W)
    out = counts.reshape(T, P, H, W) if has_y else counts.reshape(T, P, W)
    if binary:
        out = out.clamp(max=1)
    return out.to(dtype)


class EventCollate:
    """A ``collate_fn`` turning a list of ``(events, label)`` into ``(spikes, labels)``.

    Parameters
    ----------
    sensor_size : (int, int, int)
        Tonic's ``(W, H, P)``.
    dt : quantity [time]
        Step of the spike tensors.
    duration : quantity [time], optional
        Fixed length; default: the longest sample of the batch (shorter ones end with zeros).
    time_unit, binary, dtype
        As :func:`events_to_spikes`.
    device : optional
        Build the batch there (use the default CPU with ``num_workers > 0``: CUDA does not run
        in forked workers).

    Returns (from a call)
    ---------------------
    spikes : torch.Tensor
        ``(T, B, P, H, W)`` (time-major, like every torchbrain driver).
    labels : torch.Tensor
        ``(B,)`` int64 (the labels as given, stacked).
    """

    def __init__(self, sensor_size, dt, *, duration=None, time_unit: Any = "microsecond",
                 binary: bool = False, device=None, dtype: torch.dtype = torch.float32):
        self.sensor_size = _sensor(sensor_size, "EventCollate")
        self.dt, self.duration, self.time_unit = dt, duration, time_unit
        _in_time_unit(dt, time_unit, "EventCollate", "dt")
        self.binary, self.device, self.dtype = binary, device, dtype

    def __call__(self, batch):
        frames = [events_to_spikes(ev, self.sensor_size, self.dt, duration=self.duration,
                                   time_unit=self.time_unit, binary=self.binary,
                                   device=self.device, dtype=self.dtype) for ev, _ in batch]
        T = max(f.shape[0] for f in frames)
        spikes = frames[0].new_zeros((T, len(frames), *frames[0].shape[1:]))
        for b, f in enumerate(frames):
            spikes[: f.shape[0], b] = f
        labels = torch.as_tensor(np.asarray([label for _, label in batch]), dtype=torch.int64)
        return spikes, labels

    def __repr__(self) -> str:
        return (f"EventCollate(sensor_size={self.sensor_size}, dt={self.dt}, "
                f"duration={self.duration}, binary={self.binary})")
