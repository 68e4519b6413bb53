"""The README works as written: each python block runs on its own (its own imports, a fresh
namespace), the paths it names exist, and the docs' install lines match it."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


PYTHON_BLOCKS = _blocks("python")


def test_the_readme_has_the_blocks_it_is_read_for():
    assert len(PYTHON_BLOCKS) >= 2
    assert any("COBANet" in block for block in PYTHON_BLOCKS)


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs_as_written(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # whatever a block writes stays out of the repository
    code = compile(PYTHON_BLOCKS[index], f"README.md python block {index + 1}", "exec")
    exec(code, {"__name__": "__readme__"})
    # every block shows its result
    assert capsys.readouterr().out.strip()


def test_the_first_look_prints_what_its_comments_say(capsys):
    exec(PYTHON_BLOCKS[0], {"__name__": "__readme__"})
    shape, rate = capsys.readouterr().out.splitlines()[-2:]
    # 20 mV of drive against a 15 mV gap, tau = 10 ms: ISI = 10 ln(20 / 5) = 13.86 ms, so 14
    # spikes per neuron in 200 ms (the first at 13.9 ms), 70 Hz
    assert shape == "torch.Size([2000, 100]) 1400 spikes"
    assert rate == "tensor(70.) Hz"


def test_paths_the_readme_names_exist():
    named = set(re.findall(r"`((?:[\w-]+/)+(?:[\w.-]+\.(?:py|ipynb))?)`", README))
    named |= {f"benchmarks/{name}" for name in re.findall(r"`(\w+\.py)` side by side", README)}
    assert {"examples/", "notebooks/", "benchmarks/"} <= named
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, missing


def test_docs_install_lines_match_the_readme():
    install = re.search(r'python3 -m pip install "torch==[\d.]+" -e \.', README).group(0)
    index = (ROOT / "docs" / "index.rst").read_text(encoding="utf-8")
    assert install in index
    assert "pip install -e ." not in index.replace('"torch==2.13.0" -e .', "")
    assert 'pip install -e ".[docs]"' in README and 'pip install -e ".[docs]"' in index


def test_docs_build_dependencies_are_in_an_extra_and_in_dev():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for extra in ("docs", "dev"):
        assert any(req.startswith("sphinx") for req in extras[extra]), extra
