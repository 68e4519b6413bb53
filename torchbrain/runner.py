"""``NetworkRunner``: run a network's step many times, fast, recording its spikes.

A Python loop that calls a network one step at a time pays Python and dispatch overhead on every
step. The runner instead compiles a *chunk* of ``K`` unrolled steps with
``torch.compile(fullgraph=True)`` (one graph, States rebound inside it) and loops over chunks, so
Python runs once per ``K`` steps. On the CPU a chunk of 10 steps matched a fully unrolled loop's
speed at a small fraction of its compile time (torchbrain's anchors page). Outputs are written into
one preallocated tensor (``bool`` for spikes).

The network is any module whose ``forward()`` (no argument, or a fixed input) advances one step
and returns the spikes; the time ``t`` of each step is set in :mod:`torchbrain.environ` for it.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from . import environ
from .state import ParamState
from .transform import ProgressBar, _as_progress_bar, _Progress

__all__ = ["NetworkRunner"]


class NetworkRunner:
    """Run ``net()`` for many steps in compiled chunks, without autograd.

    The loop runs under ``torch.inference_mode`` (cheaper dispatch than ``no_grad``, which
    matters for the per-step custom ops), so the States it leaves are inference tensors: call
    ``tb.reset_all_states(net)`` before training the same model with autograd.

    Parameters
    ----------
    net : nn.Module
        Its call advances one step and returns a tensor (spikes).
    chunk : int, default 10
        Steps per compiled chunk.
    compile : bool, default True
        Compile the chunk (``fullgraph=True``); ``False`` runs the same loop eagerly.
    record_dtype : torch.dtype, default torch.bool
        Storage type of the recorded outputs (``bool`` keeps spikes at one byte).
    """

    def __init__(self, net: nn.Module, chunk: int = 10, compile: bool = True,
                 record_dtype: torch.dtype = torch.bool):
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"NetworkRunner: 'chunk' must be a positive int, got {chunk!r}")
        self.net = net
        self.chunk = chunk
        self.record_dtype = record_dtype
        self.compile_seconds = 0.0
        self._compiled = torch.compile(self._run_chunk, fullgraph=True) if compile else None

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

    @torch.inference_mode()
    def run(self, steps: int, t0: float = 0.0, pbar: ProgressBar | bool | int | None = None):
        """Advance ``steps`` steps from time ``t0`` (ms); returns the stacked outputs.

        ``dt`` comes from the current :mod:`torchbrain.environ` context.
        """
        dt = environ.get_dt_value(desc="NetworkRunner")
        self._states_to_inference()
        records = None
        done = 0
        progress_bar = _as_progress_bar(pbar, "NetworkRunner")
        with _Progress(progress_bar, steps, "NetworkRunner") as progress:
            while done < steps:
                n = min(self.chunk, steps - done)
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
