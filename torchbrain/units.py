"""The pint boundary adapter.

Physical units live at the boundary of torchbrain only. Parameters are accepted as pint
quantities (``10 * u.ms``), checked for dimension once, converted to torchbrain's canonical unit
and stored as plain tensors. pint never enters ``forward``, buffers or ``state_dict``.

Canonical system (chosen so that no conversion factor appears inside the equations)::

    time         ms          conductance  nS          capacitance  pF
    voltage      mV          current      pA          resistance   GΩ
    rate         1/ms (kHz)  concentration mM

    nS · mV = pA,   pA / pF = mV / ms,   GΩ · pA = mV,   GΩ · pF = ms

A plain Python number, NumPy array or tensor is read as already being in the canonical unit.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import pint
import torch

__all__ = [
    "u",
    "Quantity",
    "CANONICAL",
    "UnitError",
    "is_quantity",
    "to_canonical",
    "to_tensor",
    "as_quantity",
    "format_quantity",
    "check_finite",
]

#: The shared unit registry: ``from torchbrain import u``; ``u.ms``, ``u.mV``, ``u.nS``, ...
u = pint.UnitRegistry()
Quantity = u.Quantity

#: Canonical unit for each kind of physical quantity that models use (see module docstring).
CANONICAL = {
    "time": "ms",
    "voltage": "mV",
    "conductance": "nS",
    "current": "pA",
    "capacitance": "pF",
    "resistance": "gigaohm",
    "rate": "1/ms",
    "concentration": "mM",
    "dimensionless": "dimensionless",
}


class UnitError(ValueError):
    """A parameter was given with the wrong physical dimension or an invalid value."""


def is_quantity(value: Any) -> bool:
    """True when ``value`` is a pint quantity of any registry."""
    return isinstance(value, pint.Quantity)


def _unit(spec: str | pint.Unit) -> pint.Unit:
    return u.Unit(CANONICAL.get(spec, spec)) if isinstance(spec, str) else spec


def _tidy(x: float) -> float:
    # Unit conversion through pint's factors leaves 1 mS -> 999999.9999999999 nS; rounding to
    # 15 significant digits restores the exact decimal the user meant.
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.15g}")


def to_canonical(value: Any, unit: str | pint.Unit, *, owner: str = "", name: str = "value"):
    """Convert ``value`` to a magnitude in the canonical ``unit``.

    Parameters
    ----------
    value : pint.Quantity, number, numpy array or torch.Tensor
        A quantity is checked for dimension and converted; anything else is taken to be in
        ``unit`` already.
    unit : str
        A canonical unit (``"ms"``, ``"mV"``, ``"mV/ms"``, ...) or a kind from ``CANONICAL``.
    owner, name : str
        Module and parameter names used in error messages.

    Returns
    -------
    float, numpy.ndarray or torch.Tensor
        The magnitude in ``unit``. Tensors keep their device, dtype and autograd graph.
    """
    if is_quantity(value):
        target = _unit(unit)
        if value.dimensionality != target.dimensionality:
            where = f"{owner}: " if owner else ""
            raise UnitError(
                f"{where}parameter '{name}' expects {_dim_name(target)} (canonical unit "
                f"{target:~P}), got {value:~P}, which is {_dim_name(value.units)}"
            )
        mag = value.to(target).magnitude
        if isinstance(mag, numbers.Real) and not isinstance(mag, bool):
            return _tidy(float(mag))
        return mag
    if isinstance(value, str):
        where = f"{owner}: " if owner else ""
        raise UnitError(
            f"{where}parameter '{name}' expects a number or a quantity in {_unit(unit):~P}, "
            f"got the string {value!r}"
        )
    return value


def _dim_name(unit) -> str:
    """'a voltage', 'a time', ... or the raw dimensionality for other kinds."""
    dims = u.Unit(unit).dimensionality
    for kind, canonical in CANONICAL.items():
        if u.Unit(canonical).dimensionality == dims:
            article = "an" if kind[0] in "aeiou" else "a"
            return "a dimensionless number" if kind == "dimensionless" else f"{article} {kind}"
    return f"a quantity of dimension {dims}"


def to_tensor(
    value: Any,
    unit: str | pint.Unit,
    *,
    owner: str = "",
    name: str = "value",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """:func:`to_canonical`, then a tensor of ``dtype`` on ``device``.

    A tensor input keeps its autograd graph (it is converted with ``.to``, not copied).
    """
    mag = to_canonical(value, unit, owner=owner, name=name)
    dtype = dtype or torch.get_default_dtype()
    if isinstance(mag, torch.Tensor):
        return mag.to(device=device if device is not None else mag.device, dtype=dtype)
    if isinstance(mag, np.ndarray | numbers.Number | list | tuple):
        return torch.as_tensor(np.asarray(mag, dtype=np.float64), dtype=dtype, device=device)
    where = f"{owner}: " if owner else ""
    raise UnitError(
        f"{where}parameter '{name}' expects a number, array, tensor or quantity in "
        f"{_unit(unit):~P}, got {type(value).__name__}"
    )


def as_quantity(value: Any, unit: str | pint.Unit) -> pint.Quantity:
    """A human-facing quantity view of a canonical magnitude (a number, array or tensor)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.item() if value.ndim == 0 else value.numpy()
    return Quantity(value, _unit(unit))


def format_quantity(value: Any, unit: str | pint.Unit) -> str:
    """Short text for ``repr``: ``10.0 ms``, or ``tensor(shape=(100,)) mV`` for arrays."""
    target = _unit(unit)
    suffix = f" {target:~P}" if str(target) != "dimensionless" else ""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = float(value.detach().cpu().item())
    if isinstance(value, numbers.Real) and suffix and value != 0 and (
        abs(value) >= 1e4 or abs(value) < 1e-3
    ):
        # 1e-09 GΩ reads better as 1 Ω; 6 significant digits first, so float32's 9.99999e-10
        # does not become 1000 mΩ
        compact = Quantity(float(f"{float(value):.6g}"), target).to_compact()
        return f"{compact.magnitude:g} {compact.units:~P}"
    if isinstance(value, torch.Tensor):
        v = value.detach()
        return (
            f"tensor(shape={tuple(v.shape)}, mean={v.float().mean().item():.4g})"
            f"{suffix}"
        )
    if isinstance(value, numbers.Real):
        return f"{float(value):g}{suffix}"
    return f"{value!r}{suffix}"


def check_finite(value: Any, owner: str, name: str, *, what: str = "parameter") -> None:
    """Raise ``ValueError`` naming ``owner`` and ``name`` when ``value`` holds NaN or ±inf.

    The one finiteness check every parameter, initial value and weight passes through: an
    infinite time constant, threshold or weight gives NaN States or no dynamics later, far from
    the call that caused it.
    """
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() and not value.is_complex():
            return
        with torch.no_grad():
            finite = bool(torch.isfinite(value).all())
            if finite:
                return
            has_nan = bool(torch.isnan(value).any())
            bad = value[~torch.isfinite(value)]
            example = None if has_nan else float(bad.flatten()[0])
    else:
        arr = np.asarray(value, dtype=np.float64) if not isinstance(value, np.ndarray) else value
        if arr.dtype.kind not in "fc" or bool(np.isfinite(arr).all()):
            return
        has_nan = bool(np.isnan(arr).any())
        example = None if has_nan else float(arr[~np.isfinite(arr)].flat[0])
    where = f"{owner}: " if owner else ""
    if has_nan:
        raise ValueError(f"{where}{what} '{name}' contains NaN")
    raise ValueError(f"{where}{what} '{name}' must be finite, got {example}")
