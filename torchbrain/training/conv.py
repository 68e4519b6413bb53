r"""Time-major spiking blocks: a stateless layer (``nn.Conv2d``, ``nn.Linear``, ...) feeding a
torchbrain population, stepped over time.

A block takes ``(T, B, *in_shape)`` and returns the spikes ``(T, B, *out_shape)``. The layer
(and the pooling) runs on all ``T * B`` frames at once; the population is then stepped ``T``
times. An N-MNIST-style classifier is a few lines::

    from torchbrain.training.conv import SpikingConv2d, SpikingLinear

    net = nn.Sequential(
        SpikingConv2d(2, 12, 5, input_size=(34, 34), pool=2),   # -> (T, B, 12, 15, 15)
        SpikingConv2d(12, 32, 5, input_size=(15, 15), pool=2),  # -> (T, B, 32, 5, 5)
        nn.Flatten(start_dim=2),
        SpikingLinear(32 * 5 * 5, 10),
    )
    with tb.environ.context(dt=1 * u.ms):
        spikes = net(frames)                                    # frames: (T, B, 2, 34, 34)

How the layer's output drives the population: a current (pA) into ``LIF``/``IF``-like
populations, ``update(x)``; for populations with their own synapse (``CubaLIF``, ``CobaLIF``) a
jump of the synaptic variable per step (``add_delta_input``), as spikes × weights are in a
network. Every forward starts a new sequence (the States are initialised for the batch).
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn

from .. import environ
from ..neurons import LIF, CobaLIF, CubaLIF, Neuron
from ..state import init_all_states
from ..units import format_quantity, to_canonical, u

__all__ = ["SpikingBlock", "SpikingConv2d", "SpikingLinear", "default_neuron"]


def default_neuron() -> functools.partial:
    """The blocks' default population: ``LIF(tau=10 ms, R=1 GΩ, V_th=1 mV, hard reset to 0)``,
    so one unit of layer output (1 pA) drives the membrane towards 1 mV."""
    return functools.partial(LIF, tau=10.0 * u.ms, R=1.0 * u.gigaohm, V_th=1.0 * u.mV,
                             V_reset=0.0 * u.mV, spk_reset="hard")


def _build_neuron(neuron, shape, who: str, device=None, dtype=None) -> Neuron:
    if neuron is None:
        neuron = default_neuron()
    if callable(neuron) and not isinstance(neuron, nn.Module):
        factory = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
        neuron = neuron(tuple(shape), **factory)
    if not isinstance(neuron, Neuron):
        raise TypeError(f"{who}: 'neuron' must build a torchbrain Neuron from the output shape "
                        "(a neuron class or functools.partial(tb.LIF, tau=...)), got "
                        f"{type(neuron).__name__}")
    if tuple(neuron.varshape) != tuple(shape):
        raise ValueError(f"{who}: the population has shape {tuple(neuron.varshape)} but the "
                         f"layer gives {tuple(shape)}")
    return neuron


def _make_pool(pool, who: str):
    if pool is None or isinstance(pool, nn.Module):
        return pool
    if isinstance(pool, int) and not isinstance(pool, bool) and pool >= 1:
        return nn.AvgPool2d(pool)
    raise TypeError(f"{who}: 'pool' must be None, a kernel size (int, average pooling) or a "
                    f"pooling module, got {pool!r}")


class SpikingBlock(nn.Module):
    r"""``layer`` → ``pool`` (optional) → ``neuron``, run time-major.

    Parameters
    ----------
    layer : nn.Module
        Stateless per-frame layer (``nn.Conv2d``, ``nn.Linear``, ...), applied to ``(T*B, ...)``.
    neuron : torchbrain.Neuron
        The population, shaped like one frame of the layer's (pooled) output.
    pool : nn.Module, optional
        Applied after the layer, before the population (pooling currents keeps the population
        small).
    dt : quantity [time], optional
        Step of the run (plain numbers in ms); default: ``dt`` of :mod:`torchbrain.environ`.

    Notes
    -----
    ``forward(x)`` maps ``(T, B, *in_shape)`` to the spikes ``(T, B, *neuron.varshape)``,
    starting from freshly initialised States; ``forward(x, reset=False)`` continues from the
    current ones (initialise them first with ``tb.init_all_states(block, batch_size=B)``):
    that is the form to ``tb.compile(..., fullgraph=True)``, as initialising checks values. With
    a ``LIF`` population a step is
    :math:`V \leftarrow V_\mathrm{rest} + R\,I + (V - V_\mathrm{rest} - R\,I)e^{-\Delta t/\tau}`
    with :math:`I` the layer's output (pA); see the population's docstring for its equations.
    """

    def __init__(self, layer: nn.Module, neuron: Neuron, pool: nn.Module | None = None,
                 dt=None):
        super().__init__()
        who = type(self).__name__
        if not isinstance(layer, nn.Module):
            raise TypeError(f"{who}: 'layer' must be an nn.Module, got {type(layer).__name__}")
        if not isinstance(neuron, Neuron):
            raise TypeError(f"{who}: 'neuron' must be a torchbrain Neuron, got "
                            f"{type(neuron).__name__}")
        self.layer = layer
        self.pool = pool
        self.neuron = neuron
        self.dt = None if dt is None else float(to_canonical(dt, "ms", owner=who, name="dt"))
        # populations with their own synapse take the layer's output as jumps of it
        self.drives_synapse = isinstance(neuron, CubaLIF | CobaLIF)

    def _currents(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.layer(x.flatten(0, 1))
        if self.pool is not None:
            y = self.pool(y)
        return y.reshape(T, B, *y.shape[1:])

    def forward(self, x: torch.Tensor, reset: bool = True) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            raise ValueError(f"{type(self).__name__}: the input must be time-major "
                             f"(T, B, ...), got {getattr(x, 'shape', type(x).__name__)}")
        currents = self._currents(x)
        if reset:
            init_all_states(self.neuron, batch_size=x.shape[1])
        if self.dt is None:
            return self._run(currents)
        with environ.context(dt=self.dt):
            return self._run(currents)

    def _run(self, currents: torch.Tensor) -> torch.Tensor:
        spikes = []
        for cur in currents:
            if self.drives_synapse:
                self.neuron.add_delta_input("block", cur)
                spikes.append(self.neuron(0.0))
            else:
                spikes.append(self.neuron(cur))
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return "" if self.dt is None else f"dt={format_quantity(self.dt, 'ms')}"


class SpikingConv2d(SpikingBlock):
    r"""``nn.Conv2d`` → pooling → population, time-major: ``(T, B, C_in, H, W)`` to spikes
    ``(T, B, C_out, H', W')``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
        As ``nn.Conv2d``.
    input_size : (int, int)
        ``(H, W)`` of the input frames (fixes the population's shape).
    pool : int or nn.Module, optional
        Average pooling with this kernel (int) or any pooling module, before the population.
    neuron : callable or None
        Builds the population from the output shape: a neuron class or
        ``functools.partial(tb.LIF, tau=...)`` (called with the shape, and ``device``/``dtype``
        when given); default :func:`default_neuron`.
    dt : quantity [time], optional
        As :class:`SpikingBlock`.
    device, dtype : optional
        Factory arguments of the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, input_size, *,
                 stride=1, padding=0, dilation=1, groups: int = 1, bias: bool = True,
                 pool=None, neuron=None, dt=None, device=None, dtype=None):
        who = "SpikingConv2d"
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias, device=device,
                         dtype=dtype)
        pool = _make_pool(pool, who)
        if (not isinstance(input_size, tuple | list) or len(input_size) != 2
                or not all(isinstance(s, int) and s > 0 for s in input_size)):
            raise ValueError(f"{who}: 'input_size' must be (H, W) of positive ints, got "
                             f"{input_size!r}")
        out = _meta_shape(conv, pool, torch.zeros(1, in_channels, *input_size, device="meta"))
        super().__init__(conv, _build_neuron(neuron, out, who, device=device, dtype=dtype),
                         pool=pool, dt=dt)


def _meta_shape(conv: nn.Module, pool, probe: torch.Tensor) -> tuple[int, ...]:
    """The per-frame output shape of ``conv`` then ``pool`` (computed on the meta device)."""
    with torch.no_grad():
        y = copy.deepcopy(conv).to("meta")(probe)
    if pool is not None:
        y = copy.deepcopy(pool).to("meta")(y)
    return tuple(y.shape[1:])


class SpikingLinear(SpikingBlock):
    r"""``nn.Linear`` → population, time-major: ``(T, B, in_features)`` to spikes
    ``(T, B, out_features)``.

    Parameters
    ----------
    in_features, out_features, bias
        As ``nn.Linear``.
    neuron : callable or None
        As :class:`SpikingConv2d`.
    dt : quantity [time], optional
    device, dtype : optional
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True, neuron=None,
                 dt=None, device=None, dtype=None):
        linear = nn.Linear(in_features, out_features, bias=bias, device=device, dtype=dtype)
        population = _build_neuron(neuron, (out_features,), "SpikingLinear", device=device,
                                   dtype=dtype)
        super().__init__(linear, population, dt=dt)
