r"""Loss functions for spiking classifiers and activity regularisation.

All functions take time-major outputs ``(T, B, C)`` by default (``time_major=False``:
``(B, T, C)``) and integer class targets ``(B,)``, and return a scalar (mean over the batch).

* :func:`spike_count_cross_entropy`: cross-entropy of the spike counts used as logits;
* :func:`rate_mse`: mean squared error between firing rates and target rates;
* :func:`membrane_cross_entropy`: cross-entropy of a membrane/readout trace reduced over time
  (max, mean or last step);
* :func:`firing_rate_regularizer`: penalties that keep hidden firing rates in a range.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "spike_count_cross_entropy",
    "rate_mse",
    "membrane_cross_entropy",
    "firing_rate_regularizer",
]


def _time_dim(y: torch.Tensor, time_major: bool, who: str, ndim: int | None = 3) -> int:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{who}: expected a tensor, got {type(y).__name__}")
    if ndim is not None and y.dim() != ndim:
        layout = "(T, B, C)" if time_major else "(B, T, C)"
        raise ValueError(f"{who}: expected outputs of shape {layout}, got {tuple(y.shape)}")
    return 0 if time_major else 1


def _check_target(target: torch.Tensor, batch: int, classes: int, who: str) -> None:
    if not isinstance(target, torch.Tensor) or target.dtype not in (
        torch.int64, torch.int32, torch.int16, torch.uint8
    ):
        raise TypeError(f"{who}: 'target' must be an integer tensor of class indices, got "
                        f"{getattr(target, 'dtype', type(target).__name__)}")
    if tuple(target.shape) != (batch,):
        raise ValueError(f"{who}: 'target' must have shape ({batch},), got "
                         f"{tuple(target.shape)}")


def spike_count_cross_entropy(
    spikes: torch.Tensor,
    target: torch.Tensor,
    *,
    scale: float = 1.0,
    time_major: bool = True,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    r"""Cross-entropy with the spike counts as logits.

    .. math::

        L = -\frac1B \sum_b \log \operatorname{softmax}\big(s\, n_{b}\big)_{y_b},
        \qquad n_{b,c} = \sum_t S_{t,b,c}

    Parameters
    ----------
    spikes : Tensor ``(T, B, C)``
        Output spikes.
    target : Tensor ``(B,)``
        Class indices.
    scale : float, default 1.0
        Multiplies the counts (a softmax temperature: counts grow with ``T``).
    time_major : bool, default True
    label_smoothing : float, default 0.0
        As in :func:`torch.nn.functional.cross_entropy`.
    """
    who = "spike_count_cross_entropy"
    dim = _time_dim(spikes, time_major, who)
    counts = spikes.sum(dim)
    _check_target(target, counts.shape[0], counts.shape[1], who)
    return F.cross_entropy(counts * scale, target.long(), label_smoothing=label_smoothing)


def rate_mse(
    spikes: torch.Tensor,
    target: torch.Tensor,
    *,
    on_rate: float = 1.0,
    off_rate: float = 0.0,
    time_major: bool = True,
) -> torch.Tensor:
    r"""Mean squared error between the firing rates (spikes per step) and target rates.

    .. math::

        L = \frac{1}{BC}\sum_{b,c} \big(\bar S_{b,c} - r_{b,c}\big)^2, \qquad
        \bar S_{b,c} = \frac1T \sum_t S_{t,b,c}

    Parameters
    ----------
    spikes : Tensor ``(T, B, C)``
    target : Tensor
        Class indices ``(B,)`` (the correct class should fire at ``on_rate``, the others at
        ``off_rate``), or target rates ``(B, C)`` (floating).
    on_rate, off_rate : float, default 1.0 and 0.0
        Target spikes per step of the correct and the other classes, in ``[0, 1]``.
    time_major : bool, default True
    """
    who = "rate_mse"
    dim = _time_dim(spikes, time_major, who)
    rates = spikes.mean(dim)
    if isinstance(target, torch.Tensor) and target.is_floating_point():
        if target.shape != rates.shape:
            raise ValueError(f"{who}: target rates must have shape {tuple(rates.shape)}, got "
                             f"{tuple(target.shape)}")
        goal = target.to(rates.dtype)
    else:
        _check_target(target, rates.shape[0], rates.shape[1], who)
        for name, r in (("on_rate", on_rate), ("off_rate", off_rate)):
            if not 0.0 <= r <= 1.0:
                raise ValueError(f"{who}: '{name}' must be in [0, 1] (spikes per step), got {r}")
        goal = torch.full_like(rates, off_rate)
        goal.scatter_(1, target.long().unsqueeze(1), on_rate)
    return F.mse_loss(rates, goal)


def membrane_cross_entropy(
    v: torch.Tensor,
    target: torch.Tensor,
    *,
    reduce: str = "max",
    time_major: bool = True,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    r"""Cross-entropy of a readout trace reduced over time.

    ``reduce='max'``: :math:`\max_t y_{t,b,c}` (Zenke & Vogels' max-over-time readout);
    ``'mean'``: :math:`\frac1T\sum_t y_{t,b,c}`; ``'last'``: :math:`y_{T,b,c}`.

    Parameters
    ----------
    v : Tensor ``(T, B, C)``
        Membrane potentials or leaky readout (e.g. :class:`~torchbrain.training.
        LeakyIntegratorReadout`).
    target : Tensor ``(B,)``
        Class indices.
    reduce : {'max', 'mean', 'last'}, default 'max'
    time_major : bool, default True
    label_smoothing : float, default 0.0
    """
    who = "membrane_cross_entropy"
    dim = _time_dim(v, time_major, who)
    if reduce == "max":
        logits = v.amax(dim)
    elif reduce == "mean":
        logits = v.mean(dim)
    elif reduce == "last":
        logits = v.select(dim, -1)
    else:
        raise ValueError(f"{who}: 'reduce' must be 'max', 'mean' or 'last', got {reduce!r}")
    _check_target(target, logits.shape[0], logits.shape[1], who)
    return F.cross_entropy(logits, target.long(), label_smoothing=label_smoothing)


def firing_rate_regularizer(
    spikes: torch.Tensor,
    *,
    lower: float | None = None,
    upper: float | None = None,
    target: float | None = None,
    time_major: bool = True,
) -> torch.Tensor:
    r"""Penalty that keeps firing rates (spikes per step) in a range.

    With :math:`r_i` the rate of neuron :math:`i` averaged over time and batch and
    :math:`\bar r` the population mean,

    .. math::

        L = \operatorname{mean}_i\big[(\text{lower} - r_i)_+^2\big]
          + (\bar r - \text{upper})_+^2
          + \operatorname{mean}_i\big[(r_i - \text{target})^2\big],

    each term present only when its bound is given: a per-neuron lower bound against silent
    neurons, a population upper bound against runaway activity (Zenke & Vogels 2021), and a
    per-neuron target rate.

    Parameters
    ----------
    spikes : Tensor ``(T, B, ...)``
        Spikes of one layer (any feature shape).
    lower, upper, target : float, optional
        Rates in spikes per step, in ``[0, 1]``. At least one must be given.
    time_major : bool, default True

    Returns
    -------
    Tensor
        A scalar; weight it and add it to the task loss.
    """
    who = "firing_rate_regularizer"
    if lower is None and upper is None and target is None:
        raise ValueError(f"{who}: give at least one of 'lower', 'upper', 'target'")
    for name, r in (("lower", lower), ("upper", upper), ("target", target)):
        if r is not None and not 0.0 <= r <= 1.0:
            raise ValueError(f"{who}: '{name}' must be in [0, 1] (spikes per step), got {r}")
    if not isinstance(spikes, torch.Tensor) or spikes.dim() < 2:
        raise ValueError(f"{who}: expected spikes of shape (T, B, ...), got "
                         f"{getattr(spikes, 'shape', type(spikes).__name__)}")
    rates = spikes.mean(dim=(0, 1))  # per neuron, over time and batch (either layout)
    loss = spikes.new_zeros(())
    if lower is not None:
        loss = loss + torch.relu(lower - rates).square().mean()
    if upper is not None:
        loss = loss + torch.relu(rates.mean() - upper).square()
    if target is not None:
        loss = loss + (rates - target).square().mean()
    return loss
