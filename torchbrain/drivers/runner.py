"""``NetworkRunner``: run a network's step many times, fast, recording its spikes.

A Python loop that calls a network one step at a time pays Python and dispatch overhead on every
step. The runner can instead compile a *chunk* of ``K`` unrolled steps with
``torch.compile(fullgraph=True)`` (one graph, States rebound inside it) and loop over chunks, so
Python runs once per ``K`` steps. On the CPU a chunk of 10 steps matched a fully unrolled loop's
speed at a small fraction of its compile time (torchbrain's anchors page). Outputs are written into
one preallocated tensor (``bool`` for spikes).

When to compile (``compile=None``, the default, decides by device): on CUDA the compiled chunk
(and its CUDA graph) is what makes the GPU worth using. On the CPU the eager chunk runs by
default: a first compile of the 4,000-neuron COBA benchmark costs tens of seconds of C++
compilation (and, even from a warm cache, seconds of tracing in every new process), far more
than the whole eager run of one simulated second, so compiling made a new model slower to try
(measurements in :doc:`/howto/compile`). ``compile=True`` opts in for long CPU runs, where the
faster compiled step repays its compile. Compiled code is cached on disk
(:mod:`torchbrain.drivers.compiler`, ``TORCHBRAIN_CACHE_DIR``) so a new process reuses it; a first
compile is announced on stderr ("compiling ... (first run only)"), and a machine without a working
C++ compiler runs the eager chunk with one notice instead of failing.

The network is any module whose ``forward()`` (no argument, or a fixed input) advances one step
and returns the spikes; the time ``t`` of each step is set in :mod:`torchbrain.environ` for it.

On CUDA the chunk can also be captured once in a CUDA graph and replayed (``graph=``), which
removes the remaining per-kernel launch cost: see :mod:`torchbrain.drivers.graph_capture` for how
the States keep static addresses and how ``t`` reaches the graph.
"""

from __future__ import annotations

import logging
import math
import numbers
import operator
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .. import environ
from ..module import available_bytes, check_time_step, format_bytes
from ..neurons.base import Neuron
from ..state import ParamState, set_simulation_time, simulation_time
from ..units import is_quantity, to_canonical
from . import compiler
from .graph_capture import CapturedChunk, GraphCaptureError, _describe, state_slots
from .loops import ProgressBar, _as_progress_bar, _Progress

__all__ = ["NetworkRunner"]

logger = logging.getLogger(__name__)

_RECORD_MODES = ("dense", "indices", None)
#: On devices other than the CPU the watchdog's flags are read every this many chunks.
_WATCHDOG_READ_EVERY = 100


