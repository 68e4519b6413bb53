r"""The Vogels–Abbott (2005) E/I network, as in Brette et al. (2007) benchmarks 1 and 2.

One population of ``4000 * scale`` LIF neurons with a 5 ms refractory period (80 % excitatory),
each neuron projecting to a fixed number of 80 targets (so rates do not change with size), with
exponential synapses:

* **COBA** (conductance based): :math:`\tau_e = 5` ms, :math:`\tau_i = 10` ms, :math:`E_e = 0` mV,
  :math:`E_i = -80` mV, weights 0.6 and 6.7 in units of the leak conductance
  (:math:`g_L = 10` nS, so 6 nS and 67 nS); membrane :math:`\tau_m = 20` ms,
  :math:`E_L = V_\mathrm{reset} = -60` mV, :math:`V_\mathrm{th} = -50` mV, a constant drive of
  20 mV (200 pA); :math:`V_0 \sim \mathcal N(-55, 5)` mV. Mean rate about 21–22 Hz at every size.
* **CUBA** (current based): the same network with current synapses, :math:`E_L = -49` mV (above
  threshold: no external drive), jumps of the synaptic drive 1.62 mV (excitatory) and -9 mV
  (inhibitory), :math:`V_0 \sim \mathcal N(-55, 5)` mV.

* **COBAHH** (benchmark 3): the COBA network of Traub–Miles Hodgkin–Huxley neurons
  (:class:`~torchbrain.neurons.TraubMilesHH`: 200 pF, g_L = 10 nS, g_Na = 20 µS, g_K = 6 µS,
  spike = upward crossing of -20 mV, no refractory period), no external drive; activity is
  started by random initial voltages and conductances (as in the benchmark's reference code:
  :math:`V_0 \sim \mathcal N(-65, 5)` mV, :math:`g_e \sim \mathcal N(40, 15)` nS,
  :math:`g_i \sim \mathcal N(200, 120)` nS).

``seed`` seeds every draw (connectivity, initial voltages and conductances), each from a
generator of the model's own: a network is reproducible across processes and devices.

References
----------
Vogels, T. P. & Abbott, L. F. (2005). Signal propagation and logic gating in networks of
integrate-and-fire neurons. J. Neurosci. 25, 10786–10795.
Brette, R. et al. (2007). Simulation of networks of spiking neurons: a review of tools and
strategies. J. Comput. Neurosci. 23, 349–398.
"""

from __future__ import annotations

import math
import numbers
from functools import partial

import torch

from .. import init
from ..comm import EventFixedProb
from ..module import Module, check_seed
from ..neurons import LIFRef, TraubMilesHH
from ..outputs import COBA, CUBA
from ..projections import AlignPostProj
from ..synapses import Expon
from ..units import u

__all__ = ["COBANet", "CUBANet", "COBAHHNet"]

#: Synapses per neuron (fixed out-degree, the benchmark's 2 % of 4000).
FAN_OUT = 80


#: What ``seed`` seeds, as offsets from it: each draw has a generator of its own, so changing
#: one draw (e.g. V0_std) leaves the others as they were.
SEED_OFFSETS = {"E connectivity": 0, "I connectivity": 1, "V0": 2, "E g0": 3, "I g0": 4}


def _check_scale(owner: str, scale) -> None:
    # every neuron draws FAN_OUT targets among the 4000 * scale neurons: at least FAN_OUT of them
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"{owner}: parameter 'scale' must be a number, got {scale!r}")
    low = FAN_OUT / 4000
    if not (math.isfinite(scale) and int(4000 * scale) >= FAN_OUT):
        raise ValueError(
            f"{owner}: parameter 'scale' must be finite and >= {low:g} (4000 * scale neurons, "
            f"each projecting to {FAN_OUT} of them), got {scale!r}"
        )


class _EINet(Module):
    """One LIFRef population split into E (first 80 %) and I neurons, two projections."""

    def __init__(self, scale: float, make_neurons, V0, e_proj: dict, i_proj: dict, drive,
                 seed: int | None, device, dtype):
        super().__init__(device=device, dtype=dtype)
        who = type(self).__name__
        _check_scale(who, scale)
        seed = check_seed(who, seed)

        def seeded(initializer, draw: str):
            # a model-owned generator per draw: reproducible across processes and devices,
            # independent of torch's global generator
            if seed is None or not isinstance(initializer, init.Initializer):
                return initializer
            return init.Seeded(initializer, (seed + SEED_OFFSETS[draw]) % 2**63)

        def comm_seed(draw: str):
            return None if seed is None else (seed + SEED_OFFSETS[draw]) % 2**63

        self.seed = seed
        self.num = int(4000 * scale)
        self.num_exc = int(0.8 * self.num)
        self.num_inh = self.num - self.num_exc
        fac = dict(device=device, dtype=dtype)
        self.N = make_neurons(self.num, name="EI", V_initializer=seeded(V0, "V0"), **fac)
        p = FAN_OUT / self.num
        self.E = AlignPostProj(
            comm=EventFixedProb(self.num_exc, self.num, p, e_proj["weight"],
                                seed=comm_seed("E connectivity"), **fac),
            syn=Expon.desc(self.num, tau=e_proj["tau"],
                           g_initializer=seeded(e_proj.get("g0", 0.0), "E g0"), **fac),
            out=e_proj["out"], post=self.N,
        )
        self.I = AlignPostProj(
            comm=EventFixedProb(self.num_inh, self.num, p, i_proj["weight"],
                                seed=comm_seed("I connectivity"), **fac),
            syn=Expon.desc(self.num, tau=i_proj["tau"],
                           g_initializer=seeded(i_proj.get("g0", 0.0), "I g0"), **fac),
            out=i_proj["out"], post=self.N,
        )
        self.register_buffer(
            "drive", torch.as_tensor(drive, dtype=dtype or torch.get_default_dtype()),
            persistent=True,
        )

    def _repr_config(self):
        return {"num": self.num, "num_exc": self.num_exc}

    def forward(self, drive: torch.Tensor | None = None) -> torch.Tensor:
        """One step: deliver last step's spikes, update the neurons, return the new spikes."""
        spikes = self.N.get_spike()
        self.E(spikes[..., : self.num_exc])
        self.I(spikes[..., self.num_exc:])
        return self.N(self.drive if drive is None else drive)


