"""The documentation: the site builds, its examples run, the notebooks execute.

* ``docs/`` builds with Sphinx with warnings as errors (``-W``), and every public name of
  ``torchbrain.__all__`` has an entry in the API reference;
* every ``>>>`` example in the ``docs/`` pages runs (Python's doctest on each ``.rst`` file);
* every docstring example in the package runs (doctest of each module, as
  ``pytest --doctest-modules torchbrain`` would);
* every notebook in ``notebooks/`` is stored without outputs, executes with nbclient at the small
  sizes it selects when ``TORCHBRAIN_NOTEBOOK_SMALL=1``, and writes its figures (PNG) into the
  folder named by ``TORCHBRAIN_FIGURE_DIR``.

Build the site by hand with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import importlib.util
import os
import pkgutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

import torchbrain

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: Figures each notebook must write into TORCHBRAIN_FIGURE_DIR.
NOTEBOOK_FIGURES = {
    "tour.ipynb": ["tour_raster.png"],
    "training.ipynb": ["training_curves.png"],
    "hh_cobahh.ipynb": ["hh_trace.png", "cobahh_raster.png"],
    "plasticity.ipynb": ["stp_response.png", "stdp_window.png"],
}


#: Pages whose examples need an optional package (skipped without it).
PAGE_REQUIRES = {"howto/lightning.rst": "lightning"}


def _pages() -> list[Path]:
    """The ``.rst`` pages that hold examples."""
    return sorted(p for p in DOCS.rglob("*.rst")
                  if "_build" not in p.parts and ">>>" in p.read_text(encoding="utf-8"))


@contextlib.contextmanager
def _one_thread():
    """The examples are small: one intra-op thread avoids OpenMP spin-waits on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _close_figures() -> None:
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


# ------------------------------------------------------------------------------------- the site
def _inventory_names(path: Path) -> set[str]:
    """Short names of the Python objects in a Sphinx ``objects.inv`` (format version 2)."""
    raw = path.read_bytes()
    header_end = 0
    for _ in range(4):  # four header lines, then a zlib stream
        header_end = raw.index(b"\n", header_end) + 1
    names = set()
    for line in zlib.decompress(raw[header_end:]).decode("utf-8").splitlines():
        name, role = line.split(" ", 2)[:2]
        if role.startswith("py:"):
            names.add(name.rsplit(".", 1)[-1])
    return names


SPHINX_TEST = "test_sphinx_build_has_no_warnings"
_sphinx: dict = {}


def _start_sphinx(out: Path) -> None:
    """Build the site into ``out/html`` in a subprocess, warnings as errors."""
    env = {**os.environ, "TORCHBRAIN_DOCS_KNOWN_WARNINGS": str(out / "known.txt"),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           str(DOCS), str(out / "html"), "-d", str(out / "doctrees")]
    _sphinx["out"] = out
    _sphinx["proc"] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, env=env, cwd=ROOT)


@pytest.fixture(scope="module", autouse=True)
def _sphinx_in_background(request, tmp_path_factory):
    """Start the Sphinx build when the module starts, so it runs while the other tests do.

    The build is a separate process (one core); the test that checks it comes last in this
    file. Nothing starts when that test is not selected.
    """
    selected = any(item.name == SPHINX_TEST for item in request.session.items)
    if selected and importlib.util.find_spec("sphinx") is not None:
        _start_sphinx(tmp_path_factory.mktemp("docs"))
    yield
    proc = _sphinx.pop("proc", None)
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.communicate()


# ------------------------------------------------------------------------------ page examples
@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples_run(page, tmp_path, monkeypatch):
    needs = PAGE_REQUIRES.get(page.relative_to(DOCS).as_posix())
    if needs:
        pytest.importorskip(needs)
    monkeypatch.chdir(tmp_path)  # examples that write files write here
    with torch.random.fork_rng(), _one_thread():
        result = doctest.testfile(str(page), module_relative=False, optionflags=FLAGS,
                                  encoding="utf-8", verbose=False, report=True)
    _close_figures()
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {page}"


# ------------------------------------------------------------------------- docstring examples
def _modules() -> list[str]:
    names = ["torchbrain"]
    for info in pkgutil.walk_packages(torchbrain.__path__, "torchbrain."):
        # triton kernels only import on CUDA builds; they carry no doctests
        if not info.name.startswith("torchbrain.kernels"):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module, name) if t.examples]
    if not tests:
        return
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    with torch.random.fork_rng(), _one_thread():
        for test in tests:
            runner.run(test)
    _close_figures()
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring examples failed in {name}"


# ---------------------------------------------------------------------------------- notebooks
def test_every_notebook_is_listed():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NOTEBOOK_FIGURES)


@pytest.mark.parametrize("name", sorted(NOTEBOOK_FIGURES))
def test_notebook_saved_without_outputs(name):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{name}: save notebooks without outputs (clear them before committing)")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("name", sorted(NOTEBOOK_FIGURES))
def test_notebook_executes_and_writes_figures(name, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("TORCHBRAIN_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("TORCHBRAIN_FIGURE_DIR", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # The notebooks are tiny: one thread each avoids OpenMP spin-waits burning a busy CPU.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    for figure in NOTEBOOK_FIGURES[name]:
        path = tmp_path / figure
        assert path.is_file() and path.stat().st_size > 5_000, f"{name} did not write {figure}"


# -------------------------------------------------------------- the site (last: see the fixture)
def test_sphinx_build_has_no_warnings(tmp_path):
    pytest.importorskip("sphinx")
    if "proc" not in _sphinx:
        _start_sphinx(tmp_path)
    proc, out = _sphinx["proc"], _sphinx["out"]
    try:
        log, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        log, _ = proc.communicate()
        pytest.fail(f"sphinx did not finish in 600 s:\n{log}")
    assert proc.returncode == 0, f"sphinx failed (warnings are errors):\n{log}"
    assert (out / "html" / "index.html").is_file()

    # Every public class and function of the top-level package is in the API reference.
    documented = _inventory_names(out / "html" / "objects.inv")
    missing = []
    for name in torchbrain.__all__:
        obj = getattr(torchbrain, name)
        if isinstance(obj, type) or callable(obj) and not isinstance(obj, type(torchbrain)):
            if name not in documented and getattr(obj, "__name__", name) not in documented:
                missing.append(name)
    assert not missing, (
        f"public names without an API entry: {missing}; add their module to a page of docs/api/"
    )
