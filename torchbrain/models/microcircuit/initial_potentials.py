"""Initial membrane potentials of the microcircuit, drawn per population."""

from __future__ import annotations

import torch

from ...init import Initializer
from .parameters import _V0_OPTIMIZED


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


def initial_potentials(V0: str, num_neurons, seed: int) -> PopulationNormal:
    """The initial-potential initializer of ``V0`` ('optimized' or 'original')."""
    if V0 == "optimized":
        v0_mean, v0_std = _V0_OPTIMIZED
    else:
        v0_mean, v0_std = (-58.0,) * 8, (10.0,) * 8
    return PopulationNormal(v0_mean, v0_std, num_neurons, seed)
