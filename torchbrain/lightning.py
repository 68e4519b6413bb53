"""Lightning integration: State resets, firing-rate logging, an example classifier module.

Optional: needs ``lightning`` (``pip install lightning``; the older ``pytorch_lightning`` package
works too). Importing this module without it succeeds, but creating any class here raises an
``ImportError`` that says what to install.

* :class:`ResetStates` (a ``Callback``) resets every State of the LightningModule at the start
  of each train/validation/test/predict batch, sized from the batch, by rebinding (the previous
  batch's graph is freed). Without it the second training batch continues from the first one's
  States and fails (torchbrain's layers say so; plain autograd says "Trying to backward through
  the graph a second time").
* :class:`FiringRateMonitor` (a ``Callback``) counts spikes of every spiking layer in
  device-side accumulators (no host synchronisation per batch) and logs the mean firing rate
  of each layer in Hz (as :mod:`torchbrain.analysis` reports rates) at the end of every train
  and validation epoch, as ``firing_rate/train/<layer>`` and ``firing_rate/val/<layer>``.
* :class:`SpikingClassifier` (a ``LightningModule``) trains any sequence model with an optional
  spike encoder and a spike-count or membrane readout loss.

Lightning 2.x has no truncated-BPTT support of its own; see :mod:`torchbrain.training.tbptt`
for the loop to run in a manual-optimisation ``training_step``.

Example::

    import lightning as L
    from torchbrain.lightning import FiringRateMonitor, ResetStates, SpikingClassifier

    module = SpikingClassifier(model, T=20, encoder="poisson", readout="count")
    trainer = L.Trainer(max_epochs=10, callbacks=[ResetStates(), FiringRateMonitor()])
    trainer.fit(module, train_loader, val_loader)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .state import detach_states, reset_all_states

try:  # pragma: no cover - depends on the environment
    import lightning.pytorch as _pl
except ImportError:  # pragma: no cover
    try:
        import pytorch_lightning as _pl
    except ImportError:
        _pl = None

__all__ = ["ResetStates", "FiringRateMonitor", "SpikingClassifier", "LIGHTNING_AVAILABLE"]

#: Whether a Lightning package could be imported.
LIGHTNING_AVAILABLE = _pl is not None

_MISSING = ("torchbrain.lightning needs the 'lightning' package: pip install lightning "
            "(or pip install torchbrain[lightning])")


if _pl is not None:
    _Callback = _pl.Callback
    _LightningModule = _pl.LightningModule
else:  # pragma: no cover - exercised only without lightning

    class _Missing:
        def __new__(cls, *args, **kwargs):
            raise ImportError(_MISSING)

    _Callback = _Missing
    _LightningModule = _Missing


def _batch_size(batch: Any, batch_dim: int) -> int | None:
    """The size along ``batch_dim`` of the first tensor found in ``batch`` (a pytree)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[batch_dim]) if batch.dim() > batch_dim else None
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, tuple | list):
        for item in batch:
            size = _batch_size(item, batch_dim)
            if size is not None:
                return size
    return None


