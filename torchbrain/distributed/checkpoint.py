r"""Recording and checkpointing of a distributed simulation: per rank, gathered on demand.

Every rank keeps what belongs to its neurons: its raster (``net.run`` returns
``(steps, n_local)``), its States. Nothing is gathered unless asked:

* :func:`gather_raster` assembles the global ``(steps, num)`` raster (spikes travel as compact
  indices, 8 bytes per spike);
* :func:`gather_state_dict` assembles a **global** state (every per-neuron State concatenated
  in neuron order), independent of the number of ranks; :func:`load_global_state_dict` loads
  it on any number of ranks;
* :func:`save_checkpoint` writes one file per rank (no communication but a barrier) and
  :func:`load_checkpoint` reads it back on the same number of ranks, or, with
  ``reshard=True``, on another number (each rank reads the files that overlap its neurons).

A checkpoint holds the simulation state (membrane potentials, refractory clocks,
conductances, the spikes waiting for the next exchange, the ring buffers of delayed input, the
step counter and the counters of the random streams) and the model's configuration, but not the
connectivity: that is rebuilt from the seed when the network is constructed, and the
configuration check makes sure it is the same network. Restoring gives the same continuation,
spike for spike.

Which State is what: a 0-d State (the step counter, a random stream's counter) is the same on
every rank; every other
State of the network is per neuron along its last dimension. Files are read by every rank, so
the directory must be on a file system all ranks see.
"""

from __future__ import annotations

import os
import re
from typing import Any

import torch
import torch.distributed as dist

from ..state import LongTermState, ParamState, ShortTermState, load_state_dict, state_dict, states
from .exchange import DistributedError, all_gather_varlen, guarded, world

__all__ = [
    "gather_raster",
    "gather_state_dict",
    "load_global_state_dict",
    "save_checkpoint",
    "load_checkpoint",
]

_GLOBAL_FORMAT = "torchbrain.distributed.global/1"
_RANK_FORMAT = "torchbrain.distributed.rank/1"
_FILE = re.compile(r"rank(\d+)-of-(\d+)\.pt$")


def _check_net(net, who: str) -> None:
    for attr in ("partition", "rank", "world_size", "n_local", "start", "stop", "config"):
        if not hasattr(net, attr):
            raise TypeError(f"{who}: expected a distributed network (DistributedCOBANet, ...), "
                            f"got {type(net).__name__}")
    if getattr(net, "step", None) is None:
        raise RuntimeError(f"{who}: the network's States are not initialised; call "
                           "tb.init_all_states(net) inside `with tb.environ.context(dt=...)` first")


def _layout(net, who: str) -> dict[str, str]:
    """``{name: 'replicated' | 'sharded'}`` for every State of ``net`` that a simulation
    advances: the short-term ones, and the long-term ones that are not parameters (e.g. the
    counter of a Poisson drive's random stream)."""
    out = {}
    params = states(net, ParamState)
    chosen = {**states(net, ShortTermState),
              **{k: v for k, v in states(net, LongTermState).items() if k not in params}}
    for name, value in chosen.items():
        if value is None or value.numel() == 0:
            continue  # unset, or empty (no one-shot input pending): nothing to carry
        if value.ndim == 0:
            out[name] = "replicated"
        elif value.shape[-1] == net.n_local:
            out[name] = "sharded"
        else:
            raise DistributedError(
                f"{who}: State '{name}' of shape {tuple(value.shape)} is neither a scalar nor "
                f"per neuron (last dimension {net.n_local}); cannot split it over ranks"
            )
    return out


def _wire(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.uint8) if t.dtype == torch.bool else t


def gather_raster(raster: torch.Tensor, net, dst: int | None = None) -> torch.Tensor | None:
    """The global ``(steps, num)`` bool raster from every rank's ``(steps, n_local)`` raster.

    Collective: every rank calls it. Spikes travel as int64 ``step * num + index`` codes. Returns
    the raster on every rank (``dst=None``) or only on rank ``dst`` (``None`` elsewhere).
    """
    who = "gather_raster"
    if not isinstance(raster, torch.Tensor) or raster.ndim != 2 or raster.shape[1] != net.n_local:
        raise ValueError(f"{who}: expected this rank's raster of shape (steps, {net.n_local}), "
                         f"got {getattr(raster, 'shape', type(raster))}")
    steps = raster.shape[0]
    nz = raster.nonzero()
    codes = nz[:, 0] * net.num + nz[:, 1] + net.start
    header = torch.tensor([steps], dtype=torch.int64, device=codes.device)
    headers, payloads = all_gather_varlen(header, codes, who=who, what="the raster gather",
                                          group=net.group)
    if len({int(h[0]) for h in headers}) != 1:
        raise DistributedError(f"{who}: the ranks recorded different numbers of steps: "
                               f"{[int(h[0]) for h in headers]}")
    if dst is not None and net.rank != dst:
        return None
    full = torch.zeros(steps, net.num, dtype=torch.bool, device=raster.device)
    full.view(-1)[torch.cat(payloads).to(raster.device)] = True
    return full


