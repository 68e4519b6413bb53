r"""Dense connectivity layers: ``Linear``, ``SignedWLinear``, ``AllToAll``, ``OneToOne``,
``EventLinear``.

They follow brainstate.nn's layers of the same names (weights laid out ``(n_pre, n_post)`` and used
as ``x @ W``) and torchbrain's weight-unit rules (:class:`~torchbrain.comm.base.Comm`): a weight
given as a quantity is converted to the canonical unit of what it delivers (nS, pA or mV) and that
unit is remembered in ``weight_unit``, so a projection can reject a conductance weight wired into
a current output; a bias must be in the weight's unit. Plain numbers are canonical.

Differences from the reference: sizes given as tuples are flattened (``n_pre = prod(in_size)``, the
inputs' last dimension), like every torchbrain connectivity layer, where brainstate uses the last
entry of the shape; ``trainable`` chooses between ``nn.Parameter`` and a buffer (brainstate always
makes a ``ParamState``); ``EventLinear`` does not train by default, like the other
event-driven/sparse layers of torchbrain.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..init import KaimingNormal, Normal, ZeroInit
from ..ops.event_csr import event_dense_matvec
from ..units import UnitError, check_finite, to_tensor
from .base import Comm

__all__ = ["AllToAll", "EventLinear", "Linear", "OneToOne", "SignedWLinear"]

# Initializers are immutable descriptions, shared safely as defaults.
_KAIMING = KaimingNormal()
_NORMAL = Normal()


class _DenseComm(Comm):
    """Unit bookkeeping and shape checks shared by the dense layers."""

    def _tensor(self, value, shape: tuple[int, ...], name: str) -> torch.Tensor:
        """:meth:`_weight_tensor`, checking that every weight-like value shares one unit."""
        before = self.weight_unit
        tensor = self._weight_tensor(value, shape, name=name)
        if before is not None and self.weight_unit != before:
            raise UnitError(
                f"{self._name()}: parameter '{name}' is in {self.weight_unit} but the weight is in "
                f"{before}; both must be in the unit the layer delivers"
            )
        return tensor

    def _check_shape(self, tensor: torch.Tensor, allowed, name: str) -> None:
        if tuple(tensor.shape) not in allowed:
            text = " or ".join(str(s) for s in allowed)
            raise ValueError(
                f"{self._name()}: parameter '{name}' must have shape {text}, got shape "
                f"{tuple(tensor.shape)}"
            )

    def _store_bias(self, bias: torch.Tensor | None, trainable: bool) -> None:
        if bias is None:
            self.register_buffer("bias", None)
        else:
            self._store_weight(bias, trainable, name="bias")

    def _mask_tensor(self, value, name: str) -> torch.Tensor:
        """A dimensionless matrix broadcastable to ``(n_pre, n_post)`` (a mask or signs)."""
        tensor = to_tensor(value, "dimensionless", owner=self._name(), name=name,
                           dtype=self._factory["dtype"], device=self._factory["device"])
        shape = (self.n_pre, self.n_post)
        try:
            ok = tensor.ndim <= 2 and torch.broadcast_shapes(tensor.shape, shape) == shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"{self._name()}: parameter '{name}' must broadcast to (in, out) = {shape}, got "
                f"shape {tuple(tensor.shape)}"
            )
        check_finite(tensor, self._name(), name)
        return tensor.detach()

    def _as_weight_dtype(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return x.to(self.weight.dtype)


class Linear(_DenseComm):
    r"""Fully connected layer ``y = x @ W + b``.

    .. math::

        y_j = \sum_i x_i \, (W \odot M)_{ij} + b_j

    Parameters
    ----------
    in_size, out_size : int or tuple of int
        Input and output sizes; ``W`` has shape ``(n_pre, n_post)``.
    w_init : Initializer, quantity, number or tensor, default ``KaimingNormal()``
        The weight ``(n_pre, n_post)``, dimensionless or with the unit of what it delivers
        (nS, pA or mV; e.g. ``KaimingNormal(unit=u.nS)``).
    b_init : Initializer, quantity, number or tensor, default ``ZeroInit()``
        Bias ``(n_post,)`` (or a scalar) in the weight's unit; ``None``: no bias.
    w_mask : tensor or array, optional
        A fixed (non-trainable) mask multiplied into ``W``, broadcastable to ``(n_pre, n_post)``.
    trainable : bool, default True
        Register weight and bias as ``nn.Parameter`` (brainstate's ``ParamState``).
    device, dtype : optional
        Factory arguments.

    References
    ----------
    brainstate.nn.Linear (brainstate 0.6.0).
    """

    def __init__(self, in_size, out_size, w_init=_KAIMING, b_init=ZeroInit(), w_mask=None,
                 trainable: bool = True, *, device=None, dtype=None):
        super().__init__(in_size, out_size, device=device, dtype=dtype)
        shape = (self.n_pre, self.n_post)
        weight = self._tensor(w_init, shape, "w_init")
        self._check_shape(weight, [shape], "w_init")
        bias = None
        if b_init is not None:
            bias = self._tensor(b_init, (self.n_post,), "b_init")
            self._check_shape(bias, [(), (self.n_post,)], "b_init")
        self._store_weight(weight, trainable)
        self._store_bias(bias, trainable)
        mask = None if w_mask is None else self._mask_tensor(w_mask, "w_mask")
        self.register_buffer("w_mask", mask, persistent=True)

    def effective_weight(self) -> torch.Tensor:
        return self.weight if self.w_mask is None else self.weight * self.w_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., n_pre)`` to ``(..., n_post)``."""
        y = self._as_weight_dtype(x) @ self.effective_weight()
        return y if self.bias is None else y + self.bias

    def to_dense(self) -> torch.Tensor:
        """The ``(n_pre, n_post)`` matrix applied (mask included), detached."""
        return self.effective_weight().detach()


class SignedWLinear(_DenseComm):
    r"""Linear layer with fixed signs: ``y = x @ (|W| * S)`` (Dale's law).

    .. math::

        y_j = \sum_i x_i \, |W_{ij}| \, S_{ij}

    Parameters
    ----------
    in_size, out_size : int or tuple of int
        Input and output sizes.
    w_init : Initializer, quantity, number or tensor, default ``KaimingNormal()``
        The magnitudes ``(n_pre, n_post)`` (their sign is discarded), dimensionless or in nS, pA
        or mV.
    w_sign : tensor or array, optional
        Signs in ``{-1, 0, +1}`` broadcastable to ``(n_pre, n_post)``: ``(n_pre, 1)`` gives one
        sign per presynaptic neuron (excitatory +1, inhibitory -1: Dale's law). ``None``: all
        positive.
    trainable : bool, default True
        Register the weight as an ``nn.Parameter``; the signs are a fixed buffer.
    device, dtype : optional
        Factory arguments.

    References
    ----------
    brainstate.nn.SignedWLinear (brainstate 0.6.0), which takes no bias either.
    """

    def __init__(self, in_size, out_size, w_init=_KAIMING, w_sign=None, trainable: bool = True,
                 *, device=None, dtype=None):
        super().__init__(in_size, out_size, device=device, dtype=dtype)
        shape = (self.n_pre, self.n_post)
        weight = self._tensor(w_init, shape, "w_init")
        self._check_shape(weight, [shape], "w_init")
        sign = None
        if w_sign is not None:
            sign = self._mask_tensor(w_sign, "w_sign")
            if not bool(((sign == 1) | (sign == -1) | (sign == 0)).all()):
                raise ValueError(f"{self._name()}: parameter 'w_sign' must hold only -1, 0 or +1")
        self._store_weight(weight, trainable)
        self.register_buffer("w_sign", sign, persistent=True)

    def effective_weight(self) -> torch.Tensor:
        w = self.weight.abs()
        return w if self.w_sign is None else w * self.w_sign

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., n_pre)`` to ``(..., n_post)``."""
        return self._as_weight_dtype(x) @ self.effective_weight()

    def to_dense(self) -> torch.Tensor:
        """The signed ``(n_pre, n_post)`` matrix applied, detached."""
        return self.effective_weight().detach()


class AllToAll(_DenseComm):
    r"""All-to-all connectivity with a matrix or one homogeneous weight.

    .. math::

        y_j = \sum_{i \,:\, i \ne j \text{ unless include\_self}} x_i W_{ij} + b_j

    Parameters
    ----------
    in_size, out_size : int or tuple of int
        Presynaptic and postsynaptic sizes.
    w_init : Initializer, quantity, number or tensor, default ``KaimingNormal()``
        A matrix ``(n_pre, n_post)`` or a scalar (homogeneous: ``y_j = w \sum_i x_i``), in nS, pA,
        mV or dimensionless.
    b_init : Initializer, quantity, number or tensor, optional
        Bias ``(n_post,)`` in the weight's unit; ``None`` (default): no bias.
    include_self : bool, default True
        ``False`` removes the pairs ``i == j`` (the main diagonal, as brainstate does, also for a
        rectangular matrix): no self-connections when pre and post are one population.
    trainable : bool, default True
        Register weight and bias as ``nn.Parameter``.
    device, dtype : optional
        Factory arguments.

    References
    ----------
    brainstate.nn.AllToAll (brainstate 0.6.0).
    """

    def __init__(self, in_size, out_size, w_init=_KAIMING, b_init=None, include_self: bool = True,
                 trainable: bool = True, *, device=None, dtype=None):
        super().__init__(in_size, out_size, device=device, dtype=dtype)
        shape = (self.n_pre, self.n_post)
        weight = self._tensor(w_init, shape, "w_init")
        self._check_shape(weight, [(), shape], "w_init")
        bias = None
        if b_init is not None:
            bias = self._tensor(b_init, (self.n_post,), "b_init")
            self._check_shape(bias, [(), (self.n_post,)], "b_init")
        self.include_self = bool(include_self)
        self._store_weight(weight, trainable)
        self._store_bias(bias, trainable)

    def _repr_config(self):
        return {**super()._repr_config(), "include_self": self.include_self}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., n_pre)`` to ``(..., n_post)``."""
        x = self._as_weight_dtype(x)
        m = min(self.n_pre, self.n_post)
        if self.weight.ndim == 0:
            y = x.sum(-1, keepdim=True).expand(*x.shape[:-1], self.n_post)
            if not self.include_self:
                y = y - F.pad(x[..., :m], (0, self.n_post - m))
            y = y * self.weight
        else:
            w = self.weight
            if not self.include_self:
                w = torch.diagonal_scatter(w, w.new_zeros(m))
            y = x @ w
        return y if self.bias is None else y + self.bias

    def to_dense(self) -> torch.Tensor:
        """The ``(n_pre, n_post)`` matrix applied, detached."""
        w = self.weight.detach().expand(self.n_pre, self.n_post).clone()
        if not self.include_self:
            w.fill_diagonal_(0.0)
        return w


