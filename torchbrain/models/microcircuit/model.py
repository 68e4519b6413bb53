r"""The Potjans & Diesmann (2014) cortical microcircuit, with per-synapse delays.

The network models the neurons under 1 mm² of early sensory cortex: eight populations (an
excitatory and an inhibitory one in each of layers 2/3, 4, 5 and 6), 77,169 leaky
integrate-and-fire neurons and about 0.3 billion synapses, driven by Poisson background input.
Every neuron obeys (NEST's ``iaf_psc_exp``)

.. math::

    C \frac{dV}{dt} = -\frac{C}{\tau_m}(V - E_L) + I_\mathrm{syn}(t) + I_\mathrm{DC},
    \qquad
    \tau_s \frac{dI_\mathrm{syn}}{dt} = -I_\mathrm{syn}
        + \tau_s \sum_{k} J_k\, \delta(t - t_k - d_k),

with a spike and a reset to :math:`V_\mathrm{reset}` when :math:`V \ge V_\mathrm{th}`, followed by
an absolute refractory period :math:`\tau_\mathrm{ref}`. Parameters (PD14, Table 5):
:math:`C = 250` pF, :math:`\tau_m = 10` ms, :math:`E_L = V_\mathrm{reset} = -65` mV,
:math:`V_\mathrm{th} = -50` mV, :math:`\tau_\mathrm{ref} = 2` ms, :math:`\tau_s = 0.5` ms.

Connectivity. The number of synapses from population :math:`b` onto population :math:`a` is the
one that gives the published probability :math:`C_{ab}` of at least one contact between two
neurons when synapses are placed at random,

.. math::

    S_{ab} = \frac{\ln(1 - C_{ab})}{\ln\bigl(1 - 1/(N_a N_b)\bigr)},

and these synapses are drawn as :math:`S_{ab}` independent uniform (pre, post) pairs
(NEST's ``fixed_total_number`` rule, with multapses and autapses). At ``scale`` :math:`s`
and ``k_scale`` :math:`k` the populations hold :math:`\mathrm{round}(s N_a)` neurons and the
pathways :math:`\mathrm{round}(s\,k\,S_{ab})` synapses, so that the mean in-degree
:math:`S_{ab}/N_a` is multiplied by :math:`k` only (as in the NEST reference implementation).
Weights (PSC amplitudes) are normal with mean :math:`J = 87.8` pA (:math:`2J` for L4E → L2/3E,
:math:`-4J` from inhibitory neurons) and a standard deviation of 10 % of the mean, redrawn until
excitatory weights are :math:`\ge 0` and inhibitory ones :math:`\le 0`; delays are normal,
:math:`1.5 \pm 0.75` ms from excitatory and :math:`0.75 \pm 0.375` ms from inhibitory neurons,
redrawn until :math:`\ge \Delta t` and rounded to the nearest whole step (so every delay is at least
one step). Each population receives :math:`K_\mathrm{ext}` = (1600, 1500, 2100, 1900, 2000, 1900,
2900, 2100) independent Poisson inputs at 8 Hz with weight :math:`J` (``drive='poisson'``), or the
DC current of the same mean, :math:`I = 8\,\mathrm{Hz}\cdot K_\mathrm{ext} J \tau_s`
(``drive='dc'``).

Downscaling (van Albada, Helias & Diesmann 2015). With ``k_scale`` :math:`k < 1` every in-degree
shrinks by :math:`k`; the weights (recurrent and external) are multiplied by :math:`1/\sqrt{k}`,
which keeps the variance of the input (:math:`\propto K J^2`) and a DC current

.. math::

    I_{\mathrm{DC},a} \mathrel{+}= 10^{-3}\,\tau_s\,(1 - \sqrt{k})
        \Bigl(\sum_b J_{ab} K_{ab} \nu_b + [\text{Poisson drive}]\; J K_{\mathrm{ext},a}\,
        8\,\mathrm{Hz}\Bigr)

(pA, with :math:`\tau_s` in ms, rates :math:`\nu_b` in Hz and full-scale in-degrees
:math:`K_{ab}`) restores the mean input the missing synapses would have carried, given the
full-scale rates :math:`\nu_b` (by default the published ones, :data:`PUBLISHED_RATES`; the NEST
reference uses rates measured in its own full-scale runs). This preserves the mean and variance of
each neuron's input to first order, not its correlations: at small ``k_scale`` the rates and in
particular the correlation structure depart from the full model. ``scale`` alone (``k_scale=1``)
needs no compensation: the in-degrees are kept, only the number of neurons changes.

Implementation (torchbrain building blocks):

* one :class:`~torchbrain.neurons.LIFRef` population of all neurons (populations are contiguous
  slices, :attr:`Microcircuit.slices`), parameterised by ``C`` and ``tau``, hard reset;
* one :class:`~torchbrain.projections.AlignPostProj` carrying every recurrent synapse through
  :class:`DelayedCSRConn` (the 64 pathways in one table, **exact per-synapse delays**, 8 bytes per
  synapse) into one shared :class:`~torchbrain.synapses.Expon` synapse (:math:`\tau_s = 0.5` ms)
  and a :class:`StepAverageCUBA` output;
* one :class:`~torchbrain.inputs.PoissonInput` of all neurons whose counts jump the same
  synapse (``drive='poisson'``), or a DC current (``drive='dc'``). Its number of inputs is the
  largest :math:`K_\mathrm{ext}` and its per-neuron rate :math:`8\,\mathrm{Hz}\cdot K_a /
  \max K`: the counts are :math:`\mathrm{Binomial}(\max K, p_a)` instead of
  :math:`\mathrm{Binomial}(K_a, p)`; both equal :math:`\mathrm{Poisson}(8\,\mathrm{Hz}\cdot K_a
  \Delta t)`, what NEST's ``poisson_generator`` delivers, up to relative :math:`O(p) < 10^{-3}`
  (one module instead of eight: 8x fewer kernels per step).

Numerical scheme and its differences from NEST. The membrane is integrated with exponential Euler
at a constant current per step; the exponential synapse decays exactly and receives each spike's
jump at the start of the step the spike arrives in (spike time + delay, both on the grid). A
piecewise-constant current equal to the jump would carry :math:`J\Delta t/(1 - e^{-\Delta t/
\tau_s})` (10 % more than the exact :math:`J\tau_s` at :math:`\Delta t = 0.1` ms, :math:`\tau_s =
0.5` ms); :class:`StepAverageCUBA` passes the step average of the exponential instead, which makes
the voltage response to a spike agree with NEST's exact propagator to 2e-4 (relative).
Remaining differences: :class:`~torchbrain.neurons.LIFRef` clamps V while
:math:`t - t_\mathrm{spike} < \tau_\mathrm{ref}`, i.e. for 19 steps after the spike step
(NEST's counter: 20; float32 spike times may make it 20); Poisson input is sampled as binomial
counts per step (see above); the recurrent table is drawn with torch's generator, not NEST's,
so only statistics can be compared. The thalamic input of the paper (off by default in the
reference) is not included.

Initial membrane potentials follow the NEST reference's default ('optimized'): normal with
population-specific means (-68.28, -63.16, -63.33, -63.45, -63.11, -61.66, -66.72, -61.43 mV) and
standard deviations (5.36, 4.57, 4.74, 4.94, 4.94, 4.55, 5.46, 4.48 mV), which shortens the
initial transient; ``V0='original'`` gives the paper's :math:`\mathcal N(-58, 10)` mV.

References
----------
Potjans, T. C. & Diesmann, M. (2014). The cell-type specific cortical microcircuit: relating
structure and activity in a full-scale spiking network model. *Cereb. Cortex* 24, 785–806.
van Albada, S. J., Helias, M. & Diesmann, M. (2015). Scalability of asynchronous networks is
limited by one-to-one mapping between effective connectivity and correlations. *PLoS Comput.
Biol.* 11, e1004490.
NEST Simulator, example ``Potjans_2014`` (PyNEST microcircuit): parameters and scaling rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import state as _state
from ..comm.base import Comm
from ..dynamics import Dynamics
from ..environ import get_dt_value
from ..init import Initializer
from ..inputs import PoissonInput
from ..inputs.poisson import spike_probability
from ..module import Module
from ..neurons import LIFRef
from ..outputs import CUBA
from ..projections import AlignPostProj
from ..state import ShortTermState
from ..synapses import Expon
from ..units import to_canonical, u

__all__ = [
    "Microcircuit",
    "DelayedCSRConn",
    "StepAverageCUBA",
    "PopulationNormal",
    "POPULATIONS",
    "FULL_NUM_NEURONS",
    "CONN_PROBS",
    "K_EXT",
    "PUBLISHED_RATES",
    "NEST_REFERENCE_RATES",
    "full_synapse_counts",
    "delayed_csr_deliver",
]

#: Population names, in the order of every table here (and of the neurons in the network).
POPULATIONS = ("L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I")

#: Neurons per population under 1 mm² (PD14, Table 5).
FULL_NUM_NEURONS = (20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948)

#: Connection probabilities ``C[post, pre]`` (rows: target, columns: source; PD14, Table 5).
CONN_PROBS = (
    (0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0),
    (0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0),
    (0.0077, 0.0059, 0.0497, 0.1350, 0.0067, 0.0003, 0.0453, 0.0),
    (0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0),
    (0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0),
    (0.0548, 0.0269, 0.0257, 0.0022, 0.0600, 0.3158, 0.0086, 0.0),
    (0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252),
    (0.0364, 0.0010, 0.0034, 0.0005, 0.0277, 0.0080, 0.0658, 0.1443),
)

#: External (Poisson) in-degrees per population (PD14, Table 5).
K_EXT = (1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100)

#: Published full-scale firing rates (Hz), PD14; also the default rates of the downscaling DC.
PUBLISHED_RATES = (0.97, 2.87, 4.75, 5.40, 8.14, 9.08, 0.99, 7.52)

#: Full-scale rates (Hz) of NEST's PyNEST reference implementation of the model (its
#: ``full_mean_rates``, measured with N_scaling = K_scaling = 1), for comparison.
NEST_REFERENCE_RATES = (0.943, 3.026, 4.368, 5.882, 7.733, 8.664, 1.096, 7.851)

#: 'optimized' initial potentials of the NEST reference (mean, std in mV per population).
_V0_OPTIMIZED = (
    (-68.28, -63.16, -63.33, -63.45, -63.11, -61.66, -66.72, -61.43),
    (5.36, 4.57, 4.74, 4.94, 4.94, 4.55, 5.46, 4.48),
)

_PSC_MEAN = 87.8  # pA: mean excitatory PSC amplitude (0.15 mV PSP)
_G = -4.0  # relative inhibitory strength
_W_REL_STD = 0.1
_DELAY_MEAN = (1.5, 0.75)  # ms: from excitatory, inhibitory neurons
_DELAY_REL_STD = 0.5
_BG_RATE = 8.0  # Hz
_TAU_SYN = 0.5  # ms
_NEURON = dict(C=250.0, tau=10.0, tau_ref=2.0, E_L=-65.0, V_th=-50.0, V_reset=-65.0)

#: Random numbers drawn per chunk while building (bounds the temporary memory).
_CHUNK = 1 << 23
_INT32_MAX = 2**31 - 1


def full_synapse_counts(num_neurons=FULL_NUM_NEURONS, conn_probs=CONN_PROBS) -> np.ndarray:
    r"""Synapse counts :math:`S_{ab} = \ln(1 - C_{ab}) / \ln(1 - 1/(N_a N_b))` (float64, not
    rounded), shape ``(8, 8)``, rows = post population ``a``, columns = pre population ``b``."""
    n = np.asarray(num_neurons, dtype=np.float64)
    c = np.asarray(conn_probs, dtype=np.float64)
    prod = np.outer(n, n)
    return np.log1p(-c) / np.log1p(-1.0 / prod)


@dataclass(frozen=True)
class MicrocircuitParameters:
    """Sizes, synapse counts, weights and drive of the microcircuit at one ``scale``/``k_scale``
    (what :func:`microcircuit_parameters` computes; see the module docstring for the rules).

    Attributes
    ----------
    num_neurons : tuple of int
        Neurons per population; ``offsets`` are the first index of each (and the total last).
    synapse_counts : numpy.ndarray of int64, shape (8, 8)
        Synapses per pathway ``[post, pre]``.
    ext_indegree : tuple of int
        Poisson inputs per neuron, per population.
    weight_mean : numpy.ndarray, shape (8, 8)
        Mean weight per pathway (pA, after the ``k_scale`` compensation).
    w_ext : float
        Weight of an external input (pA).
    dc_amp : numpy.ndarray, shape (8,)
        DC current per population (pA).
    """

    num_neurons: tuple[int, ...]
    offsets: tuple[int, ...]
    synapse_counts: np.ndarray
    ext_indegree: tuple[int, ...]
    weight_mean: np.ndarray
    w_ext: float
    dc_amp: np.ndarray

    @property
    def num(self) -> int:
        return self.offsets[-1]

    def poisson_frequencies(self) -> np.ndarray:
        """Per-neuron rate (Hz) of each of ``max(ext_indegree)`` inputs that gives every neuron
        its population's mean external input (one Poisson source for all neurons)."""
        k_max = max(self.ext_indegree)
        return np.repeat(_BG_RATE * np.asarray(self.ext_indegree) / max(k_max, 1),
                         self.num_neurons)


