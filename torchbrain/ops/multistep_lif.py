r"""Fused multi-step leaky integrate-and-fire: ``torchbrain::multistep_lif``.

The op runs the whole time loop of a layer of LIF neurons in one call. With input ``x`` of shape
``(T, *S)`` (``S`` is usually ``(batch, features...)``) and the membrane potential ``v0`` of
shape ``S`` after the previous step's reset, every step ``t`` computes

.. math::

    H_t &= a \odot V_{t-1} + b \odot x_t
        && \text{(integration; } a = e^{-\Delta t/\tau},\ b = 1 - a \text{ or } 1) \\
    S_t &= \Theta(z_t),\quad z_t = \frac{H_t - V_\mathrm{th}}{V_\mathrm{th} - V_\mathrm{reset}}
        && \text{(spike; surrogate derivative } g(z_t) \text{ in backward)} \\
    V_t &= H_t - (V_\mathrm{th} - V_\mathrm{reset})\, S_t
        && \text{(soft reset)} \\
    V_t &= H_t - (\mathrm{sg}(H_t) - V_\mathrm{reset})\, S_t
        && \text{(hard reset: exactly } V_\mathrm{reset} \text{ after a spike)}

where ``sg`` stops the gradient (torchbrain's convention, as in :func:`torchbrain.functional.lif.
lif_reset`); with ``detach_reset`` the :math:`S_t` of the reset is ``sg(S_t)`` too. It returns
the spikes :math:`S` (``(T, *S)``, 0/1 in ``x``'s dtype), the last potential :math:`V_{T}` and the
pre-reset potentials :math:`H` (``(T, *S)``). ``a``, ``b``, ``V_th`` and ``V_reset`` are tensors
that broadcast to ``S`` (scalars or per-neuron values) and all receive gradients.

What the backward pass keeps: only :math:`H` (one value per neuron and step, the op's third
output) plus ``v0``, the four small parameter tensors and, only when ``b`` needs a gradient,
``x``. Spikes, :math:`z_t` and the post-reset :math:`V_t` are recomputed from :math:`H`, one
chunk of time steps at a time (``_CHUNK_ELEMS`` elements, so the temporaries stay in cache and
Python overhead is paid per chunk, not per step). The backward pass is the exact BPTT of the
recurrence: with :math:`q_t = g(z_t)/(V_\mathrm{th} - V_\mathrm{reset})`,
:math:`\partial V_t/\partial S_t = c_t` (``-(V_th - V_reset)`` soft, ``-(H_t - V_reset)`` hard,
``0`` with ``detach_reset``) and the incoming gradients :math:`\bar S_t, \bar H_t, \bar V_T`,

.. math::

    \bar H_{T} = \bar V_T (1 + c_T q_T) + \bar S_T q_T + \bar H^\mathrm{out}_T, \qquad
    \bar H_{t} = \bar H_{t+1}\, a\,(1 + c_t q_t) + \bar S_t q_t + \bar H^\mathrm{out}_t,

one fused multiply-add per step (a Python loop over ``T`` of one vectorised ``addcmul_``); every
other gradient (``x``, ``v0``, ``a``, ``b``, ``V_th``, ``V_reset``) is then a vectorised
expression of :math:`\bar H`. The forward pass is a Python loop over ``T`` of three (soft
reset) or four (hard reset) vectorised operations on ``S``-shaped slices writing into
preallocated buffers. At the Open Neuromorphic benchmark size (``T = 500``, ``S = 16 x 512``,
one CPU thread) forward plus backward take about 15-20 ms, against about 65 ms for autograd
through the step-by-step loop. Both directions are ``torch.library`` custom ops
(``torchbrain::multistep_lif`` and ``torchbrain::multistep_lif_backward``) with fake
implementations, so ``torch.compile(fullgraph=True)`` keeps each one as a single opaque node
instead of unrolling ``T`` steps into the graph.

Surrogates: the spike function is named by the import path of its :class:`~torchbrain.surrogate.
Surrogate` class and its hyperparameters; the backward pass rebuilds the instance and calls its
:meth:`~torchbrain.surrogate.Surrogate.surrogate_grad`, so every surrogate of
:mod:`torchbrain.surrogate` (and any user subclass defined at module level) is supported.
:func:`surrogate_key` returns ``None`` for a class that cannot be found again by its path (e.g.
defined inside a function); the layers then fall back to :func:`multistep_lif_reference`.

What runs where: on CPU tensors both ops run the plain-torch implementations described above.
On CUDA tensors they run the Triton kernels of :mod:`torchbrain.kernels.multistep_lif`,
registered as the ops' CUDA kernels: the forward is one launch (one program per block of
neurons looping over ``T`` with the state in registers, the same operations in the same order
as the torch loop); the backward runs the reverse-time recurrence, ``dL/dx`` and the
per-neuron parameter sums in one launch (the sums are reduced to the parameters' shapes with
torch), computing the surrogate derivative inside the kernel for the common surrogates
(:data:`FUSED_SURROGATES`, exact classes; see :func:`fused_surrogate`) and otherwise
evaluating it with torch for a chunk of time steps at a time, one launch per chunk (so any
surrogate works). CUDA falls back to the torch implementations when Triton is missing, when
``TORCHBRAIN_DISABLE_KERNELS=1`` (read on every call), for float16/bfloat16 (the kernels compute
in float32 or float64 only) and for non-strided or mixed-dtype inputs.

Limits: no double backward through the fused op (its backward op has no autograd formula; use
the reference loop, ``fused=False`` in the layers, for higher-order gradients or ``torch.func``
transforms).
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable

import torch

from .. import surrogate as sg
from ..functional.lif import lif_reset
from ..surrogate import Surrogate, get_surrogate
from ._dispatch import register_cuda

__all__ = [
    "multistep_lif",
    "multistep_lif_reference",
    "surrogate_key",
    "fused_surrogate",
    "FUSED_SURROGATES",
]


# ----------------------------------------------------------------------------- surrogates
def surrogate_key(spk_fun: Surrogate) -> tuple[str, list[float]] | None:
    """``(import path of the class, hyperparameters)`` of a surrogate, or ``None`` when its
    class cannot be found again from that path (then the fused op cannot rebuild it)."""
    if not isinstance(spk_fun, Surrogate):
        return None
    cls = type(spk_fun)
    key = f"{cls.__module__}:{cls.__qualname__}"
    hparams = [float(v) for v in spk_fun._hparam_values()]
    if torch.compiler.is_compiling():
        # Dynamo cannot trace the import machinery; the eager call (which runs first, and
        # which the layers run at construction) has checked the path already.
        return key, hparams
    try:
        found = _resolve_class(key)
    except (ImportError, AttributeError):
        return None
    if found is not cls:
        return None
    return key, hparams


@functools.cache
def _resolve_class(key: str) -> type:
    module, _, qualname = key.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@functools.lru_cache(maxsize=256)
def _surrogate(key: str, hparams: tuple[float, ...]) -> Surrogate:
    cls = _resolve_class(key)
    return get_surrogate(cls, **dict(zip(cls._param_names, hparams, strict=True)))


# ------------------------------------------------------------ surrogates inside the kernel
#: Classes of :mod:`torchbrain.surrogate` whose derivative the backward kernel computes itself.
FUSED_SURROGATES = (
    "ReluGrad", "Sigmoid", "Arctan", "SuperSpike", "InvSquareGrad", "GaussianGrad",
    "PiecewiseQuadratic", "PiecewiseLeakyRelu", "LeakyRelu", "SoftSign", "ERF", "PiecewiseExp",
    "SlayerGrad", "NonzeroSignLog", "LogTailedRelu",
)


@functools.cache
def _fused_table() -> dict[type, tuple[str, Callable]]:
    """Surrogate class -> (kernel formula, hyperparameters -> the formula's constants c0..c2).

    The constants are computed in float64 exactly as the class's ``_grad`` computes them in
    Python (``0.5 * math.pi * alpha`` is ``(0.5 * pi) * alpha`` there too); the kernel then
    rounds them to the data dtype, as torch rounds a Python scalar.
    """
    return {
        sg.ReluGrad: ("relu_grad", lambda s: (s.alpha, s.width)),
        sg.Sigmoid: ("sigmoid", lambda s: (s.alpha,)),
        sg.Arctan: ("arctan", lambda s: (0.5 * s.alpha, 0.5 * math.pi * s.alpha)),
        sg.SuperSpike: ("inv_square", lambda s: (s.alpha,)),
        sg.InvSquareGrad: ("inv_square", lambda s: (s.alpha,)),
        sg.GaussianGrad: ("gaussian", lambda s: (s.sigma, sg._SQRT_2PI * s.sigma, s.alpha)),
        sg.PiecewiseQuadratic: ("piecewise_quadratic", lambda s: (s.alpha, s.alpha * s.alpha)),
        sg.PiecewiseLeakyRelu: ("piecewise_leaky_relu", lambda s: (s.c, s.w, 1.0 / s.w)),
        sg.LeakyRelu: ("leaky_relu", lambda s: (s.alpha, s.beta)),
        sg.SoftSign: ("soft_sign", lambda s: (s.alpha,)),
        sg.ERF: ("erf", lambda s: (s.alpha, s.alpha / sg._SQRT_PI)),
        sg.PiecewiseExp: ("piecewise_exp", lambda s: (-s.alpha, 0.5 * s.alpha)),
        sg.SlayerGrad: ("slayer", lambda s: (-s.alpha,)),
        sg.NonzeroSignLog: ("nonzero_sign_log", lambda s: (1.0 / s.alpha,)),
        sg.LogTailedRelu: ("log_tailed_relu", lambda s: (s.alpha,)),
    }


def fused_surrogate(surrogate) -> tuple[str, tuple[float, float, float]] | None:
    """How the backward kernel would evaluate ``surrogate``'s derivative.

    Parameters
    ----------
    surrogate : Surrogate or callable
        The spike function of the op.

    Returns
    -------
    (str, tuple of 3 float) or None
        The kernel's formula (:data:`torchbrain.kernels.multistep_lif.SURROGATE_FORMULAS`) and
        its three constants (float64, unused ones 0) when ``surrogate`` is an instance of
        exactly one of the classes of :data:`FUSED_SURROGATES` (a subclass may redefine
        ``_grad``, so it is not matched); ``None`` when ``g`` is evaluated with torch before
        the kernel.
    """
    entry = _fused_table().get(type(surrogate))
    if entry is None:
        return None
    formula, constants = entry
    values = tuple(float(c) for c in constants(surrogate))
    return formula, values + (0.0,) * (3 - len(values))


# ------------------------------------------------------------------------ Triton dispatch
#: Dtypes the Triton kernels handle; others (float16, bfloat16) keep the torch path.
_KERNEL_DTYPES = (torch.float32, torch.float64)


def _kernel_supports(*tensors: torch.Tensor | None) -> bool:
    """Whether the kernels take these tensors: one float32/float64 dtype, strided, non-empty
    (``None`` entries, the absent gradients, are skipped)."""
    present = [t for t in tensors if t is not None]
    dtype = present[0].dtype
    return (
        dtype in _KERNEL_DTYPES
        and present[0].numel() > 0
        and all(t.dtype == dtype and t.layout == torch.strided for t in present)
    )


# ----------------------------------------------------------------------------- forward op
def _multistep_lif_torch(x, v0, decay, gain, v_th, v_reset, hard_reset):
    """The pure-torch forward (CPU path; fallback on CUDA)."""
    # b x_t for every step at once; the loop adds a V_{t-1} in place, turning it into H_t. Per
    # step: three or four vectorised ops on (B, N) slices with preallocated outputs.
    h = torch.mul(x, gain, out=x.new_empty(x.shape))  # contiguous, whatever x's layout
    v = v0.clone(memory_format=torch.contiguous_format)
    s_t = torch.empty_like(v)
    tmp = torch.empty_like(v) if hard_reset else None
    amount = None if hard_reset else torch.neg(v_th - v_reset)
    for h_t in h.unbind(0):
        h_t.addcmul_(v, decay)  # H_t = b x_t + a V_{t-1}
        torch.ge(h_t, v_th, out=s_t)  # S_t as 0/1 in the float dtype
        if hard_reset:
            torch.sub(h_t, v_reset, out=tmp)
            torch.addcmul(h_t, tmp, s_t, value=-1.0, out=v)  # H - (H - V_reset) S
        else:
            torch.addcmul(h_t, s_t, amount, out=v)  # H - (V_th - V_reset) S
    spikes = torch.ge(h, v_th, out=h.new_empty(h.shape))  # the same comparison, all steps
    return spikes, v, h


@torch.library.custom_op("torchbrain::multistep_lif", mutates_args=())
def _multistep_lif(
    x: torch.Tensor,
    v0: torch.Tensor,
    decay: torch.Tensor,
    gain: torch.Tensor,
    v_th: torch.Tensor,
    v_reset: torch.Tensor,
    hard_reset: bool,
    detach_reset: bool,
    surrogate: str,
    hparams: list[float],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _multistep_lif_torch(x, v0, decay, gain, v_th, v_reset, hard_reset)


def _launch_forward(K, x, v0, decay, gain, v_th, v_reset, hard_reset, *_surrogate):
    return K.multistep_lif_forward(x, v0, decay, gain, v_th, v_reset, hard_reset)


def _forward_torch(x, v0, decay, gain, v_th, v_reset, hard_reset, *_surrogate):
    return _multistep_lif_torch(x, v0, decay, gain, v_th, v_reset, hard_reset)


def _forward_supported(x, v0, decay, gain, v_th, v_reset, *_flags):
    return _kernel_supports(x, v0, decay, gain, v_th, v_reset)


# the surrogate arguments only matter to the backward
_multistep_lif_cuda = register_cuda(_multistep_lif, "multistep_lif", _launch_forward,
                                    _forward_torch, _forward_supported)


@_multistep_lif.register_fake
def _(x, v0, decay, gain, v_th, v_reset, hard_reset, detach_reset, surrogate, hparams):
    return x.new_empty(x.shape), v0.new_empty(v0.shape), x.new_empty(x.shape)


# ---------------------------------------------------------------------------- backward op
#: Elements per time chunk of the backward pass: chunk-sized temporaries stay in cache.
_CHUNK_ELEMS = 1 << 16


def _sum_to(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return grad.sum_to_size(like.shape) if grad.shape != like.shape else grad


def _post_reset(h, v_th, v_reset, span, hard_reset):
    """The post-reset potentials V_t of pre-reset ones H_t (the forward's arithmetic)."""
    s = (h >= v_th).to(h.dtype)
    if hard_reset:
        return h - (h - v_reset) * s
    return h - span * s


def _backward_outputs(grads, needs, like):
    """The backward op's six outputs: gradients summed to their inputs' shapes; the ones not
    needed are fresh empty tensors (custom ops cannot return None, and outputs must not alias
    each other)."""
    return tuple(
        _sum_to(value, ref) if need else like[0].new_empty(0)
        for value, need, ref in zip(grads, needs, like, strict=True)
    )


def _multistep_lif_backward_torch(grad_spikes, grad_v, grad_h, h, v0, x, decay, gain, v_th,
                                  v_reset, hard_reset, detach_reset, surrogate, hparams, needs):
    """The pure-torch backward (CPU path; fallback on CUDA)."""
    n_x, n_v0, n_decay, n_gain, n_th, n_reset = needs
    T = h.shape[0]
    chunk = max(1, min(T, _CHUNK_ELEMS // max(1, h[0].numel())))
    sur = _surrogate(surrogate, tuple(hparams))
    span = v_th - v_reset  # D
    state = v0.shape
    acc_decay = torch.zeros(state, dtype=h.dtype, device=h.device) if n_decay else None
    acc_gain = torch.zeros(state, dtype=h.dtype, device=h.device) if n_gain else None
    acc_th = torch.zeros(state, dtype=h.dtype, device=h.device) if n_th else None
    acc_reset = torch.zeros(state, dtype=h.dtype, device=h.device) if n_reset else None
    dh = torch.empty_like(h)  # dL/dH_t; scaled in place into dL/dx_t chunk by chunk
    after = None  # dL/dH at the first step of the chunk after the current one (unscaled)
    for t1 in range(T, 0, -chunk):
        t0 = max(0, t1 - chunk)
        hc, dhc = h[t0:t1], dh[t0:t1]
        z = (hc - v_th) / span
        sg = sur.surrogate_grad(z)
        q = sg / span  # dS_t/dH_t
        # Direct gradients G_t = gS_t q_t + gH_t.
        if grad_spikes is not None:
            torch.mul(grad_spikes[t0:t1], q, out=dhc)
        else:
            dhc.zero_()
        if grad_h is not None:
            dhc.add_(grad_h[t0:t1])
        # k1_t = 1 + (dV_t/dS_t) q_t: 1 - sg (soft), 1 - (H - V_reset)/D sg (hard), 1 (detached).
        if detach_reset:
            k1 = None
        elif hard_reset:
            k1 = torch.addcmul(torch.ones_like(sg), (hc - v_reset) / span, sg, value=-1.0)
        else:
            k1 = torch.neg(sg).add_(1.0)
        # Link to what follows the chunk: gV_{t1-1} = a dH_{t1}, or grad_v at the last step.
        if t1 < T:
            link = after * decay
        else:
            link = grad_v
        if link is not None:
            dhc[-1].add_(link if k1 is None else link * k1[-1])
        k = decay if k1 is None else k1.mul_(decay)  # a k1_t
        for i in range(t1 - t0 - 2, -1, -1):
            dhc[i].addcmul_(dhc[i + 1], k if k1 is None else k[i])
        # Parameter gradients of the chunk (before dH is turned into dL/dx).
        if n_decay:
            # sum_t dH_t V_{t-1}; V_{-1} = v0.
            if t0 == 0:
                acc_decay.addcmul_(dhc[0], v0)
                if t1 > 1:
                    prev = _post_reset(h[0 : t1 - 1], v_th, v_reset, span, hard_reset)
                    acc_decay.add_((dhc[1:] * prev).sum(0))
            else:
                prev = _post_reset(h[t0 - 1 : t1 - 1], v_th, v_reset, span, hard_reset)
                acc_decay.add_((dhc * prev).sum(0))
        if n_gain:
            acc_gain.add_((dhc * x[t0:t1]).sum(0))
        if n_th or n_reset:
            # dL/dV_t (post-reset) of the chunk: a dH_{t+1}, the link at its last step.
            gv_post = torch.empty_like(hc)
            torch.mul(dhc[1:], decay, out=gv_post[:-1])
            if link is None:
                gv_post[-1].zero_()
            else:
                gv_post[-1] = link
            spike = (hc >= v_th).to(h.dtype)
            dl_ds = grad_spikes[t0:t1].clone() if grad_spikes is not None else (
                torch.zeros_like(hc))
            if not detach_reset:
                # dV_t/dS_t: -(V_th - V_reset) soft, V_reset - H_t hard.
                dl_ds.addcmul_(gv_post, (v_reset - hc) if hard_reset else torch.neg(span))
            dz = dl_ds.mul_(sg)
            reset_term = (gv_post * spike).sum(0)  # dV_t/dV_reset = S_t (both resets)
            if n_th:
                # dz/dV_th = -(H - V_reset)/D^2; soft reset: dV_t/dV_th = -S_t.
                acc_th.sub_((dz * (hc - v_reset)).sum(0) / (span * span))
                if not hard_reset:
                    acc_th.sub_(reset_term)
            if n_reset:
                # dz/dV_reset = z/D
                acc_reset.add_((dz * z).sum(0) / span).add_(reset_term)
        after = dhc[0].clone()
        if n_x:
            dhc.mul_(gain)

    grads = (dh, after * decay if n_v0 else None, acc_decay, acc_gain, acc_th, acc_reset)
    return _backward_outputs(grads, needs, (h, v0, decay, gain, v_th, v_reset))


@torch.library.custom_op("torchbrain::multistep_lif_backward", mutates_args=())
def _multistep_lif_backward(
    grad_spikes: torch.Tensor | None,
    grad_v: torch.Tensor | None,
    grad_h: torch.Tensor | None,
    h: torch.Tensor,
    v0: torch.Tensor,
    x: torch.Tensor | None,
    decay: torch.Tensor,
    gain: torch.Tensor,
    v_th: torch.Tensor,
    v_reset: torch.Tensor,
    hard_reset: bool,
    detach_reset: bool,
    surrogate: str,
    hparams: list[float],
    needs: list[bool],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return _multistep_lif_backward_torch(grad_spikes, grad_v, grad_h, h, v0, x, decay, gain,
                                         v_th, v_reset, hard_reset, detach_reset, surrogate,
                                         hparams, needs)


def _launch_backward(K, grad_spikes, grad_v, grad_h, h, v0, x, decay, gain, v_th, v_reset,
                     hard_reset, detach_reset, surrogate, hparams, needs):
    # the kernel computes the derivative of the common surrogates itself (fused_surrogate);
    # for the others it reads surrogate_grad evaluated with torch
    sur = _surrogate(surrogate, tuple(hparams))
    grads = K.multistep_lif_backward(
        grad_spikes, grad_v, grad_h, h, v0, x, decay, gain, v_th, v_reset, hard_reset,
        detach_reset, sur.surrogate_grad, needs, fused=fused_surrogate(sur),
    )
    return _backward_outputs(grads, needs, (h, v0, decay, gain, v_th, v_reset))


def _backward_supported(grad_spikes, grad_v, grad_h, h, v0, x, decay, gain, v_th, v_reset,
                        *_flags):
    return _kernel_supports(h, v0, x, decay, gain, v_th, v_reset, grad_spikes, grad_v, grad_h)


_multistep_lif_backward_cuda = register_cuda(_multistep_lif_backward, "multistep_lif",
                                             _launch_backward, _multistep_lif_backward_torch,
                                             _backward_supported)


@_multistep_lif_backward.register_fake
def _(grad_spikes, grad_v, grad_h, h, v0, x, decay, gain, v_th, v_reset, hard_reset,
      detach_reset, surrogate, hparams, needs):
    like = (h, v0, decay, gain, v_th, v_reset)
    return tuple(
        t.new_empty(t.shape) if need else h.new_empty(0)
        for t, need in zip(like, needs, strict=True)
    )


def _setup_context(ctx, inputs, output):
    x, v0, decay, gain, v_th, v_reset, hard_reset, detach_reset, surrogate, hparams = inputs
    _, _, h = output
    ctx.keep_x = gain.requires_grad
    # Unused outputs (often v and h) get None instead of a materialised zero tensor.
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(h, v0, x if ctx.keep_x else None, decay, gain, v_th, v_reset)
    ctx.config = (hard_reset, detach_reset, surrogate, list(hparams))


def _backward(ctx, grad_spikes, grad_v, grad_h):
    h, v0, x, decay, gain, v_th, v_reset = ctx.saved_tensors
    needs = [bool(n) for n in ctx.needs_input_grad[:6]]
    if not any(needs):
        return (None,) * 10
    grads = _multistep_lif_backward(
        grad_spikes, grad_v, grad_h, h, v0, x, decay, gain, v_th, v_reset, *ctx.config, needs
    )
    return tuple(g if n else None for g, n in zip(grads, needs, strict=True)) + (None,) * 4


_multistep_lif.register_autograd(_backward, setup_context=_setup_context)


# ------------------------------------------------------------------------------ public API
def _as_param(value, like: torch.Tensor, name: str, state_shape) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        value = torch.tensor(float(value), dtype=like.dtype, device=like.device)
    if value.dtype != like.dtype:
        raise TypeError(
            f"multistep_lif: '{name}' has dtype {value.dtype} but the input has {like.dtype}; "
            "cast them to one floating dtype"
        )
    try:
        shape = torch.broadcast_shapes(value.shape, state_shape)
    except RuntimeError:
        shape = None
    if shape is None or tuple(shape) != tuple(state_shape):
        raise ValueError(
            f"multistep_lif: '{name}' of shape {tuple(value.shape)} does not broadcast to the "
            f"state shape {tuple(state_shape)}"
        )
    return value


def multistep_lif(
    x: torch.Tensor,
    v0: torch.Tensor,
    decay,
    gain,
    v_th,
    v_reset,
    *,
    spk_fun: Surrogate | str | None = None,
    hard_reset: bool = False,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``T`` LIF steps in one fused op (see the module docstring for the equations).

    Parameters
    ----------
    x : Tensor, shape ``(T, *S)``
        Input at every step (the potential it drives, in mV; ``b x_t`` is added to ``H_t``).
    v0 : Tensor, shape ``S``
        Membrane potential after the reset of the step before the first (mV).
    decay, gain : Tensor or float
        ``a`` and ``b``, broadcastable to ``S`` (dimensionless).
    v_th, v_reset : Tensor or float
        Threshold and reset potential (mV), broadcastable to ``S``; ``v_th > v_reset``.
    spk_fun : Surrogate or str, default ``ReluGrad()``
        Spike function; its class must be importable by its path (see :func:`surrogate_key`).
    hard_reset : bool
        Hard reset (to ``v_reset``) instead of the soft one (subtract ``v_th - v_reset``).
    detach_reset : bool
        Stop the gradient through the spike in the reset term.

    Returns
    -------
    spikes : Tensor ``(T, *S)``
    v : Tensor ``S``, the potential after the last step's reset
    h : Tensor ``(T, *S)``, the pre-reset potentials
    """
    from ..surrogate import ReluGrad

    spk = ReluGrad() if spk_fun is None else get_surrogate(spk_fun)
    key = surrogate_key(spk)
    if key is None:
        raise ValueError(
            f"multistep_lif: the surrogate {spk!r} cannot be found again by its class path; "
            "define the class at module level, or use multistep_lif_reference"
        )
    if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() >= 1):
        raise TypeError("multistep_lif: 'x' must be a floating tensor of shape (T, *S)")
    if not isinstance(v0, torch.Tensor) or tuple(v0.shape) != tuple(x.shape[1:]):
        raise ValueError(
            f"multistep_lif: 'v0' must have the state shape {tuple(x.shape[1:])}, got "
            f"{tuple(getattr(v0, 'shape', ()))}"
        )
    if v0.dtype != x.dtype:
        raise TypeError(f"multistep_lif: 'v0' has dtype {v0.dtype} but 'x' has {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError("multistep_lif: zero time steps")
    state_shape = v0.shape
    decay = _as_param(decay, x, "decay", state_shape)
    gain = _as_param(gain, x, "gain", state_shape)
    v_th = _as_param(v_th, x, "v_th", state_shape)
    v_reset = _as_param(v_reset, x, "v_reset", state_shape)
    return _multistep_lif(
        x, v0, decay, gain, v_th, v_reset, bool(hard_reset), bool(detach_reset), key[0], key[1]
    )


def multistep_lif_reference(
    x: torch.Tensor,
    v0: torch.Tensor,
    decay,
    gain,
    v_th,
    v_reset,
    *,
    spk_fun: Surrogate | str | None = None,
    hard_reset: bool = False,
    detach_reset: bool = False,
    return_h: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The same recurrence as :func:`multistep_lif`, step by step under autograd.

    The unfused path of the layers (any surrogate, any callable spike function, double
    backward) and the reference the fused op is tested against. The input is sliced with
    ``unbind(0)`` (an ``O(T)`` backward). Returns ``(spikes, v, h)``; ``h`` is ``None`` when
    ``return_h`` is false (then the pre-reset potentials are not stacked).
    """
    from ..surrogate import ReluGrad

    spk = ReluGrad() if spk_fun is None else (
        spk_fun if callable(spk_fun) and not isinstance(spk_fun, str) else get_surrogate(spk_fun)
    )
    span = v_th - v_reset
    drive = x * gain
    v = v0
    spikes, hs = [], []
    for drive_t in drive.unbind(0):
        h = decay * v + drive_t
        s = spk((h - v_th) / span)
        v = lif_reset(h, s.detach() if detach_reset else s, v_th, v_reset, hard_reset)
        spikes.append(s)
        if return_h:
            hs.append(h)
    return torch.stack(spikes), v, (torch.stack(hs) if return_h else None)
