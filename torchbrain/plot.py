"""Figures of spiking activity: raster, population rate, voltage traces.

matplotlib is a dependency of torchbrain, imported when a function here is first called (not
when torchbrain is). Without a display (no
``DISPLAY``/``WAYLAND_DISPLAY`` on Linux, no ``MPLBACKEND`` set, no IPython kernel and pyplot
not yet imported) the non-interactive ``Agg`` backend is selected, so the functions work on
clusters and in CI; figures are then saved with ``fig.savefig(path)``.

Every function takes ``ax=None`` (a new figure is made) or an existing ``Axes`` and returns the
``Axes`` it drew on (:func:`raster_and_rate` returns the ``Figure``). Times are in ms.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from . import analysis
from .units import is_quantity, to_canonical

__all__ = ["raster", "rate", "voltage", "raster_and_rate", "check_figure_path"]


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


def _columns(selection: Any, n: int, who: str, name: str) -> torch.Tensor:
    """Column indices (int64, in range) of a group given as a slice, range, ints or a tensor."""
    if isinstance(selection, slice):
        return torch.arange(n)[selection]
    if isinstance(selection, int | np.integer) and not isinstance(selection, bool):
        selection = [int(selection)]
    idx = torch.as_tensor(selection if isinstance(selection, torch.Tensor)
                          else np.asarray(list(selection)))
    if idx.ndim != 1 or idx.is_floating_point() or idx.dtype == torch.bool:
        raise TypeError(f"{who}: group {name!r} must be a slice, a range or a 1-D sequence of "
                        f"neuron indices, got {selection!r}")
    idx = idx.to(torch.long)
    if idx.numel() and (int(idx.max()) >= n or int(idx.min()) < -n):
        raise IndexError(f"{who}: group {name!r} selects neurons out of range for {n} columns")
    return idx % n


def _groups(groups: Any, colors: Any, n: int, who: str) -> list[tuple[str, Any, Any]]:
    """``[(name, columns, colour), ...]`` in drawing order; without groups one unnamed group
    whose columns are ``None`` (all of them, read without a copy)."""
    if groups is None:
        return [("", None, "k" if colors is None else colors)]
    if not isinstance(groups, Mapping) or not groups:
        raise TypeError(f"{who}: 'groups' must be a non-empty dict from names to neuron "
                        f"selections, e.g. {{'E': slice(0, 3200), 'I': slice(3200, 4000)}}, got "
                        f"{groups!r}")
    names = list(groups)
    if colors is None:
        colors = [f"C{i}" for i in range(len(names))]
    if isinstance(colors, Mapping):
        missing = [k for k in names if k not in colors]
        if missing:
            raise KeyError(f"{who}: 'colors' has no colour for groups {missing}")
        colors = [colors[k] for k in names]
    elif isinstance(colors, str) or len(colors) != len(names):
        raise ValueError(f"{who}: 'colors' must be a dict or a sequence with one colour per "
                         f"group ({len(names)}), got {colors!r}")
    return [(str(k), _columns(groups[k], n, who, str(k)), c)
            for k, c in zip(names, colors, strict=True)]


def _grow_limits(ax: Any, x: tuple[float, float], y: tuple[float, float], fresh: bool) -> None:
    """Set the limits to (x, y), or to their union with the current ones on a used axes."""
    if not fresh:
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        x, y = (min(x0, x[0]), max(x1, x[1])), (min(y0, y[0]), max(y1, y[1]))
    ax.set_xlim(*x)
    ax.set_ylim(*y)


def raster(
    spikes: Any,
    dt: Any = None,
    ax: Any = None,
    *,
    t0: Any = 0.0,
    offset: int = 0,
    groups: Mapping[str, Any] | None = None,
    color: Any = None,
    label: str | None = None,
    markersize: float = 2.0,
    marker: str = ".",
    **scatter_kwargs: Any,
):
    """Spike raster: one dot per spike at (time, neuron index), optionally in coloured groups.

    Parameters
    ----------
    spikes : tensor, shape ``(T, N)``
        Spikes of one trial (see :func:`torchbrain.analysis.raster`); ``bool`` records are
        read as they are.
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.
    ax : matplotlib Axes, optional
        Where to draw; default a new figure. On an axes that already holds data the x and y
        ranges grow to hold this raster too, so earlier groups stay visible.
    t0 : quantity or float, default 0
        Time of step 0 (ms when a number).
    offset : int, default 0
        Row of the first drawn neuron: a second call with ``offset`` equal to the first group's
        size stacks its raster above the first one.
    groups : dict, optional
        Names to neuron selections (slice, range or indices into the columns of ``spikes``),
        e.g. ``{"E": slice(0, 200), "I": slice(200, 250)}``. Each group is drawn in its own
        colour, stacked in dict order from ``offset`` up, and its name labels the y axis at the
        group's middle. Default: all columns as one group.
    color : colour, or a dict / sequence of colours with ``groups``, optional
        Default black without groups, matplotlib's colour cycle (``C0``, ``C1``, ...) with them.
    label : str, optional
        Legend label of the spikes (without ``groups``; with them each group's name is its
        label).
    markersize, marker
        Passed to ``Axes.scatter`` (``markersize`` as its ``s``, in points²).
    **scatter_kwargs
        Further ``Axes.scatter`` arguments.

    Returns
    -------
    matplotlib.axes.Axes
        With one ``PathCollection`` per group; group ``g`` of size ``n_g`` occupies rows
        ``offset + sum(n_h for h before g)`` onwards. x from ``t0`` to ``t0 + T dt`` ms.
    """
    who = "plot.raster"
    spikes = _as_record(spikes, who)
    dt = analysis._dt_ms(dt, who)
    t0 = float(to_canonical(t0, "ms", owner=who, name="t0"))
    if isinstance(offset, bool) or not isinstance(offset, int | np.integer):
        raise TypeError(f"{who}: 'offset' must be an int (a row), got {offset!r}")
    T, N = spikes.shape
    ax = _axes(ax)
    fresh = not (ax.collections or ax.lines)
    row = int(offset)
    ticks, tick_labels = [], []
    for name, columns, colour in _groups(groups, color, N, who):
        group = spikes if columns is None else spikes.index_select(1, columns)
        times, neurons = analysis.raster(group, dt, t0)
        ax.scatter(_numpy(times), _numpy(neurons) + row, s=markersize, c=colour, marker=marker,
                   linewidths=0, label=name or label, **scatter_kwargs)
        size = group.shape[1]
        if groups is not None and row > offset:  # a faint line where a group starts
            ax.axhline(row - 0.5, color="0.75", linewidth=0.6, zorder=0)
        ticks.append(row + (size - 1) / 2)
        tick_labels.append(name)
        row += size
    _grow_limits(ax, (t0, t0 + T * dt), (offset - 0.5, row - 0.5), fresh)
    if groups is not None:
        ax.set_yticks(ticks, tick_labels)
        ax.set_ylabel("Neuron (by group)")
    else:
        ax.set_ylabel("Neuron index")
    ax.set_xlabel("Time (ms)")
    return ax


def _as_record(spikes: Any, who: str) -> torch.Tensor:
    """A (T, N) tensor of spikes, bool kept as bool (no float copy of the whole record)."""
    spikes = analysis._as_spikes(spikes, who, keep_bool=True)
    if spikes.ndim != 2:
        raise ValueError(f"{who}: 'spikes' must have shape (T, N) (one trial), got shape "
                         f"{tuple(spikes.shape)}; select a batch element, e.g. spikes[:, 0]")
    return spikes


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


#: Figure formats accepted by :func:`check_figure_path`, with the bytes a file of that format
#: starts with (``None``: checked by a search of the first kilobyte instead).
_IMAGE_SIGNATURES: dict[str, tuple[bytes, ...] | None] = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "pdf": (b"%PDF",),
    "svg": None,
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "tif": (b"II*\x00", b"MM\x00*"),
    "tiff": (b"II*\x00", b"MM\x00*"),
    "webp": (b"RIFF",),
    "eps": (b"%!PS", b"\xc5\xd0\xd3\xc6"),
    "ps": (b"%!PS",),
}


def _is_image(path: str, fmt: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(1024)
    if not head:
        return True  # an empty file holds nothing to lose
    signatures = _IMAGE_SIGNATURES[fmt]
    if signatures is None:
        return b"<svg" in head
    if fmt == "webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    return head.startswith(signatures)


def check_figure_path(path: Any, who: str = "plot") -> str:
    """Check that a figure can be written to ``path`` without destroying anything.

    The name must end in an image suffix (``.png``, ``.pdf``, ``.svg``, ``.jpg``/``.jpeg``,
    ``.tif``/``.tiff``, ``.webp``, ``.eps``, ``.ps``); its folder must exist and be writable; a
    file already there is replaced only when it is an image of that format (or empty), so a
    typo such as ``--figure README`` never overwrites a document.

    Parameters
    ----------
    path : str or path-like
    who : str
        Named in the error messages.

    Returns
    -------
    str
        The format (the suffix, lower case), for ``Figure.savefig(path, format=...)``.

    Raises
    ------
    ValueError
        No image suffix, an existing file that is not an image of that format, or a folder.
    OSError
        The folder is missing or not writable.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{who}: the figure path must be a str or path-like, got "
                        f"{type(path).__name__}")
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in _IMAGE_SIGNATURES:
        raise ValueError(f"{who}: figure path {path!r} has no image suffix; use one of "
                         f"{', '.join('.' + k for k in _IMAGE_SIGNATURES)} (e.g. "
                         f"{os.path.splitext(path)[0] or 'figure'}.png)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{who}: cannot write the figure {path!r}: folder {folder!r} "
                                "does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{who}: figure path {path!r} is a folder")
    existed = os.path.exists(path)
    if existed and not _is_image(path, suffix):
        raise ValueError(f"{who}: {path!r} exists and is not a {suffix.upper()} image; it is "
                         "left alone: choose another figure path or remove it first")
    try:  # the only portable test of writability (os.access says yes to root on a read-only disk)
        with open(path, "ab"):
            pass
    except OSError as err:
        raise PermissionError(f"{who}: cannot write the figure {path!r}: {err.strerror}") from None
    if not existed:
        os.remove(path)
    return suffix


