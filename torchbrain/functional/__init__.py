"""The functional core: pure step functions of (input, state, params, dt)."""

from . import (
    exp_if,
    gif,
    hh,
    izhikevich,
    lif,
    quadratic_if,
    reduced,
    synapses,
    synaptic_lif,
)
from .integrators import decay_factor, exp_euler_linear, exprel

__all__ = ["lif", "exp_if", "quadratic_if", "gif", "synaptic_lif", "synapses",
           "hh", "izhikevich", "reduced", "exprel",
           "exp_euler_linear", "decay_factor"]
