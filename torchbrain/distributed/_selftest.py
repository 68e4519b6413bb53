"""Multi-process checks of torchbrain.distributed, run under torchrun (CPU, gloo).

Usage::

    torchrun --standalone --nproc_per_node=2 -m torchbrain.distributed._selftest \
        --scenario main --out /tmp/tb_selftest

Scenarios:

* ``main``: a seeded ``DistributedCOBANet`` with delays (raster, checkpoints, global state),
  the fixed in-degree rule, DDP training of a small LIF model with per-replica States, then
  bad input that must raise ``DistributedError`` on every rank without breaking the group (a
  world size that does not match, ranks built with different seeds, ranks out of step); rank
  0 writes ``rasters.pt``, ``global.pt`` and ``ckpt/`` to ``--out`` for comparison with a
  1-process run.
  The same run then checks a seeded ``DistributedMicrocircuit`` (raster, checkpoint restore, the
  rates reduction); rank 0 writes ``microcircuit.pt``.
* ``hang``: rank 1 stops responding; rank 0 must fail with ``DistributedError`` after the
  collective timeout (``--timeout`` seconds).
* ``die``: rank 1 exits; rank 0 must fail with ``DistributedError`` instead of hanging.

Every rank prints ``SELFTEST <scenario> rank <r> <json>`` lines (``main`` writes its results to
``--out``/``report<r>.json``); exit status 0 means the scenario ran to its end on that rank
(``hang``/``die`` exit with 3 on rank 0 by design).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import warnings

import torch
import torch.distributed as dist
from torch import nn

import torchbrain as tb
from torchbrain import u
from torchbrain.distributed import (
    DistributedCOBANet,
    DistributedError,
    DistributedMicrocircuit,
    gather_raster,
    gather_state_dict,
    ignore_states_in_ddp,
    init_distributed,
    load_checkpoint,
    parameters_in_sync,
    save_checkpoint,
)
from torchbrain.neurons.lif import LIF

DT = 0.1


def report(scenario: str, rank: int, **info) -> None:
    # one write per line (print writes the newline separately when stdout is unbuffered, and
    # the ranks share the pipe)
    sys.stdout.write(f"SELFTEST {scenario} rank {rank} {json.dumps(info)}\n")
    sys.stdout.flush()


def net_kwargs(args) -> dict:
    return dict(scale=args.scale, seed=args.seed, delay_e=args.delay_e, delay_i=args.delay_i)


# ------------------------------------------------------------------------ simulation
def simulate(args, rank: int, size: int) -> dict:
    out = args.out
    kw = net_kwargs(args)
    net = DistributedCOBANet(**kw, world_size=size)
    res: dict = {"bounds": list(net.partition.bounds)}
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
        first = net.run(args.steps1)
        save_checkpoint(net, os.path.join(out, "ckpt"))
        state = gather_state_dict(net, dst=0)
        second = net.run(args.steps2)
        raster = gather_raster(torch.cat([first, second]), net, dst=0)

        # a fresh network restored from the per-rank checkpoint continues identically
        again = DistributedCOBANet(**kw, world_size=size)
        tb.init_all_states(again)
        load_checkpoint(again, os.path.join(out, "ckpt"))
        resumed = again.run(args.steps2)
        same = torch.tensor([int(torch.equal(resumed, second))])
        dist.all_reduce(same, op=dist.ReduceOp.MIN)
        res["restored_equal"] = bool(same.item())

        # the fixed in-degree rule, built with per-rank work only
        net_in = DistributedCOBANet(scale=args.scale, seed=args.seed + 1, rule="fixed_in",
                                    world_size=size)
        tb.init_all_states(net_in)
        raster_in = gather_raster(net_in.run(args.steps_in), net_in, dst=0)

    per_rank = [None] * size
    dist.all_gather_object(per_rank, {"synapses": net.num_local_synapses(),
                                      "bytes": net.connectivity_bytes(),
                                      "stats": net.comm_stats})
    res["per_rank"] = per_rank
    if rank == 0:
        torch.save(state, os.path.join(out, "global.pt"))
        torch.save({"raster": raster, "raster_in": raster_in}, os.path.join(out, "rasters.pt"))
    return res


#: The microcircuit of the ``main`` scenario (tests/test_distributed.py builds it on 1 rank).
MICROCIRCUIT = dict(scale=0.02, k_scale=0.1, seed=3)
MICROCIRCUIT_STEPS = (150, 150)


def simulate_microcircuit(args, rank: int, size: int) -> dict:
    out = args.out
    steps1, steps2 = MICROCIRCUIT_STEPS
    net = DistributedMicrocircuit(**MICROCIRCUIT, world_size=size)
    res: dict = {"synapses": net.num_local_synapses(), "range": [net.start, net.stop]}
    ckpt = os.path.join(out, "ckpt_microcircuit")
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
        first = net.run(steps1)
        save_checkpoint(net, ckpt)
        second = net.run(steps2)
        local = torch.cat([first, second])
        raster = gather_raster(local, net, dst=0)
        res["rates"] = net.population_rates(local)
        again = DistributedMicrocircuit(**MICROCIRCUIT, world_size=size)
        tb.init_all_states(again)
        load_checkpoint(again, ckpt)
        same = torch.tensor([int(torch.equal(again.run(steps2), second))])
        dist.all_reduce(same, op=dist.ReduceOp.MIN)
        res["restored_equal"] = bool(same.item())
    res["stats"] = net.comm_stats
    if rank == 0:
        torch.save({"raster": raster}, os.path.join(out, "microcircuit.pt"))
    return res


# ------------------------------------------------------------------------------ DDP
class TinySNN(nn.Module):
    """Linear -> LIF (T steps inside forward) -> Linear on the spike counts."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.lif = LIF(8, R=1.0, tau=5.0, V_th=1.0, V_reset=0.0, V_rest=0.0)
        self.out = nn.Linear(8, 2)

    def forward(self, x):  # (T, B, 4)
        counts = 0.0
        with tb.environ.context(dt=1.0):
            for t in range(x.shape[0]):
                counts = counts + self.lif(4.0 * self.fc(x[t]))
        return self.out(counts)


