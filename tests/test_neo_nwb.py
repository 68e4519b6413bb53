"""Neo and NWB out: Elephant's statistics on exported trains equal tb.analysis on the same
spikes, and NWB files read back equal to what was written."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchbrain as tb
from torchbrain import u

neo = pytest.importorskip("neo")
pq = pytest.importorskip("quantities")

from torchbrain.interop import read_nwb, to_neo, write_nwb  # noqa: E402

DT = 0.1  # ms


def _run(T=3000, seed=0):
    """A noisy-input LIF population, monitored for spikes and V (stride 1) -- one trial."""
    torch.manual_seed(seed)
    n = 8
    neuron = tb.LIF(n, tau=10 * u.ms, R=1 * u.gigaohm, V_th=1 * u.mV, spk_reset="hard")
    tb.init_all_states(neuron)
    mon = tb.Monitor(neuron, ["V", "get_spike"])
    drive = 1.2 + 3.0 * torch.randn(T, n)
    with tb.environ.context(dt=DT * u.ms):
        for t in range(T):
            with tb.environ.context(t=t * DT * u.ms):
                neuron(drive[t])
                mon.record()
    return neuron, mon


def test_neo_block_has_trains_and_signals_with_units():
    net, mon = _run(T=500)
    block = to_neo({"E": mon}, dt=DT * u.ms, spikes=["get_spike"])
    seg = block.segments[0]
    assert len(seg.spiketrains) == 8 and len(seg.analogsignals) == 1
    sig = seg.analogsignals[0]
    assert sig.units == pq.mV and sig.sampling_period == DT * pq.ms
    assert sig.t_start == 0 * pq.ms and sig.shape == (500, 8)
    np.testing.assert_allclose(sig.magnitude, mon.values["V"].double().numpy())
    st = seg.spiketrains[3]
    assert st.t_stop == 50.0 * pq.ms and st.annotations["population"] == "E"
    steps = torch.nonzero(mon.values["get_spike"][:, 3]).flatten().double() * DT
    np.testing.assert_allclose(st.rescale(pq.ms).magnitude, steps.numpy())
    assert block.groups[0].name == "E" and len(block.groups[0].spiketrains) == 8


# Elephant passes quantities' deprecated copy= argument internally (not torchbrain's code)
@pytest.mark.filterwarnings("ignore:The 'copy' argument in Quantity is deprecated")
def test_elephant_statistics_equal_tb_analysis():
    stats = pytest.importorskip("elephant.statistics")
    _, mon = _run()
    spikes = mon.values["get_spike"]
    trains = to_neo(mon, dt=DT * u.ms, spikes=["get_spike"]).segments[0].spiketrains
    rates = tb.analysis.neuron_rates(spikes, dt=DT)
    cvs = tb.analysis.isi_cv(spikes).per_neuron
    w = 500
    fanos = tb.analysis.fano_factor(spikes, window_steps=w).per_neuron
    assert spikes.sum() > 100
    for i, st in enumerate(trains):
        ours = stats.mean_firing_rate(st).rescale(pq.Hz).magnitude
        np.testing.assert_allclose(ours, rates[i].item(), rtol=1e-6)
        np.testing.assert_allclose(stats.cv(stats.isi(st).magnitude), cvs[i].item(), rtol=1e-5)
        # Elephant's Fano factor is over trials: give it the windows as trials (half-step edges)
        windows = [st.time_slice((j * w - 0.5) * DT * pq.ms, ((j + 1) * w - 0.5) * DT * pq.ms)
                   for j in range(spikes.shape[0] // w)]
        np.testing.assert_allclose(stats.fanofactor(windows), fanos[i].item(), rtol=1e-5)


def test_nwb_round_trip(tmp_path):
    pytest.importorskip("pynwb")
    net, mon = _run(T=400)
    path = tmp_path / "run.nwb"
    write_nwb(path, {"E": mon}, dt=DT * u.ms, spikes=["get_spike"], network=net)
    back = read_nwb(path)
    spikes = mon.values["get_spike"]
    trains = back["spikes"]["E"]["get_spike"]
    assert len(trains) == 8
    for i, times in enumerate(trains):
        steps = np.round(times / DT).astype(int)
        np.testing.assert_array_equal(steps, torch.nonzero(spikes[:, i]).flatten().numpy())
    np.testing.assert_allclose(back["intervals"]["E"], (0.0, 40.0))
    sig = back["signals"]["E.V"]
    assert sig["unit"] == "mV"
    np.testing.assert_allclose(sig["period"], DT)
    np.testing.assert_array_equal(sig["values"], mon.values["V"].double().numpy())
    desc = back["network"]["modules"][0]
    assert desc["type"] == "LIF" and desc["parameters"]["tau"] == "10 ms"
    assert desc["size"] == [8]


def test_errors_are_clear():
    with pytest.raises(ValueError, match="unit of record 'g'"):
        to_neo({"g": torch.zeros(5, 2)}, dt=1.0)
    with pytest.raises(ValueError, match=r"shape \(T, N\)"):
        to_neo({"spike": torch.zeros(5, 2, 3)}, dt=1.0)
