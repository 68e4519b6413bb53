"""The :class:`Microcircuit` network: the populations, the connectivity, the drive and one step
(see :mod:`torchbrain.models.microcircuit` for the model and its numerical scheme)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...inputs import PoissonInput
from ...inputs.poisson import spike_probability
from ...module import Module
from ...neurons import LIFRef
from ...outputs import CUBA
from ...projections import AlignPostProj
from ...synapses import Expon
from ...units import u
from .connectivity import _CHUNK, DelayedCSRConn, _Generator, draw_synapse_values
from .initial_potentials import initial_potentials
from .parameters import (
    _NEURON,
    _TAU_SYN,
    POPULATIONS,
    PUBLISHED_RATES,
    check_microcircuit_arguments,
    microcircuit_parameters,
)
from .synapse_output import StepAverageCUBA


class Microcircuit(Module):
    r"""The Potjans–Diesmann (2014) cortical microcircuit (see the module docstring).

    Parameters
    ----------
    scale : float, default 1
        Number of neurons relative to the full model (77,169 neurons); every population is
        ``round(scale * N)``. In-degrees do not change with ``scale``.
    k_scale : float, default 1
        In-degrees (recurrent and external) relative to the full model; ``< 1`` applies the van
        Albada et al. (2015) compensation (weights times :math:`1/\sqrt{k}`, plus a DC current).
        Synapses: about ``0.3e9 * scale * k_scale``.
    drive : {'poisson', 'dc'}, default 'poisson'
        External input: Poisson spike counts at 8 Hz per input through the synapse, or the DC
        current with the same mean.
    delays : bool, default True
        ``True``: a delay per synapse, drawn from the published normal distributions.
        ``False``: every synapse gets its presynaptic type's mean delay (1.5 ms excitatory,
        0.75 ms inhibitory, i.e. 15 and 8 steps at 0.1 ms); the cost is the same.
    seed : int, default 0
        Seeds everything: connectivity, weights, delays, initial potentials and the Poisson
        streams (the network is built on the CPU and then moved, so a seed gives the same network
        on every device).
    device, dtype : optional
        Factory arguments (float32 by default: 8 bytes per synapse).
    dt : quantity [time] or float, default 0.1 ms
        The time step the delays are rounded to (plain numbers in ms); the network must run at
        this ``dt``.
    V0 : {'optimized', 'original'}, default 'optimized'
        Initial potentials: the NEST reference's per-population normals, or
        :math:`\mathcal N(-58, 10)` mV for all (a :class:`PopulationNormal` seeded from
        ``seed``: every reset restores the same values).
    full_mean_rates : sequence of 8 floats, default :data:`PUBLISHED_RATES`
        Full-scale rates (Hz) used by the downscaling DC (only with ``k_scale != 1``).
    psc_step_average : bool, default True
        Pass the synaptic current through :class:`StepAverageCUBA` (exact PSC charge, matching
        NEST's exact integration) instead of a plain :class:`~torchbrain.outputs.CUBA`.

    Attributes
    ----------
    neurons : LIFRef
        All neurons, populations in :data:`POPULATIONS` order.
    proj : AlignPostProj
        Every recurrent synapse (``proj.comm`` is the :class:`DelayedCSRConn`).
    ext : ModuleList of PoissonInput
        One per population (``drive='poisson'``); empty otherwise.
    num_neurons : tuple of int
        Neurons per population; ``num`` is their sum.
    slices : dict of str to slice
        The neurons of each population.
    synapse_counts : numpy.ndarray of int64, shape (8, 8)
        Synapses per pathway ``[post, pre]``.
    weight_mean : numpy.ndarray, shape (8, 8)
        Mean weight per pathway ``[post, pre]`` (pA, after the ``k_scale`` compensation).
    ext_indegree : tuple of int
        Poisson inputs per neuron, per population.
    w_ext : float
        Weight of an external input (pA).
    dc_amp : numpy.ndarray, shape (8,)
        DC current per population (pA): the ``'dc'`` drive plus the downscaling compensation.

    Notes
    -----
    One step of ``forward()``: the spikes of the last step enter the connectivity (their synapses
    are deposited at their delays), the input arriving now and the Poisson counts jump the
    synaptic current, the neurons integrate; returns the new spikes ``(num,)``. Run it with
    :class:`~torchbrain.runner.NetworkRunner` inside ``tb.environ.context(dt=0.1 * u.ms)``.
    Memory: 8 bytes per synapse (float32 weights, int32 codes) plus the row pointers; building
    the full model takes about 2.4 GB plus temporaries of a few hundred MB.

    Examples
    --------
    >>> import torch, torchbrain as tb
    >>> from torchbrain import u
    >>> from torchbrain.models import Microcircuit
    >>> net = Microcircuit(scale=0.02, k_scale=0.1, seed=0)
    >>> net.num, net.conn.num_synapses
    (1544, 597761)
    >>> _ = tb.init_all_states(net)
    >>> with tb.environ.context(dt=0.1 * u.ms):
    ...     spikes = tb.NetworkRunner(net, compile=False).run(500)
    >>> rates = net.population_rates(spikes)         # Hz, per population
    >>> all(0.1 < r < 30 for r in rates.values())
    True
    """

    def __init__(self, scale: float = 1.0, k_scale: float = 1.0, drive: str = "poisson",
                 delays: bool = True, seed: int = 0, device=None, dtype=None, *,
                 dt=0.1 * u.ms, V0: str = "optimized", full_mean_rates=PUBLISHED_RATES,
                 psc_step_average: bool = True):
        super().__init__(device=device, dtype=dtype)
        owner = type(self).__name__
        self.dt = check_microcircuit_arguments(owner, scale, k_scale, drive, V0,
                                               full_mean_rates, dt)
        self.scale, self.k_scale, self.drive = float(scale), float(k_scale), drive
        self.delays, self.seed, self.V0 = bool(delays), int(seed), V0
        wdtype = dtype or torch.get_default_dtype()

        params = microcircuit_parameters(self.scale, self.k_scale, drive, full_mean_rates)
        self.params = params  # sizes, counts, weights, drive: the attributes below read it
        sizes = np.asarray(self.num_neurons)
        self.slices = {p: slice(self.offsets[i], self.offsets[i + 1])
                       for i, p in enumerate(POPULATIONS)}

        # ---------------------------------------------------------------- connectivity
        gen = _Generator(seed)
        indptr, post, delay, weight = self._draw_connectivity(gen, sizes, self.offsets, wdtype)
        conn = DelayedCSRConn(self.num, self.num, indptr, post, delay, u.Quantity(weight, "pA"),
                              self.dt, name="recurrent", dtype=wdtype)
        del indptr, post, delay, weight
        conn = conn.to(device) if device is not None else conn

        # -------------------------------------------------------------------- neurons
        v0_seed = int(torch.randint(0, 2**62, (1,), generator=gen.gen))
        V_init = initial_potentials(V0, self.num_neurons, v0_seed)
        fac = dict(device=device, dtype=dtype)
        p = _NEURON
        self.neurons = LIFRef(
            self.num, C=p["C"] * u.pF, tau=p["tau"] * u.ms, tau_ref=p["tau_ref"] * u.ms,
            V_th=p["V_th"] * u.mV, V_reset=p["V_reset"] * u.mV, V_rest=p["E_L"] * u.mV,
            V_initializer=V_init,
            spk_reset="hard", name="microcircuit", **fac,
        )
        out = (StepAverageCUBA.desc(tau=_TAU_SYN * u.ms, **fac) if psc_step_average
               else CUBA.desc(**fac))
        self.proj = AlignPostProj(
            comm=conn, syn=Expon.desc(self.num, tau=_TAU_SYN * u.ms, **fac), out=out,
            post=self.neurons,
        )
        self.ext = None
        if drive == "poisson":
            # one source for all neurons: Binomial(max K_ext, p_a) with p_a from the rate
            # 8 Hz * K_a / max K_ext has the mean of Binomial(K_a, p(8 Hz)) up to O(p) and both are
            # Poisson(K_a * 8 Hz * dt) to O(p) (p < 1e-3): what NEST's generator delivers
            freq = params.poisson_frequencies()
            self.ext = PoissonInput(
                self.num, max(self.ext_indegree), u.Quantity(torch.from_numpy(freq).to(wdtype),
                                                             "Hz"),
                self.w_ext * u.pA, generator=gen.gen, name="external", **fac,
            )
        dc_vec = torch.from_numpy(np.repeat(self.dc_amp, sizes)).to(wdtype)
        self.register_buffer("dc", dc_vec.to(device) if device else dc_vec, persistent=True)
        self._has_dc = bool(np.any(self.dc_amp != 0.0))
        pop_index = torch.repeat_interleave(torch.arange(8), torch.from_numpy(sizes))
        self.register_buffer("pop_index", pop_index.to(device) if device else pop_index,
                             persistent=False)

    def _draw_connectivity(self, gen: _Generator, sizes, offsets, wdtype):
        """Draw every pathway's random pairs, weights and delays into one CSR table."""
        n = self.num
        counts = self.synapse_counts
        # per pre neuron and post population: how many of the pathway's synapses it sends
        per_pre = {}
        row_len = torch.zeros(n, dtype=torch.int64)
        for b in range(8):
            lo, hi = offsets[b], offsets[b + 1]
            for a in range(8):
                if counts[a, b]:
                    c = gen.counts(int(counts[a, b]), int(sizes[b]))
                    per_pre[a, b] = c
                    row_len[lo:hi] += c
        indptr = torch.zeros(n + 1, dtype=torch.int64)
        torch.cumsum(row_len, 0, out=indptr[1:])
        nnz = int(indptr[-1])
        post = torch.empty(nnz, dtype=torch.int32)
        delay = torch.empty(nnz, dtype=torch.int16)
        weight = torch.empty(nnz, dtype=wdtype)
        cursor = indptr[:-1].clone()  # next free position in each row
        for b in range(8):
            lo, hi = offsets[b], offsets[b + 1]
            for a in range(8):
                total = int(counts[a, b])
                if not total:
                    continue
                c = per_pre[a, b]
                # row segment of each pre neuron for this pathway, laid out synapse by synapse
                shift = cursor[lo:hi] - (torch.cumsum(c, 0) - c)
                dest = torch.repeat_interleave(shift, c, output_size=total)
                dest += torch.arange(total)
                cursor[lo:hi] += c
                for start in range(0, total, _CHUNK):
                    k = min(_CHUNK, total - start)
                    idx = dest[start:start + k]
                    post[idx] = (torch.randint(0, int(sizes[a]), (k,), generator=gen.gen)
                                 + offsets[a]).to(torch.int32)
                    weight[idx], delay[idx] = draw_synapse_values(
                        gen.gen, k, a, b, self.params, self.delays, self.dt, wdtype)
                del dest
        return indptr, post, delay, weight

    def _repr_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "k_scale": self.k_scale, "drive": self.drive,
                "delays": self.delays, "num": self.num,
                "synapses": int(self.synapse_counts.sum())}

    # the model's numbers, as documented in the class docstring (read from ``params``)
    num_neurons = property(lambda self: self.params.num_neurons)
    num = property(lambda self: self.params.num)
    offsets = property(lambda self: self.params.offsets)
    synapse_counts = property(lambda self: self.params.synapse_counts)
    ext_indegree = property(lambda self: self.params.ext_indegree)
    weight_mean = property(lambda self: self.params.weight_mean)
    w_ext = property(lambda self: self.params.w_ext)
    dc_amp = property(lambda self: self.params.dc_amp)

    @property
    def conn(self) -> DelayedCSRConn:
        """The recurrent connectivity."""
        return self.proj.comm

    def population_of(self, index: int) -> str:
        """The population a neuron index belongs to."""
        for name, sl in self.slices.items():
            if sl.start <= index < sl.stop:
                return name
        raise IndexError(f"Microcircuit: neuron {index} out of range [0, {self.num})")

    def population_counts(self, spikes: torch.Tensor) -> torch.Tensor:
        """Spikes per population: ``(..., num)`` to ``(..., 8)`` (sums over each slice)."""
        out = spikes.new_zeros((*spikes.shape[:-1], 8))
        return out.index_add_(-1, self.pop_index, spikes)

    def population_rates(self, spikes: torch.Tensor, dt=None) -> dict[str, float]:
        """Mean rate (Hz) of each population from recorded spikes ``(steps, num)`` or from
        per-population counts ``(steps, 8)`` (as returned by :meth:`population_counts`)."""
        dt = self.dt if dt is None else float(dt)
        s = spikes.float()
        counts = s.sum(0) if s.shape[-1] == 8 else self.population_counts(s.sum(0))
        seconds = s.shape[0] * dt * 1e-3
        return {p: float(counts[i]) / self.num_neurons[i] / seconds
                for i, p in enumerate(POPULATIONS)}

    def init_state(self, batch_size=None):
        if self.ext is not None:
            # settle the Poisson source's choice of sampler now, in eager mode: compiled code
            # would otherwise trace both samplers
            ext = self.ext
            ext._plan(spike_probability(ext.freq, self.dt), self.dt)

    def forward(self) -> torch.Tensor:
        """One step: deliver, drive, integrate; returns the new spikes ``(num,)``."""
        spikes = self.neurons.get_spike()
        self.proj(spikes)
        if self.ext is not None:
            self.proj.syn.add_delta_input("ext", self.ext())
        return self.neurons(self.dc if self._has_dc else 0.0)
