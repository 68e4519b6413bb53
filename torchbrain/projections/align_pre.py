r"""``AlignPreProj``: synaptic state aligned to the presynaptic population.

The synapse is sized by the **presynaptic** population and advanced by its spikes: at
construction it is registered as an *after update* of ``pre`` (brainpy.state's
``pre.align_pre(syn)``), so every call of ``pre`` feeds it the new spikes. When the projection is
called it reads the synaptic variable :math:`g^\mathrm{pre}` of every presynaptic neuron, maps it
through the connectivity as a **graded** product and binds the result to its output on ``post``:

.. math::

    g^\mathrm{post}_j = \sum_i w_{ij}\, g^\mathrm{pre}_i .

Any synapse works this way, including the nonlinear ones that cannot be aligned to the post
population (``AMPA``, ``GABAa``, ``NMDA``, ``Alpha``), and short-term plasticity can act on each
presynaptic spike before the synapse. The price is compute: every presynaptic trace is nonzero
long after its spike, so each step costs :math:`O(\text{synapses})` (the event-driven
connectivity touches every row with a nonzero trace), against :math:`O(\text{spikes} \times
\text{fan-out})` for :class:`~torchbrain.projections.align_post.AlignPostProj`. Memory is linear
in the presynaptic population.

Equivalence with AlignPost for linear synapses. With ``Expon``, AlignPost keeps
:math:`g^\mathrm{post}(n) = d\,g^\mathrm{post}(n-1) + W^\top s(n-1)` (the projection is called
with the spikes of step ``n - 1``, the synapse advances in ``post``'s before-update at step
``n``); AlignPre keeps :math:`g^\mathrm{pre}(n-1) = d\,g^\mathrm{pre}(n-2) + s(n-1)` (advanced in
``pre``'s after-update at step ``n - 1``) and binds :math:`W^\top g^\mathrm{pre}(n-1)` at step
``n``. By linearity both give the same conductance at every step: a spike emitted at step ``k``
makes the conductance jump at step ``k + 1``, so the two networks produce the same rasters
(up to floating-point summation order). One difference: AlignPost also transmits "spikes" of a
supra-threshold **initial** potential (``get_spike()`` before the first step), which AlignPre
never sees because its synapse only receives the output of ``pre``'s updates; clip initial
potentials below threshold to compare them. For the same reason AlignPost's presynaptic stages
(``delay``, ``stp``) run once more at the start (on the initial spikes); this changes nothing for
stages at rest (an empty delay line, ``STD``, ``STP`` started at ``u = 0``), while an ``STP``
started at ``u = U`` relaxes one step longer before the first spike under AlignPost.

Call order: as for AlignPost, the latency is set by the order of calls in a step; calling the
projections before the populations (``proj(); post(x)``) gives the 1-step latency above.

The reference (brainpy.state 2.9's ``align_pre_projection``) fails on every call (a
``BinaryArray`` added to a quantity, or a missing ``MaskedFloat`` with STP); this class is the
working version, with the same roles and a size and unit check at construction.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..delay import as_delay
from ..describe import ParamDescriber, _hashable
from ..dynamics import Dynamics
from ..module import Module
from .align_post import as_presynaptic_stp
from .base import check_sizes, check_weight_unit

__all__ = ["AlignPreProj"]


class _AlignPreUpdate(nn.Module):
    """``pre``'s after-update: spikes -> generators -> delay -> stp -> synapse step."""

    def __init__(self, modules, delay, stp, syn):
        super().__init__()
        self.pre_modules = nn.ModuleList(modules)
        self.delay = delay
        self.stp = stp
        self.syn = syn

    def driven(self) -> list[nn.Module]:
        return [m for m in (*self.pre_modules, self.delay, self.stp, self.syn) if m is not None]

    def forward(self, spikes) -> None:
        x = spikes
        for mod in self.pre_modules:
            x = mod(x)
        if self.delay is not None:
            x = self.delay(x)
        if self.stp is not None:
            x = self.stp(x)
        self.syn(x)


def _identity_key(value) -> Any:
    if value is None:
        return None
    if isinstance(value, ParamDescriber):
        return ("desc", value.identifier)
    if isinstance(value, nn.Module):
        return ("instance", id(value))
    return ("value", _hashable(value))


