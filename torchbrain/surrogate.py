r"""Surrogate gradient functions for training spiking neural networks.

A spiking neuron emits a spike when its membrane potential crosses a threshold. Written as a
function of the shifted potential :math:`x = V - V_{th}`, the spike is the Heaviside step

.. math::

    S(x) = H(x) = \begin{cases} 1 & x \ge 0 \\ 0 & x < 0 \end{cases}

whose derivative is zero almost everywhere (and undefined at the threshold), so ordinary
backpropagation cannot train a network of such units. *Surrogate gradient* learning keeps the
exact step in the forward pass but, in the backward pass, replaces :math:`H'(x)` by a smooth,
bump-shaped pseudo-derivative :math:`g(x)` that is largest near the threshold:

.. math::

    \text{forward: } S = H(x), \qquad
    \text{backward: } \frac{\partial L}{\partial x} = \frac{\partial L}{\partial S}\, g(x).

Every surrogate here is a small, picklable object (not an ``nn.Module``) holding its
hyperparameters as plain Python floats:

>>> import torch
>>> from torchbrain.surrogate import ReluGrad
>>> spike_fn = ReluGrad(alpha=0.3, width=1.0)
>>> x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
>>> spike_fn(x)
tensor([0., 1., 1.], grad_fn=<ReluGradFunctionBackward>)
>>> spike_fn(x).sum().backward()
>>> x.grad
tensor([0.1500, 0.3000, 0.1500])

Each surrogate class runs its own :class:`torch.autograd.Function` (``setup_context`` style,
``generate_vmap_rule = True``), so it works under :func:`torch.func.vmap`, under
``torch.compile(fullgraph=True)`` and with double backward (the backward pass is written with
differentiable torch operations). :meth:`Surrogate.surrogate_grad` evaluates :math:`g(x)`
directly. Each class also has a functional form (``ReluGrad`` -> :func:`relu_grad`), and
:func:`get_surrogate` turns a name, class or instance into an instance.
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
from collections.abc import Callable
from typing import Any, ClassVar

import torch

__all__ = [
    "Surrogate",
    "get_surrogate",
    "heaviside",
    # classes
    "Sigmoid",
    "SoftSign",
    "Arctan",
    "ERF",
    "PiecewiseQuadratic",
    "PiecewiseExp",
    "PiecewiseLeakyRelu",
    "LeakyRelu",
    "LogTailedRelu",
    "ReluGrad",
    "GaussianGrad",
    "InvSquareGrad",
    "MultiGaussianGrad",
    "SquarewaveFourierSeries",
    "S2NN",
    "QPseudoSpike",
    "SlayerGrad",
    "NonzeroSignLog",
    "SuperSpike",
    "FastSigmoid",
    # functional forms
    "sigmoid",
    "soft_sign",
    "arctan",
    "erf",
    "piecewise_quadratic",
    "piecewise_exp",
    "piecewise_leaky_relu",
    "leaky_relu",
    "log_tailed_relu",
    "relu_grad",
    "gaussian_grad",
    "inv_square_grad",
    "multi_gaussian_grad",
    "squarewave_fourier_series",
    "s2nn",
    "q_pseudo_spike",
    "slayer_grad",
    "nonzero_sign_log",
    "super_spike",
    "fast_sigmoid",
]

_SQRT_PI = math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Heaviside step ``(x >= 0)`` as 0/1 in the dtype of ``x`` (no surrogate gradient)."""
    return (x >= 0).to(x.dtype)


def _normal_pdf(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((x - mu) / sigma) ** 2) / (_SQRT_2PI * sigma)


# --------------------------------------------------------------------------- autograd Functions
def _make_spike_function(
    name: str, qualname: str, module: str, grad: Callable[..., torch.Tensor], doc: str
) -> type[torch.autograd.Function]:
    """Build a ``torch.autograd.Function``: Heaviside forward, ``grad_output * grad(x, *hp)``
    backward. ``hp`` are the surrogate's hyperparameters, passed to ``apply`` as Python numbers."""

    def forward(x: torch.Tensor, *hparams: float) -> torch.Tensor:
        return (x >= 0).to(x.dtype)

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.save_for_backward(inputs[0])
        ctx.hparams = inputs[1:]

    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (x,) = ctx.saved_tensors
        return (grad_output * grad(x, *ctx.hparams),) + (None,) * len(ctx.hparams)

    return type(
        name,
        (torch.autograd.Function,),
        {
            "__doc__": doc,
            "__module__": module,
            "__qualname__": qualname,
            "generate_vmap_rule": True,
            "forward": staticmethod(forward),
            "setup_context": staticmethod(setup_context),
            "backward": staticmethod(backward),
        },
    )