class OneToOne(_DenseComm):
    r"""Elementwise connection of two populations of equal size: ``y = x * w + b``.

    .. math::

        y_i = w_i x_i + b_i

    Parameters
    ----------
    in_size : int or tuple of int
        Size of both populations.
    w_init : Initializer, quantity, number or tensor, default ``Normal()``
        Weights ``(n,)`` or a scalar, in nS, pA, mV or dimensionless.
    b_init : Initializer, quantity, number or tensor, optional
        Bias ``(n,)`` or a scalar in the weight's unit; ``None`` (default): no bias.
    trainable : bool, default True
        Register weight and bias as ``nn.Parameter``.
    device, dtype : optional
        Factory arguments.

    References
    ----------
    brainstate.nn.OneToOne (brainstate 0.6.0).
    """

    def __init__(self, in_size, w_init=_NORMAL, b_init=None, trainable: bool = True, *,
                 device=None, dtype=None):
        super().__init__(in_size, in_size, device=device, dtype=dtype)
        weight = self._tensor(w_init, (self.n_pre,), "w_init")
        self._check_shape(weight, [(), (self.n_pre,)], "w_init")
        bias = None
        if b_init is not None:
            bias = self._tensor(b_init, (self.n_pre,), "b_init")
            self._check_shape(bias, [(), (self.n_pre,)], "b_init")
        self._store_weight(weight, trainable)
        self._store_bias(bias, trainable)

    def _repr_config(self):
        return {"in_size": self.in_size}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., n)`` to ``(..., n)``."""
        y = self._as_weight_dtype(x) * self.weight
        return y if self.bias is None else y + self.bias

    def to_dense(self) -> torch.Tensor:
        """The diagonal ``(n, n)`` matrix applied, detached."""
        return torch.diag(self.weight.detach().expand(self.n_pre))


class EventLinear(_DenseComm):
    r"""Spike-driven dense layer: only the rows of ``W`` of active inputs are summed.

    .. math::

        y_j = \sum_{i \,:\, s_i \ne 0} e_i W_{ij}, \qquad
        e_i = \begin{cases} 1 & \text{float\_as\_event} \\ s_i & \text{otherwise} \end{cases}

    Parameters
    ----------
    in_size, out_size : int or tuple of int
        Presynaptic and postsynaptic sizes.
    weight : Initializer, quantity, number or tensor
        A matrix ``(n_pre, n_post)`` or a scalar (homogeneous), in nS, pA, mV or dimensionless.
    float_as_event : bool, default True
        Count any nonzero input as one event (the reference's semantics); ``False`` weights each
        active row by the input value.
    trainable : bool, default False
        Register the weight as an ``nn.Parameter``.
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    The active rows are gathered by the custom op
    :func:`torchbrain.ops.event_csr.event_dense_matvec` (``index_select`` of the rows with a
    nonzero input), so the cost grows with ``#events x n_post`` and ``torch.compile`` sees no data
    dependent shape. The gradient to the input is that of the weighted product,
    ``grad @ W^T``, in both modes (straight through the binarisation for ``float_as_event=True``,
    as surrogate-gradient training needs); the weight gradient is ``e^T grad``.

    References
    ----------
    brainstate.nn.EventLinear (brainstate 0.6.0).
    """

    def __init__(self, in_size, out_size, weight, float_as_event: bool = True,
                 trainable: bool = False, *, device=None, dtype=None):
        super().__init__(in_size, out_size, device=device, dtype=dtype)
        shape = (self.n_pre, self.n_post)
        w = self._tensor(weight, shape, "weight")
        self._check_shape(w, [(), shape], "weight")
        self.float_as_event = bool(float_as_event)
        self._store_weight(w, trainable)

    def _repr_config(self):
        return {**super()._repr_config(), "float_as_event": self.float_as_event}

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """``(..., n_pre)`` spikes (or graded events) to ``(..., n_post)``."""
        x = self._as_weight_dtype(spikes)
        if self.weight.ndim == 2:
            return event_dense_matvec(x, self.weight, self.float_as_event)
        events = x
        if self.float_as_event:
            # 0/1 events in the forward pass, the gradient of x passed straight through
            events = (x != 0).to(x.dtype) + (x - x.detach())
        total = events.sum(-1, keepdim=True)
        return (total * self.weight).expand(*x.shape[:-1], self.n_post)

    def to_dense(self) -> torch.Tensor:
        """The ``(n_pre, n_post)`` matrix (rows summed per event), detached."""
        return self.weight.detach().expand(self.n_pre, self.n_post).clone()