def microcircuit_parameters(scale: float, k_scale: float, drive: str,
                            full_mean_rates=PUBLISHED_RATES) -> MicrocircuitParameters:
    """The model's numbers at ``scale`` and ``k_scale`` (arguments as :class:`Microcircuit`,
    checked there)."""
    full_n = np.asarray(FULL_NUM_NEURONS, dtype=np.float64)
    sizes = np.round(full_n * scale).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    full_counts = full_synapse_counts()
    w_full = np.tile(np.array([_PSC_MEAN, _G * _PSC_MEAN]), (8, 4))
    w_full[0, 2] *= 2.0  # L4E -> L2/3E
    sqrt_k = math.sqrt(k_scale)
    dc = np.zeros(8)
    k_ext_full = np.asarray(K_EXT, dtype=np.float64)
    if drive == "dc":
        dc += _BG_RATE * k_ext_full * _PSC_MEAN * _TAU_SYN * 1e-3
    if k_scale != 1.0:
        rates = np.asarray(full_mean_rates, dtype=np.float64)
        indegree_full = full_counts / full_n[:, None]
        input_rec = (w_full * indegree_full * rates).sum(axis=1)
        dc += 1e-3 * _TAU_SYN * (1.0 - sqrt_k) * input_rec
        if drive == "poisson":
            dc += 1e-3 * _TAU_SYN * (1.0 - sqrt_k) * _PSC_MEAN * k_ext_full * _BG_RATE
    return MicrocircuitParameters(
        num_neurons=tuple(int(n) for n in sizes),
        offsets=tuple(int(o) for o in offsets),
        synapse_counts=np.round(full_counts * scale * k_scale).astype(np.int64),
        ext_indegree=tuple(int(k) for k in np.round(k_ext_full * k_scale)),
        weight_mean=w_full / sqrt_k,
        w_ext=_PSC_MEAN / sqrt_k,
        dc_amp=dc,
    )


