r"""Exponential integrate-and-fire neurons: ``ExpIF``, ``ExpIFRef``, ``AdExIF``, ``AdExIFRef``.

Equations and defaults follow brainpy.state 2.9 (see :mod:`torchbrain.functional.exp_if`),
converted to canonical units (ms, mV, pA, nS, GΩ; plain numbers are read in these). Differences
from the reference, on purpose:

* **the default reset is 'hard'** (the reference's is 'soft'). The exponential upstroke
  diverges in finite time, so a spiking step can overshoot far above ``V_th`` (up to ~1e20 mV
  when ``V_th`` is far above ``V_T``). Once an overshoot exceeds ``2 V_th - V_reset``,
  subtracting ``V_th - V_reset`` leaves V above threshold and the soft reset fires on every
  following step (with the default parameters and a 3 mA input this happens within the first
  spikes). ``spk_reset='soft'`` is still available and behaves as the reference;
* the hard reset gives exactly ``V_reset`` however large the overshoot (the reference's
  ``V - (V - V_reset)`` cancels to 0 mV in float32);
* the exponential-Euler growth exponent is capped (only in such an overshooting step), so V stays
  finite instead of becoming inf and then NaN;
* AdEx's ``w`` is advanced with the new V capped at ``V_th``: the reference feeds the raw
  overshoot of a spiking step into ``w``, which with a cut-off far above ``V_T`` (e.g. the 0 mV of
  Naud et al. 2008) makes ``w`` ~1e22 pA and silences the neuron; below ``V_th`` both agree;
* ``V_th <= V_reset`` raises an error (the reference silently never spikes);
* the membrane can be given a capacitance ``C`` instead of ``R`` (``R = tau/C``).
"""

from __future__ import annotations

from typing import Any

import torch

from ..functional import exp_if as F
from ..init import Constant
from ..state import HiddenState
from ..units import u
from ._mixins import _AdaptationCurrent, _Refractory
from .lif import _LeakyBase

__all__ = ["ExpIF", "ExpIFRef", "AdExIF", "AdExIFRef"]


