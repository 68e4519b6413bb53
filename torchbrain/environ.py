"""The simulation environment: ``dt``, ``t`` and any other shared setting.

``context(**kw)`` sets values for a block, nests, and restores the outer values on exit::

    with tb.environ.context(dt=0.1 * u.ms):
        tb.environ.get_dt()            # <Quantity(0.1, 'millisecond')>
        with tb.environ.context(t=5.0):
            tb.environ.get("t")        # 5.0  (canonical ms)

Time-like keys (``dt``, ``t``) are stored in the canonical unit (ms) as numbers or tensors;
``get_dt()`` returns a quantity for people and ``get_dt_value()`` the float that models use.

One time-step rule for every module, populations and training layers alike: a module that takes
a ``dt`` argument (the multi-step layers of :mod:`torchbrain.training`) uses it when given;
otherwise the module reads ``dt`` here; when neither is set, the call raises a ``KeyError``
naming the module and how to set a step. No default step is assumed anywhere: time constants are
in ms, and how many steps they span is the user's choice.

Why two stores: the source of truth is a :class:`contextvars.ContextVar`, so that threads and
asyncio tasks each see their own settings. TorchDynamo cannot trace ``ContextVar.get``, so every
change is mirrored into a thread-local dict, which compiled code reads instead (and which Dynamo
guards on, recompiling when ``dt`` changes). :func:`sync_for_compiled_call` refreshes the mirror
from the current context right before a compiled call, which keeps asyncio tasks that share a
thread correct as well.

Which store a call uses is decided by :func:`torch.compiler.is_dynamo_compiling`, which is true
only inside the frame Dynamo is tracing; :func:`torch.compiler.is_compiling` is a process-wide
flag, true in *every* thread while one thread compiles, so an eager reader in another thread
would take the compiled path (raw quantities returned, a context exited on the wrong store).
A ``context`` keeps the outer values it replaced on a per-thread/per-task stack, not on the
object, so one ``context`` object may be entered by several threads or tasks at once.
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections.abc import Mapping
from typing import Any

import torch

from .units import Quantity, to_canonical

__all__ = [
    "context",
    "get",
    "get_dt",
    "get_dt_value",
    "set",
    "all",
    "reset",
    "sync_for_compiled_call",
    "DT",
    "T",
]

DT = "dt"
T = "t"
#: Keys whose values are times: quantities are converted to ms, numbers are taken as ms.
_TIME_KEYS = frozenset({DT, T})

_ENV: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "torchbrain_environ", default={}  # noqa: B039 - never mutated: every write is a new dict
)
#: The outer values each open eager ``context`` replaced, innermost last (per thread and task).
_OUTER: contextvars.ContextVar[tuple] = contextvars.ContextVar("torchbrain_environ_outer",
                                                              default=())
_MIRROR = threading.local()


def _traced() -> bool:
    # True only in the frame TorchDynamo is tracing (constant-folded there); False in eager code
    # of every thread, also while another thread compiles.
    return torch.compiler.is_dynamo_compiling()


def _mirror() -> dict:
    m = getattr(_MIRROR, "env", None)
    if m is None:
        m = _MIRROR.env = dict(_ENV.get())
    return m


def _set_mirror(values: Mapping[str, Any]) -> None:
    m = _mirror()
    m.clear()
    m.update(values)


def _canonical(key: str, value: Any) -> Any:
    if _traced():
        # Inside compiled code values are canonical numbers/tensors already (pint is not
        # traceable); validation happened when the same context ran eagerly.
        return value
    if key in _TIME_KEYS:
        value = to_canonical(value, "ms", owner="environ", name=key)
        if key == DT:
            if isinstance(value, torch.Tensor):
                if value.numel() != 1:
                    raise ValueError(
                        f"environ: 'dt' must be a scalar time step, got a tensor of shape "
                        f"{tuple(value.shape)}"
                    )
                value = float(value.item())
            value = float(value)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(
                    f"environ: 'dt' must be a positive, finite time step, got {value} ms"
                )
    return value


class context:
    """Set environment values for a ``with`` block; nested blocks restore the outer values.

    Parameters
    ----------
    **values
        ``dt`` (time step; a quantity or a number in ms), ``t`` (current time; quantity, number or
        tensor in ms), or any other named setting.
    """

    def __init__(self, **values: Any):
        self._values = {k: _canonical(k, v) for k, v in values.items()}

    def __enter__(self) -> context:
        if _traced():
            # Compiled code: the context object is local to the traced frame, so it may hold
            # the mirror's outer values itself.
            mirror = _mirror()
            self._saved = dict(mirror)
            mirror.update(self._values)
        else:
            outer = _ENV.get()
            _OUTER.set((*_OUTER.get(), outer))
            _ENV.set({**outer, **self._values})
            _set_mirror(_ENV.get())
        return self

    def __exit__(self, *exc) -> None:
        if _traced():
            mirror = _mirror()
            mirror.clear()
            mirror.update(self._saved)
        else:
            stack = _OUTER.get()
            if not stack:
                raise RuntimeError("environ.context: __exit__ without a matching __enter__")
            _OUTER.set(stack[:-1])
            _ENV.set(stack[-1])
            _set_mirror(stack[-1])


def _current() -> Mapping[str, Any]:
    return _mirror() if _traced() else _ENV.get()


def get(name: str, default: Any = ..., *, desc: str | None = None) -> Any:
    """The value of ``name`` in the current context (time keys in ms).

    Raises ``KeyError`` naming the key and how to set it when it is unset and no default is given.
    """
    env = _current()
    if name in env:
        return env[name]
    if default is not ...:
        return default
    who = f"{desc} needs" if desc else "torchbrain needs"
    raise KeyError(
        f"{who} the environment value '{name}', which is not set; wrap the call in "
        f"`with tb.environ.context({name}=...)`"
    )


def get_dt_value(desc: str | None = None) -> float:
    """The time step in ms as a Python float (what models use)."""
    env = _current()
    if DT not in env:
        who = f"{desc} needs" if desc else "torchbrain needs"
        raise KeyError(
            f"{who} the time step 'dt', which is not set; wrap the simulation in "
            "`with tb.environ.context(dt=0.1 * u.ms)` (or call tb.environ.set(dt=...))"
        )
    return env[DT]


def get_dt() -> Quantity:
    """The time step as a quantity (``0.1 ms``). Raises ``KeyError`` when unset."""
    return Quantity(get_dt_value(), "ms")


def set(**values: Any) -> None:  # noqa: A001 - mirrors brainstate.environ.set
    """Set values for the rest of the current context (the outermost: globally)."""
    _ENV.set({**_ENV.get(), **{k: _canonical(k, v) for k, v in values.items()}})
    _set_mirror(_ENV.get())


def all() -> dict[str, Any]:  # noqa: A001 - mirrors brainstate.environ.all
    """A copy of every value in the current context."""
    return dict(_current())


def reset() -> None:
    """Clear every value set with :func:`set` in the current context."""
    _ENV.set({})
    _set_mirror({})


def sync_for_compiled_call() -> None:
    """Copy the current context into the thread-local mirror read by compiled code."""
    _set_mirror(_ENV.get())
