"""No compiler, no crash: compiled drivers run eagerly, with one notice, where no C++ compiler
can be found (hidden from a subprocess) or where the build fails."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch._inductor import exc

import torchbrain as tb
from torchbrain import u
from torchbrain.drivers import compiler
from torchbrain.models import COBANet
from torchbrain.training import MultiStepLIF

REPO = Path(tb.__file__).resolve().parent.parent
NOTICE = "torchbrain: cannot compile ("

# Everything that asks for compiled code: the runner, tb.jit of a step, a training layer under
# tb.jit (forward and backward); each checked against its eager twin.
SCRIPT = r"""
import copy
import torch
from torch import nn
import torchbrain as tb
from torchbrain import u
from torchbrain.models import COBANet
from torchbrain.training import MultiStepLIF

torch.manual_seed(0)
net = COBANet(scale=0.05, seed=0, dtype=torch.float64)
tb.init_all_states(net)
twin = copy.deepcopy(net)
with tb.environ.context(dt=0.1 * u.ms):
    runner = tb.NetworkRunner(net, chunk=4, compile=True)
    compiled = runner.run(60)
    eager = tb.NetworkRunner(twin, chunk=4, compile=False).run(60)
assert torch.equal(compiled, eager) and eager.sum() > 0
assert runner.compile_fallback_reason and runner._compiled is None

neuron = tb.LIF(10, tau=10.0 * u.ms, V_th=1.0 * u.mV, R=1.0 * u.gigaohm)
tb.init_all_states(neuron)
step = tb.jit(lambda x: neuron(x))
with tb.environ.context(dt=0.1 * u.ms):
    out = [step(torch.full((10,), 20.0)) for _ in range(30)]
assert torch.stack(out).sum() > 0 and step.fallback_reason

layer = nn.Sequential(nn.Linear(6, 8), MultiStepLIF(8, tau=10.0, dt=1.0 * u.ms))
jitted = tb.jit(layer)
x = torch.rand(20, 3, 6) * 4
jitted(x).sum().backward()
assert layer[0].weight.grad is not None and jitted.fallback_reason
print("all ran")
"""


def _hidden_compiler_env(tmp_path: Path, **extra) -> dict:
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CXX")}
    env.update(PATH=str(empty), TORCHBRAIN_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    env.update(extra)
    return env


def _check_one_notice(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(NOTICE) == 1, done.stderr
    assert "Traceback" not in done.stderr and "InductorError" not in done.stderr


@pytest.mark.parametrize("cxx", [None, "/nonexistent/g++"], ids=["no-compiler", "CXX-missing"])
def test_compiled_drivers_run_eagerly_without_a_compiler(tmp_path, cxx):
    env = _hidden_compiler_env(tmp_path, **({"CXX": cxx} if cxx else {}))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=600)
    _check_one_notice(done)
    assert done.stdout.strip().endswith("all ran")
    if cxx:
        assert cxx in done.stderr  # the notice says where it looked


def test_tour_compiled_on_request_runs_without_a_compiler(tmp_path):
    cmd = [sys.executable, "-m", "torchbrain", "tour", "--compile", "--scale", "0.05",
           "--duration", "20", "--no-progress", "--figure", ""]
    done = subprocess.run(cmd, env=_hidden_compiler_env(tmp_path), capture_output=True,
                          text=True, timeout=600)
    _check_one_notice(done)
    assert "rates: E" in done.stdout


@pytest.fixture
def fresh_notices(monkeypatch, tmp_path):
    """Notices not yet given in this process; caches and markers in a scratch directory."""
    monkeypatch.setattr(compiler, "_noticed", set())
    monkeypatch.setenv("TORCHBRAIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)  # restored afterwards


def test_missing_compiler_is_found_before_compiling(monkeypatch, capsys, fresh_notices):
    def no_compiler():
        raise exc.InvalidCxxCompiler

    monkeypatch.setattr("torch._inductor.cpp_builder.get_cpp_compiler", no_compiler)
    assert "no working C++ compiler" in compiler.compile_problem("inductor")
    assert compiler.compile_problem("eager") is None
    torch.manual_seed(0)
    net = COBANet(scale=0.05, seed=0)
    tb.init_all_states(net)
    with tb.environ.context(dt=0.1 * u.ms):
        for _ in range(2):  # two runners, one notice
            runner = tb.NetworkRunner(net, chunk=4, compile=True)
            runner.run(8)
            assert runner._compiled is None and runner.compile_fallback_reason
    assert capsys.readouterr().err.count(NOTICE) == 1


def test_a_failed_build_falls_back_to_the_eager_chunk(capsys, fresh_notices):
    torch.manual_seed(0)
    nets = [COBANet(scale=0.05, seed=0, dtype=torch.float64) for _ in range(2)]
    for net in nets:
        tb.init_all_states(net)
    nets[1].N.V = nets[0].N.V.clone()

    def broken_build(*args):
        # how Inductor reports a compiler that cannot build (e.g. no Python headers), wrapped
        try:
            raise exc.CppCompileError(["g++", "kernel.cpp"], "Python.h: No such file")
        except exc.CppCompileError as err:
            raise RuntimeError("backend compiler failed") from err

    runner = tb.NetworkRunner(nets[0], chunk=4, compile=True)
    runner._compiled = broken_build
    with tb.environ.context(dt=0.1 * u.ms):
        got = runner.run(40)
        expected = tb.NetworkRunner(nets[1], chunk=4, compile=False).run(40)
    assert torch.equal(got, expected) and expected.sum() > 0
    assert capsys.readouterr().err.count(NOTICE) == 1
    assert runner._compiled is None
    assert "could not build the compiled chunk: CppCompileError" in runner.compile_fallback_reason


def test_other_errors_are_not_mistaken_for_a_missing_compiler(fresh_notices):
    assert compiler.compiler_error(ValueError("a bug in the user's step")) is None
    try:
        try:
            raise exc.InvalidCxxCompiler
        except exc.InvalidCxxCompiler as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as err:
        assert isinstance(compiler.compiler_error(err), exc.InvalidCxxCompiler)

    def buggy_step(*args):
        raise ValueError("a bug in the user's step")

    net = COBANet(scale=0.05, seed=0)
    tb.init_all_states(net)
    runner = tb.NetworkRunner(net, chunk=4, compile=True)
    runner._compiled = buggy_step
    with tb.environ.context(dt=0.1 * u.ms), pytest.raises(ValueError, match="a bug"):
        runner.run(8)
    assert runner.compile_fallback_reason is None


def test_jit_falls_back_once_and_keeps_module_attributes(monkeypatch, capsys, fresh_notices):
    monkeypatch.setattr(compiler, "compile_problem", lambda backend: "no compiler here")
    layer = nn.Sequential(nn.Linear(3, 4), MultiStepLIF(4, tau=10.0, dt=1.0 * u.ms))
    jitted = tb.jit(layer)
    x = torch.rand(5, 2, 3)
    assert jitted(x).shape == (5, 2, 4) and jitted(x).shape == (5, 2, 4)
    assert jitted.fallback_reason.startswith("jit: no compiler here")
    assert list(jitted.parameters())  # still the module's
    assert capsys.readouterr().err.count(NOTICE + "no compiler here)") == 1
