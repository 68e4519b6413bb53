"""Brian2 runner of the E/I benchmark networks, in C++ standalone mode (``cpp_standalone``).

The same networks as ``torchbrain.models`` (COBANet, CUBANet, COBAHHNet; parameters in
``_common.NETWORKS``): fixed out-degree 80 drawn without replacement (``sample(N, size=80)``;
torchbrain and NEST allow multapses: about one duplicate target per row of 80 at 4k),
exponential synapses without delay (Brian2 propagates after the state update, so a spike acts on
the next step's membrane update, as in torchbrain; ``delay=dt`` would make that two steps),
exponential-Euler integration of the membrane at a constant conductance per step. Spikes are
counted per neuron (``SpikeMonitor(record=False)``) rather than recorded.

Reported: ``wall_s`` = the network's run loop as the generated C++ code times it (Brian2's
``device._last_run_time``: synapse creation, initialisation and the C++ build excluded),
``compile_s`` = code generation + C++ build (``build_cold``: in a fresh project directory;
``--build-dir DIR`` keeps one project per model, size and thread count there, so a repeated run
only regenerates and relinks), ``process_s`` =
the whole binary (connectivity, initialisation, run, writing results). ``--threads`` > 1 uses
Brian2's OpenMP support.

Brian2 needs numpy < 2, so it lives in its own virtual environment::

    python3 -m venv /work/venvs/brian2 && /work/venvs/brian2/bin/pip install brian2 "numpy<2"
    /work/venvs/brian2/bin/python benchmarks/peers/brian2_ei.py --model coba --neurons 4000
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from _common import DT_MS, FAN_OUT, NETWORKS, emit, parse_args, rates_hz, split

# Rate functions of the Traub–Miles model (v = V - V_T in mV, rates in 1/ms), with exprel at
# the removable singularities.
_TRAUB_MILES = """
dv/dt = (g_L*(E_L - v) + ge*(E_e - v) + gi*(E_i - v) - g_Na*m**3*h*(v - E_Na)
         - g_K*n**4*(v - E_K)) / C : volt