def raster_and_rate(
    spikes: Any,
    dt: Any = None,
    path: Any = None,
    *,
    groups: Mapping[str, Any] | None = None,
    colors: Any = None,
    rates: Mapping[str, Any] | None = None,
    width: Any = None,
    t0: Any = 0.0,
    title: str | None = None,
    markersize: float = 4.0,
    figsize: tuple[float, float] = (8.0, 5.0),
    dpi: int = 100,
):
    """A figure with the raster on top and the population rate below, on a shared time axis.

    Parameters
    ----------
    spikes : tensor, shape ``(T, N)``
        Spikes of one trial (``bool`` records are read without a float copy). To keep a large
        raster readable pass a subset of the neurons and their whole populations' ``rates``.
    dt : quantity or float, optional
        Time step (ms when a number). Default: ``tb.environ`` ``dt``.
    path : str, path-like or binary file object, optional
        Save the figure there. A name must end in an image suffix and may only replace an image
        (see :func:`check_figure_path`); a file object receives PNG.
    groups : dict, optional
        Names to neuron selections (columns of ``spikes``), e.g.
        ``{"E": slice(0, 200), "I": slice(200, 250)}``: stacked and coloured in the raster
        (see :func:`raster`), one rate line per group. Default: one group of every column.
    colors : dict or sequence of colours, optional
        One per group; default black without groups, matplotlib's cycle with them.
    rates : dict of tensors, shape ``(T,)``, optional
        Population rate of each group in Hz per step, e.g. counted over a whole population of
        which ``spikes`` shows a subset. Default: computed from the group's columns of
        ``spikes`` (:func:`torchbrain.analysis.firing_rate`).
    width : quantity or float, optional
        Centred rectangular smoothing window of the rates (ms when a number), as in
        :func:`torchbrain.analysis.firing_rate`; default unsmoothed. A few ms (e.g. 5 ms) gives a
        readable trace at dt = 0.1 ms, where one step's rate jumps in steps of
        ``1 / (N dt)``.
    t0 : quantity or float, default 0
        Time of step 0 (ms when a number).
    title : str, optional
        Title above the raster.
    markersize : float, default 4
        Size of a spike's dot in points² (as in :func:`raster`).
    figsize, dpi
        Figure size in inches and resolution.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes == [raster_axes, rate_axes]``; the time label is on the rate (bottom) axes.
        The figure stays open (close it with ``matplotlib.pyplot.close(fig)`` when making
        many).
    """
    who = "plot.raster_and_rate"
    fmt = "png"
    if isinstance(path, str | os.PathLike):
        fmt = check_figure_path(path, who)
    spikes = _as_record(spikes, who)
    dt_ms = analysis._dt_ms(dt, who)
    t0_ms = float(to_canonical(t0, "ms", owner=who, name="t0"))
    T = spikes.shape[0]
    drawn = _groups(groups, colors, spikes.shape[1], who)
    if rates is not None:
        if not isinstance(rates, Mapping) or set(rates) != {name for name, _, _ in drawn}:
            raise ValueError(f"{who}: 'rates' must be a dict with one (T,) rate per group "
                             f"{[name for name, _, _ in drawn]}, got {rates!r:.80}")
    plt = _pyplot()
    fig, (ax_r, ax_p) = plt.subplots(2, 1, sharex=True, figsize=figsize, dpi=dpi,
                                     gridspec_kw={"height_ratios": [3, 1]})
    raster(spikes, dt_ms, ax_r, t0=t0_ms, groups=groups, color=colors, markersize=markersize)
    times = t0_ms + dt_ms * np.arange(T)
    for name, columns, colour in drawn:
        if rates is None:
            group = spikes if columns is None else spikes.index_select(1, columns)
            r = analysis.firing_rate(group, dt_ms, width)
        else:
            r = torch.as_tensor(rates[name])
            if r.shape != (T,):
                raise ValueError(f"{who}: rates[{name!r}] must have shape ({T},), got "
                                 f"{tuple(r.shape)}")
            r = analysis._box_smooth(r.to(torch.float64), dt_ms, width, who)
        ax_p.plot(times, _numpy(r), color=colour, linewidth=1.0, label=name or None)
    ax_p.set_xlim(t0_ms, t0_ms + T * dt_ms)
    ax_p.set_ylim(bottom=0)
    ax_p.set_ylabel("Rate (Hz)")
    ax_p.set_xlabel("Time (ms)")
    ax_r.set_xlabel("")
    if groups is not None:
        ax_p.legend(loc="upper right", fontsize="small", frameon=False, ncol=len(drawn))
    if title:
        ax_r.set_title(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=dpi, format=fmt)
    return fig
