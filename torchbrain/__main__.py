"""``python -m torchbrain <command>``: runnable tours.

Commands
--------
tour
    The 5-minute tour: the Vogels–Abbott E/I benchmark network (COBA by default) for one
    simulated second; prints E and I rates and where the time went (start-up, build,
    compilation, simulation, figure), writes a raster + rate figure (``tour.png``).
mental-model
    The "mental model" page run end to end: one LIF population driven by a constant current,
    its spikes compared with the analytic inter-spike interval.

Every argument is checked before anything is built or simulated; a bad one ends the command
with one line on stderr and exit status 2 (argparse's convention), never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

#: Neurons of the tour's raster (the rates are counted over every neuron).
SHOWN_EXC, SHOWN_INH = 200, 50
#: Smoothing window of the figure's population rate (ms).
RATE_WINDOW_MS = 5.0
#: Bytes the tour needs per synapse while the network is built (measured: the fan-out tables
#: hold 4.2 B per synapse, building them peaks at about 8 B) and per neuron for its States.
BYTES_PER_SYNAPSE, BYTES_PER_NEURON = 12, 256


class CLIError(Exception):
    """A bad argument or an impossible request: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise CLIError(f"{message} (see {self.prog} --help)")


# ------------------------------------------------------------------------ argument types
def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive(unit: str = ""):
    def parse(text: str) -> float:
        value = _number(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}{unit}")
        return value

    parse.__name__ = "positive number"
    return parse


