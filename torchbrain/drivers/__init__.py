"""Drivers: how a run happens — a step function applied over time.

Every torchbrain model advances by one *step* (``net(x)`` rebinds its States and returns the
spikes). A driver decides how that step is repeated; this package holds all of them, from the
simplest to the fastest, each in its own file:

:mod:`~torchbrain.drivers.loops`
    ``for_loop(step, *xs)`` and ``scan(step, carry, xs)`` call the step once per time point and
    stack the outputs (autograd flows through, for training); ``checkpointed_for_loop`` /
    ``checkpointed_scan`` give the same gradients with ``sqrt(T)`` activation memory;
    ``jit``/``compile`` wrap ``torch.compile`` so a compiled step reads :mod:`torchbrain.environ`
    correctly; ``time_range`` gives the time points and ``ProgressBar`` reports progress.
:mod:`~torchbrain.drivers.runner`
    ``NetworkRunner`` runs a simulation without autograd in compiled chunks of ``K`` unrolled
    steps, so Python runs once per chunk, and records the spikes in one preallocated tensor.
:mod:`~torchbrain.drivers.graph_capture`
    ``CapturedChunk``: on CUDA the runner captures one chunk in a CUDA graph and replays it;
    this file keeps the States at static addresses and feeds the chunk's start time to the graph.
:mod:`~torchbrain.drivers.monitor`
    ``Monitor`` and ``RateMonitor`` record chosen States (or spike counts) from the user's loop.
:mod:`~torchbrain.drivers.streaming`
    ``StreamingMonitor`` writes the same records to disk in chunks, so memory stays flat.

Drivers sit above the models and below training: they import the core (``state``, ``environ``,
``units``) and :mod:`torchbrain.analysis` (the runner also reads ``neurons.base.Neuron`` to tell an
uninitialised population before it runs), never a model, so any ``nn.Module`` that advances one
step per call can be driven. The public names are re-exported at the top level
(``tb.for_loop``, ``tb.NetworkRunner``, ``tb.Monitor``, ...).
"""

from .graph_capture import (
    CapturedChunk,
    CUDAGraphBackend,
    EmulatedGraph,
    GraphCaptureError,
    StateSlot,
    state_slots,
)
from .loops import (
    ProgressBar,
    checkpointed_for_loop,
    checkpointed_scan,
    compile,
    for_loop,
    jit,
    scan,
    time_range,
)
from .monitor import Monitor, RateMonitor
from .runner import NetworkRunner

__all__ = [
    "time_range",
    "for_loop",
    "scan",
    "checkpointed_for_loop",
    "checkpointed_scan",
    "ProgressBar",
    "jit",
    "compile",
    "NetworkRunner",
    "CapturedChunk",
    "CUDAGraphBackend",
    "EmulatedGraph",
    "GraphCaptureError",
    "StateSlot",
    "state_slots",
    "Monitor",
    "RateMonitor",
]
