"""Figures of spiking activity: raster, population rate, voltage traces.

matplotlib is an optional dependency (``pip install torchbrain[dev]`` or ``pip install
matplotlib``); it is imported when a function here is first called. Without a display (no
``DISPLAY``/``WAYLAND_DISPLAY`` on Linux, no ``MPLBACKEND`` set, no IPython kernel and pyplot
not yet imported) the non-interactive ``Agg`` backend is selected, so the functions work on
clusters and in CI; figures are then saved with ``fig.savefig(path)``.

Every function takes ``ax=None`` (a new figure is made) or an existing ``Axes`` and returns the
``Axes`` it drew on (:func:`raster_and_rate` returns the ``Figure``). Times are in ms.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import torch

from . import analysis
from .units import is_quantity, to_canonical

__all__ = ["raster", "rate", "voltage", "raster_and_rate"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("torchbrain.plot needs matplotlib: pip install matplotlib") from None
    headless = (
        sys.platform.startswith("linux")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    )
    if (headless and "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in sys.modules
            and "ipykernel" not in sys.modules):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _axes(ax):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots()
    return ax


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float64).numpy()


def raster(
    spikes: Any,
    dt: Any = None,
    ax: Any = None,
    *,
    t0: Any = 0.0,
    color: str = "k",
    markersize: float = 2.0,
    marker: str = ".",
    **scatter_kwargs: Any,
):
    """Spike raster: one dot per spike at (time, neuron index).

    Parameters
    ----------
    spikes : tensor, shape ``(T, N)``
        Spikes of one trial (see :func:`torchbrain.analysis.raster`).
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.
    t0 : quantity or float, default 0
        Time of step 0 (ms when a number).
    color, markersize, marker
        Passed to ``Axes.scatter`` (``markersize`` as its ``s``, in points²).
    **scatter_kwargs
        Further ``Axes.scatter`` arguments.

    Returns
    -------
    matplotlib.axes.Axes
        With one ``PathCollection`` (the spikes); x from ``t0`` to ``t0 + T dt`` ms, y the neuron
        index.
    """
    spikes = analysis._as_spikes(spikes, "plot.raster")
    times, neurons = analysis.raster(spikes, dt, t0)
    dt = analysis._dt_ms(dt, "plot.raster")
    t0 = float(to_canonical(t0, "ms", owner="plot.raster", name="t0"))
    T, N = spikes.shape[0], spikes.shape[-1]
    ax = _axes(ax)
    ax.scatter(_numpy(times), _numpy(neurons), s=markersize, c=color, marker=marker,
               linewidths=0, **scatter_kwargs)
    ax.set_xlim(t0, t0 + T * dt)
    ax.set_ylim(-0.5, N - 0.5)
    ax.set_xlabel("Time (ms)")
    ax.set_ylabel("Neuron index")
    return ax


def rate(
    spikes: Any,
    dt: Any = None,
    width: Any = None,
    ax: Any = None,
    *,
    t0: Any = 0.0,
    **plot_kwargs: Any,
):
    """Population firing rate over time (:func:`torchbrain.analysis.firing_rate`).

    Parameters
    ----------
    spikes : tensor, shape ``(T, *batch, N)``
        Spikes; with batch dimensions one line per batch element.
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.
    width : quantity or float, optional
        Rectangular smoothing window (ms when a number); default unsmoothed.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.
    t0 : quantity or float, default 0
        Time of step 0 (ms when a number).
    **plot_kwargs
        Passed to ``Axes.plot``.

    Returns
    -------
    matplotlib.axes.Axes
        With one ``Line2D`` per batch element (one without batch).
    """
    r = analysis.firing_rate(spikes, dt, width)
    dt = analysis._dt_ms(dt, "plot.rate")
    t0 = float(to_canonical(t0, "ms", owner="plot.rate", name="t0"))
    T = r.shape[0]
    times = t0 + dt * np.arange(T)
    ax = _axes(ax)
    ax.plot(times, _numpy(r.reshape(T, -1)), **plot_kwargs)
    ax.set_xlim(t0, t0 + T * dt)
    ax.set_xlabel("Time (ms)")
    ax.set_ylabel("Rate (Hz)")
    return ax


def voltage(
    trace: Any,
    dt: Any = None,
    neurons: Any = None,
    ax: Any = None,
    *,
    t0: Any = 0.0,
    ylabel: str = "V (mV)",
    **plot_kwargs: Any,
):
    """Membrane potential (or any State) traces over time.

    Parameters
    ----------
    trace : tensor or quantity, shape ``(T,)`` or ``(T, N)``
        Values over time, e.g. ``Monitor.values["V"]`` (mV). A voltage quantity is converted to
        mV.
    dt : quantity or float, optional
        Time between rows (ms when a number); for a :class:`~torchbrain.drivers.monitor.Monitor`
        with a stride, ``stride * dt``. Default: ``tb.environ`` ``dt``.
    neurons : int or sequence of int, optional
        Columns to draw. Default: all when ``N <= 10``, else the first 10.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure.
    t0 : quantity or float, default 0
        Time of the first row (ms when a number).
    ylabel : str, default ``"V (mV)"``
        Label of the y axis.
    **plot_kwargs
        Passed to ``Axes.plot``.

    Returns
    -------
    matplotlib.axes.Axes
        With one ``Line2D`` per drawn neuron.
    """
    who = "plot.voltage"
    if is_quantity(trace):
        trace = to_canonical(trace, "mV", owner=who, name="trace")
    if not isinstance(trace, torch.Tensor):
        trace = torch.as_tensor(np.asarray(trace, dtype=np.float64))
    if trace.ndim == 1:
        trace = trace.unsqueeze(1)
    if trace.ndim != 2:
        raise ValueError(f"{who}: 'trace' must have shape (T,) or (T, N), got shape "
                         f"{tuple(trace.shape)}; select a batch element first")
    if neurons is None:
        neurons = list(range(min(trace.shape[1], 10)))
    elif isinstance(neurons, int | np.integer):
        neurons = [int(neurons)]
    else:
        neurons = [int(i) for i in neurons]
    n = trace.shape[1]
    bad = [i for i in neurons if not -n <= i < n]
    if bad:
        raise IndexError(f"{who}: neurons {bad} out of range for a trace of {n} columns")
    dt = analysis._dt_ms(dt, who)
    t0 = float(to_canonical(t0, "ms", owner=who, name="t0"))
    T = trace.shape[0]
    times = t0 + dt * np.arange(T)
    ax = _axes(ax)
    values = _numpy(trace[:, neurons])
    for j, i in enumerate(neurons):
        ax.plot(times, values[:, j], label=f"neuron {i}", **plot_kwargs)
    ax.set_xlim(t0, t0 + (T - 1) * dt if T > 1 else t0 + dt)
    ax.set_xlabel("Time (ms)")
    ax.set_ylabel(ylabel)
    return ax


def raster_and_rate(
    spikes: Any,
    dt: Any = None,
    path: Any = None,
    *,
    width: Any = None,
    t0: Any = 0.0,
    title: str | None = None,
    figsize: tuple[float, float] = (8.0, 5.0),
    dpi: int = 100,
):
    """A figure with the raster on top and the population rate below, on a shared time axis.

    Parameters
    ----------
    spikes : tensor, shape ``(T, N)``
        Spikes of one trial.
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.
    path : str, path-like or binary file object, optional
        Save the figure there (format from the suffix; PNG, at exactly that path, when there
        is none).
    width : quantity or float, optional
        Smoothing window of the rate (ms when a number); default unsmoothed.
    t0 : quantity or float, default 0
        Time of step 0 (ms when a number).
    title : str, optional
        Title above the raster.
    figsize, dpi
        Figure size in inches and resolution.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes == [raster_axes, rate_axes]``. The figure stays open (close it with
        ``matplotlib.pyplot.close(fig)`` when making many).
    """
    plt = _pyplot()
    fig, (ax_r, ax_p) = plt.subplots(2, 1, sharex=True, figsize=figsize, dpi=dpi,
                                     gridspec_kw={"height_ratios": [3, 1]})
    raster(spikes, dt, ax_r, t0=t0)
    rate(spikes, dt, width, ax_p, t0=t0, color="k", linewidth=1.0)
    ax_r.set_xlabel("")
    if title:
        ax_r.set_title(title)
    fig.tight_layout()
    if path is not None:
        # no suffix: write PNG to exactly that path (matplotlib would append ".png")
        named = isinstance(path, str | os.PathLike)
        fmt = None if named and os.path.splitext(os.fspath(path))[1] else "png"
        fig.savefig(path, dpi=dpi, format=fmt)
    return fig
