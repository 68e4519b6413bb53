r"""One-step modules for the NIR primitives that no torchbrain population covers.

:class:`~torchbrain.interop.graph.SpikingGraph` runs a NIR graph one time step at a time. The
LIF and CubaLIF nodes run on :class:`torchbrain.LIF` / :class:`torchbrain.CubaLIF`; the modules
here cover the rest of the spec, each as a :class:`torchbrain.Module` whose States follow the
usual ``init_state(batch_size)`` rule and whose ``forward(x)`` advances one step of ``dt`` (read
from :mod:`torchbrain.environ`). Every continuous equation is integrated exactly for an input
held constant over the step (zero-order hold), like the torchbrain neurons.

Units: all values are canonical (ms, mV, pA, GΩ); :mod:`torchbrain.interop.nir` converts NIR's
numbers once (see :data:`~torchbrain.interop.nir.NIR_UNITS`).
"""

from __future__ import annotations

from typing import Any

import torch

from ..environ import get_dt_value
from ..functional.lif import lif_integrate
from ..module import Module
from ..neurons import CubaLIF
from ..state import HiddenState

__all__ = ["Integrator", "IntegrateAndFire", "LeakyIntegrator", "Threshold", "Scale",
           "StepDelay", "CubaLIFNode"]


class _NodeModule(Module):
    """Parameters with units (quantities, or numbers in the canonical unit) whose shapes
    broadcast to the node's per-sample shape."""

    def __init__(self, params: dict[str, tuple[Any, str]], *, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        shapes = {}
        for name, (value, unit) in params.items():
            shapes[name] = tuple(self._register_parameter_with_unit(name, value, unit).shape)
        try:
            self.shape = tuple(torch.broadcast_shapes(*shapes.values()))
        except RuntimeError:
            raise ValueError(f"{self._name()}: parameter shapes {shapes} do not broadcast to "
                             "one shape") from None

    def _zeros(self, batch_size):
        shape = self.shape if batch_size is None else (batch_size, *self.shape)
        first = next(iter(self._buffers.values()))
        return torch.zeros(shape, dtype=first.dtype, device=first.device)

    def _repr_config(self):
        return {"shape": self.shape}


class Integrator(_NodeModule):
    r"""NIR's integrator ``I``: :math:`\dot v = R\,I`, so :math:`v \leftarrow v + R I \Delta t`.

    Parameters
    ----------
    r : quantity [resistance / time]
        Gain per neuron (plain numbers in GΩ/ms: mV per ms per pA of input).

    Returns (from ``forward``) the new ``v`` (mV).
    """

    def __init__(self, r, *, device=None, dtype=None):
        super().__init__({"r": (r, "gigaohm / millisecond")}, device=device, dtype=dtype)
        self.v = HiddenState(None)

    def init_state(self, batch_size=None):
        self.v = HiddenState(self._zeros(batch_size))

    def forward(self, x):
        self.v = self.v + self.r * x * get_dt_value(desc="Integrator")
        return self.v


class IntegrateAndFire(_NodeModule):
    r"""NIR's non-leaky integrate-and-fire neuron ``IF``.

    .. math::

        \dot v = R\,I, \qquad z = [v > v_\mathrm{th}], \qquad v \leftarrow v_\mathrm{reset}
        \text{ where } z = 1.

    (``torchbrain.IF`` leaks towards 0; this one does not.) The spike is a plain Heaviside: the
    module is for running imported graphs, not for training.

    Parameters
    ----------
    r : quantity [resistance / time]
        Gain (plain numbers in GΩ/ms).
    v_threshold, v_reset : quantity [voltage]
        Threshold and reset potential (plain numbers in mV).
    """

    def __init__(self, r, v_threshold, v_reset, *, device=None, dtype=None):
        super().__init__({"r": (r, "gigaohm / millisecond"), "v_threshold": (v_threshold, "mV"),
                          "v_reset": (v_reset, "mV")}, device=device, dtype=dtype)
        self.v = HiddenState(None)

    def init_state(self, batch_size=None):
        self.v = HiddenState(self._zeros(batch_size))

    def forward(self, x):
        v = self.v + self.r * x * get_dt_value(desc="IntegrateAndFire")
        z = (v > self.v_threshold).to(v.dtype)
        self.v = torch.where(z > 0, self.v_reset, v)
        return z


class LeakyIntegrator(_NodeModule):
    r"""NIR's leaky integrator ``LI``: :math:`\tau \dot v = (v_\mathrm{leak} - v) + R I`.

    Integrated exactly for a held input, :math:`v' = v_\infty + (v - v_\infty)e^{-\Delta t/\tau}`
    with :math:`v_\infty = v_\mathrm{leak} + R I` (the LIF membrane step of
    :func:`torchbrain.functional.lif.lif_integrate`). ``v`` starts at ``v_leak``.

    Parameters
    ----------
    tau : quantity [time]
        Time constant (plain numbers in ms); positive.
    r : quantity [resistance]
        Resistance (plain numbers in GΩ).
    v_leak : quantity [voltage]
        Leak potential (plain numbers in mV).
    """

    def __init__(self, tau, r, v_leak, *, device=None, dtype=None):
        super().__init__({"tau": (tau, "ms"), "r": (r, "gigaohm"), "v_leak": (v_leak, "mV")},
                         device=device, dtype=dtype)
        self._check_values("tau", self.tau, "ms", positive=True)
        self.v = HiddenState(None)

    def init_state(self, batch_size=None):
        self.v = HiddenState(self._zeros(batch_size) + self.v_leak)

    def forward(self, x):
        self.v = lif_integrate(self.v, x, 0.0, tau=self.tau, V_rest=self.v_leak, R=self.r,
                               dt=get_dt_value(desc="LeakyIntegrator"))
        return self.v


class Threshold(_NodeModule):
    r"""NIR's ``Threshold``: :math:`z = [x > \theta]` (stateless).

    Parameters
    ----------
    threshold : quantity [voltage]
        Plain numbers in mV.
    """

    def __init__(self, threshold, *, device=None, dtype=None):
        super().__init__({"threshold": (threshold, "mV")}, device=device, dtype=dtype)

    def forward(self, x):
        return (x > self.threshold).to(x.dtype)


class Scale(_NodeModule):
    r"""NIR's ``Scale``: :math:`y = x \odot s` (stateless).

    Parameters
    ----------
    scale : array-like
        Dimensionless factors.
    """

    def __init__(self, scale, *, device=None, dtype=None):
        super().__init__({"scale": (scale, "dimensionless")}, device=device, dtype=dtype)

    def forward(self, x):
        return x * self.scale


class StepDelay(Module):
    r"""NIR's ``Delay`` :math:`y(t) = x(t - d)` for a delay of a whole number of steps.

    Parameters
    ----------
    steps : int
        The delay in steps (``round(d / dt)``, checked by the importer); 0 passes ``x`` through.
    shape : tuple of int
        Per-sample shape of the signal.

    Notes
    -----
    The State ``buffer`` holds the last ``steps`` inputs, oldest first, zeros at the start.
    """

    def __init__(self, steps: int, shape, *, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"StepDelay: 'steps' must be an int >= 0, got {steps!r}")
        self.steps = steps
        self.shape = tuple(int(s) for s in shape)
        self.buffer = HiddenState(None)

    def init_state(self, batch_size=None):
        shape = self.shape if batch_size is None else (batch_size, *self.shape)
        self.buffer = HiddenState(torch.zeros((self.steps, *shape), **self._factory))

    def forward(self, x):
        if self.steps == 0:
            return x
        out = self.buffer[0]
        self.buffer = torch.cat([self.buffer[1:], x.unsqueeze(0).to(self.buffer.dtype)])
        return out

    def _repr_config(self):
        return {"steps": self.steps, "shape": self.shape}


class CubaLIFNode(Module):
    r"""NIR's ``CubaLIF`` on :class:`torchbrain.CubaLIF`.

    NIR writes the synapse as :math:`\tau_\mathrm{syn}\dot I = -I + w_\mathrm{in} S`. For an
    input :math:`S` held over a step the exact update is
    :math:`I' = I e^{-\Delta t/\tau_\mathrm{syn}} + w_\mathrm{in} S (1 - e^{-\Delta t/
    \tau_\mathrm{syn}})`, so each step hands the neuron the jump
    :math:`w_\mathrm{in} S (1 - e^{-\Delta t/\tau_\mathrm{syn}})` of its synaptic current ``g``
    (pA); the membrane then follows :class:`torchbrain.CubaLIF` (exact step with the new ``g``
    held, hard reset to ``v_reset``).

    Parameters
    ----------
    neuron : torchbrain.CubaLIF
        The population (``spk_reset='hard'``).
    w_in : tensor
        NIR's input weight per neuron (dimensionless).
    """

    def __init__(self, neuron: CubaLIF, w_in, *, device=None, dtype=None):
        super().__init__(device=device, dtype=dtype)
        if not isinstance(neuron, CubaLIF):
            raise TypeError(f"CubaLIFNode: 'neuron' must be a torchbrain.CubaLIF, got "
                            f"{type(neuron).__name__}")
        self.neuron = neuron
        self.register_buffer("w_in", torch.as_tensor(w_in, dtype=torch.float64,
                                                     device=neuron.tau.device).clone())

    def forward(self, x):
        dt = get_dt_value(desc="CubaLIFNode")
        # in float64: an exported torchbrain CubaLIF has w_in = 1/(1 - e^{-dt/tau_syn}), and
        # the product must come back as exactly 1 for the round trip to be exact
        tau_syn = self.neuron.tau_syn.to(torch.float64)
        gain = (self.w_in.to(torch.float64) * -torch.expm1(-dt / tau_syn)).to(x.dtype)
        self.neuron.add_delta_input("nir", gain * x)
        return self.neuron(0.0)
