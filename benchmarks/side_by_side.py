"""torchbrain beside Brian2, NEST and BrainPy in one run: tables of same-run ratios.

Every measurement is one subprocess (a runner in ``benchmarks/peers/``, in the simulator's own
Python environment) that prints one JSON line; this driver runs them one after another with a
per-run timeout, takes each child's peak resident memory from the kernel (``wait4``), repeats
the whole set ``--repeats`` times (interleaved, so a change of load hits every simulator alike)
and prints Markdown tables: ``min / median`` of the wall seconds per simulated second over the
repeats, the mean E/I rates, and the ratio torchbrain / peer computed **within each repeat**
(``min / median`` of those ratios; below 1 means torchbrain is faster). A peer whose environment
is absent is marked ``missing``; one that ran past the timeout ``timeout``; nothing is guessed.
A peer's rate more than ``--rate-tolerance`` away from torchbrain's in the same row is flagged
with ``!`` (the networks are the same, so the rates must agree).

Sections (``--sections``):

* ``coba`` -- COBA E/I at ``--sizes`` for every thread count in ``--threads``;
* ``scaling`` -- COBA from 4k to 256k neurons at the first thread count: torchbrain's s per
  simulated s, steps/s, connectivity bytes per synapse and peak RSS, peers up to their
  ``--max-neurons``;
* ``cuba``, ``cobahh`` -- the current-based and the Hodgkin–Huxley networks at 4k;
* ``microcircuit`` -- torchbrain's ``Microcircuit`` (``benchmarks/microcircuit.py``) and NEST
  running the same model (``peers/nest_microcircuit.py``, built from torchbrain's tables) at
  ``--mc-scale``, real-time factor after a discarded transient.

Environments: torchbrain runs in this interpreter's environment; each peer in
``<venvs>/<peer>/bin/python`` (``--venvs``, default ``$TORCHBRAIN_PEER_VENVS`` or
``/work/venvs``); ``benchmarks/README.md`` says how to create them.

Usage (one line; ``--quick`` for a smoke run of small sizes)::

    python benchmarks/side_by_side.py --repeats 3 --out /tmp/side_by_side.json
    python benchmarks/side_by_side.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_DIR = HERE / "peers"

#: Runner script and models of each simulator's E/I runner.
RUNNERS = {
    "torchbrain": ("torchbrain_ei.py", ("coba", "cuba", "cobahh")),
    "brian2": ("brian2_ei.py", ("coba", "cuba", "cobahh")),
    "brainpy": ("brainpy_ei.py", ("coba", "cuba")),
    "nest": ("nest_ei.py", ("coba", "cuba", "cobahh")),
}
#: The module whose import proves a peer's environment is usable.
IMPORTS = {"brian2": "brian2", "brainpy": "brainpy", "nest": "nest"}
PEERS = ("brian2", "brainpy", "nest")
SCALING_SIZES = (4000, 8000, 16000, 32000, 64000, 128000, 256000)
#: Largest network each peer is asked to run by default, to keep one run of the driver within
#: the hour on the 2-core machine: NEST's adaptive RK45 conductance neuron takes 10-50 s per
#: simulated second at 4k there, BrainPy runs its loop twice (~4-8 min at 256k).
DEFAULT_MAX_NEURONS = {"brian2": 256000, "brainpy": 128000, "nest": 4000}


@dataclasses.dataclass(frozen=True)
class Job:
    """One measurement: a simulator running a network of one size at one thread count."""

    simulator: str
    model: str
    neurons: int
    threads: int


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_child(cmd: list[str], env: dict, timeout: float) -> dict:
    """Run ``cmd``; its last JSON line, plus ``process_wall_s`` and the kernel's peak RSS.

    On failure: ``{"status": "timeout" | "failed", "detail": ...}``.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        tic = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=HERE.parent,
                                start_new_session=True)
        status, rusage = None, None
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - tic > timeout:
                _kill_group(proc)
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                return {"status": "timeout", "detail": f"> {timeout:.0f} s"}
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - tic
        out.seek(0)
        err.seek(0)
        lines = out.read().strip().splitlines()
        if proc.returncode != 0 or not lines:
            tail = " | ".join(err.read().strip().splitlines()[-3:])
            return {"status": "failed", "detail": f"exit {proc.returncode}: {tail}"[:300]}
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            return {"status": "failed", "detail": f"no JSON line: {lines[-1][:200]}"}
    result.update(status="ok", process_wall_s=wall,
                  peak_rss_mb_kernel=rusage.ru_maxrss / 1024.0)
    return result