def _make(rank: int, batch: int) -> TinySNN:
    torch.manual_seed(0)
    model = TinySNN()
    tb.init_all_states(model, batch_size=batch)
    with torch.no_grad():
        model.lif.V = torch.full_like(model.lif.V, 0.1 * (rank + 1))  # per-replica States
    return model


def _gather(t: torch.Tensor) -> list[torch.Tensor]:
    parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.contiguous())
    return parts


def _data(rank: int, step: int, batch: int):
    g = torch.Generator().manual_seed(100 * rank + step)
    x = torch.rand(6, batch, 4, generator=g)
    y = torch.randint(0, 2, (batch,), generator=g)
    return x, y


def train_ddp(rank: int, size: int, batch: int = 3) -> dict:
    from torch.nn.parallel import DistributedDataParallel as DDP

    res = {}
    for variant in ("ignore_states", "broadcast_buffers_false"):
        model = _make(rank, batch)
        if variant == "ignore_states":
            ignore_states_in_ddp(model)
            ddp = DDP(model)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # deprecated in torch 2.13
                ddp = DDP(model, broadcast_buffers=False)
        kept = bool(torch.allclose(model.lif.V, torch.full_like(model.lif.V, 0.1 * (rank + 1))))
        opt = torch.optim.SGD(ddp.parameters(), lr=0.5)
        grads_match = True
        for step in range(2):
            x, y = _data(rank, step, batch)
            # the gradient DDP must produce: the mean over ranks of each replica's own gradient
            ref = copy.deepcopy(model)
            nn.functional.cross_entropy(ref(x), y).backward()
            expected = [p.grad.clone() for p in ref.parameters()]
            for g in expected:
                dist.all_reduce(g)
                g /= size
            loss = nn.functional.cross_entropy(ddp(x), y)
            loss.backward()
            grads_match &= all(torch.allclose(p.grad, g, atol=1e-6)
                               for p, g in zip(model.parameters(), expected, strict=True))
            opt.step()
            opt.zero_grad()
            tb.detach_states(model)
        V = _gather(model.lif.V.detach())
        res[variant] = {
            "init_states_kept": kept,
            "grads_are_rank_mean": grads_match,
            "params_in_sync": parameters_in_sync(ddp),
            "states_differ": not all(torch.equal(V[0], v) for v in V[1:]),
            "trained": bool(sum(float(p.detach().abs().sum()) for p in model.parameters()) > 0),
        }
    # contrast: DDP's defaults overwrite rank-local States with rank 0's at construction
    model = _make(rank, batch)
    DDP(model)
    V = _gather(model.lif.V.detach())
    res["default_overwrites_states"] = all(torch.equal(V[0], v) for v in V[1:])
    return res


