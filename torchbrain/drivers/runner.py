"""``NetworkRunner``: run a network's step many times, fast, recording its spikes.

A Python loop that calls a network one step at a time pays Python and dispatch overhead on every
step. The runner instead compiles a *chunk* of ``K`` unrolled steps with
``torch.compile(fullgraph=True)`` (one graph, States rebound inside it) and loops over chunks, so
Python runs once per ``K`` steps. On the CPU a chunk of 10 steps matched a fully unrolled loop's
speed at a small fraction of its compile time (torchbrain's anchors page). Outputs are written into
one preallocated tensor (``bool`` for spikes).

The network is any module whose ``forward()`` (no argument, or a fixed input) advances one step
and returns the spikes; the time ``t`` of each step is set in :mod:`torchbrain.environ` for it.

On CUDA the chunk can also be captured once in a CUDA graph and replayed (``graph=``), which
removes the remaining per-kernel launch cost: see :mod:`torchbrain.drivers.graph_capture` for how
the States keep static addresses and how ``t`` reaches the graph.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .. import environ
from ..state import ParamState
from .graph_capture import CapturedChunk, GraphCaptureError, state_slots
from .loops import ProgressBar, _as_progress_bar, _Progress

__all__ = ["NetworkRunner"]

logger = logging.getLogger(__name__)


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
    compile : bool, default True
        Compile the chunk (``fullgraph=True``); ``False`` runs the same loop eagerly (and
        captures the eager chunk when graphs are on).
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

    Attributes
    ----------
    compile_seconds : float
        Wall time of the first compiled chunk of the last run (which includes the compilation
        on the first run), or of the first warm-up chunk of the last CUDA-graph capture.
    capture_seconds : float
        Wall time of the last CUDA-graph setup, the first (compiling) warm-up chunk excepted.
    graph_fallback_reason : str or None
        Why ``graph=None`` gave up on CUDA graphs (the logged message), ``None`` otherwise.
    """

    def __init__(self, net: nn.Module, chunk: int = 10, compile: bool = True,
                 record_dtype: torch.dtype = torch.bool, graph: bool | None = None,
                 graph_factory: Callable[[nn.Module, torch.device], Any] | None = None):
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"NetworkRunner: 'chunk' must be a positive int, got {chunk!r}")
        if graph is not None and not isinstance(graph, bool):
            raise ValueError(f"NetworkRunner: 'graph' must be True, False or None, got {graph!r}")
        self.net = net
        self.chunk = chunk
        self.record_dtype = record_dtype
        self.graph = graph
        self.graph_factory = graph_factory
        self.compile_seconds = 0.0
        self.capture_seconds = 0.0
        self._compiled = torch.compile(self._run_chunk, fullgraph=True) if compile else None
        self._captured: CapturedChunk | None = None
        self._captured_key: tuple | None = None
        self.graph_fallback_reason: str | None = None

    def _run_chunk(self, t0: torch.Tensor, dt: float, n: int) -> torch.Tensor:
        outs = []
        for i in range(n):
            with environ.context(t=t0 + i * dt):
                outs.append(self.net())
        return torch.stack(outs)

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
                        "compiled" if self._compiled is not None else "eager")
            return None
        self.capture_seconds = captured.capture_seconds
        if self._compiled is not None:
            self.compile_seconds = captured.first_call_seconds
        self._captured, self._captured_key = captured, key
        return captured

    def _graph_body(self, dt: float) -> Callable[[torch.Tensor], torch.Tensor]:
        chunk_fn = self._compiled if self._compiled is not None else self._run_chunk
        n, dtype = self.chunk, self.record_dtype

        def body(t0: torch.Tensor) -> torch.Tensor:
            # the records are cast inside the graph: a replay's output is copied as is
            return chunk_fn(t0, dt, n).to(dtype)

        return body

    # ------------------------------------------------------------------ the loop
    @torch.inference_mode()
    def run(self, steps: int, t0: float = 0.0, pbar: ProgressBar | bool | int | None = None):
        """Advance ``steps`` steps from time ``t0`` (ms); returns the stacked outputs.

        ``dt`` comes from the current :mod:`torchbrain.environ` context.
        """
        dt = environ.get_dt_value(desc="NetworkRunner")
        self._states_to_inference()
        captured = self._graph_chunk(dt, t0) if steps >= self.chunk else None
        records = None
        done = 0
        progress_bar = _as_progress_bar(pbar, "NetworkRunner")
        with _Progress(progress_bar, steps, "NetworkRunner") as progress:
            while done < steps:
                n = min(self.chunk, steps - done)
                if captured is not None and n == self.chunk:
                    out = captured.replay(t0 + done * dt)
                else:
                    t_start = torch.tensor(t0 + done * dt, dtype=torch.float64)
                    if self._compiled is not None and n == self.chunk:
                        environ.sync_for_compiled_call()
                        first = done == 0
                        tic = time.perf_counter()
                        out = self._compiled(t_start, dt, n)
                        if first:
                            self.compile_seconds = time.perf_counter() - tic
                    else:
                        out = self._run_chunk(t_start, dt, n)
                if records is None:
                    records = torch.empty((steps, *out.shape[1:]), dtype=self.record_dtype,
                                          device=out.device)
                records[done: done + n] = out.to(self.record_dtype)
                done += n
                progress.step(n)
        return records
