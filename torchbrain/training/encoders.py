r"""Spike encoders: turn static values or signals into spike trains of shape ``(T, ...)``.

* :func:`poisson_encode` (rate coding): at every step each input fires with probability equal
  to its (clipped) intensity;
* :func:`latency_encode` (time-to-first-spike): each input fires once, earlier the stronger it
  is;
* :func:`delta_encode` (change coding): a signal over time fires where it changes by more than
  a threshold.

Outputs are time-major ``(T, *x.shape)`` by default (``time_major=False`` puts time after the
first, batch, dimension) and have ``x``'s floating dtype (0/1, or -1/0/1 for signed deltas).
They carry no gradient: encoders are part of the data pipeline.
"""

from __future__ import annotations

import math

import torch

__all__ = ["poisson_encode", "latency_encode", "delta_encode"]


def _check_x(x, who: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who}: 'x' must be a tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{who}: 'x' must be a floating tensor, got {x.dtype}; e.g. "
                        "x.float() / x.max()")
    return x


def _check_steps(T, who: str) -> int:
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"{who}: 'T' (number of time steps) must be a positive int, got {T!r}")
    return T


def _layout(y: torch.Tensor, time_major: bool) -> torch.Tensor:
    return y if time_major or y.dim() < 2 else y.transpose(0, 1)


def poisson_encode(
    x: torch.Tensor,
    T: int,
    generator: torch.Generator | None = None,
    *,
    scale: float = 1.0,
    time_major: bool = True,
) -> torch.Tensor:
    r"""Rate (Bernoulli/Poisson) coding: ``spike[t, i] = 1`` with probability ``scale * x[i]``.

    .. math::

        P(S_{t,i} = 1) = \mathrm{clip}(\text{scale}\cdot x_i, 0, 1)
        \quad\text{independently for every } t

    (a Poisson process of rate ``scale * x / dt`` sampled in steps of ``dt``).

    Parameters
    ----------
    x : Tensor
        Intensities, normally in ``[0, 1]`` (e.g. pixels divided by their maximum).
    T : int
        Number of time steps.
    generator : torch.Generator, optional
        For reproducible spike trains.
    scale : float, default 1.0
        Probability per step of an input of intensity 1 (the maximum rate times ``dt``).
    time_major : bool, default True
        ``(T, *x.shape)``; ``False``: ``(B, T, ...)``.

    Raises
    ------
    ValueError
        When ``x`` has values outside ``[0, 1]`` (after scaling, beyond rounding) or NaN.
    """
    who = "poisson_encode"
    x = _check_x(x, who)
    T = _check_steps(T, who)
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale >= 0):
        raise ValueError(f"{who}: 'scale' must be a finite number >= 0, got {scale!r}")
    p = (x.detach() * scale)
    with torch.no_grad():
        if torch.isnan(p).any():
            raise ValueError(f"{who}: 'x' contains NaN")
        lo, hi = p.min().item() if p.numel() else 0.0, p.max().item() if p.numel() else 0.0
    tol = 1e-6
    if lo < -tol or hi > 1 + tol:
        raise ValueError(f"{who}: probabilities scale * x must lie in [0, 1], got values in "
                         f"[{lo:g}, {hi:g}]; normalise x first (e.g. x / x.max())")
    p = p.clamp(0.0, 1.0)
    u = torch.rand((T, *x.shape), generator=generator, dtype=x.dtype, device=x.device)
    return _layout((u < p).to(x.dtype), time_major)


