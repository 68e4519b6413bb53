r"""Training stateful spiking models with ``DistributedDataParallel`` (and Lightning's DDP).

torchbrain's States (membrane potentials, synaptic traces, refractory clocks) are **buffers**,
and each replica's States belong to its own batch: they must stay per replica, neither
broadcast nor averaged. Only the parameters are shared, and DDP keeps them equal by averaging
their gradients. DDP, however, treats buffers as model state to keep identical:

* at construction it broadcasts every buffer from rank 0 (States initialised before wrapping
  are overwritten on every other rank);
* with ``forward_sync_buffers=True`` (the default, formerly ``broadcast_buffers=True``) it
  broadcasts them again at the start of every forward: a State that carries over from one
  forward to the next (truncated BPTT, online learning, streaming inference) is silently
  replaced by rank 0's, every step pays one broadcast of every State, and replicas whose batch
  sizes differ (an uneven last batch) fail inside the broadcast.

Two ways to keep States per replica:

1. **Recommended**: ``ignore_states_in_ddp(model)`` before wrapping. It lists every State in
   the module attribute DDP reads (``_ddp_params_and_buffers_to_ignore``), so DDP leaves them
   alone at construction and at every forward, whatever its flags, while parameters and the
   other buffers (unit parameters such as ``tau``) stay synchronised. It works the same with
   Lightning: call it on the ``LightningModule`` (e.g. at the end of ``__init__``), which is
   the module Lightning's ``DDPStrategy`` wraps.
2. ``DistributedDataParallel(model, broadcast_buffers=False)`` (Lightning:
   ``Trainer(strategy=DDPStrategy(broadcast_buffers=False))``): no buffer is synchronised, at
   construction or per forward. PyTorch 2.13 deprecates the argument (``FutureWarning``) in
   favour of ``forward_sync_buffers=False``, which still broadcasts buffers at construction;
   with it, initialise or reset the States after wrapping.

In every case: every rank runs the same number of forward/backward passes (gradient
averaging is a collective; use ``DistributedSampler(drop_last=True)`` or ``Join`` for uneven
data), States are reset per batch on each rank (:class:`torchbrain.lightning.ResetStates`
sizes them from each rank's own batch), and :func:`parameters_in_sync` checks that the
replicas still share their parameters.
"""

from __future__ import annotations

from torch import nn

from ..state import ShortTermState, StateKind, states
from .exchange import guarded, world

__all__ = ["ignore_states_in_ddp", "parameters_in_sync"]


def ignore_states_in_ddp(model: nn.Module,
                         kinds: tuple[type[StateKind], ...] = (ShortTermState,)) -> list[str]:
    """Make ``DistributedDataParallel`` leave the States of ``model`` alone (see module doc).

    Call it before ``DistributedDataParallel(model, ...)``. States declared later are not
    covered (call it again before wrapping).

    Parameters
    ----------
    model : nn.Module
        The module that will be wrapped (for Lightning: the ``LightningModule``).
    kinds : tuple of State kinds, default ``(ShortTermState,)``
        Which States to keep per replica. The default covers every dynamical State
        (``HiddenState`` is a ``ShortTermState``); add ``LongTermState`` to keep, e.g.,
        locally plastic weights per replica too. ``ParamState`` (trainable) is never ignored:
        its gradients must be averaged.

    Returns
    -------
    list of str
        The names DDP will ignore (existing entries are kept).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"ignore_states_in_ddp: expected an nn.Module, got {type(model).__name__}")
    if type(model).__name__ == "DistributedDataParallel":
        raise TypeError("ignore_states_in_ddp: call it on the module before wrapping it in "
                        "DistributedDataParallel (DDP reads the list when it is built)")
    names = set(getattr(model, "_ddp_params_and_buffers_to_ignore", ()))
    params = dict(model.named_parameters())
    for kind in kinds:
        for name in states(model, kind):
            if name not in params:
                names.add(name)
    model._ddp_params_and_buffers_to_ignore = sorted(names)
    return model._ddp_params_and_buffers_to_ignore


def parameters_in_sync(model: nn.Module, group=None, atol: float = 0.0) -> bool:
    """Whether every rank holds the same parameters (collective; ``True`` on one process).

    Compares each parameter's sum and sum of squares across ranks (a cheap fingerprint, two
    numbers per parameter), within ``atol``.
    """
    import torch
    import torch.distributed as dist

    _, size, group = world(group)
    if size == 1:
        return True
    module = getattr(model, "module", model)
    params = list(module.parameters())
    if not params:
        return True
    with torch.no_grad():
        fp = torch.stack([torch.stack([p.double().sum(), p.double().square().sum()])
                          for p in params]).reshape(-1)
    lo, hi = fp.clone(), fp.clone()
    guarded("parameters_in_sync", "all_reduce(MIN)",
            lambda: dist.all_reduce(lo, op=dist.ReduceOp.MIN, group=group), group)
    guarded("parameters_in_sync", "all_reduce(MAX)",
            lambda: dist.all_reduce(hi, op=dist.ReduceOp.MAX, group=group), group)
    return bool(((hi - lo).abs() <= atol).all())

