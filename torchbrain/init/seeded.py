"""An initializer that draws from a generator of its own: the same values in every process."""

from __future__ import annotations

import numbers

import torch

from ..units import Quantity
from .base import Initializer, _resolve_device


class Seeded(Initializer):
    r"""Another initializer drawn from a generator of its own, seeded anew at every call.

    :math:`x = \mathrm{init}(\mathrm{shape};\ G_\mathrm{seed})`: a fresh CPU
    :class:`torch.Generator` seeded with ``seed`` feeds ``initializer``, and the draw is then moved
    to the requested device. So every call with the same shape and dtype returns the same
    values, whatever torch's global generator holds — in another process, after another
    ``torch.manual_seed``, on the CPU or a GPU — and a module whose State initializer this is
    restarts from the same values at every ``init_all_states`` / ``reset_all_states``.

    Parameters
    ----------
    initializer : Initializer
        What to draw (its units are kept).
    seed : int
        Seed of the generator, ``0 <= seed < 2**63``.

    Examples
    --------
    >>> from torchbrain import u
    >>> from torchbrain.init import Normal, Seeded
    >>> V0 = Seeded(Normal(-55. * u.mV, 5. * u.mV), seed=2)
    >>> bool((V0(4).magnitude == V0(4).magnitude).all())
    True
    """

    def __init__(self, initializer: Initializer, seed: int):
        name = type(self).__name__
        if not isinstance(initializer, Initializer):
            raise TypeError(f"{name}: parameter 'initializer' expects an Initializer, got "
                            f"{type(initializer).__name__} {initializer!r}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not (
                0 <= seed < 2**63):
            raise ValueError(f"{name}: parameter 'seed' expects an int in [0, 2**63), got "
                             f"{seed!r}")
        self._init_args({"initializer": initializer, "seed": int(seed)})
        self.initializer = initializer
        self.seed = int(seed)
        self.unit = initializer.unit
        self._random = initializer._random

    def __call__(self, shape, *, dtype=None, device=None, generator=None):
        if generator is not None:
            raise TypeError(f"{type(self).__name__}: draws from its own generator (seed "
                            f"{self.seed}); call the inner initializer to pass one")
        target = _resolve_device(device, None, getattr(self.initializer, "_mags", {}).values())
        out = self.initializer(shape, dtype=dtype, device="cpu",
                               generator=torch.Generator().manual_seed(self.seed))
        if self.unit is None:
            return out.to(target)
        return Quantity(out.magnitude.to(target), out.units)
