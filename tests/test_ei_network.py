"""The COBA benchmark network: published rates, eager vs compiled runner, sizes and memory."""

import pytest
import torch

import torchbrain as tb
from torchbrain import u
from torchbrain.drivers.runner import NetworkRunner
from torchbrain.models import COBANet, CUBANet


def simulate(net, steps, compile=True, chunk=10):
    tb.init_all_states(net)
    with tb.environ.context(dt=0.1 * u.ms):
        return NetworkRunner(net, chunk=chunk, compile=compile).run(steps)


def test_coba_rates_match_the_published_benchmark():
    # Brette et al. 2007 / Vogels & Abbott 2005: ~21-22 Hz (reviewer table 21.2-21.9 Hz);
    # DESIGN's distributional tolerance: within 5 % of 21.6 Hz.
    torch.manual_seed(0)
    net = COBANet(scale=1.0, seed=0)
    spikes = simulate(net, 10000).float()
    rate_e = spikes[:, : net.num_exc].mean().item() * 1e4
    rate_i = spikes[:, net.num_exc:].mean().item() * 1e4
    assert 20.5 <= rate_e <= 22.7, rate_e
    assert 20.5 <= rate_i <= 22.7, rate_i
    # asynchronous irregular regime, not tonic firing: CV of ISIs close to 1
    cv = tb.analysis.isi_cv(spikes[:, :400], 0.1).mean.item()
    assert cv > 0.5


def test_compiled_runner_matches_eager_spikes():
    torch.manual_seed(1)
    eager = COBANet(scale=0.25, seed=3)
    compiled = COBANet(scale=0.25, seed=3)
    tb.init_all_states(eager)
    tb.init_all_states(compiled)
    compiled.N.V = eager.N.V.clone()
    with tb.environ.context(dt=0.1 * u.ms):
        a = NetworkRunner(eager, compile=False).run(300)
        b = NetworkRunner(compiled, chunk=10, compile=True).run(300)
    assert a.sum() > 0
    assert (a != b).sum().item() <= 2  # DESIGN: spike counts within 2 (float32 reordering)


def test_memory_is_linear_in_neurons():
    net = COBANet(scale=0.5, seed=0)
    tb.init_all_states(net)
    n = net.num
    # synaptic state: one conductance per post neuron per (synapse, output) pair
    states = tb.states(net, tb.HiddenState)
    syn_states = {k: v for k, v in states.items() if k.endswith(".g")}
    assert len({id(v) for v in syn_states.values()}) == 2
    assert all(v.numel() == n for v in syn_states.values())
    # connectivity: int32 indices and a homogeneous weight: 4 bytes per synapse
    for proj in (net.E, net.I):
        c = proj.comm
        stored = c.indices.numel() * c.indices.element_size() + c.weight.numel() * 4
        assert stored / c.num_synapses <= 4.0 + 1e-3
    assert net.E.comm.conn_num == 80 and net.I.comm.conn_num == 80


def test_cuba_network_runs_and_is_active():
    torch.manual_seed(0)
    net = CUBANet(scale=0.25, seed=0)
    spikes = simulate(net, 2000, compile=False)
    rate = spikes.float().mean().item() * 1e4
    assert 1.0 < rate < 100.0


def test_scale_must_be_positive():
    with pytest.raises(ValueError, match="COBANet: parameter 'scale' must be finite and >= 0.02"):
        COBANet(scale=0.0)


def test_cobahh_runs_five_seconds_in_float32_without_nan():
    torch.manual_seed(0)
    net = tb.models.COBAHHNet(scale=0.05, seed=0, dtype=torch.float32)
    spikes = simulate(net, 50_000)
    assert not torch.isnan(net.N.V).any()
    assert all(torch.isfinite(v).all() for v in tb.states(net).values())
    assert spikes.float().mean().item() * 1e4 > 1.0  # the network is active


def test_network_save_restore_deepcopy_pickle_continue_exactly(tmp_path):
    import copy
    import pickle

    torch.manual_seed(0)
    net = COBANet(scale=0.1, seed=0)
    tb.init_all_states(net)
    with tb.environ.context(dt=0.1 * u.ms):
        runner = NetworkRunner(net, compile=False)
        runner.run(300)
        saved = tb.state_dict(net)
        torch.save(saved, tmp_path / "sim.pt")
        clone = copy.deepcopy(net)
        pickled = pickle.loads(pickle.dumps(net))
        reference = runner.run(300, t0=30.0)
        tb.reset_all_states(net)
        tb.load_state_dict(net, torch.load(tmp_path / "sim.pt"))
        restored = NetworkRunner(net, compile=False).run(300, t0=30.0)
        fresh = COBANet(scale=0.1, seed=0)
        tb.load_state_dict(fresh, saved)
        rebuilt = NetworkRunner(fresh, compile=False).run(300, t0=30.0)
        copied = NetworkRunner(clone, compile=False).run(300, t0=30.0)
        unpickled = NetworkRunner(pickled, compile=False).run(300, t0=30.0)
    assert reference.sum() > 0
    for other in (restored, rebuilt, copied, unpickled):
        assert torch.equal(reference, other)


def test_network_to_float64():
    net = COBANet(scale=0.1, seed=0).to(torch.float64)
    tb.init_all_states(net)
    assert all(v.dtype == torch.float64 for v in tb.states(net).values()
               if v.is_floating_point())
    with tb.environ.context(dt=0.1 * u.ms):
        out = NetworkRunner(net, compile=False).run(20)
    assert out.shape == (20, net.num)
