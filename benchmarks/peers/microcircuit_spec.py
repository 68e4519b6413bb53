"""The Potjans–Diesmann microcircuit's numbers at one scale, as JSON, from torchbrain's tables.

Runs in torchbrain's environment and prints what ``nest_microcircuit.py`` (NEST's environment,
no torch there) builds: population sizes, synapse counts per pathway, mean weights, external
in-degrees and weight, DC currents (``microcircuit_parameters``, the downscaling rule included),
the neuron parameters, delays, weight spread and initial potentials of
``torchbrain.models.microcircuit`` — one source of truth for both simulators.

Usage::

    python benchmarks/peers/microcircuit_spec.py --scale 0.1 > /tmp/mc.json
    /work/venvs/nest/bin/python benchmarks/peers/nest_microcircuit.py --spec /tmp/mc.json
"""

from __future__ import annotations

import argparse
import json


def spec(scale: float, k_scale: float = 1.0, drive: str = "poisson") -> dict:
    """The model's numbers at ``scale``/``k_scale`` (plain lists, JSON-ready)."""
    from torchbrain.models import microcircuit as mc

    mc.check_microcircuit_arguments("microcircuit_spec", scale, k_scale, drive, "optimized",
                                    mc.PUBLISHED_RATES, 0.1)
    params = mc.microcircuit_parameters(scale, k_scale, drive)
    return {
        "scale": scale, "k_scale": k_scale, "drive": drive,
        "populations": list(mc.POPULATIONS),
        "num_neurons": list(params.num_neurons),
        "synapse_counts": params.synapse_counts.tolist(),  # [post][pre]
        "weight_mean": params.weight_mean.tolist(),  # pA, [post][pre]
        "weight_rel_std": mc._W_REL_STD,
        "ext_indegree": list(params.ext_indegree),
        "w_ext": params.w_ext,
        "bg_rate_hz": mc._BG_RATE,
        "dc_amp": params.dc_amp.tolist(),
        "delay_mean_ms": list(mc._DELAY_MEAN),  # from excitatory, inhibitory neurons
        "delay_rel_std": mc._DELAY_REL_STD,
        "tau_syn_ms": mc._TAU_SYN,
        "neuron": dict(mc._NEURON),  # C (pF), tau (ms), tau_ref, E_L, V_th, V_reset (mV)
        "V0_mean": list(mc._V0_OPTIMIZED[0]),
        "V0_std": list(mc._V0_OPTIMIZED[1]),
        "published_rates_hz": list(mc.PUBLISHED_RATES),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--k-scale", type=float, default=1.0)
    parser.add_argument("--drive", choices=("poisson", "dc"), default="poisson")
    args = parser.parse_args()
    print(json.dumps(spec(args.scale, args.k_scale, args.drive)))


if __name__ == "__main__":
    main()