def _count(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be >= {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _seed(text: str) -> int:
    value = _count(0, "a seed")(text)
    if value >= 2**62:
        raise argparse.ArgumentTypeError(f"a seed must be below 2**62, got {value}")
    return value


# ---------------------------------------------------------------------------- shared checks
def _steps(duration: float, dt: float) -> int:
    steps = int(round(duration / dt))
    if steps < 1:
        raise CLIError(f"--duration {duration:g} ms is shorter than one step of --dt {dt:g} ms")
    return steps


def _device(name: str):
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as err:
        raise CLIError(f"--device {name!r} is not a device name ({err}); use cpu, cuda or "
                       "cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CLIError(f"--device {name}: this torch build sees no CUDA GPU (torch "
                           f"{torch.__version__}); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CLIError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise CLIError(f"--device {name}: MPS is not available here; use --device cpu")
    elif device.type != "cpu":
        try:
            torch.empty(1, device=device)
        except Exception as err:  # any backend's own failure: reported, not raised
            raise CLIError(f"--device {name}: unusable ({str(err).splitlines()[0]})") from None
    return device


def _figure(path: str) -> str | None:
    if not path:
        return None
    from torchbrain.plot import check_figure_path

    try:
        check_figure_path(path, who="--figure")
    except (OSError, ValueError, TypeError) as err:
        raise CLIError(str(err)) from None
    return path


def _available_bytes(device) -> int | None:
    """Memory free for the run: MemAvailable on Linux, free GPU memory on CUDA."""
    import torch

    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _startup_seconds() -> float | None:
    """Seconds since this process started (Linux), so the report includes the imports that
    ``python -m torchbrain`` does before :func:`main` runs."""
    try:
        with open("/proc/self/stat") as f:
            started = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


# ------------------------------------------------------------------------------ the progress
class _LogLines:
    """tqdm output for a log file or pipe: each refresh on its own line, not ``\\r``-joined."""

    def __init__(self, stream):
        self.stream = stream
        self.last = None

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text and text != self.last:
            self.stream.write(text + "\n")
            self.last = text

    def flush(self) -> None:
        self.stream.flush()


def _progress_bar(total: int, enabled: bool):
    """A tqdm bar on stderr: live in a terminal or notebook, about ten lines in a log."""
    from tqdm import tqdm
    from tqdm.auto import tqdm as auto_tqdm

    if not enabled:
        return tqdm(total=total, disable=True)
    if sys.stderr.isatty() or "ipykernel" in sys.modules:
        return auto_tqdm(total=total, desc="simulating", unit="step")
    return tqdm(total=total, desc="simulating", unit="step", file=_LogLines(sys.stderr),
                mininterval=0, miniters=max(1, total // 10), ascii=True, ncols=90,
                # else tqdm shortens miniters after the long first (compiling) update
                maxinterval=float("inf"))


# ---------------------------------------------------------------------------- mental-model
def mental_model(args) -> int:
    dt = args.dt
    steps = _steps(args.duration, dt)
    # With V_inf = V_rest + R I, a neuron reset to V_rest reaches V_th after
    # tau * ln(RI / (RI - (V_th - V_rest))); an ISI needs two spikes.
    drive = args.current  # mV, since R = 1 ohm
    isi_theory = 10.0 * math.log(drive / (drive - 15.0)) if drive > 15.0 else None
    if isi_theory is not None and steps * dt < 2 * isi_theory + dt:
        raise CLIError(f"--duration {args.duration:g} ms is too short to measure an inter-spike "
                       f"interval at --current {drive:g} mA (ISI {isi_theory:.2f} ms, two "
                       f"spikes needed): use --duration {math.ceil(2 * isi_theory + 2 * dt)} "
                       "or more")
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
    with tb.environ.context(dt=dt * u.ms):
        print("dt =", tb.environ.get_dt())
        times = tb.time_range(steps * dt * u.ms)

        def step(t):
            with tb.environ.context(t=t):
                neuron(current)
                return neuron.get_spike()

        spikes = tb.for_loop(step, times, pbar=args.progress)
    print("spikes shape:", tuple(spikes.shape), "[time, neuron]")
    if isi_theory is None:
        print(f"R*I = {drive:g} mV does not reach threshold: no spikes expected,",
              f"{int(spikes.sum())} seen")
        return 0 if int(spikes.sum()) == 0 else 1
    spike_steps = torch.nonzero(spikes[:, 0]).flatten()
    if spike_steps.numel() < 2:
        print(f"fewer than two spikes in {steps * dt:g} ms (analytic ISI {isi_theory:.2f} ms)")
        return 1
    isi_sim = (spike_steps[1:] - spike_steps[:-1]).double().mean().item() * dt
    rate = spikes.sum(0).mean().item() / (steps * dt / 1000.0)
    print(f"first spike at {(spike_steps[0].item() + 1) * dt:.2f} ms, ISI simulated "
          f"{isi_sim:.2f} ms, analytic {isi_theory:.2f} ms (one step = {dt} ms)")
    print(f"mean rate {rate:.1f} Hz")
    return 0 if abs(isi_sim - isi_theory) <= dt + 1e-9 else 1


# ------------------------------------------------------------------------------------ tour
def _tour_plan(args):
    """Everything the tour checks before it builds anything."""
    from torchbrain.models.ei_network import FAN_OUT

    num = int(4000 * args.scale)
    if num < FAN_OUT or num - int(0.8 * num) < 1:
        raise CLIError(f"--scale {args.scale:g} gives {num} neurons, fewer than the "
                       f"{FAN_OUT} targets each neuron projects to: use --scale "
                       f"{FAN_OUT / 4000:g} or more")
    steps = _steps(args.duration, args.dt)
    device = _device(args.device)
    figure = _figure(args.figure)
    num_exc = int(0.8 * num)
    shown = min(SHOWN_EXC, num_exc) + min(SHOWN_INH, num - num_exc)
    segment = args.chunk * max(1, round(steps / 100 / args.chunk))
    network = num * FAN_OUT * BYTES_PER_SYNAPSE + num * BYTES_PER_NEURON
    # kept: the shown neurons' bool raster and two int32 counts per step; in flight: one
    # segment's bool record (the runner's) and its slices
    records = steps * (shown + 8) + 2 * min(segment, steps) * num
    need = network + records
    available = _available_bytes(device)
    if available is not None and need > 0.8 * available:
        raise CLIError(
            f"--scale {args.scale:g} needs about {_gb(need)} ({_gb(network)} for "
            f"{num * FAN_OUT:,} synapses, {_gb(records)} of records) but {_gb(available)} is "
            f"free on {device}: use a smaller --scale (the record is streamed, so --duration "
            "costs little memory)")
    return dict(num=num, steps=steps, device=device, figure=figure, segment=segment,
                need=need)


def tour(args) -> int:
    # Python, torch and torchbrain are imported before main() runs (python -m imports the
    # package first): that start-up is read from the process's start time where the OS says it.
    startup = _startup_seconds()
    tic = time.perf_counter()
    plan = _tour_plan(args)
    steps, device, segment = plan["steps"], plan["device"], plan["segment"]
    import torch

    import torchbrain as tb
    from torchbrain import u
    from torchbrain.models import COBAHHNet, COBANet, CUBANet

    if device.type == "cpu" and args.threads:
        # Per-step tensors are small (thousands of neurons): on the CPU, OpenMP's per-op
        # synchronisation costs more than a second thread gains (measured: 4k COBA).
        torch.set_num_threads(args.threads)
    nets = {"coba": COBANet, "cuba": CUBANet, "cobahh": COBAHHNet}
    net = nets[args.model](scale=args.scale, seed=args.seed, device=device)
    tb.init_all_states(net)
    ne, ni = net.num_exc, net.num_inh
    kind = "Hodgkin-Huxley" if args.model == "cobahh" else "LIF"
    print(f"{args.model.upper()} network: {net.num} {kind} neurons ({ne} E, {ni} I), "
          f"{net.E.comm.num_synapses + net.I.comm.num_synapses:,} synapses, "
          f"{args.duration:g} ms at dt = {args.dt:g} ms on {device} (network and records: "
          f"about {_gb(plan['need'])})")
    # The raster keeps the first SHOWN_EXC E and SHOWN_INH I neurons (the wiring is random, so
    # they are a random sample); the rates count every neuron, step by step.
    n_shown_e, n_shown_i = min(SHOWN_EXC, ne), min(SHOWN_INH, ni)
    shown = torch.cat([torch.arange(n_shown_e), ne + torch.arange(n_shown_i)]).to(device)
    raster = torch.empty((steps, n_shown_e + n_shown_i), dtype=torch.bool)
    counts = torch.empty((steps, 2), dtype=torch.int32)
    # compile=None: the runner's default (eager on the CPU, compiled on CUDA)
    runner = tb.NetworkRunner(net, chunk=args.chunk,
                              compile=False if args.eager else (args.compile or None))
    laps = {"checks and build": time.perf_counter() - tic}
    compile_seconds = 0.0
    with tb.environ.context(dt=args.dt * u.ms), \
            _progress_bar(steps, not args.no_progress) as bar:
        tic = time.perf_counter()
        done = 0
        while done < steps:
            # segments of whole chunks: the record is streamed into the counts and the shown
            # raster, so memory does not grow with steps x neurons
            n = min(segment, steps - done)
            out = runner.run(n, t0=done * args.dt)
            if done == 0:
                compile_seconds = runner.compile_seconds
            counts[done:done + n, 0] = out[:, :ne].sum(1, dtype=torch.int32).cpu()
            counts[done:done + n, 1] = out[:, ne:].sum(1, dtype=torch.int32).cpu()
            raster[done:done + n] = out.index_select(1, shown).cpu()
            done += n
            bar.update(n)
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - tic
    seconds = steps * args.dt / 1000.0
    total = counts.sum(0, dtype=torch.int64)
    rate_e, rate_i = total[0].item() / ne / seconds, total[1].item() / ni / seconds
    print(f"rates: E {rate_e:.2f} Hz, I {rate_i:.2f} Hz")
    sim = max(wall - compile_seconds, 1e-9)
    if compile_seconds:  # the runner compiled (on CUDA, or with --compile)
        laps["compilation"] = compile_seconds
    laps["simulation"] = sim
    if plan["figure"]:
        tic = time.perf_counter()
        import matplotlib.pyplot as plt

        from torchbrain import plot

        per_step = 1000.0 / args.dt  # a count per step and neuron, in Hz
        fig = plot.raster_and_rate(
            raster, args.dt, plan["figure"],
            groups={"E": slice(0, n_shown_e), "I": slice(n_shown_e, None)},
            colors=["#c0392b", "#2c5aa0"],
            rates={"E": counts[:, 0].double() * (per_step / ne),
                   "I": counts[:, 1].double() * (per_step / ni)},
            width=RATE_WINDOW_MS,
            title=(f"{args.model.upper()} network, {net.num} {kind} neurons ({ne} E, {ni} I): "
                   f"E {rate_e:.1f} Hz, I {rate_i:.1f} Hz\n"
                   f"raster: {n_shown_e} E and {n_shown_i} I neurons; rates: every neuron, "
                   f"{RATE_WINDOW_MS:g} ms window"),
            figsize=(9.0, 5.5), dpi=120)
        plt.close(fig)
        laps["figure"] = time.perf_counter() - tic
    parts = ", ".join(f"{name} {sec:.2f} s" for name, sec in laps.items())
    if startup is not None:
        whole = startup + sum(laps.values())
        print(f"time: {whole:.1f} s from the command's start to here = start-up and imports "
              f"{startup:.2f} s, {parts}")
    else:
        print(f"time: {sum(laps.values()):.1f} s after the imports = {parts}")
    print(f"simulation speed: {sim / seconds:.3f} s per simulated second, {steps / sim:,.0f} "
          "steps/s")
    if plan["figure"]:
        print(f"figure written to {plan['figure']}")
    return 0


# ------------------------------------------------------------------------------------ main
def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m torchbrain")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    mm = sub.add_parser("mental-model", help="the mental-model page: one LIF population")
    mm.add_argument("--current", type=_number, default=20.0,
                    help="input current in mA (R = 1 ohm)")
    mm.add_argument("--duration", type=_positive(" ms"), default=200.0,
                    help="simulated time in ms")
    mm.add_argument("--dt", type=_positive(" ms"), default=0.1, help="time step in ms")
    mm.add_argument("--seed", type=_seed, default=0)
    mm.add_argument("--progress", action="store_true", help="show a progress bar")
    mm.set_defaults(func=mental_model)
    tr = sub.add_parser("tour", help="the E/I benchmark network (COBA/CUBA/COBAHH)")
    tr.add_argument("--model", default="coba", choices=["coba", "cuba", "cobahh"],
                    help="coba, cuba or cobahh")
    tr.add_argument("--scale", type=_positive(), default=1.0,
                    help="size as a multiple of 4000 neurons (at least 0.02)")
    tr.add_argument("--duration", type=_positive(" ms"), default=1000.0,
                    help="simulated time in ms")
    tr.add_argument("--dt", type=_positive(" ms"), default=0.1, help="time step in ms")
    tr.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    tr.add_argument("--seed", type=_seed, default=0,
                    help="seeds the connectivity and the initial state")
    tr.add_argument("--chunk", type=_count(1, "a chunk"), default=10,
                    help="steps per compiled chunk")
    tr.add_argument("--threads", type=_count(0, "a thread count"), default=1,
                    help="CPU threads (0 keeps torch's default)")
    tr.add_argument("--eager", action="store_true", help="do not compile the time loop")
    tr.add_argument("--compile", action="store_true",
                    help="compile the time loop also on the CPU (pays off for long runs)")
    tr.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    tr.add_argument("--figure", default="tour.png",
                    help="figure path with an image suffix (.png, .pdf, .svg, ...; '' for none)")
    tr.set_defaults(func=tour)
    return parser


def main(argv=None) -> int:
    """Run a command; returns the exit status (2 for a bad argument, with one line on stderr)."""
    try:
        args = _parser().parse_args(argv)
        return args.func(args)
    except CLIError as err:
        print(f"python -m torchbrain: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("python -m torchbrain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