def train_lightning(rank: int, size: int, ignore: bool, batch: int = 3) -> dict | None:
    """Lightning's DDPStrategy with ``ignore_states_in_ddp`` on the LightningModule: the States
    carried from one batch to the next are each replica's own (DDP does not overwrite them).
    ``ignore=False``: Lightning's defaults, for contrast."""
    try:
        import lightning.pytorch as pl
        from lightning.pytorch.strategies import DDPStrategy
    except ImportError:
        return None

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = _make(rank, batch)
            self.left: torch.Tensor | None = None
            self.kept: list[bool] = []
            self.model.register_forward_pre_hook(self._check_carry)
            if ignore:
                ignore_states_in_ddp(self)

        def _check_carry(self, module, args):
            # runs inside DDP's forward, after any buffer synchronisation
            if self.left is not None:
                self.kept.append(bool(torch.equal(module.lif.V, self.left)))

        def training_step(self, data, idx):
            x, y = data
            return nn.functional.cross_entropy(self.model(x), y)

        def on_train_batch_end(self, outputs, data, idx):
            tb.detach_states(self)
            self.left = self.model.lif.V.clone()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    # each rank its own data; batch_size=None: the (T, B, 4) samples are the batches
    loader = torch.utils.data.DataLoader([_data(rank, step, batch) for step in range(3)],
                                         batch_size=None)
    module = Module()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(accelerator="cpu", devices=size, strategy=DDPStrategy(),
                             max_steps=3, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False,
                             use_distributed_sampler=False, num_sanity_val_steps=0)
        trainer.fit(module, train_dataloaders=loader)
    V = _gather(module.model.lif.V.detach())
    return {"states_carried_per_replica": len(module.kept) == 2 and all(module.kept),
            "params_in_sync": parameters_in_sync(module.model),
            "states_differ": not all(torch.equal(V[0], v) for v in V[1:])}


# ------------------------------------------------------------------------ bad input
def disagree(args, rank: int, size: int) -> dict:
    res = {}
    try:
        DistributedCOBANet(scale=args.scale, seed=args.seed, world_size=size + 1)
        res["world_size"] = "no error"
    except DistributedError as err:
        res["world_size"] = str(err)
    try:
        DistributedCOBANet(scale=args.scale, seed=args.seed + rank)
        res["seed"] = "no error"
    except DistributedError as err:
        res["seed"] = str(err)
    net = DistributedCOBANet(scale=args.scale, seed=args.seed)
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
        if rank == 1:
            net.step.fill_(5)  # e.g. restored from another checkpoint
        try:
            net.run(3)
            res["steps"] = "no error"
        except DistributedError as err:
            res["steps"] = str(err)
    return res


def failing_peer(args, rank: int, scenario: str) -> int:
    net = DistributedCOBANet(scale=args.scale, seed=args.seed)
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
        if rank == 1:
            if scenario == "die":
                os._exit(7)
            time.sleep(120)  # hangs; torchrun stops it once rank 0 has failed
            return 0
        tic = time.perf_counter()
        try:
            net.run(50)
        except DistributedError as err:
            report(scenario, rank, error=str(err), seconds=time.perf_counter() - tic)
            return 3
    report(scenario, rank, error="no error")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", choices=["main", "hang", "die"], default="main")
    p.add_argument("--out", default=None)
    p.add_argument("--scale", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--delay-e", type=float, default=0.4)
    p.add_argument("--delay-i", type=float, default=0.2)
    p.add_argument("--steps1", type=int, default=100)
    p.add_argument("--steps2", type=int, default=100)
    p.add_argument("--steps-in", type=int, default=60)
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rank, size, _ = init_distributed(backend="gloo", timeout=args.timeout, device="cpu")
    if size < 2 or not dist.is_initialized():
        print("SELFTEST needs at least 2 processes: torchrun --nproc_per_node=2 ...",
              file=sys.stderr)
        return 2
    status = 0
    if args.scenario == "main":
        args.out = args.out or os.path.join(os.getcwd(), "tb_selftest")
        os.makedirs(args.out, exist_ok=True)
        res = simulate(args, rank, size)
        res["microcircuit"] = simulate_microcircuit(args, rank, size)
        res["ddp"] = train_ddp(rank, size)
        res["lightning"] = train_lightning(rank, size, ignore=True)
        res["lightning_default"] = train_lightning(rank, size, ignore=False)
        res["bad_input"] = disagree(args, rank, size)
        # a file per rank: long lines from two processes on one pipe may interleave
        with open(os.path.join(args.out, f"report{rank}.json"), "w") as f:
            json.dump(res, f)
        report("main", rank, ok=True)
    else:
        status = failing_peer(args, rank, args.scenario)
    if status == 0:
        dist.destroy_process_group()
    return status


if __name__ == "__main__":
    code = main()
    # Leave without the interpreter's teardown: everything is reported and written by now, and
    # on a loaded machine a backend thread still joinable while C++ static destructors run has
    # aborted the process ("terminate called without an active exception") after a clean run.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