class ResetStates(_Callback):
    """Reset the model's States at the start of every batch (train, validation, test, predict).

    Parameters
    ----------
    batch_dim : int, default 0
        Dimension of the batch in the first tensor of the batch (``1`` for time-major data).
    batch_size_fn : callable, optional
        ``batch_size_fn(batch) -> int``, overriding ``batch_dim``.
    detach_at_end : bool, default True
        Also detach the States at the end of each training batch, so the graph of the batch is
        released right away instead of at the next reset.
    """

    def __init__(self, batch_dim: int = 0, batch_size_fn: Callable[[Any], int] | None = None,
                 detach_at_end: bool = True):
        super().__init__()
        if isinstance(batch_dim, bool) or not isinstance(batch_dim, int) or batch_dim < 0:
            raise ValueError(f"ResetStates: 'batch_dim' must be an int >= 0, got {batch_dim!r}")
        self.batch_dim = batch_dim
        self.batch_size_fn = batch_size_fn
        self.detach_at_end = bool(detach_at_end)

    def _reset(self, pl_module: nn.Module, batch: Any) -> None:
        size = (self.batch_size_fn(batch) if self.batch_size_fn is not None
                else _batch_size(batch, self.batch_dim))
        reset_all_states(pl_module, size)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._reset(pl_module, batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.detach_at_end:
            detach_states(pl_module)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._reset(pl_module, batch)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._reset(pl_module, batch)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._reset(pl_module, batch)


def _default_spiking_types() -> tuple[type, ...]:
    from .neurons.base import Neuron
    from .training.layers import _SpikingBase

    return (_SpikingBase, Neuron)


class FiringRateMonitor(_Callback):
    r"""Log the mean firing rate of every spiking layer, in Hz, at the end of each epoch.

    Forward hooks add each layer's spike count to a device-side accumulator (no ``.item()`` per
    batch) and its neuron-time (elements of the output times the step) to a host-side one; the
    epoch-end hooks log

    .. math::

        r = \frac{1000}{\sum_b n_b\,\Delta t_b} \sum_b \sum_{k} s_{b,k} \quad \text{Hz}

    (:math:`n_b` spike entries of batch :math:`b`, step :math:`\Delta t_b` in ms) as
    ``{prefix}/train/<layer>`` and ``{prefix}/val/<layer>``, the rate
    :func:`torchbrain.analysis.mean_rate` gives for the same spikes. The last logged values are
    kept in :attr:`rates` (``{"train/<layer>": tensor}``, Hz).

    Parameters
    ----------
    layer_types : tuple of type, optional
        Which modules to watch; default torchbrain's multi-step spiking layers and neuron
        populations. A module's output (or the first element of a tuple output) must be its
        spikes.
    prefix : str, default 'firing_rate'
    dt : quantity [time] or float, optional
        The time step (ms when a number). Default: each layer's own step (the ``dt`` a
        multi-step layer runs with), else ``tb.environ``'s ``dt`` at the forward pass.
    """

    def __init__(self, layer_types: tuple[type, ...] | None = None, prefix: str = "firing_rate",
                 dt: Any = None):
        super().__init__()
        self.layer_types = layer_types
        self.prefix = prefix
        if dt is not None:
            from .analysis import _scalar_ms

            dt = _scalar_ms(dt, "FiringRateMonitor", "dt")
        self.dt = dt
        self.rates: dict[str, torch.Tensor] = {}
        self._handles: list = []
        self._sums: dict[tuple[str, str], torch.Tensor] = {}
        self._neuron_ms: dict[tuple[str, str], float] = {}

    def _step_ms(self, module: nn.Module) -> float:
        if self.dt is not None:
            return self.dt
        own = getattr(module, "_dt_value", None)  # the multi-step layers' effective dt
        if callable(own):
            return float(own())
        from . import environ

        return environ.get_dt_value(desc="FiringRateMonitor")

    def setup(self, trainer, pl_module, stage):
        self.teardown(trainer, pl_module, stage)
        types = self.layer_types or _default_spiking_types()
        for name, mod in pl_module.named_modules():
            if isinstance(mod, types):
                self._handles.append(mod.register_forward_hook(self._hook(name or "model")))

    def teardown(self, trainer, pl_module, stage):
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, name: str):
        def hook(module, args, output):
            spikes = output[0] if isinstance(output, tuple | list) else output
            if not isinstance(spikes, torch.Tensor):
                return
            key = ("train" if module.training else "val", name)
            with torch.no_grad():
                total = spikes.detach().sum(dtype=torch.float32)
                held = self._sums.get(key)
                self._sums[key] = total if held is None else held + total
            self._neuron_ms[key] = (self._neuron_ms.get(key, 0.0)
                                    + spikes.numel() * self._step_ms(module))

        return hook

    def _log(self, pl_module, stage: str) -> None:
        for (kind, name), total in list(self._sums.items()):
            if kind != stage:
                continue
            neuron_ms = self._neuron_ms[(kind, name)]
            rate = total * (1000.0 / neuron_ms) if neuron_ms > 0 else total * 0.0
            self.rates[f"{stage}/{name}"] = rate
            pl_module.log(f"{self.prefix}/{stage}/{name}", rate, on_epoch=True, on_step=False)
            del self._sums[(kind, name)]
            del self._neuron_ms[(kind, name)]

    def on_train_epoch_end(self, trainer, pl_module):
        self._log(pl_module, "train")

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            self._sums = {k: v for k, v in self._sums.items() if k[0] != "val"}
            self._neuron_ms = {k: v for k, v in self._neuron_ms.items() if k[0] != "val"}
            return
        self._log(pl_module, "val")


