"""Helpers shared by the input generators: units of signals, time grids and windows."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from ..environ import get as env_get
from ..environ import get_dt_value
from ..units import (
    CANONICAL,
    UnitError,
    _dim_name,
    _tidy,
    check_finite,
    is_quantity,
    to_canonical,
    u,
)

#: The kinds of signal a generator may produce (and their canonical units).
_SIGNAL_KINDS = ("current", "voltage", "conductance", "rate", "concentration", "dimensionless")
_TIME_DIMS = u.Unit("ms").dimensionality


def first_quantity(value: Any):
    """The first pint quantity in ``value`` (a quantity, or a list/tuple holding some)."""
    if is_quantity(value):
        return value
    if isinstance(value, list | tuple):
        for item in value:
            q = first_quantity(item)
            if q is not None:
                return q
    return None


def signal_unit(owner: str, named_values, *, per_sqrt_time: bool = False,
                default: str = "pA") -> str:
    """The canonical unit of a signal, read from the first quantity among ``named_values``.

    ``named_values`` is a sequence of ``(name, value)``. A current gives ``'pA'``, a voltage
    ``'mV'``, a conductance ``'nS'``, ...; with ``per_sqrt_time`` the value is a noise intensity
    (``pA/ms**0.5``, ...). Without any quantity the signal is taken to be ``default``.
    """
    for name, value in named_values:
        q = first_quantity(value)
        if q is None:
            continue
        units = u.Unit(str(q.units)) * (u.ms ** 0.5 if per_sqrt_time else 1)
        dims = units.dimensionality
        for kind in _SIGNAL_KINDS:
            canonical = CANONICAL[kind]
            if u.Unit(canonical).dimensionality == dims:
                return f"{canonical} / ms ** 0.5" if per_sqrt_time else canonical
        suffix = " per square root of time" if per_sqrt_time else ""
        raise UnitError(
            f"{owner}: parameter '{name}' expects a current, voltage, conductance, rate or "
            f"concentration{suffix}, got {q:~P}, which is {_dim_name(q.units)}"
        )
    return f"{default} / ms ** 0.5" if per_sqrt_time else default


def as_value_tensor(value: Any, unit: str, owner: str, name: str, dtype=None,
                    device=None) -> torch.Tensor:
    """``value`` (a quantity, number, array, tensor or a list of them) as a canonical tensor."""
    dtype = dtype or torch.get_default_dtype()
    if isinstance(value, list | tuple) and not is_quantity(value):
        items = [as_value_tensor(v, unit, owner, name, dtype, device) for v in value]
        if not items:
            raise ValueError(f"{owner}: parameter '{name}' must not be empty")
        try:
            return torch.stack(torch.broadcast_tensors(*items))
        except RuntimeError:
            raise ValueError(
                f"{owner}: the entries of '{name}' have shapes "
                f"{[tuple(i.shape) for i in items]}, which do not broadcast together"
            ) from None
    mag = to_canonical(value, unit, owner=owner, name=name)
    if is_quantity(value) and isinstance(mag, np.ndarray) and mag.dtype.kind == "f":
        # to_canonical tidies scalars only (1 nA -> 1000 pA); do the same for arrays, which pint
        # converts to 999.9999999999999.
        mag = np.vectorize(_tidy, otypes=[np.float64])(mag) if mag.size else mag
    if isinstance(mag, torch.Tensor):
        out = mag.to(dtype=dtype, device=device if device is not None else mag.device)
    elif isinstance(mag, np.ndarray | numbers.Number):
        if isinstance(mag, bool):
            raise TypeError(f"{owner}: parameter '{name}' expects a number, got {mag!r}")
        out = torch.as_tensor(np.asarray(mag, dtype=np.float64), dtype=dtype, device=device)
    else:
        raise TypeError(
            f"{owner}: parameter '{name}' expects numbers, tensors or quantities, got "
            f"{type(value).__name__}"
        )
    check_finite(out, owner, name)
    return out


def time_ms(value: Any, owner: str, name: str, *, allow_none: bool = False,
            positive: bool = False, nonnegative: bool = False) -> float | None:
    """A scalar time as a Python float in ms (checked)."""
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{owner}: parameter '{name}' is required")
    mag = to_canonical(value, "ms", owner=owner, name=name)
    if isinstance(mag, torch.Tensor | np.ndarray):
        if (mag.numel() if isinstance(mag, torch.Tensor) else mag.size) != 1:
            raise ValueError(f"{owner}: parameter '{name}' must be a scalar time, got shape "
                             f"{tuple(mag.shape)}")
        mag = mag.item()
    if isinstance(mag, bool) or not isinstance(mag, numbers.Real):
        raise TypeError(f"{owner}: parameter '{name}' expects a time (number in ms or quantity), "
                        f"got {value!r}")
    mag = float(mag)
    check_finite(mag, owner, name)
    if positive and not mag > 0:
        raise ValueError(f"{owner}: parameter '{name}' must be positive, got {mag:g} ms")
    if nonnegative and not mag >= 0:
        raise ValueError(f"{owner}: parameter '{name}' must be >= 0, got {mag:g} ms")
    return mag


def times_ms(values: Any, owner: str, name: str) -> list[float]:
    """A sequence of times (a quantity array or a list of quantities/numbers) as floats in ms."""
    if is_quantity(values):
        mag = np.atleast_1d(np.asarray(to_canonical(values, "ms", owner=owner, name=name),
                                       dtype=np.float64))
        seq = [float(x) for x in mag.ravel()]
    elif isinstance(values, torch.Tensor | np.ndarray):
        seq = [float(x) for x in np.asarray(
            values.detach().cpu() if isinstance(values, torch.Tensor) else values,
            dtype=np.float64).ravel()]
    elif isinstance(values, list | tuple):
        seq = [time_ms(v, owner, name) for v in values]
    else:
        seq = [time_ms(values, owner, name)]
    check_finite(seq, owner, name)
    return seq


def resolve_dt(dt: Any, owner: str) -> float:
    """``dt`` in ms: the argument, or the environment's time step."""
    if dt is None:
        return get_dt_value(desc=owner)
    return time_ms(dt, owner, "dt", positive=True)


def first_step_at(time: float, dt: float) -> int:
    """Index of the first grid point ``i * dt`` at or after ``time`` (robust to rounding).

    A ratio within 1e-9 (relative) of a whole number is that number, the same rule as
    :func:`torchbrain.drivers.loops.time_range` uses for the number of steps of a run.
    """
    if time == math.inf:
        return 2**62
    if time == -math.inf:
        return -(2**62)
    ratio = time / dt
    nearest = round(ratio)
    if abs(ratio - nearest) <= 1e-9 * max(1.0, abs(ratio)):
        return int(nearest)
    return int(math.ceil(ratio))


def step_index(t, dt: float, device=None) -> torch.Tensor:
    """The grid index ``round(t / dt)`` of the time ``t`` (a number or tensor in ms), int64."""
    t = torch.as_tensor(t, dtype=torch.float64)
    i = torch.round(t / dt).to(torch.int64)
    return i if device is None else i.to(device)


def current_time(owner: str):
    """The environment's ``t`` (ms)."""
    return env_get("t", desc=owner)
