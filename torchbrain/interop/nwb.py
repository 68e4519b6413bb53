"""Run results as an NWB file (Neurodata Without Borders, via pynwb), and back.

:func:`write_nwb` stores

* the spikes in the file's **Units** table: one row per neuron with its ``spike_times``
  (seconds, NWB's time unit), its observation interval ``[t_start, t_stop]`` and the columns
  ``population``, ``neuron`` (index in the population) and ``record`` (the record's name);
* each sampled record (``V``, ``g``, ...) as a **TimeSeries** in ``acquisition`` named
  ``population.record``, with ``data`` in torchbrain's canonical unit, NWB's ``unit`` and
  ``conversion`` to SI (``mV`` is written ``unit="volts", conversion=1e-3``), ``rate`` and
  ``starting_time``; the torchbrain unit is kept in the series' ``comments``;
* the network's description (:func:`describe_network`: every module, its type and its
  parameters with their units, and ``repr(net)``) as JSON in the file's ``notes``.

:func:`read_nwb` reads such a file back into plain arrays in torchbrain's units (ms). ``pynwb`` is
optional (``pip install torchbrain[interop]``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
from torch import nn

from ..module import Module
from ..units import format_quantity, u
from ._optional import require
from .records import collect

__all__ = ["write_nwb", "read_nwb", "describe_network"]

#: NWB stores SI units with a conversion factor: torchbrain unit -> (NWB unit, factor to SI).
_SI = {
    "millivolt": ("volts", 1e-3),
    "picoampere": ("amperes", 1e-12),
    "nanosiemens": ("siemens", 1e-9),
    "picofarad": ("farads", 1e-12),
    "gigaohm": ("ohms", 1e9),
    "millisecond": ("seconds", 1e-3),
    "hertz": ("hertz", 1.0),
    "dimensionless": ("n/a", 1.0),
}


def describe_network(net: nn.Module | None) -> dict[str, Any]:
    """Every module of ``net``: its name, type and parameters with units (as text)."""
    if net is None:
        return {}
    modules = []
    for name, mod in net.named_modules():
        entry: dict[str, Any] = {"name": name or "(root)", "type": type(mod).__name__}
        if isinstance(mod, Module):
            entry["parameters"] = {p: format_quantity(getattr(mod, p), unit)
                                   for p, unit in mod._param_units.items()
                                   if getattr(mod, p, None) is not None}
        size = getattr(mod, "varshape", None)
        if size is not None:
            entry["size"] = list(size)
        modules.append(entry)
    return {"modules": modules, "repr": repr(net)}


def write_nwb(path: str | os.PathLike, source, *, dt=None, t_start=None,
              spikes: Sequence[str] | None = None, units: Mapping[str, Any] | None = None,
              population: str = "population", network: nn.Module | None = None,
              session_description: str = "torchbrain simulation",
              session_start_time: datetime | None = None) -> None:
    """Write run results (and the network's description) to an NWB file at ``path``.

    Parameters
    ----------
    path : str or PathLike
        The file to write (overwritten).
    source, dt, t_start, spikes, units, population
        The results and how to read them, as :func:`torchbrain.interop.neo.to_neo`.
    network : nn.Module, optional
        The simulated network, described in the file's ``notes``.
    session_description : str
        NWB's required description of the session.
    session_start_time : datetime, optional
        Default: now (UTC).
    """
    who = "write_nwb"
    pynwb = require("pynwb", who)
    records = collect(source, dt=dt, t_start=t_start, spikes=spikes, units=units,
                      population=population, who=who)
    nwb = pynwb.NWBFile(
        session_description=session_description, identifier=str(uuid.uuid4()),
        session_start_time=session_start_time or datetime.now(timezone.utc),
        notes=json.dumps({"torchbrain_network": describe_network(network)}))
    spike_records = [r for r in records if r.is_spike]
    if spike_records:
        nwb.add_unit_column("population", "population the neuron belongs to")
        nwb.add_unit_column("neuron", "index of the neuron in its population")
        nwb.add_unit_column("record", "name of the recorded spike variable")
        for rec in spike_records:
            interval = [[rec.t_start * 1e-3, rec.t_stop * 1e-3]]
            for i, times in enumerate(rec.spike_times()):
                nwb.add_unit(spike_times=times.numpy() * 1e-3, obs_intervals=interval,
                             population=rec.population, neuron=i, record=rec.name)
    for rec in records:
        if rec.is_spike:
            continue
        long_name = str(u.Unit(rec.unit))
        si_unit, conversion = _SI.get(long_name, (rec.unit, 1.0))
        nwb.add_acquisition(pynwb.TimeSeries(
            name=f"{rec.population}.{rec.name}", data=rec.values.numpy(), unit=si_unit,
            conversion=conversion, rate=1e3 / rec.period, starting_time=rec.t_start * 1e-3,
            comments=json.dumps({"torchbrain_unit": rec.unit, "population": rec.population,
                                 "record": rec.name}),
            description=f"{rec.name} of population {rec.population} ({rec.unit})"))
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def read_nwb(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file written by :func:`write_nwb` back into arrays in torchbrain's units.

    Returns
    -------
    dict
        ``spikes[population][record]``: a list (per neuron) of spike-time arrays in ms;
        ``intervals[population]``: ``(t_start, t_stop)`` in ms; ``signals["pop.record"]``:
        ``{"values": (T, N) array, "unit": str, "period": ms, "t_start": ms}``;
        ``network``: the description written by :func:`describe_network`.
    """
    pynwb = require("pynwb", "read_nwb")
    out: dict[str, Any] = {"spikes": {}, "intervals": {}, "signals": {}, "network": {}}
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        if nwb.notes:
            out["network"] = json.loads(nwb.notes).get("torchbrain_network", {})
        if nwb.units is not None:
            table = nwb.units
            for row in range(len(table)):
                pop = str(table["population"][row])
                rec = str(table["record"][row])
                neuron = int(table["neuron"][row])
                trains = out["spikes"].setdefault(pop, {}).setdefault(rec, [])
                while len(trains) <= neuron:
                    trains.append(np.zeros(0))
                trains[neuron] = np.asarray(table["spike_times"][row], dtype=np.float64) * 1e3
                start, stop = np.asarray(table["obs_intervals"][row])[0] * 1e3
                out["intervals"][pop] = (float(start), float(stop))
        for name, series in nwb.acquisition.items():
            meta = json.loads(series.comments) if series.comments else {}
            out["signals"][name] = {
                "values": np.asarray(series.data[:]),
                "unit": meta.get("torchbrain_unit", series.unit),
                "period": 1e3 / series.rate,
                "t_start": series.starting_time * 1e3,
            }
    return out
