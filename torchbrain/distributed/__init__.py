"""Scale-out: simulations and training across processes and GPUs with ``torch.distributed``.

* **Simulation** (:mod:`~torchbrain.distributed.network`): :class:`DistributedCOBANet` and
  :class:`DistributedCUBANet` split the benchmark E/I networks by neuron index over the ranks of
  a process group; each rank builds only the incoming synapses of its neurons
  (:mod:`~torchbrain.distributed.connectivity`, from the shared seed, identical on any number of
  ranks), and spikes travel as compact index lists once every minimum delay
  (:mod:`~torchbrain.distributed.exchange`). A seeded network gives the same spikes on 1 and on
  N ranks. :class:`DistributedMicrocircuit` (:mod:`~torchbrain.distributed.microcircuit`) does
  the same for the Potjans–Diesmann microcircuit, per-synapse delays and Poisson drive included.
* **Recording and checkpoints** (:mod:`~torchbrain.distributed.checkpoint`): per rank, gathered
  on demand; restoring (also on another number of ranks) continues the same simulation.
* **Training** (:mod:`~torchbrain.distributed.ddp`): States stay per replica under
  ``DistributedDataParallel`` and Lightning's DDP with :func:`ignore_states_in_ddp` (or
  ``broadcast_buffers=False``).
* **Failures** raise :class:`DistributedError` with the cause (ranks disagreeing on the model,
  world sizes that do not match, a collective that failed or timed out because a rank died or
  hangs) instead of hanging: set the timeout with
  ``init_distributed(timeout=...)``/``dist.init_process_group(timeout=...)``.

Launch with ``torchrun --standalone --nproc_per_node=N script.py``; the same script runs as
``python script.py`` on one process. ``torchrun --standalone --nproc_per_node=2 -m
torchbrain.distributed._selftest`` checks a setup (CPU, gloo).
"""

from .base import DistributedNetwork
from .checkpoint import (
    gather_raster,
    gather_state_dict,
    load_checkpoint,
    load_global_state_dict,
    save_checkpoint,
)
from .connectivity import (
    LocalTable,
    block_generator,
    blockwise_in_degree_table,
    blockwise_out_degree_table,
    fixed_in_degree_local,
    fixed_out_degree_local,
    initial_values_local,
)
from .ddp import ignore_states_in_ddp, parameters_in_sync
from .exchange import (
    DistributedError,
    all_gather_varlen,
    check_same_config,
    guarded,
    init_distributed,
    world,
)
from .microcircuit import DistributedMicrocircuit, microcircuit_connectivity_local
from .network import DistributedCOBANet, DistributedCUBANet, DistributedEINet
from .partition import Partition

__all__ = [
    "DistributedCOBANet",
    "DistributedCUBANet",
    "DistributedEINet",
    "DistributedError",
    "DistributedMicrocircuit",
    "DistributedNetwork",
    "LocalTable",
    "Partition",
    "all_gather_varlen",
    "block_generator",
    "check_same_config",
    "fixed_in_degree_local",
    "blockwise_in_degree_table",
    "fixed_out_degree_local",
    "blockwise_out_degree_table",
    "gather_raster",
    "gather_state_dict",
    "guarded",
    "ignore_states_in_ddp",
    "init_distributed",
    "initial_values_local",
    "load_checkpoint",
    "load_global_state_dict",
    "microcircuit_connectivity_local",
    "parameters_in_sync",
    "save_checkpoint",
    "world",
]