def check_microcircuit_arguments(owner: str, scale, k_scale, drive, V0, full_mean_rates,
                                 dt) -> float:
    """Raise a clear error for a bad argument of the microcircuit models; returns ``dt`` in
    ms."""
    for label, value in (("scale", scale), ("k_scale", k_scale)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0 < value <= 1e3 and math.isfinite(value)
        ):
            raise ValueError(f"{owner}: '{label}' must be a positive number, got {value!r}")
    if drive not in ("poisson", "dc"):
        raise ValueError(f"{owner}: 'drive' must be 'poisson' or 'dc', got {drive!r}")
    if V0 not in ("optimized", "original"):
        raise ValueError(f"{owner}: 'V0' must be 'optimized' or 'original', got {V0!r}")
    rates = np.asarray(full_mean_rates, dtype=np.float64)
    if rates.shape != (8,) or not np.all(rates >= 0):
        raise ValueError(f"{owner}: 'full_mean_rates' must be 8 rates >= 0 (Hz)")
    if np.any(np.round(np.asarray(FULL_NUM_NEURONS) * float(scale)) < 1):
        raise ValueError(f"{owner}: scale={scale} leaves a population without neurons")
    dt_ms = float(to_canonical(dt, "ms", owner=owner, name="dt"))
    if not dt_ms > 0:
        raise ValueError(f"{owner}: 'dt' must be positive, got {dt_ms} ms")
    return dt_ms


