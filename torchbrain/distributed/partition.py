r"""Neuron ranges per rank: a population of ``N`` neurons split into contiguous slices.

Rank ``r`` of ``W`` owns the global neuron indices ``[start_r, stop_r)``. The split is balanced in
units of ``align`` neurons: with :math:`G = \lceil N / a \rceil` granules of ``a = align``
neurons,

.. math::

    \mathrm{start}_r = a \left\lfloor \frac{r\,G}{W} \right\rfloor, \qquad
    \mathrm{stop}_r = \min\!\Big(N,\; a \left\lfloor \frac{(r+1)\,G}{W} \right\rfloor\Big),

so ranks differ by at most one granule, and every slice starts at a multiple of ``align``.

Why align: PyTorch's CPU kernels process the body of a tensor with vector instructions and its
last few elements (fewer than two vectors, at most 32 floats with AVX-512) with scalar code, and
the two paths of ``exp`` can differ in the last bit. When every slice starts at a multiple of 64,
a neuron sits at the same position modulo 64 on 1 rank and on ``W`` ranks, so it is integrated by
the same code path and a seeded network gives bit-identical spikes on any number of ranks. (On a
GPU every element takes the same path; alignment then only helps memory coalescing.)
"""

from __future__ import annotations

import torch

__all__ = ["Partition"]


def _positive_int(value, owner: str, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{owner}: '{name}' must be an int >= {minimum}, got {value!r}")
    return value


class Partition:
    """Contiguous, ``align``-aligned neuron ranges of ``num`` neurons over ``world_size`` ranks.

    Parameters
    ----------
    num : int
        Number of neurons (global indices ``0 .. num - 1``).
    world_size : int
        Number of ranks.
    align : int, default 64
        Every range starts at a multiple of ``align`` (see the module docstring).

    Raises
    ------
    ValueError
        When a rank would own no neuron (fewer granules of ``align`` neurons than ranks): use
        fewer ranks, a larger network or a smaller ``align``.

    Examples
    --------
    >>> p = Partition(1000, 3)
    >>> [p.range(r) for r in range(3)]
    [(0, 320), (320, 640), (640, 1000)]
    >>> p.owner(torch.tensor([0, 319, 320, 999])).tolist()
    [0, 0, 1, 2]
    """

    def __init__(self, num: int, world_size: int, align: int = 64):
        self.num = _positive_int(num, "Partition", "num")
        self.world_size = _positive_int(world_size, "Partition", "world_size")
        self.align = _positive_int(align, "Partition", "align")
        granules = -(-self.num // self.align)
        if granules < self.world_size:
            raise ValueError(
                f"Partition: {self.num} neurons make {granules} blocks of align={self.align}, "
                f"fewer than the {self.world_size} ranks, so some rank would own no neuron; use "
                "fewer ranks, a larger network or a smaller 'align'"
            )
        bounds = [min(self.num, self.align * (r * granules // self.world_size))
                  for r in range(self.world_size + 1)]
        bounds[-1] = self.num
        self.bounds: tuple[int, ...] = tuple(bounds)

    def __repr__(self) -> str:
        return f"Partition(num={self.num}, world_size={self.world_size}, align={self.align})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Partition) and self.bounds == other.bounds

    def __hash__(self) -> int:
        return hash(self.bounds)

    def range(self, rank: int) -> tuple[int, int]:
        """``(start, stop)``: the global indices owned by ``rank``."""
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < self.world_size:
            raise ValueError(
                f"Partition: 'rank' must be an int in [0, {self.world_size}), got {rank!r}"
            )
        return self.bounds[rank], self.bounds[rank + 1]

    def size(self, rank: int) -> int:
        """Number of neurons owned by ``rank``."""
        start, stop = self.range(rank)
        return stop - start

    @property
    def sizes(self) -> list[int]:
        """Neurons per rank."""
        return [self.bounds[r + 1] - self.bounds[r] for r in range(self.world_size)]

    def owner(self, index: torch.Tensor) -> torch.Tensor:
        """The rank owning each global index (an int64 tensor of the same shape)."""
        index = torch.as_tensor(index)
        starts = torch.tensor(self.bounds[1:-1], dtype=index.dtype, device=index.device)
        return torch.bucketize(index, starts, right=True).to(torch.int64)

    def to_local(self, index: torch.Tensor, rank: int) -> torch.Tensor:
        """Global indices owned by ``rank`` as local indices (``index - start``)."""
        start, stop = self.range(rank)
        index = torch.as_tensor(index)
        if index.numel() and bool(((index < start) | (index >= stop)).any()):
            raise ValueError(
                f"Partition: some indices are not owned by rank {rank} ([{start}, {stop}))"
            )
        return index - start
