"""The functional core: pure step functions of (input, state, params, dt)."""

from . import lif
from .integrators import decay_factor, exp_euler_linear, exprel

__all__ = ["lif", "exprel", "exp_euler_linear", "decay_factor"]
