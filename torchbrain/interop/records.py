"""Run results as a list of :class:`Record`: what the Neo and NWB writers share.

A run's results arrive as a :class:`torchbrain.Monitor`, a dict of ``(T, N)`` tensors, or a
dict of those per population (``{"E": mon_E, "I": {"spike": s_I}}``). :func:`collect` turns any
of these into records that know their population, their kind (spikes or a sampled signal),
their unit, their first time and their sampling period, so each writer only maps records onto
its format.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .. import environ
from ..drivers.monitor import Monitor
from ..units import to_canonical, u

__all__ = ["Record", "collect", "SPIKE_NAMES"]

#: Record names read as spikes unless ``spikes=`` says otherwise.
SPIKE_NAMES = ("spike", "spikes", "get_spike")

#: Units of the States whose unit is fixed by name across torchbrain's neurons.
_KNOWN_UNITS = {"V": "mV"}


@dataclass
class Record:
    """One recorded quantity of one population.

    ``values`` is ``(T, N)`` (time first, neurons last) on the CPU; spikes are 0/1; ``t_start``
    and ``period`` are in ms; ``unit`` is a pint unit string (``"dimensionless"`` for spikes).
    """

    population: str
    name: str
    values: torch.Tensor
    is_spike: bool
    unit: str
    t_start: float
    period: float

    @property
    def t_stop(self) -> float:
        """End of the recording: one period after the last sample."""
        return self.t_start + self.values.shape[0] * self.period

    def spike_times(self) -> list[torch.Tensor]:
        """Per neuron, the times (ms, float64) of its spikes: sample ``k`` is at
        ``t_start + k * period`` (the convention of :func:`torchbrain.analysis.raster`)."""
        steps = torch.arange(self.values.shape[0], dtype=torch.float64)
        times = self.t_start + steps * self.period
        return [times[self.values[:, i] != 0] for i in range(self.values.shape[1])]


def _two_d(x: torch.Tensor, who: str, where: str) -> torch.Tensor:
    x = torch.as_tensor(x).detach().to("cpu")
    if x.dim() == 1:
        x = x[:, None]
    if x.dim() != 2:
        raise ValueError(f"{who}: {where} must have shape (T, N) (one trial: select a batch "
                         f"element first, e.g. values[:, 0]), got shape {tuple(x.shape)}")
    return x


def _timing(source, dt, t_start, who: str) -> tuple[float, float]:
    if isinstance(source, Monitor):
        times = source.times
        if dt is None and times is not None and len(times) >= 2 and not torch.isnan(times).any():
            period = float(times[1] - times[0])
            return float(times[0]) if t_start is None else _ms(t_start, who, "t_start"), period
        step = _ms(dt, who, "dt") if dt is not None else environ.get_dt_value(desc=who)
        first = float(times[0]) if times is not None and not torch.isnan(times[0]) else 0.0
        start = first if t_start is None else _ms(t_start, who, "t_start")
        return start, step * source.stride
    step = _ms(dt, who, "dt") if dt is not None else environ.get_dt_value(desc=who)
    return (0.0 if t_start is None else _ms(t_start, who, "t_start")), step


def _ms(value, who, name) -> float:
    out = float(to_canonical(value, "ms", owner=who, name=name))
    if name == "dt" and not out > 0:
        raise ValueError(f"{who}: 'dt' must be positive, got {value!r}")
    return out


def _unit_text(unit: Any, who: str, name: str) -> str:
    try:
        return str(u.Unit(unit)) if not hasattr(unit, "dimensionality") else str(unit)
    except Exception as err:  # pint raises several types for a bad unit string
        raise ValueError(f"{who}: unit {unit!r} of record {name!r} is not a unit pint "
                         "knows") from err


def collect(source, *, dt=None, t_start=None, spikes: Sequence[str] | None = None,
            units: Mapping[str, Any] | None = None, population: str = "population",
            who: str = "collect") -> list[Record]:
    """The records of ``source`` (see the module docstring).

    ``spikes`` lists the record names that are spikes (default :data:`SPIKE_NAMES`, plus any
    bool record); every other record is a sampled signal whose unit comes from ``units``
    (``{"V": "mV"}`` is known; other names must be given). ``dt`` (ms when a number) is the
    simulation step (default: ``tb.environ``); for a Monitor the sampling period is
    ``stride * dt``, or the spacing of its recorded times when it has them.
    """
    units = dict(units or {})
    spike_names = set(SPIKE_NAMES if spikes is None else spikes)
    if isinstance(source, Mapping) and source and all(
            isinstance(v, Monitor | Mapping) for v in source.values()):
        groups = dict(source)
    else:
        groups = {population: source}
    records = []
    for pop, group in groups.items():
        if isinstance(group, Monitor):
            values = group.values
        elif isinstance(group, Mapping):
            values = dict(group)
        else:
            raise TypeError(f"{who}: expected a Monitor, a dict of (T, N) tensors or a dict of "
                            f"those per population, got {type(group).__name__} for {pop!r}")
        if not values:
            raise ValueError(f"{who}: population {pop!r} has nothing recorded")
        start, period = _timing(group, dt, t_start, who)
        for name, x in values.items():
            x = _two_d(x, who, f"record {pop!r}/{name!r}")
            is_spike = name in spike_names or x.dtype == torch.bool
            if is_spike:
                unit = "dimensionless"
                x = (x != 0).to(torch.uint8)
            else:
                base = name.rsplit(".", 1)[-1]
                if name in units:
                    unit = _unit_text(units[name], who, name)
                elif base in _KNOWN_UNITS:
                    unit = _KNOWN_UNITS[base]
                else:
                    raise ValueError(f"{who}: the unit of record {name!r} ({pop!r}) is not "
                                     f"known; pass units={{{name!r}: 'mV'}} (its canonical "
                                     "unit), or list it in spikes=")
                x = x.to(torch.float64)
            if not math.isfinite(period) or period <= 0:
                raise ValueError(f"{who}: the sampling period of {pop!r} is {period} ms")
            records.append(Record(pop, name, x, is_spike, unit, start, period))
    return records
