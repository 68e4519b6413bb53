"""NEST runner of the Potjans–Diesmann (2014) microcircuit, from torchbrain's parameter tables.

Written here from the published model as ``torchbrain.models.Microcircuit`` states it (NEST's own
example implementation is not part of the wheel): ``iaf_psc_exp`` neurons, one population per
cell type, the pathways connected with ``fixed_total_number`` (multapses and autapses), normal
weights with a 10 % spread redrawn to keep their sign, normal delays redrawn until >= dt,
one ``poisson_generator`` per population at ``8 Hz * K_ext`` (an independent train per neuron),
or the DC current of the same mean, plus the downscaling DC. Every number comes from
``microcircuit_spec.py`` (run in torchbrain's environment), so both simulators build the same
model at the same ``scale`` and ``k_scale``.

Reported: ``wall_s`` = ``nest.Simulate`` of ``--duration`` after ``--transient`` ms (not timed),
the real-time factor, ``build_s`` (creating and connecting), the rate of every population.

Usage::

    python benchmarks/peers/microcircuit_spec.py --scale 0.1 > /tmp/mc.json
    /work/venvs/nest/bin/python benchmarks/peers/nest_microcircuit.py --spec /tmp/mc.json
"""

from __future__ import annotations

import argparse
import json
import math
import time

from _common import DT_MS, peak_rss_mb


def build(nest, spec: dict) -> list:
    """Create and connect the model; returns the populations (NodeCollections)."""
    neuron = spec["neuron"]
    tau_syn = spec["tau_syn_ms"]
    pops = []
    for a, size in enumerate(spec["num_neurons"]):
        pop = nest.Create("iaf_psc_exp", size, params=dict(
            C_m=neuron["C"], tau_m=neuron["tau"], t_ref=neuron["tau_ref"], E_L=neuron["E_L"],
            V_th=neuron["V_th"], V_reset=neuron["V_reset"], tau_syn_ex=tau_syn,
            tau_syn_in=tau_syn, I_e=spec["dc_amp"][a]))
        pop.V_m = nest.random.normal(mean=spec["V0_mean"][a], std=spec["V0_std"][a])
        pops.append(pop)
    for a, post in enumerate(pops):
        for b, pre in enumerate(pops):
            count = spec["synapse_counts"][a][b]
            if count <= 0:
                continue
            w = spec["weight_mean"][a][b]
            low, high = (0.0, math.inf) if w >= 0 else (-math.inf, 0.0)
            d = spec["delay_mean_ms"][b % 2]  # populations alternate E, I
            nest.Connect(pre, post, {"rule": "fixed_total_number", "N": int(count)}, {
                "synapse_model": "static_synapse",
                "weight": nest.math.redraw(
                    nest.random.normal(mean=w, std=abs(w) * spec["weight_rel_std"]),
                    min=low, max=high),
                "delay": nest.math.redraw(
                    nest.random.normal(mean=d, std=d * spec["delay_rel_std"]),
                    min=DT_MS, max=math.inf),
            })
    if spec["drive"] == "poisson":
        for a, pop in enumerate(pops):
            gen = nest.Create("poisson_generator",
                              params={"rate": spec["bg_rate_hz"] * spec["ext_indegree"][a]})
            nest.Connect(gen, pop, "all_to_all", {"weight": spec["w_ext"], "delay": DT_MS})
    return pops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="JSON written by microcircuit_spec.py")
    parser.add_argument("--duration", type=float, default=1000.0, help="measured, ms")
    parser.add_argument("--transient", type=float, default=200.0, help="discarded, ms")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with open(args.spec) as f:
        spec = json.load(f)
    import nest
    import numpy as np

    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": DT_MS, "local_num_threads": args.threads,
                          "rng_seed": args.seed + 1, "print_time": False})
    tic = time.perf_counter()
    pops = build(nest, spec)
    recorders = nest.Create("spike_recorder", len(pops), params={"start": args.transient})
    for pop, rec in zip(pops, recorders, strict=True):
        nest.Connect(pop, rec)
    build_s = time.perf_counter() - tic
    nest.Simulate(args.transient)
    tic = time.perf_counter()
    nest.Simulate(args.duration)
    wall = time.perf_counter() - tic
    seconds = args.duration / 1000.0
    rates = {name: float(np.asarray(rec.get("n_events")) / (len(pop) * seconds))
             for name, pop, rec in zip(spec["populations"], pops, recorders, strict=True)}
    print(json.dumps({
        "simulator": "nest", "version": nest.__version__, "benchmark": "microcircuit",
        "scale": spec["scale"], "k_scale": spec["k_scale"], "drive": spec["drive"],
        "threads": args.threads, "neurons": sum(spec["num_neurons"]),
        "synapses": int(sum(map(sum, spec["synapse_counts"]))), "build_s": build_s,
        "transient_ms": args.transient, "duration_ms": args.duration, "wall_s": wall,
        "real_time_factor": wall / seconds, "rates_hz": rates, "peak_rss_mb": peak_rss_mb(),
    }), flush=True)


if __name__ == "__main__":
    main()
