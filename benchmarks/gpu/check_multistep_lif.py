"""GPU check of the fused multi-step LIF kernels: correctness first, then the layer benchmark.

Meant to be called by ``benchmarks/gpu/gpu_check.py`` (``run(check, log, sync, left, dry_run)``), or
run alone from the repository root::

    PYTHONUNBUFFERED=1 python benchmarks/gpu/check_multistep_lif.py [--budget 200] [--dry-run-cpu]

What :func:`run` does, in this order:

1. forward kernel (float64 and float32, soft and hard reset, per-neuron and scalar parameters,
   ragged state sizes, no input and all spiking) against the torch path on the same device and
   on the CPU. float64: spikes equal and ``h`` within 1e-12. float32: every step is checked
   locally (``H_t`` against ``a V_{t-1} + b x_t`` recomputed in float64 from the kernel's own
   ``H_{t-1}``, so one flipped spike near the threshold does not fail the whole trajectory),
   spikes are exactly ``H >= V_th``, and the share of values bit-equal to the torch paths is
   reported (expected 1.0: both round ``a V + b x`` once);
2. backward kernel against the torch path for every combination of hard/soft,
   ``detach_reset`` and which incoming gradients exist (which gradients are needed rotates
   through three sets, to bound the number of kernel variants compiled): float64 to
   1e-10, float32 three-way (kernel error <= 4 x torch float32 error + 1e-6 against the float64
   torch path on the same upcast inputs), with the surrogate derivative computed in the kernel
   and, for the same surrogates, by the torch pre-pass (the share of bit-equal values between
   the two is reported); time-invariant (stride-0) gradients; time chunking of the pre-pass;
   every surrogate the kernel computes against its ``surrogate_grad`` on the CPU on a grid
   with the kinks (exp-free formulas bit-identical, the others within 6 eps);
3. the op end to end through autograd on CUDA (the registered kernels) against autograd of
   ``multistep_lif_reference`` in float64 on the CPU, and the forward captured in a CUDA graph;
4. the Open Neuromorphic layer benchmark (``Linear(N, N)`` + ``MultiStepLIF``, ``N = 16384``,
   ``B = 16``, ``T = 500``, loss ``spikes.sum()``, forward + backward): Linear alone, Linear +
   fused LIF with the kernels, the same with ``TORCHBRAIN_DISABLE_KERNELS=1``; median of
   CUDA-event timings, ratio to the Linear alone; also the LIF op alone (kernels, kernels with
   the surrogate forced through the torch pre-pass, torch path). Each row names the layer's
   surrogate and whether the backward computed it in the kernel (``surrogate_in_kernel``).
   Once with the default float32 matmuls and once with TF32 allowed (the GEMMs get faster, so
   the LIF's share grows).

``dry_run=True`` runs the same code on CPU tensors through Triton's interpreter at tiny sizes
(the kernel glue is called directly, no CUDA graph, host-clock timings): it checks this script,
not the GPU, and its timings mean nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import math
import os
import statistics
import sys

from check_harness import call_times  # the sibling file (this directory is on sys.path)

#: The benchmark of torchbrain issue 6.
LAYER_N, LAYER_B, LAYER_T = 16384, 16, 500
#: The tiny stand-in used by the dry run.
DRY_N, DRY_B, DRY_T = 48, 2, 6


def run(check, log, sync, left, dry_run: bool = False, reps: int = 7, warmup: int = 2) -> dict:
    """Run the checks and the benchmark; returns a JSON-ready dict.

    Parameters
    ----------
    check : callable
        ``check(name)`` -> context manager that records PASS/FAIL of the block it wraps (an
        exception inside is a failure; the caller goes on with the next block).
    log : callable
        ``print``-like.
    sync : callable
        Waits for the device (no-op in the dry run).
    left : callable
        ``left()`` -> seconds of the caller's budget left; the benchmark is skipped below 60 s,
        its TF32 pass below 30 s.
    dry_run : bool
        CPU tensors through Triton's interpreter (which must be on for
        ``torchbrain.kernels.multistep_lif``), tiny sizes.
    reps, warmup : int
        Timed and untimed repetitions per benchmark row.
    """
    import torch

    from torchbrain import kernels

    ops = importlib.import_module("torchbrain.ops.multistep_lif")
    K = importlib.import_module("torchbrain.kernels.multistep_lif")
    if dry_run:
        from triton.runtime.interpreter import InterpretedFunction

        if not isinstance(K._forward_kernel, InterpretedFunction):
            raise RuntimeError("check_multistep_lif: the dry run needs the kernels imported with "
                               "TRITON_INTERPRET=1")
    dev = torch.device("cpu" if dry_run else "cuda")
    results: dict = {"checks": {}, "bench": []}
    gen = torch.Generator(device=dev).manual_seed(4321)
    sur = importlib.import_module("torchbrain.surrogate")

    def case(T, state, dtype=torch.float64, per_neuron=True, scale=1.5, offset=0.6, hard=False):
        n = state[-1]
        x = torch.randn(T, *state, generator=gen, device=dev, dtype=dtype) * scale + offset
        v0 = 0.3 * torch.randn(*state, generator=gen, device=dev, dtype=dtype)
        shape = (n,) if per_neuron else ()
        decay = torch.exp(-1.0 / (2.0 + torch.rand(shape, generator=gen, device=dev,
                                                   dtype=dtype)))
        gain = 1.0 - decay
        v_th = torch.tensor(1.0, device=dev, dtype=dtype)
        v_reset = -0.2 * torch.rand(shape, generator=gen, device=dev, dtype=dtype)
        return x, v0, decay, gain, v_th, v_reset

    def rel(a, ref):
        a, ref = a.double(), ref.double()
        if not torch.isfinite(a).all():
            return math.inf
        den = ref.norm().item()
        return (a - ref).norm().item() / (den if den > 0 else 1.0)

    def bit_share(a, b):
        return (a == b).double().mean().item() if a.numel() else 1.0

    def local_step_error(x, v0, decay, gain, v_th, v_reset, hard, out):
        """Largest step error of the kernel's own trajectory, in units of float32 rounding."""
        # the post-reset V in the kernel's own dtype and arithmetic (the reset's rounding is
        # not what is checked here; V = H - D can cancel, which would magnify it)
        post = ops._post_reset(out[2], v_th, v_reset, v_th - v_reset, hard).double()
        spikes, v, h = (t.double() for t in out)
        a, b, th = (p.double() for p in (decay, gain, v_th))
        assert torch.equal(spikes, (h >= th).double()), "spikes are not H >= V_th"
        prev = torch.cat([v0.double().unsqueeze(0), post[:-1]])
        expected = a * prev + b * x.double()
        scale = (a * prev).abs() + (b * x.double()).abs() + 1e-30
        step = ((h - expected).abs() / scale).max().item() / 2.0**-24
        end = ((v - post[-1]).abs() / (post[-1].abs() + 1e-30)).max().item() / 2.0**-24
        return max(step, end)

    # ------------------------------------------------------------------ 1. forward
    T_f = 6 if dry_run else 64
    fwd_cases = [((3, 37), True), ((2, 5), False)] if dry_run else [
        ((16, 999), True), ((4, 4099), False), ((1,), True), ((16, 16384), True)]
    for (state, per_neuron), hard in itertools.product(fwd_cases, (False, True)):
        name = f"msl forward state={state} per_neuron={per_neuron} hard={hard}"
        with check(name):
            row = {}
            for dtype in (torch.float64, torch.float32):
                args = case(T_f, state, dtype, per_neuron)
                out = K.multistep_lif_forward(*args, hard)
                sync()
                ref = ops._multistep_lif_torch(*args, hard)
                cpu = ops._multistep_lif_torch(*(t.cpu() for t in args), hard)
                if dtype == torch.float64:
                    assert torch.equal(out[0], ref[0]), "float64 spikes differ from torch"
                    assert rel(out[2], ref[2]) < 1e-12 and rel(out[1], ref[1]) < 1e-12
                else:
                    row["local_step_err_ulp"] = local_step_error(*args, hard, out)
                    assert row["local_step_err_ulp"] <= 2.0, row
                    row["bit_equal_h_vs_device_torch"] = bit_share(out[2], ref[2])
                    row["bit_equal_h_vs_cpu_torch"] = bit_share(out[2].cpu(), cpu[2])
                    row["spikes_equal_vs_device_torch"] = bit_share(out[0], ref[0])
                    row["spike_rate"] = out[0].mean().item()
            results["checks"][name] = row
            log("  ", {k: round(v, 6) for k, v in row.items()})

    with check("msl forward no input, all spiking, T = 1..3 (prefetch edges)"):
        for T in (1, 2, 3, 5):
            x, v0, decay, gain, v_th, v_reset = case(T, (3, 37))
            zero = torch.zeros_like(x)
            s, v, h = K.multistep_lif_forward(zero, torch.zeros_like(v0), decay, gain, v_th,
                                              v_reset, False)
            assert not s.any() and not h.any() and not v.any()
            for hard in (False, True):
                big = torch.full_like(x, 50.0)
                out = K.multistep_lif_forward(big, v0, decay, gain, v_th, v_reset, hard)
                ref = ops._multistep_lif_torch(big, v0, decay, gain, v_th, v_reset, hard)
                assert out[0].all()
                assert all(torch.equal(a, b) for a, b in zip(out, ref, strict=True))

    # ------------------------------------------------------------------ 2. backward
    def grads_in(h, v, pattern, dtype):
        gs = torch.randn(h.shape, generator=gen, device=dev, dtype=dtype) if "s" in pattern \
            else None
        if "e" in pattern:  # the gradient of spikes.sum(): stride 0
            gs = torch.ones((), device=dev, dtype=dtype).expand(h.shape)
        gv = torch.randn(v.shape, generator=gen, device=dev, dtype=dtype) if "v" in pattern \
            else None
        gh = torch.randn(h.shape, generator=gen, device=dev, dtype=dtype) if "h" in pattern \
            else None
        return gs, gv, gh

    def backward_pair(args, out, grads, hard, detach, spk, needs, dtype, prepass=False,
                      **config):
        """(kernel launcher, torch path) gradients; ``prepass``: hand the launcher only
        ``spk.surrogate_grad`` (torch pre-pass), not the formula that ``ops.fused_surrogate``
        gives a known class (computed in the kernel)."""
        x, v0, decay, gain, v_th, v_reset = args
        h = out[2]
        key, hparams = ops.surrogate_key(spk)
        like = (h, v0, decay, gain, v_th, v_reset)
        kern = ops._backward_outputs(
            K.multistep_lif_backward(*grads, h, v0, x, decay, gain, v_th, v_reset, hard, detach,
                                     spk.surrogate_grad, needs,
                                     fused=None if prepass else ops.fused_surrogate(spk),
                                     **config),
            needs, like)
        torch_ = ops._multistep_lif_backward_torch(*grads, h, v0, x, decay, gain, v_th, v_reset,
                                                   hard, detach, key, hparams, needs)
        return kern, torch_

    T_b = 6 if dry_run else 50
    state_b = (2, 37) if dry_run else (4, 999)
    patterns = ("svh", "v", "h", "e")
    need_sets = ([True] * 6, [True, False, False, False, False, False],
                 [False, True, True, True, True, True])
    # every reset/detach/incoming-gradient combination; the needed gradients rotate through
    # the three sets (each combination is a kernel variant to compile: the interpreter tests
    # run the full product)
    with check("msl backward float64 vs torch path, every flag combination"):
        worst = 0.0
        spk = sur.Sigmoid(3.0)
        combos = itertools.product((False, True), (False, True), patterns)
        for i, (hard, detach, pattern) in enumerate(combos):
            args = case(T_b, state_b)
            out = ops._multistep_lif_torch(*args, hard)
            grads = grads_in(out[2], out[1], pattern, torch.float64)
            for needs in (need_sets[i % 3],):
                kern, ref = backward_pair(args, out, grads, hard, detach, spk, needs,
                                          torch.float64)
                for k, r, need in zip(kern, ref, needs, strict=True):
                    if need:
                        e = rel(k, r)
                        worst = max(worst, e)
                        assert e < 1e-10, (hard, detach, pattern, needs, e)
        results["checks"]["backward_float64_worst_rel_err"] = worst
        log(f"   worst relative error {worst:.2e}")

    with check("msl backward float32 three-way, surrogate in kernel and pre-pass, chunking"):
        worst = 0.0
        bit_equal = {}
        for spk, hard in ((sur.ReluGrad(), False), (sur.Arctan(), True),
                          (sur.PiecewiseQuadratic(), False), (sur.GaussianGrad(), True),
                          (sur.MultiGaussianGrad(), False)):
            args = case(T_b, state_b, torch.float32)
            out = ops._multistep_lif_torch(*args, hard)
            grads = grads_in(out[2], out[1], "svh", torch.float32)
            up = lambda ts: tuple(None if t is None else t.double() for t in ts)  # noqa: E731
            _, t64 = backward_pair(up(args), up(out), up(grads), hard, False, spk, [True] * 6,
                                   torch.float64)
            kern, t32 = backward_pair(args, out, grads, hard, False, spk, [True] * 6,
                                      torch.float32)
            pre, _ = backward_pair(args, out, grads, hard, False, spk, [True] * 6,
                                   torch.float32, prepass=True)
            chunked, _ = backward_pair(args, out, grads, hard, False, spk, [True] * 6,
                                       torch.float32, prepass=True,
                                       chunk_elems=3 * out[1].numel())
            for k, pp, t, r, c in zip(kern, pre, t32, t64, chunked, strict=True):
                e_t = rel(t, r)
                for e in (rel(k, r), rel(pp, r)):
                    worst = max(worst, e)
                    assert e <= 4 * e_t + 1e-6, (type(spk).__name__, e, e_t)
                assert torch.equal(pp, c), "time chunking changed the result"
            # in the kernel vs torch pre-pass: bit-identical expected without exp (the same
            # roundings, no contraction); reported, not asserted (torch's CUDA ops decide)
            name = type(spk).__name__ + ("" if ops.fused_surrogate(spk) else " (pre-pass both)")
            bit_equal[name] = statistics.fmean(bit_share(k, pp) for k, pp in zip(kern, pre,
                                                                                 strict=True))
        results["checks"]["backward_float32_worst_rel_err"] = worst
        results["checks"]["backward_float32_bit_equal_kernel_vs_prepass"] = bit_equal
        log(f"   worst relative error {worst:.2e}; bit-equal share, surrogate in kernel vs "
            f"torch pre-pass: {bit_equal}")

    with check("msl surrogate derivatives in the kernel vs surrogate_grad on the CPU"):
        results["checks"]["surrogates_in_kernel"] = _surrogate_check(torch, K, ops, sur, dev)
        log("   max error in eps (exp-free formulas must be 0):",
            results["checks"]["surrogates_in_kernel"])

    # ------------------------------------------------------------------ 3. op end to end
    with check("msl op end to end through autograd (registered CUDA kernels)"):
        args = case(T_b, state_b)
        leaves = [t.clone().requires_grad_(True) for t in args]
        spk = sur.Sigmoid(3.0)
        for hard in (False, True):
            if dry_run:  # the functions registered as the CUDA kernels, called directly
                key, hparams = ops.surrogate_key(spk)
                out = ops._multistep_lif_cuda(*args, hard, False, key, hparams)
                go = [torch.ones_like(out[0]), torch.ones_like(out[1]), None]
                grads = ops._multistep_lif_backward_cuda(*go, out[2], args[1], args[0],
                                                         *args[2:], hard, False, key, hparams,
                                                         [True] * 6)
            else:
                out = ops.multistep_lif(*leaves, spk_fun=spk, hard_reset=hard)
                grads = torch.autograd.grad(out[0].sum() + out[1].sum(), leaves)
            cpu = [t.detach().cpu().clone().requires_grad_(True) for t in args]
            ref = ops.multistep_lif_reference(*cpu, spk_fun=spk, hard_reset=hard)
            ref_grads = torch.autograd.grad(ref[0].sum() + ref[1].sum(), cpu)
            assert torch.equal(out[0].detach().cpu(), ref[0].detach())
            for g, r in zip(grads, ref_grads, strict=True):
                assert rel(g.cpu(), r) < 1e-10, rel(g.cpu(), r)

    with check("msl forward captured in a CUDA graph"):
        if dry_run:
            log("   (no CUDA graphs on the CPU: nothing to check)")
        else:
            args = case(20, (16, 1000), torch.float32)
            static_x = args[0].clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                K.multistep_lif_forward(static_x, *args[1:], False)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = K.multistep_lif_forward(static_x, *args[1:], False)
            new_x = case(20, (16, 1000), torch.float32)[0]
            static_x.copy_(new_x)
            graph.replay()
            sync()
            eager = K.multistep_lif_forward(new_x, *args[1:], False)
            assert all(torch.equal(a, b) for a, b in zip(static_out, eager, strict=True))

    # ------------------------------------------------------------------ 4. benchmark
    results["bench"] = _layer_benchmark(torch, kernels, ops, log, sync, left, dry_run, dev,
                                        reps, warmup, check)
    return results


