"""Bad input gets a clear error: the right exception type, and a message that names the module
(or function) and the parameter (issue 18). One case per kind of mistake; the CLI's cases are in
test_cli.py."""

import math

import pytest
import torch

import torchbrain as tb
from torchbrain import u

INF = math.inf
NAN = math.nan


def _dt(value):
    return tb.environ.context(dt=value)


def _run(net, steps=10, dt=0.1, **kw):
    with tb.environ.context(dt=dt):
        return tb.NetworkRunner(net, chunk=5, compile=False, **kw).run(steps)


def _pop(n=4, **kw):
    return tb.LIF(n, tau=10 * u.ms, V_th=-50 * u.mV, V_rest=-65 * u.mV, V_reset=-65 * u.mV,
                  R=1.0, V_initializer=tb.init.Constant(-65 * u.mV), **kw)


class _Net(tb.Module):
    def __init__(self, n=4):
        super().__init__()
        self.pop = _pop(n)

    def forward(self):
        self.pop(20.0)
        return self.pop.get_spike()


def _net(n=4):
    return tb.init_all_states(_Net(n))


def _proj(weight, out):
    return tb.AlignPostProj(comm=tb.EventFixedProb(10, 4, 2, weight, seed=0),
                            syn=tb.Expon.desc(4, tau=5 * u.ms), out=out, post=_pop())


def _load(mutate):
    net = _net()
    sd = tb.state_dict(net)
    mutate(sd)
    tb.load_state_dict(net, sd)


