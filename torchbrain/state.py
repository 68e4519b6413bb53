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

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

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
]


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
    return net


def reset_all_states(net: nn.Module, batch_size: int | None = None) -> nn.Module:
    """Reset every State of ``net`` to its initial value (rebinding, so old graphs are freed).

    ``batch_size`` may differ from the one used before: this is the way to change it.
    """
    _check_batch_size(batch_size)
    for _, mod in _owners(net):
        mod.reset_state(batch_size)
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


def _short_term_slots(net: nn.Module):
    """(qualified name, owner module, attribute) for every State left out of state_dict."""
    for prefix, mod in _owners(net):
        for name, k in mod._state_kinds.items():
            if not k.persistent:
                yield (f"{prefix}.{name}" if prefix else name), mod, name


def state_dict(net: nn.Module, states: bool = True) -> OrderedDict[str, Any]:
    """A copy of ``net.state_dict()`` plus, with ``states=True``, every short-term State.

    The result restores a running simulation exactly with :func:`load_state_dict`.
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
    return sd


def load_state_dict(net: nn.Module, sd: dict[str, Any], strict: bool = True):
    """Load parameters, persistent buffers and short-term States saved by :func:`state_dict`.

    States are rebound (never written in place), converted to each State's current device; their
    dtype and shape are taken from the saved values, so a batch size is restored with them.
    """
    sd = dict(sd)
    missing_states = []
    for qual, mod, name in _short_term_slots(net):
        if qual not in sd:
            missing_states.append(qual)
            continue
        value = sd.pop(qual)
        current = getattr(mod, name)
        if value is not None:
            device = current.device if current is not None else None
            value = value.detach().clone().to(device=device)
        mod._set_state_value(name, value)
        if hasattr(mod, "_batch_size_from_states"):
            mod._batch_size_from_states()
    result = net.load_state_dict(sd, strict=strict)
    if strict and missing_states:
        raise RuntimeError(
            "load_state_dict: the saved dict has no value for the States "
            f"{missing_states}; save it with tb.state_dict(net, states=True)"
        )
    return result


def detach_states(net: nn.Module) -> nn.Module:
    """Detach every State of ``net`` from its autograd graph (for truncated BPTT)."""
    for _, mod in _owners(net):
        for name in mod._state_kinds:
            value = getattr(mod, name)
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                mod._set_state_value(name, value.detach())
    return net
