r"""Analog input generators: sections, constants, steps, ramps, sinusoids, OU and Wiener noise.

Each generator exists in two forms:

* a **function** in the style of ``brainpy.inputs`` (``section_input(values, durations, dt)``)
  that returns the whole signal on the time grid, shape ``(n_steps, *shape)``: feed it to a
  driver (``for_loop(lambda I: neuron(I), current)``);
* a **module** (``SectionInput(in_size, values, durations)``) that returns the value of the
  current step, reading ``t`` and ``dt`` from :mod:`torchbrain.environ`, so it can be called
  inside a network's step function.

Both evaluate the same closed forms on the time grid :math:`t_i = i\,\Delta t`; the module takes
:math:`i = \mathrm{round}(t/\Delta t)` (so a float32 ``t`` does not lose the phase of a long
sinusoid) and a boundary :math:`T` (section end, window start, ...) is crossed at the first grid
point :math:`i\,\Delta t \ge T`, computed in float64 with the rounding tolerance of
:func:`torchbrain.drivers.loops.time_range`. Module and function therefore agree exactly.

Units: the signal keeps the kind of its amplitude argument and is returned as canonical numbers
of that kind: a current in pA (the usual case, and the assumption for plain numbers), a voltage
in mV, a conductance in nS, a rate in 1/ms. Times are in ms.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..dynamics import Dynamics
from ..environ import get_dt_value
from ..state import HiddenState
from ..units import format_quantity, is_quantity, to_tensor
from ._common import (
    as_value_tensor,
    current_time,
    first_step_at,
    resolve_dt,
    signal_unit,
    step_index,
    time_ms,
    times_ms,
)
from ._counter_rng import RandomStream, draw_seed

__all__ = [
    "ou_step",
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
]


# --------------------------------------------------------------------------- closed forms
def _bounds(times: list[float], dt: float, device) -> torch.Tensor:
    return torch.tensor([first_step_at(x, dt) for x in times], dtype=torch.int64, device=device)


def _pick(values: torch.Tensor, k: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``values[k]`` where ``valid``, else 0; ``k``/``valid`` have the shape of the step index."""
    rest = values.shape[1:]
    # index_select with a 1-d index: a 0-d index tensor would be read as a Python int, which
    # torch.compile cannot trace.
    flat = torch.clamp(k, 0, values.shape[0] - 1).reshape(-1)
    out = values.index_select(0, flat).reshape(tuple(k.shape) + tuple(rest))
    mask = valid.reshape(tuple(valid.shape) + (1,) * len(rest))
    return torch.where(mask, out, torch.zeros((), dtype=out.dtype, device=out.device))


def _sections(values, ends: list[float], i: torch.Tensor, dt: float) -> torch.Tensor:
    """Piecewise constant: ``values[k]`` on ``[ends[k-1], ends[k])``, 0 after the last end."""
    bounds = _bounds(ends, dt, i.device)
    k = torch.searchsorted(bounds, i.reshape(-1), right=True).reshape(i.shape)
    return _pick(values, k, k < len(ends))


def _staircase(values, starts: list[float], i: torch.Tensor, dt: float) -> torch.Tensor:
    """``values[k]`` from ``starts[k]`` on (the last one held), 0 before the first."""
    bounds = _bounds(starts, dt, i.device)
    k = torch.searchsorted(bounds, i.reshape(-1), right=True).reshape(i.shape) - 1
    return _pick(values, k, k >= 0)


def _in_window(i: torch.Tensor, start: float, end: float, dt: float) -> torch.Tensor:
    return (i >= first_step_at(start, dt)) & (i < first_step_at(end, dt))


def _expand_time(x: torch.Tensor, i: torch.Tensor, rest: int) -> torch.Tensor:
    return x.reshape(tuple(i.shape) + (1,) * rest)


def _ramp(c_start, c_end, start: float, end: float, i: torch.Tensor, dt: float):
    rest = max(c_start.ndim, c_end.ndim)
    frac = ((i.to(torch.float64) * dt - start) / (end - start)).to(c_start.dtype)
    frac = _expand_time(frac, i, rest)
    value = c_start + (c_end - c_start) * frac
    inside = _expand_time(_in_window(i, start, end, dt), i, rest)
    return torch.where(inside, value, torch.zeros((), dtype=value.dtype, device=value.device))


