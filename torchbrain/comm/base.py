"""Shared pieces of the connectivity ("comm") layers: sizes and weights with units."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..init import Initializer
from ..module import Module
from ..units import CANONICAL, UnitError, check_finite, is_quantity, to_tensor, u

__all__ = ["Comm", "WEIGHT_KINDS"]

#: What a weight can be, by the quantity a projection delivers: a conductance (COBA), a current
#: (CUBA), a voltage jump (delta synapses) or a plain number.
WEIGHT_KINDS = ("conductance", "current", "voltage", "dimensionless")


def _size(value, owner, name) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, tuple | list) and value and all(
        isinstance(v, int) and v > 0 for v in value
    ):
        return math.prod(value)
    raise ValueError(f"{owner}: '{name}' must be a positive int or shape, got {value!r}")


class Comm(Module):
    """Base of connectivity layers mapping ``(..., n_pre)`` inputs to ``(..., n_post)`` outputs.

    Weights carry the unit of what they deliver. A quantity weight is converted to its kind's
    canonical unit (nS, pA, mV or dimensionless) and the kind is remembered in ``weight_unit``, so a
    projection can reject, at construction, a conductance weight wired into a current output.
    Plain numbers have no declared unit (``weight_unit = None``) and are taken as canonical.
    """

    def __init__(self, in_size, out_size, *, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        self.in_size = in_size
        self.out_size = out_size
        self.n_pre = _size(in_size, type(self).__name__, "in_size")
        self.n_post = _size(out_size, type(self).__name__, "out_size")
        self.weight_unit: str | None = None

    def _repr_config(self) -> dict[str, Any]:
        return {"in_size": self.in_size, "out_size": self.out_size}

    def _weight_tensor(self, value, shape: tuple[int, ...], name: str = "weight") -> torch.Tensor:
        """Convert a weight (quantity, number, tensor or initializer) to a canonical tensor."""
        fac = dict(dtype=self._factory["dtype"], device=self._factory["device"])
        if isinstance(value, Initializer):
            value = value(shape, **fac)
        if is_quantity(value):
            for kind in WEIGHT_KINDS:
                if value.dimensionality == u.Unit(CANONICAL[kind]).dimensionality:
                    self.weight_unit = CANONICAL[kind]
                    break
            else:
                raise UnitError(
                    f"{self._name()}: parameter '{name}' must be a conductance, a current, a "
                    f"voltage or a plain number, got {value:~P}"
                )
            return to_tensor(value, self.weight_unit, owner=self._name(), name=name, **fac)
        if isinstance(value, nn.Parameter):
            return value
        return to_tensor(value, "dimensionless", owner=self._name(), name=name, **fac)

    def _store_weight(self, tensor: torch.Tensor, trainable: bool, name: str = "weight"):
        check_finite(tensor, self._name(), name)
        if trainable or isinstance(tensor, nn.Parameter):
            param = tensor if isinstance(tensor, nn.Parameter) else nn.Parameter(tensor.clone())
            self.register_parameter(name, param)
        else:
            self.register_buffer(name, tensor.detach().clone(), persistent=True)
        if self.weight_unit is not None:
            self._param_units[name] = self.weight_unit

    def _check_input(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.n_pre:
            raise ValueError(
                f"{self._name()}: input has {x.shape[-1]} presynaptic entries in its last "
                f"dimension (shape {tuple(x.shape)}), expected {self.n_pre}"
            )
