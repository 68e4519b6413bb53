r"""``AlignPostProj``: synaptic state aligned to the postsynaptic population.

A projection separates four roles: ``comm`` (connectivity: spikes of the pre population to a
vector on the post population), ``syn`` (synapse dynamics), ``out`` (how the synaptic variable
drives the post membrane: COBA, CUBA, ...) and ``post`` (the target population).

For a synapse whose dynamics are linear in its input (Expon, DualExpon, Alpha), filtering each
synapse and summing equals summing first and filtering once:

.. math::

    g_j(n) = \sum_i \sum_{k<n} d^{\,n-1-k} w_{ij} s_i(k) = \sum_{k<n} d^{\,n-1-k}
    \Big(\sum_i w_{ij} s_i(k)\Big),

so one synaptic State per post neuron suffices, not one per synapse. With descriptors
(``Expon.desc(...)``, ``COBA.desc(...)``) every projection onto the same post population with equal
synapse and output descriptors shares **one** synapse State of size ``N_post``: memory grows with
neurons, not with synapses.

Timing (as in brainpy.state): ``proj(spikes)`` delivers ``comm(spikes)`` as a pending jump; the
shared synapse advances when the post population is called (its *before update*), then the
output is evaluated inside the membrane equation at the membrane potential.

Optional presynaptic stages, applied to the spikes before ``comm`` in this order:
``delay`` (a ring buffer of whole time steps, :mod:`torchbrain.delay`; a spike at step ``k``
reaches the synapse at step ``k + 1 + D``, exactly once) and ``stp`` (short-term plasticity sized
by the presynaptic population; its graded output is weighted by value by the event-driven
connectivity). The delay models axonal conduction and comes first; the plasticity acts at the
terminal on the spikes as they arrive.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..delay import as_delay
from ..describe import ParamDescriber
from ..dynamics import Dynamics
from ..module import Module
from .base import check_sizes, check_weight_unit

__all__ = ["AlignPostProj"]


def as_presynaptic_stp(owner: str, stp, size):
    """Build (or check) the short-term plasticity stage of a projection.

    ``stp`` may be ``None``, an instance (``STP``/``STD`` or any population driven by spikes) or
    a descriptor (``STP.desc(n_pre, ...)``); its size must equal ``size`` (the number of
    presynaptic entries). Raised at construction.
    """
    if stp is None:
        return None
    if isinstance(stp, ParamDescriber):
        stp = stp()
    if not isinstance(stp, Dynamics):
        raise TypeError(
            f"{owner}: 'stp' must be a short-term plasticity module (STP, STD) or its "
            f"descriptor, got {type(stp).__name__}"
        )
    if size is not None and stp.num != size:
        raise ValueError(
            f"{owner}: the short-term plasticity has {stp.num} units but the presynaptic "
            f"signal has {size}; size it by the presynaptic population"
        )
    return stp


class _AlignPostUpdate(nn.Module):
    """The post population's before-update: advance the shared synapse, bind its output."""

    def __init__(self, syn: nn.Module, out: nn.Module):
        super().__init__()
        self.syn = syn
        self.out = out

    def forward(self) -> None:
        self.out.bind_cond(self.syn())