class ExpIF(_LeakyBase):
    r"""Exponential integrate-and-fire neuron (Fourcaud-Trocmé et al. 2003).

    .. math::

        \tau \frac{dV}{dt} = -(V - V_\mathrm{rest})
            + \Delta_T \exp\!\Big(\min\big(\tfrac{V - V_T}{\Delta_T}, 20\big)\Big) + R\,I(t),
        \qquad \text{spike when } V \ge V_\mathrm{th}

    integrated with exponential Euler using the analytic Jacobian (see
    :mod:`torchbrain.functional.exp_if`). The spike is ``spk_fun((V - V_th)/(V_th - V_reset))``;
    the reset is applied lazily at the start of the next step. ``V_T`` is the soft threshold where
    the exponential upstroke takes over; ``V_th`` is only the numerical cut-off of the upstroke.
    With a constant current the neuron fires iff :math:`R I > V_T - V_\mathrm{rest} - \Delta_T`
    (the rheobase, where the stable and unstable fixed points merge at :math:`V = V_T`).

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of neurons.
    R : quantity [resistance], default 1 Ω
        Membrane resistance (plain numbers in GΩ; 1 Ω = 1e-9 GΩ). Exclusive with ``C``.
    tau : quantity [time], default 10 ms
        Membrane time constant (plain numbers in ms); must be positive.
    V_th : quantity [voltage], default -30 mV
        Numerical spike cut-off (plain numbers in mV); must be above ``V_reset``.
    V_reset : quantity [voltage], default -68 mV
        Reset potential.
    V_rest : quantity [voltage], default -65 mV
        Resting potential.
    V_T : quantity [voltage], default -59.9 mV
        Threshold of the exponential term.
    delta_T : quantity [voltage], default 3.48 mV
        Spike slope factor; must be positive.
    V_initializer : Initializer or quantity [voltage], default ``Constant(-65 mV)``
        Initial membrane potential, evaluated at each ``init_state``/``reset_state``.
    spk_fun : Surrogate, default ``ReluGrad()``
        Spike function (Heaviside forward, surrogate gradient backward).
    spk_reset : {'hard', 'soft'}, default 'hard'
        ``'hard'`` sets V to ``V_reset`` (the reference's default 'soft' runs away: see the
        module docstring).
    name : str, optional
    C : quantity [capacitance], optional
        Membrane capacitance (plain numbers in pF); sets ``R = tau / C``.
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    Input to ``update(x)``: a current (quantity, or a tensor/number in pA). With the default
    R = 1 Ω, ``1 mA`` drives V by ``R I = 1 mV`` and the rheobase is ``1.62 mA``.

    References
    ----------
    Fourcaud-Trocmé, N., Hansel, D., van Vreeswijk, C. & Brunel, N. (2003). How spike generation
    mechanisms determine the neuronal response to fluctuating inputs. J. Neurosci. 23,
    11628-11640.

    Examples
    --------
    >>> import torchbrain as tb
    >>> from torchbrain import u
    >>> from torchbrain.neurons.exp_if import ExpIF
    >>> n = ExpIF(2, R=0.1 * u.gigaohm)
    >>> _ = tb.init_all_states(n)
    >>> with tb.environ.context(dt=0.1 * u.ms):
    ...     spikes = tb.for_loop(lambda: n(30 * u.pA), length=1000)
    >>> int(spikes.sum()) > 0
    True
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=10.0 * u.ms,
        V_th=-30.0 * u.mV,
        V_reset=-68.0 * u.mV,
        V_rest=-65.0 * u.mV,
        V_T=-59.9 * u.mV,
        delta_T=3.48 * u.mV,
        V_initializer=Constant(-65.0 * u.mV),
        spk_fun=None,
        spk_reset: str = "hard",
        name: str | None = None,
        *,
        C=None,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_size, tau=tau, R=R, C=C, V_initializer=V_initializer, spk_fun=spk_fun,
            spk_reset=spk_reset, name=name, device=device, dtype=dtype,
        )
        shape = self.varshape
        reg = self._register_parameter_with_unit
        self.V_th = reg("V_th", V_th, "mV", shape=shape)
        self.V_reset = reg("V_reset", V_reset, "mV", shape=shape)
        self.V_rest = reg("V_rest", V_rest, "mV", shape=shape)
        self.V_T = reg("V_T", V_T, "mV", shape=shape)
        self.delta_T = reg("delta_T", delta_T, "mV", shape=shape, positive=True)
        self._check_threshold_above_reset(self.V_th, self.V_reset)
        self.V = HiddenState(None)

    def _membrane(self) -> dict[str, Any]:
        return dict(tau=self.tau, V_th=self.V_th, V_reset=self.V_reset, V_rest=self.V_rest,
                    V_T=self.V_T, delta_T=self.delta_T, R=self.R, dt=self._dt(),
                    spk_fun=self.spk_fun, hard_reset=self.hard_reset)

    def rheobase(self) -> torch.Tensor:
        r"""The rheobase current (pA): :math:`(V_T - V_\mathrm{rest} - \Delta_T)/R`."""
        return (self.V_T - self.V_rest - self.delta_T) / self.R

    def init_state(self, batch_size=None):
        self._init_V(batch_size)

    def get_spike(self, V: torch.Tensor | None = None) -> torch.Tensor:
        """The spike of ``V`` (default: the State): Heaviside forward, surrogate backward."""
        V = self._state_V() if V is None else V
        return self.spk_fun(F.expif_spike_input(V, self.V_th, self.V_reset))

    def update(self, x=0.0):
        """Advance one step with external current ``x``; returns the spikes of the new V."""
        self._check_ready()
        current, delta = self._inputs(x)
        self.V = F.expif_update(self.V, current, delta=delta, **self._membrane())
        return self.get_spike()


class ExpIFRef(_Refractory, ExpIF):
    r"""Exponential integrate-and-fire neuron with an absolute refractory period.

    .. math::

        \tau \frac{dV}{dt} = -(V - V_\mathrm{rest})
            + \Delta_T \exp\!\Big(\min\big(\tfrac{V - V_T}{\Delta_T}, 20\big)\Big) + R\,I(t)
        \quad \text{unless } t - t_\mathrm{last\,spike} < \tau_\mathrm{ref},

    during which V stays at its post-reset value. A step that ends with ``V >= V_th`` records the
    current time ``t`` (read from ``tb.environ``: run steps inside
    ``with tb.environ.context(t=t)``) as the last spike time.

    Parameters
    ----------
    tau_ref : quantity [time], default 1.7 ms
        Refractory period (plain numbers in ms); must be >= 0.
    ref_var : bool, default False
        Also keep a boolean ``refractory`` HiddenState (refractory in this step, or just spiked).
    other parameters
        As :class:`ExpIF` (default ``spk_reset='hard'``).

    Notes
    -----
    The last spike time is a ``ShortTermState`` initialised to -1e7 ms (never spiked).

    References
    ----------
    Fourcaud-Trocmé, N. et al. (2003). J. Neurosci. 23, 11628-11640.
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=10.0 * u.ms,
        tau_ref=1.7 * u.ms,
        V_th=-30.0 * u.mV,
        V_reset=-68.0 * u.mV,
        V_rest=-65.0 * u.mV,
        V_T=-59.9 * u.mV,
        delta_T=3.48 * u.mV,
        V_initializer=Constant(-65.0 * u.mV),
        spk_fun=None,
        spk_reset: str = "hard",
        ref_var: bool = False,
        name: str | None = None,
        *,
        C=None,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_size, R=R, tau=tau, V_th=V_th, V_reset=V_reset, V_rest=V_rest, V_T=V_T,
            delta_T=delta_T, V_initializer=V_initializer, spk_fun=spk_fun, spk_reset=spk_reset,
            name=name, C=C, device=device, dtype=dtype,
        )
        self._init_refractory(tau_ref, ref_var)

    def _repr_config(self):
        return {**super()._repr_config(), **self._repr_refractory()}

    def init_state(self, batch_size=None):
        self._init_refractory_states(self._init_V(batch_size))

    def update(self, x=0.0):
        self._check_ready()
        current, delta = self._inputs(x)
        t, last = self._t(), self.last_spike_time
        self.V, self.last_spike_time = F.expifref_update(
            self.V, last, current, t, tau_ref=self.tau_ref, delta=delta, **self._membrane()
        )
        self._note_refractory(t, last, self.V, self.V_th)
        return self.get_spike()