def _surrogate_check(torch, K, ops, sur, dev) -> dict:
    """g(z) of every surrogate the backward kernel computes, against the class's
    ``surrogate_grad`` evaluated with torch on the CPU (independent of the GPU's libraries).

    Grid: a dense sweep of [-5, 5], far tails, +-0, and each hyperparameter value ``v`` and
    ``1/v`` (the kinks: ``width``, ``w``, ``1/alpha``...) with its neighbours in the dtype.
    Default hyperparameters and all of them scaled by 1.37. Through the kernel: ``h = z``,
    ``V_th = 0``, ``V_reset = -1``, ``dL/dS = 1``, decay 0, gain 1, detached reset, so
    ``dL/dx = g`` to the bit. Formulas without exp must be bit-identical; with exp within
    6 eps relative (Sigmoid: or ``2 eps alpha`` absolute, the cancellation of ``1 - s``).
    Returns ``{class: max error in eps}`` (relative; Sigmoid: absolute / ``(alpha eps)``).
    """
    import numpy

    with_exp = {"Sigmoid", "GaussianGrad", "ERF", "PiecewiseExp", "SlayerGrad"}
    report = {}
    for name in ops.FUSED_SURROGATES:
        cls = getattr(sur, name)
        worst = 0.0
        for scale in (1.0, 1.37):
            spk = cls(**{k: v * scale for k, v in cls().hparams.items()})
            for dtype in (torch.float32, torch.float64):
                edges = [0.0, 1.0] + [v for v in spk.hparams.values() if v] + [
                    1.0 / v for v in spk.hparams.values() if v]
                e = torch.tensor(edges, dtype=dtype)
                e = torch.cat([e, torch.nextafter(e, e + 1), torch.nextafter(e, e - 1)])
                tails = torch.tensor([7.5, 30.0, 100.0, 1e4], dtype=dtype)
                z = torch.cat([torch.linspace(-5, 5, 4001, dtype=dtype), e, -e, tails, -tails])
                one = torch.ones((), dtype=dtype, device=dev)
                h = z.to(dev).reshape(1, -1)
                with numpy.errstate(over="ignore"):  # the interpreter: Sigmoid's exp -> inf
                    got = K.multistep_lif_backward(
                        torch.ones_like(h), None, None, h, torch.zeros_like(h[0]), None,
                        0 * one, one, 0 * one, -one, False, True, None,
                        [True, False, False, False, False, False],
                        fused=ops.fused_surrogate(spk))[0].reshape(-1).cpu()
                want = spk.surrogate_grad(z)
                eps = torch.finfo(dtype).eps
                if name not in with_exp:
                    assert torch.equal(got, want), (repr(spk), dtype, z[got != want].tolist()[:5])
                    continue
                if name == "Sigmoid":
                    err = ((got - want).abs().max() / (eps * spk.alpha)).item()
                    assert err <= 2.0, (repr(spk), dtype, err)
                else:
                    tiny = torch.finfo(dtype).tiny
                    err = ((got - want).abs() - tiny).clamp_min(0).div(
                        want.abs().clamp_min(tiny)).max().item() / eps
                    assert err <= 6.0, (repr(spk), dtype, err)
                worst = max(worst, err)
        report[name] = round(worst, 3)
    return report


