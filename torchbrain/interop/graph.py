r"""``SpikingGraph``: a directed graph of one-step modules, run time-major.

This is the small driver that :func:`torchbrain.interop.nir.import_from_nir` builds on: each node
is a module advancing one step (``nn.Linear``, ``nn.Conv2d``, a torchbrain population, the NIR
primitives of :mod:`torchbrain.interop.nodes`), an edge ``(u, v)`` adds ``u``'s output to ``v``'s
input. The input ``(T, B, *in_shape)`` is fed to the input node one step at a time and the output
node's values are stacked to ``(T, B, *out_shape)``.

Order and recurrence
--------------------
Nodes run in a depth-first topological order from the input. An edge that closes a cycle (a
population feeding itself, or a later layer feeding an earlier one) carries the value its source
had at the **previous** step (zero at the first step): in continuous time a loop has no delay,
so one step of ``dt`` is the smallest a discrete simulation can give it (as in Norse's and
snnTorch's recurrent cells).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .. import environ
from ..state import init_all_states
from ..units import format_quantity, to_canonical

__all__ = ["SpikingGraph"]


def _key(name: str) -> str:
    # nn.ModuleDict keys cannot contain '.', which NIR uses for nested graphs
    return name.replace(".", "__")


class SpikingGraph(nn.Module):
    r"""Run a graph of one-step modules over time.

    Parameters
    ----------
    nodes : dict of str to nn.Module
        The nodes by name; each is called with one step's input ``(B, *shape)``.
    edges : sequence of (str, str)
        Connections ``(source, target)``; a node with several inputs receives their sum.
    input, output : str
        The names of the input and output nodes (usually ``nn.Identity``).
    dt : quantity [time]
        The time step the graph was built for (a plain number is read in ms); every forward
        runs inside ``tb.environ.context(dt=dt)``.

    Notes
    -----
    ``forward(x)`` takes ``x`` of shape ``(T, B, *in_shape)`` and returns ``(T, B, *out_shape)``.
    By default every call starts a new sequence: the States of all nodes are initialised for
    batch size ``B`` first. ``reset=False`` continues from the current States (initialise them
    with ``tb.init_all_states(graph, batch_size=B)``); that form compiles with
    ``tb.compile(..., fullgraph=True)`` (initialising checks values, which Dynamo cannot trace).
    """

    def __init__(self, nodes: Mapping[str, nn.Module], edges: Sequence[tuple[str, str]],
                 input: str, output: str, dt):
        super().__init__()
        who = "SpikingGraph"
        names = list(nodes)
        if input not in nodes or output not in nodes:
            raise ValueError(f"{who}: input {input!r} and output {output!r} must be nodes; the "
                             f"nodes are {names}")
        for src, dst in edges:
            for end in (src, dst):
                if end not in nodes:
                    raise ValueError(f"{who}: edge ({src!r}, {dst!r}) names {end!r}, which is "
                                     f"not a node; the nodes are {names}")
        keys = [_key(n) for n in names]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{who}: node names {names} collide once '.' is replaced by '__'")
        self.node_names = names
        self.nodes = nn.ModuleDict({_key(n): nodes[n] for n in names})
        self.edges = [(str(s), str(d)) for s, d in edges]
        self.input = input
        self.output = output
        self.dt = float(to_canonical(dt, "ms", owner=who, name="dt"))
        if not self.dt > 0:
            raise ValueError(f"{who}: 'dt' must be positive, got {self.dt} ms")
        self.order, self.recurrent = self._schedule()
        # per node: the sources of the same step, and those of the previous step (recurrent)
        self._fwd = {n: [s for s, d in self.edges if d == n and (s, d) not in self.recurrent]
                     for n in names}
        self._rec = {n: [s for s, d in self.edges if d == n and (s, d) in self.recurrent]
                     for n in names}
        for n in names:
            if n != input and not self._fwd[n]:
                what = "only through recurrent edges" if self._rec[n] else "no input"
                raise ValueError(f"{who}: node {n!r} has {what}; every node except the input "
                                 "must be reached from the input within a step")

    def _schedule(self):
        """Depth-first order from the input; edges into a node still on the stack are loops."""
        succ = {n: [d for s, d in self.edges if s == n] for n in self.node_names}
        done, on_stack, post, recurrent = set(), set(), [], set()

        def visit(n):
            on_stack.add(n)
            for m in succ[n]:
                if m in on_stack:
                    recurrent.add((n, m))
                elif m not in done:
                    visit(m)
            on_stack.discard(n)
            done.add(n)
            post.append(n)

        for start in [self.input] + self.node_names:
            if start not in done:
                visit(start)
        order = post[::-1]
        pos = {n: i for i, n in enumerate(order)}
        # an edge against the order that the DFS did not see as a loop (cross edge) cannot
        # exist in reverse post-order, so the recurrent set is exactly the back edges
        assert all(pos[s] < pos[d] for s, d in self.edges if (s, d) not in recurrent)
        return order, recurrent

    def node(self, name: str) -> nn.Module:
        """The module of node ``name``."""
        return self.nodes[_key(name)]

    def forward(self, x: torch.Tensor, reset: bool = True) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ValueError("SpikingGraph: the input must be a time-major tensor (T, B, ...), "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
        if reset:
            init_all_states(self, batch_size=x.shape[1])
        outputs = []
        previous: dict[str, torch.Tensor] = {}
        with environ.context(dt=self.dt):
            for t in range(x.shape[0]):
                values: dict[str, torch.Tensor] = {}
                for n in self.order:
                    if n == self.input:
                        drive = x[t]
                    else:
                        drive = values[self._fwd[n][0]]
                        for s in self._fwd[n][1:]:
                            drive = drive + values[s]
                        for s in self._rec[n]:
                            if s in previous:
                                drive = drive + previous[s]
                    values[n] = self.nodes[_key(n)](drive)
                previous = values
                outputs.append(values[self.output])
        return torch.stack(outputs)

    def extra_repr(self) -> str:
        loops = f", recurrent={sorted(self.recurrent)}" if self.recurrent else ""
        return (f"input={self.input!r}, output={self.output!r}, "
                f"dt={format_quantity(self.dt, 'ms')}, edges={self.edges}{loops}")