class AlignPreProj(Module):
    r"""A projection whose synaptic state lives on the presynaptic population.

    Parameters
    ----------
    *spike_generator : nn.Module
        Optional modules applied in order to ``pre``'s spikes before the synapse (e.g. a slice
        selecting a sub-population). Without them the synapse must have ``pre.num`` units.
    pre : Dynamics
        The presynaptic population; its update must return spikes.
    syn : ParamDescriber or Dynamics
        The synapse, sized by the presynaptic signal (``Expon.desc(n_pre, tau=5 * u.ms)``,
        ``AMPA(n_pre)``, ...). A descriptor is shared by projections from the same ``pre`` with
        equal ``label``, spike generators, synapse, ``delay`` and ``stp``: one synapse State feeds
        them all (e.g. one pre population projecting to several targets). An instance is private
        and may drive a single projection.
    comm : nn.Module
        Connectivity mapping ``(..., n_pre)`` to ``(..., n_post)``; it is applied to the graded
        synaptic variable (an event-driven layer weights each row by its value).
    out : ParamDescriber or SynapticCurrent
        The synaptic output on ``post`` (``COBA.desc(E=0 * u.mV)``), one per projection.
    post : Dynamics
        The target population.
    delay : quantity [time], Delay or None, default None
        Transmission delay of the presynaptic spikes before the synapse (plain numbers in ms),
        ``D = round(delay / dt)`` whole steps (see :mod:`torchbrain.delay`); the States must be
        initialised inside a ``dt`` context. Total lag ``1 + D`` steps, as AlignPost's.
    stp : STP, STD, descriptor or None, default None
        Short-term plasticity sized like the synapse, applied to the (delayed) spikes.
    label : str, optional
        Projections with different labels never share a synapse.

    Raises
    ------
    TypeError, ValueError
        At construction: ``pre``/``post`` that are not populations, sizes that disagree between
        pre, syn, stp, delay, comm and post, a weight unit the output cannot take, a negative
        delay, or a synapse/plasticity instance already driven by another projection.

    Notes
    -----
    Cost per step :math:`O(\text{synapses})` (graded product), memory :math:`O(N_\mathrm{pre})`;
    see the module docstring for the timing and the exact equivalence with
    :class:`~torchbrain.projections.align_post.AlignPostProj` on linear synapses. With spike
    generators the size of their output cannot be known before the first step; it is checked by
    the synapse then.

    Examples
    --------
    >>> import torch, torchbrain as tb
    >>> from torchbrain import u
    >>> from torchbrain.projections.align_pre import AlignPreProj
    >>> pre = tb.LIF(20, V_th=-50 * u.mV, V_reset=-60 * u.mV, V_rest=-60 * u.mV)
    >>> post = tb.LIF(10, V_th=-50 * u.mV, V_reset=-60 * u.mV, V_rest=-60 * u.mV)
    >>> proj = AlignPreProj(pre=pre, syn=tb.AMPA.desc(20),
    ...                     comm=tb.FixedNumConn(20, 10, 4, 1 * u.nS, seed=0),
    ...                     out=tb.COBA.desc(E=0 * u.mV), post=post)
    """

    def __init__(self, *spike_generator: nn.Module, pre: Dynamics, syn, comm: nn.Module, out,
                 post: Dynamics, delay=None, stp=None, label: str | None = None):
        super().__init__()
        owner = "AlignPreProj"
        for role, pop in (("pre", pre), ("post", post)):
            if not isinstance(pop, Dynamics):
                raise TypeError(
                    f"{owner}: '{role}' must be a torchbrain population (Dynamics), got "
                    f"{type(pop).__name__}"
                )
        if not isinstance(comm, nn.Module):
            raise TypeError(f"{owner}: 'comm' must be an nn.Module, got {type(comm).__name__}")
        for mod in spike_generator:
            if not isinstance(mod, nn.Module):
                raise TypeError(
                    f"{owner}: spike generators must be nn.Modules, got {type(mod).__name__}"
                )
        if not isinstance(syn, ParamDescriber | Dynamics):
            raise TypeError(
                f"{owner}: 'syn' must be a synapse (Dynamics) or its descriptor (Cls.desc(...)), "
                f"got {type(syn).__name__}"
            )
        out = out() if isinstance(out, ParamDescriber) else out
        if not (isinstance(out, nn.Module) and hasattr(out, "bind_cond")):
            raise TypeError(
                f"{owner}: 'out' must be a synaptic output (COBA, CUBA, MgBlock) or its "
                f"descriptor, got {type(out).__name__}"
            )
        check_weight_unit(owner, comm, out)

        slots = pre.__dict__.setdefault("_align_pre_slots", {})
        key = None
        if isinstance(syn, ParamDescriber):
            key = (label, tuple(id(m) for m in spike_generator), syn.identifier,
                   _identity_key(stp), _identity_key(delay))
        slot = slots.get(key) if key is not None else None
        check_sizes(owner, comm=comm, post=post)
        if slot is None:
            update = self._build_update(owner, spike_generator, pre, syn, comm, delay, stp)
            self._check_not_driven(owner, pre, update)
            slot = f"align_pre_{id(update)}"
            pre.add_after_update(slot, update)
            if key is not None:
                slots[key] = slot
        update = pre.after_updates[slot]
        self._check_syn_size(owner, update.syn, comm, None if spike_generator else pre)
        self._input_key = f"align_pre_proj_{id(self)}"
        post.add_current_input(self._input_key, out)

        self.pre_modules = update.pre_modules
        self.delay = update.delay
        self.stp = update.stp
        self.syn = update.syn
        self.comm = comm
        self.out = out
        self.label = label
        self.shared = key is not None
        # pre and post are driven, not owned: a network that owns them lists each once
        self.__dict__["pre"] = pre
        self.__dict__["post"] = post

    @staticmethod
    def _check_syn_size(owner, syn, comm, pre) -> None:
        n_pre = getattr(comm, "n_pre", None)
        if n_pre is not None and n_pre != syn.num:
            raise ValueError(
                f"{owner}: the synapse has {syn.num} units but comm takes {n_pre} inputs; the "
                "synapse of an AlignPre projection is sized by the presynaptic signal"
            )
        if pre is not None and syn.num != pre.num:
            raise ValueError(
                f"{owner}: the synapse has {syn.num} units but the pre population has "
                f"{pre.num}; size the synapse like the population it is aligned to (or pass a "
                "spike generator that selects a sub-population)"
            )

    @classmethod
    def _build_update(cls, owner, modules, pre, syn, comm, delay, stp) -> _AlignPreUpdate:
        syn = syn() if isinstance(syn, ParamDescriber) else syn
        if not isinstance(syn, Dynamics):
            raise TypeError(
                f"{owner}: 'syn' must describe a synapse (Dynamics), got {type(syn).__name__}"
            )
        cls._check_syn_size(owner, syn, comm, None if modules else pre)
        delay = as_delay(owner, delay, syn.num, like=comm)
        stp = as_presynaptic_stp(owner, stp, syn.num)
        return _AlignPreUpdate(modules, delay, stp, syn)

    @staticmethod
    def _check_not_driven(owner: str, pre: Dynamics, update: _AlignPreUpdate) -> None:
        mine = {id(m): m for m in update.driven()}
        for other in pre.after_updates.values():
            if isinstance(other, _AlignPreUpdate):
                for m in other.driven():
                    if id(m) in mine and isinstance(m, Dynamics):
                        raise ValueError(
                            f"{owner}: the {type(m).__name__} instance is already driven by "
                            "another AlignPreProj from this pre population (it would advance "
                            "twice per step); pass a descriptor (Cls.desc(...)) to share one "
                            "synapse between projections"
                        )

    def _repr_config(self) -> dict[str, Any]:
        return {"shared": self.shared, "label": self.label}

    def forward(self) -> None:
        """Bind ``comm(g_pre)`` to the output on ``post`` (the synapse advances with ``pre``)."""
        g = self.syn.get_output()
        if g is None:
            raise RuntimeError(
                f"AlignPreProj: the synapse {type(self.syn).__name__} has no State yet; call "
                "tb.init_all_states(model) before running"
            )
        x = self.comm(g)
        post = self.__dict__["post"]
        if len(post.varshape) > 1:
            x = x.reshape(*x.shape[:-1], *post.varshape)
        self.out.bind_cond(x)
