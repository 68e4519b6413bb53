"""Loops: run a step function over time.

A simulation or a spiking network's forward pass is a step function applied ``T`` times. The
drivers here run it and stack what it returns, the way ``brainstate.transform`` does, re-thought
for eager PyTorch:

:func:`time_range`
    The time points of a run, in ms: ``t0 + dt * arange(n)``.
:func:`for_loop`
    ``for_loop(step, *xs)`` calls ``step(*x_t)`` for every ``t`` and stacks the outputs along a new
    leading time dimension. Inputs are sliced with ``unbind(0)`` (one backward node for all ``T``
    slices, so the backward pass is ``O(T)``), and may be pytrees (tuples, lists, dicts).
:func:`scan`
    ``scan(step, carry, xs)`` threads an explicit carry: ``step(carry, x) -> (carry, y)``.
:func:`checkpointed_for_loop`, :func:`checkpointed_scan`
    The same results and gradients with activation memory growing like ``sqrt(T)``: the steps are
    grouped in segments, each run under :func:`torch.utils.checkpoint.checkpoint`; the backward
    pass re-runs one segment at a time to recompute what it needs.
:func:`jit` (alias :func:`compile`)
    ``torch.compile`` of a step (or of a chunk of steps) that reads the simulation environment
    (:mod:`torchbrain.environ`) correctly.

Why checkpointing needs care with States
----------------------------------------
torchbrain modules keep their dynamics in *States*: buffers that a step rebinds
(``self.V = v_new``). A step is therefore not a pure function of its arguments, and plain
activation checkpointing would go wrong twice when it re-runs a segment during ``backward``:

1. the re-run would start from the States the module holds *now* (the end of the whole run), not
   from those at the start of the segment, and recompute different activations;
2. the re-run rebinds the States, so after ``loss.backward()`` the module would hold the States of
   some intermediate step instead of the final ones.

:func:`checkpointed_for_loop` therefore watches the forward pass with
:class:`torchbrain.state.track_state_writes` to learn which States the steps write, remembers
(by reference, no copy) their values at the start of every segment, and makes each re-run set
them back to those values first and, in a ``finally`` block (non-reentrant checkpointing stops a
re-run early by raising), put back what the module held before the re-run. The random number
generators and the :mod:`torchbrain.environ` context of the forward pass are restored for the
re-run as well, so noise and ``environ.get("t")`` give the same values.
"""

from __future__ import annotations

import contextvars
import functools
import math
import numbers
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils import _pytree as pytree
from torch.utils.checkpoint import checkpoint

from .. import environ
from ..state import ParamState, track_state_writes
from ..units import to_canonical
from . import compiler

__all__ = [
    "time_range",
    "for_loop",
    "scan",
    "checkpointed_for_loop",
    "checkpointed_scan",
    "ProgressBar",
    "jit",
    "compile",
]


# ---------------------------------------------------------------------------------- time_range
def _ms_scalar(value: Any, name: str) -> float:
    value = to_canonical(value, "ms", owner="time_range", name=name)
    if isinstance(value, torch.Tensor | np.ndarray):
        if (value.numel() if isinstance(value, torch.Tensor) else value.size) != 1:
            raise ValueError(f"time_range: '{name}' must be a scalar, got shape {value.shape}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"time_range: '{name}' must be a number in ms or a time quantity, got {value!r}"
        )
    return float(value)