dm/dt = alpha_m*(1 - m) - beta_m*m : 1
dh/dt = alpha_h*(1 - h) - beta_h*h : 1
dn/dt = alpha_n*(1 - n) - beta_n*n : 1
dge/dt = -ge/tau_e : siemens
dgi/dt = -gi/tau_i : siemens
alpha_m = 0.32*4/exprel((13*mV - v + V_T)/(4*mV))/ms : Hz
beta_m = 0.28*5/exprel((v - V_T - 40*mV)/(5*mV))/ms : Hz
alpha_h = 0.128*exp((17*mV - v + V_T)/(18*mV))/ms : Hz
beta_h = 4/(1 + exp((40*mV - v + V_T)/(5*mV)))/ms : Hz
alpha_n = 0.032*5/exprel((15*mV - v + V_T)/(5*mV))/ms : Hz
beta_n = 0.5*exp((10*mV - v + V_T)/(40*mV))/ms : Hz
"""


def build(b2, model: str, num: int):
    """The neuron group and its two projections."""
    p = NETWORKS[model]
    ms, mV, nS, pA, pF = b2.ms, b2.mV, b2.nS, b2.pA, b2.pF
    ns = {}
    if model == "cobahh":
        ns.update(C=p["C"] * pF, g_L=p["g_L"] * nS, g_Na=p["g_Na"] * nS, g_K=p["g_K"] * nS,
                  E_L=p["E_L"] * mV, E_K=p["E_K"] * mV, E_Na=p["E_Na"] * mV,
                  V_T=p["V_T"] * mV, E_e=p["E_e"] * mV, E_i=p["E_i"] * mV,
                  tau_e=p["tau_e"] * ms, tau_i=p["tau_i"] * ms)
        group = b2.NeuronGroup(num, _TRAUB_MILES, threshold=f"v > {p['V_th']}*mV",
                               refractory=f"v > {p['V_th']}*mV", method="exponential_euler",
                               namespace=ns)
        group.v = f"{p['V0_mean']}*mV + {p['V0_std']}*mV*randn()"
        group.ge = f"({p['ge0_mean']} + {p['ge0_std']}*randn())*nS"
        group.gi = f"({p['gi0_mean']} + {p['gi0_std']}*randn())*nS"
        # gates at their steady state at the initial V
        group.m = "alpha_m/(alpha_m + beta_m)"
        group.h = "alpha_h/(alpha_h + beta_h)"
        group.n = "alpha_n/(alpha_n + beta_n)"
        on_pre = ("ge += w_e", "gi += w_i")
        ns.update(w_e=p["w_e"] * nS, w_i=p["w_i"] * nS)
    else:
        ns.update(tau_m=p["tau_m"] * ms, E_L=p["E_L"] * mV, g_L=p["g_L"] * nS,
                  I_e=p["I_e"] * pA, tau_e=p["tau_e"] * ms, tau_i=p["tau_i"] * ms)
        if model == "coba":
            ns.update(E_e=p["E_e"] * mV, E_i=p["E_i"] * mV, w_e=p["w_e"] * nS,
                      w_i=p["w_i"] * nS)
            eqs = """
            dv/dt = (g_L*(E_L - v) + ge*(E_e - v) + gi*(E_i - v) + I_e)/(g_L*tau_m)
                : volt (unless refractory)
            dge/dt = -ge/tau_e : siemens
            dgi/dt = -gi/tau_i : siemens
            """
            on_pre = ("ge += w_e", "gi += w_i")
        else:  # cuba: synaptic currents through R = 1/g_L
            ns.update(w_e=p["w_e"] * pA, w_i=p["w_i"] * pA)
            eqs = """
            dv/dt = (E_L - v)/tau_m + (Ie + Ii + I_e)/(g_L*tau_m) : volt (unless refractory)
            dIe/dt = -Ie/tau_e : amp
            dIi/dt = -Ii/tau_i : amp
            """
            on_pre = ("Ie += w_e", "Ii += w_i")
        group = b2.NeuronGroup(num, eqs, threshold=f"v > {p['V_th']}*mV",
                               reset=f"v = {p['V_reset']}*mV", refractory=p["tau_ref"] * ms,
                               method="exponential_euler", namespace=ns)
        group.v = f"{p['V0_mean']}*mV + {p['V0_std']}*mV*randn()"
    num_exc, _ = split(num)
    projections = []
    for pre, action in ((group[:num_exc], on_pre[0]), (group[num_exc:], on_pre[1])):
        syn = b2.Synapses(pre, group, on_pre=action, namespace=ns)
        syn.connect(j=f"k for k in sample(N_post, size={FAN_OUT})")
        projections.append(syn)
    return group, projections


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], build_dir=True)
    import brian2 as b2

    if args.build_dir:
        project = os.path.join(args.build_dir, f"{args.model}_{args.neurons}_t{args.threads}")
        cold = not os.path.isdir(project)
    else:
        project, cold = tempfile.mkdtemp(prefix="brian2_ei_"), True
    try:
        b2.set_device("cpp_standalone", directory=project, build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = args.threads if args.threads > 1 else 0
        b2.defaultclock.dt = DT_MS * b2.ms
        b2.seed(args.seed)
        group, projections = build(b2, args.model, args.neurons)
        monitor = b2.SpikeMonitor(group, record=False)
        b2.Network(group, *projections, monitor).run(args.duration * b2.ms)
        tic = time.perf_counter()
        b2.device.build(directory=project, compile=True, run=False)
        compile_s = time.perf_counter() - tic
        tic = time.perf_counter()
        b2.device.run(directory=project, with_output=False)
        process_s = time.perf_counter() - tic
        counts = monitor.count[:]
        num_exc, _ = split(args.neurons)
        rates = rates_hz(float(counts[:num_exc].sum()), float(counts[num_exc:].sum()),
                         args.neurons, args.duration)
        synapses = sum(len(s) for s in projections)
        emit("brian2", b2.__version__, args, float(b2.device._last_run_time), **rates,
             compile_s=compile_s, build_cold=cold, process_s=process_s, synapses=synapses,
             mode="cpp_standalone")
    finally:
        if not args.build_dir:
            shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    main()