class NetworkRunner:
    """Run ``net()`` for many steps in compiled chunks, without autograd.

    The loop runs under ``torch.inference_mode`` (cheaper dispatch than ``no_grad``, which
    matters for the per-step custom ops), so the States it leaves are inference tensors: call
    ``tb.reset_all_states(net)`` before training the same model with autograd.

    With CUDA graphs (``graph=None`` on CUDA, or ``graph=True``) the first full chunk of a run is
    captured once (after two warm-up chunks whose effect on the States is undone) and every full
    chunk is a replay: the States are copied back into their pre-capture tensors at the end of
    the captured chunk, the chunk's start time reaches the graph through a static device tensor,
    and the outputs are copied from the graph's static buffer into the records. The spikes are
    those of the compiled chunk (the same operations). The graph is captured again when ``dt``,
    another environment value, a State's shape/dtype/device or a non-State tensor of the
    network changed since (States reset to new tensors of the same shape are copied in).

    Parameters
    ----------
    net : nn.Module
        Its call advances one step and returns a tensor (spikes).
    chunk : int, default 10
        Steps per compiled chunk (and per CUDA-graph replay).
    compile : bool or None, default None
        ``True``: compile the chunk (``fullgraph=True``, ``dynamic=False``). ``False``: run the
        same loop eagerly (and capture the eager chunk when graphs are on). ``None``: compile
        when the network's States are on CUDA (or a ``graph_factory`` is given), run eagerly on
        the CPU (see the module docstring for why). Without a working C++ compiler a compile is
        not tried: the eager chunk runs and one notice is written on stderr
        (:attr:`compile_fallback_reason` says why).
    record_dtype : torch.dtype, default torch.bool
        Storage type of the recorded outputs (``bool`` keeps spikes at one byte).
    graph : bool or None, default None
        ``None``: capture the chunk in a CUDA graph when the network's States are on one CUDA
        device and the capture succeeds, else run the compiled chunk (as without graphs on the
        CPU; a chunk that cannot be captured, e.g. one that synchronises with the host, is
        reported once through the logger ``torchbrain.drivers.runner`` at level INFO and not tried
        again by this runner). ``True``: require the graph and raise
        :class:`~torchbrain.drivers.graph_capture.GraphCaptureError` naming the module and the
        reason when it cannot be used. ``False``: never.
    graph_factory : callable, optional
        ``graph_factory(net, device)`` making the graph object (default
        :class:`torch.cuda.CUDAGraph` behind
        :class:`~torchbrain.drivers.graph_capture.CUDAGraphBackend`). For tests:
        :class:`~torchbrain.drivers.graph_capture.EmulatedGraph` gives the same memory semantics on
        the CPU; with a factory given, the States' device is not checked.
    record : {'dense', 'indices', None}, default 'dense'
        What ``run`` returns. ``'dense'``: the ``(steps, *output_shape)`` tensor of outputs in
        ``record_dtype``, preallocated once its size is known (after the first chunk) and
        refused with a ``MemoryError`` before the run goes on when it would not fit in the
        memory available. ``'indices'``: the nonzero entries only, an int64 tensor of shape
        ``(n_events, 1 + output_ndim)`` whose rows are ``(step, *index)`` (``(step, neuron)``
        for a population's spikes), in step order: memory grows with the spikes, not with
        steps × neurons (one device-to-host synchronisation per chunk). ``None``: nothing is
        recorded and ``run`` returns ``None`` (for runs read through monitors or States).
    check_finite : bool, default True
        The NaN watchdog: after every chunk, one reduction per floating State checks that every
        State is finite (on the device, no synchronisation per step; read on the host after
        each chunk on the CPU, every 100 chunks and at the end on other devices). A State that
        became NaN or ±inf (a NaN or infinite input to a neuron's update ends up in its ``V``)
        stops the run with a ``FloatingPointError`` naming the State's module path and the
        steps of the chunk; the outputs recorded so far are its ``records`` attribute.
        ``False`` turns the check off.
    max_record_bytes : int, optional
        Largest record (``record='dense'``) a run may allocate; default the memory available
        on the records' device (``MemAvailable`` of ``/proc/meminfo`` on the CPU,
        ``torch.cuda.mem_get_info`` on CUDA), so a run that cannot fit says so after one
        chunk instead of failing after the simulation or being killed by the OOM killer.

    Attributes
    ----------
    compile_seconds : float
        Wall time of the first compiled chunk of the last run (which includes the compilation
        on the first run), or of the first warm-up chunk of the last CUDA-graph capture.
    capture_seconds : float
        Wall time of the last CUDA-graph setup, the first (compiling) warm-up chunk excepted.
    graph_fallback_reason : str or None
        Why ``graph=None`` gave up on CUDA graphs (the logged message), ``None`` otherwise.
    compile_fallback_reason : str or None
        Why a compile that was asked for runs eagerly instead (no working C++ compiler),
        ``None`` otherwise.
    """

    def __init__(self, net: nn.Module, chunk: int = 10, compile: bool | None = None,
                 record_dtype: torch.dtype = torch.bool, graph: bool | None = None,
                 graph_factory: Callable[[nn.Module, torch.device], Any] | None = None,
                 *, record: str | None = "dense", check_finite: bool = True,
                 max_record_bytes: int | None = None):
        if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
            raise ValueError(f"NetworkRunner: 'chunk' must be a positive int, got {chunk!r}")
        if not isinstance(net, nn.Module):
            raise TypeError(f"NetworkRunner: 'net' must be an nn.Module, got {type(net).__name__}")
        if not isinstance(record_dtype, torch.dtype):
            raise TypeError(
                f"NetworkRunner: 'record_dtype' must be a torch.dtype (e.g. torch.bool), got "
                f"{record_dtype!r}"
            )
        if record not in _RECORD_MODES:
            raise ValueError(
                f"NetworkRunner: 'record' must be 'dense', 'indices' or None, got {record!r}"
            )
        if not isinstance(check_finite, bool):
            raise TypeError(
                f"NetworkRunner: 'check_finite' must be True or False, got {check_finite!r}"
            )
        if max_record_bytes is not None and (
                isinstance(max_record_bytes, bool) or not isinstance(max_record_bytes, int)
                or max_record_bytes < 0):
            raise ValueError(
                f"NetworkRunner: 'max_record_bytes' must be an int >= 0 or None, got "
                f"{max_record_bytes!r}"
            )
        self.record = record
        self.check_finite = check_finite
        self.max_record_bytes = max_record_bytes
        if graph is not None and not isinstance(graph, bool):
            raise ValueError(f"NetworkRunner: 'graph' must be True, False or None, got {graph!r}")
        if compile is not None and not isinstance(compile, bool):
            raise ValueError(
                f"NetworkRunner: 'compile' must be True, False or None, got {compile!r}"
            )
        self.net = net
        self.chunk = chunk
        self.record_dtype = record_dtype
        self.graph = graph
        self.graph_factory = graph_factory
        self.compile = compile
        self.compile_seconds = 0.0
        self.capture_seconds = 0.0
        self.compile_fallback_reason: str | None = None
        # created on first use: building the torch.compile object imports Dynamo and Inductor
        # (seconds), which an eager run should not pay
        self._compiled: Callable | None = None
        self._captured: CapturedChunk | None = None
        self._captured_key: tuple | None = None
        self.graph_fallback_reason: str | None = None

    def _run_chunk(self, t0: torch.Tensor, dt: float, n: int) -> torch.Tensor:
        outs = []
        for i in range(n):
            with environ.context(t=t0 + i * dt):
                outs.append(self.net())
        return torch.stack(outs)

    # ------------------------------------------------------------------ compiling
    def _wants_compile(self) -> bool:
        if self.compile is not None:
            return self.compile
        device = self._states_device()
        return self.graph_factory is not None or (device is not None and device.type == "cuda")

    def _chunk_fn(self) -> Callable | None:
        """The compiled chunk to call, or ``None`` for the eager one (decided once per runner)."""
        if self._compiled is not None or self.compile_fallback_reason or not self._wants_compile():
            return self._compiled
        problem = compiler.compile_problem("inductor")
        if problem is not None:
            self._fall_back(problem)
            return None
        compiler.use_persistent_cache()
        self._compiled = torch.compile(self._run_chunk, fullgraph=True, dynamic=False)
        return self._compiled

    def _fall_back(self, problem: str) -> None:
        self.compile_fallback_reason = f"NetworkRunner: {problem}; running the eager chunk"
        compiler.notice_eager_fallback(problem)

    def _signature(self, dt: float) -> str:
        """What decides the compiled chunk, for the first-compile notice."""
        slots = ";".join(
            f"{slot.qualname}:{type(slot.module).__qualname__}:{_describe(value)}"
            for slot in state_slots(self.net)
            for value in (getattr(slot.module, slot.name),)
        )
        return (f"NetworkRunner|{type(self.net).__module__}.{type(self.net).__qualname__}|"
                f"chunk={self.chunk}|dt={dt!r}|{slots}")

    def _call_compiled(self, chunk_fn: Callable, t_start: torch.Tensor, dt: float,
                       n: int) -> torch.Tensor:
        """First compiled call of a run: announce a first compile, fall back without a compiler."""
        signature = self._signature(dt)
        first = compiler.first_compile(signature)
        if first:
            compiler.notice(f"compiling:{signature}", (
                f"compiling {type(self.net).__name__}'s {self.chunk}-step chunk (first run only; "
                f"cached in {compiler.use_persistent_cache()})..."
            ))
        try:
            out = chunk_fn(t_start, dt, n)
        except Exception as err:
            failure = compiler.compiler_error(err)
            if failure is None:
                raise
            self._compiled = None
            self._fall_back(f"the C++ compiler could not build the compiled chunk: "
                            f"{type(failure).__name__}")
            return self._run_chunk(t_start, dt, n)
        if first:
            compiler.mark_compiled(signature)
        return out

    def _states_to_inference(self) -> None:
        # The loop turns every State into an inference tensor on its first write; doing it up
        # front keeps the compiled chunk from being compiled twice (once per tensor kind).
        for _, module in self.net.named_modules():
            for name, kind in getattr(module, "_state_kinds", {}).items():
                value = getattr(module, name)
                if (not issubclass(kind, ParamState) and isinstance(value, torch.Tensor)
                        and not value.is_inference()):
                    module._set_state_value(name, value.clone())

    # ------------------------------------------------------------------ CUDA graphs
    def _states_device(self) -> torch.device | None:
        """The one device holding every State of the network (None: none, or several)."""
        devices = {value.device for slot in state_slots(self.net)
                   if isinstance(value := getattr(slot.module, slot.name), torch.Tensor)}
        return devices.pop() if len(devices) == 1 else None

    @staticmethod
    def _environment_key(dt: float) -> tuple:
        # Everything a step may read from the environment is baked into the graph, except t.
        plain = (bool, int, float, str, type(None))
        return (dt,) + tuple(sorted(
            (k, v if isinstance(v, plain) else ("object", id(v)))
            for k, v in environ.all().items() if k != environ.T
        ))

    def _graph_chunk(self, dt: float, t0: float) -> CapturedChunk | None:
        """The captured chunk to replay in this run, or None to run the compiled chunk."""
        if self.graph is False or (self.graph is None and self.graph_fallback_reason):
            return None
        device = self._states_device()
        if self.graph_factory is None and (device is None or device.type != "cuda"):
            where = sorted({str(v.device) for s in state_slots(self.net)
                            if isinstance(v := getattr(s.module, s.name), torch.Tensor)})
            reason = (
                f"NetworkRunner: CUDA graphs need every State of the network on one CUDA "
                f"device; they are on {where or 'no device (no initialised State)'}"
            )
            if self.graph:
                raise GraphCaptureError(
                    reason + ". Move the network with net.to('cuda') and initialise its States "
                    "(tb.init_all_states), or pass graph=None (graphs when possible) or "
                    "graph=False."
                )
            return None  # CPU: the compiled chunk, as without graphs (nothing to log)
        key = self._environment_key(dt)
        captured = self._captured
        if captured is not None and self._captured_key == key and captured.is_current():
            captured.sync_states()
            return captured
        self._captured = self._captured_key = None
        captured = CapturedChunk(
            self.net, self._graph_body(dt), device=device if device is not None else "cpu",
            graph_factory=self.graph_factory,
            probe=lambda t: self._run_chunk(t, dt, 1), owner="NetworkRunner",
        )
        try:
            environ.sync_for_compiled_call()
            captured.capture(t0)
        except GraphCaptureError as err:
            if self.graph:
                raise
            self.graph_fallback_reason = str(err)
            logger.info("%s -- running the %s chunk instead", err,
                        "compiled" if self._chunk_fn() is not None else "eager")
            return None
        self.capture_seconds = captured.capture_seconds
        if self._chunk_fn() is not None:
            self.compile_seconds = captured.first_call_seconds
        self._captured, self._captured_key = captured, key
        return captured

    def _graph_body(self, dt: float) -> Callable[[torch.Tensor], torch.Tensor]:
        chunk_fn = self._chunk_fn() or self._run_chunk
        n, dtype = self.chunk, self.record_dtype

        def body(t0: torch.Tensor) -> torch.Tensor:
            # the records are cast inside the graph: a replay's output is copied as is
            return chunk_fn(t0, dt, n).to(dtype)

        return body

    # ------------------------------------------------------------------ run checks
    @staticmethod
    def _check_steps(steps: Any) -> int:
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
            raise TypeError(f"NetworkRunner.run: 'steps' must be an int, got {steps!r}")
        steps = operator.index(steps)
        if steps < 1:
            raise ValueError(f"NetworkRunner.run: 'steps' must be a positive int, got {steps}")
        return steps

    def _start_time(self, t0: Any) -> float:
        """``t0`` in ms as a float: the network's own time when None (see ``simulation_time``)."""
        if t0 is None:
            return simulation_time(self.net)
        if is_quantity(t0):
            t0 = to_canonical(t0, "ms", owner="NetworkRunner.run", name="t0")
        if isinstance(t0, torch.Tensor) and t0.numel() == 1:
            t0 = t0.item()
        if isinstance(t0, bool) or not isinstance(t0, numbers.Real):
            raise TypeError(
                f"NetworkRunner.run: 't0' must be a time (a number in ms or a quantity), got "
                f"{t0!r}"
            )
        if not math.isfinite(float(t0)):
            raise ValueError(f"NetworkRunner.run: 't0' must be a finite time, got {t0} ms")
        return float(t0)

    def _check_initialised(self) -> None:
        # populations need init_all_states (inputs initialise themselves on first use)
        for prefix, module in self.net.named_modules():
            if isinstance(module, Neuron) and not module._initialised:
                where = f"'{prefix}' ({type(module).__name__})" if prefix else type(module).__name__
                raise RuntimeError(
                    f"NetworkRunner: the States of {where} are not initialised; call "
                    "tb.init_all_states(net) (or tb.init_all_states(net, batch_size=B)) first"
                )

    def _snapshot(self) -> list[tuple[Any, torch.Tensor | None]]:
        return [(slot, value.clone() if isinstance(value := getattr(slot.module, slot.name),
                                                   torch.Tensor) else value)
                for slot in state_slots(self.net)]

    @staticmethod
    def _restore(snapshot) -> None:
        # copy_ where possible: CUDA-graph States keep their addresses
        for slot, saved in snapshot:
            current = getattr(slot.module, slot.name)
            if (isinstance(current, torch.Tensor) and isinstance(saved, torch.Tensor)
                    and current.shape == saved.shape and current.dtype == saved.dtype):
                current.copy_(saved)
            else:
                slot.module._set_state_value(slot.name, saved)

    def _allocate_records(self, steps: int, out: torch.Tensor, t0: float, dt: float):
        """The tensor the dense records go into, after checking that it fits."""
        shape = (steps, *out.shape[1:])
        itemsize = torch.empty((), dtype=self.record_dtype).element_size()
        need = math.prod(shape) * itemsize
        limit = self.max_record_bytes
        where = "the limit max_record_bytes"
        if limit is None:
            limit, where = available_bytes(out.device), f"the memory available on {out.device}"
        if limit is not None and need > limit:
            per_step = math.prod(out.shape[1:]) * itemsize
            raise MemoryError(
                f"NetworkRunner: the record of this run needs {format_bytes(need)} ({steps} "
                f"steps x {math.prod(out.shape[1:])} outputs x {itemsize} B of "
                f"{self.record_dtype}), more than {where} ({format_bytes(limit)}); nothing was "
                f"run (the network is back at t = {t0:g} ms). Run it in shorter runs of at most "
                f"{max(limit // per_step, 0)} steps (each run continues from the last), record "
                "spike indices only with NetworkRunner(..., record='indices'), or record "
                "nothing (record=None) and read monitors"
            )
        return torch.empty(shape, dtype=self.record_dtype, device=out.device)

    # ------------------------------------------------------------------ the loop
    @torch.inference_mode()
    def run(self, steps: int, t0: Any = None, pbar: ProgressBar | bool | int | None = None):
        """Advance ``steps`` steps from time ``t0``; returns the recorded outputs.

        ``dt`` comes from the current :mod:`torchbrain.environ` context. ``t0`` (a quantity, or
        a number in ms) defaults to the time the network has reached
        (:func:`~torchbrain.simulation_time`: 0 after ``init_all_states``, the end of the last
        run after a run, the saved time after ``tb.load_state_dict``), so consecutive runs and
        a run resumed from a saved state continue the same simulation. ``steps`` must be a
        positive int; ``t0`` must be finite. See ``record`` for what is returned.
        """
        steps = self._check_steps(steps)
        t0 = self._start_time(t0)
        dt = environ.get_dt_value(desc="NetworkRunner")
        check_time_step(self.net, dt)
        self._states_to_inference()
        captured = self._graph_chunk(dt, t0) if steps >= self.chunk else None
        chunk_fn = self._chunk_fn() if captured is None else None
        self._check_initialised()
        snapshot = self._snapshot() if self.record == "dense" else None
        watchdog = _Watchdog(self.net) if self.check_finite else None
        records = None
        events: list[torch.Tensor] = []
        done = 0
        progress_bar = _as_progress_bar(pbar, "NetworkRunner")
        with _Progress(progress_bar, steps, "NetworkRunner") as progress:
            while done < steps:
                n = min(self.chunk, steps - done)
                if captured is not None and n == self.chunk:
                    out = captured.replay(t0 + done * dt)
                else:
                    t_start = torch.tensor(t0 + done * dt, dtype=torch.float64)
                    if chunk_fn is not None and n == self.chunk:
                        environ.sync_for_compiled_call()
                        if done == 0:
                            tic = time.perf_counter()
                            out = self._call_compiled(chunk_fn, t_start, dt, n)
                            self.compile_seconds = time.perf_counter() - tic
                            chunk_fn = self._compiled  # None after a fallback
                        else:
                            out = chunk_fn(t_start, dt, n)
                    else:
                        out = self._run_chunk(t_start, dt, n)
                if self.record == "dense":
                    if records is None:
                        try:
                            records = self._allocate_records(steps, out, t0, dt)
                        except MemoryError:
                            self._restore(snapshot)
                            raise
                        snapshot = None
                    records[done: done + n] = out.to(self.record_dtype)
                elif self.record == "indices":
                    idx = out.nonzero()
                    idx[:, 0] += done
                    events.append(idx)
                done += n
                set_simulation_time(self.net, t0 + done * dt)
                if watchdog is not None:
                    watchdog.after_chunk(done - n, done, t0, dt, records, events)
                progress.step(n)
        if watchdog is not None:
            watchdog.check(records, events)
        if self.record == "indices":
            return torch.cat(events) if events else torch.zeros((0, 1), dtype=torch.long)
        return records