def time_range(
    duration: Any,
    dt: Any = None,
    t0: Any = 0.0,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The time points of a run: ``t0 + dt * arange(n)``, in ms.

    ``n`` is the number of steps of length ``dt`` that cover ``duration``, computed in float64
    and robust to rounding: ``time_range(200 * u.ms)`` with ``dt = 0.1 ms`` has exactly 2000
    entries although ``200 / 0.1 == 1999.9999999999998`` in floating point. When ``duration`` is
    not a whole number of steps, the last, partial step is included (like
    ``arange(t0, t0 + duration, dt)``).

    Parameters
    ----------
    duration : pint.Quantity or float
        Length of the run (time; a number is read in ms). Must be positive.
    dt : pint.Quantity or float, optional
        Time step (time; a number is read in ms). Defaults to the environment's
        ``dt`` (:func:`torchbrain.environ.get_dt_value`).
    t0 : pint.Quantity or float, optional
        Time of the first step (time; a number is read in ms). Default 0 ms.
    dtype : torch.dtype, optional
        Floating dtype of the result; default float64, so that long runs keep exact steps
        (in float32 the step between two times is off by 1 % at 10 s and a 0.1 ms step is lost
        after about 30 min). The values are computed in float64 and then cast.
    device : torch.device or str, optional
        Device of the result.

    Returns
    -------
    torch.Tensor
        Shape ``(n,)``, the times in ms.

    Raises
    ------
    ValueError
        For a non-positive or non-finite ``duration`` or ``dt``, or a non-finite ``t0``.
    KeyError
        When ``dt`` is not given and the environment has none.

    Examples
    --------
    >>> from torchbrain import environ, u
    >>> with environ.context(dt=0.1 * u.ms):
    ...     ts = time_range(200 * u.ms)
    >>> ts.shape
    torch.Size([2000])
    """
    length = _ms_scalar(duration, "duration")
    step = environ.get_dt_value("time_range") if dt is None else _ms_scalar(dt, "dt")
    start = _ms_scalar(t0, "t0")
    if not (math.isfinite(length) and length > 0):
        raise ValueError(f"time_range: 'duration' must be positive and finite, got {length} ms")
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"time_range: 'dt' must be positive and finite, got {step} ms")
    if not math.isfinite(start):
        raise ValueError(f"time_range: 't0' must be finite, got {start} ms")
    ratio = length / step
    nearest = round(ratio)
    # A ratio within rounding error of a whole number is that number (200 / 0.1); otherwise the
    # last, partial step is kept, as arange would.
    n = nearest if abs(ratio - nearest) <= 1e-9 * max(1.0, ratio) else math.ceil(ratio)
    times = start + step * torch.arange(n, dtype=torch.float64, device=device)
    return times if dtype is None else times.to(dtype)


# -------------------------------------------------------------------------------- progress bar
class ProgressBar:
    """Progress display settings for the drivers' ``pbar`` argument.

    ``pbar=True`` is ``ProgressBar()``, ``pbar=k`` (an int) is ``ProgressBar(freq=k)``. The bar is
    drawn with ``tqdm`` when it is installed (``pip install torchbrain[progress]``), otherwise as
    a line of text on ``sys.stderr``.

    Parameters
    ----------
    freq : int, optional
        Update the display every ``freq`` steps. Default: about 100 updates per run.
    desc : str, optional
        Label shown before the bar; default the driver's name.
    """

    def __init__(self, freq: int | None = None, desc: str | None = None):
        if freq is not None and (isinstance(freq, bool) or not isinstance(freq, int) or freq < 1):
            raise ValueError(f"ProgressBar: 'freq' must be a positive int, got {freq!r}")
        self.freq = freq
        self.desc = desc

    def __repr__(self) -> str:
        return f"ProgressBar(freq={self.freq!r}, desc={self.desc!r})"


def _as_progress_bar(pbar: Any, who: str) -> ProgressBar | None:
    if pbar is None or pbar is False:
        return None
    if pbar is True:
        return ProgressBar()
    if isinstance(pbar, int) and not isinstance(pbar, bool):
        return ProgressBar(freq=pbar)
    if isinstance(pbar, ProgressBar):
        return pbar
    raise TypeError(f"{who}: 'pbar' must be None, a bool, an int or a ProgressBar, got {pbar!r}")


class _TextBar:
    """Fallback when tqdm is missing: ``desc: 40/100 [########            ]  40%`` on stderr."""

    width = 30

    def __init__(self, total: int, desc: str):
        self.total = total
        self.desc = desc
        self.n = 0
        self._draw()

    def update(self, n: int) -> None:
        self.n += n
        self._draw()

    def _draw(self) -> None:
        frac = self.n / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + " " * (self.width - filled)
        sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total} [{bar}] {100 * frac:3.0f}%")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


class _Progress:
    """Counts steps and forwards every ``freq``-th to tqdm or the text bar."""

    def __init__(self, settings: ProgressBar | None, total: int, who: str):
        self.bar = None
        if settings is None:
            return
        self.freq = settings.freq or max(1, total // 100)
        self.pending = 0
        desc = settings.desc if settings.desc is not None else who
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.bar = _TextBar(total, desc)
        else:
            self.bar = tqdm(total=total, desc=desc)

    def step(self, n: int = 1) -> None:
        """Count ``n`` more steps (drivers that run chunks of steps pass the chunk size)."""
        if self.bar is not None:
            self.pending += n
            if self.pending >= self.freq:
                self.bar.update(self.pending)
                self.pending = 0

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            if self.pending:
                self.bar.update(self.pending)
            self.bar.close()


# --------------------------------------------------------------------------------- the inputs
def _prepare_xs(who: str, xs: Any, length: int | None) -> tuple[int, list[Any]]:
    """Slice the pytree ``xs`` along dim 0: returns ``T`` and the ``T`` per-step pytrees."""
    if length is not None and (
        isinstance(length, bool) or not isinstance(length, int) or length < 0
    ):
        raise ValueError(f"{who}: 'length' must be a non-negative int, got {length!r}")
    with_path, spec = pytree.tree_flatten_with_path(xs)
    leaves = []
    lengths = {}
    for path, leaf in with_path:
        name = f"xs{pytree.keystr(path)}"
        if isinstance(leaf, np.ndarray):
            leaf = torch.as_tensor(leaf)
        if leaf is None:
            leaves.append(None)
            continue
        if not isinstance(leaf, torch.Tensor):
            raise TypeError(
                f"{who}: every input leaf must be a tensor with a leading time dimension (or "
                f"None), but {name} is a {type(leaf).__name__}"
            )
        if leaf.dim() == 0:
            raise ValueError(f"{who}: input {name} is 0-dimensional; it has no time dimension")
        lengths[name] = leaf.shape[0]
        leaves.append(leaf)
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise ValueError(f"{who}: the inputs have different leading (time) lengths: {listed}")
    if lengths:
        T = next(iter(lengths.values()))
        if length is not None and length != T:
            raise ValueError(
                f"{who}: length={length} does not match the inputs' leading length {T}"
            )
    elif length is None:
        raise ValueError(f"{who}: without tensor inputs, 'length' (the number of steps) is needed")
    else:
        T = length
    if T == 0:
        raise ValueError(
            f"{who}: zero steps to run; the output structure is only known from a step"
        )
    columns = [None if leaf is None else leaf.unbind(0) for leaf in leaves]
    if columns and type(xs) is tuple and len(xs) == len(columns) and None not in columns:
        # A tuple of plain tensors (the common case): skip rebuilding pytrees step by step.
        return T, list(zip(*columns, strict=True))
    steps = [
        pytree.tree_unflatten([None if c is None else c[t] for c in columns], spec)
        for t in range(T)
    ]
    return T, steps


# -------------------------------------------------------------------------------- the outputs
def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Number | np.number | np.bool_)


def _stack_outputs(who: str, outs: Sequence[Any]) -> Any:
    """Stack ``T`` per-step output pytrees leaf by leaf along a new leading dim."""
    if all(isinstance(o, torch.Tensor) for o in outs):
        return _stack_leaf(who, list(outs), lambda: "output")
    flat0, spec0 = pytree.tree_flatten(outs[0])
    rows = [flat0]
    for t in range(1, len(outs)):
        flat, spec = pytree.tree_flatten(outs[t])
        if spec != spec0:
            raise TypeError(
                f"{who}: every step must return the same structure, but step {t} returned "
                f"{pytree.treespec_pprint(spec)} and the first step "
                f"{pytree.treespec_pprint(spec0)}"
            )
        rows.append(flat)
    stacked = []
    for i in range(len(flat0)):
        column = [row[i] for row in rows]
        stacked.append(_stack_leaf(who, column, lambda i=i: _leaf_name(outs[0], i)))
    return pytree.tree_unflatten(stacked, spec0)


def _leaf_name(tree: Any, i: int) -> str:
    path = pytree.tree_flatten_with_path(tree)[0][i][0]
    return f"output{pytree.keystr(path)}"


def _stack_leaf(who: str, column: list, name: Callable[[], str]) -> Any:
    if all(v is None for v in column):
        return None
    if all(isinstance(v, torch.Tensor) for v in column):
        try:
            return torch.stack(column)
        except RuntimeError as err:
            raise ValueError(f"{who}: cannot stack {name()} over time: {err}") from err
    if all(_is_number(v) for v in column):
        return torch.tensor(column)
    kinds = sorted({type(v).__name__ for v in column})
    raise TypeError(
        f"{who}: {name()} must be a tensor, a number or None at every step, got {kinds}"
    )


def _split_scan_result(result: Any) -> tuple[Any, Any]:
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise TypeError(
            f"scan: step must return a pair (carry, y), got {type(result).__name__}"
        )
    return result[0], result[1]


def _check_carry(who: str, spec: Any, carry: Any, t: int) -> None:
    new_spec = pytree.tree_structure(carry)
    if new_spec != spec:
        raise TypeError(
            f"{who}: the carry must keep its structure, but step {t} returned "
            f"{pytree.treespec_pprint(new_spec)} for {pytree.treespec_pprint(spec)}"
        )


# ----------------------------------------------------------------------------- for_loop, scan
def for_loop(
    step: Callable[..., Any],
    *xs: Any,
    length: int | None = None,
    reverse: bool = False,
    pbar: bool | int | ProgressBar | None = None,
) -> Any:
    """Call ``step(*x_t)`` for every time index ``t`` and stack the outputs over time.

    Parameters
    ----------
    step : callable
        Called as ``step(*x_t)``, where ``x_t`` holds slice ``t`` (along dim 0) of every input; with
        no inputs, ``step()``. It may update module States. It returns a tensor, a Python number,
        ``None`` or a pytree (tuple, list, dict) of those, with the same structure at every step.
    *xs : torch.Tensor or pytree of tensors
        Inputs with a leading time dimension of the same length ``T``, e.g. the times from
        :func:`time_range` and an input current of shape ``(T, batch, n)``. ``None`` leaves are
        passed as ``None`` at every step.
    length : int, optional
        Number of steps. Required when there are no inputs; otherwise it must equal ``T``.
    reverse : bool, optional
        Run from ``t = T - 1`` down to ``0``. The outputs are still returned in index order
        (``out[t]`` is the output for ``x[t]``), as in ``jax.lax.scan(reverse=True)``.
    pbar : bool, int or ProgressBar, optional
        Show progress: ``True``, an update frequency, or a :class:`ProgressBar`.

    Returns
    -------
    Any
        The step outputs stacked along a new leading dimension of length ``T``: tensors with
        ``torch.stack``, numbers into a 1-D tensor; ``None`` leaves stay ``None``.

    Raises
    ------
    ValueError
        When inputs have different leading lengths (each is named), when ``length`` disagrees with
        them or is missing without inputs, or for zero steps.
    TypeError
        For a non-tensor input leaf, or when a step changes its output structure.

    Notes
    -----
    The inputs are sliced with ``unbind(0)``, so the backward pass costs ``O(T)`` (indexing
    ``x[t]`` in a loop would cost ``O(T^2)``). For long rollouts trained by BPTT see
    :func:`checkpointed_for_loop`.

    Examples
    --------
    Drive a neuron population with an input current of shape ``(T, n)``::

        with tb.environ.context(dt=0.1 * u.ms):
            ts = time_range(100 * u.ms)
            spikes = for_loop(lambda t, i: neuron(i), ts, currents)   # (T, n)
    """
    pb = _as_progress_bar(pbar, "for_loop")
    T, x_steps = _prepare_xs("for_loop", xs, length)
    outs: list[Any] = [None] * T
    order = range(T - 1, -1, -1) if reverse else range(T)
    with _Progress(pb, T, "for_loop") as progress:
        for t in order:
            outs[t] = step(*x_steps[t])
            progress.step()
    return _stack_outputs("for_loop", outs)


def scan(
    step: Callable[[Any, Any], tuple[Any, Any]],
    carry: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
    pbar: bool | int | ProgressBar | None = None,
) -> tuple[Any, Any]:
    """Thread a carry through ``step(carry, x_t) -> (carry, y_t)`` and stack the ``y_t``.

    Parameters
    ----------
    step : callable
        ``step(carry, x_t)`` returns the new carry and this step's output. The carry keeps its
        pytree structure from step to step.
    carry : Any
        Initial carry: a tensor, a number, or a pytree of those.
    xs : torch.Tensor or pytree of tensors, optional
        Inputs with a leading time dimension; ``x_t`` is slice ``t`` with the same structure.
        Without inputs, ``x_t`` is ``None`` and ``length`` is required.
    length : int, optional
        Number of steps (required without ``xs``; otherwise it must match).
    reverse : bool, optional
        Run backwards in time; the ``y`` are still returned in index order.
    pbar : bool, int or ProgressBar, optional
        Show progress (see :func:`for_loop`).

    Returns
    -------
    carry : Any
        The final carry.
    ys : Any
        The outputs stacked over time, as in :func:`for_loop`.

    Examples
    --------
    >>> import torch
    >>> total, partial = scan(lambda c, x: (c + x, c + x), torch.tensor(0.0), torch.arange(4.0))
    >>> total, partial
    (tensor(6.), tensor([0., 1., 3., 6.]))
    """
    pb = _as_progress_bar(pbar, "scan")
    T, x_steps = _prepare_xs("scan", (xs,), length)
    spec = pytree.tree_structure(carry)
    outs: list[Any] = [None] * T
    order = range(T - 1, -1, -1) if reverse else range(T)
    with _Progress(pb, T, "scan") as progress:
        for t in order:
            carry, outs[t] = _split_scan_result(step(carry, x_steps[t][0]))
            _check_carry("scan", spec, carry, t)
            progress.step()
    return carry, _stack_outputs("scan", outs)


# ------------------------------------------------------------------------ checkpointed drivers
StateKey = tuple[int, str]


class _Segment:
    """One checkpointed segment of steps; knows how to re-run itself during backward.

    ``start`` maps every State the run writes to ``(module, name, value at segment start)``; the
    driver fills it in, including States first written by later segments.
    """

    def __init__(self, body: Callable, first: int, progress: _Progress, who: str):
        self.body = body
        self.first = first
        self.progress: _Progress | None = progress
        self.who = who
        self.start: dict[StateKey, tuple[nn.Module, str, Any]] = {}
        self.written: dict | None = None
        self.ran = False

    def _run(self, carry: Any, x_steps: list[Any], spec: Any) -> tuple[Any, list[Any]]:
        outs = []
        for i, x_t in enumerate(x_steps):
            carry, out = self.body(carry, x_t)
            if spec is not None:
                _check_carry(self.who, spec, carry, self.first + i)
            outs.append(out)
            if self.progress is not None:
                self.progress.step()
        return carry, outs

    def __call__(self, carry: Any, x_steps: list[Any], spec: Any) -> tuple[Any, list[Any]]:
        if self.ran:
            return self._recompute(carry, x_steps, spec)
        self.ran = True
        # What a re-run must reproduce besides the States: random numbers and the environment.
        self.context = contextvars.copy_context()
        self.cpu_rng = torch.get_rng_state()
        cuda_ready = torch.cuda.is_available() and torch.cuda.is_initialized()
        self.cuda_devices = list(range(torch.cuda.device_count())) if cuda_ready else []
        self.cuda_rng = [torch.cuda.get_rng_state(d) for d in self.cuda_devices]
        with track_state_writes() as written:
            result = self._run(carry, x_steps, spec)
        if not cuda_ready and torch.cuda.is_available() and torch.cuda.is_initialized():
            raise RuntimeError(
                f"{self.who}: CUDA was initialised inside the first segment, so its random state "
                "could not be saved for the backward re-run; initialise CUDA first (e.g. move "
                "the model to the GPU) before calling the driver"
            )
        self.written = written
        self.progress = None
        return result

    def _recompute(self, carry: Any, x_steps: list[Any], spec: Any) -> tuple[Any, list[Any]]:
        held = {key: getattr(m, name) for key, (m, name, _) in self.start.items()}
        try:
            for m, name, value in self.start.values():
                m._set_state_value(name, value)
            with torch.random.fork_rng(devices=self.cuda_devices, device_type="cuda"):
                torch.set_rng_state(self.cpu_rng)
                for d, s in zip(self.cuda_devices, self.cuda_rng, strict=True):
                    torch.cuda.set_rng_state(s, d)
                return self.context.copy().run(self._run, carry, x_steps, spec)
        finally:
            # Also reached when checkpoint stops the re-run early by raising.
            for key, (m, name, _) in self.start.items():
                m._set_state_value(name, held[key])
            environ.sync_for_compiled_call()


def _checkpointed_run(
    who: str,
    body: Callable[[Any, Any], tuple[Any, Any]],
    carry: Any,
    x_steps: list[Any],
    segment_length: int | None,
    pbar: ProgressBar | None,
    check_carry: bool,
) -> tuple[Any, list[Any]]:
    T = len(x_steps)
    if segment_length is None:
        segment_length = math.ceil(math.sqrt(T))
    elif (
        isinstance(segment_length, bool)
        or not isinstance(segment_length, int)
        or segment_length < 1
    ):
        raise ValueError(f"{who}: 'segment_length' must be a positive int, got {segment_length!r}")
    spec = pytree.tree_structure(carry) if check_carry else None
    outs: list[Any] = []
    with _Progress(pbar, T, who) as progress:
        if not torch.is_grad_enabled():
            # Nothing to differentiate, nothing to recompute.
            for t, x_t in enumerate(x_steps):
                carry, out = body(carry, x_t)
                if spec is not None:
                    _check_carry(who, spec, carry, t)
                outs.append(out)
                progress.step()
            return carry, outs
        known: dict[StateKey, tuple[nn.Module, str]] = {}
        segments: list[_Segment] = []
        for first in range(0, T, segment_length):
            segment = _Segment(body, first, progress, who)
            segment.start = {key: (m, name, getattr(m, name)) for key, (m, name) in known.items()}
            segments.append(segment)
            carry, seg_outs = checkpoint(
                segment,
                carry,
                x_steps[first : first + segment_length],
                spec,
                use_reentrant=False,
                preserve_rng_state=False,  # _Segment restores the CPU and all CUDA generators
            )
            outs.extend(seg_outs)
            if len(segments) > 1 and torch.equal(segments[-2].cpu_rng, segment.cpu_rng):
                # Steps without randomness: share one saved generator state (5 kB each).
                segment.cpu_rng = segments[-2].cpu_rng
            for key, (m, name, before) in segment.written.items():
                if key in known or issubclass(m._state_kinds[name], ParamState):
                    continue
                known[key] = (m, name)
                # Not written before this segment: it held `before` since the run began.
                for seg in segments:
                    seg.start[key] = (m, name, before)
            segment.written = None
    return carry, outs


def checkpointed_for_loop(
    step: Callable[..., Any],
    *xs: Any,
    segment_length: int | None = None,
    length: int | None = None,
    pbar: bool | int | ProgressBar | None = None,
) -> Any:
    """:func:`for_loop` with activation checkpointing: memory like ``sqrt(T)``, same gradients.

    The ``T`` steps are split into segments of ``segment_length`` steps. Each segment runs under
    :func:`torch.utils.checkpoint.checkpoint` (non-reentrant), so autograd keeps no activations
    inside it; the backward pass re-runs one segment at a time. With the default segment length
    ``ceil(sqrt(T))`` the memory held for the backward pass grows like ``sqrt(T)`` instead of
    ``T`` (plus the stacked outputs themselves), for about one extra forward pass of compute.

    Steps may read and rebind module States (``self.V = v_new``). The States the steps write are
    found during the forward pass; each re-run starts from their values at the start of its
    segment and leaves the module holding the States it held before, so after
    ``loss.backward()`` the module still holds the final States of the run. The CPU and CUDA
    random generators and the :mod:`torchbrain.environ` context of the forward pass are restored
    for the re-run. Under ``torch.no_grad()`` this is a plain :func:`for_loop`.

    Parameters
    ----------
    step : callable
        As in :func:`for_loop`. It must be deterministic given its inputs, the States, the random
        state and the environment (the usual condition of activation checkpointing), and must not
        re-declare States (``self.V = HiddenState(...)``) or write them in place.
    *xs : torch.Tensor or pytree of tensors
        Inputs with a leading time dimension (see :func:`for_loop`).
    segment_length : int, optional
        Steps per checkpointed segment. Default ``ceil(sqrt(T))``. ``1`` checkpoints every step,
        ``T`` the whole run as one segment.
    length : int, optional
        Number of steps; required without inputs.
    pbar : bool, int or ProgressBar, optional
        Show the progress of the forward pass.

    Returns
    -------
    Any
        The outputs stacked over time, equal to :func:`for_loop`'s.

    Notes
    -----
    Tensors the steps read but do not write (parameters, States no step touches) are read again
    at re-run time: do not change them between the forward pass and ``backward``.
    """
    pb = _as_progress_bar(pbar, "checkpointed_for_loop")
    _, x_steps = _prepare_xs("checkpointed_for_loop", xs, length)

    def body(carry, x_t):
        return carry, step(*x_t)

    _, outs = _checkpointed_run(
        "checkpointed_for_loop", body, None, x_steps, segment_length, pb, check_carry=False
    )
    return _stack_outputs("checkpointed_for_loop", outs)


def checkpointed_scan(
    step: Callable[[Any, Any], tuple[Any, Any]],
    carry: Any,
    xs: Any = None,
    segment_length: int | None = None,
    length: int | None = None,
    pbar: bool | int | ProgressBar | None = None,
) -> tuple[Any, Any]:
    """:func:`scan` with activation checkpointing (see :func:`checkpointed_for_loop`).

    Parameters
    ----------
    step : callable
        ``step(carry, x_t) -> (carry, y_t)``; it may also update module States.
    carry : Any
        Initial carry (tensor, number or pytree).
    xs : torch.Tensor or pytree of tensors, optional
        Inputs with a leading time dimension; without them ``x_t`` is ``None``.
    segment_length : int, optional
        Steps per checkpointed segment; default ``ceil(sqrt(T))``.
    length : int, optional
        Number of steps; required without ``xs``.
    pbar : bool, int or ProgressBar, optional
        Show the progress of the forward pass.

    Returns
    -------
    carry : Any
        The final carry.
    ys : Any
        The stacked outputs, equal to :func:`scan`'s.
    """
    pb = _as_progress_bar(pbar, "checkpointed_scan")
    _, x_steps = _prepare_xs("checkpointed_scan", (xs,), length)

    def body(carry, x_t):
        return _split_scan_result(step(carry, x_t[0]))

    carry, outs = _checkpointed_run(
        "checkpointed_scan", body, carry, x_steps, segment_length, pb, check_carry=True
    )
    return carry, _stack_outputs("checkpointed_scan", outs)


# ------------------------------------------------------------------------------------ compile
class _Jitted:
    """A callable that syncs the environment mirror, then calls ``torch.compile(fn)``."""

    def __init__(self, fn: Callable, options: dict[str, Any]):
        if not callable(fn):
            raise TypeError(f"jit: expected a function or an nn.Module, got {fn!r}")
        self.__dict__["_fn"] = fn
        self.__dict__["_options"] = options
        self.__dict__["_compiled"] = None
        self.__dict__["fallback_reason"] = None
        if not isinstance(fn, nn.Module):
            functools.update_wrapper(self, fn, updated=())

    @property
    def compiled(self) -> Callable:
        """The ``torch.compile`` object (created on first use; compiles on its first call)."""
        if self._compiled is None:
            compiler.use_persistent_cache()
            self.__dict__["_compiled"] = torch.compile(self._fn, **self._options)
        return self._compiled

    def _fall_back(self, problem: str) -> None:
        self.__dict__["fallback_reason"] = f"jit: {problem}; calling {self._fn!r} uncompiled"
        compiler.notice_eager_fallback(problem)

    @property
    def fn(self) -> Callable:
        """The original, uncompiled function or module."""
        return self._fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fallback_reason is not None:
            return self._fn(*args, **kwargs)
        if self._compiled is None:
            problem = compiler.compile_problem(self._options["backend"])
            if problem is not None:
                self._fall_back(problem)
                return self._fn(*args, **kwargs)
        # Compiled code reads the environment from a thread-local mirror (Dynamo cannot trace
        # ContextVar.get); refresh it from the caller's context first.
        environ.sync_for_compiled_call()
        try:
            return self.compiled(*args, **kwargs)
        except Exception as err:
            failure = compiler.compiler_error(err)
            if failure is None:
                raise
            # nothing ran yet: the build fails before the compiled code is called
            self._fall_back(f"the C++ compiler could not build the compiled code: "
                            f"{type(failure).__name__}")
            return self._fn(*args, **kwargs)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        # Used as a method decorator: bind like a function would.
        return self if obj is None else types.MethodType(self, obj)

    def __getattr__(self, name: str) -> Any:
        # Reached only for names not found normally: forward to the module (parameters(), ...).
        if name.startswith("__") or "_fn" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["_fn"], name)

    def __repr__(self) -> str:
        return f"jit({self._fn!r})"


