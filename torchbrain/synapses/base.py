"""``Synapse``: the base of synaptic dynamics (filters of presynaptic events)."""

from __future__ import annotations

import torch

from ..dynamics import Dynamics
from ..environ import get as env_get
from ..environ import get_dt_value
from ..init import Initializer
from ..units import (
    CANONICAL,
    UnitError,
    _dim_name,
    check_finite,
    is_quantity,
    to_canonical,
    to_tensor,
    u,
)

__all__ = ["Synapse"]

#: Kinds of quantity a unit-agnostic synaptic variable may hold (what a projection delivers).
_AGNOSTIC_KINDS = ("conductance", "current", "voltage", "dimensionless")


class Synapse(Dynamics):
    """A population of synaptic variables driven by presynaptic events.

    Synapses are filters: a projection registers the step's input with
    ``syn.add_delta_input(key, tensor)`` (or passes it as ``x``), then calls ``syn()``, which
    advances the States by one step and returns the synaptic variable (see :meth:`get_output`).

    Linear filters (``Expon``, ``DualExpon``, ``Alpha``) are **unit-agnostic**: their variable
    holds whatever the projection delivers (nS for conductance weights, pA for current weights),
    and an initializer given as a quantity is converted to the canonical unit of its kind.

    Attributes
    ----------
    align_post : bool
        ``True`` when the dynamics are linear in the input, so that one post-sized synapse can
        filter the summed input of many projections exactly (AlignPost sharing through
        ``.desc``). ``False`` for the kinetic receptors and short-term plasticity, which need the
        presynaptic spikes themselves (use them sized by the presynaptic population).
    """

    align_post: bool = False

    # -------------------------------------------------------------- helpers
    def _dt(self) -> float:
        dt = get_dt_value(desc=self._name())
        self._check_dt_once(dt)
        return dt

    def _t(self):
        return env_get("t", desc=f"{self._name()} (transmitter pulse)")

    def _positive_time(self, name: str, value) -> torch.Tensor:
        return self._register_parameter_with_unit(name, value, "ms", shape=self.varshape,
                                                  positive=True)

    def _store_initializer(self, name: str, value, kinds=_AGNOSTIC_KINDS):
        """Keep a State initializer; a value (not an Initializer) is checked for its unit now."""
        if not isinstance(value, Initializer):
            self._canonical_any(value, name, kinds)
        return value

    def _canonical_any(self, value, name: str, kinds=_AGNOSTIC_KINDS):
        """``value`` converted to the canonical unit of its own kind (one of ``kinds``)."""
        if not is_quantity(value):
            if isinstance(value, str):
                raise UnitError(
                    f"{self._name()}: '{name}' expects a number, tensor or quantity, got the "
                    f"string {value!r}"
                )
            return value
        for kind in kinds:
            if value.dimensionality == u.Unit(CANONICAL[kind]).dimensionality:
                return to_canonical(value, CANONICAL[kind], owner=self._name(), name=name)
        allowed = " or ".join(f"{k} ({CANONICAL[k]})" for k in kinds)
        raise UnitError(
            f"{self._name()}: parameter '{name}' expects {allowed}, got {value:~P}, which is "
            f"{_dim_name(value.units)}"
        )

    def _initial_value(self, initializer, shape, name: str, kinds=_AGNOSTIC_KINDS):
        fac = self._factory_like_states()
        value = initializer
        if isinstance(initializer, Initializer):
            value = initializer(shape, dtype=fac["dtype"], device=fac["device"])
        value = self._canonical_any(value, name, kinds)
        value = to_tensor(value, "dimensionless", owner=self._name(), name=name, **fac)
        if tuple(value.shape) != tuple(shape):
            try:
                value = value.expand(shape).clone()
            except RuntimeError:
                raise ValueError(
                    f"{self._name()}: initial value '{name}' of shape {tuple(value.shape)} does "
                    f"not broadcast to the State shape {tuple(shape)}"
                ) from None
        check_finite(value, self._name(), name, what="initial value")
        return value

    def _event_input(self, x, name: str = "x"):
        """The step's input jump: the registered delta inputs plus ``x`` (shape-checked)."""
        delta = self.sum_delta_inputs(0.0)
        if isinstance(delta, torch.Tensor):
            self._check_input(delta, "delta inputs")
        if x is not None:
            x = self._canonical_any(x, name)
            if isinstance(x, torch.Tensor):
                self._check_input(x, name)
            delta = delta + x
        return delta

    def _spike_input(self, spike, name: str = "pre_spike") -> torch.Tensor:
        fac = self._factory_like_states()
        if not isinstance(spike, torch.Tensor):
            spike = torch.as_tensor(spike, **fac)
        elif not spike.is_floating_point():
            spike = spike.to(fac["dtype"])
        self._check_input(spike, name)
        return spike

    # ---------------------------------------------------------------- output
    def get_output(self) -> torch.Tensor:
        """The current synaptic variable, without stepping."""
        return self.g
