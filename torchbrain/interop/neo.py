"""Run results as Neo objects, so Elephant (and anything else that reads Neo) runs on them.

:func:`to_neo` makes one ``neo.Block`` with one ``neo.Segment``: a ``neo.SpikeTrain`` per neuron
(times in ms, ``t_start``/``t_stop`` of the recording, annotated with its population and neuron
index) and a ``neo.AnalogSignal`` per sampled record (``(T, N)``, its unit, ``sampling_period``
and ``t_start``), and one ``neo.Group`` per population holding both. ``neo`` and ``quantities``
are optional (``pip install torchbrain[interop]``)::

    block = to_neo({"E": mon_E, "I": mon_I}, dt=0.1 * u.ms)
    trains = block.groups[0].spiketrains
    elephant.statistics.mean_firing_rate(trains[0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._optional import require
from .records import Record, collect

__all__ = ["to_neo", "spiketrains"]


def _pq_unit(pq, unit: str):
    """The ``quantities`` unit of a pint unit string (torchbrain's canonical units by table,
    anything else by its symbol)."""
    from ..units import u

    text = f"{u.Unit(unit):~}".replace(" ", "")
    if text in ("", "dimensionless"):
        return pq.dimensionless
    if text == "GΩ":  # quantities has no gigaohm
        return pq.UnitQuantity("gigaohm", 1e9 * pq.ohm, symbol="GOhm")
    try:
        return pq.unit_registry[text.replace("Ω", "ohm").replace("**", "^")]
    except LookupError as err:
        raise ValueError(f"to_neo: the unit {unit!r} has no equivalent in quantities") from err


def spiketrains(record: Record) -> list[Any]:
    """One ``neo.SpikeTrain`` per neuron of a spike record (times in ms)."""
    neo = require("neo", "torchbrain.interop.neo")
    pq = require("quantities", "torchbrain.interop.neo")
    trains = []
    for i, times in enumerate(record.spike_times()):
        trains.append(neo.SpikeTrain(
            times.numpy(), units=pq.ms, t_start=record.t_start * pq.ms,
            t_stop=record.t_stop * pq.ms, name=f"{record.population}[{i}]",
            population=record.population, neuron=i, record=record.name))
    return trains


def to_neo(source, *, dt=None, t_start=None, spikes: Sequence[str] | None = None,
           units: Mapping[str, Any] | None = None, population: str = "population",
           name: str = "torchbrain run"):
    """Monitor or run results as a ``neo.Block``.

    Parameters
    ----------
    source : Monitor, dict of tensors, or dict of those per population
        The results: ``(T, N)`` tensors (one trial) by record name; a dict whose values are
        Monitors or dicts is read as one entry per population.
    dt : quantity [time] or float, optional
        Simulation step (ms when a number); default ``tb.environ``'s. A Monitor's sampling
        period is ``stride * dt`` (or the spacing of its recorded times when ``dt`` is None).
    t_start : quantity [time] or float, optional
        Time of the first sample (ms when a number); default a Monitor's first recorded time,
        else 0.
    spikes : list of str, optional
        The record names that are spikes (default ``spike``/``spikes``/``get_spike`` and bool
        records).
    units : dict, optional
        Units of the sampled records (their canonical torchbrain units, e.g. ``{"g": "nS"}``);
        ``V`` is known to be in mV.
    population : str, default "population"
        Population name when ``source`` is a single Monitor or dict.
    name : str
        Name of the block.

    Returns
    -------
    neo.Block
        One segment with all spike trains and signals, one group per population.
    """
    who = "to_neo"
    neo = require("neo", who)
    pq = require("quantities", who)
    records = collect(source, dt=dt, t_start=t_start, spikes=spikes, units=units,
                      population=population, who=who)
    block = neo.Block(name=name)
    segment = neo.Segment(name="run")
    block.segments.append(segment)
    groups: dict[str, Any] = {}
    for rec in records:
        group = groups.get(rec.population)
        if group is None:
            group = groups[rec.population] = neo.Group(name=rec.population)
            block.groups.append(group)
        if rec.is_spike:
            trains = spiketrains(rec)
            segment.spiketrains.extend(trains)
            group.add(*trains)
        else:
            signal = neo.AnalogSignal(
                rec.values.numpy(), units=_pq_unit(pq, rec.unit),
                sampling_period=rec.period * pq.ms, t_start=rec.t_start * pq.ms,
                name=f"{rec.population}.{rec.name}", population=rec.population,
                record=rec.name)
            segment.analogsignals.append(signal)
            group.add(signal)
    return block
