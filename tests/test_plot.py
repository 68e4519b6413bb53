"""Plots run headless (Agg), draw the expected artists and write PNG files."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import analysis as A
from torchbrain import u

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from torchbrain import plot as P  # noqa: E402

DT = 0.1


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def spikes(T=400, N=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, N, generator=g) < 0.02).float()


def test_raster_draws_every_spike_at_its_time():
    s = spikes()
    ax = P.raster(s, DT * u.ms, t0=5.0)
    assert len(ax.collections) == 1
    offsets = ax.collections[0].get_offsets()
    times, idx = A.raster(s, DT, 5.0)
    np.testing.assert_allclose(offsets[:, 0], times.numpy())
    np.testing.assert_allclose(offsets[:, 1], idx.numpy())
    assert ax.get_xlim() == pytest.approx((5.0, 5.0 + 400 * DT))
    assert ax.get_xlabel() == "Time (ms)"


def test_rate_one_line_per_trial_and_values():
    s = spikes()
    ax = P.rate(s, DT, width=2.0)
    assert len(ax.lines) == 1
    np.testing.assert_allclose(ax.lines[0].get_ydata(), A.firing_rate(s, DT, 2.0).numpy())
    np.testing.assert_allclose(ax.lines[0].get_xdata(), np.arange(400) * DT)
    _, ax2 = plt.subplots()
    assert P.rate(torch.stack([s, s], 1), DT, ax=ax2) is ax2
    assert len(ax2.lines) == 2


def test_voltage_traces_selected_neurons_and_quantities():
    v = torch.linspace(-70, -50, 200)[:, None] + torch.arange(12.0)
    with tb.environ.context(dt=0.5 * u.ms):
        ax = P.voltage(v)
    assert len(ax.lines) == 10  # default: the first 10 of 12
    ax = P.voltage(v, DT, neurons=[3, 11])
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[1].get_ydata(), v[:, 11].numpy(), rtol=1e-6)
    # a quantity in volts is drawn in mV
    ax = P.voltage(v[:, 0].numpy() / 1000.0 * u.V, DT)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), v[:, 0].numpy(), rtol=1e-6)
    with pytest.raises(IndexError, match="out of range"):
        P.voltage(v, DT, neurons=[12])
    with pytest.raises(tb.UnitError):
        P.voltage(np.zeros(5) * u.ms, DT)


def test_raster_and_rate_writes_png(tmp_path):
    path = tmp_path / "activity.png"
    fig = P.raster_and_rate(spikes(), DT * u.ms, path, width=1 * u.ms, title="test")
    assert path.exists() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    raster_ax, rate_ax = fig.axes
    assert len(raster_ax.collections) == 1 and len(rate_ax.lines) == 1
    assert raster_ax.get_title() == "test"
    # no suffix: PNG by default
    plain = tmp_path / "activity"
    P.raster_and_rate(spikes(), DT, str(plain))
    assert plain.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    buf = io.BytesIO()
    P.raster_and_rate(spikes(), DT, buf)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_headless_process_selects_agg(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    code = (
        "import torch, matplotlib; from torchbrain import plot as P; "
        "ax = P.raster(torch.eye(4), 1.0); "
        f"ax.figure.savefig({str(tmp_path / 'x.png')!r}); "
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    if sys.platform.startswith("linux"):
        assert out.stdout.strip().lower() == "agg"
    assert (tmp_path / "x.png").stat().st_size > 0
