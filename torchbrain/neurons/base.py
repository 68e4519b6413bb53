"""``Neuron``: the base of spiking populations."""

from __future__ import annotations

from typing import Any

import torch

from ..dynamics import Dynamics
from ..environ import get as env_get
from ..environ import get_dt_value
from ..init import Initializer
from ..surrogate import ReluGrad, Surrogate, get_surrogate
from ..units import check_finite, to_canonical, to_tensor

__all__ = ["Neuron"]


class Neuron(Dynamics):
    """A population of spiking neurons.

    Parameters
    ----------
    in_size : int or tuple of int
        Population shape.
    spk_fun : Surrogate or str, default ``ReluGrad()``
        Spike function: Heaviside forward, surrogate derivative backward
        (see :mod:`torchbrain.surrogate`).
    spk_reset : {'soft', 'hard'}
        ``'soft'`` subtracts the threshold distance (differentiable); ``'hard'`` sets V to the
        reset value exactly, with no gradient through the reset amount.
    name, device, dtype
        See :class:`~torchbrain.dynamics.Dynamics`.
    """

    def __init__(
        self,
        in_size,
        *,
        spk_fun: Surrogate | str | None = None,
        spk_reset: str = "soft",
        name: str | None = None,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        self.spk_fun = ReluGrad() if spk_fun is None else self._surrogate(spk_fun)
        if spk_reset not in ("soft", "hard"):
            raise ValueError(
                f"{self._name()}: parameter 'spk_reset' must be 'soft' or 'hard', got {spk_reset!r}"
            )
        self.spk_reset = spk_reset

    def _surrogate(self, spec):
        try:
            return get_surrogate(spec)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{self._name()}: parameter 'spk_fun': {err}") from None

    def _repr_config(self) -> dict[str, Any]:
        return {**super()._repr_config(), "spk_reset": self.spk_reset, "spk_fun": self.spk_fun}

    @property
    def hard_reset(self) -> bool:
        return self.spk_reset == "hard"

    def get_spike(self, *args, **kwargs) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -------------------------------------------------------------- helpers
    def _dt(self) -> float:
        dt = get_dt_value(desc=self._name())
        self._check_dt_once(dt)
        return dt

    def _t(self):
        return env_get("t", desc=f"{self._name()} (refractory period)")

    def _state_V(self) -> torch.Tensor:
        """The State ``V``, or a clear error before ``init_all_states`` allocated it."""
        V = self.V
        if V is None:
            raise RuntimeError(
                f"{self._name()}: get_spike() reads the State 'V', which is not initialised; "
                "call tb.init_all_states(model) (or tb.init_all_states(model, batch_size=B)) "
                "first"
            )
        return V

    def _never_spiked(self, shape) -> torch.Tensor:
        """A new ``last_spike_time`` State: -1e7 ms (never), in float64 whatever the model's
        dtype, so that long runs keep the refractory boundary exact (float32 times lose a
        0.1 ms step after about 30 min of simulated time)."""
        return torch.full(shape, -1e7, dtype=torch.float64,
                          device=self._factory_like_states()["device"])

    def _store_initializer(self, name: str, value, unit: str):
        """Keep a State initializer (an Initializer, or a value checked for its unit now)."""
        if isinstance(value, Initializer):
            return value
        to_canonical(value, unit, owner=self._name(), name=name)
        return value

    def _initial_value(self, initializer, unit: str, shape, name: str) -> torch.Tensor:
        fac = self._factory_like_states()
        if isinstance(initializer, Initializer):
            value = initializer(shape, dtype=fac["dtype"], device=fac["device"])
        else:
            value = initializer
        value = to_tensor(value, unit, owner=self._name(), name=name, **fac)
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

    def _check_threshold_above_reset(self, V_th, V_reset, reset_name="V_reset"):
        if not bool((V_th > V_reset).all()):
            raise ValueError(
                f"{self._name()}: parameter 'V_th' must be above '{reset_name}' (otherwise the "
                f"scaled spike input changes sign and the neuron never spikes), got "
                f"V_th={V_th.min().item():g} mV and {reset_name}={V_reset.max().item():g} mV"
            )
