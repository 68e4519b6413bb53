r"""Triton kernels for the fused multi-step LIF op (``torchbrain::multistep_lif``).

The op (:func:`torchbrain.ops.multistep_lif`) runs ``T`` steps of a layer of leaky
integrate-and-fire neurons on an input ``x`` of shape ``(T, *S)``; with ``a`` (decay), ``b``
(gain), :math:`V_\mathrm{th}`, :math:`V_\mathrm{reset}` broadcast to ``S`` and
:math:`D = V_\mathrm{th} - V_\mathrm{reset}`:

.. math::

    H_t = a V_{t-1} + b x_t, \qquad S_t = \Theta(H_t - V_\mathrm{th}), \qquad
    V_t = \begin{cases} H_t - D\,S_t & \text{soft reset} \\
                        H_t - (H_t - V_\mathrm{reset})\,S_t & \text{hard reset.} \end{cases}

Every neuron is independent of the others, so both kernels give each program a block of
``BLOCK`` flattened state elements and loop over time inside the program; the state stays in
registers, and one launch replaces the ``3-4 T`` launches of the torch loop.

Forward (:func:`multistep_lif_forward`): per element, ``a, b, V_th, V_reset`` and ``v0`` are
loaded once, then for ``t = 0 .. T-1`` the kernel reads ``x_t``, writes ``S_t`` (0/1 in ``x``'s
dtype) and ``H_t``, and finally ``V_T``. The input is read three steps ahead of its use (manual
prefetch: the recurrence only depends on ``V``, so the loads of later steps need not wait for
it; this keeps four steps of loads in flight). Same operations in the same order as the torch
path: ``b x_t`` first, then ``+ a V_{t-1}``; ``S_t = H_t >= V_th``; the reset as
``H + S (-(V_th - V_reset))`` (soft) or ``H - (H - V_reset) S`` (hard).

Backward (:func:`multistep_lif_backward`), exact BPTT from the saved ``H``. With
:math:`g_t = g(z_t)`, :math:`z_t = (H_t - V_\mathrm{th})/D` the surrogate derivative,
:math:`q_t = g_t/D`, the incoming gradients :math:`\bar S_t, \bar H_t, \bar V_T` and
:math:`k_t = 1 - g_t` (soft), :math:`1 - \frac{H_t - V_\mathrm{reset}}{D} g_t` (hard) or ``1``
(``detach_reset``):

.. math::

    \bar V_{T-1} = \bar V_T, \qquad
    \bar H_t = \bar S_t q_t + \bar H_t^\mathrm{out} + \bar V_t k_t, \qquad
    \bar V_{t-1} = a \bar H_t,

where :math:`\bar V_t` is the gradient of the post-reset potential. The surrogate derivative
``g`` is evaluated one of two ways:

* inside the kernel, for the formulas of :data:`SURROGATE_FORMULAS` (the caller passes
  ``fused=(formula, constants)``; :func:`torchbrain.ops.multistep_lif.fused_surrogate` matches
  the surrogate classes exactly): a ``constexpr`` id selects the formula and up to three
  constants derived from the hyperparameters are scalar arguments, so the backward reads each
  ``H_t`` once and runs as one launch over all ``T`` steps. Each formula repeats the class's
  ``_grad`` operation by operation, with the same roundings as the torch ops it replaces
  (constants computed in float64 as in ``_grad``, then rounded to the data dtype like a Python
  scalar in torch; ``c / t`` as torch's ``reciprocal(t) * c``; no multiply-add contraction;
  correctly rounded float32 division). The rational ones are bit-identical to
  ``surrogate_grad`` on the CPU; those with ``exp`` differ by the ``exp`` implementations
  (on the GPU libdevice's, within 2 ulp; ``tl.exp`` of float32 would be ``ex2.approx`` and
  lose ``|x| 2^{-24}`` relative);
* otherwise (every other surrogate, user subclasses, a bare callable) with torch: the launcher
  evaluates ``g`` (the ``surrogate_grad`` callable it is given) for a chunk of time steps at once
  and the kernel reads it, running the recurrence chunk by chunk and carrying :math:`\bar V`
  between chunks in an ``S``-sized buffer.

In the same pass the kernel writes :math:`\partial L/\partial x_t = b \bar H_t` and
accumulates per element

* ``decay``: :math:`\sum_t \bar H_t V_{t-1}` (``V_{t-1}`` recomputed from ``H_{t-1}``,
  ``V_{-1} = v0``),
* ``gain``: :math:`\sum_t \bar H_t x_t`,
* for ``V_th`` / ``V_reset``: with :math:`\bar z_t = g_t (\bar S_t + \bar V_t\,
  \partial V_t/\partial S_t)` (the second term absent with ``detach_reset``),
  :math:`\sum_t \bar z_t (H_t - V_\mathrm{reset})`, :math:`\sum_t \bar z_t z_t` and
  :math:`\sum_t \bar V_t S_t`,

which the launcher turns into the parameter gradients
:math:`\bar V_\mathrm{th} = -\sum \bar z (H - V_\mathrm{reset}) / D^2 - [\text{soft}]\sum \bar V S`
and :math:`\bar V_\mathrm{reset} = \sum \bar z z / D + \sum \bar V S`, the same formulas as the
torch path. Summing them to the parameters' shapes is left to the caller.

Gradients that do not change along time (stride 0 on the time axis, e.g. the gradient of
``spikes.sum()``) are read as one ``S``-sized slice instead of being materialised.

Dtypes: float32 and float64, computed in the input dtype. float16/bfloat16 are not handled
here (the op keeps its torch path for them): the backward recomputes ``V`` from the stored
``H``, which is only consistent with the forward when both round every operation to the
storage dtype, as the torch path does; a kernel holding the state in float32 would break that.

The launchers take CUDA tensors, or CPU tensors when Triton's interpreter is on
(``TRITON_INTERPRET=1`` set before this module is imported); the tests use the latter.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

__all__ = [
    "multistep_lif_forward",
    "multistep_lif_backward",
    "block_size",
    "SURROGATE_FORMULAS",
    "SUPPORTED_DTYPES",
]

#: Dtypes the kernels compute in.
SUPPORTED_DTYPES = (torch.float32, torch.float64)
#: Block sizes tried on a GPU, largest first (elements of the state per program).
GPU_BLOCKS = (512, 256, 128)
#: A GPU block size is taken when it still gives this many programs per multiprocessor.
PROGRAMS_PER_SM = 2
#: Elements per thread (4 float32 = one 16-byte vector access).
ELEMENTS_PER_THREAD = 4
#: Largest block on the interpreter (numpy runs one program per Python iteration).
INTERPRETER_BLOCK = 1024
#: Elements (time steps x state) of the surrogate derivative evaluated per backward chunk
#: (torch pre-pass only; a surrogate evaluated in the kernel needs no buffer and no chunks).
BACKWARD_CHUNK_ELEMS = 1 << 24

# Surrogate ids of the backward kernel (its SURROGATE constexpr); 0: g is read from the torch
# pre-pass. (Globals read inside @triton.jit must be tl.constexpr.)
_PREPASS = tl.constexpr(0)
_RELU_GRAD = tl.constexpr(1)
_SIGMOID = tl.constexpr(2)
_ARCTAN = tl.constexpr(3)
_INV_SQUARE = tl.constexpr(4)  # SuperSpike (= FastSigmoid) and InvSquareGrad: one formula
_GAUSSIAN = tl.constexpr(5)
_PIECEWISE_QUADRATIC = tl.constexpr(6)
_PIECEWISE_LEAKY_RELU = tl.constexpr(7)
_LEAKY_RELU = tl.constexpr(8)
_SOFT_SIGN = tl.constexpr(9)
_ERF = tl.constexpr(10)
_PIECEWISE_EXP = tl.constexpr(11)
_SLAYER = tl.constexpr(12)
_NONZERO_SIGN_LOG = tl.constexpr(13)
_LOG_TAILED_RELU = tl.constexpr(14)

#: The surrogate derivatives the backward kernel computes itself, by formula name (the callers'
#: ``fused=(name, constants)``; :func:`torchbrain.ops.multistep_lif.fused_surrogate` maps the
#: classes of :mod:`torchbrain.surrogate` onto them). The constants c0, c1, c2 of each formula
#: are those of ``_surrogate_grad`` below.
SURROGATE_FORMULAS = {
    "relu_grad": int(_RELU_GRAD.value), "sigmoid": int(_SIGMOID.value),
    "arctan": int(_ARCTAN.value), "inv_square": int(_INV_SQUARE.value),
    "gaussian": int(_GAUSSIAN.value), "piecewise_quadratic": int(_PIECEWISE_QUADRATIC.value),
    "piecewise_leaky_relu": int(_PIECEWISE_LEAKY_RELU.value),
    "leaky_relu": int(_LEAKY_RELU.value), "soft_sign": int(_SOFT_SIGN.value),
    "erf": int(_ERF.value), "piecewise_exp": int(_PIECEWISE_EXP.value),
    "slayer": int(_SLAYER.value), "nonzero_sign_log": int(_NONZERO_SIGN_LOG.value),
    "log_tailed_relu": int(_LOG_TAILED_RELU.value),
}


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------
# Only core language operations are used (tl.load/store/where/div_rn/full); none of Triton's
# @jit library functions, which run under the interpreter only if TRITON_INTERPRET=1 was set
# before Triton's first import (see kernels/NOTES.md). T, t0 and t1 are loop bounds only and are
# not specialised on; S is (divisibility by 16 lets the per-step loads become 16-byte vectors).


@triton.jit
def _div(a, b):
    # float32: the correctly rounded quotient, as torch computes it (Triton's `/` on float32 is
    # the faster, not correctly rounded division); float64 `/` is already correctly rounded
    if a.dtype == tl.float32:
        return tl.div_rn(a, b)
    else:
        return a / b


@triton.jit
def _exp(x, LIBDEVICE: tl.constexpr):
    # tl.exp of float32 compiles to ex2.approx(x log2(e)), whose error grows with |x| (the
    # product's rounding: ~|x| 2^-24 relative, tens of ulp in a Gaussian's tail); libdevice's
    # expf stays within 2 ulp. The interpreter has no libdevice (its tl.exp is numpy's).
    if LIBDEVICE:
        return libdevice.exp(x)
    else:
        return tl.exp(x)


@triton.jit
def _clamp_min_zero(x):
    # torch.clamp_min(x, 0.0): NaN stays NaN (tl.maximum would return 0 on the GPU)
    return tl.where(x < 0, 0.0, x)


@triton.jit
def _surrogate_grad(z, c0, c1, c2, one, SURROGATE: tl.constexpr, LIBDEVICE: tl.constexpr):
    """g(z) of the surrogate SURROGATE, operation by operation as its `_grad` in torch.

    c0, c1, c2: the constants of the caller's `fused=` in the data dtype; `one`: 1 in that dtype
    (for the reciprocals: torch evaluates `c / t` as `reciprocal(t) * c`)."""
    if SURROGATE == _RELU_GRAD:  # alpha max(width - |z|, 0); c = alpha, width
        g = c0 * _clamp_min_zero(c1 - tl.abs(z))
    elif SURROGATE == _SIGMOID:  # alpha s (1 - s), s = 1 / (1 + exp(-alpha z)); c = alpha
        s = _div(one, 1.0 + _exp(-(c0 * z), LIBDEVICE))
        g = (c0 * s) * (1.0 - s)
    elif SURROGATE == _ARCTAN:  # (alpha/2) / (1 + (pi alpha z / 2)^2); c = alpha/2, pi alpha/2
        u = c1 * z
        g = _div(one, 1.0 + u * u) * c0
    elif SURROGATE == _INV_SQUARE:  # 1 / (alpha |z| + 1)^2; c = alpha
        d = c0 * tl.abs(z) + 1.0
        g = _div(one, d * d)
    elif SURROGATE == _GAUSSIAN:  # alpha N(z; 0, sigma); c = sigma, sqrt(2 pi) sigma, alpha
        u = _div(z, c0)
        g = c2 * _div(_exp(-0.5 * (u * u), LIBDEVICE), c1)
    elif SURROGATE == _PIECEWISE_QUADRATIC:  # max(alpha - alpha^2 |z|, 0); c = alpha, alpha^2
        g = _clamp_min_zero(c0 - c1 * tl.abs(z))
    elif SURROGATE == _PIECEWISE_LEAKY_RELU:  # |z| > w ? c : 1/w; c = c, w, 1/w
        g = tl.where(tl.abs(z) > c1, c0, c2)
    elif SURROGATE == _LEAKY_RELU:  # z >= 0 ? beta : alpha; c = alpha, beta
        g = tl.where(z >= 0, c1, c0)
    elif SURROGATE == _SOFT_SIGN:  # alpha / (2 (1 + |alpha z|)^2); c = alpha
        d = 1.0 + tl.abs(c0 * z)
        g = _div(one, 2.0 * (d * d)) * c0
    elif SURROGATE == _ERF:  # alpha/sqrt(pi) exp(-(alpha z)^2); c = alpha, alpha/sqrt(pi)
        u = c0 * z
        g = c1 * _exp(-(u * u), LIBDEVICE)
    elif SURROGATE == _PIECEWISE_EXP:  # alpha/2 exp(-alpha |z|); c = -alpha, alpha/2
        g = c1 * _exp(c0 * tl.abs(z), LIBDEVICE)
    elif SURROGATE == _SLAYER:  # exp(-alpha |z|); c = -alpha
        g = _exp(c0 * tl.abs(z), LIBDEVICE)
    elif SURROGATE == _NONZERO_SIGN_LOG:  # 1 / (1/alpha + |z|); c = 1/alpha
        g = _div(one, tl.abs(z) + c0)
    else:  # _LOG_TAILED_RELU: z > 1 ? 1/z : (z <= 0 ? alpha : 1); c = alpha
        tail = z > 1.0
        # 1/z only where it is used, as in torch (no division by zero elsewhere)
        g = tl.where(tail, _div(one, tl.where(tail, z, one)), tl.where(z <= 0, c0, one))
    return g


@triton.jit(do_not_specialize=["T"])
def _forward_kernel(x_ptr, v0_ptr, a_ptr, b_ptr, th_ptr, reset_ptr, spikes_ptr, h_ptr, v_ptr,
                    S, T, HARD: tl.constexpr, BLOCK: tl.constexpr):
    # int64 offsets and pointer increments: T * S may pass 2**31
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < S
    a = tl.load(a_ptr + offs, mask=m, other=0)
    b = tl.load(b_ptr + offs, mask=m, other=0)
    th = tl.load(th_ptr + offs, mask=m, other=0)
    rs = tl.load(reset_ptr + offs, mask=m, other=0)
    neg_span = -(th - rs)  # the torch path's `amount`
    v = tl.load(v0_ptr + offs, mask=m, other=0)
    # Loads run three steps ahead of their use: nothing in x depends on the state. (The step
    # index is compared as a tensor: the interpreter refuses a Python bool inside a mask.)
    step = tl.full((BLOCK,), 0, tl.int32)
    xp = x_ptr + offs
    x0 = tl.load(xp, mask=m, other=0)
    xp += S
    x1 = tl.load(xp, mask=m & (step + 1 < T), other=0)
    xp += S
    x2 = tl.load(xp, mask=m & (step + 2 < T), other=0)
    hp = h_ptr + offs
    sp = spikes_ptr + offs
    for t in range(0, T):
        xp += S
        x3 = tl.load(xp, mask=m & (step + t + 3 < T), other=0)
        # b x_t rounded, then one fused multiply-add: torch's addcmul_ rounds a V + b x once
        h = tl.fma(v, a, x0 * b)
        s = (h >= th).to(h.dtype)
        if HARD:
            v = h - (h - rs) * s
        else:
            v = h + s * neg_span
        tl.store(hp, h, mask=m)
        tl.store(sp, s.to(spikes_ptr.dtype.element_ty), mask=m)
        hp += S
        sp += S
        x0 = x1
        x1 = x2
        x2 = x3
    tl.store(v_ptr + offs, v, mask=m)


@triton.jit(do_not_specialize=["t0", "t1"])
def _backward_kernel(h_ptr, sg_ptr, gs_ptr, gh_ptr, x_ptr, v0_ptr, a_ptr, b_ptr, th_ptr,
                     reset_ptr, gv_ptr, dx_ptr, acc_a_ptr, acc_b_ptr, acc_th_ptr, acc_z_ptr,
                     acc_r_ptr, S, t0, t1, gs_step, gh_step,
                     c0: tl.float64, c1: tl.float64, c2: tl.float64,
                     SURROGATE: tl.constexpr, LIBDEVICE: tl.constexpr,
                     HAS_GS: tl.constexpr, HAS_GH: tl.constexpr, HARD: tl.constexpr,
                     DETACH: tl.constexpr, NEED_X: tl.constexpr, NEED_A: tl.constexpr,
                     NEED_B: tl.constexpr, NEED_TH_RESET: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < S
    a = tl.load(a_ptr + offs, mask=m, other=0)
    b = tl.load(b_ptr + offs, mask=m, other=0)
    th = tl.load(th_ptr + offs, mask=m, other=0)
    rs = tl.load(reset_ptr + offs, mask=m, other=0)
    span = th - rs
    # padding lanes get span 1 so that no division below makes a NaN there
    span = tl.where(m, span, 1.0)
    zero = tl.full((BLOCK,), 0, h_ptr.dtype.element_ty)
    step = tl.full((BLOCK,), 0, tl.int32)  # the step index as a tensor (see the forward)
    if SURROGATE != _PREPASS:
        # the surrogate's constants, float64 arguments rounded to the data dtype here (as torch
        # rounds a Python scalar; a Python float argument would be float32 in Triton)
        one = tl.full((BLOCK,), 1, h_ptr.dtype.element_ty)
        k0 = tl.full((BLOCK,), c0, h_ptr.dtype.element_ty)
        k1 = tl.full((BLOCK,), c1, h_ptr.dtype.element_ty)
        k2 = tl.full((BLOCK,), c2, h_ptr.dtype.element_ty)
    gv = tl.load(gv_ptr + offs, mask=m, other=0)  # dL/dV_{t1-1}, post-reset
    if NEED_A:
        v0 = tl.load(v0_ptr + offs, mask=m, other=0)
        acc_a = tl.load(acc_a_ptr + offs, mask=m, other=0)
    if NEED_B:
        acc_b = tl.load(acc_b_ptr + offs, mask=m, other=0)
    if NEED_TH_RESET:
        acc_th = tl.load(acc_th_ptr + offs, mask=m, other=0)
        acc_z = tl.load(acc_z_ptr + offs, mask=m, other=0)
        acc_r = tl.load(acc_r_ptr + offs, mask=m, other=0)
    last = (t1 - 1).to(tl.int64)
    hp = h_ptr + last * S + offs
    sgp = sg_ptr + (last - t0) * S + offs  # sg holds the chunk [t0, t1) only
    xp = x_ptr + last * S + offs
    dxp = dx_ptr + last * S + offs
    gsp = gs_ptr + last * gs_step + offs  # step 0: a time-invariant gradient
    ghp = gh_ptr + last * gh_step + offs
    h = tl.load(hp, mask=m, other=0)
    for t in range(t1 - 1, t0 - 1, -1):
        # H_{t-1}: V_{t-1} for the decay gradient now, H of the next iteration after that
        hp -= S
        h_prev = tl.load(hp, mask=m & (step + t > 0), other=0)
        z = _div(h - th, span)
        if SURROGATE == _PREPASS:
            sg = tl.load(sgp, mask=m, other=0)
        else:
            sg = _surrogate_grad(z, k0, k1, k2, one, SURROGATE, LIBDEVICE)
        g = zero
        if HAS_GS:
            gs = tl.load(gsp, mask=m, other=0)
            g = gs * _div(sg, span)
        if HAS_GH:
            g = g + tl.load(ghp, mask=m, other=0)
        if DETACH:
            dh = g + gv
        elif HARD:
            dh = g + gv * (1.0 - _div(h - rs, span) * sg)
        else:
            dh = g + gv * (1.0 - sg)
        if NEED_A:
            s_prev = (h_prev >= th).to(h_prev.dtype)
            if HARD:
                v_prev = h_prev - (h_prev - rs) * s_prev
            else:
                v_prev = h_prev - span * s_prev
            v_prev = tl.where(step + t > 0, v_prev, v0)
            acc_a += dh * v_prev
        if NEED_B:
            acc_b += dh * tl.load(xp, mask=m, other=0)
        if NEED_TH_RESET:
            if HAS_GS:
                dl_ds = gs
            else:
                dl_ds = zero
            if not DETACH:  # dV_t/dS_t: V_reset - H_t (hard), -(V_th - V_reset) (soft)
                if HARD:
                    dl_ds = dl_ds + gv * (rs - h)
                else:
                    dl_ds = dl_ds - gv * span
            dz = dl_ds * sg
            acc_th += dz * (h - rs)
            acc_z += dz * z
            acc_r += tl.where(h >= th, gv, zero)
        if NEED_X:
            tl.store(dxp, b * dh, mask=m)
        gv = a * dh
        h = h_prev
        sgp -= S
        xp -= S
        dxp -= S
        gsp -= gs_step
        ghp -= gh_step
    tl.store(gv_ptr + offs, gv, mask=m)  # a dH_{t0} = dL/dV_{t0-1}
    if NEED_A:
        tl.store(acc_a_ptr + offs, acc_a, mask=m)
    if NEED_B:
        tl.store(acc_b_ptr + offs, acc_b, mask=m)
    if NEED_TH_RESET:
        tl.store(acc_th_ptr + offs, acc_th, mask=m)
        tl.store(acc_z_ptr + offs, acc_z, mask=m)
        tl.store(acc_r_ptr + offs, acc_r, mask=m)


# --------------------------------------------------------------------------------------------
# launchers
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _multiprocessors(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def block_size(S: int, device: torch.device) -> int:
    """State elements per program for ``S`` neurons on ``device``.

    On a GPU the largest of :data:`GPU_BLOCKS` that still gives :data:`PROGRAMS_PER_SM`
    programs per multiprocessor (the time loop is sequential, so small layers need small
    blocks to occupy the card), else the smallest. On the interpreter: ``S`` rounded up to a
    power of two, at most :data:`INTERPRETER_BLOCK`.
    """
    if device.type != "cuda":
        return min(INTERPRETER_BLOCK, triton.next_power_of_2(max(S, 1)))
    index = device.index if device.index is not None else torch.cuda.current_device()
    wanted = PROGRAMS_PER_SM * _multiprocessors(index)
    for block in GPU_BLOCKS:
        if triton.cdiv(S, block) >= wanted:
            return block
    return GPU_BLOCKS[-1]


def _launch_options(S: int, device: torch.device, block: int | None,
                    fp_fusion: bool) -> tuple[int, dict]:
    block = block or block_size(S, device)
    if block & (block - 1):
        raise ValueError(f"torchbrain.kernels.multistep_lif: 'block' must be a power of two, "
                         f"got {block}")
    options = {}
    if device.type == "cuda":
        options["num_warps"] = max(1, min(8, block // (32 * ELEMENTS_PER_THREAD)))
        # Pinned rather than left to TRITON_DEFAULT_FP_FUSION, whose default changes in Triton
        # 3.10. The forward writes the one fma that must match torch as an explicit tl.fma;
        # the backward turns contraction off, so that the surrogate formulas keep the
        # roundings of torch's separate elementwise ops (`alpha - alpha^2 |z|` contracted to
        # an fma would change g near the edge of its support, where it cancels to 0).
        options["enable_fp_fusion"] = fp_fusion
    return block, options


def _interpreted() -> bool:
    """Whether this module's kernels were built for Triton's interpreter."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(_forward_kernel, InterpretedFunction)


