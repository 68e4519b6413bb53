r"""Poisson spike sources: ``PoissonSpike``, ``PoissonEncoder``, ``PoissonInput``.

A Poisson process of rate :math:`f` emits a spike in a step of length :math:`\Delta t` with
probability

.. math::

    p = 1 - e^{-f\,\Delta t},

the exact probability of at least one event of the process in the bin (the reference's
``freq * dt`` of older releases exceeds 1 for ``f dt > 1``). Rates are per second in the
literature; torchbrain's canonical rate unit is 1/ms (kHz), so pass quantities (``10 * u.Hz``)
or numbers in 1/ms (``0.01`` is 10 Hz). A fixed rate above :math:`1/\Delta t` cannot be
delivered (a step holds one spike per source) and is refused with a ``ValueError`` when the
module first runs at that ``dt`` (and by ``NetworkRunner`` before a run); ``PoissonEncoder``'s
rates, given per step, are not checked.

Randomness comes from a counter-based generator held by each module (see
:mod:`torchbrain.inputs._counter_rng`): reproducible from ``seed``/``generator``, identical in
eager and compiled code, restored exactly with the module's States.
"""

from __future__ import annotations

import math
import numbers

import torch

from ..dynamics import Dynamics
from ..environ import get_dt_value
from ..state import HiddenState
from ..units import is_quantity, to_tensor
from ._common import resolve_dt, signal_unit
from ._counter_rng import RandomStream, draw_seed

__all__ = [
    "spike_probability",
    "binomial_counts",
    "exact_sampler_terms",
    "PoissonSpike",
    "PoissonEncoder",
    "PoissonInput",
    "poisson_input",
]

#: The exact inverse-CDF sampler is used only where the mean of the sampled (smaller) tail is at
#: most 5; P(X > 32) is then below 1e-14, so the sum is cut there.
_EXACT_TERMS = 32


def _check_rate_resolved(module, name: str, freq: torch.Tensor, dt: float) -> None:
    """Refuse a rate above ``1/dt``: a step holds at most one spike, so such a rate cannot be
    delivered (``1 - exp(-f dt)`` per step gives 8.6 kHz for 20 kHz at ``dt = 0.1 ms``)."""
    top = float(freq.detach().max()) if freq.numel() else 0.0
    if top * dt > 1.0:
        raise ValueError(
            f"{module._name()}: parameter '{name}' must be at most 1/dt = {1.0 / dt:g} kHz at "
            f"dt = {dt:g} ms (one spike per step), got {top:g} kHz ({top * 1e3:g} Hz); use a "
            "smaller dt or split the rate over several sources"
        )


def spike_probability(freq, dt: float) -> torch.Tensor:
    r"""Probability :math:`1 - e^{-f\Delta t}` of a spike in a step (``freq`` in 1/ms)."""
    return -torch.expm1(-freq * dt)


def exact_sampler_terms(n: int, q_max: float, tail: float = 1e-14) -> int:
    r"""How many CDF terms the exact sampler of :func:`binomial_counts` needs for
    :math:`\mathrm{Binomial}(n, q)`, :math:`q \le q_\max`: the smallest :math:`K \le 32` with
    :math:`P(X \ge K) < ` ``tail`` (the binomial's tail grows with :math:`q`), so that values
    :math:`\ge K`, reported as :math:`K`, are that rare. Computed in float64 on the host."""
    q = min(max(float(q_max), 0.0), 0.5)
    if q == 0.0 or n == 0:
        return 1
    # tail sums from the top (no cancellation against 1); terms past 4 * 32 are below 1e-40
    top = min(n, 4 * _EXACT_TERMS)
    log_pmf = [math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
               + j * math.log(q) + (n - j) * math.log1p(-q) for j in range(top + 1)]
    suffix = 0.0
    tails = [0.0] * (top + 2)
    for j in range(top, -1, -1):
        suffix += math.exp(log_pmf[j])
        tails[j] = suffix  # P(X >= j)
    for k in range(1, min(n, _EXACT_TERMS)):
        if tails[k] < tail:
            return k
    return min(n, _EXACT_TERMS)


