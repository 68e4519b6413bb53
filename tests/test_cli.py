"""``python -m torchbrain`` commands run end to end (small sizes)."""

from torchbrain.__main__ import main


def test_mental_model_matches_analytic_isi(capsys):
    assert main(["mental-model", "--duration", "100"]) == 0
    out = capsys.readouterr().out
    assert "spikes shape: (1000, 100)" in out and "analytic 13.86 ms" in out


def test_tour_prints_rates_and_writes_figure(tmp_path, capsys):
    figure = tmp_path / "tour.png"
    code = main(["tour", "--scale", "0.1", "--duration", "50", "--no-progress", "--eager",
                 "--figure", str(figure)])
    assert code == 0
    out = capsys.readouterr().out
    assert "rates: E" in out and "steps/s" in out
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