def _sinusoid(amplitude, frequency, phase, bias, start: float, end: float, i: torch.Tensor,
              dt: float):
    rest = max(amplitude.ndim, frequency.ndim, phase.ndim, bias.ndim)
    elapsed = _expand_time((i.to(torch.float64) * dt - start), i, rest)
    # The angle is formed in float64 (a float32 phase drifts over long runs), then cast.
    angle = (2.0 * math.pi) * frequency.to(torch.float64) * elapsed + phase.to(torch.float64)
    value = amplitude * torch.sin(angle).to(amplitude.dtype) + bias
    inside = _expand_time(_in_window(i, start, end, dt), i, rest)
    return torch.where(inside, value, torch.zeros((), dtype=value.dtype, device=value.device))


def ou_step(x, mean, sigma, tau, dt: float, noise):
    r"""One exact step of the Ornstein-Uhlenbeck process (stationary std ``sigma``):

    .. math::

        x' = \mu + (x - \mu)\,e^{-\Delta t/\tau}
             + \sigma \sqrt{1 - e^{-2\Delta t/\tau}}\;\xi, \qquad \xi \sim \mathcal{N}(0, 1).
    """
    tau = torch.as_tensor(tau, dtype=x.dtype, device=x.device)
    decay = torch.exp(-dt / tau)
    return mean + (x - mean) * decay + sigma * torch.sqrt(-torch.expm1(-2.0 * dt / tau)) * noise


