r"""A counter-based random number generator whose whole state is two integer tensors.

Why not ``torch.Generator`` or the global RNG
---------------------------------------------
The stochastic inputs (Poisson spikes, Poisson input, OU and Wiener noise) must be

* reproducible from a seed, also after ``deepcopy``/``pickle`` and after
  ``tb.state_dict``/``tb.load_state_dict`` (a saved simulation resumes with the same noise);
* identical under ``torch.compile(fullgraph=True)`` and in eager mode (``torch.rand`` with a
  ``torch.Generator`` is a graph break, and Inductor draws different numbers than eager for
  ``torch.rand`` without one);
* re-playable by checkpointed rollouts and CUDA graphs.

A counter-based generator gives all of this: the random numbers of a draw are a pure function
``hash(seed, counter, stream, element index)``, computed with plain integer tensor operations,
so they are the same in eager and compiled code and on CPU and CUDA. A module keeps its ``seed``
(a persistent buffer) and its ``counter`` (a :class:`~torchbrain.state.LongTermState`, advanced by
one per step); copying or restoring those two tensors copies or restores the noise.

The hash
--------
Each element's 32-bit value is two rounds of an xorshift-multiply integer finalizer (the
"lowbias32" constants from C. Wellons' hash-prospector, public domain) keyed by values derived
from the seed, the counter and a stream number. All arithmetic stays in ``[0, 2**49)`` on int64
tensors (a 32-bit product is split into 16-bit halves), so no signed overflow ever happens and
eager, Inductor CPU and Inductor CUDA agree bit for bit.

Uniforms have 24 random bits in float32 (32 bits in float64); normals use the Box-Muller
transform of two uniforms, so their tails end at about 5.8 (float32) or 6.7 (float64) standard
deviations.

References
----------
Salmon, J. K., Moraes, M. A., Dror, R. O. & Shaw, D. E. (2011). Parallel random numbers: as easy
as 1, 2, 3. *Proc. SC11*. (The counter-based design.)
Box, G. E. P. & Muller, M. E. (1958). A note on the generation of random normal deviates.
*Ann. Math. Statist.* 29, 610-611.
"""

from __future__ import annotations

import math
import numbers

import torch

from ..ops.fusion_boundary import fusion_boundary
from ..state import LongTermState

__all__ = ["counter_bits", "counter_uniform", "counter_normal", "draw_seed", "RandomStream"]

_MASK = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``x * c mod 2**32`` for ``0 <= x < 2**32`` without leaving ``[0, 2**49)``."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A bijective 32-bit finalizer (xorshift-multiply, good avalanche)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _mixed(x: torch.Tensor) -> torch.Tensor:
    """:func:`_mix32` of ``x``, kept as a buffer of its own under ``torch.compile``.

    Why: Inductor inlines a pointwise producer into each of its consumers, and every step of
    the finalizer reads its input twice (``x ^ (x >> 16)``, the split multiply), so the nested
    rounds of the hash grew into an expression tree that doubles per step: one draw took 15-40 s
    to compile, a chunk of network steps with a Poisson input minutes. An opaque identity op
    after each round (:func:`torchbrain.ops.fusion_boundary.fusion_boundary`, one copy) caps the
    tree at one round; eager code skips it.
    """
    y = _mix32(x)
    return fusion_boundary(y) if torch.compiler.is_dynamo_compiling() else y


def counter_bits(seed: torch.Tensor, counter: torch.Tensor, shape, stream: int = 0,
                 device=None, offset: int = 0) -> torch.Tensor:
    """32 random bits (int64 values in ``[0, 2**32)``) for every element of ``shape``.

    Parameters
    ----------
    seed : Tensor
        int64 tensor of shape ``(2,)``: the low and high 32 bits of the seed.
    counter : Tensor
        int64 scalar: the draw number (a module's step counter).
    shape : tuple of int
        Shape of the result.
    stream : int
        Independent sub-stream of the same ``(seed, counter)`` (e.g. the two uniforms of
        Box-Muller).
    offset : int
        Index of the first element: the result is elements ``[offset, offset + numel)`` of the
        draw (a slice of a population split over processes gets the numbers the whole
        population would).
    """
    device = seed.device if device is None else device
    numel = math.prod(shape)
    c_lo = counter & _MASK
    c_hi = (counter >> 32) & _MASK
    k1 = _mixed(seed[0] ^ _mixed(c_lo ^ _mixed(c_hi ^ ((stream * _GOLDEN + 1) & _MASK))))
    k2 = _mixed(seed[1] ^ _mixed(k1 ^ ((stream * 0x85EBCA6B + 0x27D4EB2F) & _MASK)))
    idx = torch.arange(offset, offset + numel, dtype=torch.int64, device=device) & _MASK
    return _mix32(_mixed(idx ^ k1) ^ k2).reshape(shape)


