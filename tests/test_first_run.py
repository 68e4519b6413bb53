"""First run: the CPU default runs eagerly, compiled code is cached on disk for the next process,
a first compile is announced once, and compiled and eager rasters are identical in float64."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.drivers import compiler
from torchbrain.models import COBANet

REPO = Path(tb.__file__).resolve().parent.parent

# One process of a user's script: the compiled chunk of a small float64 COBA network against the
# eager run of its twin, and the compile caches' counters of this process.
SCRIPT = r"""
import copy, json
import torch
import torchbrain as tb
from torchbrain import u
from torchbrain.models import COBANet
from torch._dynamo.utils import counters

torch.manual_seed(0)
net = COBANet(scale=0.05, seed=0, dtype=torch.float64)
tb.init_all_states(net)
twin = copy.deepcopy(net)
with tb.environ.context(dt=0.1 * u.ms):
    eager = tb.NetworkRunner(twin, chunk=4, compile=False).run(120)
    compiled = tb.NetworkRunner(net, chunk=4, compile=True).run(120)
print(json.dumps({
    "same": bool(torch.equal(eager, compiled)), "spikes": int(eager.sum()),
    "inductor": dict(counters["inductor"]), "aot_autograd": dict(counters["aot_autograd"]),
}))
"""


def _env(cache: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    env["TORCHBRAIN_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _run(env: dict) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.slow
def test_a_second_process_compiles_from_the_cache(tmp_path):
    cache = tmp_path / "tb-cache"
    first, err1 = _run(_env(cache))
    second, err2 = _run(_env(cache))
    for result in (first, second):
        assert result["spikes"] > 0
        assert result["same"]  # compiled == eager, bit for bit, in float64
    # the first process compiled (and said so, once), into torchbrain's cache directory
    assert first["inductor"].get("fxgraph_cache_miss", 0) >= 1
    assert err1.count("(first run only") == 1 and str(cache / "inductor") in err1
    assert any((cache / "inductor" / "fxgraph").iterdir())
    # the second one loaded every graph from it, without the notice
    assert second["inductor"].get("fxgraph_cache_miss", 0) == 0
    assert second["inductor"].get("fxgraph_cache_hit", 0) >= 1
    assert second["aot_autograd"].get("autograd_cache_hit", 0) >= 1
    assert "first run only" not in err2 and "Traceback" not in err2


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHBRAIN_CACHE_DIR", str(tmp_path / "here"))
    assert compiler.cache_dir() == tmp_path / "here"
    monkeypatch.delenv("TORCHBRAIN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compiler.cache_dir() == tmp_path / "xdg" / "torchbrain"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compiler.cache_dir() == Path.home() / ".cache" / "torchbrain"


def test_inductor_cache_is_wired_unless_the_user_chose_one(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHBRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert compiler.use_persistent_cache() == tmp_path / "inductor"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert compiler.use_persistent_cache() == tmp_path / "mine"


def test_first_compile_is_known_per_signature(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHBRAIN_CACHE_DIR", str(tmp_path))
    assert compiler.first_compile("net A")
    compiler.mark_compiled("net A")
    assert not compiler.first_compile("net A")
    assert compiler.first_compile("net B")
    # clearing the cache directory forgets it
    for marker in (tmp_path / "compiled").iterdir():
        marker.unlink()
    assert compiler.first_compile("net A")


def test_cpu_default_runs_eagerly_without_loading_the_compiler():
    torch.manual_seed(0)
    net = COBANet(scale=0.05, seed=0)
    tb.init_all_states(net)
    runner = tb.NetworkRunner(net, chunk=5)
    with tb.environ.context(dt=0.1 * u.ms):
        spikes = runner.run(30)
    assert spikes.shape == (30, net.num)
    assert runner._compiled is None and runner.compile_seconds == 0.0
    assert runner.compile_fallback_reason is None


def test_compile_argument_is_checked():
    with pytest.raises(ValueError, match="NetworkRunner: 'compile' must be True, False or None"):
        tb.NetworkRunner(COBANet(scale=0.05), compile="yes")
