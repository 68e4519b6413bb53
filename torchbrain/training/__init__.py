"""Training world: multi-step spiking layers, encoders, losses and truncated BPTT.

Layers take whole sequences, time-major ``(T, B, ...)`` by default, and keep their last States,
so :func:`torchbrain.reset_all_states` (between batches) and :func:`torchbrain.detach_states`
(between truncated-BPTT chunks) manage them. :class:`MultiStepLIF` and :class:`MultiStepIF` run
the fused op ``torchbrain::multistep_lif`` (:mod:`torchbrain.ops.multistep_lif`).
"""

from .encoders import delta_encode, latency_encode, poisson_encode
from .eprop import DRTRL, EProp
from .layers import (
    LeakyIntegratorReadout,
    MultiStepALIF,
    MultiStepIF,
    MultiStepLIF,
    RecurrentLIF,
    SeqToANNContainer,
    SpikeCountReadout,
    TimeDistributed,
)
from .losses import (
    firing_rate_regularizer,
    membrane_cross_entropy,
    rate_mse,
    spike_count_cross_entropy,
)
from .online import OnlineLearner, SavedTensorMeter
from .ottt import OTTT
from .tbptt import chunk_slices, tbptt_chunks, truncated_bptt

__all__ = [
    "EProp",
    "DRTRL",
    "OTTT",
    "OnlineLearner",
    "SavedTensorMeter",
    "MultiStepLIF",
    "MultiStepIF",
    "MultiStepALIF",
    "RecurrentLIF",
    "TimeDistributed",
    "SeqToANNContainer",
    "LeakyIntegratorReadout",
    "SpikeCountReadout",
    "poisson_encode",
    "latency_encode",
    "delta_encode",
    "spike_count_cross_entropy",
    "rate_mse",
    "membrane_cross_entropy",
    "firing_rate_regularizer",
    "tbptt_chunks",
    "chunk_slices",
    "truncated_bptt",
]
