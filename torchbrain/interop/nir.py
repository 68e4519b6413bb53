r"""NIR in and out: :func:`import_from_nir` and :func:`export_to_nir`.

The `Neuromorphic Intermediate Representation <https://neuroir.org>`_ describes a network as a
graph of continuous-time primitives. torchbrain runs such a graph as a
:class:`~torchbrain.interop.graph.SpikingGraph` (time-major ``(T, B, ...)`` in and out) and
writes time-major torchbrain models back as ``nir.NIRGraph``. The ``nir`` package is optional
(``pip install torchbrain[interop]``).

Units
-----
NIR's numbers carry no units. :data:`NIR_UNITS` is the one place that fixes what they mean in
torchbrain: time in **seconds** (the convention of Norse's and snnTorch's importers, e.g.
``tau=0.01`` is 10 ms), potentials in **mV**, currents (a node's input ``I``) in **pA** and
resistances ``r`` in **GΩ** (so ``r * I`` is in mV); weights, ``w_in``, scales and spikes are
dimensionless. ``dt`` must be given as a quantity (``dt=1 * u.ms``): a bare number would be
seconds to a NIR user and milliseconds to torchbrain.

Discretisation
--------------
Every node's equation is integrated **exactly for an input held constant over the step** (zero-
order hold), like the torchbrain neurons:

* ``LIF``: :math:`\tau\dot v = v_\mathrm{leak} - v + rI`, spike when
  :math:`v > v_\mathrm{th}`, then :math:`v \leftarrow v_\mathrm{reset}` --
  :class:`torchbrain.LIF` with ``spk_reset='hard'``;
* ``CubaLIF``: :math:`\tau_\mathrm{syn}\dot I = -I + w_\mathrm{in}S` and the LIF membrane
  driven by :math:`rI` -- :class:`~torchbrain.interop.nodes.CubaLIFNode` on
  :class:`torchbrain.CubaLIF`;
* ``LI``: :math:`\tau\dot v = v_\mathrm{leak} - v + rI` --
  :class:`~torchbrain.interop.nodes.LeakyIntegrator`;
* ``I``: :math:`\dot v = rI` -- :class:`~torchbrain.interop.nodes.Integrator`;
* ``IF``: :math:`\dot v = rI`, spike, reset -- :class:`~torchbrain.interop.nodes.IntegrateAndFire`;
* ``Threshold``: :math:`z = [x > \theta]` -- :class:`~torchbrain.interop.nodes.Threshold`;
* ``Delay``: :math:`y(t) = x(t - d)`, ``d`` one whole number of steps --
  :class:`~torchbrain.interop.nodes.StepDelay`;
* ``Affine``/``Linear`` (:math:`Wx + b`, :math:`Wx`) -- ``nn.Linear``; ``Scale``
  (:math:`x \odot s`) -- :class:`~torchbrain.interop.nodes.Scale`;
* ``Conv1d``/``Conv2d``, ``Flatten``, ``AvgPool2d``, ``SumPool2d``, per frame -- ``nn.Conv1d``,
  ``nn.Conv2d``, ``nn.Flatten``, ``nn.AvgPool2d`` (``divisor_override=1`` for the sum).

So for LIF, :math:`v' = v_\infty + (v - v_\infty)e^{-\Delta t/\tau}` with
:math:`v_\infty = v_\mathrm{leak} + rI`; for CubaLIF the synaptic current is stepped first,
:math:`I' = Ie^{-\Delta t/\tau_\mathrm{syn}} + w_\mathrm{in}S(1 - e^{-\Delta t/\tau_\mathrm{syn}})`,
then the membrane with :math:`I'` held. Norse and snnTorch use forward Euler
(:math:`v' = v + \frac{\Delta t}{\tau}(v_\mathrm{leak} - v + rI)`); the two agree to
:math:`O(\Delta t/\tau)` per time constant. Populations start at ``v = v_leak`` (NIR stores no
initial state); torchbrain's threshold test is ``v >= v_th`` where NIR writes ``v > v_th`` (they
differ only when ``v`` lands exactly on the threshold).

Export
------
:func:`export_to_nir` writes a :class:`SpikingGraph` node for node, and an ``nn.Sequential``
of time-major parts (:class:`torchbrain.training.conv.SpikingBlock` and its subclasses,
``nn.Flatten``, ``nn.Linear``/``nn.Identity`` applied on the last dimension) as a chain. Populations
must use ``spk_reset='hard'`` (NIR has no subtractive reset). ``torchbrain.IF``
(:math:`\tau\dot V = -V + RI`) is written as a NIR ``LIF`` with ``v_leak = v_reset = 0``; a
``CubaLIF`` fed jumps by a block gets
:math:`w_\mathrm{in} = 1/(1 - e^{-\Delta t/\tau_\mathrm{syn}})` so that the importer's
synaptic step hands it the same jump.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..neurons import IF, LIF, CubaLIF
from ..training.conv import SpikingBlock
from ..units import to_canonical, u
from ._optional import require
from .graph import SpikingGraph
from .nodes import (
    CubaLIFNode,
    IntegrateAndFire,
    Integrator,
    LeakyIntegrator,
    Scale,
    StepDelay,
    Threshold,
)

__all__ = ["NIR_UNITS", "import_from_nir", "export_to_nir"]

#: What one NIR number means in torchbrain, per quantity (see the module docstring).
NIR_UNITS: dict[str, Any] = {
    "time": 1.0 * u.second,
    "voltage": 1.0 * u.mV,
    "current": 1.0 * u.pA,
    "resistance": 1.0 * u.gigaohm,
}

#: Canonical torchbrain units of the same quantities.
_CANONICAL = {"time": "ms", "voltage": "mV", "current": "pA", "resistance": "gigaohm"}


def _factor(kind: str) -> float:
    """torchbrain canonical value = NIR number * factor."""
    return float(NIR_UNITS[kind].to(_CANONICAL[kind]).magnitude)


def _from_nir(value, kind: str | None = None) -> torch.Tensor:
    # float64 through the conversion: exporting then importing a float32 parameter gives it back
    arr = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if kind is not None:
        arr = arr * _factor(kind)
    return arr.to(torch.get_default_dtype())


def _to_nir(value: torch.Tensor, shape, kind: str | None = None) -> np.ndarray:
    arr = value.detach().to("cpu", torch.float64).expand(tuple(shape)).numpy().copy()
    if kind is not None:
        arr = arr / _factor(kind)
    return arr


def _dt_ms(dt, who: str) -> float:
    if not hasattr(dt, "units"):
        raise TypeError(f"{who}: 'dt' must be a time quantity such as 1 * u.ms (NIR counts time "
                        f"in seconds, torchbrain's plain numbers in ms), got {dt!r}")
    value = float(to_canonical(dt, "ms", owner=who, name="dt"))
    if not value > 0:
        raise ValueError(f"{who}: 'dt' must be positive, got {dt!r}")
    return value


# --------------------------------------------------------------------------------------- import
def _shape_of(*arrays) -> tuple[int, ...]:
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    return tuple(int(s) for s in shape) or (1,)


def _tuple2(value) -> tuple[int, int]:
    arr = np.atleast_1d(np.asarray(value)).astype(int)
    return (int(arr[0]), int(arr[-1]))


def _conv_padding(padding, dims: int):
    if isinstance(padding, str):
        return padding
    arr = np.atleast_1d(np.asarray(padding)).astype(int)
    return int(arr[0]) if dims == 1 else (int(arr[0]), int(arr[-1]))


def _import_node(nir, name: str, node, dt: float) -> nn.Module:
    """The one-step module for NIR ``node`` (``dt`` in ms)."""
    kind = type(node).__name__
    if isinstance(node, nir.Input | nir.Output):
        return nn.Identity()
    if isinstance(node, nir.Affine | nir.Linear):
        w = _from_nir(node.weight)
        if w.dim() != 2:
            raise ValueError(f"import_from_nir: node {name!r} ({kind}) has a weight of shape "
                             f"{tuple(w.shape)}; only 2-d weights are supported")
        bias = isinstance(node, nir.Affine) and node.bias is not None
        layer = nn.Linear(w.shape[1], w.shape[0], bias=bias)
        with torch.no_grad():
            layer.weight.copy_(w)
            if bias:
                layer.bias.copy_(_from_nir(node.bias).expand(w.shape[0]))
        return layer
    if isinstance(node, nir.Conv1d | nir.Conv2d):
        w = _from_nir(node.weight)
        dims = 1 if isinstance(node, nir.Conv1d) else 2
        conv_cls = nn.Conv1d if dims == 1 else nn.Conv2d
        pick = (lambda v: int(np.atleast_1d(v)[0])) if dims == 1 else _tuple2
        layer = conv_cls(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]),
                         stride=pick(node.stride), padding=_conv_padding(node.padding, dims),
                         dilation=pick(node.dilation), groups=int(node.groups), bias=True)
        with torch.no_grad():
            layer.weight.copy_(w)
            bias = np.zeros(w.shape[0]) if node.bias is None else node.bias
            layer.bias.copy_(_from_nir(bias).expand(w.shape[0]))
        return layer
    if isinstance(node, nir.Flatten):
        # NIR counts dimensions of one sample; a step's tensor has the batch first
        end = node.end_dim if node.end_dim < 0 else node.end_dim + 1
        return nn.Flatten(node.start_dim + 1, end)
    if isinstance(node, nir.SumPool2d | nir.AvgPool2d):
        divisor = 1 if isinstance(node, nir.SumPool2d) else None
        return nn.AvgPool2d(_tuple2(node.kernel_size), stride=_tuple2(node.stride),
                            padding=_tuple2(node.padding), divisor_override=divisor)
    if isinstance(node, nir.Scale):
        return Scale(_from_nir(node.scale))
    if isinstance(node, nir.Threshold):
        return Threshold(_from_nir(node.threshold, "voltage"))
    if isinstance(node, nir.I):
        return Integrator(_from_nir(node.r, "resistance") * _per_ms())
    if isinstance(node, nir.IF):
        return IntegrateAndFire(_from_nir(node.r, "resistance") * _per_ms(),
                                _from_nir(node.v_threshold, "voltage"),
                                _from_nir(node.v_reset, "voltage"))
    if isinstance(node, nir.LI):
        return LeakyIntegrator(_from_nir(node.tau, "time"), _from_nir(node.r, "resistance"),
                               _from_nir(node.v_leak, "voltage"))
    if isinstance(node, nir.LIF):
        shape = _shape_of(node.tau, node.r, node.v_leak, node.v_threshold, node.v_reset)
        v_leak = _from_nir(node.v_leak, "voltage")
        return LIF(shape, tau=_from_nir(node.tau, "time"), R=_from_nir(node.r, "resistance"),
                   V_th=_from_nir(node.v_threshold, "voltage"),
                   V_reset=_from_nir(node.v_reset, "voltage"), V_rest=v_leak,
                   V_initializer=v_leak, spk_reset="hard", name=name)
    if isinstance(node, nir.CubaLIF):
        shape = _shape_of(node.tau_mem, node.tau_syn, node.r, node.v_leak, node.v_threshold,
                          node.v_reset)
        v_leak = _from_nir(node.v_leak, "voltage")
        neuron = CubaLIF(shape, tau=_from_nir(node.tau_mem, "time"),
                         tau_syn=_from_nir(node.tau_syn, "time"),
                         R=_from_nir(node.r, "resistance"),
                         V_th=_from_nir(node.v_threshold, "voltage"),
                         V_reset=_from_nir(node.v_reset, "voltage"), V_rest=v_leak,
                         V_initializer=v_leak, spk_reset="hard", name=name)
        return CubaLIFNode(neuron, torch.as_tensor(np.asarray(node.w_in, dtype=np.float64)))
    if isinstance(node, nir.Delay):
        delays = np.atleast_1d(np.asarray(node.delay, dtype=np.float64)) * _factor("time")
        steps = np.round(delays / dt)
        if not np.allclose(delays, delays.flat[0]) or not np.allclose(steps * dt, delays,
                                                                      rtol=1e-6, atol=1e-9):
            raise ValueError(f"import_from_nir: node {name!r} (Delay) has delays "
                             f"{np.unique(delays)} ms; only one delay that is a whole number of "
                             f"dt = {dt} ms is supported")
        return StepDelay(int(steps.flat[0]), np.shape(node.delay) or (1,))
    raise NotImplementedError(
        f"import_from_nir: node {name!r} of type {kind} has no torchbrain equivalent (supported:"
        " Input, Output, Affine, Linear, Scale, Conv1d, Conv2d, Flatten, SumPool2d, AvgPool2d, "
        "LI, I, IF, LIF, CubaLIF, Threshold, Delay and nested NIRGraph)")


def _per_ms() -> float:
    # the integrators' equation dv/dt = r I reads time in NIR's unit: r * I per second
    return 1.0 / _factor("time")


def _flatten_graph(nir, graph, prefix: str = ""):
    """Nodes and edges of ``graph`` with nested graphs inlined (names ``outer.inner``)."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, str] = {}   # sub-graph name -> its input node's full name
    exit_: dict[str, str] = {}   # sub-graph name -> its output node's full name
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten_graph(nir, node, full + ".")
            ins = [n for n, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [n for n, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise NotImplementedError(f"import_from_nir: nested graph {full!r} must have "
                                          f"one Input and one Output, has {ins} and {outs}")
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
            entry[full] = f"{full}.{ins[0]}"
            exit_[full] = f"{full}.{outs[0]}"
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        s, d = prefix + src, prefix + dst
        # 'sub.output' style endpoints name the sub-graph's own nodes; plain 'sub' its ends
        edges.append((exit_.get(s, s), entry.get(d, d)))
    return nodes, edges


def import_from_nir(graph_or_path, dt) -> SpikingGraph:
    r"""Build a time-major torchbrain model from a NIR graph.

    Parameters
    ----------
    graph_or_path : nir.NIRGraph, nir.NIRNode, str or os.PathLike
        The graph, a single node, or the path of a NIR file (read with ``nir.read``).
    dt : quantity [time]
        The step to discretise at (e.g. ``1 * u.ms``); must be a quantity.

    Returns
    -------
    SpikingGraph
        Takes ``(T, B, *input_shape)`` and returns ``(T, B, *output_shape)``; see
        :mod:`torchbrain.interop.nir` for the units and the discretisation.

    Raises
    ------
    NotImplementedError
        For a node with no torchbrain equivalent, naming the node and its type.
    """
    who = "import_from_nir"
    nir = require("nir", who)
    dt_ms = _dt_ms(dt, who)
    graph = graph_or_path
    if isinstance(graph, str | os.PathLike):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        if not isinstance(graph, nir.NIRNode):
            raise TypeError(f"{who}: expected a nir.NIRGraph, a NIR node or a path, got "
                            f"{type(graph).__name__}")
        graph = nir.NIRGraph.from_list(graph)
    nir_nodes, edges = _flatten_graph(nir, graph)
    top_in = [n for n, v in graph.nodes.items() if isinstance(v, nir.Input)]
    top_out = [n for n, v in graph.nodes.items() if isinstance(v, nir.Output)]
    if len(top_in) != 1 or len(top_out) != 1:
        raise NotImplementedError(f"{who}: the graph must have exactly one Input and one Output "
                                  f"node, has inputs {top_in} and outputs {top_out}")
    modules = {name: _import_node(nir, name, node, dt_ms) for name, node in nir_nodes.items()}
    return SpikingGraph(modules, edges, top_in[0], top_out[0], dt=dt_ms * u.ms)


# --------------------------------------------------------------------------------------- export
class _Exporter:
    """Collects NIR nodes and edges while walking a time-major model."""

    def __init__(self, nir, dt: float, shapes: Mapping[nn.Module, tuple[int, ...]]):
        self.nir = nir
        self.dt = dt
        self.shapes = shapes          # per-sample input shape of every leaf seen in the probe
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node, src: str | None) -> str:
        base, k = name or "node", 1
        while name in self.nodes or not name:
            name, k = f"{base}_{k}", k + 1
        self.nodes[name] = node
        if src is not None:
            self.edges.append((src, name))
        return name

    def shape_in(self, module: nn.Module, name: str) -> tuple[int, ...]:
        if module not in self.shapes:
            raise ValueError(f"export_to_nir: module {name!r} ({type(module).__name__}) was not "
                             "called by the model on the sample input")
        return self.shapes[module]

    def chain(self, module: nn.Module, name: str, src: str) -> str:
        """Add ``module`` (time-major) after node ``src``; returns the name of its last node."""
        if isinstance(module, nn.Sequential):
            for child_name, child in module.named_children():
                src = self.chain(child, _join(name, child_name), src)
            return src
        if isinstance(module, SpikingBlock):
            src = self.leaf(module.layer, _join(name, "layer"), src)
            if module.pool is not None:
                src = self.leaf(module.pool, _join(name, "pool"), src)
            return self.leaf(module.neuron, _join(name, "neuron"), src,
                             jump=module.drives_synapse)
        if isinstance(module, nn.Flatten | nn.Linear | nn.Identity):
            return self.leaf(module, name or type(module).__name__.lower(), src, lead=2)
        raise NotImplementedError(
            f"export_to_nir: module {name!r} of type {type(module).__name__} is not a time-major "
            "part torchbrain can export (SpikingGraph, nn.Sequential, SpikingBlock and its "
            "subclasses, nn.Flatten, nn.Linear, nn.Identity)")

    def leaf(self, module: nn.Module, name: str, src: str, *, lead: int = 1,
             jump: bool = False) -> str:
        node = self.node(module, name, lead=lead, jump=jump)
        return src if node is None else self.add(name, node, src)

    def node(self, m: nn.Module, name: str, *, lead: int = 1, jump: bool = False):
        """The NIR node of one-step module ``m`` (``None`` for a pass-through)."""
        nir, kind = self.nir, type(m).__name__
        if isinstance(m, nn.Identity):
            return None
        if isinstance(m, nn.Linear):
            w = m.weight.detach().cpu().double().numpy().copy()
            if m.bias is None:
                return nir.Linear(weight=w)
            return nir.Affine(weight=w, bias=m.bias.detach().cpu().double().numpy().copy())
        if type(m) in (nn.Conv1d, nn.Conv2d):
            if m.padding_mode != "zeros":
                raise NotImplementedError(f"export_to_nir: module {name!r} ({kind}) uses "
                                          f"padding_mode={m.padding_mode!r}; NIR pads with zeros")
            w = m.weight.detach().cpu().double().numpy().copy()
            bias = (np.zeros(w.shape[0]) if m.bias is None
                    else m.bias.detach().cpu().double().numpy().copy())
            spatial = self.shape_in(m, name)[1:]
            if isinstance(m, nn.Conv1d):
                return nir.Conv1d(input_shape=int(spatial[0]), weight=w, stride=m.stride[0],
                                  padding=m.padding if isinstance(m.padding, str)
                                  else m.padding[0], dilation=m.dilation[0], groups=m.groups,
                                  bias=bias)
            return nir.Conv2d(input_shape=tuple(int(s) for s in spatial), weight=w,
                              stride=m.stride, padding=m.padding, dilation=m.dilation,
                              groups=m.groups, bias=bias)
        if isinstance(m, nn.Flatten):
            shape = self.shape_in(m, name)
            start = m.start_dim - lead if m.start_dim >= 0 else m.start_dim
            end = m.end_dim - lead if m.end_dim >= 0 else m.end_dim
            if start < 0 <= m.start_dim:
                raise NotImplementedError(f"export_to_nir: module {name!r} (Flatten) flattens "
                                          "the time or batch dimension")
            return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start,
                               end_dim=end)
        if type(m) is nn.AvgPool2d:
            if m.ceil_mode or (m.divisor_override not in (None, 1)) or (
                    not m.count_include_pad and np.any(np.asarray(m.padding) != 0)):
                raise NotImplementedError(f"export_to_nir: module {name!r} (AvgPool2d) uses "
                                          "ceil_mode, count_include_pad=False with padding or a "
                                          "divisor other than 1, which NIR cannot express")
            pool_cls = nir.SumPool2d if m.divisor_override == 1 else nir.AvgPool2d
            k = _pair(m.kernel_size)
            return pool_cls(kernel_size=np.array(k),
                            stride=np.array(_pair(m.stride if m.stride is not None else k)),
                            padding=np.array(_pair(m.padding)))
        if isinstance(m, Scale):
            return nir.Scale(scale=_to_nir(m.scale, m.shape))
        if isinstance(m, Threshold):
            return nir.Threshold(threshold=_to_nir(m.threshold, m.shape, "voltage"))
        if isinstance(m, Integrator):
            return nir.I(r=_to_nir(m.r / _per_ms(), m.shape, "resistance"))
        if isinstance(m, IntegrateAndFire):
            return nir.IF(r=_to_nir(m.r / _per_ms(), m.shape, "resistance"),
                          v_threshold=_to_nir(m.v_threshold, m.shape, "voltage"),
                          v_reset=_to_nir(m.v_reset, m.shape, "voltage"))
        if isinstance(m, LeakyIntegrator):
            return nir.LI(tau=_to_nir(m.tau, m.shape, "time"),
                          r=_to_nir(m.r, m.shape, "resistance"),
                          v_leak=_to_nir(m.v_leak, m.shape, "voltage"))
        if isinstance(m, StepDelay):
            return nir.Delay(delay=np.full(m.shape, m.steps * self.dt / _factor("time")))
        if isinstance(m, CubaLIFNode):
            return self.cubalif(m.neuron, name, m.w_in.detach().cpu().double())
        if type(m) in (LIF, IF, CubaLIF):
            if not m.hard_reset:
                raise NotImplementedError(
                    f"export_to_nir: population {name!r} ({kind}) uses spk_reset='soft'; NIR's "
                    "neurons reset to v_reset (use spk_reset='hard')")
            if isinstance(m, CubaLIF):
                if not jump:
                    raise NotImplementedError(
                        f"export_to_nir: CubaLIF {name!r} outside a SpikingBlock: its input "
                        "would be a membrane current, which NIR's CubaLIF does not have")
                tau_syn = m.tau_syn.detach().cpu().double()
                return self.cubalif(m, name, 1.0 / -torch.expm1(-self.dt / tau_syn))
            shape = m.varshape
            zero = torch.zeros(())
            return nir.LIF(tau=_to_nir(m.tau, shape, "time"), r=_to_nir(m.R, shape, "resistance"),
                           v_leak=_to_nir(zero if isinstance(m, IF) else m.V_rest, shape,
                                          "voltage"),
                           v_threshold=_to_nir(m.V_th, shape, "voltage"),
                           v_reset=_to_nir(zero if isinstance(m, IF) else m.V_reset, shape,
                                           "voltage"))
        raise NotImplementedError(
            f"export_to_nir: module {name!r} of type {kind} has no NIR equivalent (supported: "
            "nn.Linear, nn.Conv1d, nn.Conv2d, nn.Flatten, nn.AvgPool2d, nn.Identity, "
            "torchbrain LIF, IF and CubaLIF with spk_reset='hard', and the modules of "
            "torchbrain.interop.nodes)")

    def cubalif(self, m: CubaLIF, name: str, w_in: torch.Tensor):
        if not m.hard_reset:
            raise NotImplementedError(f"export_to_nir: population {name!r} (CubaLIF) uses "
                                      "spk_reset='soft'; NIR's neurons reset to v_reset")
        shape = m.varshape
        return self.nir.CubaLIF(
            tau_syn=_to_nir(m.tau_syn, shape, "time"), tau_mem=_to_nir(m.tau, shape, "time"),
            r=_to_nir(m.R, shape, "resistance"), v_leak=_to_nir(m.V_rest, shape, "voltage"),
            v_threshold=_to_nir(m.V_th, shape, "voltage"),
            v_reset=_to_nir(m.V_reset, shape, "voltage"),
            w_in=w_in.expand(tuple(shape)).numpy().copy())


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(int(v) for v in value)