class SpikingClassifier(_LightningModule):
    """A LightningModule that trains a spiking sequence classifier.

    ``forward(x)`` encodes a batch ``x`` of shape ``(B, ...)`` into ``(T, B, ...)`` spikes (or
    takes ``x`` as it is without an encoder) and runs ``model``. The loss and the predicted
    class come from the output ``(T, B, C)`` reduced over time.

    Parameters
    ----------
    model : nn.Module
        Takes time-major ``(T, B, ...)`` input, returns ``(T, B, C)``.
    T : int, optional
        Steps of the encoder (required with an encoder).
    encoder : {'poisson', 'latency'}, callable or None, default 'poisson'
        ``encoder(x, T) -> (T, B, ...)``; ``None``: the data are already sequences.
    readout : {'count', 'max', 'mean', 'last'}, default 'count'
        ``'count'``: spike-count cross-entropy (the output is spikes); the others: membrane
        cross-entropy of a readout trace reduced by max/mean/last.
    lr : float, default 1e-3
        Adam learning rate.
    rate_regularizer : dict, optional
        Keyword arguments of :func:`torchbrain.training.firing_rate_regularizer` applied to the
        output (e.g. ``{"upper": 0.2}``), with weight ``rate_weight``.
    rate_weight : float, default 1.0
    """

    def __init__(self, model: nn.Module, T: int | None = None,
                 encoder: str | Callable | None = "poisson", readout: str = "count",
                 lr: float = 1e-3, rate_regularizer: dict | None = None,
                 rate_weight: float = 1.0):
        super().__init__()
        from .training import encoders

        if readout not in ("count", "max", "mean", "last"):
            raise ValueError(f"SpikingClassifier: 'readout' must be 'count', 'max', 'mean' or "
                             f"'last', got {readout!r}")
        if isinstance(encoder, str):
            table = {"poisson": encoders.poisson_encode, "latency": encoders.latency_encode}
            if encoder not in table:
                raise ValueError(f"SpikingClassifier: unknown encoder {encoder!r}; use "
                                 f"'poisson', 'latency', a callable or None")
            encoder = table[encoder]
        if encoder is not None and T is None:
            raise ValueError("SpikingClassifier: 'T' (number of steps) is required with an "
                             "encoder")
        self.model = model
        self.T = T
        self.encoder = encoder
        self.readout = readout
        self.lr = lr
        self.rate_regularizer = rate_regularizer
        self.rate_weight = rate_weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoder is not None:
            x = self.encoder(x, self.T)
        return self.model(x)

    def logits(self, out: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, C)`` of an output ``(T, B, C)``."""
        if self.readout == "count":
            return out.sum(0)
        if self.readout == "max":
            return out.amax(0)
        if self.readout == "mean":
            return out.mean(0)
        return out[-1]

    def _step(self, batch, stage: str) -> torch.Tensor:
        from .training.losses import firing_rate_regularizer

        x, y = batch
        out = self(x)
        loss = torch.nn.functional.cross_entropy(self.logits(out), y)
        if self.rate_regularizer:
            loss = loss + self.rate_weight * firing_rate_regularizer(out,
                                                                     **self.rate_regularizer)
        acc = (self.logits(out).argmax(-1) == y).float().mean()
        self.log(f"{stage}_loss", loss, batch_size=len(y), prog_bar=stage != "train")
        self.log(f"{stage}_acc", acc, batch_size=len(y), prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)