def binomial_counts(n: int, p: torch.Tensor, normal: torch.Tensor | None,
                    uniform: torch.Tensor | None, terms: int = _EXACT_TERMS) -> torch.Tensor:
    r"""Samples of :math:`\mathrm{Binomial}(n, p)` from given random numbers.

    Where :math:`np > 5` and :math:`n(1-p) > 5` (the reference's rule) the normal approximation
    :math:`\mathrm{round}(np + \sqrt{np(1-p)}\,z)` is used, clipped to :math:`[0, n]` (the
    reference clips at 0 only, so it can return more events than inputs); elsewhere an exact
    inverse-CDF sample of the smaller tail: with :math:`q = \min(p, 1-p)`,
    :math:`X_q = \#\{k : u \ge F_q(k)\}` and :math:`X = X_q` or :math:`n - X_q`.

    Parameters
    ----------
    n : int
        Number of trials.
    p : Tensor
        Success probability per trial (broadcast with the random numbers).
    normal : Tensor or None
        Standard normal numbers (only needed where the approximation applies).
    uniform : Tensor or None
        Uniform numbers in ``[0, 1)`` (only needed where the exact sampler applies).
    terms : int, default 32
        CDF terms of the exact sampler (it returns at most ``terms``);
        :func:`exact_sampler_terms` gives the fewest that keep the cut below 1e-14.

    Returns
    -------
    Tensor
        Counts as floating-point numbers.
    """
    a = n * p
    use_normal = (a > 5) & ((n - a) > 5)
    out = None
    if normal is not None:
        approx = torch.clamp(torch.round(a + torch.sqrt(a * (1.0 - p)) * normal), 0.0, float(n))
        out = approx
    if uniform is not None:
        q = torch.minimum(p, 1.0 - p)
        pmf = torch.exp(n * torch.log1p(-q))
        cdf = pmf
        ratio = q / (1.0 - q)
        count = (uniform >= cdf).to(uniform.dtype)
        # one fused pass when compiled (a cumprod/cumsum form along a new axis compiled faster
        # but ran 15x slower on the CPU)
        for k in range(1, min(n, terms)):
            pmf = pmf * (ratio * ((n - k + 1) / k))
            cdf = cdf + pmf
            count = count + (uniform >= cdf).to(uniform.dtype)
        exact = torch.where(p <= 0.5, count, n - count)
        out = exact if out is None else torch.where(use_normal, out, exact)
    if out is None:
        raise ValueError("binomial_counts: give normal or uniform random numbers (or both)")
    return out


class _SpikeSource(RandomStream, Dynamics):
    """Shared machinery: a ``spike`` HiddenState and the random stream."""

    def _declare_spike(self):
        self.spike = HiddenState(None)

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        self.spike = HiddenState(torch.zeros(shape, **self._factory_like_states()))

    def get_spike(self) -> torch.Tensor:
        """The spikes of the last step (zeros after ``init_state``)."""
        return self.spike

    def _emit(self, p: torch.Tensor) -> torch.Tensor:
        shape = self._expected_shape()
        dtype = p.dtype if p.is_floating_point() else self.spike.dtype
        uniform = self._uniform(self._next_counter(), shape, 0, dtype)
        spike = (uniform < p).to(dtype)
        self.spike = spike
        return spike


