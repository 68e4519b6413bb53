"""torchbrain runner of the E/I benchmark networks (COBANet, CUBANet, COBAHHNet).

Builds the network of ``torchbrain.models``, compiles and warms up one chunk of
:class:`torchbrain.NetworkRunner` outside the timed region, then times ``--duration`` ms
(recording the spike raster, as a user's run does) and prints one JSON line (see ``_common``),
with the connectivity's bytes per synapse.

Usage (the global environment, torchbrain importable)::

    python benchmarks/peers/torchbrain_ei.py --model coba --neurons 4000 --threads 1
"""

from __future__ import annotations

import time

import torch

# benchmarks/peers is on sys.path: run as a script, or imported by benchmarks/coba.py
from _common import DT_MS, emit, parse_args


def connectivity_bytes(net) -> tuple[int, int]:
    """Bytes held by the two projections' connectivity tables, and their synapse count."""
    nbytes = synapses = 0
    for proj in (net.E, net.I):
        comm = proj.comm
        nbytes += sum(t.numel() * t.element_size() for t in comm.buffers())
        nbytes += sum(t.numel() * t.element_size() for t in comm.parameters())
        synapses += comm.num_synapses
    return nbytes, synapses


def run(model: str, num: int, duration_ms: float, chunk: int = 10, device: str = "cpu",
        seed: int = 0) -> dict:
    """Simulate ``model`` at ``num`` neurons; the timed run's figures (see ``_common``)."""
    import torchbrain as tb
    from torchbrain import u
    from torchbrain.models import COBAHHNet, COBANet, CUBANet

    torch.manual_seed(seed)
    network = {"coba": COBANet, "cuba": CUBANet, "cobahh": COBAHHNet}[model]
    tic = time.perf_counter()
    net = network(scale=num / 4000, seed=seed, device=device)
    tb.init_all_states(net)
    build_s = time.perf_counter() - tic
    # the compiled step is measured (compile excluded); on the CPU the runner's default is eager
    runner = tb.NetworkRunner(net, chunk=chunk, compile=True)
    steps = int(round(duration_ms / DT_MS))
    with tb.environ.context(dt=DT_MS * u.ms):
        tic = time.perf_counter()
        runner.run(chunk)  # compile (and warm up) outside the timed region
        compile_s = time.perf_counter() - tic
        tic = time.perf_counter()
        spikes = runner.run(steps, t0=chunk * DT_MS)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        wall = time.perf_counter() - tic
    # spikes per neuron, a block of steps at a time: a float copy of the whole raster (8 bytes
    # per neuron and step) would dominate the peak memory at large sizes
    counts = torch.zeros(spikes.shape[1:], dtype=torch.float64)
    for block in spikes.split(500):
        counts += block.sum(dim=0)
    nbytes, synapses = connectivity_bytes(net)
    seconds = duration_ms / 1000
    return {
        "wall_s": wall,
        "wall_per_sim_s": wall / seconds,
        "steps_per_s": steps / wall,
        "rate_E_Hz": counts[: net.num_exc].mean().item() / seconds,
        "rate_I_Hz": counts[net.num_exc:].mean().item() / seconds,
        "compile_s": compile_s,
        "build_s": build_s,
        "synapses": synapses,
        "bytes_per_synapse": nbytes / max(synapses, 1),
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    torch.set_num_threads(args.threads)
    import torchbrain

    result = run(args.model, args.neurons, args.duration, seed=args.seed)
    wall = result.pop("wall_s")
    for key in ("wall_per_sim_s", "steps_per_s"):
        result.pop(key)
    emit("torchbrain", torchbrain.__version__, args, wall, **result,
         torch=torch.__version__, torch_threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
