"""The built wheel contains every subpackage (a module left out of setup.cfg fails here)."""

import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _subpackages() -> set[str]:
    found = {"torchbrain.kernels"}
    for init in (ROOT / "torchbrain").rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        found.add(".".join(rel.parts))
    return found


@pytest.mark.slow
def test_wheel_ships_and_imports_every_subpackage(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
         str(ROOT)], capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("torchbrain-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for package in sorted(_subpackages()):
        path = package.replace(".", "/") + "/__init__.py"
        assert path in names, f"{package} is missing from the wheel (setup.cfg packages?)"
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1]); import torchbrain; "
        "assert torchbrain.__file__.startswith(sys.argv[1]), torchbrain.__file__; "
        "[importlib.import_module(m) for m in sys.argv[2:]]; print('ok')"
    )
    run = subprocess.run([sys.executable, "-c", code, str(target), *sorted(_subpackages())],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
