r"""Synaptic outputs: how a synaptic variable drives the membrane (``COBA``, ``CUBA``, ``MgBlock``).

An output is registered on a post population with ``post.add_current_input(key, out)``. Each step
the projection binds the synaptic variable with ``out.bind_cond(g)``; the population then asks
for ``out.current(V)`` (pA) and ``out.conductance(V)`` (:math:`-dI/dV`, nS) inside its membrane
equation, so that a conductance enters the exponential-Euler step exactly.

Outputs hold no States: the bound variable is a per-step binding, not a hand-off between steps.
Every step the projection (or the post population's before-update) binds it *before* the
population reads it, so nothing a step leaves in it is read by the next one: a run restored with
``tb.load_state_dict`` rebinds it at its first step, and CUDA-graph capture treats it as scratch
(written before read within the chunk). Before the first ``bind_cond``, and again after
``init_state``/``reset_state``, it is ``0.0``, so an output contributes no current (rather than
raising, as the reference does), which lets a network be stepped before its projections have run.

Units: plain numbers are read in mV, mM and 1/mV; the bound variable is in nS (``COBA``,
``MgBlock``, ``CUBA`` with a voltage ``scale``) or pA (``CUBA`` without ``scale``). A quantity
bound with ``bind_cond`` is converted to that unit.
"""

from __future__ import annotations

from typing import Any

import torch

from .dynamics import SynapticCurrent
from .functional import synapses as F
from .units import is_quantity, to_tensor, u

__all__ = ["SynOut", "COBA", "CUBA", "MgBlock"]


