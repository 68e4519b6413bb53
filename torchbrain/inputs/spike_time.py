r"""``SpikeTime``: spikes emitted at given times by given units."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..dynamics import Dynamics
from ..environ import get_dt_value
from ..units import is_quantity
from ._common import current_time, step_index, times_ms

__all__ = ["SpikeTime"]

#: Spike times are stored as integers of this many ms (1 ps), so that converting them to steps
#: is exact integer arithmetic: 0.3 ms at dt = 0.1 ms is step 3 with every rounding rule.
_TICK = 1e-9
_ROUNDING = ("round", "floor", "ceil")


class SpikeTime(Dynamics):
    r"""A population whose units spike at prescribed times.

    Unit ``indices[k]`` spikes at the step :math:`n_k = \mathrm{rnd}(t_k / \Delta t)` where
    ``rnd`` is ``time_as_step`` (round half to even, floor or ceil). At time :math:`t` the module
    returns, for the step :math:`i = \mathrm{round}(t/\Delta t)`,

    .. math::

        s_j(t) = w \cdot \mathbb{1}\big[\exists k:\ \mathrm{indices}_k = j,\ n_k = i\big].

    Parameters
    ----------
    in_size : int or tuple of int
        Shape of the population; ``indices`` are flat (row-major) indices into it.
    indices : sequence of int or tensor
        Unit of each spike; ``0 <= index < prod(in_size)``.
    times : quantity [time] or sequence
        Time of each spike (plain numbers in ms); must be >= 0. Same length as ``indices``.
    time_as_step : {'round', 'floor', 'ceil'}, default 'round'
        How a time between grid points becomes a step. Times are converted with exact integer
        arithmetic (1 ps resolution), so a time on the grid (``0.3 ms`` with ``dt = 0.1 ms``)
        maps to its step whatever the rule.
    weight : float, default 1.0
        Value of an emitted spike (dimensionless). Two spikes of one unit that fall on the same
        step give one spike.
    name, device, dtype : optional

    Notes
    -----
    ``update()`` reads ``t`` and ``dt`` from :mod:`torchbrain.environ` and returns the spikes of
    the step, shape ``in_size`` (or ``(batch, *in_size)`` after ``init_state(batch_size)``; the
    same spikes in every batch row). The spike table is built lazily per ``dt``: a CSR table
    (spikes sorted by step, row pointers, and the largest row), so a step costs
    :math:`O(\max \text{spikes per step})`. Inside ``torch.compile`` a table that was not built
    eagerly before (call the module once, or :meth:`prepare`) is replaced by an
    :math:`O(\text{spikes})` comparison that gives the same result. Unlike the reference, the table
    does not need ``dt`` at construction, and N-d populations are supported.

    Examples
    --------
    >>> import torchbrain as tb
    >>> from torchbrain import u
    >>> from torchbrain.inputs import SpikeTime
    >>> import torch
    >>> from torchbrain.drivers.loops import time_range
    >>> src = SpikeTime(3, indices=[0, 2, 0], times=[1.0, 1.0, 2.5] * u.ms)
    >>> rows = []
    >>> with tb.environ.context(dt=0.5 * u.ms):
    ...     for t in time_range(3 * u.ms):
    ...         with tb.environ.context(t=t):
    ...             rows.append(src())
    >>> torch.stack(rows).nonzero().tolist()     # [step, unit]
    [[2, 0], [2, 2], [5, 0]]
    """

    def __init__(self, in_size, indices, times, time_as_step: str = "round", weight=1.0, *,
                 name: str | None = None, device=None, dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        owner = self._name()
        if time_as_step not in _ROUNDING:
            raise ValueError(f"{owner}: parameter 'time_as_step' must be one of {_ROUNDING}, "
                             f"got {time_as_step!r}")
        self.time_as_step = time_as_step
        t = times_ms(times, owner, "times")
        if is_quantity(indices):
            raise TypeError(f"{owner}: parameter 'indices' must be integers, got a quantity")
        idx = np.asarray(
            indices.detach().cpu() if isinstance(indices, torch.Tensor) else indices
        ).ravel()
        if idx.size and not (np.issubdtype(idx.dtype, np.integer) or np.all(idx == np.round(idx))):
            raise ValueError(f"{owner}: parameter 'indices' must hold integers")
        idx = idx.astype(np.int64)
        if len(idx) != len(t):
            raise ValueError(f"{owner}: 'indices' and 'times' must have the same length, got "
                             f"{len(idx)} indices and {len(t)} times")
        if len(t) and (not all(math.isfinite(x) for x in t) or min(t) < 0):
            raise ValueError(f"{owner}: parameter 'times' must hold finite times >= 0, got "
                             f"{min(t):g} ms as the smallest")
        if len(idx) and (idx.min() < 0 or idx.max() >= self.num):
            bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
            raise ValueError(f"{owner}: parameter 'indices' must be in [0, {self.num}) for a "
                             f"population of shape {self.varshape}, got {bad}")
        self.num_spikes = len(t)
        ticks = np.round(np.asarray(t, dtype=np.float64) / _TICK)
        if len(ticks) and ticks.max() >= 2**62:
            raise ValueError(f"{owner}: spike times must be below {2**62 * _TICK:g} ms")
        device = self._factory["device"]
        self.register_buffer("indices", torch.as_tensor(idx, device=device), persistent=True)
        self.register_buffer("time_ticks", torch.as_tensor(ticks.astype(np.int64), device=device),
                             persistent=True)
        self.weight = self._register_parameter_with_unit("weight", weight, "dimensionless")
        self._tables: dict = {}

    def _repr_config(self):
        return {**super()._repr_config(), "num_spikes": self.num_spikes,
                "time_as_step": self.time_as_step}

    def init_state(self, batch_size=None):
        self._state_shape(batch_size)

    # ------------------------------------------------------------------ tables
    def _steps(self, dt: float) -> torch.Tensor:
        """The step of every spike (int64), exact integer rounding of ``ticks / dt_ticks``."""
        d = max(int(round(dt / _TICK)), 1)
        q = torch.div(self.time_ticks, d, rounding_mode="floor")
        r = self.time_ticks - q * d
        if self.time_as_step == "floor":
            return q
        if self.time_as_step == "ceil":
            return q + (r > 0).to(torch.int64)
        up = (2 * r > d) | ((2 * r == d) & (q % 2 == 1))  # half to even, as numpy/jax
        return q + up.to(torch.int64)

    def prepare(self, dt=None) -> None:
        """Build the spike table for ``dt`` (default: the environment's) now, eagerly."""
        from ._common import resolve_dt

        self._table(resolve_dt(dt, self._name()))

    def _table(self, dt: float):
        key = (dt, str(self.indices.device))
        table = self._tables.get(key)
        if table is None and not torch.compiler.is_dynamo_compiling():
            steps = self._steps(dt)
            order = torch.argsort(steps, stable=True)
            n_rows = int(steps.max().item()) + 1
            counts = torch.bincount(steps, minlength=n_rows)
            ptr = torch.zeros(n_rows + 1, dtype=torch.int64, device=steps.device)
            ptr[1:] = torch.cumsum(counts, 0)
            table = (self.indices[order], ptr, n_rows, int(counts.max().item()))
            self._tables[key] = table
        return table

    # ------------------------------------------------------------------ update
    def update(self) -> torch.Tensor:
        """The spikes of the current step (``t`` from the environment)."""
        dtype = self.weight.dtype
        device = self.weight.device
        if self.num_spikes == 0:
            flat = torch.zeros(self.num, dtype=dtype, device=device)
        else:
            dt = get_dt_value(desc=self._name())
            i = step_index(current_time(self._name()), dt, device)
            table = self._table(dt)
            zeros = torch.zeros(self.num, dtype=dtype, device=device)
            if table is None:
                hit = (self._steps(dt) == i).to(dtype)
                flat = zeros.scatter_reduce(0, self.indices, hit, "amax")
            else:
                sorted_idx, ptr, n_rows, width = table
                inside = (i >= 0) & (i < n_rows)
                # 1-element index tensors: indexing with a 0-d tensor would read it as a Python
                # int, a data-dependent value that torch.compile cannot trace.
                row = torch.clamp(i, 0, n_rows - 1).reshape(1)
                bounds = ptr.index_select(0, torch.cat([row, row + 1]))
                pos = bounds[0] + torch.arange(width, device=device)
                valid = (pos < bounds[1]) & inside
                idx = sorted_idx.index_select(0, torch.clamp(pos, max=self.num_spikes - 1))
                flat = zeros.scatter_reduce(0, idx, valid.to(dtype), "amax")
        out = (flat * self.weight).reshape(self.varshape)
        if self._batch_size is not None:
            out = out.expand(self._batch_size, *self.varshape)
        return out