# --------------------------------------------------------------------------- base class
class Surrogate:
    """Base class of surrogate spike functions.

    A subclass declares its hyperparameters as the arguments of ``__init__`` (stored as float
    attributes through :meth:`_set_hparams`) and implements the pseudo-derivative as the static
    method ``_grad(x, *hparams)`` using differentiable torch operations. Defining the subclass
    creates its ``torch.autograd.Function`` (``SubclassFunction``): forward is the Heaviside step
    ``(x >= 0).to(x.dtype)``, backward is ``grad_output * _grad(x, *hparams)``.

    Instances are immutable; they compare equal (and hash equal) when they are of the same class
    with the same hyperparameters, and they pickle and deep-copy by their hyperparameters.
    """

    _param_names: ClassVar[tuple[str, ...]] = ()
    _function: ClassVar[type[torch.autograd.Function]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        grad = inspect.getattr_static(cls, "_grad")
        if grad is Surrogate.__dict__["_grad"] or not isinstance(grad, staticmethod):
            raise TypeError(
                f"{cls.__name__}: a Surrogate subclass must define the staticmethod "
                "_grad(x, *hparams)"
            )
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        cls._param_names = tuple(p.name for p in params)
        cls._function = _make_spike_function(
            f"{cls.__name__}Function",
            f"{cls.__qualname__}._function",  # importable path, so the class pickles by name
            cls.__module__,
            grad.__func__,
            f"Heaviside forward with the {cls.__name__} surrogate gradient in backward.",
        )

    @staticmethod
    def _grad(x: torch.Tensor, *hparams: float) -> torch.Tensor:
        raise NotImplementedError

    # -- hyperparameters ------------------------------------------------------------------------
    def _set_hparams(self, **values: float) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _check(
        self, name: str, value: Any, *, gt: float | None = None, ge: float | None = None
    ) -> float:
        cls = type(self).__name__
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"{cls}: parameter '{name}' must be a real number, got {value!r} "
                f"of type {type(value).__name__}"
            )
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{cls}: parameter '{name}' must be finite, got {value!r}")
        if gt is not None and not v > gt:
            raise ValueError(f"{cls}: parameter '{name}' must be > {gt:g}, got {value!r}")
        if ge is not None and not v >= ge:
            raise ValueError(f"{cls}: parameter '{name}' must be >= {ge:g}, got {value!r}")
        return v

    @property
    def hparams(self) -> dict[str, float]:
        """The hyperparameters as a ``{name: value}`` dict, in ``__init__`` order."""
        return {name: getattr(self, name) for name in self._param_names}

    def _hparam_values(self) -> tuple[float, ...]:
        return tuple([getattr(self, name) for name in self._param_names])

    # -- evaluation -----------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Heaviside step of ``x`` whose gradient is this surrogate's :meth:`surrogate_grad`."""
        if not (x.requires_grad and torch.is_grad_enabled()):
            # No gradient can flow: the plain step is the same value, cheaper, and avoids a
            # Dynamo failure on autograd.Function with varargs when nothing requires grad.
            return heaviside(x)
        return self._function.apply(x, *self._hparam_values())

    def surrogate_grad(self, x: torch.Tensor) -> torch.Tensor:
        """The pseudo-derivative :math:`g(x)` used in the backward pass (differentiable)."""
        return self._grad(x, *self._hparam_values())

    # -- protocol -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._param_names)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Surrogate):
            return NotImplemented
        return type(self) is type(other) and self._hparam_values() == other._hparam_values()

    def __hash__(self) -> int:
        return hash((type(self), self._hparam_values()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.hparams))

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self).__name__
        raise AttributeError(
            f"{cls} is immutable; cannot set {name!r}. Create a new instance instead, "
            f"e.g. {cls}(**{{**old.hparams, {name!r}: new_value}})"
        )

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")


