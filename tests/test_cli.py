"""``python -m torchbrain`` commands run end to end (small sizes); bad arguments end with one
line on stderr and exit status 2, before anything is built."""

import subprocess
import sys

import pytest

from torchbrain import __main__ as cli
from torchbrain.__main__ import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_mental_model_matches_analytic_isi(capsys):
    assert main(["mental-model", "--duration", "100"]) == 0
    out = capsys.readouterr().out
    assert "spikes shape: (1000, 100)" in out and "analytic 13.86 ms" in out


def test_tour_prints_rates_timing_and_writes_figure(tmp_path, capsys):
    figure = tmp_path / "tour.png"
    code = main(["tour", "--scale", "0.05", "--duration", "40", "--eager",
                 "--figure", str(figure)])
    assert code == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "COBA network: 200 LIF neurons (160 E, 40 I), 16,000 synapses" in out
    assert "rates: E" in out and "steps/s" in out
    # every phase the user waits for is in the time line
    for phase in ("checks and build", "simulation", "figure"):
        assert phase in out
    assert "compilation" not in out  # --eager: nothing compiled, nothing claimed
    assert figure.read_bytes()[:8] == PNG
    # not a terminal: the progress bar is a few whole lines, not one \r-joined line
    bar = [line for line in captured.err.splitlines() if line.startswith("simulating")]
    assert 2 <= len(bar) <= 13 and "\r" not in captured.err
    assert bar[-1].startswith("simulating: 100%")


def test_tour_rates_come_from_the_whole_population(capsys, monkeypatch):
    """The tour streams the record into counts; its rates equal those of a full record."""
    import torch

    import torchbrain as tb
    from torchbrain import u

    assert main(["tour", "--scale", "0.05", "--duration", "30", "--eager", "--no-progress",
                 "--figure", ""]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("rates:"))
    net = tb.models.COBANet(scale=0.05, seed=0)
    tb.init_all_states(net)
    with tb.environ.context(dt=0.1 * u.ms):
        spikes = tb.NetworkRunner(net, compile=False).run(300)
    rate_e = tb.analysis.mean_rate(spikes[:, :160].to(torch.float64), 0.1 * u.ms).item()
    rate_i = tb.analysis.mean_rate(spikes[:, 160:].to(torch.float64), 0.1 * u.ms).item()
    assert line == f"rates: E {rate_e:.2f} Hz, I {rate_i:.2f} Hz"


BAD = [
    (["tour", "--scale", "-1"], "argument --scale: must be positive, got -1"),
    (["tour", "--scale", "0"], "argument --scale: must be positive"),
    (["tour", "--scale", "inf"], "argument --scale: expected a finite number"),
    (["tour", "--scale", "abc"], "argument --scale: expected a number, got 'abc'"),
    (["tour", "--scale", "0.01"], "--scale 0.01 gives 40 neurons, fewer than the 80 targets"),
    (["tour", "--model", "foo"], "argument --model: invalid choice: 'foo'"),
    (["tour", "--duration", "0"], "argument --duration: must be positive, got 0 ms"),
    (["tour", "--duration", "0.01"], "--duration 0.01 ms is shorter than one step"),
    (["tour", "--dt", "0"], "argument --dt: must be positive, got 0 ms"),
    (["tour", "--dt", "nan"], "argument --dt: expected a finite number"),
    (["tour", "--chunk", "0"], "argument --chunk: a chunk must be >= 1"),
    (["tour", "--threads", "-2"], "argument --threads: a thread count must be >= 0"),
    (["tour", "--seed", "-1"], "argument --seed: a seed must be >= 0"),
    (["tour", "--seed", str(2**70)], "argument --seed: a seed must be below 2**62"),
    (["tour", "--device", "foo"], "--device 'foo' is not a device name"),
    (["tour", "--device", "cuda:7"], "--device cuda:7"),
    (["tour", "--figure", "README"], "has no image suffix"),
    (["tour", "--bogus"], "unrecognized arguments: --bogus"),
    (["mental-model", "--duration", "1"], "too short to measure an inter-spike interval"),
    (["mental-model", "--dt", "0"], "argument --dt: must be positive"),
    (["mental-model", "--current", "x"], "argument --current: expected a number"),
    ([], "the following arguments are required: command"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) or "none" for a, _ in BAD])
def test_bad_arguments_one_line_and_status_2(argv, message, capsys, monkeypatch):
    # nothing may be built for a bad argument
    monkeypatch.setattr("torchbrain.models.COBANet.__init__", _must_not_run)
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("python -m torchbrain: error: ")
    assert message in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def _must_not_run(*args, **kwargs):
    raise AssertionError("a bad argument reached the model")


def test_figure_path_refusals_leave_files_alone(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("torchbrain.models.COBANet.__init__", _must_not_run)
    readme = tmp_path / "README"
    readme.write_text("do not overwrite")
    notes = tmp_path / "notes.png"
    notes.write_text("a text file with an image name")
    (tmp_path / "folder.png").mkdir()
    cases = [
        (readme, "has no image suffix"),
        (notes, "exists and is not a PNG image"),
        (tmp_path / "missing" / "tour.png", "does not exist"),
        (tmp_path / "folder.png", "is a folder"),
    ]
    for path, message in cases:
        assert main(["tour", "--figure", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert readme.read_text() == "do not overwrite"
    assert notes.read_text() == "a text file with an image name"


def test_a_run_that_cannot_fit_is_refused_before_building(capsys, monkeypatch):
    monkeypatch.setattr("torchbrain.models.COBANet.__init__", _must_not_run)
    monkeypatch.setattr(cli, "_available_bytes", lambda device: 10**6)
    assert main(["tour", "--scale", "2", "--figure", ""]) == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "640,000 synapses" in err and "use a smaller --scale" in err


def test_the_console_entry_prints_no_traceback():
    out = subprocess.run([sys.executable, "-m", "torchbrain", "tour", "--scale", "-1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "python -m torchbrain: error: argument --scale: must be positive, got -1 "
        "(see python -m torchbrain tour --help)"]
