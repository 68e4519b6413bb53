"""BrainPy 2.9 runner of the COBA and CUBA benchmark networks (``brainpy.state``, JAX on the CPU).

The same networks as ``torchbrain.models`` (parameters in ``_common.NETWORKS``) written with
``brainpy.state`` (LIFRef, AlignPostProj, Expon, COBA/CUBA outputs, ``EventFixedProb``: fixed
out-degree ``int(N p)`` = 80), stepped with ``brainstate.transform.for_loop`` (one jitted loop
that returns the spike raster, as torchbrain's runner does). The loop of ``--duration`` is
called twice: the second call is timed (``wall_s``: pure run), and ``compile_s`` is the first
call's time minus the second's (tracing + XLA compilation; a loop of another length compiles
again, so a warm-up on a short loop would leave the compilation inside the timed call).
``--threads 1`` restricts XLA's CPU backend to one intra-op thread (set before JAX is imported).

BrainPy 2.9 needs Python >= 3.12, so it lives in its own virtual environment::

    python3.12 -m venv /work/venvs/brainpy && /work/venvs/brainpy/bin/pip install "brainpy[cpu]"
    /work/venvs/brainpy/bin/python benchmarks/peers/brainpy_ei.py --model coba --neurons 4000
"""

from __future__ import annotations

import os
import time

# benchmarks/peers is on sys.path: run as a script, or imported by benchmarks/coba.py
from _common import DT_MS, FAN_OUT, NETWORKS, emit, parse_args, split


def limit_threads(threads: int) -> None:
    """Give XLA's CPU backend ``threads`` intra-op threads (only effective before importing jax)."""
    flags = os.environ.get("XLA_FLAGS", "")
    extra = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} " \
            f"intra_op_parallelism_threads={threads}"
    os.environ["XLA_FLAGS"] = f"{flags} {extra}".strip()


def run(model: str, num: int, duration_ms: float, seed: int = 0) -> dict | None:
    """Simulate ``model`` at ``num`` neurons; None when brainpy is not importable."""
    try:
        import brainpy
        import brainstate
        import braintools
        import brainunit as bu
    except ImportError:
        return None
    import numpy as np

    p = NETWORKS[model]
    mV, ms, nS, pA = bu.mV, bu.ms, bu.nS, bu.pA
    num_exc, num_inh = split(num)
    if model == "coba":
        unit, outputs = nS, (brainpy.state.COBA.desc(E=p["E_e"] * mV),
                             brainpy.state.COBA.desc(E=p["E_i"] * mV))
    elif model == "cuba":
        # the synaptic variable is a current already: no scale (its default is a voltage)
        unit, outputs = pA, (brainpy.state.CUBA.desc(scale=1.0), brainpy.state.CUBA.desc(scale=1.0))
    else:
        raise ValueError(f"brainpy_ei: model {model!r} is not written for BrainPy here")
    g0 = braintools.init.Constant(0.0 * unit)  # the synaptic variable's unit (nS or pA)
    brainstate.random.seed(seed)

    class EINet(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.N = brainpy.state.LIFRef(
                num, V_rest=p["E_L"] * mV, V_th=p["V_th"] * mV, V_reset=p["V_reset"] * mV,
                tau=p["tau_m"] * ms, tau_ref=p["tau_ref"] * ms, R=1 / (p["g_L"] * nS),
                V_initializer=braintools.init.Normal(p["V0_mean"] * mV, p["V0_std"] * mV),
            )
            self.E = brainpy.state.AlignPostProj(
                comm=brainstate.nn.EventFixedProb(num_exc, num, FAN_OUT / num, p["w_e"] * unit),
                syn=brainpy.state.Expon.desc(num, tau=p["tau_e"] * ms, g_initializer=g0),
                out=outputs[0], post=self.N,
            )
            self.I = brainpy.state.AlignPostProj(
                comm=brainstate.nn.EventFixedProb(num_inh, num, FAN_OUT / num, p["w_i"] * unit),
                syn=brainpy.state.Expon.desc(num, tau=p["tau_i"] * ms, g_initializer=g0),
                out=outputs[1], post=self.N,
            )

        def update(self, t):
            with brainstate.environ.context(t=t):
                spk = self.N.get_spike() != 0.0
                self.E(spk[:num_exc])
                self.I(spk[num_exc:])
                self.N(p["I_e"] * pA)
                return self.N.get_spike() != 0.0  # a bool raster, as torchbrain records

    net = EINet()
    brainstate.nn.init_all_states(net)
    steps = int(round(duration_ms / DT_MS))
    with brainstate.environ.context(dt=DT_MS * ms):
        times = bu.math.arange(0.0 * ms, duration_ms * ms, brainstate.environ.get_dt())
        tic = time.perf_counter()
        brainstate.transform.for_loop(net.update, times).block_until_ready()
        first_call_s = time.perf_counter() - tic
        tic = time.perf_counter()  # the clock goes on (LIFRef's refractoriness reads t)
        spikes = brainstate.transform.for_loop(net.update, times + duration_ms * ms)
        spikes.block_until_ready()
        wall = time.perf_counter() - tic
    counts = np.asarray(spikes, dtype=np.float64).sum(axis=0)
    seconds = duration_ms / 1000
    return {
        "wall_s": wall,
        "wall_per_sim_s": wall / seconds,
        "steps_per_s": steps / wall,
        "rate_E_Hz": float(counts[:num_exc].mean() / seconds),
        "rate_I_Hz": float(counts[num_exc:].mean() / seconds),
        "compile_s": max(first_call_s - wall, 0.0),
        "first_call_s": first_call_s,
        "version": brainpy.__version__,
    }


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], models=("coba", "cuba"))
    limit_threads(args.threads)
    result = run(args.model, args.neurons, args.duration, seed=args.seed)
    if result is None:
        raise SystemExit("brainpy_ei: brainpy is not importable in this environment")
    import jax

    wall = result.pop("wall_s")
    version = result.pop("version")
    for key in ("wall_per_sim_s", "steps_per_s"):
        result.pop(key)
    emit("brainpy", version, args, wall, **result, jax=jax.__version__)


if __name__ == "__main__":
    main()
