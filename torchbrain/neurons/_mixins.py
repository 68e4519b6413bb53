"""Mixins shared by neuron families: an absolute refractory period, an adaptation current."""

from __future__ import annotations

from typing import Any

import torch

from ..functional._if_common import refractory_mask
from ..state import HiddenState, ShortTermState

__all__ = ["_Refractory", "_AdaptationCurrent"]


class _Refractory:
    """Absolute refractory period read from ``tb.environ``'s ``t`` (shared by the *Ref classes).

    States: ``last_spike_time`` (``ShortTermState``, -1e7 ms = never) and, with
    ``ref_var=True``, a boolean ``refractory`` (``HiddenState``): refractory during this step or
    just spiked.
    """

    def _init_refractory(self, tau_ref, ref_var: bool) -> None:
        self.tau_ref = self._register_parameter_with_unit(
            "tau_ref", tau_ref, "ms", shape=self.varshape, nonnegative=True
        )
        if not isinstance(ref_var, bool):
            raise TypeError(
                f"{self._name()}: parameter 'ref_var' must be True or False, got {ref_var!r}"
            )
        self.ref_var = ref_var
        self.last_spike_time = ShortTermState(None)
        if ref_var:
            self.refractory = HiddenState(None)

    def _init_refractory_states(self, shape) -> None:
        fac = self._factory_like_states()
        self.last_spike_time = ShortTermState(self._never_spiked(shape))
        if self.ref_var:
            self.refractory = HiddenState(torch.zeros(shape, dtype=torch.bool,
                                                      device=fac["device"]))

    def _note_refractory(self, t, last_before, V, V_th) -> None:
        if self.ref_var:
            self.refractory = refractory_mask(t, last_before, self.tau_ref) | (
                V.detach() >= V_th.detach()
            )

    def _repr_refractory(self) -> dict[str, Any]:
        return {"ref_var": self.ref_var}


class _AdaptationCurrent:
    r"""An adaptation current :math:`w` (pA) of AdEx and AdQuaIF: its parameters and State.

    :math:`\tau_w\,dw/dt = a(V - V_\mathrm{rest}) - w`, and :math:`w \leftarrow w + b` per spike.
    """

    def _init_adaptation(self, tau_w, a, b, w_initializer) -> None:
        shape = self.varshape
        reg = self._register_parameter_with_unit
        self.tau_w = reg("tau_w", tau_w, "ms", shape=shape, positive=True)
        self.a = reg("a", a, "nS", shape=shape)
        self.b = reg("b", b, "pA", shape=shape)
        self.w_initializer = self._store_initializer("w_initializer", w_initializer, "pA")
        self.w = HiddenState(None)

    def _repr_config(self):
        return {**super()._repr_config(), "w_initializer": self.w_initializer}

    def _membrane(self):
        return {**super()._membrane(), "tau_w": self.tau_w, "a": self.a, "b": self.b}

    def _init_Vw(self, batch_size):
        shape = self._init_V(batch_size)
        self.w = HiddenState(self._initial_value(self.w_initializer, "pA", shape, "w"))
        return shape

    def init_state(self, batch_size=None):
        self._init_Vw(batch_size)
