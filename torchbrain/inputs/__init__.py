"""Input generators: Poisson spike sources, spikes at given times, analog currents and noise.

==============================  =============================================================
module (one step per call)      what it produces
==============================  =============================================================
:class:`PoissonSpike`           Poisson spike trains with fixed rates
:class:`PoissonEncoder`         Poisson spikes of a rate given at each step
:class:`PoissonInput`           summed Binomial input of many Poisson sources (× weight)
:class:`SpikeTime`              spikes of given units at given times
:class:`SectionInput`           piecewise-constant signal
:class:`ConstantInput`          constant signal (optionally for a duration)
:class:`StepInput`              staircase
:class:`RampInput`              linear ramp
:class:`SinusoidalInput`        sinusoid
:class:`OUProcessInput`         Ornstein-Uhlenbeck noise (exact update)
:class:`WienerProcessInput`     white noise (Wiener increments)
==============================  =============================================================

The functions :func:`section_input`, :func:`constant_input`, :func:`step_input`,
:func:`ramp_input`, :func:`sinusoidal_input`, :func:`ou_process`, :func:`wiener_process` and
:func:`poisson_input` return whole signals (or one step of Poisson input) as tensors, in the style
of ``brainpy.inputs``.
"""

from ._counter_rng import counter_normal, counter_uniform
from .currents import (
    ConstantInput,
    OUProcessInput,
    RampInput,
    SectionInput,
    SinusoidalInput,
    StepInput,
    WienerProcessInput,
    constant_input,
    ou_process,
    ou_step,
    ramp_input,
    section_input,
    sinusoidal_input,
    step_input,
    wiener_process,
)
from .poisson import (
    PoissonEncoder,
    PoissonInput,
    PoissonSpike,
    binomial_counts,
    poisson_input,
    spike_probability,
)
from .spike_time import SpikeTime

__all__ = [
    "PoissonSpike",
    "PoissonEncoder",
    "PoissonInput",
    "poisson_input",
    "SpikeTime",
    "SectionInput",
    "ConstantInput",
    "StepInput",
    "RampInput",
    "SinusoidalInput",
    "OUProcessInput",
    "WienerProcessInput",
    "section_input",
    "constant_input",
    "step_input",
    "ramp_input",
    "sinusoidal_input",
    "ou_process",
    "wiener_process",
    "ou_step",
    "binomial_counts",
    "spike_probability",
    "counter_uniform",
    "counter_normal",
]