def counter_uniform(seed, counter, shape, stream: int = 0, dtype=None, device=None,
                    offset: int = 0):
    """Uniform numbers in ``[0, 1)`` (24 random bits, or 32 in float64)."""
    dtype = dtype or torch.get_default_dtype()
    bits = counter_bits(seed, counter, shape, stream, device, offset)
    if dtype == torch.float64:
        return bits.to(torch.float64) * (2.0 ** -32)
    # 24 bits are exact in float32, so the largest value is 1 - 2**-24 < 1.
    return ((bits >> 8).to(torch.float32) * (2.0 ** -24)).to(dtype)


def counter_normal(seed, counter, shape, stream: int = 0, dtype=None, device=None,
                   offset: int = 0):
    """Standard normal numbers (Box-Muller of the streams ``2*stream`` and ``2*stream + 1``)."""
    dtype = dtype or torch.get_default_dtype()
    work = torch.float64 if dtype == torch.float64 else torch.float32
    u1 = counter_uniform(seed, counter, shape, 2 * stream, work, device, offset)
    u2 = counter_uniform(seed, counter, shape, 2 * stream + 1, work, device, offset)
    # 1 - u1 is exact (u1 has at most 32 random bits) and in (0, 1]; log and sin are also much
    # faster than log1p and cos in float64 on CPU.
    radius = torch.sqrt(-2.0 * torch.log(1.0 - u1))
    return (radius * torch.sin((2.0 * math.pi) * u2)).to(dtype)


def draw_seed(seed=None, generator: torch.Generator | None = None, owner: str = "") -> int:
    """An int seed: ``seed`` itself, or one drawn from ``generator`` (default: torch's global
    RNG, so ``torch.manual_seed`` makes module construction reproducible)."""
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"{owner}: parameter 'seed' must be a non-negative int, got {seed!r}")
        if generator is not None:
            raise ValueError(f"{owner}: give either 'seed' or 'generator', not both")
        return int(seed) & 0xFFFFFFFFFFFFFFFF
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{owner}: parameter 'generator' must be a torch.Generator, got "
            f"{type(generator).__name__}"
        )
    return int(torch.randint(0, 2**62, (1,), generator=generator).item())


class RandomStream:
    """Mixin for :class:`~torchbrain.module.Module` subclasses that draw random numbers.

    It registers two integer tensors: ``rng_seed`` (a persistent buffer) and ``rng_counter``
    (a :class:`~torchbrain.state.LongTermState`: saved by ``state_dict``, *not* reset by
    ``reset_state``, so successive trials get fresh noise, as brainstate's global key does).
    Call :meth:`_init_rng` in ``__init__`` *after* the floating-point parameters and States
    (helpers that pick "the first buffer" for a dtype then find a floating one).
    """

    #: Index of this module's first element in a larger draw (see :func:`counter_bits`).
    rng_index_offset: int = 0

    def _init_rng(self, seed=None, generator=None, index_offset: int = 0) -> None:
        if isinstance(index_offset, bool) or not isinstance(index_offset, numbers.Integral) or (
            index_offset < 0
        ):
            raise ValueError(f"{self._name()}: parameter 'index_offset' must be a non-negative "
                             f"int, got {index_offset!r}")
        self.rng_index_offset = int(index_offset)
        value = draw_seed(seed, generator, owner=self._name())
        device = self._factory["device"]
        self.register_buffer(
            "rng_seed",
            torch.tensor([value & _MASK, (value >> 32) & _MASK], dtype=torch.int64,
                         device=device),
            persistent=True,
        )
        self.rng_counter = LongTermState(torch.zeros((), dtype=torch.int64, device=device))

    def reseed(self, seed=None, generator: torch.Generator | None = None) -> None:
        """Restart the random stream from ``seed`` (or a seed drawn from ``generator``)."""
        value = draw_seed(seed, generator, owner=self._name())
        self.rng_seed = torch.tensor([value & _MASK, (value >> 32) & _MASK],
                                     dtype=torch.int64, device=self.rng_seed.device)
        self.rng_counter = torch.zeros((), dtype=torch.int64, device=self.rng_seed.device)

    def _next_counter(self) -> torch.Tensor:
        """The counter of this step's draws; advances the stored counter by one."""
        counter = self.rng_counter
        self.rng_counter = counter + 1
        return counter

    def _uniform(self, counter, shape, stream: int, dtype):
        return counter_uniform(self.rng_seed, counter, tuple(shape), stream, dtype,
                               offset=self.rng_index_offset)

    def _normal(self, counter, shape, stream: int, dtype):
        return counter_normal(self.rng_seed, counter, tuple(shape), stream, dtype,
                              offset=self.rng_index_offset)