def latency_encode(
    x: torch.Tensor,
    T: int,
    *,
    method: str = "linear",
    tau: float = 5.0,
    threshold: float = 0.01,
    normalize: bool = True,
    time_major: bool = True,
) -> torch.Tensor:
    r"""Latency (time-to-first-spike) coding: every input above ``threshold`` spikes once.

    ``'linear'``: the spike step is :math:`t_i = \mathrm{round}((1 - x_i)(T - 1))`, so ``x = 1``
    fires at step 0 and ``x = 0`` at the last step. ``'log'``: the time an RC circuit of time
    constant ``tau`` (in steps) driven by ``x`` needs to charge to ``threshold``,
    :math:`t_i = \tau \ln\frac{x_i}{x_i - \text{threshold}}`, then, with ``normalize``, scaled
    so that the largest finite latency is ``T - 1`` (otherwise clipped at ``T - 1``). Inputs
    ``<= threshold`` never spike.

    Parameters
    ----------
    x : Tensor
        Intensities in ``[0, 1]``.
    T : int
        Number of time steps.
    method : {'linear', 'log'}, default 'linear'
    tau : float, default 5.0
        RC time constant in steps (``'log'`` only), > 0.
    threshold : float, default 0.01
        Inputs at or below it emit no spike; in ``[0, 1)``.
    normalize : bool, default True
        ``'log'`` only: stretch the latencies over ``[0, T - 1]``.
    time_major : bool, default True
    """
    who = "latency_encode"
    x = _check_x(x, who)
    T = _check_steps(T, who)
    if method not in ("linear", "log"):
        raise ValueError(f"{who}: 'method' must be 'linear' or 'log', got {method!r}")
    if not (0.0 <= threshold < 1.0):
        raise ValueError(f"{who}: 'threshold' must be in [0, 1), got {threshold!r}")
    if not tau > 0:
        raise ValueError(f"{who}: 'tau' must be > 0, got {tau!r}")
    x = x.detach()
    with torch.no_grad():
        if x.numel() and (torch.isnan(x).any() or x.min() < 0 or x.max() > 1):
            raise ValueError(f"{who}: 'x' must lie in [0, 1] (normalise it first)")
        fires = x > threshold
        if method == "linear":
            t = torch.round((1.0 - x) * (T - 1))
        else:
            safe = torch.where(fires, x, torch.ones_like(x))
            t = tau * torch.log(safe / (safe - threshold))
            if normalize:
                finite = t[fires]
                top = finite.max() if finite.numel() else torch.ones((), dtype=x.dtype)
                t = t * ((T - 1) / top.clamp_min(torch.finfo(x.dtype).tiny))
            t = torch.round(t).clamp(0, T - 1)
        steps = torch.arange(T, dtype=x.dtype, device=x.device).view(T, *([1] * x.dim()))
        out = ((steps == t) & fires).to(x.dtype)
    return _layout(out, time_major)


def delta_encode(
    x: torch.Tensor,
    threshold: float = 0.1,
    *,
    off_spikes: bool = False,
    initial: torch.Tensor | float | None = None,
    time_major: bool = True,
) -> torch.Tensor:
    r"""Delta (change) coding of a signal over time.

    .. math::

        S_t = \begin{cases} 1 & x_t - x_{t-1} \ge \theta \\
                            -1 & x_t - x_{t-1} \le -\theta \text{ (with } \texttt{off\_spikes)} \\
                            0 & \text{otherwise} \end{cases}

    Parameters
    ----------
    x : Tensor, shape ``(T, ...)`` (``(B, T, ...)`` when ``time_major=False``)
        The signal.
    threshold : float, default 0.1
        Change that triggers a spike (> 0).
    off_spikes : bool, default False
        Also emit ``-1`` for decreases.
    initial : Tensor or float, optional
        The value before the first step, :math:`x_{-1}`; default ``x_0`` (no spike at step 0).
    time_major : bool, default True

    Returns
    -------
    Tensor
        Same shape as ``x``.
    """
    who = "delta_encode"
    x = _check_x(x, who)
    if not threshold > 0:
        raise ValueError(f"{who}: 'threshold' must be > 0, got {threshold!r}")
    if x.dim() < 1 or (not time_major and x.dim() < 2):
        raise ValueError(f"{who}: 'x' needs a time dimension, got shape {tuple(x.shape)}")
    x = x.detach()
    if not time_major:
        x = x.transpose(0, 1)
    with torch.no_grad():
        if initial is None:
            prev0 = x[:1]
        else:
            prev0 = torch.as_tensor(initial, dtype=x.dtype, device=x.device).expand_as(x[0])
            prev0 = prev0.unsqueeze(0)
        diff = x - torch.cat([prev0, x[:-1]])
        out = (diff >= threshold).to(x.dtype)
        if off_spikes:
            out = out - (diff <= -threshold).to(x.dtype)
    return _layout(out, time_major)
