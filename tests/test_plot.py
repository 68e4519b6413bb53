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
    # the time label is on the bottom panel only
    assert rate_ax.get_xlabel() == "Time (ms)" and raster_ax.get_xlabel() == ""
    # no image suffix: refused before drawing, nothing written
    plain = tmp_path / "activity"
    with pytest.raises(ValueError, match="plot.raster_and_rate: .* has no image suffix"):
        P.raster_and_rate(spikes(), DT, str(plain))
    assert not plain.exists()
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


def test_raster_groups_are_stacked_coloured_and_labelled():
    s = spikes(N=30)
    ax = P.raster(s > 0, DT, groups={"E": slice(0, 20), "I": [25, 26, 27]},
                  color={"E": "red", "I": "blue"}, offset=5)
    e, i = ax.collections
    times_e, idx_e = A.raster(s[:, :20], DT)
    np.testing.assert_allclose(e.get_offsets()[:, 0], times_e.numpy())
    np.testing.assert_allclose(e.get_offsets()[:, 1], idx_e.numpy() + 5)
    times_i, idx_i = A.raster(s[:, 25:28], DT)
    np.testing.assert_allclose(i.get_offsets()[:, 1], idx_i.numpy() + 25)  # 5 + 20 E rows
    np.testing.assert_allclose(e.get_facecolor()[0][:3], (1, 0, 0))
    np.testing.assert_allclose(i.get_facecolor()[0][:3], (0, 0, 1))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["E", "I"]
    assert ax.get_ylim() == pytest.approx((4.5, 27.5))


def test_raster_second_call_stacks_without_hiding_the_first():
    s = spikes(N=30)
    ax = P.raster(s[:, :20], DT, color="r", label="E")
    P.raster(s[:, 20:], DT, ax, offset=20, color="b", label="I")
    assert ax.get_ylim() == pytest.approx((-0.5, 29.5))
    assert [c.get_label() for c in ax.collections] == ["E", "I"]
    # a bool record gives the same dots as the float one
    bool_ax = P.raster(s > 0, DT)
    np.testing.assert_allclose(bool_ax.collections[0].get_offsets(),
                               P.raster(s, DT).collections[0].get_offsets())


def test_raster_bad_groups_name_the_function_and_the_group():
    s = spikes(N=10)
    with pytest.raises(IndexError, match="plot.raster: group 'I' selects neurons out of range"):
        P.raster(s, DT, groups={"E": slice(0, 8), "I": [8, 12]})
    with pytest.raises(ValueError, match="plot.raster: 'colors' must be a dict or a sequence"):
        P.raster(s, DT, groups={"E": slice(0, 8), "I": slice(8, 10)}, color=["r"])
    with pytest.raises(TypeError, match="plot.raster: 'offset' must be an int"):
        P.raster(s, DT, offset=1.5)


def test_raster_and_rate_groups_smoothed_and_given_rates():
    s = spikes(T=600, N=40)
    groups = {"E": slice(0, 30), "I": slice(30, 40)}
    fig = P.raster_and_rate(s, DT, groups=groups, colors=["r", "b"], width=5.0)
    raster_ax, rate_ax = fig.axes
    assert len(raster_ax.collections) == 2 and len(rate_ax.lines) == 2
    np.testing.assert_allclose(rate_ax.lines[0].get_ydata(),
                               A.firing_rate(s[:, :30], DT, 5.0).numpy())
    np.testing.assert_allclose(rate_ax.lines[1].get_ydata(),
                               A.firing_rate(s[:, 30:], DT, 5.0).numpy())
    assert rate_ax.get_ylim()[0] == 0 and rate_ax.get_xlabel() == "Time (ms)"
    # rates given for a whole population (e.g. counted while only a subset was kept) are
    # smoothed the same way: a constant 20 Hz stays 20 Hz away from the zero-padded edges
    const = torch.full((600,), 20.0)
    fig = P.raster_and_rate(s, DT, groups=groups, rates={"E": const, "I": 2 * const}, width=5.0)
    line_e, line_i = fig.axes[1].lines
    np.testing.assert_allclose(line_e.get_ydata()[25:-25], 20.0)
    np.testing.assert_allclose(line_i.get_ydata()[25:-25], 40.0)
    with pytest.raises(ValueError, match="plot.raster_and_rate: 'rates' must be a dict"):
        P.raster_and_rate(s, DT, groups=groups, rates={"E": const})
    with pytest.raises(ValueError, match=r"rates\['I'\] must have shape \(600,\)"):
        P.raster_and_rate(s, DT, groups=groups, rates={"E": const, "I": const[:10]})


def test_check_figure_path_never_replaces_a_non_image(tmp_path):
    readme = tmp_path / "README"
    readme.write_text("keep me")
    with pytest.raises(ValueError, match="has no image suffix"):
        P.check_figure_path(readme)
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    with pytest.raises(ValueError, match="exists and is not a PNG image"):
        P.raster_and_rate(spikes(), DT, notes)
    assert notes.read_text() == "not a picture" and readme.read_text() == "keep me"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        P.check_figure_path(tmp_path / "missing" / "x.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        P.check_figure_path(tmp_path / "dir.png")
    # an image of the format is replaced; the check itself leaves no file behind
    target = tmp_path / "fig.pdf"
    assert P.check_figure_path(target) == "pdf" and not target.exists()
    P.raster_and_rate(spikes(), DT, target)
    first = target.read_bytes()
    assert first[:4] == b"%PDF"
    P.raster_and_rate(spikes(seed=1), DT, target)
    assert target.read_bytes()[:4] == b"%PDF"
