"""The recurrent connectivity of the microcircuit: :class:`DelayedCSRConn`, a CSR table with
one delay per synapse delivered through a ring buffer, and the seeded drawing of its synapses."""

from __future__ import annotations

import math
from typing import Any

import torch

from ... import state as _state
from ...comm.base import Comm
from ...dynamics import Dynamics
from ...environ import get_dt_value
from ...ops.delayed_csr import delayed_csr_deliver
from ...state import ShortTermState
from ...units import to_canonical
from .parameters import (
    _DELAY_MEAN,
    _DELAY_REL_STD,
    _W_REL_STD,
    MicrocircuitParameters,
)

#: Random numbers drawn per chunk while building (bounds the temporary memory).
_CHUNK = 1 << 23
_INT32_MAX = 2**31 - 1


def _index_dtype(upper: int) -> torch.dtype:
    return torch.int32 if upper <= _INT32_MAX else torch.int64


class DelayedCSRConn(Dynamics):
    r"""Event-driven sparse connectivity with a transmission delay per synapse.

    .. math::

        y_j(n) = \sum_{k:\ \mathrm{post}_k = j} w_k\, s_{\mathrm{pre}_k}(n - d_k)

    Synapses are stored row by row (CSR, one row per presynaptic neuron): ``indptr``
    (``n_pre + 1`` row pointers), one int32 **code** ``d_k * n_post + post_k`` and one weight per
    synapse, i.e. 8 bytes per synapse in float32 with the delay included. Each call deposits the
    weights of the synapses of the active presynaptic neurons into a ring buffer of the next
    ``max(d) + 1`` steps of postsynaptic input (a ``ShortTermState`` of shape
    ``(n_slots, *batch, n_post)``) at ``d_k`` steps ahead, then returns and clears the slot of the
    current step. Cost per step: ``#events x fan-out`` plus ``O(n_post)`` for the slot; memory of
    the buffer: ``n_slots x n_post`` values.

    Timing: the input deposited by a call is returned ``d_k`` calls later (``d_k = 0``: by the same
    call). Used as the ``comm`` of an :class:`~torchbrain.projections.AlignPostProj`, which reads
    the spikes of step ``n`` (emitted at the end of the step, time :math:`t_{n+1}`) at step
    ``n + 1``, the synaptic jump enters the step that starts at :math:`t_{n+1} + d_k \Delta t`:
    a delay of exactly ``d_k * dt`` after the spike time, NEST's convention.

    Parameters
    ----------
    n_pre, n_post : int
        Presynaptic and postsynaptic population sizes.
    indptr : Tensor of int, shape ``(n_pre + 1,)``
        Row pointers (nondecreasing, from 0 to the number of synapses).
    post : Tensor of int, shape ``(nnz,)``
        Target of each synapse, in ``[0, n_post)``.
    delay_steps : Tensor of int, shape ``(nnz,)``
        Delay of each synapse in whole steps of ``dt`` (>= 0).
    weight : quantity or Tensor, shape ``(nnz,)``
        Weight of each synapse with the unit of what it delivers (pA for CUBA outputs, nS for
        COBA, mV for delta synapses); plain tensors are canonical and dimensionless.
    dt : quantity [time] or float
        The time step the delays are counted in (plain numbers in ms); running under another
        ``dt`` raises an error.
    name : str, optional
    device, dtype : optional
        Factory arguments (``dtype``: of the weights and the buffer).

    Notes
    -----
    Unlike :class:`~torchbrain.delay.Delay` (one delay per projection, a buffer of presynaptic
    spikes), the buffer holds *postsynaptic input*, so any number of distinct delays costs one
    buffer of ``n_slots x n_post`` values, like NEST's ring buffers. Under autograd the buffer
    is rebound (a copy per step) but the event op has no gradient: this layer is for simulation.
    """

    def __init__(self, n_pre: int, n_post: int, indptr, post, delay_steps, weight, dt, *,
                 name: str | None = None, device=None, dtype=None):
        super().__init__(n_post, name=name, device=device, dtype=dtype)
        owner = self._name()
        for label, value in (("n_pre", n_pre), ("n_post", n_post)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{owner}: '{label}' must be a positive int, got {value!r}")
        self.n_pre, self.n_post = n_pre, n_post
        self.weight_unit: str | None = None
        indptr = torch.as_tensor(indptr)
        post = torch.as_tensor(post)
        delay_steps = torch.as_tensor(delay_steps)
        nnz = post.shape[0] if post.ndim == 1 else -1
        if indptr.shape != (n_pre + 1,) or post.ndim != 1 or delay_steps.shape != post.shape:
            raise ValueError(
                f"{owner}: expected indptr of shape ({n_pre + 1},) and post, delay_steps of one "
                f"common shape (nnz,), got {tuple(indptr.shape)}, {tuple(post.shape)}, "
                f"{tuple(delay_steps.shape)}"
            )
        if int(indptr[0]) != 0 or int(indptr[-1]) != nnz or bool((indptr[1:] < indptr[:-1]).any()):
            raise ValueError(f"{owner}: 'indptr' must rise from 0 to len(post) = {nnz}")
        if nnz and (int(post.min()) < 0 or int(post.max()) >= n_post):
            raise ValueError(f"{owner}: 'post' must lie in [0, {n_post})")
        max_delay = int(delay_steps.max()) if nnz else 0
        if nnz and int(delay_steps.min()) < 0:
            raise ValueError(f"{owner}: 'delay_steps' must be >= 0")
        self.n_slots = max_delay + 1
        self.dt = float(to_canonical(dt, "ms", owner=owner, name="dt"))
        if not self.dt > 0:
            raise ValueError(f"{owner}: 'dt' must be positive, got {self.dt} ms")
        code_dtype = _index_dtype(self.n_slots * n_post - 1)
        codes = torch.empty(nnz, dtype=code_dtype, device=post.device)
        for start in range(0, nnz, _CHUNK):  # bounded temporaries
            sl = slice(start, min(nnz, start + _CHUNK))
            codes[sl] = (delay_steps[sl].long() * n_post + post[sl].long()).to(code_dtype)
        self.register_buffer("indptr", indptr.to(device=device, dtype=_index_dtype(nnz)),
                             persistent=True)
        self.register_buffer("codes", codes.to(device=device), persistent=True)
        w = Comm._weight_tensor(self, weight, (nnz,))
        if w.shape != (nnz,):
            raise ValueError(f"{owner}: 'weight' must have shape ({nnz},), got {tuple(w.shape)}")
        Comm._store_weight(self, w, False)
        self.ring = ShortTermState(None)
        self.ptr = ShortTermState(None)

    def _repr_config(self) -> dict[str, Any]:
        return {"n_pre": self.n_pre, "n_post": self.n_post, "nnz": self.num_synapses,
                "n_slots": self.n_slots, "dt": self.dt}

    @property
    def num_synapses(self) -> int:
        return int(self.codes.shape[0])

    @property
    def bytes_per_synapse(self) -> float:
        """Connectivity memory (row pointers, codes, weights) per synapse."""
        total = sum(t.numel() * t.element_size() for t in (self.indptr, self.codes, self.weight))
        return total / max(1, self.num_synapses)

    def post_indices(self) -> torch.Tensor:
        """Target of every synapse (int64, decoded from the codes)."""
        return torch.remainder(self.codes.long(), self.n_post)

    def delay_steps(self) -> torch.Tensor:
        """Delay of every synapse in steps (int64, decoded from the codes)."""
        return torch.div(self.codes.long(), self.n_post, rounding_mode="floor")

    def pre_indices(self) -> torch.Tensor:
        """Source of every synapse (int64)."""
        counts = (self.indptr[1:] - self.indptr[:-1]).long()
        return torch.repeat_interleave(torch.arange(self.n_pre, device=counts.device), counts,
                                       output_size=self.num_synapses)

    # ----------------------------------------------------------------- States
    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        fac = self._factory_like_states()
        self.ring = ShortTermState(torch.zeros((self.n_slots, *shape), **fac))
        self.ptr = ShortTermState(torch.zeros((), dtype=torch.int64, device=fac["device"]))

    def _batch_size_from_states(self) -> None:
        ring = self.ring
        if isinstance(ring, torch.Tensor):
            self._batch_size = ring.shape[1] if ring.ndim == 3 else None
            self._initialised = True

    # ------------------------------------------------------------------- step
    def update(self, spikes):
        """Deposit the synapses of the active inputs (``(*batch, n_pre)``) and return the input
        arriving now (``(*batch, n_post)``)."""
        self._check_ready()
        dt = get_dt_value(desc=self._name())
        if abs(dt - self.dt) > 1e-9 * self.dt:
            raise RuntimeError(
                f"{self._name()}: the delays are counted in steps of {self.dt} ms but dt is now "
                f"{dt} ms; rebuild the connectivity for the new time step"
            )
        expected = (*self._expected_shape()[:-1], self.n_pre)
        if tuple(spikes.shape) != expected:
            raise ValueError(
                f"{self._name()}: expected presynaptic input of shape {expected}, got "
                f"{tuple(spikes.shape)}"
            )
        ring = self.ring
        if torch.is_grad_enabled() or _state._WRITE_TRACKERS:
            # States are rebound, never written in place, when a graph or a tracker may see them
            ring = ring.clone()
            out = delayed_csr_deliver(ring, spikes, self.indptr, self.codes, self.weight,
                                      self.ptr)
            self.ring = ring
        else:
            out = delayed_csr_deliver(ring, spikes, self.indptr, self.codes, self.weight,
                                      self.ptr)
        self.ptr = torch.remainder(self.ptr + 1, self.n_slots)
        return out


def redrawn_normal(gen: torch.Generator, size: int, mean: float, std: float, low: float,
                   high: float, dtype) -> torch.Tensor:
    """Normal(mean, std) samples from ``gen``, each redrawn until it lies in ``[low, high]``
    (NEST's ``redraw``)."""
    x = torch.randn(size, generator=gen, dtype=dtype) * std + mean
    bad = torch.nonzero((x < low) | (x > high)).squeeze(1)
    while bad.numel():
        x[bad] = torch.randn(bad.numel(), generator=gen, dtype=dtype) * std + mean
        sub = torch.nonzero((x[bad] < low) | (x[bad] > high)).squeeze(1)
        bad = bad[sub]
    return x


def draw_synapse_values(gen: torch.Generator, size: int, post_pop: int, pre_pop: int,
                        params: MicrocircuitParameters, delays: bool, dt: float,
                        wdtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (pA, ``wdtype``) and delays (whole steps of ``dt``, int16) of ``size`` synapses of
    the pathway ``pre_pop -> post_pop``: normal weights with a 10 % spread, redrawn to keep their
    sign; normal delays redrawn until ``>= dt`` and rounded to the nearest step (or every synapse
    at its type's mean delay when ``delays`` is false)."""
    inhibitory = pre_pop % 2 == 1
    mean = float(params.weight_mean[post_pop, pre_pop])
    low, high = (-math.inf, 0.0) if inhibitory else (0.0, math.inf)
    weight = redrawn_normal(gen, size, mean, abs(mean) * _W_REL_STD, low, high, wdtype)
    d_mean = _DELAY_MEAN[1 if inhibitory else 0]
    if delays:
        d = redrawn_normal(gen, size, d_mean, d_mean * _DELAY_REL_STD, dt, math.inf,
                           torch.float64)
        steps = torch.floor(d / dt + 0.5)
    else:
        steps = torch.full((size,), math.floor(d_mean / dt + 0.5 + 1e-9))
    return weight, steps.to(torch.int16)


class _Generator:
    """Draws from one seeded torch.Generator, in chunks (bounded temporaries)."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(int(seed))

    def counts(self, total: int, n: int) -> torch.Tensor:
        """Multinomial(total, uniform over n) counts: how many of ``total`` uniform draws hit
        each of ``n`` bins."""
        out = torch.zeros(n, dtype=torch.int64)
        for start in range(0, total, _CHUNK):
            k = min(_CHUNK, total - start)
            out += torch.bincount(torch.randint(0, n, (k,), generator=self.gen), minlength=n)
        return out
