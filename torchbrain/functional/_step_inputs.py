"""How a step function receives its inputs: a current that may depend on ``V``, and a jump.

Private helpers shared by every step function of :mod:`torchbrain.functional`. A population
(:class:`~torchbrain.dynamics.Dynamics`) hands its step either a plain current or a function of
the membrane potential (synaptic outputs evaluated at ``V``, with their conductance), and the sum
of the jumps registered for the step, which is the plain number 0 when there are none.
"""

from __future__ import annotations

__all__ = ["current_at", "add_delta"]


def current_at(current, V):
    """``(current, conductance)`` of the step's input at ``V``.

    ``current`` is a tensor/number (conductance 0) or a function ``V -> (current, conductance)``.
    """
    if callable(current):
        return current(V)
    return current, 0.0


def add_delta(V, delta):
    """``V + delta``, skipping the addition for the plain number 0 (no jump registered)."""
    return V if isinstance(delta, float | int) and delta == 0 else V + delta