def gather_state_dict(net, dst: int | None = None) -> dict[str, Any] | None:
    """The global simulation state of ``net``, independent of the number of ranks.

    Collective (two all_gathers per State). Returns ``{'format', 'config', 'dt', 'num',
    'states'}`` on every rank (``dst=None``) or on rank ``dst`` only (``None`` elsewhere); the
    per-neuron States are concatenated in neuron order, on the CPU. Save it with ``torch.save``
    and restore it on any number of ranks with :func:`load_global_state_dict`.
    """
    who = "gather_state_dict"
    _check_net(net, who)
    layout = _layout(net, who)
    values = states(net)
    out: dict[str, torch.Tensor] = {}
    for name, kind in layout.items():
        local = values[name].detach()
        lead = tuple(local.shape[:-1])
        header = torch.tensor(list(local.shape) or [0], dtype=torch.int64, device=local.device)
        payload = _wire(local).reshape(-1)
        headers, parts = all_gather_varlen(header, payload, who=who,
                                           what=f"the gather of State '{name}'", group=net.group)
        if kind == "replicated":
            if any(not torch.equal(parts[0].cpu(), p.cpu()) for p in parts[1:]):
                raise DistributedError(f"{who}: State '{name}' differs between ranks: "
                                       f"{[p.tolist() for p in parts]}")
            out[name] = parts[0].cpu().reshape(()).to(local.dtype)
        else:
            pieces = [p.cpu().reshape(*lead, -1) for p in parts]
            out[name] = torch.cat(pieces, dim=-1).to(local.dtype)
    if dst is not None and net.rank != dst:
        return None
    return {"format": _GLOBAL_FORMAT, "config": dict(net.config), "dt": net._init_dt,
            "num": net.num, "states": out}


def _check_config(who: str, net, saved_config: dict, saved_dt) -> None:
    diffs = [f"{k}: saved {saved_config.get(k, '<missing>')!r}, model {v!r}"
             for k, v in net.config.items() if saved_config.get(k, "<missing>") != v]
    if diffs:
        raise DistributedError(f"{who}: the checkpoint was written by another model: "
                               + "; ".join(diffs))
    if saved_dt != net._init_dt:
        raise DistributedError(
            f"{who}: the checkpoint was written with dt = {saved_dt} ms but the States were "
            f"initialised with dt = {net._init_dt} ms; initialise them with the saved dt"
        )


def _load_local(net, who: str, sharded: dict[str, torch.Tensor],
                replicated: dict[str, torch.Tensor]) -> None:
    layout = _layout(net, who)
    sd = state_dict(net)
    for name, kind in layout.items():
        source = sharded if kind == "sharded" else replicated
        if name not in source:
            raise DistributedError(f"{who}: the checkpoint has no value for State '{name}'")
        value = source[name]
        current = sd[name]
        if tuple(value.shape) != tuple(current.shape):
            raise DistributedError(
                f"{who}: State '{name}' has shape {tuple(value.shape)} in the checkpoint but "
                f"{tuple(current.shape)} here (another dt or delays?)"
            )
        sd[name] = value.to(device=current.device, dtype=current.dtype)
    load_state_dict(net, sd)


def load_global_state_dict(net, sd: dict[str, Any]) -> None:
    """Load a state from :func:`gather_state_dict` into ``net``, on any number of ranks.

    Each rank takes the slice of its own neurons. ``net`` must be built with the same arguments
    and have its States initialised with the same ``dt``. No communication.
    """
    who = "load_global_state_dict"
    _check_net(net, who)
    if not isinstance(sd, dict) or sd.get("format") != _GLOBAL_FORMAT:
        fmt = sd.get("format") if isinstance(sd, dict) else None
        raise ValueError(f"{who}: expected the dict returned by gather_state_dict, got "
                         f"{type(sd).__name__} with format {fmt!r}")
    _check_config(who, net, sd["config"], sd["dt"])
    layout = _layout(net, who)
    sharded = {n: v[..., net.start:net.stop] for n, v in sd["states"].items()
               if layout.get(n) == "sharded"}
    replicated = {n: v for n, v in sd["states"].items() if layout.get(n) == "replicated"}
    _load_local(net, who, sharded, replicated)


def _rank_file(directory: str, rank: int, size: int) -> str:
    return os.path.join(directory, f"rank{rank:05d}-of-{size:05d}.pt")


