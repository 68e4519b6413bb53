r"""``CurrentProj`` and ``DeltaProj``: projections without a synapse of their own.

* :class:`CurrentProj` reads a presynaptic quantity every step (a synaptic variable of another
  population, a tensor, any callable), maps it through the connectivity and binds the result to
  a synaptic output (COBA, CUBA, ...) on the post population:
  :math:`\mathrm{out.bind\_cond}(\mathrm{comm}(x))`. This is brainpy.state's ``CurrentProj``
  (the reference's working AlignPre idiom is ``CurrentProj(pre.align_pre(syn).prefetch('g'),
  ...)``; here pass the synapse itself, whose output is read without stepping it).
* :class:`DeltaProj` delivers ``comm(spikes)`` as a jump of the post population's integrated
  variable (the membrane potential of a neuron, in mV), added after the step's integration:
  the classic "delta synapse" :math:`V \leftarrow V + \sum_i w_{ij} s_i`.

Both take the optional ``delay`` of :mod:`torchbrain.delay` (a ring buffer of whole steps applied
to the presynaptic signal before ``comm``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..delay import as_delay
from ..describe import ParamDescriber
from ..dynamics import Dynamics
from ..module import Module
from ..neurons.base import Neuron
from ..units import CANONICAL, UnitError, _dim_name, is_quantity, to_tensor, u
from .base import check_sizes, check_weight_unit

__all__ = ["CurrentProj", "DeltaProj"]


def _check_post(owner: str, post, comm) -> None:
    if not isinstance(post, Dynamics):
        raise TypeError(
            f"{owner}: 'post' must be a torchbrain population (Dynamics), got "
            f"{type(post).__name__}"
        )
    if not isinstance(comm, nn.Module):
        raise TypeError(f"{owner}: 'comm' must be an nn.Module, got {type(comm).__name__}")


def _canonical_tensor(owner: str, value) -> torch.Tensor:
    """A quantity converted to the canonical unit of its kind (nS, pA, mV or a number)."""
    for kind in ("conductance", "current", "voltage", "dimensionless"):
        if value.dimensionality == u.Unit(CANONICAL[kind]).dimensionality:
            return to_tensor(value, CANONICAL[kind], owner=owner, name="prefetch")
    raise UnitError(
        f"{owner}: the prefetched quantity must be a conductance, a current, a voltage or a "
        f"number, got {value:~P}, which is {_dim_name(value.units)}"
    )


def _to_post_shape(x: torch.Tensor, post: Dynamics) -> torch.Tensor:
    if len(post.varshape) > 1 and isinstance(x, torch.Tensor):
        return x.reshape(*x.shape[:-1], *post.varshape)
    return x


class CurrentProj(Module):
    r"""Bind ``comm(x)`` to a synaptic output on ``post`` every step, ``x`` read from a source.

    .. math::

        g^\mathrm{post} = \mathrm{comm}\bigl(f_m \circ \dots \circ f_1 (x)\bigr), \qquad
        I^\mathrm{post} = \mathrm{out}(g^\mathrm{post}, V)

    Parameters
    ----------
    *prefetch : source, then nn.Module
        Optional. The first item is the **source** read every step: a tensor (a constant,
        registered as a buffer so that it follows ``.to()``), a population or synapse
        (:class:`~torchbrain.dynamics.Dynamics`; its ``get_output()`` is read, it is *not*
        stepped), or a callable taking no argument. Further items are modules applied in order
        to the value. Without any item the projection is called with the value: ``proj(x)``.
    comm : nn.Module
        Connectivity mapping ``(..., n_pre)`` to ``(..., n_post)``; applied to the graded value.
    out : ParamDescriber or SynapticCurrent
        The synaptic output registered on ``post`` (``COBA.desc(E=0 * u.mV)``).
    post : Dynamics
        The target population.
    delay : quantity [time], Delay or None, default None
        Delay of the value before ``comm`` (plain numbers in ms; whole steps, see
        :mod:`torchbrain.delay`).

    Raises
    ------
    TypeError, ValueError, UnitError
        At construction: a ``post`` that is not a population, sizes that disagree between the
        source, comm and post, or weights in a unit the output cannot take.

    Notes
    -----
    The product is graded (cost :math:`O(\text{synapses})` when most entries are nonzero).
    Same roles as brainpy.state's ``CurrentProj(*prefetch, comm, out, post)``.
    """

    def __init__(self, *prefetch, comm: nn.Module, out, post: Dynamics, delay=None):
        super().__init__()
        owner = "CurrentProj"
        _check_post(owner, post, comm)
        out = out() if isinstance(out, ParamDescriber) else out
        if not (isinstance(out, nn.Module) and hasattr(out, "bind_cond")):
            raise TypeError(
                f"{owner}: 'out' must be a synaptic output (COBA, CUBA, MgBlock) or its "
                f"descriptor, got {type(out).__name__}"
            )
        check_sizes(owner, comm=comm, post=post)
        check_weight_unit(owner, comm, out)
        n_pre = getattr(comm, "n_pre", None)
        source, modules = (prefetch[0], prefetch[1:]) if prefetch else (None, ())
        for mod in modules:
            if not isinstance(mod, nn.Module):
                raise TypeError(
                    f"{owner}: the items after the source must be nn.Modules, got "
                    f"{type(mod).__name__}"
                )
        self._source_kind = self._set_source(owner, source, n_pre if not modules else None)
        self.pre_modules = nn.ModuleList(modules)
        self.delay = as_delay(owner, delay, n_pre, like=comm)
        self.comm = comm
        self.out = out
        self._input_key = f"current_proj_{id(self)}"
        post.add_current_input(self._input_key, out)
        self.__dict__["post"] = post

    def _set_source(self, owner: str, source, n_pre) -> str:
        if source is None:
            return "argument"
        if is_quantity(source) or isinstance(source, torch.Tensor):
            value = _canonical_tensor(owner, source) if is_quantity(source) else source
            if n_pre is not None and (value.ndim == 0 or value.shape[-1] != n_pre):
                raise ValueError(
                    f"{owner}: the prefetched tensor has shape {tuple(value.shape)} but comm "
                    f"takes {n_pre} inputs in its last dimension"
                )
            self.register_buffer("source", value.detach().clone(), persistent=True)
            return "tensor"
        if isinstance(source, Dynamics):
            if not callable(getattr(source, "get_output", None)):
                raise TypeError(
                    f"{owner}: the prefetched {type(source).__name__} has no get_output(); pass "
                    "a callable that reads the value instead (e.g. lambda: pop.V)"
                )
            if n_pre is not None and source.num != n_pre:
                raise ValueError(
                    f"{owner}: the prefetched {type(source).__name__} has {source.num} units "
                    f"but comm takes {n_pre} inputs"
                )
            # read, not owned: the population is stepped by whoever owns it
            self.__dict__["source"] = source
            return "dynamics"
        if callable(source):
            self.__dict__["source"] = source
            return "callable"
        raise TypeError(
            f"{owner}: the prefetch source must be a tensor, a population/synapse or a "
            f"callable, got {type(source).__name__}"
        )

    def _repr_config(self) -> dict[str, Any]:
        return {"source": self._source_kind}

    def _read(self):
        kind = self._source_kind
        if kind == "tensor":
            return self.source
        if kind == "dynamics":
            value = self.source.get_output()
            if value is None:
                raise RuntimeError(
                    f"CurrentProj: the prefetched {type(self.source).__name__} has no State "
                    "yet; call tb.init_all_states(model) before running"
                )
            return value
        return self.source()

    def forward(self, x=None) -> None:
        """Read the source (or take ``x``), apply the modules, delay and comm, bind to out."""
        if self._source_kind == "argument":
            if x is None:
                raise TypeError(
                    "CurrentProj: no prefetch source was given at construction, so call the "
                    "projection with the value: proj(x)"
                )
        elif x is not None:
            raise TypeError(
                "CurrentProj: this projection reads its prefetch source every step; call it "
                "without an argument"
            )
        else:
            x = self._read()
        for mod in self.pre_modules:
            x = mod(x)
        if self.delay is not None:
            x = self.delay(x)
        x = self.comm(x)
        self.out.bind_cond(_to_post_shape(x, self.__dict__["post"]))


class DeltaProj(Module):
    r"""Deliver ``comm(spikes)`` as a jump of the post population's integrated variable.

    .. math::

        V_j \leftarrow V_j + \sum_i w_{ij}\, s_i

    added after the post population's next integration step (its ``add_delta_input``), so a
    presynaptic spike passed to the projection at step ``k`` (before ``post`` is called) moves
    ``V`` by exactly ``w`` at the end of that step (``1 + D`` steps after it was emitted, with a
    ``delay`` of ``D`` steps, when the projection is fed the previous step's spikes).

    Parameters
    ----------
    *modules : nn.Module
        Optional modules applied in order to the spikes before ``comm``.
    comm : nn.Module
        Connectivity mapping ``(..., n_pre)`` to ``(..., n_post)``. For a neuron population its
        weights are voltages (quantities in mV, or plain numbers read in mV); conductance or
        current weights are rejected at construction.
    post : Dynamics
        The target population.
    delay : quantity [time], Delay or None, default None
        Delay of the spikes before ``comm`` (plain numbers in ms; whole steps, see
        :mod:`torchbrain.delay`).

    Raises
    ------
    TypeError, ValueError, UnitError
        At construction: a ``post`` that is not a population, sizes that disagree between comm
        and post, weights that are not voltages, a negative delay.
    """

    def __init__(self, *modules: nn.Module, comm: nn.Module, post: Dynamics, delay=None):
        super().__init__()
        owner = "DeltaProj"
        _check_post(owner, post, comm)
        for mod in modules:
            if not isinstance(mod, nn.Module):
                raise TypeError(f"{owner}: modules must be nn.Modules, got {type(mod).__name__}")
        check_sizes(owner, comm=comm, post=post)
        given = getattr(comm, "weight_unit", None)
        if isinstance(post, Neuron) and given not in (None, "mV"):
            raise UnitError(
                f"{owner}: the weights of {type(comm).__name__} are in {given} but a delta "
                "projection onto neurons delivers voltage jumps: give the weights in mV"
            )
        self.pre_modules = nn.ModuleList(modules)
        self.delay = as_delay(owner, delay, getattr(comm, "n_pre", None), like=comm)
        self.comm = comm
        self._input_key = f"delta_proj_{id(self)}"
        self.__dict__["post"] = post

    def forward(self, spikes) -> None:
        """Deliver ``comm(spikes)`` to ``post`` as a pending jump (consumed by its next step)."""
        x = spikes
        for mod in self.pre_modules:
            x = mod(x)
        if self.delay is not None:
            x = self.delay(x)
        x = self.comm(x)
        post = self.__dict__["post"]
        post.add_delta_input(self._input_key, _to_post_shape(x, post))