class Driver:
    """Runs the jobs of every section and keeps the results per repeat."""

    def __init__(self, args: argparse.Namespace, saved: dict | None = None):
        self.args = args
        self.pythons = {"torchbrain": sys.executable}
        self.missing: dict[str, str] = {}
        self.command = " ".join(sys.argv)
        self.finished = ""  # when the last run ended, and the load average then
        self.build_dir = Path(args.build_dir)
        self.results: list[dict] = []  # one dict per repeat: key -> result
        if saved is not None:  # tables of an earlier run (--tables-from)
            self.missing, self.results = saved["missing"], saved["results"]
            self.command, self.finished = saved["command"], saved["finished"]
            return
        for peer in PEERS:
            python = Path(args.venvs) / peer / "bin" / "python"
            if peer in args.skip:
                self.missing[peer] = "skipped (--skip)"
            elif not python.exists():
                self.missing[peer] = f"missing ({python} not found)"
            elif subprocess.run([str(python), "-c", f"import {IMPORTS[peer]}"],
                                capture_output=True, env=self.env(peer, 1)).returncode:
                self.missing[peer] = f"missing (cannot import {IMPORTS[peer]})"
            else:
                self.pythons[peer] = str(python)

    def env(self, simulator: str, threads: int) -> dict:
        env = dict(os.environ)
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
        if simulator != "torchbrain":
            env.pop("PYTHONPATH", None)  # the peer's environment only
        return env

    def ei_command(self, job: Job) -> list[str]:
        script = RUNNERS[job.simulator][0]
        cmd = [self.pythons[job.simulator], str(PEERS_DIR / script), "--model", job.model,
               "--neurons", str(job.neurons), "--duration", str(self.args.duration),
               "--threads", str(job.threads), "--seed", str(self.args.seed)]
        if job.simulator == "brian2":
            cmd += ["--build-dir", str(self.build_dir / "brian2")]
        return cmd

    def runnable(self, job: Job) -> str | None:
        """None when the job can run, else why not (written into the table)."""
        if job.simulator in self.missing:
            return self.missing[job.simulator]
        if job.model not in RUNNERS[job.simulator][1]:
            return "n/a"
        limit = self.args.max_neurons.get(job.simulator)
        if limit is not None and job.neurons > limit:
            return f"not run (> {limit:,} neurons, --max-neurons)"
        return None

    def ei_jobs(self) -> list[Job]:
        a = self.args
        jobs = []
        simulators = ("torchbrain", *PEERS)
        if "coba" in a.sections:
            jobs += [Job(s, "coba", n, t) for t in a.threads for n in a.sizes for s in simulators]
        if "scaling" in a.sections:
            jobs += [Job(s, "coba", n, a.threads[0]) for n in a.scaling_sizes
                     for s in simulators]
        for model in ("cuba", "cobahh"):
            if model in a.sections:
                jobs += [Job(s, model, a.sizes[0], a.threads[0]) for s in simulators]
        unique = list(dict.fromkeys(jobs))
        return [job for job in unique if self.runnable(job) is None]

    def microcircuit(self, repeat: dict) -> None:
        a = self.args
        t = a.threads[0]
        cmd = [sys.executable, str(HERE / "microcircuit.py"), "--scale", str(a.mc_scale),
               "--duration", str(a.mc_duration), "--transient", str(a.mc_transient),
               "--threads", str(t), "--seed", str(a.seed)]
        self.report("microcircuit torchbrain", repeat.setdefault(
            "mc/torchbrain", run_child(cmd, self.env("torchbrain", t), a.timeout)))
        self.save(self.results + [repeat])
        if "nest" in self.missing:
            return
        spec = self.build_dir / f"microcircuit_{a.mc_scale}.json"
        spec.parent.mkdir(parents=True, exist_ok=True)
        with open(spec, "w") as f:
            subprocess.run([sys.executable, str(PEERS_DIR / "microcircuit_spec.py"), "--scale",
                            str(a.mc_scale)], stdout=f, check=True,
                           env=self.env("torchbrain", 1))
        cmd = [self.pythons["nest"], str(PEERS_DIR / "nest_microcircuit.py"), "--spec",
               str(spec), "--duration", str(a.mc_duration), "--transient",
               str(a.mc_transient), "--threads", str(t), "--seed", str(a.seed)]
        self.report("microcircuit nest", repeat.setdefault(
            "mc/nest", run_child(cmd, self.env("nest", t), a.timeout)))

    @staticmethod
    def report(label: str, result: dict) -> None:
        if result["status"] != "ok":
            text = f"{result['status']}: {result['detail']}"
        elif "real_time_factor" in result:
            text = f"RTF {result['real_time_factor']:.2f}"
        else:
            text = (f"{result['wall_per_sim_s']:.3f} s/sim-s, E {result['rate_E_Hz']:.1f} Hz, "
                    f"I {result['rate_I_Hz']:.1f} Hz")
        print(f"  {label}: {text}", file=sys.stderr, flush=True)

    def run(self) -> None:
        jobs = self.ei_jobs()
        for r in range(self.args.repeats):
            repeat: dict = {}
            print(f"repeat {r + 1}/{self.args.repeats}: {len(jobs)} runs", file=sys.stderr,
                  flush=True)
            for job in jobs:
                result = run_child(self.ei_command(job), self.env(job.simulator, job.threads),
                                   self.args.timeout)
                repeat[key(job)] = result
                self.report(f"{job.simulator} {job.model} {job.neurons} t{job.threads}",
                            result)
                self.save(self.results + [repeat])
            if "microcircuit" in self.args.sections:
                self.microcircuit(repeat)
            self.results.append(repeat)
            self.save(self.results)

    def save(self, results: list[dict]) -> None:
        """Write every result so far to ``--out`` (after each run: a stopped run keeps them)."""
        self.finished = (f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
                         f"load avg {os.getloadavg()[0]:.1f}")
        if not self.args.out:
            return
        with open(self.args.out, "w") as f:
            json.dump({"command": self.command, "finished": self.finished,
                       "args": vars(self.args), "missing": self.missing, "results": results},
                      f, indent=1)

    # ------------------------------------------------------------------ tables
    def values(self, k: str, field: str) -> list[float]:
        return [rep[k][field] for rep in self.results
                if k in rep and rep[k]["status"] == "ok" and field in rep[k]]

    def cell(self, job: Job, field: str = "wall_per_sim_s", digits: int = 3) -> str:
        why = self.runnable(job)
        if why:
            return why
        vals = self.values(key(job), field)
        if not vals:
            states = {rep[key(job)]["status"] for rep in self.results if key(job) in rep}
            if states == {"ok"}:
                return "—"  # ran, but this simulator has no such figure
            return "/".join(sorted(states)) or "not run"
        return min_median(vals, digits)

    def rates(self, job: Job, ref: Job | None = None) -> str:
        e = self.values(key(job), "rate_E_Hz")
        i = self.values(key(job), "rate_I_Hz")
        if not e:
            return "—"
        text = f"{statistics.median(e):.1f}/{statistics.median(i):.1f}"
        if ref is not None:
            e0, i0 = self.values(key(ref), "rate_E_Hz"), self.values(key(ref), "rate_I_Hz")
            tol = self.args.rate_tolerance
            if e0 and any(abs(x / y - 1) > tol for x, y in
                          ((statistics.median(e), statistics.median(e0)),
                           (statistics.median(i), statistics.median(i0)))):
                text += " !"
        return text

    def ratio(self, job: Job, peer: str, field: str = "wall_per_sim_s") -> str:
        """torchbrain / peer, computed within each repeat."""
        other = dataclasses.replace(job, simulator=peer)
        ratios = [rep[key(job)][field] / rep[key(other)][field] for rep in self.results
                  if all(k in rep and rep[k]["status"] == "ok" for k in (key(job), key(other)))]
        return min_median(ratios, 2) if ratios else "—"

    def comparison_table(self, model: str, sizes, threads: int) -> list[str]:
        head = ["neurons", "torchbrain", *PEERS, *(f"tb / {p}" for p in PEERS),
                "E/I Hz: tb", *(f"E/I Hz: {p}" for p in PEERS)]
        lines = [row(head), row(["---"] * len(head))]
        for n in sizes:
            tb = Job("torchbrain", model, n, threads)
            peers = [dataclasses.replace(tb, simulator=p) for p in PEERS]
            lines.append(row([f"{n:,}", self.cell(tb), *(self.cell(j) for j in peers),
                              *(self.ratio(tb, p) for p in PEERS), self.rates(tb),
                              *(self.rates(j, tb) for j in peers)]))
        return lines

    def scaling_table(self) -> list[str]:
        t = self.args.threads[0]
        head = ["neurons", "torchbrain s/sim-s", "steps/s", "bytes/synapse", "peak RSS MB",
                "compile s", *(f"{p} s/sim-s" for p in PEERS), *(f"tb / {p}" for p in PEERS),
                "E/I Hz: tb"]
        lines = [row(head), row(["---"] * len(head))]
        for n in self.args.scaling_sizes:
            tb = Job("torchbrain", "coba", n, t)
            lines.append(row([
                f"{n:,}", self.cell(tb), self.cell(tb, "steps_per_s", 0),
                self.cell(tb, "bytes_per_synapse", 2), self.cell(tb, "peak_rss_mb_kernel", 0),
                self.cell(tb, "compile_s", 1),
                *(self.cell(dataclasses.replace(tb, simulator=p)) for p in PEERS),
                *(self.ratio(tb, p) for p in PEERS), self.rates(tb)]))
        return lines

    def compile_table(self) -> list[str]:
        """Time before the first result: compile/build and the whole process, COBA 4k."""
        t = self.args.threads[0]
        n = self.args.sizes[0]
        head = ["simulator", "compile / C++ build s", "network build s", "whole process s",
                "peak RSS MB"]
        lines = [row(head), row(["---"] * len(head))]
        for sim in ("torchbrain", *PEERS):
            job = Job(sim, "coba", n, t)
            lines.append(row([sim, self.cell(job, "compile_s", 1), self.cell(job, "build_s", 1),
                              self.cell(job, "process_wall_s", 1),
                              self.cell(job, "peak_rss_mb_kernel", 0)]))
        return lines

    def microcircuit_table(self) -> list[str]:
        a = self.args
        head = ["simulator", "neurons", "synapses", "build s", "RTF (s/sim-s)", "tb / nest",
                "rates L23E..L6I (Hz)"]
        lines = [row(head), row(["---"] * len(head))]
        ratios = [rep["mc/torchbrain"]["real_time_factor"] / rep["mc/nest"]["real_time_factor"]
                  for rep in self.results
                  if all(rep.get(k, {}).get("status") == "ok"
                         for k in ("mc/torchbrain", "mc/nest"))]
        for sim in ("torchbrain", "nest"):
            k = f"mc/{sim}"
            ok = [rep[k] for rep in self.results if rep.get(k, {}).get("status") == "ok"]
            if not ok:
                states = {rep[k]["status"] for rep in self.results if k in rep}
                why = self.missing.get(sim) or "/".join(sorted(states)) or "not run"
                lines.append(row([sim, why, "", "", "", "", ""]))
                continue
            last = ok[-1]
            rates = " ".join(f"{last['rates_hz'][p]:.2f}" for p in last["rates_hz"])
            lines.append(row([
                sim, f"{last['neurons']:,}", f"{last['synapses']:,}",
                min_median([r["build_s"] for r in ok], 1),
                min_median([r["real_time_factor"] for r in ok], 2),
                (min_median(ratios, 2) if ratios else "—") if sim == "torchbrain" else "",
                rates]))
        lines.append("")
        lines.append(f"scale {a.mc_scale}, k_scale 1, Poisson drive, {a.mc_transient:g} ms "
                     f"transient discarded, {a.mc_duration:g} ms measured, "
                     f"{a.threads[0]} thread(s); rates from the last repeat.")
        return lines

    def tables(self) -> str:
        a = self.args
        out = [f"side_by_side: finished {self.finished}; "
               f"{platform.machine()} {os.cpu_count()} cores ({cpu_model()}), "
               f"{a.repeats} repeat(s), "
               f"{a.duration:g} ms simulated per E/I run, cells min / median",
               f"command: {self.command}"]
        for peer, why in self.missing.items():
            out.append(f"{peer}: {why}")
        if "coba" in a.sections:
            for t in a.threads:
                out += ["", f"COBA, {t} thread(s): wall s per simulated s", "",
                        *self.comparison_table("coba", a.sizes, t)]
            out += ["", f"Compile/build and whole process, COBA {a.sizes[0]:,}, "
                        f"{a.threads[0]} thread(s)", "", *self.compile_table()]
        if "scaling" in a.sections:
            out += ["", f"COBA scaling, {a.threads[0]} thread(s)", "", *self.scaling_table()]
        for model in ("cuba", "cobahh"):
            if model in a.sections:
                out += ["", f"{model.upper()} {a.sizes[0]:,}, {a.threads[0]} thread(s)", "",
                        *self.comparison_table(model, a.sizes[:1], a.threads[0])]
        if "microcircuit" in a.sections:
            out += ["", "Microcircuit (Potjans & Diesmann 2014)", "", *self.microcircuit_table()]
        return "\n".join(out)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def key(job: Job) -> str:
    return f"{job.simulator}/{job.model}/{job.neurons}/t{job.threads}"


