"""Parameter initializers that understand physical units.

An initializer is a small, picklable description of how to fill a tensor of a given shape::

    from torchbrain import u
    from torchbrain.init import Normal, KaimingNormal, param

    V0 = Normal(-60. * u.mV, 5. * u.mV)((100,))     # Quantity(tensor of 100 values, 'mV')
    W = KaimingNormal()((784, 100))                 # plain tensor, Var[W] = 2 / 784
    g = KaimingNormal(unit=u.nS)((784, 100))        # the same, as a Quantity in nS

Units
-----
An initializer whose arguments carry no unit returns a plain :class:`torch.Tensor`. When some of
its value arguments are pint quantities, all of them must share one physical dimension; they are
converted to the unit of the *first* quantity argument, the sample is computed with plain
tensors, and the result is returned as a :class:`~torchbrain.units.Quantity` of that unit whose
magnitude is a tensor. Plain numbers mixed with quantities are read in that unit
(``Normal(0, 5 * u.mV)`` has mean 0 mV). Module code turns the result into a canonical tensor
with :func:`torchbrain.units.to_tensor`, which checks the dimension.

Fans
----
The variance-scaling family (:class:`VarianceScaling`, :class:`KaimingNormal`, ...) and
:class:`Orthogonal` read the layout of ``shape`` as follows:

* 1-D ``(n,)``: ``fan_in = fan_out = n``;
* 2-D ``(in, out)``: the dense weight used as ``x @ W`` (brainstate convention), so
  ``fan_in = shape[0]`` and ``fan_out = shape[1]``;
* N-D with N >= 3 ``(out, in, *kernel)``: torch's convolution layout, so
  ``fan_in = shape[1] * prod(kernel)`` and ``fan_out = shape[0] * prod(kernel)``.

Randomness comes from torch only; pass a :class:`torch.Generator` for reproducible samples.
"""

from .base import Initializer, param
from .distributions import Constant, Normal, TruncatedNormal, Uniform, ZeroInit
from .orthogonal import Orthogonal
from .seeded import Seeded
from .variance_scaling import (
    KaimingNormal,
    KaimingUniform,
    VarianceScaling,
    XavierNormal,
    XavierUniform,
    compute_fans,
)

__all__ = [
    "Initializer",
    "Constant",
    "ZeroInit",
    "Uniform",
    "Normal",
    "TruncatedNormal",
    "VarianceScaling",
    "KaimingNormal",
    "KaimingUniform",
    "XavierNormal",
    "XavierUniform",
    "Orthogonal",
    "Seeded",
    "compute_fans",
    "param",
]
