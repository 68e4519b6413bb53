"""Spike-train analysis: firing rates, rasters, ISI statistics, Fano factor, correlations, spectra.

Every function is a plain torch function of recorded tensors; nothing here touches a module.

Layout of the inputs
--------------------
Spikes are tensors of shape ``(T, N)`` or ``(T, *batch, N)``: time first (as
:func:`torchbrain.drivers.loops.for_loop` stacks them), neurons last, any number of batch dimensions
in between. Values are 0/1 (bool, int or float); for the rates they are summed, so a float
``2.0`` counts as two spikes, while the spike-time statistics (raster, ISI, CV) treat any
non-zero entry as one spike.

Units
-----
``dt`` and other durations accept a pint quantity (``0.1 * u.ms``) or a number in ms (torchbrain's
canonical time unit); with ``dt=None`` the time step of :mod:`torchbrain.environ` is used. Results
are plain tensors in canonical units for analysis: **Hz** for rates (not torchbrain's internal
``1/ms``: rates are read by people, and every spiking paper quotes Hz), **ms** for times and
intervals, **Hz** for frequencies.

Autograd
--------
:func:`firing_rate`, :func:`mean_rate`, :func:`neuron_rates`, :func:`windowed_rates` and
:func:`van_rossum_distance` are differentiable (useful as rate regularisers or losses with
surrogate-gradient spikes). The spike-time statistics are computed on detached values.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from . import environ
from .units import is_quantity, to_canonical

__all__ = [
    "PerNeuronStat",
    "firing_rate",
    "mean_rate",
    "neuron_rates",
    "windowed_rates",
    "raster",
    "isi",
    "isi_cv",
    "fano_factor",
    "cross_correlation",
    "power_spectrum",
    "van_rossum_distance",
]


class PerNeuronStat(NamedTuple):
    """A statistic per neuron and its mean over the neurons where it is defined.

    Attributes
    ----------
    per_neuron : torch.Tensor
        Shape ``(*batch, N)``; NaN where the statistic is undefined for that neuron.
    mean : torch.Tensor
        Shape ``(*batch)`` (0-d without batch): the mean over the neurons where ``per_neuron`` is
        not NaN; NaN when it is NaN for every neuron.
    """

    per_neuron: torch.Tensor
    mean: torch.Tensor


# ------------------------------------------------------------------------------------- helpers
def _scalar_ms(value: Any, who: str, name: str) -> float:
    """A positive duration in ms as a float (quantity or number in ms)."""
    value = to_canonical(value, "ms", owner=who, name=name)
    if isinstance(value, torch.Tensor | np.ndarray):
        size = value.numel() if isinstance(value, torch.Tensor) else value.size
        if size != 1:
            raise ValueError(f"{who}: '{name}' must be a scalar duration, got shape "
                             f"{tuple(value.shape)}")
        value = value.item()
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: '{name}' must be a duration (a quantity or a number in ms), "
                        f"got {type(value).__name__}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{who}: '{name}' must be a positive finite duration, got {value} ms")
    return value


def _dt_ms(dt: Any, who: str) -> float:
    if dt is None:
        return environ.get_dt_value(desc=who)
    return _scalar_ms(dt, who, "dt")


def _as_spikes(spikes: Any, who: str, name: str = "spikes", keep_bool: bool = False
               ) -> torch.Tensor:
    """A floating tensor of shape ``(T, *batch, N)`` (``bool`` left as is with ``keep_bool``)."""
    if is_quantity(spikes):
        raise TypeError(f"{who}: '{name}' must be a tensor of 0/1 spikes, got a quantity")
    if not isinstance(spikes, torch.Tensor):
        spikes = torch.as_tensor(np.asarray(spikes))
    if spikes.ndim < 2:
        raise ValueError(f"{who}: '{name}' must have shape (T, N) or (T, *batch, N) with time "
                         f"first and neurons last, got shape {tuple(spikes.shape)}")
    if spikes.shape[0] == 0:
        raise ValueError(f"{who}: '{name}' has no time steps (shape {tuple(spikes.shape)})")
    if not spikes.is_floating_point() and not (keep_bool and spikes.dtype == torch.bool):
        spikes = spikes.to(torch.get_default_dtype())
    return spikes


def _acc_dtype(device: torch.device) -> torch.dtype:
    # Statistics are accumulated in float64 (exact integer step counts, no cancellation in the
    # variances); MPS has no float64.
    return torch.float32 if device.type == "mps" else torch.float64


def _positive_int(value: Any, who: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{who}: '{name}' must be a positive int (a number of time steps), "
                         f"got {value!r}")
    return int(value)


def _steps(duration: Any, dt: float, who: str, name: str) -> int:
    """A duration rounded to a whole number (>= 1) of steps."""
    n = round(_scalar_ms(duration, who, name) / dt)
    if n < 1:
        raise ValueError(f"{who}: '{name}' is shorter than half a time step (dt = {dt} ms)")
    return n


def _bin(x: torch.Tensor, steps: int, who: str, min_bins: int = 1) -> torch.Tensor:
    """Sum ``x`` (T, ...) over consecutive bins of ``steps``; a trailing partial bin is dropped."""
    n = x.shape[0] // steps
    if n < min_bins:
        raise ValueError(f"{who}: {x.shape[0]} time steps make {n} bin(s) of {steps} steps; at "
                         f"least {min_bins} needed")
    return x[: n * steps].reshape(n, steps, *x.shape[1:]).sum(1)


# --------------------------------------------------------------------------------------- rates
def firing_rate(spikes: Any, dt: Any = None, width: Any = None) -> torch.Tensor:
    """Population firing rate over time, in Hz.

    .. math::

        r(t_k) = \\frac{1}{N\\,\\Delta t} \\sum_{i=1}^{N} s_i(t_k),

    optionally smoothed with a centred rectangular window of ``w`` steps:
    :math:`\\bar r(t_k) = \\frac{1}{w} \\sum_{|j| \\le (w-1)/2} r(t_{k+j})`.

    Parameters
    ----------
    spikes : tensor, shape ``(T, *batch, N)``
        Spikes (0/1), time first, neurons last.
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.
    width : quantity or float, optional
        Width of the smoothing window (ms when a number). The window spans
        ``w = 2 * floor(width / (2 dt)) + 1`` steps (odd, so that it is centred), as in
        ``braintools.metric.firing_rate``. ``None`` (default) or a width below ``2 dt`` gives the
        unsmoothed rate.

    Returns
    -------
    torch.Tensor, shape ``(T, *batch)``
        Rate in Hz, same dtype and device as the (floating) spikes.

    Notes
    -----
    Edges are zero-padded (``mode='same'`` convolution), so the first and last ``(w-1)/2`` steps
    see part of the window empty and read low, as in the reference. Unlike the reference, which
    divides the window sum by ``width`` although the window lasts ``w * dt`` (a bias of
    ``w dt / width``, e.g. +2 % for 5 ms at dt = 0.1 ms), the window here is normalised by its
    actual length, so that a constant rate is returned unchanged. The window length is computed
    with a small tolerance so that ``5 ms / 0.1 ms`` gives 51 steps, not 49 as
    ``int(5 / 2 / 0.1) = 24`` would in floating point.
    """
    who = "firing_rate"
    s = _as_spikes(spikes, who)
    dt = _dt_ms(dt, who)
    return _box_smooth(s.mean(dim=-1) * (1000.0 / dt), dt, width, who)


def _box_smooth(rate: torch.Tensor, dt: float, width: Any, who: str) -> torch.Tensor:
    """``rate`` (T, *batch) smoothed over time as :func:`firing_rate` describes."""
    if width is None:
        return rate
    half = math.floor(_scalar_ms(width, who, "width") / (2.0 * dt) + 1e-9)
    if half == 0:
        return rate
    w = 2 * half + 1
    T = rate.shape[0]
    x = rate.reshape(T, -1).T.unsqueeze(1)  # (batch, 1, T)
    kernel = torch.full((1, 1, w), 1.0 / w, dtype=rate.dtype, device=rate.device)
    smoothed = F.conv1d(x, kernel, padding=half)
    return smoothed.squeeze(1).T.reshape(rate.shape)


def neuron_rates(spikes: Any, dt: Any = None) -> torch.Tensor:
    """Mean firing rate of each neuron over the whole recording, in Hz.

    Parameters
    ----------
    spikes : tensor, shape ``(T, *batch, N)``
        Spikes (0/1).
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.

    Returns
    -------
    torch.Tensor, shape ``(*batch, N)``
        ``spike count / (T dt)`` in Hz.
    """
    who = "neuron_rates"
    s = _as_spikes(spikes, who)
    dt = _dt_ms(dt, who)
    return s.sum(0) * (1000.0 / (s.shape[0] * dt))


def mean_rate(spikes: Any, dt: Any = None) -> torch.Tensor:
    """Mean firing rate of the population (all neurons, whole recording), in Hz.

    Parameters
    ----------
    spikes : tensor, shape ``(T, *batch, N)``
        Spikes (0/1).
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.

    Returns
    -------
    torch.Tensor, shape ``(*batch)``
        0-d without batch (``float(mean_rate(...))`` gives a number).
    """
    who = "mean_rate"
    s = _as_spikes(spikes, who)
    dt = _dt_ms(dt, who)
    return s.mean(dim=(0, -1)) * (1000.0 / dt)


def windowed_rates(spikes: Any, dt: Any = None, window: Any = 100.0) -> torch.Tensor:
    """Firing rate of each neuron in consecutive, non-overlapping windows, in Hz.

    Parameters
    ----------
    spikes : tensor, shape ``(T, *batch, N)``
        Spikes (0/1).
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.
    window : quantity or float, default 100 ms
        Window length (ms when a number), rounded to a whole number ``w`` of steps; the rates
        use the rounded length ``w dt``.

    Returns
    -------
    torch.Tensor, shape ``(T // w, *batch, N)``
        Window ``j`` covers steps ``[j w, (j + 1) w)``, i.e. starts at ``j w dt`` ms. A trailing
        partial window is dropped. The population rate per window is ``.mean(-1)``.
    """
    who = "windowed_rates"
    s = _as_spikes(spikes, who)
    dt = _dt_ms(dt, who)
    w = _steps(window, dt, who, "window")
    return _bin(s, w, who) * (1000.0 / (w * dt))


# ---------------------------------------------------------------------------------- spike times
def _time_dtype(device: torch.device) -> torch.dtype:
    # float64 keeps spike times of long runs exact to well below dt (float32 resolves 0.06 ms
    # at 10^6 ms); MPS has no float64.
    return torch.float32 if device.type == "mps" else torch.float64


def raster(spikes: Any, dt: Any = None, t0: Any = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike times and neuron indices of every spike, for raster plots.

    Parameters
    ----------
    spikes : tensor, shape ``(T, N)``
        Spikes of one trial (select a batch element first: ``spikes[:, b]``). Any non-zero entry
        is a spike.
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.
    t0 : quantity or float, default 0
        Time of step 0 (ms when a number); step ``k`` is at ``t0 + k dt``, the convention of
        :func:`torchbrain.drivers.loops.time_range`.

    Returns
    -------
    times : torch.Tensor, shape ``(n_spikes,)``
        Spike times in ms (float64; float32 on MPS), sorted by time then neuron.
    neurons : torch.Tensor, shape ``(n_spikes,)``
        Neuron indices (int64).
    """
    who = "raster"
    # a bool record is searched as it is: a float copy would cost 4-8x its size
    s = _as_spikes(spikes, who, keep_bool=True)
    if s.ndim != 2:
        raise ValueError(f"raster: 'spikes' must have shape (T, N) (one trial), got shape "
                         f"{tuple(s.shape)}; select a batch element, e.g. spikes[:, 0]")
    dt = _dt_ms(dt, who)
    t0 = float(to_canonical(t0, "ms", owner=who, name="t0"))
    idx = torch.nonzero(s.detach() != 0)
    times = idx[:, 0].to(_time_dtype(s.device)) * dt + t0
    return times, idx[:, 1]


def _intervals(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Inter-spike intervals in steps and the (flattened) neuron each belongs to."""
    T = s.shape[0]
    flat = s.detach().reshape(T, -1)
    # nonzero of the transposed view is ordered by neuron, then by time
    nz = torch.nonzero(flat.T != 0)
    neuron, step = nz[:, 0], nz[:, 1]
    same = neuron[1:] == neuron[:-1]
    return (step[1:] - step[:-1])[same], neuron[1:][same], flat.shape[1]


def isi(spikes: Any, dt: Any = None) -> list[torch.Tensor]:
    """Inter-spike intervals of every neuron, in ms.

    Parameters
    ----------
    spikes : tensor, shape ``(T, *batch, N)``
        Spikes; any non-zero entry is one spike.
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.

    Returns
    -------
    list of torch.Tensor
        One 1-D tensor of intervals (ms, float64; float32 on MPS) per neuron, in the order of
        ``spikes.reshape(T, -1)`` columns (batch-major: index ``b * N + i``). Neurons with fewer
        than two spikes get an empty tensor.
    """
    who = "isi"
    s = _as_spikes(spikes, who)
    dt = _dt_ms(dt, who)
    d, owner, m = _intervals(s)
    counts = torch.bincount(owner, minlength=m).tolist()
    return list(torch.split(d.to(_time_dtype(s.device)) * dt, counts))


def _nanmean_last(x: torch.Tensor) -> torch.Tensor:
    valid = ~torch.isnan(x)
    n = valid.sum(-1)
    total = torch.where(valid, x, torch.zeros((), dtype=x.dtype, device=x.device)).sum(-1)
    return torch.where(n > 0, total / n.clamp(min=1), torch.full_like(total, float("nan")))


def isi_cv(spikes: Any, dt: Any = None) -> PerNeuronStat:
    """Coefficient of variation of the inter-spike intervals, per neuron and averaged.

    .. math::

        \\mathrm{CV}_i = \\frac{\\sigma(\\mathrm{ISI}_i)}{\\langle \\mathrm{ISI}_i \\rangle}

    with the population standard deviation (``ddof=0``, as ``numpy.std``). 0 for a perfectly
    regular train, 1 for a Poisson process.

    Parameters
    ----------
    spikes : tensor, shape ``(T, *batch, N)``
        Spikes; any non-zero entry is one spike.
    dt : quantity or float, optional
        Accepted for symmetry with the other functions and validated when given; the CV is a
        ratio of durations and does not depend on it.

    Returns
    -------
    PerNeuronStat
        ``per_neuron`` of shape ``(*batch, N)``, **NaN for neurons with fewer than 3 spikes**
        (two intervals are the fewest that have a spread), and ``mean``, the average over the
        neurons where it is defined (NaN when none is), of shape ``(*batch)``.
    """
    who = "isi_cv"
    s = _as_spikes(spikes, who)
    if dt is not None:
        _dt_ms(dt, who)
    acc = _acc_dtype(s.device)
    d, owner, m = _intervals(s)
    d = d.to(acc)
    n = torch.bincount(owner, minlength=m).to(acc)
    mean = torch.bincount(owner, weights=d, minlength=m) / n.clamp(min=1)
    # two-pass variance: no cancellation
    var = torch.bincount(owner, weights=(d - mean[owner]) ** 2, minlength=m) / n.clamp(min=1)
    cv = torch.where(n >= 2, var.sqrt() / mean.clamp(min=1), torch.full_like(var, float("nan")))
    cv = cv.reshape(s.shape[1:]).to(s.dtype)
    return PerNeuronStat(cv, _nanmean_last(cv))


def fano_factor(spikes: Any, window_steps: int) -> PerNeuronStat:
    """Fano factor of the spike counts in consecutive windows, per neuron and averaged.

    .. math::

        F_i = \\frac{\\operatorname{Var}_j(n_{ij})}{\\operatorname{E}_j(n_{ij})},

    where :math:`n_{ij}` is the count of neuron ``i`` in window ``j`` (population variance,
    ``ddof=0``). 1 for a Poisson process, 0 for a regular train whose period divides the window.

    Parameters
    ----------
    spikes : tensor, shape ``(T, *batch, N)``
        Spikes (0/1; summed).
    window_steps : int
        Window length in time steps; ``T // window_steps >= 2`` windows are needed, a trailing
        partial window is dropped.

    Returns
    -------
    PerNeuronStat
        ``per_neuron`` of shape ``(*batch, N)``, NaN for neurons that never spike, and ``mean``
        over the other neurons, of shape ``(*batch)``.
    """
    who = "fano_factor"
    s = _as_spikes(spikes, who)
    w = _positive_int(window_steps, who, "window_steps")
    counts = _bin(s.detach().to(_acc_dtype(s.device)), w, who, min_bins=2)
    mean = counts.mean(0)
    var = counts.var(0, correction=0)
    ff = torch.where(mean > 0, var / mean.clamp(min=1e-300), torch.full_like(mean, float("nan")))
    ff = ff.to(s.dtype)
    return PerNeuronStat(ff, _nanmean_last(ff))


# -------------------------------------------------------------------------------- correlations
def _lagged_products(x: torch.Tensor, y: torch.Tensor, max_lag: int) -> torch.Tensor:
    """``c[k] = mean_t x[t] y[t + k]`` over the overlap, for ``k = -max_lag .. max_lag``."""
    n = x.shape[0]
    nfft = 1 << (2 * n - 1).bit_length()
    r = torch.fft.irfft(torch.fft.rfft(x, nfft, dim=0).conj() * torch.fft.rfft(y, nfft, dim=0),
                        nfft, dim=0)
    lags = torch.arange(-max_lag, max_lag + 1, device=x.device)
    overlap = (n - lags.abs()).to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
    return r[lags % nfft] / overlap


def _standardise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-mean, unit-variance along dim 0; constant series become 0 and are flagged."""
    xc = x - x.mean(0)
    std = xc.pow(2).mean(0).sqrt()
    ok = std > 0
    return torch.where(ok, xc / torch.where(ok, std, torch.ones_like(std)), 0.0), ok


def cross_correlation(
    spikes_a: Any,
    spikes_b: Any,
    bin_steps: int = 1,
    max_lag: int | None = None,
    *,
    mode: str = "population",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised cross-correlation of two spike populations as a function of the lag.

    The spikes are first summed in bins of ``bin_steps`` steps. Then, for lags
    ``k = -max_lag .. max_lag`` (in bins),

    .. math::

        C(k) = \\frac{1}{n - |k|} \\sum_{t} z_a(t)\\, z_b(t + k),

    where :math:`z` is a binned series standardised to zero mean and unit variance over the whole
    recording. A positive peak lag means that ``b`` follows ``a``. ``C(0) = 1`` for identical
    series; for uncorrelated ones ``C`` is near 0.

    Parameters
    ----------
    spikes_a, spikes_b : tensor, shape ``(T, *batch, N_a)`` and ``(T, *batch, N_b)``
        Spikes (0/1) with the same ``T`` and batch shape; ``N_a`` and ``N_b`` may differ.
    bin_steps : int, default 1
        Bin width in time steps; a trailing partial bin is dropped.
    max_lag : int, optional
        Largest lag in bins; default and maximum ``n_bins - 1``.
    mode : {'population', 'pairwise'}
        ``'population'``: ``z_a`` and ``z_b`` are the standardised population counts (sum over
        neurons): the correlation of the two population activities. ``'pairwise'``: the average
        over all pairs ``(i, j)`` of the correlations of single-neuron trains ``z_{a,i}`` and
        ``z_{b,j}``, computed at the cost of one correlation through
        :math:`\\sum_{ij} z_{a,i} \\star z_{b,j} = (\\sum_i z_{a,i}) \\star (\\sum_j z_{b,j})`;
        neurons whose binned train is constant (silent) have no defined correlation and are left
        out of the average.

    Returns
    -------
    lags : torch.Tensor, shape ``(2 max_lag + 1,)``
        Lags in bins (int64); in ms: ``lags * bin_steps * dt``.
    cc : torch.Tensor, shape ``(2 max_lag + 1, *batch)``
        The correlation at each lag (NaN when a population, or every neuron of one side in
        ``'pairwise'`` mode, has constant activity).
    """
    who = "cross_correlation"
    a = _as_spikes(spikes_a, who, "spikes_a")
    b = _as_spikes(spikes_b, who, "spikes_b")
    if a.shape[:-1] != b.shape[:-1]:
        raise ValueError(f"{who}: 'spikes_a' and 'spikes_b' must share T and the batch shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    if mode not in ("population", "pairwise"):
        raise ValueError(f"{who}: 'mode' must be 'population' or 'pairwise', got {mode!r}")
    w = _positive_int(bin_steps, who, "bin_steps")
    acc = _acc_dtype(a.device)
    xa = _bin(a.detach().to(acc), w, who, min_bins=2)
    xb = _bin(b.detach().to(acc), w, who, min_bins=2)
    n = xa.shape[0]
    if max_lag is None:
        max_lag = n - 1
    if isinstance(max_lag, bool) or not isinstance(max_lag, int | np.integer) or not (
        0 <= max_lag <= n - 1
    ):
        raise ValueError(f"{who}: 'max_lag' must be an int in [0, {n - 1}] (bins), got "
                         f"{max_lag!r}")
    max_lag = int(max_lag)
    nan = torch.tensor(float("nan"), dtype=acc, device=a.device)
    if mode == "population":
        za, oka = _standardise(xa.sum(-1))
        zb, okb = _standardise(xb.sum(-1))
        cc = torch.where(oka & okb, _lagged_products(za, zb, max_lag), nan)
    else:
        za, oka = _standardise(xa)
        zb, okb = _standardise(xb)
        pairs = (oka.sum(-1) * okb.sum(-1)).to(acc)
        cc = _lagged_products(za.sum(-1), zb.sum(-1), max_lag)
        cc = torch.where(pairs > 0, cc / pairs.clamp(min=1), nan)
    lags = torch.arange(-max_lag, max_lag + 1, device=a.device)
    return lags, cc.to(a.dtype)


# ------------------------------------------------------------------------------------- spectra
def power_spectrum(
    x: Any, dt: Any = None, *, is_spikes: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One-sided power spectral density of population activity or of a signal.

    The series :math:`x_t` (``n`` steps) is mean-subtracted and transformed with
    ``torch.fft.rfft``; the density is the periodogram

    .. math::

        P(f_k) = c_k \\frac{\\Delta t}{n} \\left| \\sum_t (x_t - \\bar x)
                 e^{-2\\pi i k t / n} \\right|^2,
        \\qquad f_k = \\frac{k}{n \\Delta t},

    with :math:`c_k = 2` for the frequencies that stand for a ± pair and 1 at 0 Hz and at the
    Nyquist frequency, so that :math:`\\sum_k P(f_k)\\,\\Delta f` equals the variance of
    :math:`x` (Parseval; :math:`\\Delta f = 1/(n \\Delta t)`).

    Parameters
    ----------
    x : tensor
        Spikes of shape ``(T, *batch, N)``, whose population rate (:func:`firing_rate`, Hz) is
        analysed, or a signal of shape ``(T,)`` or ``(T, *batch)`` (any unit, e.g. an LFP proxy).
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.
    is_spikes : bool, optional
        Whether ``x`` holds spikes. Default: ``True`` for 2-D and higher inputs, ``False`` for
        1-D ones; pass ``False`` for a batched signal.

    Returns
    -------
    freqs : torch.Tensor, shape ``(T // 2 + 1,)``
        Frequencies in Hz.
    power : torch.Tensor, shape ``(T // 2 + 1, *batch)``
        Density in (unit of x)² / Hz, i.e. Hz²/Hz = Hz for spikes. The 0 Hz value is 0 up to
        rounding (the mean is removed).
    """
    who = "power_spectrum"
    if is_quantity(x):
        raise TypeError(f"{who}: pass the magnitude of a quantity signal (e.g. "
                        "x.to('mV').magnitude), not the quantity")
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if is_spikes is None:
        is_spikes = x.ndim >= 2
    dt = _dt_ms(dt, who)
    if is_spikes:
        sig = firing_rate(x, dt)
    else:
        if x.ndim < 1 or x.shape[0] < 2:
            raise ValueError(f"{who}: a signal needs a time dimension of at least 2 steps, got "
                             f"shape {tuple(x.shape)}")
        sig = x if x.is_floating_point() else x.to(torch.get_default_dtype())
    out_dtype = sig.dtype
    sig = sig.detach().to(_acc_dtype(sig.device))
    n = sig.shape[0]
    dt_s = dt / 1000.0
    spec = torch.fft.rfft(sig - sig.mean(0), dim=0)
    power = spec.abs() ** 2 * (dt_s / n)
    weight = torch.full((power.shape[0],), 2.0, dtype=power.dtype, device=power.device)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    power = power * weight.reshape(-1, *([1] * (power.ndim - 1)))
    freqs = torch.fft.rfftfreq(n, d=dt_s, dtype=power.dtype, device=power.device)
    return freqs.to(out_dtype), power.to(out_dtype)


def van_rossum_distance(
    spikes_a: Any, spikes_b: Any, dt: Any = None, *, tau: Any
) -> torch.Tensor:
    """Van Rossum distance between two spike trains, neuron by neuron.

    Each train is filtered with a causal exponential kernel,
    :math:`f(t) = \\sum_s e^{-(t - t_s)/\\tau}\\,\\Theta(t - t_s)`, and

    .. math::

        D = \\sqrt{\\frac{1}{\\tau} \\int_0^{\\infty} (f_a(t) - f_b(t))^2 \\, dt}.

    The integral is evaluated exactly for spikes at the grid times ``k dt`` (between grid points
    the filtered difference decays exactly exponentially) and runs to infinity, past the end of
    the recording, as in van Rossum (2001). A single unmatched spike gives
    :math:`D = 1/\\sqrt{2}`.

    Parameters
    ----------
    spikes_a, spikes_b : tensor, shape ``(T, *batch, N)``
        Spike trains of the same shape (0/1; a value 2 is two spikes in one step).
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.
    tau : quantity or float
        Kernel time constant (ms when a number).

    Returns
    -------
    torch.Tensor, shape ``(*batch, N)``
        Dimensionless distances; differentiable with respect to the spike tensors.

    References
    ----------
    M. C. W. van Rossum, "A novel spike distance", Neural Computation 13, 751-763 (2001).
    """
    who = "van_rossum_distance"
    a = _as_spikes(spikes_a, who, "spikes_a")
    b = _as_spikes(spikes_b, who, "spikes_b")
    if a.shape != b.shape:
        raise ValueError(f"{who}: 'spikes_a' and 'spikes_b' must have the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    dt = _dt_ms(dt, who)
    tau = _scalar_ms(tau, who, "tau")
    out_dtype = torch.promote_types(a.dtype, b.dtype)
    acc = _acc_dtype(a.device)
    d = (a.to(acc) - b.to(acc))
    T = d.shape[0]
    r = math.exp(-dt / tau)
    kernel = r ** torch.arange(T, dtype=acc, device=d.device)
    nfft = 1 << (2 * T - 1).bit_length()
    kf = torch.fft.rfft(kernel, nfft).reshape(-1, *([1] * (d.ndim - 1)))
    f = torch.fft.irfft(torch.fft.rfft(d, nfft, dim=0) * kf, nfft, dim=0)[:T]
    # (1/tau) * integral of (f_k r^(s/dt))^2 over one step = f_k^2 (1 - r^2) / 2; the tail after
    # the last step adds f_{T-1}^2 r^2 / 2.
    d2 = 0.5 * (1.0 - r * r) * (f * f).sum(0) + 0.5 * r * r * f[-1] ** 2
    return d2.clamp(min=0).sqrt().to(out_dtype)