def _rebuild(cls: type[Surrogate], hparams: dict[str, float]) -> Surrogate:
    """Unpickling helper: re-create (and re-validate) a surrogate from its hyperparameters."""
    return cls(**hparams)


# --------------------------------------------------------------------------- surrogates
class Sigmoid(Surrogate):
    r"""Derivative of a steep logistic sigmoid.

    .. math::

        g(x) = \alpha\, s(x)\,(1 - s(x)), \qquad s(x) = \frac{1}{1 + e^{-\alpha x}},

    the derivative of :math:`s`, a smooth stand-in for the step.

    Parameters
    ----------
    alpha : float, default 4.0
        Steepness (> 0); the peak value is :math:`\alpha / 4`.

    References
    ----------
    E. O. Neftci, H. Mostafa and F. Zenke, "Surrogate gradient learning in spiking neural
    networks", IEEE Signal Processing Magazine 36(6), 51-63 (2019).
    """

    def __init__(self, alpha: float = 4.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        s = torch.sigmoid(alpha * x)
        return alpha * s * (1.0 - s)


class SoftSign(Surrogate):
    r"""Derivative of a shifted soft-sign function.

    .. math::

        g(x) = \frac{\alpha}{2\,(1 + |\alpha x|)^2},

    the derivative of :math:`\tfrac12 \left(\frac{\alpha x}{1 + |\alpha x|} + 1\right)`.

    Parameters
    ----------
    alpha : float, default 1.0
        Steepness (> 0); the peak value is :math:`\alpha / 2`.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return alpha / (2.0 * (1.0 + torch.abs(alpha * x)) ** 2)


class Arctan(Surrogate):
    r"""Derivative of a scaled arctangent.

    .. math::

        g(x) = \frac{\alpha / 2}{1 + \left(\frac{\pi}{2} \alpha x\right)^2},

    the derivative of :math:`\frac{1}{\pi} \arctan\left(\frac{\pi}{2} \alpha x\right) + \frac12`.

    Parameters
    ----------
    alpha : float, default 1.0
        Steepness (> 0); the peak value is :math:`\alpha / 2`.

    References
    ----------
    W. Fang, Z. Yu, Y. Chen, T. Masquelier, T. Huang and Y. Tian, "Incorporating learnable
    membrane time constant to enhance learning of spiking neural networks", ICCV (2021).
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return (0.5 * alpha) / (1.0 + (0.5 * math.pi * alpha * x) ** 2)


class ERF(Surrogate):
    r"""Gaussian pseudo-derivative, the derivative of an error-function step.

    .. math::

        g(x) = \frac{\alpha}{\sqrt{\pi}}\, e^{-\alpha^2 x^2},

    the derivative of :math:`\tfrac12 \left(1 + \operatorname{erf}(\alpha x)\right)`.

    Parameters
    ----------
    alpha : float, default 1.0
        Steepness (> 0); the peak value is :math:`\alpha / \sqrt{\pi}`.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return (alpha / _SQRT_PI) * torch.exp(-((alpha * x) ** 2))


class PiecewiseQuadratic(Surrogate):
    r"""Triangular pseudo-derivative, the derivative of a piecewise-quadratic step.

    .. math::

        g(x) = \begin{cases} 0 & |x| > 1/\alpha \\
                             \alpha - \alpha^2 |x| & |x| \le 1/\alpha \end{cases}

    Parameters
    ----------
    alpha : float, default 1.0
        Steepness (> 0); the support is :math:`|x| \le 1/\alpha`, the peak value :math:`\alpha`.

    References
    ----------
    - S. K. Esser et al., "Convolutional networks for fast, energy-efficient neuromorphic
      computing", PNAS 113(41), 11441-11446 (2016).
    - E. O. Neftci, H. Mostafa and F. Zenke, "Surrogate gradient learning in spiking neural
      networks", IEEE Signal Processing Magazine 36(6), 51-63 (2019).
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return torch.clamp_min(alpha - (alpha * alpha) * torch.abs(x), 0.0)


class PiecewiseExp(Surrogate):
    r"""Laplacian (two-sided exponential) pseudo-derivative.

    .. math::

        g(x) = \frac{\alpha}{2}\, e^{-\alpha |x|},

    the derivative of :math:`\tfrac12 e^{\alpha x}` for :math:`x < 0` and
    :math:`1 - \tfrac12 e^{-\alpha x}` for :math:`x \ge 0`.

    Parameters
    ----------
    alpha : float, default 1.0
        Steepness (> 0); the peak value is :math:`\alpha / 2`.

    References
    ----------
    E. O. Neftci, H. Mostafa and F. Zenke, "Surrogate gradient learning in spiking neural
    networks", IEEE Signal Processing Magazine 36(6), 51-63 (2019).
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return (0.5 * alpha) * torch.exp(-alpha * torch.abs(x))


class PiecewiseLeakyRelu(Surrogate):
    r"""Rectangular pseudo-derivative with a leaky floor.

    .. math::

        g(x) = \begin{cases} 1/w & |x| \le w \\ c & |x| > w \end{cases}

    Parameters
    ----------
    c : float, default 0.01
        Gradient outside the window (>= 0).
    w : float, default 1.0
        Half-width of the window (> 0); inside it the gradient is :math:`1/w`.
    """

    def __init__(self, c: float = 0.01, w: float = 1.0) -> None:
        self._set_hparams(c=self._check("c", c, ge=0.0), w=self._check("w", w, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, c: float, w: float) -> torch.Tensor:
        return torch.where(torch.abs(x) > w, torch.full_like(x, c), 1.0 / w)


class LeakyRelu(Surrogate):
    r"""Step-shaped pseudo-derivative: the derivative of a leaky ReLU.

    .. math::

        g(x) = \begin{cases} \beta & x \ge 0 \\ \alpha & x < 0 \end{cases}

    Parameters
    ----------
    alpha : float, default 0.1
        Gradient below the threshold.
    beta : float, default 1.0
        Gradient at and above the threshold.
    """

    def __init__(self, alpha: float = 0.1, beta: float = 1.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha), beta=self._check("beta", beta))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
        return torch.where(x >= 0, torch.full_like(x, beta), alpha)


class LogTailedRelu(Surrogate):
    r"""Derivative of the log-tailed ReLU.

    .. math::

        g(x) = \begin{cases} \alpha & x \le 0 \\ 1 & 0 < x \le 1 \\ 1/x & x > 1 \end{cases}

    the derivative of :math:`\alpha x` (:math:`x \le 0`), :math:`x` (:math:`0 < x \le 1`) and
    :math:`1 + \log x` (:math:`x > 1`).

    Parameters
    ----------
    alpha : float, default 0.0
        Gradient at and below the threshold.

    References
    ----------
    Z. Cai, X. He, J. Sun and N. Vasconcelos, "Deep learning with low precision by
    half-wave Gaussian quantization", CVPR (2017).
    """

    def __init__(self, alpha: float = 0.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        tail = x > 1.0
        safe_x = torch.where(tail, x, torch.ones_like(x))  # 1/x only where it is used
        inner = torch.where(x <= 0, torch.full_like(x, alpha), 1.0)
        return torch.where(tail, 1.0 / safe_x, inner)


class ReluGrad(Surrogate):
    r"""Triangular pseudo-derivative with a dampening factor.

    .. math::

        g(x) = \alpha \max(w - |x|, 0)

    Parameters
    ----------
    alpha : float, default 0.3
        Dampening factor (> 0); the peak value is :math:`\alpha w`.
    width : float, default 1.0
        Half-width :math:`w` of the support (> 0).

    References
    ----------
    G. Bellec, D. Salaj, A. Subramoney, R. Legenstein and W. Maass, "Long short-term memory
    and learning-to-learn in networks of spiking neurons", NeurIPS (2018).
    """

    def __init__(self, alpha: float = 0.3, width: float = 1.0) -> None:
        self._set_hparams(
            alpha=self._check("alpha", alpha, gt=0.0), width=self._check("width", width, gt=0.0)
        )

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float, width: float) -> torch.Tensor:
        return alpha * torch.clamp_min(width - torch.abs(x), 0.0)


class GaussianGrad(Surrogate):
    r"""Gaussian pseudo-derivative.

    .. math::

        g(x) = \alpha\, \frac{1}{\sqrt{2\pi}\sigma} e^{-x^2 / (2\sigma^2)},

    :math:`\alpha` times the normal density, the derivative of :math:`\alpha\,\Phi(x/\sigma)`.

    Parameters
    ----------
    sigma : float, default 0.5
        Standard deviation (> 0).
    alpha : float, default 0.5
        Scale (> 0).

    References
    ----------
    Y. Wu, L. Deng, G. Li, J. Zhu and L. Shi, "Spatio-temporal backpropagation for training
    high-performance spiking neural networks", Frontiers in Neuroscience 12, 331 (2018).
    """

    def __init__(self, sigma: float = 0.5, alpha: float = 0.5) -> None:
        self._set_hparams(
            sigma=self._check("sigma", sigma, gt=0.0), alpha=self._check("alpha", alpha, gt=0.0)
        )

    @staticmethod
    def _grad(x: torch.Tensor, sigma: float, alpha: float) -> torch.Tensor:
        return alpha * _normal_pdf(x, 0.0, sigma)


class InvSquareGrad(Surrogate):
    r"""Inverse-square pseudo-derivative (a fast-sigmoid derivative).

    .. math::

        g(x) = \frac{1}{(\alpha |x| + 1)^2}

    Parameters
    ----------
    alpha : float, default 100.0
        Sharpness (> 0); the peak value is 1.
    """

    def __init__(self, alpha: float = 100.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return 1.0 / (alpha * torch.abs(x) + 1.0) ** 2


class MultiGaussianGrad(Surrogate):
    r"""Multi-Gaussian pseudo-derivative: a Gaussian bump with two negative side lobes.

    .. math::

        g(x) = \text{scale}\left[(1 + h)\,\mathcal N(x; 0, \sigma)
               - h\,\mathcal N(x; \sigma, s\sigma) - h\,\mathcal N(x; -\sigma, s\sigma)\right],

    where :math:`\mathcal N(x; \mu, \sigma)` is the normal density.

    Parameters
    ----------
    h : float, default 0.15
        Weight of the side lobes (>= 0).
    s : float, default 6.0
        Width of the side lobes relative to ``sigma`` (> 0).
    sigma : float, default 0.5
        Standard deviation of the central Gaussian (> 0).
    scale : float, default 0.5
        Overall scale (> 0).

    References
    ----------
    B. Yin, F. Corradi and S. M. Bohté, "Accurate and efficient time-domain classification
    with adaptive spiking recurrent neural networks", Nature Machine Intelligence 3, 905-913
    (2021).
    """

    def __init__(
        self, h: float = 0.15, s: float = 6.0, sigma: float = 0.5, scale: float = 0.5
    ) -> None:
        self._set_hparams(
            h=self._check("h", h, ge=0.0),
            s=self._check("s", s, gt=0.0),
            sigma=self._check("sigma", sigma, gt=0.0),
            scale=self._check("scale", scale, gt=0.0),
        )

    @staticmethod
    def _grad(x: torch.Tensor, h: float, s: float, sigma: float, scale: float) -> torch.Tensor:
        wide = s * sigma
        return scale * (
            (1.0 + h) * _normal_pdf(x, 0.0, sigma)
            - h * _normal_pdf(x, sigma, wide)
            - h * _normal_pdf(x, -sigma, wide)
        )


class SquarewaveFourierSeries(Surrogate):
    r"""Derivative of a truncated Fourier series of a square wave.

    With :math:`\omega = 2\pi / T`,

    .. math::

        g(x) = \frac{4}{T} \sum_{i=1}^{n-1} \cos\left((2i - 1)\,\omega x\right),

    the derivative of :math:`\frac12 + \frac{2}{\pi} \sum_{i=1}^{n-1}
    \frac{\sin((2i - 1)\omega x)}{2i - 1}`.

    Parameters
    ----------
    n : int, default 2
        Number of terms plus one (an integer >= 2).
    t_period : float, default 8.0
        Period :math:`T` of the square wave (> 0).
    """

    def __init__(self, n: int = 2, t_period: float = 8.0) -> None:
        cls = type(self).__name__
        n_val = self._check("n", n, ge=2.0)
        if not n_val.is_integer():
            raise ValueError(f"{cls}: parameter 'n' must be an integer >= 2, got {n!r}")
        self._set_hparams(n=int(n_val), t_period=self._check("t_period", t_period, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, n: int, t_period: float) -> torch.Tensor:
        w = 2.0 * math.pi / t_period
        total = torch.cos(w * x)
        for i in range(2, int(n)):
            total = total + torch.cos((2 * i - 1) * w * x)
        return (4.0 / t_period) * total


class S2NN(Surrogate):
    r"""S2NN pseudo-derivative: a sigmoid derivative below threshold, a log derivative above.

    .. math::

        g(x) = \begin{cases} \alpha\, s(x)(1 - s(x)),\; s(x) = \frac{1}{1 + e^{-\alpha x}}
                             & x < 0 \\
                             \dfrac{\beta}{x + 1 + \epsilon} & x \ge 0 \end{cases}

    Parameters
    ----------
    alpha : float, default 4.0
        Steepness of the sigmoid part (> 0).
    beta : float, default 1.0
        Scale of the logarithmic part (> 0).
    eps : float, default 1e-8
        Small offset in the logarithmic part (>= 0).

    References
    ----------
    K. Suetake, S. Ikegawa, R. Saiin and Y. Sawada, "S3NN: Time step reduction of spiking
    surrogate gradients for training energy efficient single-step spiking neural networks",
    Neural Networks 159, 208-219 (2023).
    """

    def __init__(self, alpha: float = 4.0, beta: float = 1.0, eps: float = 1e-8) -> None:
        self._set_hparams(
            alpha=self._check("alpha", alpha, gt=0.0),
            beta=self._check("beta", beta, gt=0.0),
            eps=self._check("eps", eps, ge=0.0),
        )

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float, beta: float, eps: float) -> torch.Tensor:
        neg = x < 0
        s = torch.sigmoid(alpha * x)
        # beta / (x + 1 + eps) is only used for x >= 0; keep it finite (x <= -1) elsewhere.
        safe_x = torch.where(neg, torch.zeros_like(x), x)
        return torch.where(neg, alpha * s * (1.0 - s), beta / (safe_x + (1.0 + eps)))


class QPseudoSpike(Surrogate):
    r"""q-PseudoSpike: a heavy-tailed pseudo-derivative with tunable tail fatness.

    .. math::

        g(x) = \left(1 + \frac{2|x|}{\alpha - 1}\right)^{-\alpha}

    Parameters
    ----------
    alpha : float, default 2.0
        Tail parameter (> 1); smaller values give fatter tails.

    References
    ----------
    L. Herranz-Celotti and J. Rouat, "Stabilizing spiking neuron training",
    arXiv:2202.00282 (2022).
    """

    def __init__(self, alpha: float = 2.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha, gt=1.0))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return (1.0 + (2.0 / (alpha - 1.0)) * torch.abs(x)) ** (-alpha)


class SlayerGrad(Surrogate):
    r"""Exponential pseudo-derivative of SLAYER.

    .. math::

        g(x) = e^{-\alpha |x|}

    Parameters
    ----------
    alpha : float, default 1.0
        Decay rate (> 0); the peak value is 1.

    References
    ----------
    S. B. Shrestha and G. Orchard, "SLAYER: Spike layer error reassignment in time",
    NeurIPS (2018).
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return torch.exp(-alpha * torch.abs(x))


class NonzeroSignLog(Surrogate):
    r"""Derivative of a sign-symmetric logarithm.

    .. math::

        g(x) = \frac{1}{1/\alpha + |x|},

    the derivative of :math:`\operatorname{sign}(x) \log(1 + \alpha |x|)`.

    Parameters
    ----------
    alpha : float, default 1.0
        Sharpness (> 0); the peak value is :math:`\alpha`.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return 1.0 / (1.0 / alpha + torch.abs(x))


class SuperSpike(Surrogate):
    r"""SuperSpike / fast-sigmoid pseudo-derivative.

    .. math::

        g(x) = \frac{1}{(\alpha |x| + 1)^2},

    the derivative of the fast sigmoid :math:`x / (1 + \alpha |x|)`. ``FastSigmoid`` is an alias.

    Parameters
    ----------
    alpha : float, default 25.0
        Sharpness (> 0); the peak value is 1.

    References
    ----------
    F. Zenke and S. Ganguli, "SuperSpike: Supervised learning in multilayer spiking neural
    networks", Neural Computation 30(6), 1514-1541 (2018).
    """

    def __init__(self, alpha: float = 25.0) -> None:
        self._set_hparams(alpha=self._check("alpha", alpha, gt=0.0))

    @staticmethod
    def _grad(x: torch.Tensor, alpha: float) -> torch.Tensor:
        return 1.0 / (alpha * torch.abs(x) + 1.0) ** 2


FastSigmoid = SuperSpike


# --------------------------------------------------------------------------- functional forms
def sigmoid(x: torch.Tensor, alpha: float = 4.0) -> torch.Tensor:
    """Heaviside spike with the :class:`Sigmoid` surrogate gradient."""
    return Sigmoid(alpha)(x)


def soft_sign(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Heaviside spike with the :class:`SoftSign` surrogate gradient."""
    return SoftSign(alpha)(x)


def arctan(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Heaviside spike with the :class:`Arctan` surrogate gradient."""
    return Arctan(alpha)(x)


def erf(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Heaviside spike with the :class:`ERF` surrogate gradient."""
    return ERF(alpha)(x)


def piecewise_quadratic(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Heaviside spike with the :class:`PiecewiseQuadratic` surrogate gradient."""
    return PiecewiseQuadratic(alpha)(x)


def piecewise_exp(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Heaviside spike with the :class:`PiecewiseExp` surrogate gradient."""
    return PiecewiseExp(alpha)(x)


def piecewise_leaky_relu(x: torch.Tensor, c: float = 0.01, w: float = 1.0) -> torch.Tensor:
    """Heaviside spike with the :class:`PiecewiseLeakyRelu` surrogate gradient."""
    return PiecewiseLeakyRelu(c, w)(x)


def leaky_relu(x: torch.Tensor, alpha: float = 0.1, beta: float = 1.0) -> torch.Tensor:
    """Heaviside spike with the :class:`LeakyRelu` surrogate gradient."""
    return LeakyRelu(alpha, beta)(x)


def log_tailed_relu(x: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """Heaviside spike with the :class:`LogTailedRelu` surrogate gradient."""
    return LogTailedRelu(alpha)(x)


def relu_grad(x: torch.Tensor, alpha: float = 0.3, width: float = 1.0) -> torch.Tensor:
    """Heaviside spike with the :class:`ReluGrad` surrogate gradient."""
    return ReluGrad(alpha, width)(x)


def gaussian_grad(x: torch.Tensor, sigma: float = 0.5, alpha: float = 0.5) -> torch.Tensor:
    """Heaviside spike with the :class:`GaussianGrad` surrogate gradient."""
    return GaussianGrad(sigma, alpha)(x)


def inv_square_grad(x: torch.Tensor, alpha: float = 100.0) -> torch.Tensor:
    """Heaviside spike with the :class:`InvSquareGrad` surrogate gradient."""
    return InvSquareGrad(alpha)(x)


def multi_gaussian_grad(
    x: torch.Tensor, h: float = 0.15, s: float = 6.0, sigma: float = 0.5, scale: float = 0.5
) -> torch.Tensor:
    """Heaviside spike with the :class:`MultiGaussianGrad` surrogate gradient."""
    return MultiGaussianGrad(h, s, sigma, scale)(x)


def squarewave_fourier_series(x: torch.Tensor, n: int = 2, t_period: float = 8.0) -> torch.Tensor:
    """Heaviside spike with the :class:`SquarewaveFourierSeries` surrogate gradient."""
    return SquarewaveFourierSeries(n, t_period)(x)


def s2nn(x: torch.Tensor, alpha: float = 4.0, beta: float = 1.0, eps: float = 1e-8) -> torch.Tensor:
    """Heaviside spike with the :class:`S2NN` surrogate gradient."""
    return S2NN(alpha, beta, eps)(x)


def q_pseudo_spike(x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Heaviside spike with the :class:`QPseudoSpike` surrogate gradient."""
    return QPseudoSpike(alpha)(x)


def slayer_grad(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Heaviside spike with the :class:`SlayerGrad` surrogate gradient."""
    return SlayerGrad(alpha)(x)


def nonzero_sign_log(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Heaviside spike with the :class:`NonzeroSignLog` surrogate gradient."""
    return NonzeroSignLog(alpha)(x)


def super_spike(x: torch.Tensor, alpha: float = 25.0) -> torch.Tensor:
    """Heaviside spike with the :class:`SuperSpike` (fast sigmoid) surrogate gradient."""
    return SuperSpike(alpha)(x)


fast_sigmoid = super_spike


# --------------------------------------------------------------------------- lookup
_CLASSES: tuple[type[Surrogate], ...] = (
    Sigmoid,
    SoftSign,
    Arctan,
    ERF,
    PiecewiseQuadratic,
    PiecewiseExp,
    PiecewiseLeakyRelu,
    LeakyRelu,
    LogTailedRelu,
    ReluGrad,
    GaussianGrad,
    InvSquareGrad,
    MultiGaussianGrad,
    SquarewaveFourierSeries,
    S2NN,
    QPseudoSpike,
    SlayerGrad,
    NonzeroSignLog,
    SuperSpike,
)

# snake_case name -> class; the snake_case names are also the functional forms' names.
_NAMES: dict[str, type[Surrogate]] = {
    "sigmoid": Sigmoid,
    "soft_sign": SoftSign,
    "arctan": Arctan,
    "erf": ERF,
    "piecewise_quadratic": PiecewiseQuadratic,
    "piecewise_exp": PiecewiseExp,
    "piecewise_leaky_relu": PiecewiseLeakyRelu,
    "leaky_relu": LeakyRelu,
    "log_tailed_relu": LogTailedRelu,
    "relu_grad": ReluGrad,
    "gaussian_grad": GaussianGrad,
    "inv_square_grad": InvSquareGrad,
    "multi_gaussian_grad": MultiGaussianGrad,
    "squarewave_fourier_series": SquarewaveFourierSeries,
    "s2nn": S2NN,
    "q_pseudo_spike": QPseudoSpike,
    "slayer_grad": SlayerGrad,
    "nonzero_sign_log": NonzeroSignLog,
    "super_spike": SuperSpike,
    "fast_sigmoid": SuperSpike,
}


def _normalize(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


_LOOKUP: dict[str, type[Surrogate]] = {_normalize(n): c for n, c in _NAMES.items()}
_LOOKUP.update({_normalize(c.__name__): c for c in _CLASSES})
_LOOKUP["fastsigmoid"] = SuperSpike


def get_surrogate(spec: str | Surrogate | type[Surrogate], **hparams: float) -> Surrogate:
    """Return a :class:`Surrogate` instance from a name, a class or an instance.

    Parameters
    ----------
    spec : str, Surrogate subclass or Surrogate
        An instance is returned as it is. A class is instantiated. A string names a surrogate by
        its function name (``'relu_grad'``) or class name (``'ReluGrad'``); case, underscores,
        hyphens and spaces are ignored.
    **hparams
        Hyperparameters passed to the class (not allowed together with an instance).

    Raises
    ------
    ValueError
        If the name is unknown (the message lists the valid names), or hyperparameters are given
        with an instance, or a hyperparameter is invalid.
    TypeError
        If ``spec`` is of another type.
    """
    if isinstance(spec, Surrogate):
        if hparams:
            raise ValueError(
                f"get_surrogate: hyperparameters {sorted(hparams)} cannot be applied to the "
                f"instance {spec!r}; pass a name or class instead"
            )
        return spec
    if isinstance(spec, type) and issubclass(spec, Surrogate) and spec is not Surrogate:
        return spec(**hparams)
    if isinstance(spec, str):
        cls = _LOOKUP.get(_normalize(spec))
        if cls is None:
            raise ValueError(
                f"get_surrogate: unknown surrogate {spec!r}; valid names are "
                f"{', '.join(sorted(_NAMES))} (or the class names: "
                f"{', '.join(c.__name__ for c in _CLASSES)}, FastSigmoid)"
            )
        return cls(**hparams)
    raise TypeError(
        "get_surrogate: expected a surrogate name, a Surrogate subclass or a Surrogate instance, "
        f"got {spec!r} of type {type(spec).__name__}; valid names are {', '.join(sorted(_NAMES))}"
    )