def jit(
    fn: Callable | None = None,
    *,
    fullgraph: bool = True,
    dynamic: bool | None = False,
    mode: str | None = None,
    backend: str | Callable = "inductor",
) -> Any:
    """Compile a step function or module with ``torch.compile``, reading the environment right.

    Compiled code cannot read the :mod:`torchbrain.environ` context directly (Dynamo does not
    trace ``ContextVar.get``); it reads a thread-local mirror instead. The returned callable
    refreshes that mirror from the caller's context
    (:func:`torchbrain.environ.sync_for_compiled_call`) before every call, then calls the
    compiled function. Dynamo guards on the values it read,
    so a different ``dt`` recompiles instead of reusing a stale graph.

    Usable as ``jit(fn)``, ``@jit`` or ``@jit(mode="max-autotune")``; ``compile`` is an alias.

    Parameters
    ----------
    fn : callable or nn.Module, optional
        What to compile. Without it, returns a decorator.
    fullgraph : bool, optional
        Fail on graph breaks instead of falling back to Python (default ``True``: a step that
        breaks the graph is usually slow in a loop, better to know).
    dynamic : bool or None, optional
        ``torch.compile``'s shape dynamism; default ``False`` (specialise on shapes).
    mode : str, optional
        ``torch.compile`` mode (``"reduce-overhead"``, ``"max-autotune"``, ...).
    backend : str or callable, optional
        ``torch.compile`` backend; default ``"inductor"``.

    Returns
    -------
    callable
        Calls the compiled ``fn``. ``.compiled`` is the ``torch.compile`` object (created lazily),
        ``.fn`` the original. For a module, other attributes (``parameters()``, ...) are the
        module's. Compiled code is cached on disk for later processes
        (:mod:`torchbrain.drivers.compiler`). Where the Inductor backend cannot build code (no
        working C++ compiler, or a build that fails), it calls ``fn`` uncompiled instead, writes
        one notice on stderr and keeps the reason in ``.fallback_reason`` (``None`` otherwise).

    Examples
    --------
    Compile one step and drive it from Python::

        @jit
        def step(t, i):
            with tb.environ.context(t=t):
                return neuron(i)

        with tb.environ.context(dt=0.1 * u.ms):
            spikes = for_loop(step, ts, currents)
    """
    options: dict[str, Any] = {"fullgraph": fullgraph, "dynamic": dynamic, "backend": backend}
    if mode is not None:
        options["mode"] = mode
    if fn is None:
        return lambda f: _Jitted(f, options)
    return _Jitted(fn, options)


#: Alias of :func:`jit`, named after ``torch.compile``.
compile = jit  # noqa: A001 - deliberate, mirrors torch.compile