class AdExIF(_AdaptationCurrent, ExpIF):
    r"""Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005).

    .. math::

        \tau \frac{dV}{dt} &= -(V - V_\mathrm{rest})
            + \Delta_T \exp\!\Big(\min\big(\tfrac{V - V_T}{\Delta_T}, 20\big)\Big)
            - R\,w + R\,I(t), \\
        \tau_w \frac{dw}{dt} &= a\,(V - V_\mathrm{rest}) - w, \qquad
        \text{at a spike: } V \leftarrow V_\mathrm{reset},\; w \leftarrow w + b.

    Each step integrates V with ``w`` held (exponential Euler, analytic Jacobian), then ``w``
    exactly with the new V, as the reference does.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of neurons.
    R : quantity [resistance], default 1 Ω
        Membrane resistance (plain numbers in GΩ). Exclusive with ``C``.
    tau : quantity [time], default 10 ms
        Membrane time constant; must be positive.
    tau_w : quantity [time], default 30 ms
        Adaptation time constant (plain numbers in ms); must be positive.
    V_th : quantity [voltage], default -55 mV
        Numerical spike cut-off (plain numbers in mV); must be above ``V_reset``.
    V_reset : quantity [voltage], default -68 mV
    V_rest : quantity [voltage], default -65 mV
    V_T : quantity [voltage], default -59.9 mV
    delta_T : quantity [voltage], default 3.48 mV; must be positive
    a : quantity [conductance], default 1 S
        Subthreshold adaptation (plain numbers in nS; the default is 1e9 nS).
    b : quantity [current], default 1 mA
        Spike-triggered adaptation increment (plain numbers in pA; the default is 1e9 pA).
    V_initializer : Initializer or quantity [voltage], default ``Constant(-65 mV)``
    w_initializer : Initializer or quantity [current], default ``Constant(0 pA)``
    spk_fun : Surrogate, default ``ReluGrad()``
    spk_reset : {'hard', 'soft'}, default 'hard'
        See :class:`ExpIF` (the reference's default 'soft' runs away).
    name, C, device, dtype
        As :class:`ExpIF`.

    Notes
    -----
    **The reference's default regime is unusual.** Its defaults ``R = 1 Ω``, ``a = 1 S``,
    ``b = 1 mA`` are kept exactly (converted: 1e-9 GΩ, 1e9 nS, 1e9 pA), so the dimensionless
    coupling is :math:`aR = 1` (subthreshold adaptation as strong as the leak) and each spike adds
    :math:`Rb = 1` mV worth of adaptation current. Currents of order mA are needed to drive it.
    Physiological cells are better described with a capacitance: e.g. Naud et al. (2008) use
    ``C = 200 pF`` (pass ``C=``), ``g_L = 10 nS`` (``tau = C/g_L = 20 ms``), ``a = 2 nS``,
    ``b = 0-100 pA``.

    References
    ----------
    Brette, R. & Gerstner, W. (2005). Adaptive exponential integrate-and-fire model as an
    effective description of neuronal activity. J. Neurophysiol. 94, 3637-3642.

    Naud, R., Marcille, N., Clopath, C. & Gerstner, W. (2008). Firing patterns in the adaptive
    exponential integrate-and-fire model. Biol. Cybern. 99, 335-347.
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=10.0 * u.ms,
        tau_w=30.0 * u.ms,
        V_th=-55.0 * u.mV,
        V_reset=-68.0 * u.mV,
        V_rest=-65.0 * u.mV,
        V_T=-59.9 * u.mV,
        delta_T=3.48 * u.mV,
        a=1.0 * u.siemens,
        b=1.0 * u.mA,
        V_initializer=Constant(-65.0 * u.mV),
        w_initializer=Constant(0.0 * u.pA),
        spk_fun=None,
        spk_reset: str = "hard",
        name: str | None = None,
        *,
        C=None,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_size, R=R, tau=tau, V_th=V_th, V_reset=V_reset, V_rest=V_rest, V_T=V_T,
            delta_T=delta_T, V_initializer=V_initializer, spk_fun=spk_fun, spk_reset=spk_reset,
            name=name, C=C, device=device, dtype=dtype,
        )
        self._init_adaptation(tau_w, a, b, w_initializer)


    def update(self, x=0.0):
        """Advance one step with external current ``x``; returns the spikes of the new V."""
        self._check_ready()
        current, delta = self._inputs(x)
        self.V, self.w = F.adexif_update(self.V, self.w, current, delta=delta, **self._membrane())
        return self.get_spike()


class AdExIFRef(_Refractory, AdExIF):
    r"""Adaptive exponential integrate-and-fire neuron with an absolute refractory period.

    .. math::

        \tau \frac{dV}{dt} &= -(V - V_\mathrm{rest})
            + \Delta_T \exp\!\Big(\min\big(\tfrac{V - V_T}{\Delta_T}, 20\big)\Big)
            - R\,w + R\,I(t), \\
        \tau_w \frac{dw}{dt} &= a\,(V - V_\mathrm{rest}) - w,

    both held at their post-reset values while :math:`t - t_\mathrm{last\,spike} <
    \tau_\mathrm{ref}` (``t`` read from ``tb.environ``).

    Parameters
    ----------
    tau_ref : quantity [time], default 1.7 ms
        Refractory period (plain numbers in ms); must be >= 0.
    ref_var : bool, default False
        Also keep a boolean ``refractory`` HiddenState.
    other parameters
        As :class:`AdExIF` (default ``spk_reset='hard'``).

    References
    ----------
    Brette, R. & Gerstner, W. (2005). J. Neurophysiol. 94, 3637-3642.
    """

    def __init__(
        self,
        in_size,
        R=None,
        tau=10.0 * u.ms,
        tau_w=30.0 * u.ms,
        tau_ref=1.7 * u.ms,
        V_th=-55.0 * u.mV,
        V_reset=-68.0 * u.mV,
        V_rest=-65.0 * u.mV,
        V_T=-59.9 * u.mV,
        delta_T=3.48 * u.mV,
        a=1.0 * u.siemens,
        b=1.0 * u.mA,
        V_initializer=Constant(-65.0 * u.mV),
        w_initializer=Constant(0.0 * u.pA),
        spk_fun=None,
        spk_reset: str = "hard",
        ref_var: bool = False,
        name: str | None = None,
        *,
        C=None,
        device=None,
        dtype=None,
    ):
        super().__init__(
            in_size, R=R, tau=tau, tau_w=tau_w, V_th=V_th, V_reset=V_reset, V_rest=V_rest,
            V_T=V_T, delta_T=delta_T, a=a, b=b, V_initializer=V_initializer,
            w_initializer=w_initializer, spk_fun=spk_fun, spk_reset=spk_reset, name=name, C=C,
            device=device, dtype=dtype,
        )
        self._init_refractory(tau_ref, ref_var)

    def _repr_config(self):
        return {**super()._repr_config(), **self._repr_refractory()}

    def init_state(self, batch_size=None):
        self._init_refractory_states(self._init_Vw(batch_size))

    def update(self, x=0.0):
        self._check_ready()
        current, delta = self._inputs(x)
        t, last = self._t(), self.last_spike_time
        self.V, self.w, self.last_spike_time = F.adexifref_update(
            self.V, self.w, last, current, t, tau_ref=self.tau_ref, delta=delta,
            **self._membrane()
        )
        self._note_refractory(t, last, self.V, self.V_th)
        return self.get_spike()
