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

import torch

from ..environ import get_dt_value
from ..functional.lif import lif_integrate
from ..module import Module
from ..neurons import CubaLIF
from ..state import HiddenState

__all__ = ["Integrator", "IntegrateAndFire", "LeakyIntegrator", "Threshold", "Scale",
           "StepDelay", "CubaLIFNode"]


def _params_shape(values: dict[str, torch.Tensor], owner: str) -> tuple[int, ...]:
    shapes = {name: tuple(v.shape) for name, v in values.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"{owner}: parameters must share one shape, got {shapes}")
    return next(iter(shapes.values()))


class _NodeModule(Module):
    """Parameters registered as buffers of one shape (the node's per-sample shape)."""

    def __init__(self, *, device=None, dtype=None, **params):
        super().__init__(device=device, dtype=dtype)
        tensors = {k: torch.as_tensor(v, dtype=self._factory["dtype"], device=device)
                   for k, v in params.items()}
        self.shape = _params_shape(tensors, type(self).__name__)
        for name, value in tensors.items():
            self.register_buffer(name, value.clone())

    def _zeros(self, batch_size):
        shape = self.shape if batch_size is None else (batch_size, *self.shape)
        first = next(iter(self._buffers.values()))
        return torch.zeros(shape, dtype=first.dtype, device=first.device)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Integrator(_NodeModule):
    r"""NIR's integrator ``I``: :math:`\dot v = R\,I`, so :math:`v \leftarrow v + R I \Delta t`.

    Parameters
    ----------
    r : tensor
        Resistance (GΩ), one per neuron.

    Returns (from ``forward``) the new ``v`` (mV).
    """

    def __init__(self, r, *, device=None, dtype=None):
        super().__init__(r=r, device=device, dtype=dtype)
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
    r : tensor
        Resistance (GΩ).
    v_threshold, v_reset : tensor
        Threshold and reset potential (mV).
    """

    def __init__(self, r, v_threshold, v_reset, *, device=None, dtype=None):
        super().__init__(r=r, v_threshold=v_threshold, v_reset=v_reset, device=device,
                         dtype=dtype)
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
    tau : tensor
        Time constant (ms).
    r : tensor
        Resistance (GΩ).
    v_leak : tensor
        Leak potential (mV).
    """

    def __init__(self, tau, r, v_leak, *, device=None, dtype=None):
        super().__init__(tau=tau, r=r, v_leak=v_leak, device=device, dtype=dtype)
        self.v = HiddenState(None)

    def init_state(self, batch_size=None):
        self.v = HiddenState(self._zeros(batch_size) + self.v_leak)

    def forward(self, x):
        self.v = lif_integrate(self.v, x, 0.0, tau=self.tau, V_rest=self.v_leak, R=self.r,
                               dt=get_dt_value(desc="LeakyIntegrator"))
        return self.v


class Threshold(_NodeModule):
    r"""NIR's ``Threshold``: :math:`z = [x > \theta]` (stateless)."""

    def __init__(self, threshold, *, device=None, dtype=None):
        super().__init__(threshold=threshold, device=device, dtype=dtype)

    def forward(self, x):
        return (x > self.threshold).to(x.dtype)


class Scale(_NodeModule):
    r"""NIR's ``Scale``: :math:`y = x \odot s` (stateless)."""

    def __init__(self, scale, *, device=None, dtype=None):
        super().__init__(scale=scale, device=device, dtype=dtype)

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

    def extra_repr(self) -> str:
        return f"steps={self.steps}, shape={self.shape}"


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