# --------------------------------------------------------------------------- module base
class _Generator(Dynamics):
    """Base of the modules: unit of the signal, an optional window, the grid index of ``t``."""

    def __init__(self, in_size, *, name=None, device=None, dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        self.t_start = 0.0
        self.t_stop = math.inf

    def _set_window(self, t_start, duration, stop_name: str = "duration"):
        owner = self._name()
        self.t_start = time_ms(t_start, owner, "t_start")
        length = time_ms(duration, owner, stop_name, allow_none=True, positive=True)
        self.duration = math.inf if length is None else length
        self.t_stop = self.t_start + self.duration

    @property
    def _windowed(self) -> bool:
        return not (self.t_start <= 0.0 and self.t_stop == math.inf)

    def _repr_config(self):
        out = super()._repr_config()
        if hasattr(self, "duration"):
            out["t_start"] = format_quantity(self.t_start, "ms")
            out["duration"] = format_quantity(self.duration, "ms")
        return out

    def _register_signal(self, name, value, unit, *, shape=None, nonnegative=False,
                         trainable=False):
        if isinstance(value, list | tuple) and not is_quantity(value):
            value = as_value_tensor(value, unit, self._name(), name,
                                    dtype=self._factory["dtype"], device=self._factory["device"])
        return self._register_parameter_with_unit(
            name, value, unit, shape=self.varshape if shape is None else shape,
            nonnegative=nonnegative, trainable=trainable,
        )

    def _check_rows(self, name: str, values: torch.Tensor) -> None:
        """Each entry ``values[k]`` must broadcast to the population shape."""
        try:
            torch.broadcast_shapes(tuple(values.shape[1:]), self.varshape)
        except RuntimeError:
            raise ValueError(
                f"{self._name()}: each entry of '{name}' has shape {tuple(values.shape[1:])}, "
                f"which does not broadcast to the population shape {self.varshape}"
            ) from None

    def _step(self) -> tuple[torch.Tensor, float]:
        dt = get_dt_value(desc=self._name())
        device = self._factory_like_states()["device"]
        return step_index(current_time(self._name()), dt, device), dt

    def _broadcast(self, value: torch.Tensor) -> torch.Tensor:
        return value.expand(self.varshape) if value.ndim <= len(self.varshape) else value


def _check_same_length(owner, a_name, a, b_name, b):
    if len(a) != len(b):
        raise ValueError(f"{owner}: '{a_name}' and '{b_name}' must have the same length, got "
                         f"{len(a)} and {len(b)}")


def _sequence_tensor(owner, name, values, unit, dtype=None, device=None) -> torch.Tensor:
    """A list of section values (or a 1-d quantity array) as a tensor ``(K, ...)``."""
    out = as_value_tensor(values if is_quantity(values) else list(values), unit, owner, name,
                          dtype=dtype, device=device)
    return out.reshape(1) if out.ndim == 0 else out


class SectionInput(_Generator):
    r"""Piecewise-constant input: ``values[k]`` for ``durations[k]``, one after the other.

    .. math::

        I(t) = v_k \quad \text{for } T_{k-1} \le t < T_k,\ T_k = \textstyle\sum_{j \le k} d_j,
        \qquad I(t) = 0 \text{ for } t \ge T_K.

    Parameters
    ----------
    in_size : int or tuple of int
        Shape of the output.
    values : sequence of quantity or a quantity array
        Value of each section: scalars or tensors broadcastable to ``in_size`` (currents in pA
        for plain numbers; a voltage, conductance, ... keeps its kind, see the module notes).
    durations : sequence of quantity [time] or a quantity array
        Length of each section (plain numbers in ms), >= 0.
    name, device, dtype : optional

    Notes
    -----
    ``update()`` reads ``t`` from the environment and returns the value of that step (shape
    ``in_size``; it broadcasts against a batch). The function form is :func:`section_input`.

    Examples
    --------
    >>> from torchbrain import u
    >>> from torchbrain.inputs import SectionInput
    >>> stim = SectionInput(1, [0, 10, 0] * u.pA, [50, 100, 50] * u.ms)
    """

    def __init__(self, in_size, values, durations, *, name=None, device=None, dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        owner = self._name()
        unit = signal_unit(owner, [("values", values)])
        lengths = times_ms(durations, owner, "durations")
        vals = _sequence_tensor(owner, "values", values, unit, self._factory["dtype"],
                                self._factory["device"])
        _check_same_length(owner, "values", vals, "durations", lengths)
        if any(d < 0 for d in lengths):
            raise ValueError(f"{owner}: parameter 'durations' must be >= 0, got {min(lengths):g}")
        self._check_rows("values", vals)
        self.values = self._register_parameter_with_unit("values", vals, unit)
        self.ends = [float(x) for x in torch.tensor(lengths, dtype=torch.float64).cumsum(0)]

    def _repr_config(self):
        return {**super()._repr_config(),
                "total_duration": format_quantity(self.ends[-1], "ms")}

    def update(self) -> torch.Tensor:
        i, dt = self._step()
        return self._broadcast(_sections(self.values, self.ends, i, dt))


class ConstantInput(_Generator):
    r"""A constant input, on for ``[0, duration)`` (always, without a duration).

    .. math::

        I(t) = c \;\text{ for } 0 \le t < D, \qquad 0 \text{ afterwards}

    Parameters
    ----------
    in_size : int or tuple of int
        Shape of the output.
    value : quantity or tensor
        The value ``c`` (plain numbers: pA; other kinds keep their kind).
    duration : quantity [time], optional
        ``D`` (plain numbers in ms); default: no end (then ``t`` is not needed).
    name, device, dtype : optional

    Notes
    -----
    The function form, :func:`constant_input`, takes ``(value, duration)`` pairs as brainpy's.
    """

    def __init__(self, in_size, value, duration=None, *, name=None, device=None, dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        unit = signal_unit(self._name(), [("value", value)])
        self.value = self._register_signal("value", value, unit)
        self._set_window(0.0, duration)

    def update(self) -> torch.Tensor:
        value = self.value.expand(self.varshape)
        if not self._windowed:
            return value
        i, dt = self._step()
        return torch.where(_in_window(i, self.t_start, self.t_stop, dt), value,
                           torch.zeros((), dtype=value.dtype, device=value.device))


class StepInput(_Generator):
    r"""A staircase: ``amplitudes[k]`` from ``step_times[k]`` on, 0 before the first step.

    .. math::

        I(t) = a_k \quad \text{for } s_k \le t < s_{k+1}, \qquad I(t) = a_K \text{ for } t \ge s_K

    Parameters
    ----------
    in_size : int or tuple of int
        Shape of the output.
    amplitudes : sequence of quantity or a quantity array
        The level of each step (plain numbers: pA).
    step_times : sequence of quantity [time] or a quantity array
        When each level begins (plain numbers in ms); sorted here.
    name, device, dtype : optional
    """

    def __init__(self, in_size, amplitudes, step_times, *, name=None, device=None, dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        owner = self._name()
        unit = signal_unit(owner, [("amplitudes", amplitudes)])
        starts = times_ms(step_times, owner, "step_times")
        vals = _sequence_tensor(owner, "amplitudes", amplitudes, unit, self._factory["dtype"],
                                self._factory["device"])
        _check_same_length(owner, "amplitudes", vals, "step_times", starts)
        order = sorted(range(len(starts)), key=starts.__getitem__)
        self.step_times = [starts[k] for k in order]
        self._check_rows("amplitudes", vals)
        self.amplitudes = self._register_parameter_with_unit(
            "amplitudes", vals[torch.tensor(order, dtype=torch.int64)], unit
        )

    def update(self) -> torch.Tensor:
        i, dt = self._step()
        return self._broadcast(_staircase(self.amplitudes, self.step_times, i, dt))


class RampInput(_Generator):
    r"""A linear ramp from ``c_start`` to ``c_end`` over ``[t_start, t_start + duration)``.

    .. math::

        I(t) = c_\mathrm{start} + (c_\mathrm{end} - c_\mathrm{start})\,
               \frac{t - t_\mathrm{start}}{D} \quad \text{inside the window, } 0 \text{ outside}

    Parameters
    ----------
    in_size : int or tuple of int
    c_start, c_end : quantity or tensor
        Values at the start and (extrapolated) end of the window (plain numbers: pA).
    duration : quantity [time]
        Length ``D`` of the ramp (plain numbers in ms), > 0.
    t_start : quantity [time], default 0 ms
    name, device, dtype : optional

    Notes
    -----
    brainpy's ``ramp_input`` fills the window with ``linspace(c_start, c_end, n)``, which reaches
    ``c_end`` on the last step, so its slope depends on ``dt``; here the slope is
    :math:`(c_\mathrm{end} - c_\mathrm{start})/D` whatever ``dt``.
    """

    def __init__(self, in_size, c_start, c_end, duration, t_start=0.0, *, name=None,
                 device=None, dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        if duration is None:
            raise ValueError(f"{self._name()}: parameter 'duration' is required")
        unit = signal_unit(self._name(), [("c_start", c_start), ("c_end", c_end)])
        self.c_start = self._register_signal("c_start", c_start, unit)
        self.c_end = self._register_signal("c_end", c_end, unit)
        self._set_window(t_start, duration)

    def update(self) -> torch.Tensor:
        i, dt = self._step()
        return self._broadcast(_ramp(self.c_start, self.c_end, self.t_start, self.t_stop, i, dt))


def _bias_value(owner, bias, amplitude, unit, dtype=None, device=None):
    if bias is None or bias is False:
        return torch.zeros((), dtype=dtype, device=device)
    if bias is True:  # brainpy's meaning: shift the sinusoid up by its amplitude
        return amplitude.detach().clone()
    return to_tensor(bias, unit, owner=owner, name="bias", dtype=dtype, device=device)


class SinusoidalInput(_Generator):
    r"""A sinusoid, on inside a window.

    .. math::

        I(t) = A \sin\!\big(2\pi f\,(t - t_\mathrm{start}) + \varphi\big) + b
        \quad \text{for } t_\mathrm{start} \le t < t_\mathrm{start} + D, \qquad 0 \text{ outside}

    Parameters
    ----------
    in_size : int or tuple of int
    amplitude : quantity or tensor
        ``A`` (plain numbers: pA).
    frequency : quantity [rate] or tensor
        ``f``; pass ``10 * u.Hz`` (plain numbers are in 1/ms, i.e. kHz).
    duration : quantity [time], optional
        Window length ``D`` (plain numbers in ms); default: no end.
    t_start : quantity [time], default 0 ms
        Window start; the phase is counted from it.
    phase : float or tensor, default 0
        ``φ`` in radians.
    bias : bool, quantity or tensor, default False
        ``b``: ``True`` shifts the sinusoid up by ``A`` (brainpy's meaning), a value adds itself.
    name, device, dtype : optional
    """

    def __init__(self, in_size, amplitude, frequency, duration=None, t_start=0.0, *,
                 phase=0.0, bias=False, name=None, device=None, dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        owner = self._name()
        unit = signal_unit(owner, [("amplitude", amplitude), ("bias", bias)])
        self.amplitude = self._register_signal("amplitude", amplitude, unit)
        self.frequency = self._register_parameter_with_unit("frequency", frequency, "1/ms",
                                                            shape=self.varshape)
        self.phase = self._register_parameter_with_unit("phase", phase, "dimensionless",
                                                        shape=self.varshape)
        self.bias = self._register_signal(
            "bias", _bias_value(owner, bias, self.amplitude, unit, self._factory["dtype"],
                                self._factory["device"]), unit)
        self._set_window(t_start, duration)

    def update(self) -> torch.Tensor:
        i, dt = self._step()
        return self._broadcast(_sinusoid(self.amplitude, self.frequency, self.phase, self.bias,
                                         self.t_start, self.t_stop, i, dt))


class _NoiseGenerator(RandomStream, _Generator):
    def _active(self):
        """``None`` without a window (then ``t`` is not read), else the bool of this step."""
        if not self._windowed:
            return None
        i, dt = self._step()
        return _in_window(i, self.t_start, self.t_stop, dt)


class OUProcessInput(_NoiseGenerator):
    r"""Ornstein-Uhlenbeck (exponentially correlated) noise.

    .. math::

        dx = \frac{\mu - x}{\tau}\,dt + \sigma\sqrt{\frac{2}{\tau}}\;dW_t,

    integrated exactly (Gillespie 1996):

    .. math::

        x \leftarrow \mu + (x - \mu)\,e^{-\Delta t/\tau}
              + \sigma\sqrt{1 - e^{-2\Delta t/\tau}}\;\xi, \qquad \xi \sim \mathcal{N}(0, 1),

    so that :math:`\langle x \rangle = \mu`, :math:`\mathrm{Var}\,x = \sigma^2` and
    :math:`\langle (x_t - \mu)(x_{t+s} - \mu) \rangle = \sigma^2 e^{-|s|/\tau}` at any ``dt``.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of independent processes.
    mean : quantity or tensor
        ``μ`` (plain numbers: pA; other kinds keep their kind); also the initial value.
    sigma : quantity or tensor
        Stationary standard deviation ``σ`` (same kind as ``mean``), >= 0.
    tau : quantity [time]
        Correlation time (plain numbers in ms), > 0.
    duration : quantity [time], optional
        The process runs (and is output) only for ``t_start <= t < t_start + duration``; it is
        frozen and the output is 0 outside. Default: always on (``t`` is then not read).
    t_start : quantity [time], default 0 ms
    trainable : bool, default False
        Make ``mean`` and ``sigma`` ``nn.Parameter`` objects (e.g. to fit noise statistics).
    seed, generator : optional
        As :class:`~torchbrain.inputs.PoissonSpike`.
    name, device, dtype : optional

    Notes
    -----
    The reference integrates ``dx = (μ - x) dt/τ + σ √dt ξ`` with Euler-Maruyama, with ``σ`` a
    noise intensity whose stationary variance ``σ²τ/2`` depends on the time unit; here ``σ`` is
    the stationary standard deviation (``σ_ref = σ √(2/τ)``) and the update is exact for any
    ``dt``. ``update()`` returns the new ``x`` (State ``x``, shape ``(batch, *in_size)``).

    References
    ----------
    Gillespie, D. T. (1996). Exact numerical simulation of the Ornstein-Uhlenbeck process and its
    integral. *Phys. Rev. E* 54, 2084-2091.
    Uhlenbeck, G. E. & Ornstein, L. S. (1930). On the theory of the Brownian motion.
    *Phys. Rev.* 36, 823-841.
    """

    def __init__(self, in_size, mean, sigma, tau, duration=None, t_start=0.0, *,
                 trainable: bool = False, seed=None, generator=None, name=None, device=None,
                 dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        unit = signal_unit(self._name(), [("mean", mean), ("sigma", sigma)])
        self.mean = self._register_signal("mean", mean, unit, trainable=trainable)
        self.sigma = self._register_signal("sigma", sigma, unit, nonnegative=True,
                                           trainable=trainable)
        self.tau = self._register_parameter_with_unit("tau", tau, "ms", shape=self.varshape,
                                                      positive=True)
        self._set_window(t_start, duration)
        self.x = HiddenState(None)
        self._init_rng(seed, generator)

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        # Not detached: with a trainable mean, x depends on it from the first step on.
        self.x = HiddenState(self.mean.expand(shape).to(**self._factory_like_states()).clone())

    def update(self) -> torch.Tensor:
        """Advance the process one step and return it (0 outside the window)."""
        self._check_ready()
        dt = get_dt_value(desc=self._name())
        noise = self._normal(self._next_counter(), self._expected_shape(), 0, self.x.dtype)
        x = ou_step(self.x, self.mean, self.sigma, self.tau, dt, noise)
        active = self._active()
        if active is None:
            self.x = x
            return x
        self.x = torch.where(active, x, self.x)
        return torch.where(active, x, torch.zeros((), dtype=x.dtype, device=x.device))


class WienerProcessInput(_NoiseGenerator):
    r"""Gaussian white noise: the increments of a Wiener process.

    .. math::

        \Delta W = \sigma \sqrt{\Delta t}\;\xi, \qquad \xi \sim \mathcal{N}(0, 1), \qquad
        W(t) = \sum \Delta W,\quad \mathrm{Var}\,W(t) = \sigma^2 t.

    Parameters
    ----------
    in_size : int or tuple of int
        Number (shape) of independent processes.
    sigma : quantity or tensor
        Intensity ``σ`` per square root of time: ``5 * u.pA / u.ms ** 0.5`` (plain numbers in
        pA/√ms; other kinds keep their kind), >= 0.
    duration, t_start : quantity [time], optional
        Window, as :class:`OUProcessInput` (0 outside).
    trainable : bool, default False
        Make ``sigma`` an ``nn.Parameter``.
    seed, generator, name, device, dtype : optional
        As :class:`OUProcessInput`.

    Notes
    -----
    ``update()`` returns the increment :math:`\Delta W` of the step (a white-noise input, as
    the reference). The process itself, :math:`W(t)`, is kept in the State ``W``. The reference
    takes ``σ`` in current units and multiplies it by the number ``√dt`` (in its time unit); here
    the unit of ``σ`` makes that explicit.

    References
    ----------
    Kloeden, P. E. & Platen, E. (1992). *Numerical Solution of Stochastic Differential
    Equations*, ch. 1. Springer.
    """

    def __init__(self, in_size, sigma, duration=None, t_start=0.0, *, trainable: bool = False,
                 seed=None, generator=None, name=None, device=None, dtype=None):
        super().__init__(in_size, name=name, device=device, dtype=dtype)
        unit = signal_unit(self._name(), [("sigma", sigma)], per_sqrt_time=True)
        self.sigma = self._register_signal("sigma", sigma, unit, nonnegative=True,
                                           trainable=trainable)
        self._set_window(t_start, duration)
        self.W = HiddenState(None)
        self._init_rng(seed, generator)

    def init_state(self, batch_size=None):
        shape = self._state_shape(batch_size)
        self.W = HiddenState(torch.zeros(shape, **self._factory_like_states()))

    def update(self) -> torch.Tensor:
        """This step's increment (0 outside the window)."""
        self._check_ready()
        dt = get_dt_value(desc=self._name())
        noise = self._normal(self._next_counter(), self._expected_shape(), 0, self.W.dtype)
        dW = self.sigma * math.sqrt(dt) * noise
        active = self._active()
        if active is not None:
            dW = torch.where(active, dW, torch.zeros((), dtype=dW.dtype, device=dW.device))
        self.W = self.W + dW
        return dW


# --------------------------------------------------------------------------- functions
def _grid(duration: Any, dt: Any, owner: str) -> tuple[torch.Tensor, float, float]:
    step = resolve_dt(dt, owner)
    length = time_ms(duration, owner, "duration", positive=True)
    return torch.arange(first_step_at(length, step), dtype=torch.int64), step, length


def _window_args(owner, t_start, t_end, length):
    start = time_ms(t_start, owner, "t_start")
    end = length if t_end is None else time_ms(t_end, owner, "t_end")
    if not end > start:
        raise ValueError(f"{owner}: 't_end' ({end:g} ms) must be after 't_start' ({start:g} ms)")
    return start, end


def section_input(values, durations, dt=None, return_length: bool = False, *, dtype=None,
                  device=None):
    r"""Piecewise-constant input on the time grid (see :class:`SectionInput`).

    Parameters
    ----------
    values : sequence of quantity, or a quantity array
        Value of each section (scalars or tensors; plain numbers: pA).
    durations : sequence of quantity [time], or a quantity array
        Length of each section (plain numbers in ms).
    dt : quantity [time], optional
        Default: the environment's ``dt``.
    return_length : bool
        Also return the total duration (ms).
    dtype, device : optional

    Returns
    -------
    Tensor
        Shape ``(n_steps, *value_shape)``, canonical units of the values' kind
        (``n_steps`` = number of grid points before the total duration).
    """
    return _section_input("section_input", values, durations, dt, return_length, dtype, device)


def _section_input(owner, values, durations, dt, return_length, dtype, device):
    unit = signal_unit(owner, [("values", values)])
    lengths = times_ms(durations, owner, "durations")
    vals = _sequence_tensor(owner, "values", values, unit, dtype, device)
    _check_same_length(owner, "values", vals, "durations", lengths)
    if any(d < 0 for d in lengths):
        raise ValueError(f"{owner}: parameter 'durations' must be >= 0, got {min(lengths):g}")
    total = sum(lengths)
    i, step, _ = _grid(total, dt, owner)
    ends = [float(x) for x in torch.tensor(lengths, dtype=torch.float64).cumsum(0)]
    out = _sections(vals, ends, i.to(vals.device), step)
    return (out, total) if return_length else out


def constant_input(I_and_duration, dt=None, *, dtype=None, device=None):
    """brainpy's ``constant_input``: ``[(value, duration), ...]`` -> ``(signal, total)``.

    The same as :func:`section_input` with the pairs unzipped; returns the signal
    ``(n_steps, *value_shape)`` and the total duration in ms.
    """
    if not isinstance(I_and_duration, list | tuple) or not all(
        isinstance(p, list | tuple) and len(p) == 2 for p in I_and_duration
    ):
        raise ValueError("constant_input: 'I_and_duration' must be a sequence of "
                         "(value, duration) pairs")
    values = [p[0] for p in I_and_duration]
    durations = [p[1] for p in I_and_duration]
    return _section_input("constant_input", values, durations, dt, True, dtype, device)


def step_input(amplitudes, step_times, duration, dt=None, *, dtype=None, device=None):
    """A staircase on the time grid of ``duration`` (see :class:`StepInput`).

    Returns a tensor ``(n_steps, *amplitude_shape)``.
    """
    owner = "step_input"
    unit = signal_unit(owner, [("amplitudes", amplitudes)])
    starts = times_ms(step_times, owner, "step_times")
    vals = _sequence_tensor(owner, "amplitudes", amplitudes, unit, dtype, device)
    _check_same_length(owner, "amplitudes", vals, "step_times", starts)
    order = sorted(range(len(starts)), key=starts.__getitem__)
    i, step, _ = _grid(duration, dt, owner)
    return _staircase(vals[torch.tensor(order)], [starts[k] for k in order], i.to(vals.device),
                      step)


def ramp_input(c_start, c_end, duration, t_start=0.0, t_end=None, dt=None, *, dtype=None,
               device=None):
    r"""A linear ramp on ``[t_start, t_end)`` (default ``t_end = duration``), 0 elsewhere.

    .. math::

        I(t) = c_\mathrm{start} + (c_\mathrm{end} - c_\mathrm{start})
               \frac{t - t_\mathrm{start}}{t_\mathrm{end} - t_\mathrm{start}}

    Returns a tensor ``(n_steps, *shape)`` over ``[0, duration)``. Unlike brainpy's
    ``linspace`` version, the slope does not depend on ``dt``.
    """
    owner = "ramp_input"
    unit = signal_unit(owner, [("c_start", c_start), ("c_end", c_end)])
    a = as_value_tensor(c_start, unit, owner, "c_start", dtype, device)
    b = as_value_tensor(c_end, unit, owner, "c_end", dtype, device)
    i, step, length = _grid(duration, dt, owner)
    start, end = _window_args(owner, t_start, t_end, length)
    return _ramp(a, b, start, end, i.to(a.device), step)


def sinusoidal_input(amplitude, frequency, duration, dt=None, t_start=0.0, t_end=None, *,
                     phase=0.0, bias=False, dtype=None, device=None):
    r"""A sinusoid on ``[t_start, t_end)`` (default ``t_end = duration``), 0 elsewhere.

    .. math::

        I(t) = A \sin\!\big(2\pi f\,(t - t_\mathrm{start}) + \varphi\big) + b

    ``frequency`` is a rate (``10 * u.Hz``; plain numbers in 1/ms); ``bias=True`` adds ``A``
    (brainpy's meaning), a value adds itself. Returns ``(n_steps, *shape)``.
    """
    owner = "sinusoidal_input"
    unit = signal_unit(owner, [("amplitude", amplitude), ("bias", bias)])
    amp = as_value_tensor(amplitude, unit, owner, "amplitude", dtype, device)
    freq = as_value_tensor(frequency, "1/ms", owner, "frequency", dtype, device)
    ph = as_value_tensor(phase, "dimensionless", owner, "phase", dtype, device)
    b = _bias_value(owner, bias, amp, unit, amp.dtype, amp.device)
    i, step, length = _grid(duration, dt, owner)
    start, end = _window_args(owner, t_start, t_end, length)
    return _sinusoid(amp, freq, ph, b, start, end, i.to(amp.device), step)


def _function_generator(seed, generator, device, owner):
    if seed is not None:
        return torch.Generator(device=device or "cpu").manual_seed(draw_seed(seed, None, owner))
    return generator


def ou_process(mean, sigma, tau, duration, dt=None, n: int = 1, t_start=0.0, t_end=None, *,
               seed=None, generator=None, dtype=None, device=None):
    r"""Ornstein-Uhlenbeck noise on the time grid (exact update, see :class:`OUProcessInput`).

    Parameters
    ----------
    mean, sigma : quantity or tensor
        Mean and stationary standard deviation (plain numbers: pA); scalars or shape ``(n,)``.
    tau : quantity [time]
        Correlation time.
    duration : quantity [time]
        Length of the signal.
    dt : quantity [time], optional
        Default: the environment's ``dt``.
    n : int
        Number of independent processes.
    t_start, t_end : quantity [time]
        The process runs inside ``[t_start, t_end)`` only (0 outside), starting from ``mean``.
    seed, generator : optional
        Randomness (``torch.randn``; default torch's global RNG).

    Returns
    -------
    Tensor
        Shape ``(n_steps, n)``.
    """
    owner = "ou_process"
    unit = signal_unit(owner, [("mean", mean), ("sigma", sigma)])
    mu = as_value_tensor(mean, unit, owner, "mean", dtype, device)
    sd = as_value_tensor(sigma, unit, owner, "sigma", dtype, device)
    if bool((sd < 0).any()):
        raise ValueError(f"{owner}: parameter 'sigma' must be >= 0")
    tau_ms = time_ms(tau, owner, "tau", positive=True)
    i, step, length = _grid(duration, dt, owner)
    start, end = _window_args(owner, t_start, t_end, length)
    active = _in_window(i, start, end, step)
    gen = _function_generator(seed, generator, device, owner)
    noise = torch.randn((len(i), n), generator=gen, dtype=mu.dtype, device=mu.device)
    x = mu.expand(n).clone()
    out = torch.zeros((len(i), n), dtype=mu.dtype, device=mu.device)
    for k in torch.nonzero(active).flatten().tolist():
        x = ou_step(x, mu, sd, tau_ms, step, noise[k])
        out[k] = x
    return out


def wiener_process(duration, dt=None, n: int = 1, t_start=0.0, t_end=None, *, sigma=1.0,
                   seed=None, generator=None, dtype=None, device=None):
    r"""Wiener increments :math:`\sigma\sqrt{\Delta t}\,\xi` on ``[t_start, t_end)``, 0 outside.

    ``sigma`` is per square root of time (plain numbers: pA/√ms; default 1). The cumulative sum
    along time is the Wiener process (variance :math:`\sigma^2 t`). Returns ``(n_steps, n)``.
    """
    owner = "wiener_process"
    unit = signal_unit(owner, [("sigma", sigma)], per_sqrt_time=True)
    sd = as_value_tensor(sigma, unit, owner, "sigma", dtype, device)
    if bool((sd < 0).any()):
        raise ValueError(f"{owner}: parameter 'sigma' must be >= 0")
    i, step, length = _grid(duration, dt, owner)
    start, end = _window_args(owner, t_start, t_end, length)
    gen = _function_generator(seed, generator, device, owner)
    noise = torch.randn((len(i), n), generator=gen, dtype=sd.dtype, device=sd.device)
    active = _in_window(i, start, end, step).to(sd.device)[:, None]
    return torch.where(active, sd * math.sqrt(step) * noise,
                       torch.zeros((), dtype=sd.dtype, device=sd.device))