# (case id, call, exception type, regex: the module/function and the parameter)
CASES = [
    # ±inf and NaN parameters, initial values, initializers (one finiteness check)
    ("tau=inf", lambda: tb.LIF(3, tau=INF * u.ms),
     ValueError, r"LIF: parameter 'tau' must be finite"),
    ("tau=nan", lambda: tb.LIF(3, tau=NAN), ValueError, r"LIF: parameter 'tau' contains NaN"),
    ("V_th=+inf", lambda: tb.LIF(3, V_th=INF * u.mV),
     ValueError, r"LIF: parameter 'V_th' must be finite"),
    ("V_rest=-inf", lambda: tb.LIF(3, V_rest=-INF), ValueError, r"LIF: parameter 'V_rest'.*-inf"),
    ("R=inf", lambda: tb.LIF(3, R=INF), ValueError, r"LIF: parameter 'R' must be finite"),
    ("tau_ref=inf", lambda: tb.LIFRef(3, tau_ref=INF * u.ms),
     ValueError, r"LIFRef: parameter 'tau_ref'"),
    ("tau_ref<0", lambda: tb.LIFRef(3, tau_ref=-1 * u.ms),
     ValueError, r"LIFRef: parameter 'tau_ref' must be >= 0"),
    ("HH gNa=inf", lambda: tb.HH(2, gNa=INF * u.mS),
     ValueError, r"HH: parameter 'gNa' must be finite"),
    ("HH C=0", lambda: tb.HH(2, C=0 * u.uF), ValueError, r"HH: parameter 'C' must be positive"),
    ("Izhikevich a=inf", lambda: tb.Izhikevich(2, a=INF), ValueError, r"Izhikevich: parameter 'a'"),
    ("Expon tau=inf", lambda: tb.Expon(3, tau=INF * u.ms),
     ValueError, r"Expon: parameter 'tau' must be finite"),
    ("Expon tau=0", lambda: tb.Expon(3, tau=0 * u.ms),
     ValueError, r"Expon: parameter 'tau' must be positive"),
    ("DualExpon tau_decay=inf", lambda: tb.DualExpon(3, tau_decay=INF * u.ms), ValueError,
     r"DualExpon: parameter 'tau_decay'"),
    ("Alpha tau=nan", lambda: tb.Alpha(3, tau=NAN * u.ms),
     ValueError, r"Alpha: parameter 'tau' contains NaN"),
    ("COBA E=inf", lambda: tb.COBA(E=INF * u.mV),
     ValueError, r"COBA: parameter 'E' must be finite"),
    ("Constant(inf)", lambda: tb.init.Constant(INF * u.mV),
     ValueError, r"Constant: parameter 'value' must be finite"),
    ("Normal std=inf", lambda: tb.init.Normal(0.0, INF),
     ValueError, r"Normal: parameter 'std' must be finite"),
    ("Normal mean=nan", lambda: tb.init.Normal(NAN, 1.0),
     ValueError, r"Normal: parameter 'mean' contains NaN"),
    ("Uniform high=inf", lambda: tb.init.Uniform(0.0, INF),
     ValueError, r"Uniform: parameter 'high'"),
    ("V_initializer tensor inf",
     lambda: tb.init_all_states(tb.LIF(2, V_initializer=torch.tensor([0.0, INF]))), ValueError,
     r"LIF: initial value 'V' must be finite"),
    ("V_initializer wrong unit", lambda: tb.LIF(2, V_initializer=1 * u.ms), tb.UnitError,
     r"LIF: parameter 'V_initializer' expects a voltage"),
    ("weight=inf", lambda: tb.EventFixedProb(10, 4, 2, INF * u.nS), ValueError,
     r"EventFixedProb: parameter '\w*weight' must be finite"),
    ("weight=nan", lambda: tb.EventFixedProb(10, 4, 2, NAN * u.nS), ValueError,
     r"EventFixedProb: parameter '\w*weight' contains NaN"),
    ("Linear w_init inf", lambda: tb.Linear(3, 2, w_init=torch.full((3, 2), INF)), ValueError,
     r"Linear: parameter 'weight' must be finite"),
    ("Poisson freqs=inf", lambda: tb.PoissonSpike(3, freqs=INF * u.Hz), ValueError,
     r"PoissonSpike: parameter 'freqs' must be finite"),
    ("Poisson freqs<0", lambda: tb.PoissonSpike(3, freqs=-1 * u.Hz), ValueError,
     r"PoissonSpike: parameter 'freqs' must be >= 0"),
    ("Poisson freqs wrong unit", lambda: tb.PoissonSpike(3, freqs=1 * u.mV), tb.UnitError,
     r"PoissonSpike: parameter 'freqs' expects a rate"),
    ("Poisson rate > 1/dt",
     lambda: _run(tb.init_all_states(tb.PoissonSpike(3, 20 * u.kHz, seed=0))),
     ValueError, r"PoissonSpike: parameter 'freqs' must be at most 1/dt"),
    ("PoissonInput rate > 1/dt", lambda: _run(tb.init_all_states(
        tb.PoissonInput(3, 10, 20 * u.kHz, 1.0, seed=0))), ValueError,
     r"PoissonInput: parameter 'freq' must be at most 1/dt"),
    ("Poisson seed 'abc'", lambda: tb.PoissonSpike(3, 1 * u.Hz, seed="abc"), ValueError,
     r"PoissonSpike: parameter 'seed'"),
    ("SpikeTime times=inf", lambda: tb.SpikeTime(3, [0], [INF]),
     ValueError, r"SpikeTime: parameter 'times'"),
    ("delay=inf", lambda: tb.Delay(3, INF * u.ms), ValueError, r"Delay: parameter 'delay'"),
    ("delay wrong unit", lambda: tb.Delay(3, 1 * u.mV),
     tb.UnitError, r"Delay: parameter 'delay' expects a time"),
    # the environment
    ("dt=inf", lambda: tb.environ.context(dt=INF),
     ValueError, r"environ: 'dt' must be a positive, finite"),
    ("dt=0", lambda: tb.environ.context(dt=0), ValueError, r"environ: 'dt' must be a positive"),
    ("dt=nan", lambda: tb.environ.context(dt=NAN * u.ms), ValueError, r"environ: 'dt'"),
    ("dt wrong unit", lambda: tb.environ.context(dt=1 * u.mV),
     tb.UnitError, r"environ: parameter 'dt' expects a time"),
    ("dt unset", lambda: tb.environ.get_dt_value("LIF"), KeyError, r"LIF needs the time step 'dt'"),
    ("time_range duration=inf", lambda: tb.time_range(INF, dt=0.1),
     ValueError, r"time_range: 'duration'"),
    ("time_range t0=nan", lambda: tb.time_range(1.0, dt=0.1, t0=NAN),
     ValueError, r"time_range: 't0'"),
    # conductances, aliases, factory arguments, seeds, sizes
    ("negative COBA weight", lambda: _proj(-1 * u.nS, tb.COBA.desc(E=0 * u.mV)), ValueError,
     r"AlignPostProj: the weights of EventFixedProb \(parameter 'weight'\).*COBA.*>= 0"),
    ("current weight into COBA", lambda: _proj(1 * u.pA, tb.COBA.desc(E=0 * u.mV)), tb.UnitError,
     r"AlignPostProj: the weights of EventFixedProb are in pA but COBA"),
    ("alias class named", lambda: tb.EventFixedProb(10, 10, 2.0, 1 * u.nS), ValueError,
     r"EventFixedProb: parameter 'conn_num'"),
    ("EventFixedProb seed 'abc'", lambda: tb.EventFixedProb(10, 10, 2, 1 * u.nS, seed="abc"),
     ValueError, r"EventFixedProb: parameter 'seed'"),
    ("dtype=int32", lambda: tb.LIF(3, dtype=torch.int32), TypeError, r"LIF: parameter 'dtype'"),
    ("dtype='float32'", lambda: tb.Expon(3, dtype="float32"),
     TypeError, r"Expon: parameter 'dtype'"),
    ("device='nonsense'", lambda: tb.LIF(3, device="nonsense"),
     ValueError, r"LIF: parameter 'device'"),
    ("in_size=0", lambda: tb.LIF(0), ValueError, r"LIF: in_size"),
    ("spk_reset='medium'", lambda: tb.LIF(3, spk_reset="medium"),
     ValueError, r"LIF: parameter 'spk_reset'"),
    ("batch_size=0", lambda: tb.init_all_states(_Net(), batch_size=0), ValueError, r"batch_size"),
    ("COBANet scale=inf", lambda: tb.models.COBANet(scale=INF),
     ValueError, r"COBANet: parameter 'scale'"),
    ("COBANet scale='1'", lambda: tb.models.COBANet(scale="1"),
     TypeError, r"COBANet: parameter 'scale'"),
    ("COBANet scale too small", lambda: tb.models.COBANet(scale=0.01), ValueError,
     r"COBANet: parameter 'scale' must be finite and >= 0.02"),
    ("CUBANet seed=2**70", lambda: tb.models.CUBANet(scale=0.05, seed=2**70), ValueError,
     r"CUBANet: parameter 'seed'"),
    ("COBANet seed='abc'", lambda: tb.models.COBANet(scale=0.05, seed="abc"), ValueError,
     r"COBANet: parameter 'seed'"),
    # before init_all_states
    ("get_spike before init", lambda: _pop().get_spike(), RuntimeError,
     r"LIF: get_spike\(\) reads the State 'V', which is not initialised"),
    ("COBANet() before init", lambda: tb.models.COBANet(scale=0.05)(), RuntimeError,
     r"LIFRef\(EI\): .*State 'V'.*not initialised"),
    ("runner before init", lambda: _run(_Net()), RuntimeError,
     r"NetworkRunner: the States of 'pop' \(LIF\) are not initialised"),
    # NetworkRunner arguments
    ("run(0)", lambda: _run(_net(), steps=0),
     ValueError, r"NetworkRunner.run: 'steps' must be a positive"),
    ("run(-5)", lambda: _run(_net(), steps=-5), ValueError, r"NetworkRunner.run: 'steps'"),
    ("run(2.5)", lambda: _run(_net(), steps=2.5),
     TypeError, r"NetworkRunner.run: 'steps' must be an int"),
    ("run(t0=nan)", lambda: tb.NetworkRunner(_net(), compile=False).run(5, t0=NAN), ValueError,
     r"NetworkRunner.run: 't0' must be a finite time"),
    ("run(t0=5 mV)",
     lambda: tb.NetworkRunner(_net(), compile=False).run(5, t0=5 * u.mV), tb.UnitError,
     r"NetworkRunner.run: parameter 't0' expects a time"),
    ("run(t0='a')", lambda: tb.NetworkRunner(_net(), compile=False).run(5, t0="a"), TypeError,
     r"NetworkRunner.run: 't0'"),
    ("record_dtype='bool'", lambda: tb.NetworkRunner(_net(), record_dtype="bool"), TypeError,
     r"NetworkRunner: 'record_dtype' must be a torch.dtype"),
    ("record='sparse'", lambda: tb.NetworkRunner(_net(), record="sparse"), ValueError,
     r"NetworkRunner: 'record' must be"),
    ("chunk=0", lambda: tb.NetworkRunner(_net(), chunk=0), ValueError, r"NetworkRunner: 'chunk'"),
    ("check_finite='yes'", lambda: tb.NetworkRunner(_net(), check_finite="yes"), TypeError,
     r"NetworkRunner: 'check_finite'"),
    ("record too large", lambda: _run(_net(), steps=10**13), MemoryError,
     r"NetworkRunner: the record of this run needs"),
    ("NaN State", lambda: _run(_nan_state_net()), FloatingPointError,
     r"NetworkRunner: State 'pop.V' became non-finite"),
    # load_state_dict
    ("load: wrong-size State", lambda: _load(lambda sd: sd.__setitem__("pop.V", torch.zeros(50))),
     RuntimeError, r"load_state_dict: nothing was loaded.*'pop.V' has shape \(50,\)"),
    ("load: wrong-dtype State",
     lambda: _load(lambda sd: sd.__setitem__("pop.V", sd["pop.V"].double())),
     RuntimeError, r"load_state_dict: .*'pop.V' has dtype torch.float64"),
    ("load: NaN State", lambda: _load(lambda sd: sd["pop.V"].fill_(NAN)), RuntimeError,
     r"load_state_dict: .*'pop.V' contains NaN"),
    ("load: missing key", lambda: _load(lambda sd: sd.pop("pop.V")), RuntimeError,
     r"load_state_dict: .*missing keys \['pop.V'\]"),
    ("load: unexpected key", lambda: _load(lambda sd: sd.__setitem__("bogus", torch.ones(1))),
     RuntimeError, r"load_state_dict: .*unexpected keys \['bogus'\]"),
    ("load: parameter shape", lambda: _load(lambda sd: sd.__setitem__("pop.tau", torch.ones(7))),
     RuntimeError, r"load_state_dict: .*'pop.tau' has shape \(7,\)"),
    ("load: time nan",
     lambda: _load(lambda sd: sd.__setitem__(tb.state.TIME_KEY, torch.tensor(NAN))),
     RuntimeError, r"load_state_dict: .*simulation time"),
]


def _nan_state_net():
    net = _net()
    net.pop.V = torch.full_like(net.pop.V, NAN)
    return net


def test_there_are_at_least_sixty_kinds():
    assert len(CASES) >= 60
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("call, exc, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_a_failed_load_leaves_the_network_unchanged():
    net = _net()
    with tb.environ.context(dt=0.1):
        tb.NetworkRunner(net, chunk=5, compile=False).run(20)
    before = {k: v.clone() for k, v in tb.state_dict(net).items()}
    other = tb.state_dict(_net(7))  # a 7-neuron network's state
    with pytest.raises(RuntimeError, match="nothing was loaded"):
        tb.load_state_dict(net, other)
    after = tb.state_dict(net)
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key


def test_hh_warns_at_a_coarse_dt():
    neuron = tb.init_all_states(tb.HH(2))
    with _dt(1.0), tb.environ.context(t=0.0):
        with pytest.warns(tb.TimeStepWarning, match=r"HH: dt = 1 ms is too coarse"):
            neuron(0.0)