def row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def min_median(values: list[float], digits: int) -> str:
    lo, med = min(values), statistics.median(values)
    if len(values) == 1:
        return f"{lo:,.{digits}f}"
    return f"{lo:,.{digits}f} / {med:,.{digits}f}"


def parse_max_neurons(items: list[str]) -> dict[str, int]:
    limits = dict(DEFAULT_MAX_NEURONS)
    for item in items:
        name, _, value = item.partition("=")
        if name not in PEERS or not value.isdigit():
            raise SystemExit(f"side_by_side: --max-neurons takes PEER=N with PEER in {PEERS}, "
                             f"got {item!r}")
        limits[name] = int(value)
    return limits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sections = ("coba", "scaling", "cuba", "cobahh", "microcircuit")
    parser.add_argument("--sections", nargs="+", choices=sections, default=list(sections))
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 32000],
                        help="COBA sizes of the thread tables (the first is also CUBA's, "
                             "COBAHH's and the compile table's)")
    parser.add_argument("--scaling-sizes", type=int, nargs="+", default=list(SCALING_SIZES))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=1000.0, help="simulated ms per run")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    parser.add_argument("--max-neurons", nargs="*", default=[], metavar="PEER=N",
                        help=f"largest network per peer (default {DEFAULT_MAX_NEURONS})")
    parser.add_argument("--skip", nargs="*", default=[], choices=PEERS)
    parser.add_argument("--mc-scale", type=float, default=0.1)
    parser.add_argument("--mc-duration", type=float, default=500.0, help="measured ms")
    parser.add_argument("--mc-transient", type=float, default=200.0, help="discarded ms")
    parser.add_argument("--rate-tolerance", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--venvs", default=os.environ.get("TORCHBRAIN_PEER_VENVS",
                                                          "/work/venvs"))
    parser.add_argument("--build-dir", default=os.path.join(tempfile.gettempdir(),
                                                            "torchbrain_side_by_side"),
                        help="Brian2 projects (kept: later runs relink only) and specs")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and short runs: a smoke test of every runner")
    parser.add_argument("--out", default=None,
                        help="write every raw result here (JSON, rewritten after each run)")
    parser.add_argument("--tables-from", default=None, metavar="JSON",
                        help="print the tables of an earlier run's --out file, run nothing")
    args = parser.parse_args()
    if args.tables_from:
        with open(args.tables_from) as f:
            saved = json.load(f)
        print(Driver(argparse.Namespace(**saved["args"]), saved).tables())
        return
    args.max_neurons = parse_max_neurons(args.max_neurons)
    if args.quick:
        args.sizes, args.scaling_sizes = [4000], [4000, 8000]
        args.duration, args.mc_duration, args.mc_transient = 200.0, 100.0, 50.0
        args.mc_scale = 0.02
    if min(args.threads) < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be at least 1")
    driver = Driver(args)
    driver.run()
    print(driver.tables())


if __name__ == "__main__":
    main()
