"""State kinds and the collective operations over the States of a network.

Dynamic variables (membrane potentials, conductances, traces) are tensors registered on a module
as buffers, each tagged with a *kind*. The kinds mirror ``brainstate``:

==================  ===============================================  ==========================
kind                what it holds                                    stored as
==================  ===============================================  ==========================
``ShortTermState``  values that live for one run (e.g. spike times)  buffer, not in state_dict
``HiddenState``     a model's dynamical variables (V, g, a, ...)     buffer, not in state_dict
``LongTermState``   values that outlive a run (plastic weights)      buffer, in state_dict
``ParamState``      trainable values                                 ``nn.Parameter``
==================  ===============================================  ==========================

Short-term States are left out of ``Module.state_dict()`` (as an RNN's hidden state is):
``torchbrain.state_dict(net)`` adds them, and ``torchbrain.load_state_dict`` restores a running
simulation exactly.

Inside a module, a State is declared by assigning a kind wrapper::

    self.V = tb.HiddenState(torch.full(shape, -65.0))   # registers buffer 'V' of kind HiddenState
    self.V = v_new                                      # later writes rebind the buffer

Write rule: with autograd enabled, rebind (``self.V = v_new``); under ``torch.no_grad`` an in-place
``copy_`` is allowed (static addresses for CUDA graphs). In-place writes under autograd break BPTT.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import _IncompatibleKeys

__all__ = [
    "StateKind",
    "ShortTermState",
    "HiddenState",
    "LongTermState",
    "ParamState",
    "init_all_states",
    "reset_all_states",
    "states",
    "state_dict",
    "load_state_dict",
    "detach_states",
    "track_state_writes",
    "simulation_time",
    "set_simulation_time",
    "TIME_KEY",
]

#: Key of the simulation time (ms, a float64 scalar tensor) in :func:`state_dict`'s result.
TIME_KEY = "_torchbrain.t"
#: Attribute of the root module that holds its simulation time (ms) between runs.
_TIME_ATTR = "_torchbrain_t"


def simulation_time(net: nn.Module) -> float:
    """The time (ms) the simulation of ``net`` has reached: 0 after ``init_all_states`` or
    ``reset_all_states``, advanced by ``NetworkRunner.run``, saved and restored with the States.
    """
    return float(net.__dict__.get(_TIME_ATTR, 0.0))


def set_simulation_time(net: nn.Module, t: float) -> None:
    """Set the time (ms) the next ``NetworkRunner.run`` of ``net`` starts from by default."""
    t = float(t)
    if not math.isfinite(t):
        raise ValueError(f"set_simulation_time: 't' must be a finite time in ms, got {t}")
    # __dict__, not setattr: a plain attribute of the module, never a buffer or a submodule
    net.__dict__[_TIME_ATTR] = t


class StateKind:
    """Base of the State kinds. An instance wraps the initial value of a State being declared.

    Parameters
    ----------
    value : torch.Tensor or None
        The State's value. ``None`` declares the State without allocating it (``init_state``
        allocates it later).
    """

    #: Whether States of this kind are saved by ``Module.state_dict()``.
    persistent: bool = False

    __slots__ = ("value",)

    def __init__(self, value: torch.Tensor | None = None):
        if value is not None and not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{type(self).__name__} wraps a torch.Tensor or None, got {type(value).__name__}"
            )
        self.value = value

    def __repr__(self) -> str:
        v = self.value
        text = "None" if v is None else f"{str(v.dtype).removeprefix('torch.')}{list(v.shape)}"
        return f"{type(self).__name__}({text})"


class ShortTermState(StateKind):
    """A value that lives for one run and is reset between runs (not in ``state_dict``)."""


class HiddenState(ShortTermState):
    """A dynamical variable of a neuron or synapse: V, g, adaptation, gating variables."""


class LongTermState(StateKind):
    """A value that outlives a run, such as a plastic weight; saved by ``state_dict``."""

    persistent = True


class ParamState(LongTermState):
    """A trainable value, registered as an ``nn.Parameter``."""


#: Open :func:`track_state_writes` records; empty (and so free to check) in normal runs.
_WRITE_TRACKERS: list[dict] = []


class track_state_writes:
    """Record the States written inside a ``with`` block, with their value before the first write.

    Yields a dict ``{(id(module), name): (module, name, old_value)}``. Drivers that re-run steps
    (checkpointed rollouts) use it to find the States a step touches without being told.
    """

    def __enter__(self) -> dict:
        self.record: dict = {}
        _WRITE_TRACKERS.append(self.record)
        return self.record

    def __exit__(self, *exc) -> None:
        _WRITE_TRACKERS.remove(self.record)


def _note_state_write(module: nn.Module, name: str) -> None:
    for record in _WRITE_TRACKERS:
        key = (id(module), name)
        if key not in record:
            record[key] = (module, name, getattr(module, name))


def _owners(net: nn.Module):
    # A State owner is a module that keeps the registry of its States' kinds, ``_state_kinds``
    # (every torchbrain.module.Module does): read by that mark, not by class, so that this
    # file stays below module.py (which builds on the State kinds defined here).
    for prefix, mod in net.named_modules(remove_duplicate=True):
        if isinstance(mod.__dict__.get("_state_kinds"), dict):
            yield prefix, mod


def init_all_states(net: nn.Module, batch_size: int | None = None) -> nn.Module:
    """Allocate and initialise every State of ``net`` and its submodules.

    Parameters
    ----------
    net : nn.Module
        Any module; torchbrain modules inside it are initialised, others are left alone.
    batch_size : int, optional
        With a batch size, States have shape ``(batch_size, *varshape)``; without, ``varshape``.

    Returns
    -------
    nn.Module
        ``net``, for chaining.
    """
    _check_batch_size(batch_size)
    for _, mod in _owners(net):
        mod.init_state(batch_size)
    set_simulation_time(net, 0.0)
    return net


def reset_all_states(net: nn.Module, batch_size: int | None = None) -> nn.Module:
    """Reset every State of ``net`` to its initial value (rebinding, so old graphs are freed).

    ``batch_size`` may differ from the one used before: this is the way to change it.
    """
    _check_batch_size(batch_size)
    for _, mod in _owners(net):
        mod.reset_state(batch_size)
    set_simulation_time(net, 0.0)
    return net


def _check_batch_size(batch_size):
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")


def states(net: nn.Module, kind: type[StateKind] | None = None) -> OrderedDict[str, torch.Tensor]:
    """Every State of ``net`` of ``kind`` (subclasses included), by qualified name.

    ``states(net, ParamState)`` returns the trainable parameters, including plain
    ``nn.Parameter`` objects of non-torchbrain modules.
    """
    if kind is not None and not (isinstance(kind, type) and issubclass(kind, StateKind)):
        raise TypeError(f"states(): kind must be a StateKind subclass, got {kind!r}")
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for prefix, mod in _owners(net):
        for name, k in mod._state_kinds.items():
            if kind is None or issubclass(k, kind):
                out[f"{prefix}.{name}" if prefix else name] = getattr(mod, name)
    if kind is not None and issubclass(ParamState, kind):
        for name, p in net.named_parameters():
            out.setdefault(name, p)
    return out


def _rebound_slots(net: nn.Module):
    """(qualified name, owner module, attribute) for every State a load rebinds: all but
    ParamStates (a run leaves inference tensors behind, which an in-place copy cannot write)."""
    for prefix, mod in _owners(net):
        for name, k in mod._state_kinds.items():
            if not issubclass(k, ParamState):
                yield (f"{prefix}.{name}" if prefix else name), mod, name


def _short_term_slots(net: nn.Module):
    """(qualified name, owner module, attribute) for every State left out of state_dict."""
    for prefix, mod in _owners(net):
        for name, k in mod._state_kinds.items():
            if not k.persistent:
                yield (f"{prefix}.{name}" if prefix else name), mod, name


def state_dict(net: nn.Module, states: bool = True) -> OrderedDict[str, Any]:
    """A copy of ``net.state_dict()`` plus, with ``states=True``, every short-term State and the
    simulation time (key :data:`TIME_KEY`, see :func:`simulation_time`).

    The result restores a running simulation exactly with :func:`load_state_dict`: a run resumed
    from it starts at the saved time without passing ``t0``.
    """
    # A snapshot, not live references: plastic weights written in place (STDP under no_grad)
    # must not change a dict saved earlier.
    sd = OrderedDict(
        (k, v.detach().clone() if isinstance(v, torch.Tensor) else v)
        for k, v in net.state_dict().items()
    )
    if states:
        for qual, mod, name in _short_term_slots(net):
            value = getattr(mod, name)
            sd[qual] = None if value is None else value.detach().clone()
        sd[TIME_KEY] = torch.tensor(simulation_time(net), dtype=torch.float64)
    return sd


def _same_but_batch(saved: tuple, current: tuple) -> bool:
    """Shapes equal but for one batch dimension added, removed or resized (a population's
    ``(B, N)``, a delay line's ``(L, B, N)``).

    A 1-D State never changes length: a (50,) V is not a batch of a (200,) population's V.
    """
    if saved == current:
        return True
    if abs(len(saved) - len(current)) == 1:
        longer, shorter = (saved, current) if len(saved) > len(current) else (current, saved)
        return any(longer[:k] + longer[k + 1:] == shorter for k in range(len(longer)))
    return len(saved) == len(current) >= 2 and sum(
        a != b for a, b in zip(saved, current, strict=True)) == 1


def _state_problem(qual: str, mod: nn.Module, current, value) -> str | None:
    """Why saved ``value`` cannot replace State ``qual`` (None: it can)."""
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        return f"'{qual}' must be a tensor or None, got {type(value).__name__}"
    if current is not None:
        if value.dtype != current.dtype:
            return f"'{qual}' has dtype {value.dtype}, the module's State has {current.dtype}"
        name = qual.rpartition(".")[2]
        # a hand-off State (e.g. Dynamics.pending_delta) is empty or full from step to step
        shape_free = name in getattr(mod, "_shape_free_states", ())
        if not shape_free and not _same_but_batch(tuple(value.shape), tuple(current.shape)):
            return (f"'{qual}' has shape {tuple(value.shape)}, the module's State has "
                    f"{tuple(current.shape)} (only a batch dimension may differ)")
    if (value.is_floating_point() or value.is_complex()) and not bool(
            torch.isfinite(value).all()):
        return f"'{qual}' contains NaN or inf"
    return None


def load_state_dict(net: nn.Module, sd: dict[str, Any], strict: bool = True):
    """Load parameters, persistent buffers, short-term States and the simulation time saved by
    :func:`state_dict`; atomic: on any error ``net`` is left exactly as it was.

    Every entry is checked before anything is written: each State against the module's current
    State (same dtype; same shape, a batch dimension excepted, so a batch size is
    restored with the States; finite values), each parameter and persistent buffer for its
    shape; missing and (with ``strict``) unexpected keys are reported together, in one
    ``RuntimeError`` naming every key. States are rebound (never written in place) and moved to
    each State's current device.
    """
    sd = dict(sd)
    saved_time = sd.pop(TIME_KEY, None)
    problems: list[str] = []
    missing: list[str] = []
    loads = []
    rebound = set()
    for qual, mod, name in _rebound_slots(net):
        rebound.add(qual)
        if qual not in sd:
            missing.append(qual)
            continue
        value = sd.pop(qual)
        problem = _state_problem(qual, mod, getattr(mod, name), value)
        if problem:
            problems.append(problem)
        loads.append((mod, name, value))
    own = {k: v for k, v in net.state_dict().items() if k not in rebound}
    for key, current in own.items():
        if key not in sd:
            missing.append(key)
            continue
        value = sd[key]
        if isinstance(current, torch.Tensor):
            if not isinstance(value, torch.Tensor):
                problems.append(f"'{key}' must be a tensor, got {type(value).__name__}")
            elif value.shape != current.shape:
                problems.append(f"'{key}' has shape {tuple(value.shape)}, the module's has "
                                f"{tuple(current.shape)}")
            elif value.is_floating_point() and bool(torch.isnan(value).any()):
                problems.append(f"'{key}' contains NaN")
    unexpected = [k for k in sd if k not in own]
    if saved_time is not None:
        t = float(saved_time.item() if isinstance(saved_time, torch.Tensor) else saved_time)
        if not math.isfinite(t):
            problems.append(f"'{TIME_KEY}' (the simulation time) must be finite, got {t}")
    if strict and missing:
        problems.append(f"missing keys {missing} (save with tb.state_dict(net, states=True))")
    if strict and unexpected:
        problems.append(f"unexpected keys {unexpected}")
    if problems:
        raise RuntimeError(
            f"load_state_dict: nothing was loaded into {type(net).__name__}: "
            + "; ".join(problems)
        )
    backup = state_dict(net, states=True)
    try:
        for mod, name, value in loads:
            current = getattr(mod, name)
            if value is not None:
                device = current.device if current is not None else None
                value = value.detach().clone().to(device=device)
            mod._set_state_value(name, value)
            if hasattr(mod, "_batch_size_from_states"):
                mod._batch_size_from_states()
        net.load_state_dict(sd, strict=False)
    except BaseException:
        _restore(net, backup)
        raise
    if saved_time is not None:
        set_simulation_time(net, t)
    return _IncompatibleKeys(missing, unexpected)


def _restore(net: nn.Module, backup: dict[str, Any]) -> None:
    """Put back a :func:`state_dict` snapshot after a failed load (no checks, same module)."""
    for qual, mod, name in _rebound_slots(net):
        mod._set_state_value(name, backup.pop(qual))
        if hasattr(mod, "_batch_size_from_states"):
            mod._batch_size_from_states()
    backup.pop(TIME_KEY, None)
    net.load_state_dict(backup, strict=False)


def detach_states(net: nn.Module) -> nn.Module:
    """Detach every State of ``net`` from its autograd graph (for truncated BPTT)."""
    for _, mod in _owners(net):
        for name in mod._state_kinds:
            value = getattr(mod, name)
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                mod._set_state_value(name, value.detach())
    return net
