"""Lightning integration: State resets between batches, firing-rate logging, the classifier."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
from torch import nn

import torchbrain as tb
from torchbrain.training.layers import MultiStepLIF


def test_module_imports_without_lightning_and_says_what_to_install(monkeypatch):
    """A fresh copy of torchbrain/lightning.py loaded while lightning cannot be imported."""
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        monkeypatch.setitem(sys.modules, name, None)
    path = tb.__path__[0] + "/lightning.py"
    spec = importlib.util.spec_from_file_location("torchbrain._lightning_copy", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    assert module.LIGHTNING_AVAILABLE is False
    for cls in (module.ResetStates, module.FiringRateMonitor, module.SpikingClassifier):
        with pytest.raises(ImportError, match="pip install lightning"):
            cls()


L = pytest.importorskip("lightning")

from torchbrain.lightning import FiringRateMonitor, ResetStates, SpikingClassifier  # noqa: E402

pytestmark = [
    # Lightning's own notices on this torch version, not torchbrain's.
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:lightning.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:lightning.*"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*litlogger.*"),
]


def _loader(n=48, batch=16):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 6, generator=g)
    y = (x[:, 0] > x[:, 1]).long()
    ds = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(ds, batch_size=batch, drop_last=False)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), MultiStepLIF(16, tau=2.0, dt=1.0),
                         nn.Linear(16, 2), MultiStepLIF(2, tau=2.0, dt=1.0))


def _trainer(callbacks, epochs=2):
    return L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, callbacks=callbacks)


def test_two_epochs_with_reset_and_rate_monitor():
    """Training batches of 16, validation batches of 16, 16 and 8: no 'backward through the
    graph a second time', States sized from each batch, rates logged per layer at epoch end."""
    module = SpikingClassifier(_model(), T=8, encoder=lambda x, T: (x * 4).expand(T, *x.shape))
    monitor = FiringRateMonitor()
    trainer = _trainer([ResetStates(), monitor])
    trainer.fit(module, _loader(), _loader(n=40))
    metrics = trainer.callback_metrics
    assert trainer.current_epoch == 2
    for stage in ("train", "val"):
        for layer in ("model.1", "model.3"):
            rate = metrics[f"firing_rate/{stage}/{layer}"]
            assert 0 <= float(rate) <= 1000  # Hz: at most one spike per 1 ms step
            assert float(monitor.rates[f"{stage}/{layer}"]) == float(rate)
        assert float(metrics[f"firing_rate/{stage}/model.1"]) > 0
    assert "train_loss" in metrics and "val_acc" in metrics
    # After the last (validation) batch of 8 the States were reset for it.
    assert module.model[1].V.shape[0] == 8


def test_rate_monitor_counts_match_a_direct_computation():
    model = _model()
    module = SpikingClassifier(model, T=5, encoder=lambda x, T: (x * 4).expand(T, *x.shape))
    monitor = FiringRateMonitor(dt=0.5 * tb.u.ms)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[ResetStates(), monitor],
                        limit_train_batches=1, num_sanity_val_steps=0)
    # A learning rate of 0: the rate over the epoch equals one forward pass of the batch.
    module.lr = 0.0
    trainer.fit(module, _loader(n=16))
    tb.reset_all_states(model)
    x, _ = next(iter(_loader(n=16)))
    with torch.no_grad():
        hidden = model[1](model[0]((x * 4).expand(5, *x.shape)))
    # spikes per neuron and step over dt = 0.5 ms, in Hz
    torch.testing.assert_close(monitor.rates["train/model.1"], hidden.mean() * 2000.0)


class _Clock(nn.Module):
    """Spikes on every ``period``-th step of a (T, B, N) output: rate 1000 / (period dt) Hz."""

    def __init__(self, period: int):
        super().__init__()
        self.period = period

    def forward(self, x):
        T = x.shape[0]
        on = (torch.arange(T) % self.period == 0).to(x.dtype)
        return on[:, None, None].expand(T, *x.shape[1:])


class _Logged:
    training = True

    def __init__(self, model):
        self.model = model
        self.logged = {}

    def named_modules(self):
        return self.model.named_modules()

    def log(self, name, value, **kwargs):
        self.logged[name] = value


def test_rate_monitor_reports_hz_of_a_regular_spike_train():
    """A clock spiking every 4th step at dt = 0.5 ms fires at 500 Hz (T = 40: exactly 10
    spikes per neuron), read from the explicit dt or from tb.environ's."""
    model = nn.Sequential(_Clock(4))
    for monitor, context in ((FiringRateMonitor(layer_types=(_Clock,), dt=0.5 * tb.u.ms),
                              {}),
                             (FiringRateMonitor(layer_types=(_Clock,)),
                              {"dt": 0.5 * tb.u.ms})):
        host = _Logged(model)
        monitor.setup(None, host, "fit")
        with tb.environ.context(**context):
            for batch in (3, 5):
                model(torch.zeros(40, batch, 7))
        monitor.on_train_epoch_end(None, host)
        monitor.teardown(None, host, "fit")
        assert float(host.logged["firing_rate/train/0"]) == pytest.approx(500.0)
        assert float(monitor.rates["train/0"]) == pytest.approx(500.0)
    # without any dt the hook says which one is missing
    monitor = FiringRateMonitor(layer_types=(_Clock,))
    monitor.setup(None, _Logged(model), "fit")
    with pytest.raises(KeyError, match="FiringRateMonitor needs the time step 'dt'"):
        model(torch.zeros(4, 1, 2))
    monitor.teardown(None, None, "fit")
    with pytest.raises(tb.UnitError):
        FiringRateMonitor(dt=1 * tb.u.mV)


def test_without_reset_the_second_batch_fails_with_a_clear_message():
    module = SpikingClassifier(_model(), T=8, encoder=lambda x, T: (x * 4).expand(T, *x.shape))
    trainer = _trainer([], epochs=1)
    with pytest.raises(RuntimeError, match="reset_all_states"):
        trainer.fit(module, _loader())


def test_reset_states_batch_size_sources():
    model = _model()
    cb = ResetStates(batch_dim=1)
    cb._reset(model, (torch.zeros(7, 3, 6), torch.zeros(3)))
    assert model[1].V.shape == (3, 16)
    ResetStates(batch_size_fn=lambda b: 5)._reset(model, {"x": torch.zeros(2, 6)})
    assert model[1].V.shape == (5, 16)
    ResetStates()._reset(model, {"x": torch.zeros(4, 6)})
    assert model[3].V.shape == (4, 2)
    with pytest.raises(ValueError, match="batch_dim"):
        ResetStates(batch_dim=-1)
    with pytest.raises(ValueError, match="readout"):
        SpikingClassifier(model, T=3, readout="sum")
    with pytest.raises(ValueError, match="'T'"):
        SpikingClassifier(model)
