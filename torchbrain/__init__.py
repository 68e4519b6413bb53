"""torchbrain: spiking neural networks in PyTorch for brain simulation and brain-inspired computing.

Quick start::

    import torchbrain as tb
    from torchbrain import u

    neuron = tb.LIF(100, tau=10. * u.ms, V_th=-50. * u.mV, V_rest=-65. * u.mV,
                    V_reset=-65. * u.mV)
    tb.init_all_states(neuron)
    with tb.environ.context(dt=0.1 * u.ms):
        spikes = tb.for_loop(lambda t: neuron(20. * u.mA), tb.time_range(200. * u.ms))
"""

from . import (
    analysis,
    distributed,
    environ,
    functional,
    init,
    inputs,
    models,
    ops,
    plasticity,
    plot,
    readouts,
    surrogate,
    training,
    units,
)
from .comm import (
    AllToAll,
    EventFixedNumConn,
    EventFixedProb,
    EventLinear,
    FixedNumConn,
    FixedProb,
    Linear,
    OneToOne,
    SignedWLinear,
    SparseLinear,
)
from .delay import Delay, SpikeDelay
from .dynamics import Dynamics, SynapticCurrent
from .inputs import (
    ConstantInput,
    OUProcessInput,
    PoissonEncoder,
    PoissonInput,
    PoissonSpike,
    RampInput,
    SectionInput,
    SinusoidalInput,
    SpikeTime,
    StepInput,
    WienerProcessInput,
)
from .module import Module, TimeStepWarning
from .monitor import Monitor, RateMonitor
from .neurons import (
    ALIF,
    HH,
    IF,
    LIF,
    AdExIF,
    AdExIFRef,
    AdQuaIF,
    AdQuaIFRef,
    CobaLIF,
    CubaLIF,
    ExpIF,
    ExpIFRef,
    FitzHughNagumo,
    Gif,
    GifRef,
    HindmarshRose,
    Izhikevich,
    IzhikevichRef,
    LIFRef,
    MorrisLecar,
    Neuron,
    QuaIF,
    TraubMilesHH,
    WangBuzsakiHH,
)
from .outputs import COBA, CUBA, MgBlock
from .plasticity import DenseSTDP, FixedNumConnSTDP
from .projections import (
    AlignPostProj,
    AlignPreProj,
    AsymmetryGapJunction,
    CurrentProj,
    DeltaProj,
    SymmetryGapJunction,
)
from .readouts import LeakyRateReadout, LeakySpikeReadout
from .runner import NetworkRunner
from .state import (
    HiddenState,
    LongTermState,
    ParamState,
    ShortTermState,
    StateKind,
    detach_states,
    init_all_states,
    load_state_dict,
    reset_all_states,
    state_dict,
    states,
)
from .synapses import AMPA, NMDA, STD, STP, Alpha, BioNMDA, DualExpon, Expon, GABAa, Synapse
from .transform import (
    ProgressBar,
    checkpointed_for_loop,
    checkpointed_scan,
    compile,
    for_loop,
    jit,
    scan,
    time_range,
)
from .units import Quantity, UnitError, u

__version__ = "0.1.0"


def __getattr__(name: str):
    # tb.lightning imports Lightning (seconds): load it only when it is used.
    if name == "lightning":
        import importlib

        return importlib.import_module(".lightning", __name__)
    raise AttributeError(f"module 'torchbrain' has no attribute {name!r}")

__all__ = [
    "analysis",
    "inputs",
    "training",
    "distributed",
    "plasticity",
    "DenseSTDP",
    "FixedNumConnSTDP",
    "lightning",
    "readouts",
    "PoissonSpike",
    "PoissonEncoder",
    "PoissonInput",
    "SpikeTime",
    "SectionInput",
    "ConstantInput",
    "StepInput",
    "RampInput",
    "SinusoidalInput",
    "OUProcessInput",
    "WienerProcessInput",
    "LeakyRateReadout",
    "LeakySpikeReadout",
    "models",
    "ops",
    "plot",
    "Monitor",
    "RateMonitor",
    "EventFixedNumConn",
    "EventFixedProb",
    "FixedNumConn",
    "FixedProb",
    "Linear",
    "SignedWLinear",
    "AllToAll",
    "OneToOne",
    "EventLinear",
    "SparseLinear",
    "COBA",
    "CUBA",
    "MgBlock",
    "AlignPostProj",
    "AlignPreProj",
    "CurrentProj",
    "DeltaProj",
    "SymmetryGapJunction",
    "AsymmetryGapJunction",
    "Delay",
    "SpikeDelay",
    "NetworkRunner",
    "Synapse",
    "Expon",
    "DualExpon",
    "Alpha",
    "AMPA",
    "GABAa",
    "NMDA",
    "BioNMDA",
    "STP",
    "STD",
    "environ",
    "functional",
    "init",
    "surrogate",
    "units",
    "Dynamics",
    "SynapticCurrent",
    "Neuron",
    "IF",
    "LIF",
    "LIFRef",
    "ALIF",
    "ExpIF",
    "ExpIFRef",
    "AdExIF",
    "AdExIFRef",
    "QuaIF",
    "AdQuaIF",
    "AdQuaIFRef",
    "Gif",
    "GifRef",
    "CubaLIF",
    "CobaLIF",
    "HH",
    "WangBuzsakiHH",
    "MorrisLecar",
    "TraubMilesHH",
    "Izhikevich",
    "IzhikevichRef",
    "FitzHughNagumo",
    "HindmarshRose",
    "u",
    "Quantity",
    "UnitError",
    "Module",
    "StateKind",
    "ShortTermState",
    "HiddenState",
    "LongTermState",
    "ParamState",
    "init_all_states",
    "reset_all_states",
    "states",
    "state_dict",
    "load_state_dict",
    "detach_states",
    "time_range",
    "for_loop",
    "scan",
    "checkpointed_for_loop",
    "checkpointed_scan",
    "jit",
    "compile",
    "ProgressBar",
    "TimeStepWarning",
]
