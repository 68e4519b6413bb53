"""NEST runner of the E/I benchmark networks (NEST 3.10, the ``nest-simulator`` binary wheel).

The same networks as ``torchbrain.models`` (parameters in ``_common.NETWORKS``), with NEST's own
neuron models: ``iaf_cond_exp`` (COBA; NEST integrates it with an adaptive Runge–Kutta solver),
``iaf_psc_exp`` (CUBA; exact integration) and ``hh_cond_exp_traub`` (COBAHH; NEST detects a
spike at the peak above V_T + 30 mV with a 2 ms dead time, torchbrain at the upward crossing of
-20 mV). Fixed out-degree 80 with multapses and autapses (``fixed_outdegree``), synaptic delay
of one step (the smallest NEST allows; the spike acts on the next step, as in torchbrain), initial
values drawn with numpy from the same distributions (HH gates at their steady state; NEST does
not let the HH conductances be set, so they arrive as one jump per neuron in the second step).

Reported: ``wall_s`` = ``nest.Simulate`` of the timed duration; ``build_s`` = creating and
connecting the network. There is no compilation step.

Usage (its own virtual environment)::

    python3 -m venv /work/venvs/nest && /work/venvs/nest/bin/pip install nest-simulator
    /work/venvs/nest/bin/python benchmarks/peers/nest_ei.py --model coba --neurons 4000
"""

from __future__ import annotations

import time

from _common import DT_MS, FAN_OUT, NETWORKS, emit, parse_args, rates_hz, split


def traub_miles_steady_state(v, V_T):
    """Steady-state m, h, n of the Traub–Miles gates at potential ``v`` (numpy, mV)."""
    import numpy as np

    x = v - V_T

    def ratio(a, b):  # a / (exp(a / b) - 1) * 1/b ... written as b / exprel(a / b)
        z = a / b
        return np.where(np.abs(z) < 1e-6, b, a / np.expm1(np.where(z == 0, 1e-12, z)))

    alpha_m = 0.32 * ratio(13 - x, 4)
    beta_m = 0.28 * ratio(x - 40, 5)
    alpha_h = 0.128 * np.exp((17 - x) / 18)
    beta_h = 4 / (1 + np.exp((40 - x) / 5))
    alpha_n = 0.032 * ratio(15 - x, 5)
    beta_n = 0.5 * np.exp((10 - x) / 40)
    return (alpha_m / (alpha_m + beta_m), alpha_h / (alpha_h + beta_h),
            alpha_n / (alpha_n + beta_n))


def build(nest, model: str, num: int, rng):
    """Create and connect the network; returns the neuron collection."""
    import numpy as np

    p = NETWORKS[model]
    v0 = rng.normal(p["V0_mean"], p["V0_std"], num)
    if model == "coba":
        neurons = nest.Create("iaf_cond_exp", num, params=dict(
            C_m=p["g_L"] * p["tau_m"], g_L=p["g_L"], E_L=p["E_L"], V_th=p["V_th"],
            V_reset=p["V_reset"], t_ref=p["tau_ref"], E_ex=p["E_e"], E_in=p["E_i"],
            tau_syn_ex=p["tau_e"], tau_syn_in=p["tau_i"], I_e=p["I_e"]))
    elif model == "cuba":
        neurons = nest.Create("iaf_psc_exp", num, params=dict(
            C_m=p["g_L"] * p["tau_m"], tau_m=p["tau_m"], E_L=p["E_L"], V_th=p["V_th"],
            V_reset=p["V_reset"], t_ref=p["tau_ref"], tau_syn_ex=p["tau_e"],
            tau_syn_in=p["tau_i"], I_e=p["I_e"]))
    else:
        neurons = nest.Create("hh_cond_exp_traub", num, params=dict(
            C_m=p["C"], g_L=p["g_L"], g_Na=p["g_Na"], g_K=p["g_K"], E_L=p["E_L"],
            E_K=p["E_K"], E_Na=p["E_Na"], V_T=p["V_T"], E_ex=p["E_e"], E_in=p["E_i"],
            tau_syn_ex=p["tau_e"], tau_syn_in=p["tau_i"], I_e=0.0))
        m, h, n = traub_miles_steady_state(v0, p["V_T"])
        neurons.set(Act_m=m.tolist(), Inact_h=h.tolist(), Act_n=n.tolist())
        # NEST does not let the conductances be set: the random initial ones arrive as one
        # jump per neuron in the second step (negative draws clipped: a sign picks the channel)
        kicks = nest.Create("spike_generator", num, params={"spike_times": [DT_MS]})
        for mean, std, sign in ((p["ge0_mean"], p["ge0_std"], 1.0),
                                (p["gi0_mean"], p["gi0_std"], -1.0)):
            g0 = np.maximum(rng.normal(mean, std, num), 1e-9) * sign
            nest.Connect(kicks, neurons, "one_to_one", {"weight": g0, "delay": DT_MS})
    neurons.set(V_m=v0.tolist())
    num_exc, _ = split(num)
    # conductance models take the inhibitory weight with a negative sign
    w_i = -abs(p["w_i"]) if model != "cuba" else p["w_i"]
    rule = {"rule": "fixed_outdegree", "outdegree": FAN_OUT, "allow_autapses": True,
            "allow_multapses": True}
    nest.Connect(neurons[:num_exc], neurons, rule,
                 {"synapse_model": "static_synapse", "weight": p["w_e"], "delay": DT_MS})
    nest.Connect(neurons[num_exc:], neurons, rule,
                 {"synapse_model": "static_synapse", "weight": w_i, "delay": DT_MS})
    return neurons


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    import nest
    import numpy as np

    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": DT_MS, "local_num_threads": args.threads,
                          "rng_seed": args.seed + 1, "print_time": False})
    tic = time.perf_counter()
    neurons = build(nest, args.model, args.neurons, np.random.default_rng(args.seed))
    recorder = nest.Create("spike_recorder")
    nest.Connect(neurons, recorder)
    build_s = time.perf_counter() - tic
    tic = time.perf_counter()
    nest.Simulate(args.duration)
    wall = time.perf_counter() - tic
    senders = np.asarray(recorder.get("events", "senders"))
    first = neurons[0].global_id
    num_exc, _ = split(args.neurons)
    exc = int(np.count_nonzero(senders < first + num_exc))
    emit("nest", nest.__version__, args, wall,
         **rates_hz(exc, senders.size - exc, args.neurons, args.duration), build_s=build_s,
         synapses=len(nest.GetConnections(source=neurons, target=neurons)))


if __name__ == "__main__":
    main()