def initial_potentials(V0: str, num_neurons, seed: int) -> PopulationNormal:
    """The initial-potential initializer of ``V0`` ('optimized' or 'original')."""
    if V0 == "optimized":
        v0_mean, v0_std = _V0_OPTIMIZED
    else:
        v0_mean, v0_std = (-58.0,) * 8, (10.0,) * 8
    return PopulationNormal(v0_mean, v0_std, num_neurons, seed)


# --------------------------------------------------------------------------- the event op
def _deposit_addresses(spikes, indptr, codes, weights, ptr, n_post: int, n_slots: int):
    """Flat ring-buffer addresses and values of the synapses of the active inputs."""
    n_pre = indptr.shape[0] - 1
    s = spikes.reshape(-1, n_pre)
    batch = s.shape[0]
    device = spikes.device
    b_idx, pre_idx = torch.nonzero(s, as_tuple=True)
    if not pre_idx.numel():
        return None
    starts = indptr.index_select(0, pre_idx).long()
    counts = indptr.index_select(0, pre_idx + 1).long() - starts
    total = int(counts.sum())
    if not total:
        return None
    # one entry per delivered synapse: the event it belongs to and its position in the table
    event = torch.repeat_interleave(torch.arange(pre_idx.numel(), device=device), counts,
                                    output_size=total)
    first = torch.cumsum(counts, 0) - counts
    synapse = (starts - first).index_select(0, event) + torch.arange(total, device=device)
    code = codes.index_select(0, synapse).long()
    delay = torch.div(code, n_post, rounding_mode="floor")
    target = code - delay * n_post
    slot = torch.remainder(ptr.reshape(()).long() + delay, n_slots)
    addr = slot * (batch * n_post) + target
    if batch > 1:
        addr = addr + (b_idx * n_post).index_select(0, event)
    amount = s[b_idx, pre_idx].index_select(0, event)
    values = amount * weights.index_select(0, synapse).to(spikes.dtype)
    return addr, values


