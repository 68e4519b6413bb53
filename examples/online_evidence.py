"""Evidence accumulation with online learning (e-prop) compared with BPTT.

The task (after Bellec et al. 2020, scaled down, generated in code): a trial shows ``n_cues``
cues, each from the left or the right (a burst of Poisson spikes of one of two input groups),
then a delay, then a recall cue; during the recall cue the network must answer on which side
more cues appeared. Inputs: 4 groups of 10 Poisson neurons (left, right, recall, background
noise). The network is

    Linear(40 -> H) -> RecurrentLIF(H, adaptive: half the neurons) -> LeakyIntegratorReadout(2)

(an LSNN: the adaptive thresholds, with a time constant longer than a trial, carry the evidence
across the delay). The loss is the cross-entropy of the readout during the recall window.

Training, from the same initial weights and the same batches:

* ``eprop``: :class:`torchbrain.training.eprop.EProp`, one step at a time, the weights updated
  once per batch of trials (``--update-every K`` updates every ``K`` steps instead);
* ``drtrl``: :class:`torchbrain.training.eprop.DRTRL` (optional, ``--methods``; the same
  gradients as e-prop here, since the layer has ``detach_reset=True``);
* ``bptt``: ordinary backpropagation through time over the whole trial.

Printed: test accuracy, training CPU time (``time.process_time``, robust to a busy machine) and
the peak memory held for learning (the bytes autograd saved for backward passes, measured with
:class:`torchbrain.training.online.SavedTensorMeter`, plus the learner's traces and States).
Run::

    python examples/online_evidence.py                      # eprop and bptt, defaults
    python examples/online_evidence.py --iterations 50      # quicker
    python examples/online_evidence.py --methods eprop drtrl bptt --delay 200

Results (defaults, seed 0, one CPU thread):

    =======  ==========  ============  =========================  ===========================
    method   accuracy    CPU time (s)  learning memory (MiB),     learning memory (MiB),
                                       ``T = 175``                delay 1000 (``T = 1125``)
    =======  ==========  ============  =========================  ===========================
    e-prop   0.967       38.7          3.6                        3.6
    BPTT     0.916       14.6          14.7                       93.9
    =======  ==========  ============  =========================  ===========================

Accuracy on 512 held-out trials (seed 0, learning rate 1e-3, the better of 1e-3, 2e-3 and 5e-3
for both: BPTT 0.916 / 0.826 / 0.826, e-prop 0.967 / 0.961 / 0.939); one CPU thread. The memory
column for the long delay comes from one training batch (it does not depend on the training
length). E-prop's memory is its per-synapse adaptation traces; BPTT's grows with the trial.

References: Bellec, G. et al. (2020). A solution to the learning dilemma for recurrent networks
of spiking neurons. *Nature Communications* 11, 3625.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

import torchbrain as tb
from torchbrain.training import LeakyIntegratorReadout, RecurrentLIF
from torchbrain.training.eprop import DRTRL, EProp
from torchbrain.training.online import SavedTensorMeter

GROUP = 10  # input neurons per group: left, right, recall, noise


def trial_length(n_cues: int, cue_steps: int, gap: int, delay: int, recall: int) -> int:
    return n_cues * (cue_steps + gap) + delay + recall


def make_batch(batch: int, *, n_cues: int = 7, cue_steps: int = 10, gap: int = 5,
               delay: int = 50, recall: int = 20, rate: float = 0.4, noise: float = 0.05,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of trials: spikes ``(T, batch, 40)`` and the side with more cues ``(batch,)``."""
    T = trial_length(n_cues, cue_steps, gap, delay, recall)
    side = torch.randint(0, 2, (batch, n_cues), generator=generator)
    prob = torch.full((T, batch, 4 * GROUP), noise)
    prob[..., :3 * GROUP] = 0.0
    for k in range(n_cues):
        start = k * (cue_steps + gap)
        for s in (0, 1):
            rows = side[:, k] == s
            prob[start:start + cue_steps, rows, s * GROUP:(s + 1) * GROUP] = rate
    prob[T - recall:, :, 2 * GROUP:3 * GROUP] = rate
    x = torch.bernoulli(prob, generator=generator)
    y = (side.sum(1) * 2 > n_cues).long()
    return x, y


