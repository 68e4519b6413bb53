r"""Electrical synapses (gap junctions): currents proportional to voltage differences.

A gap junction :math:`k` between neuron :math:`i` of ``pre`` and neuron :math:`j` of ``post``
passes the current

.. math::

    I_{j} \mathrel{+}= g_k\,(V^\mathrm{pre}_i - V^\mathrm{post}_j)
    \quad\text{into } j, \qquad
    I_{i} \mathrel{+}= g'_k\,(V^\mathrm{post}_j - V^\mathrm{pre}_i) \quad\text{into } i,

with :math:`g' = g` for :class:`SymmetryGapJunction` and two independent conductances for
:class:`AsymmetryGapJunction` (rectifying junctions). Conductances are in nS, voltages in mV,
currents in pA.

How it enters the membrane: each population receives one
:class:`~torchbrain.dynamics.SynapticCurrent` (registered with ``add_current_input``) whose
current is the sum above and whose conductance :math:`-\partial I/\partial V_j = \sum_k g_k` is
folded into the exponential-Euler step, like a COBA synapse. The partner's potential is taken
from the start of the step:

* within one population (``couples=pop``), from the potential the population integrates (the
  same tensor, so both ends of a junction are treated alike and no call is needed; calling the
  projection is harmless);
* between two populations, from a snapshot taken when the projection is called. Call it every
  step **before** the populations (``gap(); pre(x); post(y)``): both then see each other's
  potential of the start of the step, whatever the order of the population calls.

For two identical passive cells coupled by :math:`g` the difference :math:`V_1 - V_2` then
decays at the rate :math:`(1 + 2Rg)/\tau` and the mean at :math:`1/\tau`, to first order in
``dt`` (the coupling to the partner is explicit, the self-conductance exact).

Differences from brainpy.state: the reference adds the currents as one-shot inputs computed
from the potentials at call time (its conductance does not enter the integrator), generates a
new input key on each call, and takes ``conn`` as a callable only; here the currents are
persistent outputs with their conductance folded in, and ``conn`` may also be given as index
arrays. Sizes, index ranges, weight shapes and units are checked at construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..dynamics import Dynamics, SynapticCurrent
from ..init import Initializer
from ..module import Module
from ..units import to_tensor

__all__ = ["SymmetryGapJunction", "AsymmetryGapJunction"]


class GapJunctionCurrent(SynapticCurrent):
    """The gap-junction current into one population (see the module docstring)."""

    def __init__(self, n_own: int, varshape, own_ids, partner_ids, weight, self_coupled: bool,
                 *, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        self.n_own = n_own
        self.varshape = tuple(varshape)
        self.self_coupled = self_coupled
        self.register_buffer("own_ids", own_ids, persistent=True)
        self.register_buffer("partner_ids", partner_ids, persistent=True)
        self.weight = self._register_parameter_with_unit("weight", weight, "nS", nonnegative=True)
        self._partner: torch.Tensor | None = None

    def _repr_config(self) -> dict[str, Any]:
        return {"pairs": int(self.own_ids.numel()), "self_coupled": self.self_coupled}

    def bind_partner(self, value: torch.Tensor) -> None:
        self._partner = value

    def _flat(self, V: torch.Tensor) -> torch.Tensor:
        return V.reshape(*V.shape[: V.ndim - len(self.varshape)], -1)

    def current(self, V):
        Vf = self._flat(V)
        if self.self_coupled:
            partner = Vf
        else:
            if self._partner is None:
                raise RuntimeError(
                    "gap junction: the partner population's potential was never read; call the "
                    "gap-junction projection every step before the populations"
                )
            partner = self._flat(self._partner)
        diff = partner.index_select(-1, self.partner_ids) - Vf.index_select(-1, self.own_ids)
        contrib = self.weight.to(diff.dtype) * diff
        out = contrib.new_zeros((*contrib.shape[:-1], self.n_own))
        out = out.index_add(-1, self.own_ids, contrib)
        return out.reshape(*out.shape[:-1], *self.varshape)

    def conductance(self, V):
        w = self.weight.expand(self.own_ids.shape)
        g = w.new_zeros(self.n_own).index_add(0, self.own_ids, w)
        return g.reshape(self.varshape).to(V.dtype)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        partner = state.get("_partner")
        if isinstance(partner, torch.Tensor) and partner.grad_fn is not None:
            state["_partner"] = partner.detach()
        return state


def _index_vector(owner: str, value, name: str, n: int) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
    else:
        t = torch.as_tensor(np.asarray(value))
    if t.ndim != 1:
        raise ValueError(f"{owner}: '{name}' must be a 1-d array of indices, got shape "
                         f"{tuple(t.shape)}")
    if t.numel() and (t.is_floating_point() or t.dtype == torch.bool or t.is_complex()):
        raise TypeError(f"{owner}: '{name}' must hold integer indices, got {t.dtype}")
    t = t.to(torch.int64)
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= n):
        raise ValueError(
            f"{owner}: '{name}' holds indices in [{int(t.min())}, {int(t.max())}] but the "
            f"population has {n} neurons (valid indices 0..{n - 1})"
        )
    return t


def _pairs(owner: str, conn, pre: Dynamics, post: Dynamics):
    """``(pre_ids, post_ids)`` from a callable, a pair of index arrays or an (n, 2) array."""
    if callable(conn) and not isinstance(conn, torch.Tensor | np.ndarray):
        conn = conn(pre.out_size, post.out_size)
    if isinstance(conn, torch.Tensor | np.ndarray):
        arr = torch.as_tensor(np.asarray(conn.cpu() if isinstance(conn, torch.Tensor) else conn))
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(
                f"{owner}: 'conn' as an array must have shape (n_pairs, 2) (pre index, post "
                f"index), got {tuple(arr.shape)}"
            )
        conn = (arr[:, 0], arr[:, 1])
    if not (isinstance(conn, tuple | list) and len(conn) == 2):
        raise TypeError(
            f"{owner}: 'conn' must be (pre_ids, post_ids), an (n_pairs, 2) index array or a "
            f"callable conn(pre_size, post_size) returning (pre_ids, post_ids), got "
            f"{type(conn).__name__}"
        )
    pre_ids = _index_vector(owner, conn[0], "pre_ids", pre.num)
    post_ids = _index_vector(owner, conn[1], "post_ids", post.num)
    if pre_ids.numel() != post_ids.numel():
        raise ValueError(
            f"{owner}: 'conn' gives {pre_ids.numel()} pre indices but {post_ids.numel()} post "
            "indices; they pair up one to one"
        )
    if pre is post and bool((pre_ids == post_ids).any()):
        i = int(pre_ids[pre_ids == post_ids][0])
        raise ValueError(
            f"{owner}: 'conn' couples neuron {i} to itself (a gap junction needs two cells)"
        )
    return pre_ids, post_ids


def _check_state(owner: str, pop: Dynamics, state, role: str) -> str:
    if not isinstance(state, str):
        raise TypeError(f"{owner}: the {role} state must be a State name (str), got {state!r}")
    if state not in pop._state_kinds:
        raise ValueError(
            f"{owner}: the {role} population {pop._name()} has no State named '{state}' "
            f"(its States: {sorted(pop._state_kinds)})"
        )
    return state


def _check_population(owner: str, pop, role: str) -> Dynamics:
    if not isinstance(pop, Dynamics):
        raise TypeError(
            f"{owner}: '{role}' must be a torchbrain population (Dynamics), got "
            f"{type(pop).__name__}"
        )
    return pop


class _GapJunction(Module):
    """Shared construction: the two directed current modules, registered on the populations."""

    owner = "GapJunction"

    def _check_states(self, pre, pre_state, post, post_state):
        _check_state(self.owner, pre, pre_state, "pre")
        _check_state(self.owner, post, post_state, "post")
        if pre is post and pre_state != post_state:
            raise ValueError(
                f"{self.owner}: within one population both ends must use the same State, got "
                f"'{pre_state}' and '{post_state}'"
            )

    def _build(self, pre, pre_state, post, post_state, pre_ids, post_ids, g_post, g_pre):
        fac = pre._factory_like_states()
        # (current module, partner population, partner State) read at every call
        self._links: list = []
        if pre is post:
            # the partner's potential is the integrated potential itself: no snapshot needed
            own = torch.cat([post_ids, pre_ids])
            partner = torch.cat([pre_ids, post_ids])
            w = torch.cat([g_post.expand(post_ids.shape), g_pre.expand(pre_ids.shape)])
            cur = GapJunctionCurrent(pre.num, pre.varshape, own, partner, w, True, **fac)
            self.currents = nn.ModuleList([cur])
            pre.add_current_input(f"gap_junction_{id(self)}", cur)
            return
        into_post = GapJunctionCurrent(post.num, post.varshape, post_ids, pre_ids, g_post, False,
                                       **fac)
        into_pre = GapJunctionCurrent(pre.num, pre.varshape, pre_ids, post_ids, g_pre, False,
                                      **fac)
        self.currents = nn.ModuleList([into_post, into_pre])
        self._links = [(into_post, pre, pre_state), (into_pre, post, post_state)]
        post.add_current_input(f"gap_junction_{id(self)}_post", into_post)
        pre.add_current_input(f"gap_junction_{id(self)}_pre", into_pre)

    def forward(self) -> None:
        """Snapshot the partner potentials of a two-population coupling (call every step,
        before the populations); a no-op within one population."""
        for cur, partner, state in self._links:
            value = getattr(partner, state)
            if value is None:
                raise RuntimeError(
                    f"{self.owner}: {partner._name()}.{state} has no value yet; call "
                    "tb.init_all_states(model) before running"
                )
            cur.bind_partner(value)

    def _repr_config(self) -> dict[str, Any]:
        pairs = int(self.currents[0].own_ids.numel())
        return {"pairs": pairs // 2 if len(self.currents) == 1 else pairs}


def _weight_tensor(owner: str, weight, shape, fac) -> torch.Tensor:
    """Conductances as a tensor in nS (quantities converted; NaN and negative values refused)."""
    if isinstance(weight, Initializer):
        weight = weight(shape, **fac)
    w = to_tensor(weight, "nS", owner=owner, name="weight", **fac)
    if bool(torch.isnan(w).any()):
        raise ValueError(f"{owner}: parameter 'weight' contains NaN")
    if bool((w < 0).any()):
        raise ValueError(
            f"{owner}: parameter 'weight' (a conductance) must be >= 0, got "
            f"{w.min().item():g} nS (smallest value)"
        )
    return w.detach()


class SymmetryGapJunction(_GapJunction):
    r"""Gap junctions with one conductance for both directions.

    .. math::

        I^\mathrm{post}_{j} = \sum_{k:\,(i,j)} g_k (V^\mathrm{pre}_i - V^\mathrm{post}_j),
        \qquad
        I^\mathrm{pre}_{i} = \sum_{k:\,(i,j)} g_k (V^\mathrm{post}_j - V^\mathrm{pre}_i)

    Parameters
    ----------
    couples : Dynamics or (Dynamics, Dynamics)
        One population (junctions between its own neurons) or ``(pre, post)``.
    states : str or (str, str), default 'V'
        The State holding each side's membrane potential (mV).
    conn : callable, (pre_ids, post_ids) or array of shape (n_pairs, 2)
        The junctions: pairs of flat neuron indices. A callable is called as
        ``conn(pre.out_size, post.out_size)`` and returns ``(pre_ids, post_ids)`` (the
        reference's convention). Within one population a pair (i, j) couples i and j both ways;
        listing (j, i) as well doubles the coupling. A neuron cannot be coupled to itself.
    weight : quantity [conductance], float, tensor or Initializer
        Conductance of each junction (plain numbers in nS), a scalar or one per pair; >= 0.

    Raises
    ------
    TypeError, ValueError, UnitError
        At construction: populations that are not Dynamics, a missing State, indices out of
        range or of unequal length, self-coupling, a weight of the wrong shape, sign or unit.

    Notes
    -----
    See the module docstring for the timing and the integration. Call the projection every
    step before the populations when it couples two populations.
    """

    owner = "SymmetryGapJunction"

    def __init__(self, couples, states="V", conn=None, weight=None):
        super().__init__()
        owner = self.owner
        if isinstance(couples, tuple | list):
            if len(couples) != 2:
                raise ValueError(f"{owner}: 'couples' must be one population or (pre, post)")
            pre, post = couples
        else:
            pre = post = couples
        _check_population(owner, pre, "pre")
        _check_population(owner, post, "post")
        pre_state, post_state = (states, states) if isinstance(states, str) else tuple(states)
        self._check_states(pre, pre_state, post, post_state)
        if conn is None or weight is None:
            raise TypeError(f"{owner}: 'conn' and 'weight' are required")
        pre_ids, post_ids = _pairs(owner, conn, pre, post)
        n_pairs = pre_ids.numel()
        fac = pre._factory_like_states()
        w = _weight_tensor(owner, weight, (n_pairs,), fac)
        if w.ndim > 1 or (w.ndim == 1 and w.shape[0] != n_pairs):
            raise ValueError(
                f"{owner}: 'weight' must be a scalar or have one value per junction "
                f"({n_pairs},), got shape {tuple(w.shape)}"
            )
        ids_device = fac["device"]
        self._build(pre, pre_state, post, post_state, pre_ids.to(ids_device),
                    post_ids.to(ids_device), w, w)
        self.__dict__["pre"] = pre
        self.__dict__["post"] = post


class AsymmetryGapJunction(_GapJunction):
    r"""Gap junctions with a separate conductance for each direction (rectifying junctions).

    .. math::

        I^\mathrm{post}_{j} = \sum_{k:\,(i,j)} g^{\rightarrow}_k (V^\mathrm{pre}_i
        - V^\mathrm{post}_j), \qquad
        I^\mathrm{pre}_{i} = \sum_{k:\,(i,j)} g^{\leftarrow}_k (V^\mathrm{post}_j
        - V^\mathrm{pre}_i)

    Parameters
    ----------
    pre : Dynamics
        The presynaptic population.
    pre_state : str
        The State holding its membrane potential (usually ``'V'``).
    post : Dynamics
        The postsynaptic population (may be ``pre``).
    post_state : str
        The State holding its membrane potential.
    conn : callable, (pre_ids, post_ids) or array of shape (n_pairs, 2)
        The junctions (see :class:`SymmetryGapJunction`).
    weight : quantity [conductance], tensor or Initializer, shape (2,) or (n_pairs, 2)
        ``weight[..., 0]`` is :math:`g^{\rightarrow}` (the current into ``post``),
        ``weight[..., 1]`` is :math:`g^{\leftarrow}` (into ``pre``); plain numbers in nS; >= 0.
        ``[g, 0]`` makes a one-way junction.

    Raises
    ------
    TypeError, ValueError, UnitError
        As :class:`SymmetryGapJunction`, and a weight whose last dimension is not 2.
    """

    owner = "AsymmetryGapJunction"

    def __init__(self, pre, pre_state="V", post=None, post_state="V", conn=None, weight=None):
        super().__init__()
        owner = self.owner
        post = pre if post is None else post
        _check_population(owner, pre, "pre")
        _check_population(owner, post, "post")
        self._check_states(pre, pre_state, post, post_state)
        if conn is None or weight is None:
            raise TypeError(f"{owner}: 'conn' and 'weight' are required")
        pre_ids, post_ids = _pairs(owner, conn, pre, post)
        n_pairs = pre_ids.numel()
        fac = pre._factory_like_states()
        w = _weight_tensor(owner, weight, (n_pairs, 2), fac)
        if w.ndim not in (1, 2) or w.shape[-1] != 2 or (w.ndim == 2 and w.shape[0] != n_pairs):
            raise ValueError(
                f"{owner}: 'weight' must have shape (2,) (one pair of conductances for all "
                f"junctions) or ({n_pairs}, 2), got shape {tuple(w.shape)}"
            )
        ids_device = fac["device"]
        self._build(pre, pre_state, post, post_state, pre_ids.to(ids_device),
                    post_ids.to(ids_device), w[..., 0], w[..., 1])
        self.__dict__["pre"] = pre
        self.__dict__["post"] = post