@torch.library.custom_op("torchbrain::delayed_csr_deliver", mutates_args=("ring",))
def _delayed_csr_deliver(
    ring: torch.Tensor, spikes: torch.Tensor, indptr: torch.Tensor, codes: torch.Tensor,
    weights: torch.Tensor, ptr: torch.Tensor,
) -> torch.Tensor:
    n_slots, n_post = ring.shape[0], ring.shape[-1]
    deposit = _deposit_addresses(spikes.to(ring.dtype), indptr, codes, weights, ptr, n_post,
                                 n_slots)
    if deposit is not None:
        ring.view(-1).index_add_(0, *deposit)
    slot = ptr.reshape(1).long()
    out = ring.index_select(0, slot).squeeze(0)
    ring.index_fill_(0, slot, 0.0)
    return out


@_delayed_csr_deliver.register_fake
def _(ring, spikes, indptr, codes, weights, ptr):
    return ring.new_empty(ring.shape[1:])


def delayed_csr_deliver(ring: torch.Tensor, spikes: torch.Tensor, indptr: torch.Tensor,
                        codes: torch.Tensor, weights: torch.Tensor,
                        ptr: torch.Tensor) -> torch.Tensor:
    """One step of event-driven CSR connectivity with per-synapse delays, in a ring buffer.

    ``ring`` has shape ``(n_slots, *batch, n_post)`` and is **modified in place**: for every
    nonzero input ``s[b, i]`` and every synapse ``k`` of row ``i`` (positions ``indptr[i]`` to
    ``indptr[i + 1]``), whose code is ``codes[k] = d * n_post + j`` (delay ``d`` in steps, target
    ``j``), ``s[b, i] * weights[k]`` is added to ``ring[(ptr + d) mod n_slots, b, j]``; then slot
    ``ptr`` (what arrives now) is returned as a new tensor of shape ``(*batch, n_post)`` and
    cleared. Cost: ``#events x fan-out`` plus ``O(n_post)``.

    A ``torch.library`` custom op that mutates ``ring`` (pure torch inside, CPU and CUDA
    tensors): ``torch.compile(fullgraph=True)`` traces through it and keeps the update in place
    (an in-place scatter into a buffer written as traced torch code is functionalised into a copy
    of the whole buffer per step, 8x slower at full scale). No autograd formula.
    """
    return _delayed_csr_deliver(ring, spikes, indptr, codes, weights, ptr)


# ---------------------------------------------------------------------- connectivity
def _index_dtype(upper: int) -> torch.dtype:
    return torch.int32 if upper <= _INT32_MAX else torch.int64


