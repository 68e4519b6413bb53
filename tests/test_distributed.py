"""torchbrain.distributed: partition, parallel connectivity, the distributed E/I network,
checkpoints, DDP, and failures, with 2 gloo processes on CPU started by torchrun.

The 1-process runs are checked against the library's single-process models (COBANet, and
LIFRef + AlignPostProj(delay=...) + EventFixedProb built by hand) fed the same connectivity and
initial voltages; the 2-process runs are checked against the 1-process runs, spike for spike.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch

import torchbrain as tb
from torchbrain import init, u
from torchbrain.comm.fixed_num import EventFixedProb
from torchbrain.distributed import (
    DistributedCOBANet,
    DistributedCUBANet,
    DistributedError,
    DistributedMicrocircuit,
    Partition,
    blockwise_in_degree_table,
    blockwise_out_degree_table,
    fixed_in_degree_local,
    fixed_out_degree_local,
    gather_raster,
    gather_state_dict,
    ignore_states_in_ddp,
    initial_values_local,
    load_checkpoint,
    load_global_state_dict,
    microcircuit_connectivity_local,
    save_checkpoint,
)
from torchbrain.distributed import connectivity as conn
from torchbrain.distributed._selftest import MICROCIRCUIT, MICROCIRCUIT_STEPS
from torchbrain.drivers.runner import NetworkRunner
from torchbrain.models import COBANet, Microcircuit
from torchbrain.models.microcircuit import microcircuit_parameters
from torchbrain.neurons.lif import LIF, LIFRef
from torchbrain.outputs import COBA
from torchbrain.projections.align_post import AlignPostProj
from torchbrain.synapses.expon import Expon

DT = 0.1
# what the torchrun job runs (torchbrain.distributed._selftest defaults)
SCALE, SEED, DELAY_E, DELAY_I, STEPS1, STEPS2, STEPS_IN = 0.25, 7, 0.4, 0.2, 100, 100, 60


# ------------------------------------------------------------------------------ partition
def test_partition_is_balanced_aligned_and_covers_every_neuron():
    p = Partition(1000, 3, align=64)
    assert p.bounds == (0, 320, 640, 1000)
    assert all(start % 64 == 0 for start in p.bounds[:-1])
    assert sum(p.sizes) == 1000 and max(p.sizes) - min(p.sizes) <= 64 + 1000 % 64
    idx = torch.arange(1000)
    owner = p.owner(idx)
    for r in range(3):
        lo, hi = p.range(r)
        assert bool((owner[lo:hi] == r).all())
        assert torch.equal(p.to_local(idx[lo:hi], r), torch.arange(hi - lo))
    assert Partition(1000, 1).bounds == (0, 1000)
    with pytest.raises(ValueError, match="some rank would own no neuron"):
        Partition(100, 3, align=64)
    with pytest.raises(ValueError, match="not owned by rank 0"):
        p.to_local(torch.tensor([500]), 0)


# --------------------------------------------------------------------------- connectivity
@pytest.mark.parametrize("multi", [True, False])
def test_local_out_degree_tables_assemble_the_global_table_on_any_split(multi):
    n_pre, n_post, k = 300, 257, 9
    table = blockwise_out_degree_table(n_pre, n_post, k, seed=5, stream="E", block_rows=64,
                                   allow_multi_conn=multi)
    dense = torch.zeros(n_pre, n_post, dtype=torch.int64)
    dense.index_put_((torch.arange(n_pre).repeat_interleave(k), table.reshape(-1).long()),
                     torch.ones(n_pre * k, dtype=torch.int64), accumulate=True)
    assert bool((dense.sum(1) == k).all())
    if not multi:
        assert int(dense.max()) == 1
    for world_size in (1, 2, 3):
        part = Partition(n_post, world_size, align=16)
        pieces = [fixed_out_degree_local(n_pre, n_post, k, seed=5, stream="E", block_rows=64,
                                         post_range=part.range(r), allow_multi_conn=multi)
                  for r in range(world_size)]
        assert torch.equal(torch.cat([p.to_dense_counts() for p in pieces], 1), dense)
        # each rank stores only its share of the synapses
        assert sum(p.num_synapses for p in pieces) == n_pre * k
        # within a presynaptic row, targets keep the order they were drawn in
        lo, hi = part.range(world_size - 1)
        last = pieces[-1]
        row = 7
        drawn = table[row][(table[row] >= lo) & (table[row] < hi)] - lo
        assert torch.equal(last.targets[last.indptr[row]:last.indptr[row + 1]], drawn)
    other = blockwise_out_degree_table(n_pre, n_post, k, seed=6, stream="E", block_rows=64)
    assert not torch.equal(other, table)


def test_in_degree_rank_draws_only_its_own_blocks(monkeypatch):
    n_pre, n_post, k = 200, 300, 7
    table = blockwise_in_degree_table(n_pre, n_post, k, seed=1, block_rows=50)
    dense = torch.zeros(n_pre, n_post, dtype=torch.int64)
    dense.index_put_((table.reshape(-1).long(), torch.arange(n_post).repeat_interleave(k)),
                     torch.ones(n_post * k, dtype=torch.int64), accumulate=True)
    part = Partition(n_post, 2, align=25)
    pieces = [fixed_in_degree_local(n_pre, n_post, k, seed=1, block_rows=50,
                                    post_range=part.range(r)) for r in range(2)]
    assert torch.equal(torch.cat([p.to_dense_counts() for p in pieces], 1), dense)
    calls = []
    real = conn.block_generator
    monkeypatch.setattr(conn, "block_generator", lambda *a, **kw: calls.append(a) or real(*a, **kw))
    fixed_in_degree_local(n_pre, n_post, k, seed=1, block_rows=50, post_range=(100, 150))
    assert len(calls) == 1  # one block of 50 targets, not all 6
    calls.clear()
    fixed_out_degree_local(n_pre, n_post, k, seed=1, block_rows=50, post_range=(100, 150))
    assert len(calls) == 4  # fixed out-degree: every presynaptic block


def test_initial_values_do_not_depend_on_the_split():
    full = initial_values_local(init.Normal(-55.0 * u.mV, 5.0 * u.mV), 1000, seed=3,
                                post_range=(0, 1000), unit="mV", block_rows=128)
    parts = [initial_values_local(init.Normal(-55.0 * u.mV, 5.0 * u.mV), 1000, seed=3,
                                  post_range=r, unit="mV", block_rows=128)
             for r in [(0, 320), (320, 333), (333, 1000)]]
    assert torch.equal(torch.cat(parts), full)
    assert abs(float(full.mean()) + 55.0) < 0.6 and abs(float(full.std()) - 5.0) < 0.5
    const = initial_values_local(-60.0 * u.mV, 10, seed=0, post_range=(2, 5), unit="mV")
    assert torch.equal(const, torch.full((3,), -60.0))


def test_connectivity_bad_input():
    with pytest.raises(ValueError, match="cannot draw 9 distinct"):
        blockwise_out_degree_table(10, 5, 9, seed=0, allow_multi_conn=False)
    with pytest.raises(ValueError, match="range"):
        fixed_out_degree_local(10, 5, 2, seed=0, post_range=(3, 9))
    with pytest.raises(TypeError, match="seed"):
        blockwise_out_degree_table(10, 5, 2, seed=None)


# ------------------------------------------------- one process vs the library's models
def _library_network(num, num_exc, seed, delays):
    """LIFRef + two AlignPostProj(delay=...) with EventFixedProb fed the block tables."""
    V0 = initial_values_local(init.Normal(-55.0 * u.mV, 5.0 * u.mV), num, seed=seed,
                              post_range=(0, num), unit="mV")
    N = LIFRef(num, tau=20.0 * u.ms, tau_ref=5.0 * u.ms, V_rest=-60.0 * u.mV,
               V_reset=-60.0 * u.mV, V_th=-50.0 * u.mV, R=1 / (10.0 * u.nS), V_initializer=V0,
               spk_reset="hard")
    projs = []
    for name, lo, hi, w, tau, E, d in (("E", 0, num_exc, 6.0, 5.0, 0.0, delays[0]),
                                       ("I", num_exc, num, 67.0, 10.0, -80.0, delays[1])):
        comm = EventFixedProb(hi - lo, num, 80, w * u.nS)
        comm.indices = blockwise_out_degree_table(hi - lo, num, 80, seed=seed, stream=name)
        projs.append((lo, hi, AlignPostProj(comm=comm, syn=Expon.desc(num, tau=tau * u.ms),
                                            out=COBA.desc(E=E * u.mV), post=N, delay=d)))
    return N, projs


@pytest.mark.parametrize("delays", [(0.4, 0.2), (1.0, 1.0)])
def test_one_process_matches_align_post_projections_with_delays(delays):
    steps = 250
    net = DistributedCOBANet(scale=SCALE, seed=SEED, delay_e=delays[0], delay_i=delays[1])
    N, projs = _library_network(net.num, net.num_exc, SEED, delays)
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
        assert net.d_min == 1 + round(min(delays) / DT)
        ours = net.run(steps)
        tb.init_all_states(N)
        for _, _, p in projs:
            tb.init_all_states(p)
        ref = []
        with torch.no_grad():
            for n in range(steps):
                spikes = N.get_spike()
                for lo, hi, p in projs:
                    p(spikes[lo:hi])
                with tb.environ.context(t=n * DT):
                    ref.append(N(200.0) > 0)
    ref = torch.stack(ref)
    assert int(ref.sum()) > 100
    assert torch.equal(ours, ref)
    # one exchange per minimum delay
    assert net.comm_stats["exchanges"] == -(-steps // net.d_min)


def test_one_process_without_delays_is_the_coba_benchmark():
    net = DistributedCOBANet(scale=SCALE, seed=SEED)
    ref = COBANet(scale=SCALE, seed=0)
    for proj, name in ((ref.E, "E"), (ref.I, "I")):
        n_pre = proj.comm.n_pre
        proj.comm.indices = blockwise_out_degree_table(n_pre, net.num, 80, seed=SEED, stream=name)
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
        tb.init_all_states(ref)
        ref.N.V = net.N.V.clone()
        expected = NetworkRunner(ref, compile=False).run(300)
        ours = net.run(300)
    assert torch.equal(ours, expected)
    rate = ours.float().mean().item() / (DT * 1e-3)
    assert 5.0 < rate < 60.0


def test_cuba_variant_runs_in_float64():
    net = DistributedCUBANet(scale=0.1, seed=1, dtype=torch.float64)
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
        spikes = net.run(200)
    assert spikes.shape == (200, 400) and int(spikes.sum()) > 0
    assert net.N.V.dtype == torch.float64 and net.ring_E.dtype == torch.float64
    assert all(v.dtype == torch.float64 for k, v in net.state_dict().items()
               if v.is_floating_point())


def test_network_bad_input():
    with pytest.raises(DistributedError, match="world_size=2 but this process group has 1"):
        DistributedCOBANet(scale=0.1, world_size=2)
    with pytest.raises(ValueError, match="'scale' must be positive"):
        DistributedCOBANet(scale=0.0)
    with pytest.raises(TypeError, match="'seed' must be an int"):
        DistributedCOBANet(scale=0.1, seed=None)
    with pytest.raises(ValueError, match="'delay_e' must be a finite time"):
        DistributedCOBANet(scale=0.1, delay_e=-1.0)
    net = DistributedCOBANet(scale=0.1, delay_e=0.3)
    with pytest.raises(RuntimeError, match="dt must be known"):
        tb.init_all_states(net)
    with tb.environ.context(dt=DT * u.ms):
        with pytest.raises(RuntimeError, match="not initialised"):
            net.run(1)
        with pytest.raises(ValueError, match="batches are not supported"):
            tb.init_all_states(net, batch_size=2)
        tb.init_all_states(net)
    with tb.environ.context(dt=0.05 * u.ms), pytest.raises(RuntimeError, match="sized for dt"):
        net.run(1)


# ------------------------------------------------------------------------ microcircuit
def _table_rows(params, seed, ranges, **kw):
    """Every synapse of the split tables as global (pre, post, delay, weight) rows, sorted."""
    rows = []
    for lo, hi in ranges:
        indptr, post, delay, weight = microcircuit_connectivity_local(
            params, seed=seed, post_range=(lo, hi), **kw)
        pre = torch.repeat_interleave(torch.arange(params.num), indptr[1:] - indptr[:-1])
        rows.append(torch.stack([pre.double(), post.double() + lo, delay.double(),
                                 weight.double()], 1))
    table = torch.cat(rows)
    for col in (3, 2, 1, 0):  # lexicographic sort, most significant column last
        table = table[torch.argsort(table[:, col], stable=True)]
    return table


def test_microcircuit_connectivity_does_not_depend_on_the_split():
    params = microcircuit_parameters(0.01, 0.05, "poisson")
    num = params.num
    kw = dict(delays=True, dt=0.1, block_rows=96)
    whole = _table_rows(params, 5, [(0, num)], **kw)
    assert whole.shape[0] == int(params.synapse_counts.sum())
    for cuts in ((0, 400, num), (0, 64, 300, 301, num)):
        ranges = list(zip(cuts[:-1], cuts[1:], strict=False))
        assert torch.equal(_table_rows(params, 5, ranges, **kw), whole)
    assert not torch.equal(_table_rows(params, 6, [(0, num)], **kw), whole)


def test_microcircuit_connectivity_has_the_published_statistics():
    params = microcircuit_parameters(0.05, 0.1, "poisson")
    off, sizes = params.offsets, params.num_neurons
    indptr, post, delay, weight = microcircuit_connectivity_local(
        params, seed=0, post_range=(0, params.num), dt=0.1, block_rows=256)
    pre = torch.repeat_interleave(torch.arange(params.num), indptr[1:] - indptr[:-1])
    pre_pop = torch.bucketize(pre, torch.tensor(off[1:]), right=True)
    post_pop = torch.bucketize(post.long(), torch.tensor(off[1:]), right=True)
    counts = torch.zeros(8, 8, dtype=torch.int64)
    counts.index_put_((post_pop, pre_pop), torch.ones_like(pre), accumulate=True)
    assert torch.equal(counts, torch.from_numpy(params.synapse_counts))  # exact per pathway
    # L4E -> L2/3E: uniform targets and sources (chi-square over 20 bins, far below 1e-6 tails)
    mask = (post_pop == 0) & (pre_pop == 2)
    for values, lo, n in ((post[mask].long(), off[0], sizes[0]), (pre[mask], off[2], sizes[2])):
        hist = torch.bincount((values - lo) * 20 // n, minlength=20).double()
        expected = hist.sum() / 20
        assert float(((hist - expected) ** 2 / expected).sum()) < 60.0
    # weights: mean 2 J / sqrt(k) with 10 % spread; delays: 1.5 ms (E) and 0.75 ms (I), >= 1 step
    w = weight[mask].double()
    assert abs(float(w.mean()) / params.weight_mean[0, 2] - 1) < 0.01
    assert abs(float(w.std()) / abs(params.weight_mean[0, 2]) - 0.1) < 0.01
    assert int(delay.min()) >= 1
    exc = (pre_pop % 2 == 0)

    def truncated_mean_steps(mean, std, low=0.1):  # normal redrawn below `low`, in 0.1 ms steps
        a = (low - mean) / std
        pdf = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
        return (mean + std * pdf / (0.5 * math.erfc(a / math.sqrt(2)))) / 0.1

    assert abs(float(delay[exc].double().mean()) - truncated_mean_steps(1.5, 0.75)) < 0.05
    assert abs(float(delay[~exc].double().mean()) - truncated_mean_steps(0.75, 0.375)) < 0.05
    assert bool((weight[exc] >= 0).all()) and bool((weight[~exc] <= 0).all())


@pytest.mark.parametrize("drive", ["poisson", "dc"])
def test_one_rank_microcircuit_is_the_model_with_the_same_table(drive):
    """Microcircuit given DistributedMicrocircuit's table, initial potentials and Poisson seed
    spikes identically, bit for bit (the exchange batched by D_min, the ring slots and the
    summation order all agree)."""
    kw = dict(scale=0.02, k_scale=0.1, seed=4, drive=drive)
    ours = DistributedMicrocircuit(**kw)
    ref = Microcircuit(**kw)
    conn = ref.conn
    conn.indptr = ours.indptr.to(conn.indptr.dtype)
    conn.codes = ours.codes.to(conn.codes.dtype)
    conn.weight = ours.weight.clone()
    conn.n_slots = ours.n_slots
    if drive == "poisson":
        ref.ext.reseed(seed=ours.ext_seed)
    steps = 400
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(ours)
        tb.init_all_states(ref)
        ref.neurons.V = ours.N.V.clone()
        expected = NetworkRunner(ref, compile=False).run(steps)
        got = ours.run(steps)
    assert int(got.sum()) > 100
    assert torch.equal(got, expected)
    assert ours.d_min == 2 and ours.comm_stats["exchanges"] == steps // 2
    rates = ours.population_rates(got)
    assert all(0.05 < r < 40 for r in rates.values()), rates


def test_microcircuit_without_delay_spread_exchanges_every_nine_steps():
    net = DistributedMicrocircuit(scale=0.01, k_scale=0.05, delays=False, drive="dc")
    assert set(net.delay_steps().unique().tolist()) == {8, 15}
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
        net.run(90)
    assert net.d_min == 9 and net.comm_stats["exchanges"] == 10


def test_microcircuit_copies_continue_the_same_simulation():
    import copy
    import pickle

    net = DistributedMicrocircuit(scale=0.01, k_scale=0.05, seed=1)
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
        net.run(50)
        twin = copy.deepcopy(net)
        thawed = pickle.loads(pickle.dumps(net))
        wide = copy.deepcopy(net).to(torch.float64)
        expected = net.run(150)
        assert int(expected.sum()) > 0
        assert torch.equal(twin.run(150), expected)
        assert torch.equal(thawed.run(150), expected)
        assert wide.ring.dtype == wide.weight.dtype == wide.N.V.dtype == torch.float64
        # another rounding of the same dynamics: a few spikes may move, most do not
        assert float((wide.run(150) != expected).float().mean()) < 1e-3
    assert "DistributedMicrocircuit" in repr(net) and "d_min=2" in repr(net)


def test_microcircuit_bad_input():
    with pytest.raises(ValueError, match="'drive' must be 'poisson' or 'dc'"):
        DistributedMicrocircuit(scale=0.01, drive="ac")
    with pytest.raises(ValueError, match="leaves a population without neurons"):
        DistributedMicrocircuit(scale=1e-5)
    with pytest.raises(TypeError, match="'seed' must be an int"):
        DistributedMicrocircuit(scale=0.01, seed=1.5)
    with pytest.raises(DistributedError, match="world_size=2"):
        DistributedMicrocircuit(scale=0.01, k_scale=0.05, world_size=2)
    params = microcircuit_parameters(0.01, 0.05, "dc")
    with pytest.raises(ValueError, match="'post_range' must satisfy"):
        microcircuit_connectivity_local(params, seed=0, post_range=(5, 5))
    net = DistributedMicrocircuit(scale=0.01, k_scale=0.05, drive="dc")
    with tb.environ.context(dt=DT * u.ms):
        with pytest.raises(RuntimeError, match="not initialised"):
            net.run(1)
        with pytest.raises(ValueError, match="batches are not supported"):
            tb.init_all_states(net, batch_size=2)
        tb.init_all_states(net)
        with pytest.raises(ValueError, match=r"raster of shape \(steps, "):
            net.population_rates(torch.zeros(3, 5, dtype=torch.bool))
    with tb.environ.context(dt=0.05 * u.ms), pytest.raises(RuntimeError, match="steps of 0.1 ms"):
        net.run(1)


# --------------------------------------------------------------- one-process checkpoints
def test_checkpoint_and_global_state_continue_the_same_simulation(tmp_path):
    kw = dict(scale=0.1, seed=2, delay_e=0.3, delay_i=0.2)
    net = DistributedCOBANet(**kw)
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
        net.run(37)  # stop inside an exchange interval: queued spikes are part of the state
        save_checkpoint(net, str(tmp_path / "ckpt"))
        state = gather_state_dict(net)
        torch.save(state, tmp_path / "global.pt")
        expected = net.run(60)
        full = gather_raster(expected, net)
        assert torch.equal(full, expected)
        for restore in ("rank files", "global"):
            fresh = DistributedCOBANet(**kw)
            tb.init_all_states(fresh)
            if restore == "rank files":
                load_checkpoint(fresh, str(tmp_path / "ckpt"))
            else:
                load_global_state_dict(fresh, torch.load(tmp_path / "global.pt"))
            assert torch.equal(fresh.run(60), expected), restore
        other = DistributedCOBANet(**{**kw, "seed": 3})
        tb.init_all_states(other)
        with pytest.raises(DistributedError, match="another model: seed"):
            load_checkpoint(other, str(tmp_path / "ckpt"))
    with tb.environ.context(dt=0.2 * u.ms):
        tb.init_all_states(fresh)
        with pytest.raises(DistributedError, match="dt = 0.1 ms"):
            load_global_state_dict(fresh, state)
    with pytest.raises(RuntimeError, match="not initialised"):
        save_checkpoint(DistributedCOBANet(**kw), str(tmp_path / "x"))
    with pytest.raises(FileNotFoundError, match="no rank files"):
        load_checkpoint(fresh, str(tmp_path))


def test_ignore_states_in_ddp_lists_states_not_parameters():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), LIF(4, R=1.0, V_th=1.0))
    tb.init_all_states(model, batch_size=2)
    names = ignore_states_in_ddp(model)
    # the one-shot input States are per replica too (what waits for this replica's next step)
    expected = ["1.V", "1.pending_current", "1.pending_delta"]
    assert names == expected
    assert model._ddp_params_and_buffers_to_ignore == expected
    assert "1.tau" not in names and "0.weight" not in names


# ------------------------------------------------------------------ 2 processes, torchrun
needs_gloo = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="this PyTorch build has no gloo backend",
)


def _torchrun(args, timeout):
    exe = os.path.join(os.path.dirname(sys.executable), "torchrun")
    launcher = [exe] if os.path.exists(exe) else [sys.executable, "-m", "torch.distributed.run"]
    cmd = [*launcher, "--standalone", "--nproc_per_node=2", "-m",
           "torchbrain.distributed._selftest", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    tic = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as err:  # never hang the suite
        pytest.fail(f"torchrun did not finish within {timeout} s: {err}")
    seconds = time.perf_counter() - tic
    reports = {}
    decoder = json.JSONDecoder()
    for match in re.finditer(r"SELFTEST \w+ rank (\d+) ", proc.stdout):
        reports[int(match.group(1))] = decoder.raw_decode(proc.stdout, match.end())[0]
    return proc, reports, seconds


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("distributed")
    proc, done, _ = _torchrun(["--scenario", "main", "--out", str(out), "--timeout", "30"],
                              timeout=180)
    assert proc.returncode == 0 and set(done) == {0, 1}, proc.stdout + proc.stderr[-4000:]
    reports = {r: json.loads((out / f"report{r}.json").read_text()) for r in (0, 1)}
    yield out, reports
    shutil.rmtree(out, ignore_errors=True)


def _one_rank_reference(**extra):
    kw = dict(scale=SCALE, seed=SEED, delay_e=DELAY_E, delay_i=DELAY_I, **extra)
    net = DistributedCOBANet(**kw)
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
    return net, kw


@needs_gloo
def test_two_ranks_give_the_one_rank_raster(two_ranks):
    out, reports = two_ranks
    net, _ = _one_rank_reference()
    with tb.environ.context(dt=DT * u.ms):
        expected = net.run(STEPS1 + STEPS2)
        net_in = DistributedCOBANet(scale=SCALE, seed=SEED + 1, rule="fixed_in")
        tb.init_all_states(net_in)
        expected_in = net_in.run(STEPS_IN)
    rasters = torch.load(out / "rasters.pt")
    assert int(expected.sum()) > 100
    assert torch.equal(rasters["raster"], expected)
    assert torch.equal(rasters["raster_in"], expected_in)
    # each rank stored the incoming synapses of its own neurons only
    per_rank = reports[0]["per_rank"]
    synapses = [r["synapses"] for r in per_rank]
    assert sum(synapses) == net.num_local_synapses() == net.num * 80
    assert max(synapses) < 0.6 * sum(synapses)
    # spikes were exchanged once per minimum delay (here 3 steps)
    stats = per_rank[0]["stats"]
    assert stats["exchanges"] == -(-(STEPS1 + STEPS2) // 3)
    assert reports[0]["bounds"] == [0, 512, 1000]


@needs_gloo
def test_two_rank_checkpoints_restore_on_two_ranks_and_on_one(two_ranks):
    out, reports = two_ranks
    assert reports[0]["restored_equal"] and reports[1]["restored_equal"]
    net, kw = _one_rank_reference()
    with tb.environ.context(dt=DT * u.ms):
        expected = net.run(STEPS1 + STEPS2)[STEPS1:]
        # the gathered (global) state restores on any number of ranks
        load_global_state_dict(net, torch.load(out / "global.pt"))
        assert torch.equal(net.run(STEPS2), expected)
        # per-rank files: a different world size is refused unless resharding is asked for
        fresh = DistributedCOBANet(**kw)
        tb.init_all_states(fresh)
        with pytest.raises(DistributedError, match="written by 2 ranks but this run has 1"):
            load_checkpoint(fresh, str(out / "ckpt"))
        load_checkpoint(fresh, str(out / "ckpt"), reshard=True)
        assert torch.equal(fresh.run(STEPS2), expected)


@needs_gloo
def test_ddp_trains_with_states_per_replica(two_ranks):
    _, reports = two_ranks
    for rank in (0, 1):
        ddp = reports[rank]["ddp"]
        for variant in ("ignore_states", "broadcast_buffers_false"):
            flags = ddp[variant]
            assert flags == {"init_states_kept": True, "grads_are_rank_mean": True,
                             "params_in_sync": True, "states_differ": True,
                             "trained": True}, (variant, flags)
        # why the settings are needed: DDP's defaults overwrite the States with rank 0's
        assert ddp["default_overwrites_states"] is True


@needs_gloo
def test_lightning_ddp_keeps_states_per_replica(two_ranks):
    _, reports = two_ranks
    if reports[0]["lightning"] is None:
        pytest.skip("lightning is not installed")
    for rank in (0, 1):
        assert reports[rank]["lightning"] == {"states_carried_per_replica": True,
                                              "params_in_sync": True, "states_differ": True}
    # Lightning's DDP defaults: rank 1's States are replaced by rank 0's at every forward
    assert reports[1]["lightning_default"]["states_carried_per_replica"] is False


@needs_gloo
def test_two_rank_microcircuit_gives_the_one_rank_raster(two_ranks):
    out, reports = two_ranks
    steps1, steps2 = MICROCIRCUIT_STEPS
    net = DistributedMicrocircuit(**MICROCIRCUIT)
    with tb.environ.context(dt=DT * u.ms):
        tb.init_all_states(net)
        expected = net.run(steps1 + steps2)
    got = torch.load(out / "microcircuit.pt")["raster"]
    assert int(expected.sum()) > 80
    assert torch.equal(got, expected)
    mine = [reports[r]["microcircuit"] for r in (0, 1)]
    assert all(m["restored_equal"] for m in mine)
    # each rank drew and stored the synapses onto its own neurons only
    assert mine[0]["synapses"] + mine[1]["synapses"] == net.num_local_synapses()
    assert max(m["synapses"] for m in mine) < 0.65 * net.num_local_synapses()
    # the rates are reduced over the ranks: both see the whole network's rates
    rates = net.population_rates(expected)
    for m in mine:
        assert m["rates"] == pytest.approx(rates, rel=1e-12)
    assert mine[0]["stats"]["exchanges"] == (steps1 + steps2) // net.d_min


@needs_gloo
def test_ranks_that_disagree_fail_clearly_on_every_rank(two_ranks):
    _, reports = two_ranks
    for rank in (0, 1):
        bad = reports[rank]["bad_input"]
        assert "built for world_size=3 but this process group has 2 ranks" in bad["world_size"]
        assert "disagree on the model" in bad["seed"] and "seed: rank 0=7, rank 1=8" in bad["seed"]
        assert "out of step" in bad["steps"] and "rank 1: step 5" in bad["steps"]


@needs_gloo
@pytest.mark.parametrize("scenario", ["hang", "die"])
def test_a_rank_that_hangs_or_dies_gives_an_error_not_a_hang(scenario):
    proc, reports, seconds = _torchrun(["--scenario", scenario, "--timeout", "3",
                                        "--scale", "0.1"], timeout=120)
    assert proc.returncode != 0
    assert seconds < 90  # the job ended by itself: no rank was left waiting
    error = reports.get(0, {}).get("error", "")
    if scenario == "hang":
        assert "spike exchange at step 0" in error and "collective timeout" in error, proc.stdout
        assert 2.5 < reports[0]["seconds"] < 30
    else:
        # rank 0 sees the closed connection at once (unless torchrun stopped it first)
        assert not error or "spike exchange at step 0" in error, proc.stdout
        if error:
            assert reports[0]["seconds"] < 10
