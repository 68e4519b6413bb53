r"""The Potjans & Diesmann (2014) cortical microcircuit, with per-synapse delays.

The network models the neurons under 1 mm² of early sensory cortex: eight populations (an
excitatory and an inhibitory one in each of layers 2/3, 4, 5 and 6), 77,169 leaky
integrate-and-fire neurons and about 0.3 billion synapses, driven by Poisson background input.
Every neuron obeys (NEST's ``iaf_psc_exp``)

.. math::

    C \frac{dV}{dt} = -\frac{C}{\tau_m}(V - E_L) + I_\mathrm{syn}(t) + I_\mathrm{DC},
    \qquad
    \tau_s \frac{dI_\mathrm{syn}}{dt} = -I_\mathrm{syn}
        + \tau_s \sum_{k} J_k\, \delta(t - t_k - d_k),

with a spike and a reset to :math:`V_\mathrm{reset}` when :math:`V \ge V_\mathrm{th}`, followed by
an absolute refractory period :math:`\tau_\mathrm{ref}`. Parameters (PD14, Table 5):
:math:`C = 250` pF, :math:`\tau_m = 10` ms, :math:`E_L = V_\mathrm{reset} = -65` mV,
:math:`V_\mathrm{th} = -50` mV, :math:`\tau_\mathrm{ref} = 2` ms, :math:`\tau_s = 0.5` ms.

Connectivity. The number of synapses from population :math:`b` onto population :math:`a` is the
one that gives the published probability :math:`C_{ab}` of at least one contact between two
neurons when synapses are placed at random,

.. math::

    S_{ab} = \frac{\ln(1 - C_{ab})}{\ln\bigl(1 - 1/(N_a N_b)\bigr)},

and these synapses are drawn as :math:`S_{ab}` independent uniform (pre, post) pairs
(NEST's ``fixed_total_number`` rule, with multapses and autapses). At ``scale`` :math:`s`
and ``k_scale`` :math:`k` the populations hold :math:`\mathrm{round}(s N_a)` neurons and the
pathways :math:`\mathrm{round}(s\,k\,S_{ab})` synapses, so that the mean in-degree
:math:`S_{ab}/N_a` is multiplied by :math:`k` only (as in the NEST reference implementation).
Weights (PSC amplitudes) are normal with mean :math:`J = 87.8` pA (:math:`2J` for L4E → L2/3E,
:math:`-4J` from inhibitory neurons) and a standard deviation of 10 % of the mean, redrawn until
excitatory weights are :math:`\ge 0` and inhibitory ones :math:`\le 0`; delays are normal,
:math:`1.5 \pm 0.75` ms from excitatory and :math:`0.75 \pm 0.375` ms from inhibitory neurons,
redrawn until :math:`\ge \Delta t` and rounded to the nearest whole step (so every delay is at least
one step). Each population receives :math:`K_\mathrm{ext}` = (1600, 1500, 2100, 1900, 2000, 1900,
2900, 2100) independent Poisson inputs at 8 Hz with weight :math:`J` (``drive='poisson'``), or the
DC current of the same mean, :math:`I = 8\,\mathrm{Hz}\cdot K_\mathrm{ext} J \tau_s`
(``drive='dc'``).

Downscaling (van Albada, Helias & Diesmann 2015). With ``k_scale`` :math:`k < 1` every in-degree
shrinks by :math:`k`; the weights (recurrent and external) are multiplied by :math:`1/\sqrt{k}`,
which keeps the variance of the input (:math:`\propto K J^2`) and a DC current

.. math::

    I_{\mathrm{DC},a} \mathrel{+}= 10^{-3}\,\tau_s\,(1 - \sqrt{k})
        \Bigl(\sum_b J_{ab} K_{ab} \nu_b + [\text{Poisson drive}]\; J K_{\mathrm{ext},a}\,
        8\,\mathrm{Hz}\Bigr)

(pA, with :math:`\tau_s` in ms, rates :math:`\nu_b` in Hz and full-scale in-degrees
:math:`K_{ab}`) restores the mean input the missing synapses would have carried, given the
full-scale rates :math:`\nu_b` (by default the published ones, :data:`PUBLISHED_RATES`; the NEST
reference uses rates measured in its own full-scale runs). This preserves the mean and variance of
each neuron's input to first order, not its correlations: at small ``k_scale`` the rates and in
particular the correlation structure depart from the full model. ``scale`` alone (``k_scale=1``)
needs no compensation: the in-degrees are kept, only the number of neurons changes.

Implementation (torchbrain building blocks):

* one :class:`~torchbrain.neurons.LIFRef` population of all neurons (populations are contiguous
  slices, :attr:`Microcircuit.slices`), parameterised by ``C`` and ``tau``, hard reset;
* one :class:`~torchbrain.projections.AlignPostProj` carrying every recurrent synapse through
  :class:`DelayedCSRConn` (the 64 pathways in one table, **exact per-synapse delays**, 8 bytes per
  synapse) into one shared :class:`~torchbrain.synapses.Expon` synapse (:math:`\tau_s = 0.5` ms)
  and a :class:`StepAverageCUBA` output;
* one :class:`~torchbrain.inputs.PoissonInput` of all neurons whose counts jump the same
  synapse (``drive='poisson'``), or a DC current (``drive='dc'``). Its number of inputs is the
  largest :math:`K_\mathrm{ext}` and its per-neuron rate :math:`8\,\mathrm{Hz}\cdot K_a /
  \max K`: the counts are :math:`\mathrm{Binomial}(\max K, p_a)` instead of
  :math:`\mathrm{Binomial}(K_a, p)`; both equal :math:`\mathrm{Poisson}(8\,\mathrm{Hz}\cdot K_a
  \Delta t)`, what NEST's ``poisson_generator`` delivers, up to relative :math:`O(p) < 10^{-3}`
  (one module instead of eight: 8x fewer kernels per step).

Numerical scheme and its differences from NEST. The membrane is integrated with exponential Euler
at a constant current per step; the exponential synapse decays exactly and receives each spike's
jump at the start of the step the spike arrives in (spike time + delay, both on the grid). A
piecewise-constant current equal to the jump would carry :math:`J\Delta t/(1 - e^{-\Delta t/
\tau_s})` (10 % more than the exact :math:`J\tau_s` at :math:`\Delta t = 0.1` ms, :math:`\tau_s =
0.5` ms); :class:`StepAverageCUBA` passes the step average of the exponential instead, which makes
the voltage response to a spike agree with NEST's exact propagator to 2e-4 (relative).
Remaining differences: :class:`~torchbrain.neurons.LIFRef` clamps V while
:math:`t - t_\mathrm{spike} < \tau_\mathrm{ref}`, i.e. for 19 steps after the spike step
(NEST's counter: 20; float32 spike times may make it 20); Poisson input is sampled as binomial
counts per step (see above); the recurrent table is drawn with torch's generator, not NEST's,
so only statistics can be compared. The thalamic input of the paper (off by default in the
reference) is not included.

Initial membrane potentials follow the NEST reference's default ('optimized'): normal with
population-specific means (-68.28, -63.16, -63.33, -63.45, -63.11, -61.66, -66.72, -61.43 mV) and
standard deviations (5.36, 4.57, 4.74, 4.94, 4.94, 4.55, 5.46, 4.48 mV), which shortens the
initial transient; ``V0='original'`` gives the paper's :math:`\mathcal N(-58, 10)` mV.

References
----------
Potjans, T. C. & Diesmann, M. (2014). The cell-type specific cortical microcircuit: relating
structure and activity in a full-scale spiking network model. *Cereb. Cortex* 24, 785–806.
van Albada, S. J., Helias, M. & Diesmann, M. (2015). Scalability of asynchronous networks is
limited by one-to-one mapping between effective connectivity and correlations. *PLoS Comput.
Biol.* 11, e1004490.
NEST Simulator, example ``Potjans_2014`` (PyNEST microcircuit): parameters and scaling rules.
"""

from .connectivity import DelayedCSRConn
from .initial_potentials import PopulationNormal
from .model import Microcircuit
from .parameters import (
    CONN_PROBS,
    FULL_NUM_NEURONS,
    K_EXT,
    NEST_REFERENCE_RATES,
    POPULATIONS,
    PUBLISHED_RATES,
    MicrocircuitParameters,
    full_synapse_counts,
    microcircuit_parameters,
)
from .synapse_output import StepAverageCUBA

__all__ = [
    "Microcircuit",
    "DelayedCSRConn",
    "StepAverageCUBA",
    "PopulationNormal",
    "POPULATIONS",
    "FULL_NUM_NEURONS",
    "CONN_PROBS",
    "K_EXT",
    "PUBLISHED_RATES",
    "NEST_REFERENCE_RATES",
    "full_synapse_counts",
    "MicrocircuitParameters",
    "microcircuit_parameters",
]