class DelayedCSRConn(Dynamics):
    r"""Event-driven sparse connectivity with a transmission delay per synapse.

    .. math::

        y_j(n) = \sum_{k:\ \mathrm{post}_k = j} w_k\, s_{\mathrm{pre}_k}(n - d_k)

    Synapses are stored row by row (CSR, one row per presynaptic neuron): ``indptr``
    (``n_pre + 1`` row pointers), one int32 **code** ``d_k * n_post + post_k`` and one weight per
    synapse, i.e. 8 bytes per synapse in float32 with the delay included. Each call deposits the
    weights of the synapses of the active presynaptic neurons into a ring buffer of the next
    ``max(d) + 1`` steps of postsynaptic input (a ``ShortTermState`` of shape
    ``(n_slots, *batch, n_post)``) at ``d_k`` steps ahead, then returns and clears the slot of the
    current step. Cost per step: ``#events x fan-out`` plus ``O(n_post)`` for the slot; memory of
    the buffer: ``n_slots x n_post`` values.

    Timing: the input deposited by a call is returned ``d_k`` calls later (``d_k = 0``: by the same
    call). Used as the ``comm`` of an :class:`~torchbrain.projections.AlignPostProj`, which reads
    the spikes of step ``n`` (emitted at the end of the step, time :math:`t_{n+1}`) at step
    ``n + 1``, the synaptic jump enters the step that starts at :math:`t_{n+1} + d_k \Delta t`:
    a delay of exactly ``d_k * dt`` after the spike time, NEST's convention.

    Parameters
    ----------
    n_pre, n_post : int
        Presynaptic and postsynaptic population sizes.
    indptr : Tensor of int, shape ``(n_pre + 1,)``
        Row pointers (nondecreasing, from 0 to the number of synapses).
    post : Tensor of int, shape ``(nnz,)``
        Target of each synapse, in ``[0, n_post)``.
    delay_steps : Tensor of int, shape ``(nnz,)``
        Delay of each synapse in whole steps of ``dt`` (>= 0).
    weight : quantity or Tensor, shape ``(nnz,)``
        Weight of each synapse with the unit of what it delivers (pA for CUBA outputs, nS for
        COBA, mV for delta synapses); plain tensors are canonical and dimensionless.
    dt : quantity [time] or float
        The time step the delays are counted in (plain numbers in ms); running under another
        ``dt`` raises an error.
    name : str, optional
    device, dtype : optional
        Factory arguments (``dtype``: of the weights and the buffer).

    Notes
    -----
    Unlike :class:`~torchbrain.delay.Delay` (one delay per projection, a buffer of presynaptic
    spikes), the buffer holds *postsynaptic input*, so any number of distinct delays costs one
    buffer of ``n_slots x n_post`` values, like NEST's ring buffers. Under autograd the buffer
    is rebound (a copy per step) but the event op has no gradient: this layer is for simulation.
    """

    def __init__(self, n_pre: int, n_post: int, indptr, post, delay_steps, weight, dt, *,
                 name: str | None = None, device=None, dtype=None):
        super().__init__(n_post, name=name, device=device, dtype=dtype)
        owner = self._name()
        for label, value in (("n_pre", n_pre), ("n_post", n_post)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{owner}: '{label}' must be a positive int, got {value!r}")
        self.n_pre, self.n_post = n_pre, n_post
        self.weight_unit: str | None = None
        indptr = torch.as_tensor(indptr)
        post = torch.as_tensor(post)
        delay_steps = torch.as_tensor(delay_steps)
        nnz = post.shape[0] if post.ndim == 1 else -1
        if indptr.shape != (n_pre + 1,) or post.ndim != 1 or delay_steps.shape != post.shape:
            raise ValueError(
                f"{owner}: expected indptr of shape ({n_pre + 1},) and post, delay_steps of one "
                f"common shape (nnz,), got {tuple(indptr.shape)}, {tuple(post.shape)}, "
                f"{tuple(delay_steps.shape)}"
            )
        if int(indptr[0]) != 0 or int(indptr[-1]) != nnz or bool((indptr[1:] < indptr[:-1]).any()):
            raise ValueError(f"{owner}: 'indptr' must rise from 0 to len(post) = {nnz}")
        if nnz and (int(post.min()) < 0 or int(post.max()) >= n_post):
            raise ValueError(f"{owner}: 'post' must lie in [0, {n_post})")
        max_delay = int(delay_steps.max()) if nnz else 0
        if nnz and int(delay_steps.min()) < 0:
            raise ValueError(f"{owner}: 'delay_steps' must be >= 0")
        self.n_slots = max_delay + 1
        self.dt = float(to_canonical(dt, "ms", owner=owner, name="dt"))
        if not self.dt > 0:
            raise ValueError(f"{owner}: 'dt' must be positive, got {self.dt} ms")
        code_dtype = _index_dtype(self.n_slots * n_post - 1)
        codes = torch.empty(nnz, dtype=code_dtype, device=post.device)
        for start in range(0, nnz, _CHUNK):  # bounded temporaries
            sl = slice(start, min(nnz, start + _CHUNK))
            codes[sl] = (delay_steps[sl].long() * n_post + post[sl].long()).to(code_dtype)
        self.register_buffer("indptr", indptr.to(device=device, dtype=_index_dtype(nnz)),
                             persistent=True)
        self.register_buffer("codes", codes.to(device=device), persistent=True)
        w = Comm._weight_tensor(self, weight, (nnz,))
        if w.shape != (nnz,):
            raise ValueError(f"{owner}: 'weight' must have shape ({nnz},), got {tuple(w.shape)}")
        Comm._store_weight(self, w, False)
        self.ring = ShortTermState(None)
        self.ptr = ShortTermState(None)

    def _repr_config(self) -> dict[str, Any]:
        return {"n_pre": self.n_pre, "n_post": self.n_post, "nnz": self.num_synapses,
                "n_slots": self.n_slots, "dt": self.dt}

    @property
    def num_synapses(self) -> int:
        return int(self.codes.shape[0])

    @property
    def bytes_per_synapse(self) -> float:
        """Connectivity memory (row pointers, codes, weights) per synapse."""
        total = sum(t.numel() * t.element_size() for t in (self.indptr, self.codes, self.weight))
        return total / max(1, self.num_synapses)

    def post_indices(self) -> torch.Tensor:
        """Target of every synapse (int64, decoded from the codes)."""
        return torch.remainder(self.codes.long(), self.n_post)

    def delay_steps(self) -> torch.Tensor:
        """Delay of every synapse in steps (int64, decoded from the codes)."""
        return torch.div(self.codes.long(), self.n_post, rounding_mode="floor")

    def pre_indices(self) -> torch.Tensor:
        """Source of every synapse (int64)."""
        counts = (self.indptr[1:] - self.indptr[:-1]).long()
        return torch.repeat_interleave(torch.arange(self.n_pre, device=counts.device), counts,
                                       output_size=self.num_synapses)

    # ----------------------------------------------------------------- States
    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        fac = self._factory_like_states()
        self.ring = ShortTermState(torch.zeros((self.n_slots, *shape), **fac))
        self.ptr = ShortTermState(torch.zeros((), dtype=torch.int64, device=fac["device"]))

    def _batch_size_from_states(self) -> None:
        ring = self.ring
        if isinstance(ring, torch.Tensor):
            self._batch_size = ring.shape[1] if ring.ndim == 3 else None
            self._initialised = True

    # ------------------------------------------------------------------- step
    def update(self, spikes):
        """Deposit the synapses of the active inputs (``(*batch, n_pre)``) and return the input
        arriving now (``(*batch, n_post)``)."""
        self._check_ready()
        dt = get_dt_value(desc=self._name())
        if abs(dt - self.dt) > 1e-9 * self.dt:
            raise RuntimeError(
                f"{self._name()}: the delays are counted in steps of {self.dt} ms but dt is now "
                f"{dt} ms; rebuild the connectivity for the new time step"
            )
        expected = (*self._expected_shape()[:-1], self.n_pre)
        if tuple(spikes.shape) != expected:
            raise ValueError(
                f"{self._name()}: expected presynaptic input of shape {expected}, got "
                f"{tuple(spikes.shape)}"
            )
        ring = self.ring
        if torch.is_grad_enabled() or _state._WRITE_TRACKERS:
            # States are rebound, never written in place, when a graph or a tracker may see them
            ring = ring.clone()
            out = _delayed_csr_deliver(ring, spikes, self.indptr, self.codes, self.weight,
                                       self.ptr)
            self.ring = ring
        else:
            out = _delayed_csr_deliver(ring, spikes, self.indptr, self.codes, self.weight,
                                       self.ptr)
        self.ptr = torch.remainder(self.ptr + 1, self.n_slots)
        return out


class StepAverageCUBA(CUBA):
    r"""Current-based output that passes the step average of an exponential current.

    .. math::

        I = g\,\frac{\tau_s}{\Delta t}\left(1 - e^{-\Delta t/\tau_s}\right),
        \qquad -\frac{dI}{dV} = 0

    An :class:`~torchbrain.synapses.Expon` synapse holds :math:`g(t_n)` at the start of step
    :math:`n`; the current of the exponential PSC over the step averages to the expression
    above. A membrane integrated at constant current per step (exponential Euler) then receives
    the exact charge :math:`J\tau_s` per PSC of amplitude :math:`J`, instead of
    :math:`J\Delta t/(1 - e^{-\Delta t/\tau_s})` (10 % more at :math:`\Delta t = 0.1` ms,
    :math:`\tau_s = 0.5` ms); for :math:`\tau_m \gg \Delta t` the voltage response matches the
    exact propagator of NEST's ``iaf_psc_exp`` to :math:`O(\Delta t/\tau_m)` of that 10 %.

    Parameters
    ----------
    tau : quantity [time], default 0.5 ms
        The synapse's decay time constant (plain numbers in ms); must be positive.
    device, dtype : optional
        Factory arguments.
    """

    def __init__(self, tau=_TAU_SYN * u.ms, *, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        self.tau = self._register_parameter_with_unit("tau", tau, "ms", positive=True)

    def _repr_config(self):
        return {}

    def current(self, V):
        """The step-averaged current in pA (independent of ``V``)."""
        dt = get_dt_value(desc=self._name())
        factor = self.tau / dt * -torch.expm1(-dt / self.tau)
        return super().current(V) * factor


# ------------------------------------------------------------------------------ model
class PopulationNormal(Initializer):
    r"""Initial potentials drawn per population, :math:`V_i \sim \mathcal N(\mu_a, \sigma_a)`
    for the neurons :math:`i` of population :math:`a` (contiguous blocks of ``sizes``), from a
    private generator seeded with ``seed``: every draw (each ``init_state``/``reset_state``)
    gives the same values, and every row of a batch the same vector.

    Parameters
    ----------
    mean, std : sequence of float
        Mean and standard deviation (mV) per population.
    sizes : sequence of int
        Neurons per population.
    seed : int
        Seed of the draw.
    """

    def __init__(self, mean, std, sizes, seed: int):
        mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        sizes = tuple(int(n) for n in sizes)
        if not len(mean) == len(std) == len(sizes) or min(std) < 0 or min(sizes) < 0:
            raise ValueError("PopulationNormal: 'mean', 'std' and 'sizes' must have one entry per "
                             "population, with std >= 0 and sizes >= 0")
        self._init_args({"mean": mean, "std": std, "sizes": sizes, "seed": int(seed)})

    def _sample(self, shape, dtype, device, generator):
        a = self._args
        num = sum(a["sizes"])
        if shape[-1:] != (num,):
            raise ValueError(f"PopulationNormal: the last dimension must be {num}, got {shape}")
        sizes = torch.tensor(a["sizes"])
        mean = torch.repeat_interleave(torch.tensor(a["mean"], dtype=torch.float64), sizes)
        std = torch.repeat_interleave(torch.tensor(a["std"], dtype=torch.float64), sizes)
        z = torch.randn(num, generator=torch.Generator().manual_seed(a["seed"]),
                        dtype=torch.float64)
        return (z * std + mean).to(device=device, dtype=dtype).expand(shape).clone()


def redrawn_normal(gen: torch.Generator, size: int, mean: float, std: float, low: float,
                   high: float, dtype) -> torch.Tensor:
    """Normal(mean, std) samples from ``gen``, each redrawn until it lies in ``[low, high]``
    (NEST's ``redraw``)."""
    x = torch.randn(size, generator=gen, dtype=dtype) * std + mean
    bad = torch.nonzero((x < low) | (x > high)).squeeze(1)
    while bad.numel():
        x[bad] = torch.randn(bad.numel(), generator=gen, dtype=dtype) * std + mean
        sub = torch.nonzero((x[bad] < low) | (x[bad] > high)).squeeze(1)
        bad = bad[sub]
    return x


def draw_synapse_values(gen: torch.Generator, size: int, post_pop: int, pre_pop: int,
                        params: MicrocircuitParameters, delays: bool, dt: float,
                        wdtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (pA, ``wdtype``) and delays (whole steps of ``dt``, int16) of ``size`` synapses of
    the pathway ``pre_pop -> post_pop``: normal weights with a 10 % spread, redrawn to keep their
    sign; normal delays redrawn until ``>= dt`` and rounded to the nearest step (or every synapse
    at its type's mean delay when ``delays`` is false)."""
    inhibitory = pre_pop % 2 == 1
    mean = float(params.weight_mean[post_pop, pre_pop])
    low, high = (-math.inf, 0.0) if inhibitory else (0.0, math.inf)
    weight = redrawn_normal(gen, size, mean, abs(mean) * _W_REL_STD, low, high, wdtype)
    d_mean = _DELAY_MEAN[1 if inhibitory else 0]
    if delays:
        d = redrawn_normal(gen, size, d_mean, d_mean * _DELAY_REL_STD, dt, math.inf,
                           torch.float64)
        steps = torch.floor(d / dt + 0.5)
    else:
        steps = torch.full((size,), math.floor(d_mean / dt + 0.5 + 1e-9))
    return weight, steps.to(torch.int16)


class _Generator:
    """Draws from one seeded torch.Generator, in chunks (bounded temporaries)."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(int(seed))

    def counts(self, total: int, n: int) -> torch.Tensor:
        """Multinomial(total, uniform over n) counts: how many of ``total`` uniform draws hit
        each of ``n`` bins."""
        out = torch.zeros(n, dtype=torch.int64)
        for start in range(0, total, _CHUNK):
            k = min(_CHUNK, total - start)
            out += torch.bincount(torch.randint(0, n, (k,), generator=self.gen), minlength=n)
        return out


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