def build_model(hidden: int = 100, tau_a: float = 1000.0, beta: float = 0.2,
                seed: int = 0) -> nn.Module:
    """Linear -> LSNN (half adaptive) -> leaky readout, with fixed initial weights."""
    torch.manual_seed(seed)
    betas = torch.zeros(hidden)
    betas[: hidden // 2] = beta
    model = nn.Sequential(
        nn.Linear(4 * GROUP, hidden),
        RecurrentLIF(hidden, tau=20.0, adaptive=True, tau_a=tau_a, beta=betas,
                     detach_reset=True, decay_input=False, dt=1.0),
        LeakyIntegratorReadout(hidden, 2, tau=20.0, dt=1.0),
    )
    with torch.no_grad():
        model[0].weight.normal_(0.0, 1.0 / (4 * GROUP) ** 0.5)
        model[0].bias.zero_()
        model[1].rec.weight.normal_(0.0, 0.5 / hidden ** 0.5)
        model[1].rec.weight.mul_(model[1].rec_mask)
    return model


def recall_loss(out: torch.Tensor, y: torch.Tensor, recall: int) -> torch.Tensor:
    """Mean cross-entropy of the readout over the recall window; ``out`` is ``(T, B, 2)``."""
    return F.cross_entropy(out[-recall:].flatten(0, 1), y.repeat(recall))


def rate_penalty(spikes_t: torch.Tensor, T: int, target: float = 0.02) -> torch.Tensor:
    """One step's share of a firing-rate penalty: each neuron's batch-mean spike probability
    pulled towards ``target`` (spikes per step); summed over the ``T`` steps of a trial."""
    return spikes_t.mean(0).sub(target).square().sum() / T


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, recall: int) -> float:
    with torch.no_grad():
        tb.reset_all_states(model)
        out = model(x)
        tb.reset_all_states(model)
    return float((out[-recall:].mean(0).argmax(-1) == y).float().mean())


def step(model: nn.Module, opt: torch.optim.Optimizer, clip: float | None) -> None:
    """Clip the gradient's norm (when ``clip``), update, zero the gradients."""
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    opt.zero_grad()


def train(method: str = "eprop", iterations: int = 200, batch: int = 64, lr: float = 1e-3,
          hidden: int = 100, delay: int = 50, n_cues: int = 7, update_every: int | None = None,
          rate_weight: float = 0.1, clip: float | None = 1.0, seed: int = 0,
          test_size: int = 512, verbose: bool = True) -> dict:
    """Train one method; returns accuracy, time and memory."""
    kw = dict(n_cues=n_cues, delay=delay)
    recall = 20
    model = build_model(hidden, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed + 1)
    test_x, test_y = make_batch(test_size, generator=torch.Generator().manual_seed(12345), **kw)
    T = test_x.shape[0]
    learner = {"eprop": EProp, "drtrl": DRTRL}.get(method)
    learner = learner(model) if learner is not None else None
    peak = 0
    elapsed = 0.0
    for it in range(iterations):
        x, y = make_batch(batch, generator=gen, **kw)
        start = time.process_time()
        with SavedTensorMeter() as meter:
            if learner is None:
                tb.reset_all_states(model)
                spikes = model[1](model[0](x))
                out = model[2](spikes)
                loss = recall_loss(out, y, recall)
                if rate_weight:
                    loss = loss + rate_weight * sum(rate_penalty(s, T) for s in spikes)
                opt.zero_grad()
                loss.backward()
                step(model, opt, clip)
                tb.reset_all_states(model)
                held = 0
            else:
                def step_loss(out_t, t, y=y):
                    loss = rate_weight * rate_penalty(learner.spikes, T) if rate_weight else 0
                    if t >= T - recall:
                        loss = loss + F.cross_entropy(out_t, y) / recall
                    return loss if isinstance(loss, torch.Tensor) else None
                if update_every is None:
                    _, loss = learner.run(x, step_loss)
                    step(model, opt, clip)
                else:
                    _, loss = learner.run(x, step_loss, optimizer=opt, update_every=update_every)
                held = learner.state_bytes()
        elapsed += time.process_time() - start
        peak = max(peak, meter.peak_bytes + held)
        if verbose and (it + 1) % max(1, iterations // 10) == 0:
            acc = accuracy(model, test_x[:, :128], test_y[:128], recall)
            print(f"{method:6s} iteration {it + 1:4d}  loss {float(loss.detach()):.3f}  "
                  f"test accuracy (128 trials) {acc:.3f}", flush=True)
    result = {
        "method": method,
        "test_accuracy": accuracy(model, test_x, test_y, recall),
        "cpu_seconds": elapsed,
        "peak_learning_memory_MiB": peak / 2**20,
        "T": T,
        "iterations": iterations,
        "batch": batch,
        "hidden": hidden,
    }
    if verbose:
        print(json.dumps(result), flush=True)
    return result


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["eprop", "bptt"],
                        choices=["eprop", "drtrl", "bptt"])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--delay", type=int, default=50)
    parser.add_argument("--cues", type=int, default=7)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--update-every", type=int, default=None,
                        help="online methods: update the weights every K steps (default: once "
                             "per batch of trials)")
    parser.add_argument("--rate-weight", type=float, default=0.1,
                        help="weight of the firing-rate penalty (0: none)")
    parser.add_argument("--clip", type=float, default=1.0,
                        help="gradient-norm clipping before each update (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = [train(m, iterations=args.iterations, batch=args.batch, lr=args.lr,
                     hidden=args.hidden, delay=args.delay, n_cues=args.cues,
                     update_every=args.update_every, rate_weight=args.rate_weight,
                     clip=args.clip or None, seed=args.seed) for m in args.methods]
    print()
    print(f"{'method':8s} {'test acc':>9s} {'CPU time (s)':>13s} {'peak memory (MiB)':>18s}")
    for r in results:
        print(f"{r['method']:8s} {r['test_accuracy']:9.3f} {r['cpu_seconds']:13.1f} "
              f"{r['peak_learning_memory_MiB']:18.2f}")
    return results


if __name__ == "__main__":
    main()
