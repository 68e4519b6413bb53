"""``python -m torchbrain <command>``: runnable tours.

Commands
--------
tour
    The 5-minute tour: the Vogels–Abbott E/I benchmark network (COBA by default) for one
    simulated second; prints E and I rates, wall time and steps/s, writes a raster + rate PNG.
mental-model
    The "mental model" page run end to end: one LIF population driven by a constant current,
    its spikes compared with the analytic inter-spike interval.
"""

from __future__ import annotations

import argparse
import math
import sys


def mental_model(args) -> int:
    import torch

    import torchbrain as tb
    from torchbrain import u

    torch.manual_seed(args.seed)
    # Idea 1: a model owns its States; init_all_states allocates them.
    neuron = tb.LIF(100, tau=10.0 * u.ms, V_th=-50.0 * u.mV, V_rest=-65.0 * u.mV,
                    V_reset=-65.0 * u.mV, V_initializer=tb.init.Constant(-65.0 * u.mV),
                    spk_reset="hard")
    tb.init_all_states(neuron)
    print(neuron)
    # Idea 2: units are checked when parameters enter; 20 mA through the default R = 1 ohm is 20 mV.
    current = args.current * u.mA
    # Idea 4: drive it with a driver over a time grid set by the environment.
    with tb.environ.context(dt=args.dt * u.ms):
        print("dt =", tb.environ.get_dt())
        times = tb.time_range(args.duration * u.ms)

        def step(t):
            with tb.environ.context(t=t):
                neuron(current)
                return neuron.get_spike()

        spikes = tb.for_loop(step, times, pbar=args.progress)
    print("spikes shape:", tuple(spikes.shape), "[time, neuron]")
    # The physically right answer: with V_inf = V_rest + R I, a neuron reset to V_rest reaches
    # V_th after tau * ln(RI / (RI - (V_th - V_rest))).
    drive = args.current  # mV, since R = 1 ohm
    if drive <= 15.0:
        print(f"R*I = {drive} mV does not reach threshold: no spikes expected,",
              f"{int(spikes.sum())} seen")
        return 0 if int(spikes.sum()) == 0 else 1
    isi_theory = 10.0 * math.log(drive / (drive - 15.0))
    steps = torch.nonzero(spikes[:, 0]).flatten()
    isi_sim = (steps[1:] - steps[:-1]).double().mean().item() * args.dt
    rate = spikes.sum(0).mean().item() / (args.duration / 1000.0)
    print(f"first spike at {(steps[0].item() + 1) * args.dt:.2f} ms, ISI simulated "
          f"{isi_sim:.2f} ms, analytic {isi_theory:.2f} ms (one step = {args.dt} ms)")
    print(f"mean rate {rate:.1f} Hz")
    return 0 if abs(isi_sim - isi_theory) <= args.dt + 1e-9 else 1


def tour(args) -> int:
    import time

    import torch

    import torchbrain as tb
    from torchbrain import u
    from torchbrain.models import COBAHHNet, COBANet, CUBANet

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cpu" and args.threads:
        # Per-step tensors are small (thousands of neurons): on the CPU, OpenMP's per-op
        # synchronisation costs more than a second thread gains (measured: 4k COBA).
        torch.set_num_threads(args.threads)
    nets = {"coba": COBANet, "cuba": CUBANet, "cobahh": COBAHHNet}
    if args.model not in nets:
        print(f"unknown model {args.model!r}; choose one of {sorted(nets)}", file=sys.stderr)
        return 2
    net = nets[args.model](scale=args.scale, seed=args.seed, device=device)
    tb.init_all_states(net)
    steps = int(round(args.duration / args.dt))
    print(f"{args.model.upper()} network: {net.num} LIF neurons ({net.num_exc} E, {net.num_inh} I),"
          f" {net.E.comm.num_synapses + net.I.comm.num_synapses} synapses, "
          f"{args.duration:g} ms at dt = {args.dt} ms on {device}")
    # compile=None: the runner's default (eager on the CPU, compiled on CUDA)
    runner = tb.NetworkRunner(net, chunk=args.chunk,
                              compile=False if args.eager else (args.compile or None))
    with tb.environ.context(dt=args.dt * u.ms):
        start = time.perf_counter()
        spikes = runner.run(steps, pbar=not args.no_progress)
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
    spikes = spikes.float().cpu()
    seconds = args.duration / 1000.0
    rate_e = spikes[:, : net.num_exc].sum().item() / net.num_exc / seconds
    rate_i = spikes[:, net.num_exc:].sum().item() / net.num_inh / seconds
    print(f"rates: E {rate_e:.2f} Hz, I {rate_i:.2f} Hz")
    sim = max(wall - runner.compile_seconds, 1e-9)
    print(f"wall time {wall:.3f} s = compilation {runner.compile_seconds:.2f} s + simulation "
          f"{sim:.3f} s ({sim / seconds:.3f} s per simulated second, {steps / sim:,.0f} steps/s)")
    if args.figure:
        from torchbrain import plot

        plot.raster_and_rate(spikes, args.dt * u.ms, path=args.figure)
        print(f"figure written to {args.figure}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torchbrain")
    sub = parser.add_subparsers(dest="command", required=True)
    mm = sub.add_parser("mental-model", help="the mental-model page: one LIF population")
    mm.add_argument("--current", type=float, default=20.0, help="input current in mA (R = 1 ohm)")
    mm.add_argument("--duration", type=float, default=200.0, help="simulated time in ms")
    mm.add_argument("--dt", type=float, default=0.1, help="time step in ms")
    mm.add_argument("--seed", type=int, default=0)
    mm.add_argument("--progress", action="store_true", help="show a progress bar")
    mm.set_defaults(func=mental_model)
    tr = sub.add_parser("tour", help="the E/I benchmark network (COBA/CUBA)")
    tr.add_argument("--model", default="coba", help="coba, cuba or cobahh")
    tr.add_argument("--scale", type=float, default=1.0, help="size as a multiple of 4000 neurons")
    tr.add_argument("--duration", type=float, default=1000.0, help="simulated time in ms")
    tr.add_argument("--dt", type=float, default=0.1, help="time step in ms")
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--chunk", type=int, default=10, help="steps per compiled chunk")
    tr.add_argument("--threads", type=int, default=1,
                    help="CPU threads (0 keeps torch's default)")
    tr.add_argument("--eager", action="store_true", help="do not compile the time loop")
    tr.add_argument("--compile", action="store_true",
                    help="compile the time loop also on the CPU (pays off for long runs)")
    tr.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    tr.add_argument("--figure", default="tour.png", help="PNG path for the raster ('' for none)")
    tr.set_defaults(func=tour)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
