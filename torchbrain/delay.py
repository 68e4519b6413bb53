r"""Transmission delays: a ring buffer of the last ``D`` steps of a signal.

A delay of ``d`` is stored as a whole number of time steps ``D``, so that a value pushed at step
``k`` is returned at step ``k + D``, exactly once. The rule that turns ``d`` into ``D`` is

.. math::

    D = \Big\lfloor \frac{d}{\Delta t} + \frac{1}{2} \Big\rfloor,

the nearest whole number of steps, exact halves rounded **up** (0.25 ms at ``dt = 0.1 ms`` is
3 steps, 0.05 ms is 1 step, 0.04 ms is 0 steps). A ratio within a relative ``1e-9`` of an integer
or a half is snapped to it first, so that floating-point quotients such as
``0.25 / 0.1 = 2.4999999999999996`` or ``0.3 / 0.1 = 2.9999999999999996`` are not flipped to the
other side. A delay that rounds to 0 steps means "no extra delay" (the module is the identity).
See :func:`delay_steps`.

Why whole steps: brainpy.state's ``AlignPostProj(delay=d)`` with ``d`` not a multiple of ``dt``
linearly interpolates the delayed spike vector (weights 0.5/0.5 for 0.25 ms at 0.1 ms); its
event-driven connectivity then treats any nonzero float as a spike, so each spike is **delivered
twice** (the conductance jumps to 1.0 and then 1.98 instead of once to 1.0). Here a spike is never
split: it is delivered once, ``D`` steps later.

Memory: the buffer holds ``(D + 1) x batch x size`` values (one per step of the delay plus the
newest). Delays are scalars per module (one per projection, i.e. per connection group);
per-synapse delays are not supported (split the connectivity into projections with one delay
each).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from . import state as _state
from .describe import ParamDescriber
from .dynamics import Dynamics
from .environ import DT, get_dt_value
from .environ import get as env_get
from .module import check_fits
from .state import ShortTermState
from .units import is_quantity, to_canonical, to_tensor

__all__ = ["Delay", "SpikeDelay", "delay_steps"]

#: Relative tolerance used to snap ``delay / dt`` to an integer or a half before rounding.
_SNAP = 1e-9


def delay_steps(delay, dt) -> int:
    r"""The whole number of time steps ``D`` that a delay occupies (see the module docstring).

    Parameters
    ----------
    delay : quantity [time] or float
        The delay (plain numbers in ms); must be >= 0 and finite.
    dt : quantity [time] or float
        The time step (plain numbers in ms); must be positive.

    Returns
    -------
    int
        :math:`\lfloor d/\Delta t + 1/2 \rfloor` (nearest step, halves up), after snapping a
        ratio within a relative 1e-9 of an integer or half to it.

    Examples
    --------
    >>> delay_steps(0.25, 0.1), delay_steps(0.3, 0.1), delay_steps(0.04, 0.1)
    (3, 3, 0)
    """
    d = float(to_canonical(delay, "ms", owner="delay_steps", name="delay"))
    h = float(to_canonical(dt, "ms", owner="delay_steps", name="dt"))
    if not math.isfinite(d) or d < 0:
        raise ValueError(f"delay_steps: 'delay' must be a finite time >= 0, got {d} ms")
    if not math.isfinite(h) or h <= 0:
        raise ValueError(f"delay_steps: 'dt' must be a positive time step, got {h} ms")
    ratio = d / h
    return int(math.floor(ratio + 0.5 + _SNAP * max(1.0, ratio)))


class Delay(Dynamics):
    r"""A fixed transmission delay: returns, at every step, the value pushed ``D`` steps ago.

    .. math::

        y(n) = x(n - D), \qquad x(n) = 0 \text{ for } n < 0,
        \qquad D = \lfloor d/\Delta t + 1/2 \rfloor

    The last ``D + 1`` inputs are kept in a ring buffer (a ``ShortTermState`` of shape
    ``(D + 1, *batch, *size)``) with a write pointer (a 0-d int64 ``ShortTermState``); the delay is
    therefore part of the simulation state and is saved and restored exactly by
    :func:`torchbrain.state_dict` / :func:`torchbrain.load_state_dict`.

    Parameters
    ----------
    in_size : int or tuple of int
        Shape of the delayed signal (e.g. the number of presynaptic neurons).
    delay : quantity [time] or float
        The delay (plain numbers in ms); a scalar >= 0. It is converted to ``D`` whole steps of
        the ``dt`` in force when the States are initialised (see :func:`delay_steps`); a delay
        that rounds to 0 steps means no extra delay.
    name : str, optional
        A label used in messages.
    device, dtype : optional
        Factory arguments (the buffer's dtype; spikes are stored as this float type).

    Attributes
    ----------
    steps : int or None
        ``D``, known after ``init_state`` (``None`` before).
    buffer : ShortTermState
        The ring buffer, shape ``(D + 1, *batch, *size)``, zeros at initialisation.
    ptr : ShortTermState
        The slot the next value is written to.

    Raises
    ------
    ValueError
        At construction for a negative, infinite, NaN or non-scalar delay; at the first
        ``init_state`` when ``dt`` is not set (``D`` depends on it; a later reset outside a
        ``dt`` context keeps the previous ``D``); at ``update`` when ``dt`` changed to a value
        that gives another ``D`` than the one the buffer was sized for.

    Notes
    -----
    Writes follow the State rule: with autograd enabled the buffer is rebound (``index_copy``,
    which copies the ``D + 1`` slots, so BPTT and checkpointed rollouts through the delay work);
    under ``torch.no_grad()``/``torch.inference_mode()`` (as in
    :class:`~torchbrain.drivers.runner.NetworkRunner`) the new slot is written in place
    (``index_copy_``, cost ``O(size)`` per step).

    Unlike brainpy.state (whose fractional delays interpolate spikes, which its event
    connectivity then delivers twice), a value is never split between steps and is returned
    exactly once.

    Examples
    --------
    >>> import torch, torchbrain as tb
    >>> from torchbrain import u
    >>> from torchbrain.delay import Delay
    >>> d = Delay(2, 0.25 * u.ms)
    >>> with tb.environ.context(dt=0.1 * u.ms):
    ...     _ = tb.init_all_states(d)
    ...     out = [d(torch.tensor([float(k == 0), 0.0])) for k in range(5)]
    >>> d.steps, [int(o[0]) for o in out]
    (3, [0, 0, 0, 1, 0])
    """

    def __init__(self, in_size, delay, *, name: str | None = None, device=None, dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        if isinstance(delay, bool) or delay is None:
            raise TypeError(
                f"{self._name()}: parameter 'delay' must be a time (a quantity, or a number in "
                f"ms), got {delay!r}"
            )
        value = to_tensor(delay, "ms", owner=self._name(), name="delay", dtype=torch.float64)
        if value.numel() != 1:
            raise ValueError(
                f"{self._name()}: parameter 'delay' must be a scalar (one delay per projection, "
                f"i.e. per connection group), got shape {tuple(value.shape)}; per-synapse delays "
                "are not supported: split the connectivity into projections with one delay each"
            )
        d = float(value.reshape(()).item())
        if math.isnan(d) or math.isinf(d) or d < 0:
            raise ValueError(
                f"{self._name()}: parameter 'delay' must be a finite time >= 0, got {d:g} ms"
            )
        self.delay = self._register_parameter_with_unit("delay", d, "ms", nonnegative=True)
        self._delay_ms = d
        self.steps: int | None = None
        self._init_dt: float | None = None
        self.buffer = ShortTermState(None)
        self.ptr = ShortTermState(None)

    def _repr_config(self) -> dict[str, Any]:
        return {**super()._repr_config(), "steps": self.steps}

    # ----------------------------------------------------------------- States
    def init_state(self, batch_size=None):
        # a reset outside a dt context keeps the step count of the previous initialisation
        dt = env_get(DT, None)
        dt = self._init_dt if dt is None else dt
        if dt is None:
            raise RuntimeError(
                f"{self._name()}: a delay of {self._delay_ms:g} ms is stored as a whole number "
                "of time steps, so the time step must be known when the States are initialised; "
                "call tb.init_all_states(model) inside `with tb.environ.context(dt=...)`"
            )
        self.steps = delay_steps(self._delay_ms, dt)
        self._init_dt = float(dt)
        shape = self._state_shape(batch_size)
        fac = self._factory_like_states()
        check_fits(self._name(), f"the buffer of a {self._delay_ms:g} ms delay ({self.steps} "
                   f"steps of {dt:g} ms)", (self.steps + 1, *shape), fac["dtype"], fac["device"],
                   "check the unit of parameter 'delay' (a number is read in ms) and dt")
        self.buffer = ShortTermState(torch.zeros((self.steps + 1, *shape), **fac))
        self.ptr = ShortTermState(torch.zeros((), dtype=torch.int64, device=fac["device"]))

    def _batch_size_from_states(self) -> None:
        # The buffer has a leading slot dimension that Dynamics' default would read as a batch.
        buf = self.buffer
        if isinstance(buf, torch.Tensor):
            self.steps = buf.shape[0] - 1
            extra = buf.ndim - 1 - len(self.varshape)
            self._batch_size = buf.shape[1] if extra == 1 else None
            self._initialised = True

    def _check_dt(self) -> None:
        dt = get_dt_value(desc=self._name())
        if dt != self._init_dt:
            if delay_steps(self._delay_ms, dt) != self.steps:
                raise RuntimeError(
                    f"{self._name()}: the buffer holds {self.steps} steps of {self._delay_ms:g} "
                    f"ms sized for dt = {self._init_dt} ms, but dt is now {dt} ms; call "
                    "tb.init_all_states(model) again inside the new dt context"
                )
            self._init_dt = dt

    # ------------------------------------------------------------------- step
    def update(self, x):
        """Push ``x`` (shape broadcastable to ``(*batch, *size)``) and return the value pushed
        ``D`` steps ago (zeros during the first ``D`` steps)."""
        self._check_ready()
        self._check_dt()
        buf = self.buffer
        if is_quantity(x):
            x = to_tensor(x, "dimensionless", owner=self._name(), name="x")
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(x, dtype=buf.dtype, device=buf.device)
        self._check_input(x)
        x = x.to(buf.dtype).expand(buf.shape[1:])
        if self.steps == 0:
            # no extra delay: the value goes straight through (a view, no copy)
            self.buffer = x.unsqueeze(0)
            return x
        slot = self.ptr.reshape(1)
        if torch.is_grad_enabled() or _state._WRITE_TRACKERS:
            # autograd (or a checkpointed rollout that replays States) needs a rebinding
            self.buffer = buf.index_copy(0, slot, x.unsqueeze(0))
        else:
            buf.index_copy_(0, slot, x.unsqueeze(0))
        self.ptr = torch.remainder(self.ptr + 1, self.steps + 1)
        # after the push the next slot to be overwritten holds the oldest value: D steps ago
        return self.buffer.index_select(0, self.ptr.reshape(1)).squeeze(0)

    def retrieve(self, steps_ago: int | None = None) -> torch.Tensor:
        """The value pushed ``steps_ago`` steps before the last push (``0``: the last one;
        default ``D``: what the last :meth:`update` returned). ``0 <= steps_ago <= D``."""
        self._check_ready()
        k = self.steps if steps_ago is None else steps_ago
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= self.steps:
            raise ValueError(
                f"{self._name()}: 'steps_ago' must be an int in [0, {self.steps}], got {k!r}"
            )
        slot = torch.remainder(self.ptr - 1 - k, self.steps + 1).reshape(1)
        return self.buffer.index_select(0, slot).squeeze(0)


#: The same module, named for its most common use (delaying presynaptic spikes).
SpikeDelay = Delay


def as_delay(owner: str, delay, size, *, like: torch.nn.Module | None = None) -> Delay | None:
    """Build (or check) the delay module of a projection.

    ``delay`` may be ``None`` (no delay), a :class:`Delay` (its size must be ``size``), a
    ``Delay.desc(...)`` descriptor, or a time (quantity or ms), which builds a ``Delay(size,
    delay)`` with the dtype and device of ``like`` (the connectivity). Errors are raised now, at
    the projection's construction.
    """
    if delay is None:
        return None
    if isinstance(delay, ParamDescriber):
        if not (isinstance(delay.cls, type) and issubclass(delay.cls, Delay)):
            raise TypeError(
                f"{owner}: 'delay' descriptor must describe a Delay, got {delay.cls.__name__}"
            )
        delay = delay()
    if isinstance(delay, Delay):
        if size is not None and delay.num != size:
            raise ValueError(
                f"{owner}: the delay buffers {delay.num} values per step but the delayed "
                f"presynaptic signal has {size}"
            )
        return delay
    if isinstance(delay, torch.nn.Module):
        raise TypeError(
            f"{owner}: 'delay' must be a time, a Delay or None, got {type(delay).__name__}"
        )
    if size is None:
        raise TypeError(
            f"{owner}: cannot size the delay buffer: the connectivity declares no 'n_pre'; pass "
            "delay=Delay(n_pre, d) instead of a time"
        )
    return Delay(size, delay, **_factory_of(like))


def _factory_of(module: torch.nn.Module | None) -> dict[str, Any]:
    """The dtype and device of a module's first floating-point tensor (defaults otherwise)."""
    if module is not None:
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                return {"dtype": t.dtype, "device": t.device}
    return {"dtype": None, "device": None}