def _layer_benchmark(torch, kernels, ops, log, sync, left, dry_run, dev, reps, warmup, check):
    from torch import nn

    from torchbrain import reset_all_states
    from torchbrain.training import MultiStepLIF

    rows: list[dict] = []
    if left() < 60:
        log(f"   layer benchmark skipped: {left():.0f}s of budget left")
        return [{"skipped": "time budget"}]
    N, B, T = (DRY_N, DRY_B, DRY_T) if dry_run else (LAYER_N, LAYER_B, LAYER_T)
    decay = 0.9

    def timed(fn):
        return statistics.median(call_times(fn, sync, dry_run=dry_run, warmup=warmup, reps=reps))

    @contextlib.contextmanager
    def surrogate_prepass():
        """Make the launcher evaluate every surrogate with torch (the path before v2)."""
        real = ops.fused_surrogate
        ops.fused_surrogate = lambda surrogate: None
        try:
            yield
        finally:
            ops.fused_surrogate = real

    @contextlib.contextmanager
    def kernels_disabled(flag):
        old = os.environ.get(kernels.DISABLE_ENV)
        if flag:
            os.environ[kernels.DISABLE_ENV] = "1"
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(kernels.DISABLE_ENV, None)
            else:
                os.environ[kernels.DISABLE_ENV] = old

    class _Glue(torch.autograd.Function):
        """Dry run only: the op's registered CUDA functions, called on CPU tensors."""

        @staticmethod
        def forward(ctx, cur, lif):
            d, g, th, rs = lif._coefficients() + (lif.V_th, lif.V_reset)
            v0 = torch.zeros_like(cur[0])
            key, hp = ops.surrogate_key(lif.spk_fun)
            s, _, h = ops._multistep_lif_cuda(cur, v0, d, g, th, rs, False, False, key, hp)
            ctx.save_for_backward(h, v0, d, g, th, rs)
            ctx.key = (key, hp)
            return s

        @staticmethod
        def backward(ctx, grad_s):
            h, v0, d, g, th, rs = ctx.saved_tensors
            needs = [True, False, False, False, False, False]
            grads = ops._multistep_lif_backward_cuda(grad_s, None, None, h, v0, None, d, g, th,
                                                     rs, False, False, *ctx.key, needs)
            return grads[0], None

    torch.manual_seed(0)
    x = torch.rand(T, B, N, device=dev)
    lin = nn.Linear(N, N, device=dev)
    lif = MultiStepLIF(N, tau=-1.0 / math.log(decay), decay_input=False, dt=1.0, device=dev)
    layer = nn.Sequential(lin, lif)

    def linear_only():
        lin(x).sum().backward()
        lin.weight.grad = lin.bias.grad = None

    def linear_lif():
        reset_all_states(layer)
        cur = lin(x)
        spikes = _Glue.apply(cur, lif) if dry_run else lif(cur)
        spikes.sum().backward()
        lin.weight.grad = lin.bias.grad = None
        return spikes

    cur_leaf = lin(x).detach().requires_grad_(True)

    def lif_only():
        reset_all_states(layer)
        spikes = _Glue.apply(cur_leaf, lif) if dry_run else lif(cur_leaf)
        spikes.sum().backward()
        cur_leaf.grad = None

    for tf32 in (False, True):
        if tf32 and left() < 30:
            log("   TF32 pass skipped: time budget")
            break
        name = f"msl layer benchmark N={N} B={B} T={T} {'tf32' if tf32 else 'fp32'} matmul"
        with check(name):
            old = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            try:
                row = {"N": N, "B": B, "T": T, "matmul": "tf32" if tf32 else "fp32"}
                # which path the backward takes for the layer's surrogate
                row["surrogate"] = repr(lif.spk_fun)
                row["surrogate_in_kernel"] = ops.fused_surrogate(lif.spk_fun) is not None
                row["linear_s"] = timed(linear_only)
                row["linear_lif_kernels_s"] = timed(linear_lif)
                with kernels_disabled(True):
                    row["linear_lif_torch_s"] = timed(linear_lif)
                row["lif_only_kernels_s"] = timed(lif_only)
                with surrogate_prepass():
                    row["lif_only_kernels_prepass_s"] = timed(lif_only)
                with kernels_disabled(True):
                    row["lif_only_torch_s"] = timed(lif_only)
                with torch.no_grad():
                    reset_all_states(layer)
                    spikes = _Glue.apply(lin(x), lif) if dry_run else lif(lin(x))
                    row["spike_rate"] = spikes.float().mean().item()
                    del spikes
                reset_all_states(layer)
            finally:
                torch.backends.cuda.matmul.allow_tf32 = old
            row["ratio_kernels"] = row["linear_lif_kernels_s"] / row["linear_s"]
            row["ratio_torch_path"] = row["linear_lif_torch_s"] / row["linear_s"]
            rows.append(row)
            log(f"   {row['matmul']}: linear {row['linear_s'] * 1e3:.2f} ms, +LIF kernels "
                f"{row['linear_lif_kernels_s'] * 1e3:.2f} ms ({row['ratio_kernels']:.3f}x), "
                f"+LIF torch path {row['linear_lif_torch_s'] * 1e3:.2f} ms "
                f"({row['ratio_torch_path']:.3f}x); LIF op alone: kernels "
                f"{row['lif_only_kernels_s'] * 1e3:.2f} ms (surrogate {row['surrogate']} "
                f"{'in the kernel' if row['surrogate_in_kernel'] else 'by torch pre-pass'}; "
                f"forced torch pre-pass {row['lif_only_kernels_prepass_s'] * 1e3:.2f} ms), "
                f"torch path {row['lif_only_torch_s'] * 1e3:.2f} ms; spike rate "
                f"{row['spike_rate']:.3f}")
    return rows


# ------------------------------------------------------------------------------ stand-alone
if __name__ == "__main__":  # pragma: no cover - a script for the GPU machine
    from check_harness import run_standalone  # the sibling file: this directory is on sys.path

    sys.exit(run_standalone(run, name="check_multistep_lif", description=__doc__.splitlines()[0],
                            default_budget=200.0))