def _check_device(x: torch.Tensor) -> None:
    if x.device.type != "cuda" and not _interpreted():
        raise ValueError(
            "torchbrain.kernels.multistep_lif: the kernels need CUDA tensors (or Triton's "
            f"interpreter, TRITON_INTERPRET=1 before this module is imported); got {x.device}"
        )
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"torchbrain.kernels.multistep_lif: dtype must be float32 or float64, "
                        f"got {x.dtype}")


def _per_element(p: torch.Tensor, state: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """A parameter that broadcasts to the state shape as a contiguous ``S``-sized tensor."""
    return p.to(device=like.device, dtype=like.dtype).expand(state).contiguous()


def multistep_lif_forward(x: torch.Tensor, v0: torch.Tensor, decay: torch.Tensor,
                          gain: torch.Tensor, v_th: torch.Tensor, v_reset: torch.Tensor,
                          hard_reset: bool, *, block: int | None = None):
    """The op's forward in one kernel launch (same contract as ``torchbrain::multistep_lif``).

    Parameters
    ----------
    x : Tensor ``(T, *S)``, float32 or float64
        Input of every step (mV).
    v0 : Tensor ``S``
        Potential after the previous step's reset (mV).
    decay, gain, v_th, v_reset : Tensor
        ``a``, ``b`` (dimensionless), threshold and reset (mV), each broadcastable to ``S``.
    hard_reset : bool
        Reset to ``v_reset`` instead of subtracting ``v_th - v_reset``.
    block : int, optional
        State elements per program (a power of two; default :func:`block_size`).

    Returns
    -------
    spikes : Tensor ``(T, *S)`` (0/1 in ``x``'s dtype), v : Tensor ``S`` (``V_T``),
    h : Tensor ``(T, *S)`` (pre-reset potentials)
    """
    _check_device(x)
    state = v0.shape
    T, S = x.shape[0], v0.numel()
    x = x.contiguous()
    spikes = torch.empty_like(x, memory_format=torch.contiguous_format)
    h = torch.empty_like(x, memory_format=torch.contiguous_format)
    if T == 0 or S == 0:
        return spikes, v0.clone(memory_format=torch.contiguous_format), h
    v = torch.empty(state, dtype=x.dtype, device=x.device)
    a, b, th, rs = (_per_element(p, state, x) for p in (decay, gain, v_th, v_reset))
    block, options = _launch_options(S, x.device, block, fp_fusion=True)
    _forward_kernel[(triton.cdiv(S, block),)](
        x, v0.to(x.dtype).contiguous(), a, b, th, rs, spikes, h, v, S, T,
        HARD=bool(hard_reset), BLOCK=block, **options,
    )
    return spikes, v, h


def _time_slices(grad: torch.Tensor | None, shape: torch.Size):
    """``(tensor, step)``: a time-invariant gradient as one slice with step 0, else contiguous."""
    if grad is None:
        return None, 0
    grad = grad.expand(shape)
    if grad.stride(0) == 0:  # e.g. the expanded gradient of spikes.sum()
        return grad[0].contiguous(), 0
    S = grad[0].numel()
    return grad.contiguous(), S


def multistep_lif_backward(grad_spikes: torch.Tensor | None, grad_v: torch.Tensor | None,
                           grad_h: torch.Tensor | None, h: torch.Tensor, v0: torch.Tensor,
                           x: torch.Tensor | None, decay: torch.Tensor, gain: torch.Tensor,
                           v_th: torch.Tensor, v_reset: torch.Tensor, hard_reset: bool,
                           detach_reset: bool, surrogate_grad: Callable | None, needs, *,
                           fused: tuple[str, tuple[float, ...]] | None = None,
                           block: int | None = None,
                           chunk_elems: int | None = None):
    """Exact BPTT of the op from the saved pre-reset potentials ``h``.

    Same contract as ``torchbrain::multistep_lif_backward``, except that the parameter
    gradients are returned per state element (shape ``S``; the caller sums them to the
    parameters' shapes) and gradients not asked for are ``None``.

    Parameters
    ----------
    grad_spikes, grad_h : Tensor ``(T, *S)`` or None
        Incoming gradients of the spikes and of ``h`` (``None``: zero). A stride of 0 on the
        time axis is read as one slice.
    grad_v : Tensor ``S`` or None
        Incoming gradient of ``V_T``.
    h, v0, x : Tensor
        The forward's ``h``, its ``v0`` and its input (``x`` only needed for the gain).
    decay, gain, v_th, v_reset : Tensor
        The forward's parameters (broadcastable to ``S``).
    hard_reset, detach_reset : bool
        The forward's reset flags.
    surrogate_grad : callable or None
        ``z -> g(z)``, the derivative of the spike function at ``z = (h - v_th) /
        (v_th - v_reset)``, evaluated with torch, chunk by chunk, before the kernel; not used
        (may be ``None``) when ``fused`` is given.
    needs : sequence of 6 bool
        Which gradients to compute: ``x, v0, decay, gain, v_th, v_reset``.
    fused : (str, tuple of float), optional
        ``(formula, constants)``: compute ``g`` inside the kernel instead (one launch, ``h`` read
        once) with the formula of :data:`SURROGATE_FORMULAS` and up to three constants
        (float64, rounded to the data dtype in the kernel).
    block : int, optional
        State elements per program (default :func:`block_size`).
    chunk_elems : int, optional
        Time steps x state elements of ``g`` evaluated at once by the torch pre-pass (default
        :data:`BACKWARD_CHUNK_ELEMS`); bounds the extra memory. Not used by a fused surrogate.

    Returns
    -------
    tuple of 6 (Tensor or None)
        ``dL/dx`` ``(T, *S)``, ``dL/dv0`` ``S``, then ``decay, gain, v_th, v_reset``
        gradients per element (shape ``S``).
    """
    _check_device(h)
    n_x, n_v0, n_decay, n_gain, n_th, n_reset = (bool(n) for n in needs)
    if n_gain and x is None:
        raise ValueError("torchbrain.kernels.multistep_lif: the gain gradient needs 'x', got "
                         "None")
    state = v0.shape
    T, S = h.shape[0], v0.numel()
    dtype, device = h.dtype, h.device
    h = h.contiguous()
    a, b, th, rs = (_per_element(p, state, h) for p in (decay, gain, v_th, v_reset))
    span = v_th - v_reset  # parameter-shaped, as in the torch path
    gs, gs_step = _time_slices(grad_spikes, h.shape)
    gh, gh_step = _time_slices(grad_h, h.shape)
    # dL/dV of the post-reset potential, carried between chunks (in: the step after the chunk)
    # (a copy: the kernel writes into it, and grad_v belongs to the caller)
    gv = (torch.zeros(state, dtype=dtype, device=device) if grad_v is None
          else grad_v.to(dtype).expand(state).clone(memory_format=torch.contiguous_format))
    dx = torch.empty_like(h) if n_x else None
    n_tr = n_th or n_reset

    def acc(flag):
        return torch.zeros(state, dtype=dtype, device=device) if flag else None

    acc_a, acc_b, acc_th, acc_z, acc_r = acc(n_decay), acc(n_gain), acc(n_tr), acc(n_tr), acc(
        n_tr)
    if T and S:
        x_c = x.contiguous() if n_gain else h
        v0_c = v0.to(dtype).contiguous()
        block, options = _launch_options(S, device, block, fp_fusion=False)
        if fused is None:
            if surrogate_grad is None:
                raise ValueError("torchbrain.kernels.multistep_lif: give 'surrogate_grad' or "
                                 "'fused', got neither")
            sid, constants = int(_PREPASS.value), (0.0, 0.0, 0.0)
            chunk = max(1, min(T, (chunk_elems or BACKWARD_CHUNK_ELEMS) // S))
        else:
            formula, values = fused
            if formula not in SURROGATE_FORMULAS or len(values) > 3:
                raise ValueError(f"torchbrain.kernels.multistep_lif: 'fused' must be (one of "
                                 f"{sorted(SURROGATE_FORMULAS)}, up to 3 constants), got "
                                 f"{fused!r}")
            sid = SURROGATE_FORMULAS[formula]
            constants = tuple(float(c) for c in values) + (0.0,) * (3 - len(values))
            chunk = T
        libdevice_exp = not _interpreted()
        for t1 in range(T, 0, -chunk):
            t0 = max(0, t1 - chunk)
            if fused is None:
                z = (h[t0:t1] - v_th) / span
                sg = torch.broadcast_to(surrogate_grad(z), z.shape).to(dtype).contiguous()
                del z
            else:
                sg = h  # not read
            _backward_kernel[(triton.cdiv(S, block),)](
                h, sg, h if gs is None else gs, h if gh is None else gh, x_c, v0_c, a, b, th, rs,
                gv, h if dx is None else dx,
                *(h if t is None else t for t in (acc_a, acc_b, acc_th, acc_z, acc_r)),
                S, t0, t1, gs_step, gh_step, *constants,
                SURROGATE=sid, LIBDEVICE=libdevice_exp,
                HAS_GS=gs is not None, HAS_GH=gh is not None, HARD=bool(hard_reset),
                DETACH=bool(detach_reset), NEED_X=n_x, NEED_A=n_decay, NEED_B=n_gain,
                NEED_TH_RESET=n_tr, BLOCK=block, **options,
            )
            del sg
    grad_th = grad_reset = None
    if n_th:
        grad_th = -(acc_th / (span * span))
        if not hard_reset:  # soft reset: dV_t/dV_th = -S_t
            grad_th = grad_th - acc_r
    if n_reset:
        grad_reset = acc_z / span + acc_r
    return (dx, gv if n_v0 else None, acc_a, acc_b, grad_th, grad_reset)