def save_checkpoint(net, directory: str) -> str:
    """Write this rank's part of the simulation state to ``directory`` (collective: a barrier).

    One file per rank, ``rank{r}-of-{W}.pt``, with the model configuration, the neuron range and
    :func:`torchbrain.state_dict` of the rank's module (connectivity excluded: it is rebuilt from
    the seed). Returns this rank's file name.
    """
    who = "save_checkpoint"
    _check_net(net, who)
    os.makedirs(directory, exist_ok=True)
    path = _rank_file(directory, net.rank, net.world_size)
    payload = {
        "format": _RANK_FORMAT, "rank": net.rank, "world_size": net.world_size,
        "range": [net.start, net.stop], "num": net.num, "config": dict(net.config),
        "dt": net._init_dt, "layout": _layout(net, who),
        "state": {k: (v.cpu() if isinstance(v, torch.Tensor) else v)
                  for k, v in state_dict(net).items()},
    }
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(payload, tmp)
    os.replace(tmp, path)
    _, size, group = world(net.group)
    if size > 1:
        guarded(who, "the barrier after writing the checkpoint",
                lambda: dist.barrier(group=group), group)
    return path


def _saved_world_size(directory: str, who: str) -> int:
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{who}: no checkpoint directory {directory!r}")
    sizes = {int(m.group(2)) for f in os.listdir(directory) if (m := _FILE.search(f))}
    if not sizes:
        raise FileNotFoundError(f"{who}: no rank files (rank*-of-*.pt) in {directory!r}")
    if len(sizes) > 1:
        raise DistributedError(f"{who}: {directory!r} holds checkpoints of several world "
                               f"sizes {sorted(sizes)}; keep one per directory")
    return sizes.pop()


def _read(path: str, who: str) -> dict:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{who}: missing checkpoint file {path!r} (a rank did not "
                                "finish writing it?)")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != _RANK_FORMAT:
        raise ValueError(f"{who}: {path!r} is not a torchbrain distributed checkpoint")
    return data


def load_checkpoint(net, directory: str, reshard: bool = False) -> None:
    """Restore this rank's state from :func:`save_checkpoint` files (no communication).

    Parameters
    ----------
    net : DistributedEINet
        Built with the same arguments, States initialised with the same ``dt``.
    directory : str
        Where :func:`save_checkpoint` wrote the files (visible to every rank).
    reshard : bool, default False
        Allow a checkpoint written by another number of ranks: each rank then reads the files
        that overlap its neurons and takes its slice. Without it, a different number of ranks
        raises :class:`DistributedError` (mismatched world sizes are usually a launch mistake).
    """
    who = "load_checkpoint"
    _check_net(net, who)
    saved_size = _saved_world_size(directory, who)
    if saved_size == net.world_size:
        data = _read(_rank_file(directory, net.rank, saved_size), who)
        _check_config(who, net, data["config"], data["dt"])
        if list(data["range"]) != [net.start, net.stop]:
            raise DistributedError(
                f"{who}: rank {net.rank} owned neurons {data['range']} when the checkpoint was "
                f"written but owns [{net.start}, {net.stop}) now (another 'align'?); pass "
                "reshard=True"
            )
        layout = data["layout"]
        state = data["state"]
        _load_local(net, who, {k: state[k] for k, v in layout.items() if v == "sharded"},
                    {k: state[k] for k, v in layout.items() if v == "replicated"})
        return
    if not reshard:
        raise DistributedError(
            f"{who}: the checkpoint in {directory!r} was written by {saved_size} ranks but this "
            f"run has {net.world_size} (mismatched world sizes); launch {saved_size} processes "
            f"(torchrun --nproc_per_node={saved_size}), or pass reshard=True to split it anew"
        )
    pieces: dict[str, list[torch.Tensor]] = {}
    replicated: dict[str, torch.Tensor] = {}
    for r in range(saved_size):
        path = _rank_file(directory, r, saved_size)
        data = _read(path, who)
        lo, hi = data["range"]
        overlap = (max(lo, net.start), min(hi, net.stop))
        if r == 0:
            _check_config(who, net, data["config"], data["dt"])
            replicated = {k: data["state"][k] for k, v in data["layout"].items()
                          if v == "replicated"}
        if overlap[0] >= overlap[1]:
            continue
        for k, v in data["layout"].items():
            if v == "sharded":
                value = data["state"][k][..., overlap[0] - lo: overlap[1] - lo]
                pieces.setdefault(k, []).append(value)
    sharded = {k: torch.cat(v, dim=-1) for k, v in pieces.items()}
    _load_local(net, who, sharded, replicated)