class COBANet(_EINet):
    """The conductance-based E/I benchmark network (see the module docstring).

    Parameters
    ----------
    scale : float, default 1
        Size as a multiple of 4000 neurons (the fan-out stays 80).
    seed : int or None, default 0
        Seeds everything the model draws: the E and I connectivity (``seed`` and ``seed + 1``)
        and the initial voltages (``seed + 2``, :class:`~torchbrain.init.Seeded`), each from a
        generator of its own, so two builds with one seed are identical in any process, whatever
        torch's global generator holds, and every ``init_all_states`` / ``reset_all_states``
        restarts from the same V0. ``None``: draw from torch's global generator.
    V0_std : quantity [voltage], default 5 mV
        Spread of the initial voltages around -55 mV (BrainPy's example uses 2 mV).
    device, dtype : optional
    """

    def __init__(self, scale: float = 1.0, seed: int | None = 0, V0_std=5.0 * u.mV, *,
                 device=None, dtype=None):
        neuron = dict(tau=20.0 * u.ms, tau_ref=5.0 * u.ms, V_rest=-60.0 * u.mV,
                      V_reset=-60.0 * u.mV, V_th=-50.0 * u.mV, R=1 / (10.0 * u.nS),
                      spk_reset="hard")
        e = dict(weight=0.6 * 10.0 * u.nS, tau=5.0 * u.ms, out=COBA.desc(E=0.0 * u.mV))
        i = dict(weight=6.7 * 10.0 * u.nS, tau=10.0 * u.ms, out=COBA.desc(E=-80.0 * u.mV))
        super().__init__(scale, partial(LIFRef, **neuron), init.Normal(-55.0 * u.mV, V0_std),
                         e, i, drive=200.0, seed=seed, device=device, dtype=dtype)


class CUBANet(_EINet):
    """The current-based E/I benchmark network (see the module docstring).

    The benchmark's synaptic variables are voltages added to the membrane equation
    (:math:`\tau_m dV/dt = -(V - E_L) + g_e + g_i`, jumps of 1.62 mV and -9 mV); here they are
    currents through R = 0.1 GΩ, so the weights are 16.2 pA and -90 pA. ``seed`` seeds the
    connectivity and the initial voltages as in :class:`COBANet`.
    """

    def __init__(self, scale: float = 1.0, seed: int | None = 0, V0_std=5.0 * u.mV, *,
                 device=None, dtype=None):
        neuron = dict(tau=20.0 * u.ms, tau_ref=5.0 * u.ms, V_rest=-49.0 * u.mV,
                      V_reset=-60.0 * u.mV, V_th=-50.0 * u.mV, R=1 / (10.0 * u.nS),
                      spk_reset="hard")
        # jumps of the summed synaptic drive R*I: 1.62 mV and -9 mV through R = 0.1 GΩ
        e = dict(weight=1.62 / 0.1 * u.pA, tau=5.0 * u.ms, out=CUBA.desc())
        i = dict(weight=-9.0 / 0.1 * u.pA, tau=10.0 * u.ms, out=CUBA.desc())
        super().__init__(scale, partial(LIFRef, **neuron), init.Normal(-55.0 * u.mV, V0_std),
                         e, i, drive=0.0, seed=seed, device=device, dtype=dtype)


class COBAHHNet(_EINet):
    """The conductance-based Hodgkin–Huxley benchmark network (see the module docstring).

    The rate functions use an ``exprel`` form, so float32 runs stay free of NaN. ``seed`` seeds
    the connectivity, the initial voltages and the initial conductances (``seed + 3`` for
    :math:`g_e`, ``seed + 4`` for :math:`g_i`) as in :class:`COBANet`.
    """

    def __init__(self, scale: float = 1.0, seed: int | None = 0, *, device=None, dtype=None):
        e = dict(weight=6.0 * u.nS, tau=5.0 * u.ms, out=COBA.desc(E=0.0 * u.mV),
                 g0=init.Normal(40.0 * u.nS, 15.0 * u.nS))
        i = dict(weight=67.0 * u.nS, tau=10.0 * u.ms, out=COBA.desc(E=-80.0 * u.mV),
                 g0=init.Normal(200.0 * u.nS, 120.0 * u.nS))
        super().__init__(scale, TraubMilesHH, init.Normal(-65.0 * u.mV, 5.0 * u.mV), e, i,
                         drive=0.0, seed=seed, device=device, dtype=dtype)