class _Watchdog:
    """The NaN/inf check of :class:`NetworkRunner` (see its ``check_finite``).

    Per chunk, a stack of one ``isfinite().all()`` per floating State records, on the device,
    the first chunk in which each State stopped being finite; the host reads those flags after
    every chunk on the CPU (a read is free there) and every ``_WATCHDOG_READ_EVERY`` chunks
    elsewhere, and always at the end.
    """

    def __init__(self, net: nn.Module):
        self.slots = [slot for slot in state_slots(net)
                      if isinstance(v := getattr(slot.module, slot.name), torch.Tensor)
                      and (v.is_floating_point() or v.is_complex())]
        self.chunks: list[tuple[int, int, float, float]] = []
        self.first_bad: torch.Tensor | None = None
        self.host_reads = not self.slots or all(
            getattr(s.module, s.name).device.type == "cpu" for s in self.slots)

    def after_chunk(self, start: int, stop: int, t0: float, dt: float, records, events) -> None:
        if not self.slots:
            return
        finite = torch.stack([torch.isfinite(getattr(s.module, s.name)).all()
                              for s in self.slots])
        k = len(self.chunks)
        self.chunks.append((start, stop, t0, dt))
        if self.first_bad is None:
            self.first_bad = torch.full(finite.shape, -1, dtype=torch.long, device=finite.device)
        self.first_bad = torch.where((self.first_bad < 0) & ~finite, k, self.first_bad)
        if self.host_reads or (k + 1) % _WATCHDOG_READ_EVERY == 0:
            self.check(records, events)

    def check(self, records, events) -> None:
        """Raise ``FloatingPointError`` when a State became non-finite; the error's ``records``
        are the outputs of the steps run so far (dense rows or the event list's indices)."""
        if self.first_bad is None:
            return
        bad = self.first_bad.cpu()
        if bool((bad < 0).all()):
            return
        chunk = int(bad[bad >= 0].min())
        hit = [slot for slot, k in zip(self.slots, bad.tolist(), strict=True) if k == chunk]
        names = [slot.qualname for slot in hit]
        start, stop, t0, dt = self.chunks[chunk]
        first = getattr(hit[0].module, hit[0].name)
        kind = "NaN" if bool(torch.isnan(first).any()) else "inf"
        err = FloatingPointError(
            f"NetworkRunner: State {', '.join(repr(n) for n in names)} became non-finite "
            f"({kind} now) in steps [{start}, {stop}) of the run (t = {t0 + start * dt:g} to "
            f"{t0 + stop * dt:g} ms); look for NaN or infinite inputs, parameters or initial "
            "values there, or a dt too coarse for the model. The run stopped at step "
            f"{self.chunks[-1][1]}; pass NetworkRunner(..., check_finite=False) to run on"
        )
        stopped = self.chunks[-1][1]
        if records is not None:
            err.records = records[:stopped]
        else:
            err.records = torch.cat(events) if events else None
        raise err