class PoissonSpike(_SpikeSource):
    r"""Independent Poisson spike trains with fixed rates.

    In every step each unit spikes with probability

    .. math::

        P(\text{spike}) = 1 - e^{-f\,\Delta t}, \qquad
        s = \mathbb{1}[\,\xi < 1 - e^{-f\,\Delta t}\,], \quad \xi \sim U[0, 1),

    independently of the past (the spike count in a window :math:`T` is Poisson with mean
    :math:`fT` as :math:`\Delta t \to 0`).

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of spike sources.
    freqs : quantity [rate], Initializer or tensor
        Firing rate per unit or one for all (plain numbers in 1/ms, i.e. kHz: ``0.01`` is
        10 Hz; prefer ``10 * u.Hz``). Must be >= 0.
    seed : int, optional
        Seed of this module's random stream.
    generator : torch.Generator, optional
        Draws the seed when ``seed`` is not given (default: torch's global RNG, so
        ``torch.manual_seed`` makes construction reproducible).
    name : str, optional
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    ``update()`` takes no input and returns the spikes as a float tensor of 0. and 1. of shape
    ``(batch, *in_size)`` (or ``in_size``): floats feed projections and matrix products directly
    (the reference returns ``bool``). The last spikes are kept in the ``spike`` HiddenState
    (:meth:`get_spike`), so the module can serve as the presynaptic population of a projection.
    The random stream is *not* reset by ``reset_state`` (successive trials get new spikes);
    :meth:`reseed` restarts it.

    References
    ----------
    Dayan, P. & Abbott, L. F. (2001). *Theoretical Neuroscience*, ch. 1.4. MIT Press.

    Examples
    --------
    >>> import torchbrain as tb
    >>> from torchbrain import u
    >>> from torchbrain.inputs import PoissonSpike
    >>> src = PoissonSpike(1000, freqs=20 * u.Hz, seed=0)
    >>> _ = tb.init_all_states(src)
    >>> with tb.environ.context(dt=0.1 * u.ms):
    ...     n = sum(float(src().sum()) for _ in range(1000))
    >>> abs(n / 1000 / 0.1 - 20) < 1.5        # spikes per neuron per second
    True
    """

    def __init__(self, in_size, freqs, *, seed: int | None = None,
                 generator: torch.Generator | None = None, name: str | None = None,
                 device=None, dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        self.freqs = self._register_parameter_with_unit(
            "freqs", freqs, "1/ms", shape=self.varshape, nonnegative=True
        )
        self._declare_spike()
        self._init_rng(seed, generator)

    def _validate_dt(self, dt: float) -> None:
        _check_rate_resolved(self, "freqs", self.freqs, dt)

    def update(self) -> torch.Tensor:
        """Draw this step's spikes."""
        self._check_ready()
        dt = get_dt_value(desc=self._name())
        self._check_dt_once(dt)
        return self._emit(spike_probability(self.freqs, dt))


class PoissonEncoder(_SpikeSource):
    r"""Poisson encoding of a rate given at every step.

    .. math::

        s = \mathbb{1}[\,\xi < 1 - e^{-f(t)\,\Delta t}\,], \quad \xi \sim U[0, 1)

    Parameters
    ----------
    in_size : int or tuple of int
        Shape of the encoded signal.
    seed, generator, name, device, dtype
        As :class:`PoissonSpike`.

    Notes
    -----
    ``update(freqs)`` takes the rates (quantity [rate], or a tensor in 1/ms) of shape
    ``in_size`` or ``(batch, *in_size)`` (anything that broadcasts to the State shape) and
    returns float spikes of the State shape. Negative rates give no spikes.

    References
    ----------
    Dayan, P. & Abbott, L. F. (2001). *Theoretical Neuroscience*, ch. 1.4. MIT Press.
    """

    def __init__(self, in_size, *, seed: int | None = None,
                 generator: torch.Generator | None = None, name: str | None = None,
                 device=None, dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        self._declare_spike()
        self._init_rng(seed, generator)

    def update(self, freqs) -> torch.Tensor:
        """Encode ``freqs`` (rate) into this step's spikes."""
        self._check_ready()
        freqs = self._input_tensor(freqs, "1/ms", name="freqs")
        if not isinstance(freqs, torch.Tensor):
            freqs = torch.as_tensor(freqs, dtype=self.spike.dtype, device=self.spike.device)
        elif not freqs.is_floating_point():
            freqs = freqs.to(self.spike.dtype)
        return self._emit(spike_probability(freqs, get_dt_value(desc=self._name())))


def _weight_unit(owner: str, weight) -> str:
    if is_quantity(weight):
        return signal_unit(owner, [("weight", weight)])
    return "dimensionless"


class PoissonInput(RandomStream, Dynamics):
    r"""The summed effect of ``num_input`` independent Poisson sources on each target unit.

    Each step every target unit receives :math:`k` events with

    .. math::

        k \sim \mathrm{Binomial}(n, p), \qquad p = 1 - e^{-f\,\Delta t},

    and the module returns :math:`k\,w` (:func:`binomial_counts`: the normal approximation
    :math:`\mathrm{round}(\mathcal{N}(np, np(1-p)))` where :math:`np > 5` and :math:`n(1-p) > 5`,
    as the reference, clipped to :math:`[0, n]`; an exact sample elsewhere). This costs
    :math:`O(\text{targets})` per step instead of :math:`O(\text{targets} \times n)`.

    Parameters
    ----------
    target_shape : int or tuple of int
        Shape of the target population.
    num_input : int
        Number :math:`n` of independent sources per target unit.
    freq : quantity [rate] or tensor
        Rate of each source (plain numbers in 1/ms); scalar or per target unit; >= 0.
    weight : quantity or tensor
        Effect of one event, in the unit of the variable it is added to: a voltage jump
        (``0.1 * u.mV``, added with ``add_delta_input``), a current (pA) or a conductance
        jump (nS). Plain numbers are returned as they are (canonical units of the target).
    seed, generator, name, device, dtype
        As :class:`PoissonSpike`.
    index_offset : int, default 0
        The targets are the units ``[index_offset, index_offset + n)`` of a larger population
        driven by the same ``seed``: each gets the counts that unit of the whole population would
        get (how a population split over processes keeps its input independent of the split;
        unbatched use).

    Notes
    -----
    The reference adds the input directly to a target State. Here the module *returns* the
    increment; register it on the target population, either once as a persistent jump
    (``Dynamics.add_delta_input`` calls the module every step)::

        neurons = tb.LIF(100, ...)
        neurons.add_delta_input("poisson", PoissonInput(100, 200, 10 * u.Hz, 0.5 * u.mV))
        tb.init_all_states(neurons)          # also initialises the PoissonInput

    or per step, as a one-shot jump or current::

        neurons.add_current_input("noise", noise())   # noise: a PoissonInput with weight in pA
        spikes = neurons(x)

    The output has the shape ``(batch, *target_shape)`` set by ``init_state``. ``freq`` is fixed
    after construction. The reference's ``indices`` (a subset of targets) is left out: index or
    mask the returned tensor instead.

    References
    ----------
    Stimberg, M., Brette, R. & Goodman, D. F. M. (2019). Brian 2, an intuitive and efficient
    neural simulator. *eLife* 8, e47314 (``PoissonInput``).
    """

    def __init__(self, target_shape, num_input: int, freq, weight, *, seed: int | None = None,
                 generator: torch.Generator | None = None, index_offset: int = 0,
                 name: str | None = None, device=None, dtype=None):
        super().__init__(target_shape, name=name, device=device, dtype=dtype)
        if isinstance(num_input, bool) or not isinstance(num_input, numbers.Integral) or (
            num_input < 0
        ):
            raise ValueError(
                f"{self._name()}: parameter 'num_input' must be a non-negative int, got "
                f"{num_input!r}"
            )
        self.num_input = int(num_input)
        self.freq = self._register_parameter_with_unit(
            "freq", freq, "1/ms", shape=self.varshape, nonnegative=True
        )
        self.weight = self._register_parameter_with_unit(
            "weight", weight, _weight_unit(self._name(), weight), shape=self.varshape
        )
        self._plans: dict = {}
        self._init_rng(seed, generator, index_offset)

    def _repr_config(self):
        return {**super()._repr_config(), "num_input": self.num_input}

    def init_state(self, batch_size=None):
        self._state_shape(batch_size)

    def _plan(self, p: torch.Tensor, dt: float) -> tuple[bool, bool, int]:
        """Which samplers some target needs at this ``dt``, and the exact sampler's number of
        terms (both samplers and 32 terms while compiling uncached)."""
        key = (dt, str(p.device), str(p.dtype))
        plan = self._plans.get(key)
        if plan is None:
            if torch.compiler.is_dynamo_compiling():
                return True, True, _EXACT_TERMS
            a = self.num_input * p
            normal = (a > 5) & ((self.num_input - a) > 5)
            exact = ~normal
            q = torch.minimum(p, 1.0 - p).expand(a.shape)
            q_max = float(q[exact].max()) if bool(exact.any()) else 0.0
            plan = (bool(normal.any()), bool(exact.any()),
                    exact_sampler_terms(self.num_input, q_max))
            self._plans[key] = plan
        return plan

    def _validate_dt(self, dt: float) -> None:
        _check_rate_resolved(self, "freq", self.freq, dt)

    def update(self) -> torch.Tensor:
        """This step's increment, ``counts * weight``."""
        if not self._initialised:
            self._state_shape(None)
        dt = get_dt_value(desc=self._name())
        self._check_dt_once(dt)
        p = spike_probability(self.freq, dt)
        shape = self._expected_shape()
        counter = self._next_counter()
        use_normal, use_exact, terms = self._plan(p, dt)
        normal = self._normal(counter, shape, 0, p.dtype) if use_normal else None
        uniform = self._uniform(counter, shape, 2, p.dtype) if use_exact else None
        return binomial_counts(self.num_input, p, normal, uniform, terms) * self.weight


def poisson_input(freq, num_input: int, weight, target=None, *, shape=None, refractory=None,
                  dt=None, seed: int | None = None, generator: torch.Generator | None = None,
                  dtype=None, device=None) -> torch.Tensor:
    r"""Binomial Poisson input (see :class:`PoissonInput`) as a function.

    Parameters
    ----------
    freq : quantity [rate] or tensor
        Rate of each of the ``num_input`` sources (plain numbers in 1/ms).
    num_input : int
        Number of sources per target unit.
    weight : quantity or tensor
        Effect of one event (canonical units of the target: mV, pA, nS, ...).
    target : Tensor, optional
        A canonical tensor; when given, ``target + counts * weight`` is returned (a new tensor:
        the reference writes into a State instead).
    shape : tuple of int, optional
        Shape of the increment when ``target`` is not given (default: the broadcast shape of
        ``freq`` and ``weight``).
    refractory : Tensor of bool, optional
        Units that receive nothing this step.
    dt : quantity [time], optional
        Default: the environment's ``dt``.
    seed, generator : optional
        Randomness for this call (``torch.rand``/``torch.randn`` with a ``torch.Generator``;
        default torch's global RNG). The module form uses its own counter-based stream instead.
    dtype, device : optional

    Returns
    -------
    Tensor
        The increment (or the updated target), in the canonical unit of ``weight``.
    """
    owner = "poisson_input"
    if isinstance(num_input, bool) or not isinstance(num_input, numbers.Integral) or (
        num_input < 0
    ):
        raise ValueError(f"{owner}: parameter 'num_input' must be a non-negative int, got "
                         f"{num_input!r}")
    if target is not None:
        dtype = dtype or target.dtype
        device = device or target.device
    dtype = dtype or torch.get_default_dtype()
    step = resolve_dt(dt, owner)
    f = to_tensor(freq, "1/ms", owner=owner, name="freq", dtype=dtype, device=device)
    if bool((f < 0).any()):
        raise ValueError(f"{owner}: parameter 'freq' must be >= 0")
    w = to_tensor(weight, _weight_unit(owner, weight), owner=owner, name="weight", dtype=dtype,
                  device=device)
    if shape is None:
        shape = target.shape if target is not None else torch.broadcast_shapes(f.shape, w.shape)
    shape = tuple(shape)
    if seed is not None:
        generator = torch.Generator(device=device or "cpu").manual_seed(
            draw_seed(seed, None, owner))
    p = spike_probability(f, step).expand(shape)
    normal = torch.randn(shape, generator=generator, dtype=dtype, device=device)
    uniform = torch.rand(shape, generator=generator, dtype=dtype, device=device)
    inc = binomial_counts(int(num_input), p, normal, uniform) * w
    if refractory is not None:
        inc = torch.where(torch.as_tensor(refractory, device=inc.device), 0.0, inc)
    return inc if target is None else target + inc

