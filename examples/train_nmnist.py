"""Train a convolutional spiking network on N-MNIST (Tonic's event-camera digits), if on disk.

The events of each 34x34x2 recording are binned at ``dt`` into a time-major tensor by
:class:`torchbrain.data.EventCollate` (the DataLoader's ``collate_fn``), and the network is

    SpikingConv2d(2 -> 12, 5x5, avg-pool 2) -> SpikingConv2d(12 -> 32, 5x5, avg-pool 2)
        -> Flatten -> SpikingLinear(800 -> 10)

(LIF populations, tau = 10 ms, hard reset; surrogate gradients), trained with the
cross-entropy of the output spike counts and Adam.

The script never downloads: it expects Tonic's layout under ``--data`` (``<data>/NMNIST/Train``
and ``<data>/NMNIST/Test`` with the ``.bin`` files, as ``tonic.datasets.NMNIST(save_to=data)``
leaves them) and exits with a message otherwise. Run::

    python examples/train_nmnist.py --data ~/data --epochs 1 --limit 6000   # a quick look
    python examples/train_nmnist.py --data ~/data                           # full training

Needs ``tonic`` (``pip install torchbrain[interop]``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

import torchbrain as tb
from torchbrain import u
from torchbrain.data import EventCollate
from torchbrain.training.conv import SpikingConv2d, SpikingLinear


def build_model() -> nn.Module:
    return nn.Sequential(
        SpikingConv2d(2, 12, 5, input_size=(34, 34), pool=2),   # -> (T, B, 12, 15, 15)
        SpikingConv2d(12, 32, 5, input_size=(15, 15), pool=2),  # -> (T, B, 32, 5, 5)
        nn.Flatten(start_dim=2),
        SpikingLinear(32 * 5 * 5, 10),
    )


def _on_disk(root: str) -> bool:
    base = os.path.join(os.path.expanduser(root), "NMNIST")
    return all(os.path.isdir(os.path.join(base, part)) for part in ("Train", "Test"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data", help="folder holding NMNIST/ (Tonic layout)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dt", type=float, default=1.0, help="time step in ms")
    parser.add_argument("--duration", type=float, default=300.0, help="ms of each recording")
    parser.add_argument("--limit", type=int, default=None, help="use the first N samples")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if not _on_disk(args.data):
        print(f"N-MNIST is not under {args.data!r} (expected {args.data}/NMNIST/Train and "
              "Test); download it once with tonic.datasets.NMNIST(save_to=...) and rerun.")
        return 0
    import tonic

    train = tonic.datasets.NMNIST(save_to=args.data, train=True)
    test = tonic.datasets.NMNIST(save_to=args.data, train=False)
    if args.limit:
        train, test = Subset(train, range(args.limit)), Subset(test, range(args.limit // 6))
    dt = args.dt * u.ms
    collate = EventCollate(tonic.datasets.NMNIST.sensor_size, dt=dt,
                           duration=args.duration * u.ms)
    loaders = {name: DataLoader(ds, batch_size=args.batch, shuffle=name == "train",
                                collate_fn=collate, num_workers=2)
               for name, ds in (("train", train), ("test", test))}
    device = torch.device(args.device)
    net = build_model().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    with tb.environ.context(dt=dt):
        for epoch in range(args.epochs):
            start, seen, correct = time.perf_counter(), 0, 0
            net.train()
            for spikes, labels in loaders["train"]:
                spikes, labels = spikes.to(device), labels.to(device)
                counts = net(spikes).sum(0)
                loss = nn.functional.cross_entropy(counts, labels)
                opt.zero_grad()
                loss.backward()
                opt.step()
                seen += len(labels)
                correct += int((counts.argmax(1) == labels).sum())
            net.eval()
            hits = total = 0
            with torch.no_grad():
                for spikes, labels in loaders["test"]:
                    counts = net(spikes.to(device)).sum(0)
                    hits += int((counts.argmax(1).cpu() == labels).sum())
                    total += len(labels)
            print(f"epoch {epoch + 1}: train acc {correct / seen:.3f}, test acc "
                  f"{hits / total:.3f} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
