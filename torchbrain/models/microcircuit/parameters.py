"""The Potjans–Diesmann (2014) tables (PD14, Table 5; the NEST reference) and the numbers
derived from them at one ``scale``/``k_scale``: sizes, synapse counts, weights, drive."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...units import to_canonical

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