class SynOut(SynapticCurrent):
    """Base of synaptic outputs: ``bind_cond(g)``, then ``current(V)`` and ``conductance(V)``.

    Attributes
    ----------
    cond_unit : str
        The canonical unit of the bound synaptic variable (``'nS'`` or ``'pA'``); projections
        can compare it with their weights' unit.
    """

    cond_unit: str = "nS"

    def __init__(self, *, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        self._cond: torch.Tensor | float = 0.0

    def bind_cond(self, g) -> None:
        """Bind the synaptic variable for this step (a tensor or number in ``cond_unit``, or a
        quantity)."""
        if is_quantity(g):
            g = to_tensor(g, self.cond_unit, owner=self._name(), name="g",
                          **self._factory_like_states())
        self._cond = g

    def init_state(self, batch_size: int | None = None) -> None:
        # The binding belongs to the run: a reset must not leave the last run's variable bound.
        self._cond = 0.0

    @property
    def cond(self):
        """The bound synaptic variable (``0.0`` before the first :meth:`bind_cond`)."""
        return self._cond

    def forward(self, V):
        """``out(V)`` is :meth:`current` (the reference's call convention)."""
        return self.current(V)

    def __getstate__(self) -> dict[str, Any]:
        # The bound variable may be a non-leaf tensor after an autograd forward; copies get it
        # detached (deepcopy and pickle refuse non-leaf tensors).
        state = super().__getstate__()
        cond = state.get("_cond")
        if isinstance(cond, torch.Tensor) and cond.grad_fn is not None:
            state["_cond"] = cond.detach()
        return state


class COBA(SynOut):
    r"""Conductance-based output.

    .. math::

        I = g\,(E - V), \qquad -\frac{dI}{dV} = g

    Parameters
    ----------
    E : quantity [voltage], default 0 mV
        Reversal potential (plain numbers in mV).
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    The reference's ``COBA`` has no default for ``E``; 0 mV (excitatory) is given here.
    A conductance cannot be negative: projections reject negative weights into a ``COBA`` output
    (inhibition is a reversal potential ``E`` below rest, not a negative weight).

    References
    ----------
    Vogels, T. P. & Abbott, L. F. (2005). Signal propagation and logic gating in networks of
    integrate-and-fire neurons. *J. Neurosci.* 25(46), 10786–10795.
    """

    cond_unit = "nS"
    #: the synaptic variable is a conductance: projections reject negative weights into it
    nonnegative_weights = True

    def __init__(self, E=0.0 * u.mV, *, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        self.E = self._register_parameter_with_unit("E", E, "mV")

    def current(self, V):
        """The current in pA at membrane potential ``V`` (mV)."""
        return F.coba_current(self._cond, V, self.E)

    def conductance(self, V):
        """:math:`-dI/dV = g` in nS."""
        return self._cond


class CUBA(SynOut):
    r"""Current-based output.

    .. math::

        I = g \quad(\texttt{scale=None}), \qquad I = g \cdot \mathrm{scale}
        \quad(\text{a voltage scale}), \qquad -\frac{dI}{dV} = 0

    Parameters
    ----------
    scale : quantity [voltage] or None, default None
        ``None``: the synaptic variable is already a current in pA (the projection's weights are
        currents), which is what PyTorch users of current-based models expect. A voltage
        (plain numbers in mV): the synaptic variable is a conductance in nS and the current is
        ``g * scale`` (nS·mV = pA).
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    The reference's default is ``scale = 1 V``, with conductance-valued weights; pass
    ``scale=1 * u.volt`` for the same model (``g`` in nS times 1000 mV).
    """

    def __init__(self, scale=None, *, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        if scale is None:
            self.scale = None
            self.cond_unit = "pA"
        else:
            self.scale = self._register_parameter_with_unit("scale", scale, "mV")
            self.cond_unit = "nS"

    def _repr_config(self):
        return {"scale": None} if self.scale is None else {}

    def current(self, V):
        """The current in pA (independent of ``V``)."""
        return F.cuba_current(self._cond, self.scale)

    def conductance(self, V):
        """0: a current-based input does not change the membrane's time constant."""
        return 0.0


class MgBlock(SynOut):
    r"""Conductance-based output through the voltage-dependent magnesium block (NMDA).

    .. math::

        I = g\,(E - V)\,B(V), \qquad
        B(V) = \frac{1}{1 + \frac{[\mathrm{Mg}^{2+}]_o}{\beta}\,e^{\alpha (V_\mathrm{offset} - V)}}

    and, with :math:`B'(V) = \alpha B (1 - B)`, the slope conductance

    .. math::

        -\frac{dI}{dV} = g\,B\,\bigl[1 - \alpha (E - V)(1 - B)\bigr],

    which the membrane integrator folds into its exponential-Euler step (it is negative in the
    NMDA negative-slope region).

    Parameters
    ----------
    E : quantity [voltage], default 0 mV
        Reversal potential (plain numbers in mV).
    cc_Mg : quantity [concentration], default 1.2 mM
        Extracellular magnesium concentration (plain numbers in mM); must be >= 0.
    alpha : quantity [1/voltage], default 0.062 /mV
        Voltage sensitivity of the block (plain numbers in 1/mV).
    beta : quantity [concentration], default 3.57 mM
        Dissociation constant of the block (plain numbers in mM); must be positive.
    V_offset : quantity [voltage], default 0 mV
        Offset of the voltage dependence (plain numbers in mV).
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    Same equation and defaults as ``brainpy.state.MgBlock``, whose parameters carry no units
    (``alpha`` per mV and ``cc_Mg``, ``beta`` in mM implicitly).

    References
    ----------
    Jahr, C. E. & Stevens, C. F. (1990). Voltage dependence of NMDA-activated macroscopic
    conductances predicted by single-channel kinetics. *J. Neurosci.* 10(9), 3178–3182.
    """

    cond_unit = "nS"
    nonnegative_weights = True

    def __init__(
        self,
        E=0.0 * u.mV,
        cc_Mg=1.2 * u.mM,
        alpha=0.062 / u.mV,
        beta=3.57 * u.mM,
        V_offset=0.0 * u.mV,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(device=device, dtype=dtype)
        self.E = self._register_parameter_with_unit("E", E, "mV")
        self.cc_Mg = self._register_parameter_with_unit("cc_Mg", cc_Mg, "mM", nonnegative=True)
        self.alpha = self._register_parameter_with_unit("alpha", alpha, "1/mV")
        self.beta = self._register_parameter_with_unit("beta", beta, "mM", positive=True)
        self.V_offset = self._register_parameter_with_unit("V_offset", V_offset, "mV")

    def _block(self):
        return dict(cc_Mg=self.cc_Mg, alpha=self.alpha, beta=self.beta, V_offset=self.V_offset)

    def unblocked_fraction(self, V):
        """:math:`B(V)`, the fraction of channels not blocked by magnesium."""
        return F.mg_block(V, **self._block())

    def current(self, V):
        """The current in pA at membrane potential ``V`` (mV)."""
        return F.mgblock_current(self._cond, V, E=self.E, **self._block())

    def conductance(self, V):
        """:math:`-dI/dV` in nS (analytic)."""
        return F.mgblock_conductance(self._cond, V, E=self.E, **self._block())
