"""The side-by-side benchmark driver: child processes, timeouts, same-run ratios (no timing)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(relative: str, name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sbs():
    return _load("benchmarks/side_by_side.py", "side_by_side_benchmark")


def test_run_child_reads_the_last_json_line_and_the_peak_rss(sbs):
    code = "import json; print('log line'); print(json.dumps({'wall_per_sim_s': 0.5}))"
    result = sbs.run_child([sys.executable, "-c", code], {}, timeout=60)
    assert result["status"] == "ok" and result["wall_per_sim_s"] == 0.5
    assert result["peak_rss_mb_kernel"] > 1 and result["process_wall_s"] > 0


def test_run_child_kills_a_run_past_its_timeout_and_reports_failures(sbs):
    tic = time.perf_counter()
    result = sbs.run_child([sys.executable, "-c", "import time; time.sleep(60)"], {}, timeout=1)
    assert result["status"] == "timeout" and time.perf_counter() - tic < 30
    failed = sbs.run_child([sys.executable, "-c", "raise SystemExit('no simulator here')"], {},
                           timeout=60)
    assert failed["status"] == "failed" and "no simulator here" in failed["detail"]
    silent = sbs.run_child([sys.executable, "-c", "print('not json')"], {}, timeout=60)
    assert silent["status"] == "failed" and "no JSON" in silent["detail"]


def _driver(sbs, repeats: int):
    args = sbs.argparse.Namespace(
        skip=list(sbs.PEERS), venvs="/nonexistent", build_dir="/tmp", max_neurons={"nest": 4000},
        repeats=repeats, sizes=[4000, 32000], threads=[1], rate_tolerance=0.15,
        sections=["coba"], duration=1000.0, seed=0)
    driver = sbs.Driver(args)
    driver.missing = {"brainpy": "missing (test)"}
    return driver


def _result(wall: float, rate: float = 21.0) -> dict:
    return {"status": "ok", "wall_per_sim_s": wall, "rate_E_Hz": rate, "rate_I_Hz": rate}


def test_ratios_are_taken_within_each_repeat(sbs):
    driver = _driver(sbs, repeats=2)
    tb, b2 = (sbs.Job(s, "coba", 4000, 1) for s in ("torchbrain", "brian2"))
    # repeat 1 on a slow machine, repeat 2 on a fast one: the per-repeat ratios are 2 and 1.5
    driver.results = [{sbs.key(tb): _result(4.0), sbs.key(b2): _result(2.0, rate=15.0)},
                      {sbs.key(tb): _result(0.3), sbs.key(b2): _result(0.2, rate=15.0)}]
    assert driver.ratio(tb, "brian2") == "1.50 / 1.75"
    assert driver.cell(tb) == "0.300 / 2.150"
    assert driver.rates(sbs.dataclasses.replace(tb, simulator="brian2"), tb).endswith("!")
    assert not driver.rates(tb).endswith("!")
    table = "\n".join(driver.comparison_table("coba", [4000, 32000], 1))
    assert "missing (test)" in table  # brainpy's column says why, never a number
    assert "not run (> 4,000 neurons, --max-neurons)" in table  # nest at 32k
    assert driver.runnable(sbs.Job("brainpy", "cobahh", 4000, 1)) == "missing (test)"
    assert driver.runnable(sbs.Job("brian2", "cobahh", 4000, 1)) is None


def test_peer_limits_are_checked(sbs):
    assert sbs.parse_max_neurons(["nest=8000"])["nest"] == 8000
    with pytest.raises(SystemExit, match="PEER=N"):
        sbs.parse_max_neurons(["neuron=8000"])


def test_tables_of_a_saved_run_need_no_simulator(sbs):
    driver = _driver(sbs, repeats=1)
    tb = sbs.Job("torchbrain", "coba", 4000, 1)
    saved = {"missing": {"nest": "missing (test)"}, "results": [{sbs.key(tb): _result(0.5)}],
             "command": "side_by_side.py --repeats 1", "finished": "2026-01-01 00:00 UTC"}
    text = sbs.Driver(driver.args, saved).tables()
    assert "command: side_by_side.py --repeats 1" in text and "| 4,000 | 0.500 |" in text
    assert "nest: missing (test)" in text