class AlignPostProj(Module):
    r"""A projection whose synaptic state lives on the post population.

    Parameters
    ----------
    *modules : nn.Module
        Optional modules applied in order to the presynaptic spikes before ``comm``.
    comm : nn.Module
        Connectivity mapping ``(..., n_pre)`` to ``(..., n_post)`` (e.g. ``EventFixedProb``).
    syn : ParamDescriber or Dynamics
        The synapse. A descriptor (``Expon.desc(n_post, tau=5 * u.ms)``) enables sharing:
        projections with equal synapse and output descriptors onto the same ``post`` share one
        instance. An instance is private to this projection.
    out : ParamDescriber or SynapticCurrent
        The synaptic output (``COBA.desc(E=0 * u.mV)``); a descriptor when ``syn`` is one.
    post : Dynamics
        The target population.
    label : str, optional
        Projections with different labels never share a synapse.
    delay : quantity [time], Delay or None, default None
        Transmission delay of the presynaptic spikes (plain numbers in ms), stored as
        ``D = round(delay / dt)`` whole steps (halves up; see :func:`torchbrain.delay.delay_steps`)
        when the States are initialised, so ``tb.init_all_states`` must run inside a ``dt``
        context. Total lag from a presynaptic spike to the conductance jump: ``1 + D`` steps.
        Unlike the reference, a delay that is not a multiple of ``dt`` never splits a spike (the
        reference interpolates it and then delivers it twice).
    stp : STP, STD, descriptor or None, default None
        Short-term plasticity sized by the presynaptic population (``comm.n_pre``), applied to
        the (delayed) spikes before ``comm``: each spike is weighted by its efficacy.

    Raises
    ------
    TypeError, ValueError
        At construction, for a ``post`` that is not a population, a synapse that is not linear
        (cannot be aligned to post), sizes that disagree between comm, syn, post, delay and stp,
        a negative delay, or a weight unit that the output cannot take (e.g. a current weight
        into a COBA output).
    """

    def __init__(self, *modules: nn.Module, comm: nn.Module, syn, out, post: Dynamics,
                 label: str | None = None, delay=None, stp=None):
        super().__init__()
        if not isinstance(post, Dynamics):
            raise TypeError(
                f"AlignPostProj: 'post' must be a torchbrain population (Dynamics), got "
                f"{type(post).__name__}"
            )
        if not isinstance(comm, nn.Module):
            raise TypeError(f"AlignPostProj: 'comm' must be an nn.Module, got {type(comm)}")
        self.pre_modules = nn.ModuleList(modules)
        self.comm = comm
        self.label = label
        n_pre = getattr(comm, "n_pre", None)
        self.delay = as_delay("AlignPostProj", delay, n_pre, like=comm)
        self.stp = as_presynaptic_stp("AlignPostProj", stp, n_pre)
        merging = isinstance(syn, ParamDescriber)
        if merging != isinstance(out, ParamDescriber):
            raise TypeError(
                "AlignPostProj: 'syn' and 'out' must both be descriptors (Cls.desc(...)), which "
                "share state between projections, or both be instances"
            )
        syn_cls = syn.cls if merging else type(syn)
        if not getattr(syn_cls, "align_post", False):
            raise TypeError(
                f"AlignPostProj: the synapse {syn_cls.__name__} is not linear in its input, so "
                "its state cannot be aligned to the post population; use a linear synapse "
                "(Expon, DualExpon, Alpha) or an AlignPreProj"
            )
        if merging:
            syn, out = self._shared_synapse(syn, out, post, label, comm)
        else:
            check_sizes("AlignPostProj", comm=comm, syn=syn, post=post)
            check_weight_unit("AlignPostProj", comm, out)
            post.add_current_input(f"proj_{id(self)}", out)
        self.syn = syn
        self.out = out
        self.merging = merging
        # ``post`` is kept as a plain attribute: the projection drives it but does not own it,
        # so a network that owns both lists the population once.
        self.__dict__["post"] = post
        self._input_key = f"proj_{id(self)}"

    @staticmethod
    def _shared_synapse(syn_desc: ParamDescriber, out_desc: ParamDescriber, post: Dynamics,
                        label, comm):
        registry = post.__dict__.setdefault("_align_post_slots", {})
        key = (label, syn_desc.identifier, out_desc.identifier)
        slot = registry.get(key)
        if slot is None:
            syn, out = syn_desc(), out_desc()
            # validate before registering, so a failed construction leaves post untouched
            check_sizes("AlignPostProj", comm=comm, syn=syn, post=post)
            check_weight_unit("AlignPostProj", comm, out)
            slot = f"align_post_{len(registry)}"
            registry[key] = slot
            post.add_current_input(slot, out)
            post.add_before_update(slot, _AlignPostUpdate(syn, out))
        update = post.get_before_update(slot)
        check_sizes("AlignPostProj", comm=comm, syn=update.syn, post=post)
        check_weight_unit("AlignPostProj", comm, update.out)
        return update.syn, update.out

    def _repr_config(self) -> dict[str, Any]:
        return {"merging": self.merging, "label": self.label}

    def forward(self, spikes: torch.Tensor) -> None:
        """Deliver ``comm(spikes)`` to the synapse (it advances with the post population)."""
        x = spikes
        for mod in self.pre_modules:
            x = mod(x)
        if self.delay is not None:
            x = self.delay(x)
        if self.stp is not None:
            x = self.stp(x)
        x = self.comm(x)
        self.syn.add_delta_input(self._input_key, x)
        if not self.merging:
            self.out.bind_cond(self.syn())