def _probe_shapes(module: nn.Module, sample_input: torch.Tensor, dt: float):
    """Run ``module`` once; every submodule's per-sample input shape, and the output.

    A layer inside a block sees ``(T*B, ...)`` or ``(B, ...)`` (one leading dimension), a part
    of a time-major ``nn.Sequential`` sees ``(T, B, ...)``; the walker knows which and the
    shapes here drop the leading dimensions accordingly.
    """
    from .. import environ

    shapes: dict[nn.Module, tuple[int, ...]] = {}
    leads: dict[nn.Module, int] = {}
    for parent in module.modules():
        if isinstance(parent, nn.Sequential):
            for child in parent.children():
                leads[child] = 2
    handles = []

    def hook(mod, args):
        if mod not in shapes and args and isinstance(args[0], torch.Tensor):
            shapes[mod] = tuple(args[0].shape[leads.get(mod, 1):])

    for sub in module.modules():
        handles.append(sub.register_forward_pre_hook(hook))
    try:
        with torch.no_grad(), environ.context(dt=dt):
            output = module(sample_input)
    finally:
        for h in handles:
            h.remove()
    return shapes, output


def export_to_nir(module: nn.Module, sample_input: torch.Tensor, dt):
    r"""Write a time-major torchbrain model as a ``nir.NIRGraph``.

    Parameters
    ----------
    module : nn.Module
        A :class:`SpikingGraph` (e.g. from :func:`import_from_nir`), or an ``nn.Sequential`` of
        time-major parts (:class:`torchbrain.training.conv.SpikingBlock`, ``SpikingConv2d``,
        ``SpikingLinear``, ``nn.Flatten``, ...).
    sample_input : torch.Tensor
        A time-major input ``(T, B, *input_shape)``; the model is run on it once (without
        gradient) to learn the shapes.
    dt : quantity [time]
        The step the model runs at (needed for ``Delay`` and the CubaLIF input weight).

    Returns
    -------
    nir.NIRGraph
        With one ``Input`` (``input_type`` the per-sample input shape) and one ``Output``.

    Raises
    ------
    NotImplementedError
        For a module with no NIR equivalent, naming it and its type.
    """
    who = "export_to_nir"
    nir = require("nir", who)
    dt_ms = _dt_ms(dt, who)
    if not isinstance(sample_input, torch.Tensor) or sample_input.dim() < 3:
        raise ValueError(f"{who}: 'sample_input' must be a time-major tensor (T, B, ...), got "
                         f"{getattr(sample_input, 'shape', type(sample_input).__name__)}")
    if isinstance(module, SpikingGraph) and not math.isclose(module.dt, dt_ms, rel_tol=1e-9):
        raise ValueError(f"{who}: the SpikingGraph was built for dt = {module.dt} ms, not "
                         f"{dt_ms} ms")
    shapes, output = _probe_shapes(module, sample_input, dt_ms)
    ex = _Exporter(nir, dt_ms, shapes)
    in_shape = np.array(sample_input.shape[2:])
    if isinstance(module, SpikingGraph):
        for name in module.node_names:
            sub = module.node(name)
            if name == module.input:
                ex.add(name, nir.Input(input_type={"input": in_shape}), None)
            elif name == module.output:
                ex.add(name, nir.Output(output_type={"output": None}), None)
            else:
                node = ex.node(sub, name)
                ex.add(name, node if node is not None else _identity_affine(nir, sub, shapes),
                       None)
        ex.edges.extend(module.edges)
        out_name = module.output
    else:
        src = ex.add("input", nir.Input(input_type={"input": in_shape}), None)
        last = ex.chain(module, "", src)
        out_name = ex.add("output", nir.Output(output_type={"output": None}), last)
    out_shape = np.array(output.shape[2:])
    ex.nodes[out_name] = nir.Output(output_type={"output": out_shape})
    return nir.NIRGraph(nodes=ex.nodes, edges=ex.edges, type_check=False)


def _identity_affine(nir, module, shapes):
    """An identity inside a SpikingGraph (an inner Input/Output of an inlined sub-graph)."""
    if module not in shapes:
        raise NotImplementedError("export_to_nir: an identity node of a SpikingGraph was never "
                                  "called on the sample input")
    return nir.Scale(scale=np.ones(shapes[module]))

