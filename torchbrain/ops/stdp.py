r"""Pair-based spike-timing-dependent plasticity (STDP) in trace form: the weight-update ops.

Every presynaptic neuron :math:`i` keeps a trace :math:`x^\mathrm{pre}_i` and every postsynaptic
neuron :math:`j` a trace :math:`x^\mathrm{post}_j` that jump by the spike and decay exactly:

.. math::

    \tau_+ \frac{dx^\mathrm{pre}_i}{dt} = -x^\mathrm{pre}_i + \tau_+ \sum_k \delta(t - t_i^k),
    \qquad
    \tau_- \frac{dx^\mathrm{post}_j}{dt} = -x^\mathrm{post}_j + \tau_- \sum_k \delta(t - t_j^k).

A presynaptic spike depresses :math:`w_{ij}` by :math:`A_- x^\mathrm{post}_j`, a postsynaptic
spike potentiates it by :math:`A_+ x^\mathrm{pre}_i`. Because the traces sum over *all* earlier
spikes this is the all-to-all pairing of the additive rule: a pair with lag
:math:`\Delta t = t_\mathrm{post} - t_\mathrm{pre}` contributes

.. math::

    \Delta w = \begin{cases} A_+ \, e^{-\Delta t/\tau_+} & \Delta t > 0 \\
                             -A_- \, e^{\Delta t/\tau_-} & \Delta t < 0 \end{cases}

and the traces need memory linear in neurons, not in synapses.

**Order within one time step** (what :func:`stdp_dense_step` and :func:`stdp_ell_step` do):

1. both traces decay, :math:`x \leftarrow x\,e^{-\Delta t/\tau}`;
2. depression: each presynaptic spike :math:`s^\mathrm{pre}_i` changes the synapses of row
   :math:`i` by :math:`-A_- s^\mathrm{pre}_i x^\mathrm{post}_j` (the post trace does not yet hold
   this step's post spikes), then the weights are clipped to :math:`[w_\min, w_\max]`;
3. potentiation: each postsynaptic spike :math:`s^\mathrm{post}_j` changes the synapses onto
   :math:`j` by :math:`+A_+ s^\mathrm{post}_j x^\mathrm{pre}_i` (the pre trace does not yet hold
   this step's pre spikes), then the weights are clipped;
4. the traces add this step's spikes, :math:`x \leftarrow x + s`.

Simultaneous spikes: a pre and a post spike in the same step do not pair with each other
(:math:`\Delta t = 0` gives :math:`\Delta w = 0`); each still pairs with the other side's earlier
spikes, and both join the traces, so they pair with later spikes.

**Weight dependence** (``multiplicative``):

* additive (``False``): :math:`\Delta w^+ = A_+ x^\mathrm{pre}`, :math:`\Delta w^- = -A_-
  x^\mathrm{post}`, hard bounds by clipping;
* multiplicative / soft bounds (``True``): :math:`\Delta w^+ = A_+ x^\mathrm{pre}
  (w_\max - w)/(w_\max - w_\min)`, :math:`\Delta w^- = -A_- x^\mathrm{post}
  (w - w_\min)/(w_\max - w_\min)`. :math:`A_\pm` keep the weight's unit in both rules (the
  multiplicative change equals the additive one at the opposite bound); the weights approach the
  bounds exponentially and a clip guards steps with :math:`A x > w_\max - w_\min`.

**Batches** share one weight matrix: the changes of all batch entries are summed (as if their
spike pairs had occurred in one network), then clipped. Spikes may be graded; a spike of value
:math:`s` scales both its trace jump and the change it triggers.

Event-driven updates: only the rows of presynaptic neurons that spiked (in any batch entry) and
the columns of postsynaptic neurons that spiked are read and written (``index_select`` /
``index_copy_``), so the cost grows with spikes x fan-out, not with synapses. The updates are
``torch.library`` custom ops that mutate the weight (``register_fake`` lets
``torch.compile(fullgraph=True)`` trace through the data-dependent number of events);
``inplace=False`` runs them on a clone. The dense outer-product form
:func:`stdp_dense_update_reference` is kept as the reference.

Fixed fan-out (ELL) tables: ``indices`` ``(n_pre, K)`` holds the target of every synapse and
``weight`` ``(n_pre, K)`` its weight. Depression reads the post trace at the targets of the
active rows; potentiation needs, for every postsynaptic neuron, the list of synapse slots
``i * K + k`` that end on it: a CSR table built once by :func:`ell_post_csr`, which costs 4 bytes
per synapse (8 beyond :math:`2^{31}` synapses) plus ``4 (n_post + 1)`` bytes for the row pointers.

What runs where for the ELL update (``torchbrain::stdp_ell_update_``): on CPU tensors the
torch implementation above. On CUDA tensors the Triton kernels of
:mod:`torchbrain.kernels.stdp_ell`, registered as the op's CUDA kernel: one launch compacts the
active rows and columns into device-side lists, then one kernel depresses the rows and a second
one potentiates the synapses of the active columns through the CSR (the post -> pre traversal),
in that order, each synapse written by one lane (no atomics on the weights). The host never
reads the number of events (the torch path does, twice), so the update can be captured in a
CUDA graph. The kernels repeat the torch operations in their order (no contraction into fma,
correctly rounded divisions): the same weights up to the summation order of the batch, bit
for bit with one batch entry on Triton's interpreter (the GPU check reports the share of
bit-equal weights on CUDA). CUDA falls back to the torch path when Triton is
missing, when ``TORCHBRAIN_DISABLE_KERNELS=1`` (read on every call), for float16/bfloat16 or
non-contiguous weights.

References
----------
Song, S., Miller, K. D. & Abbott, L. F. (2000). Competitive Hebbian learning through
spike-timing-dependent synaptic plasticity. *Nature Neuroscience* 3, 919–926.

Morrison, A., Diesmann, M. & Gerstner, W. (2008). Phenomenological models of synaptic
plasticity based on spike timing. *Biological Cybernetics* 98, 459–478.

Gütig, R., Aharonov, R., Rotter, S. & Sompolinsky, H. (2003). Learning input correlations
through nonlinear temporally asymmetric Hebbian plasticity. *Journal of Neuroscience* 23,
3697–3714.
"""

from __future__ import annotations

import torch

from ._dispatch import register_cuda

__all__ = [
    "stdp_dense_update",
    "stdp_dense_update_reference",
    "stdp_dense_step",
    "ell_post_csr",
    "stdp_ell_update",
    "stdp_ell_step",
]

_INT32_MAX = 2**31 - 1


def _as_2d(x: torch.Tensor, n: int, dtype) -> torch.Tensor:
    return x.reshape(-1, n).to(dtype)


def _apply(current, amount, gain, w_min, w_max, multiplicative: bool, potentiate: bool):
    """New values of the weights ``current`` after the change ``gain * amount`` (clipped)."""
    if multiplicative:
        span = w_max - w_min
        room = (w_max - current) if potentiate else (current - w_min)
        delta = gain * amount * room / span
    else:
        delta = gain * amount
    new = current + delta if potentiate else current - delta
    return torch.clamp(new, w_min, w_max)


# ---------------------------------------------------------------------------------- dense
@torch.library.custom_op("torchbrain::stdp_dense_update_", mutates_args=("weight",))
def _stdp_dense_update_(
    weight: torch.Tensor, pre_spikes: torch.Tensor, post_spikes: torch.Tensor,
    x_pre: torch.Tensor, x_post: torch.Tensor, A_plus: torch.Tensor, A_minus: torch.Tensor,
    w_min: torch.Tensor, w_max: torch.Tensor, multiplicative: bool,
) -> None:
    n_pre, n_post = weight.shape
    dtype = weight.dtype
    s_pre = _as_2d(pre_spikes, n_pre, dtype)
    s_post = _as_2d(post_spikes, n_post, dtype)
    x_pre = _as_2d(x_pre, n_pre, dtype)
    x_post = _as_2d(x_post, n_post, dtype)
    a_plus, a_minus = A_plus.to(dtype), A_minus.to(dtype)
    lo, hi = w_min.to(dtype), w_max.to(dtype)
    # Depression: rows of the presynaptic neurons that spiked in any batch entry.
    rows = torch.nonzero((s_pre != 0).any(0)).squeeze(1)
    if rows.numel():
        amount = s_pre.index_select(1, rows).t() @ x_post          # (n_rows, n_post)
        current = weight.index_select(0, rows)
        weight.index_copy_(0, rows, _apply(current, amount, a_minus, lo, hi, multiplicative,
                                           potentiate=False))
    # Potentiation: columns of the postsynaptic neurons that spiked.
    cols = torch.nonzero((s_post != 0).any(0)).squeeze(1)
    if cols.numel():
        amount = x_pre.t() @ s_post.index_select(1, cols)          # (n_pre, n_cols)
        current = weight.index_select(1, cols)
        weight.index_copy_(1, cols, _apply(current, amount, a_plus, lo, hi, multiplicative,
                                           potentiate=True))


@_stdp_dense_update_.register_fake
def _(weight, pre_spikes, post_spikes, x_pre, x_post, A_plus, A_minus, w_min, w_max,
      multiplicative):
    return None


def _params(weight, A_plus, A_minus, w_min, w_max):
    def t(v):
        return torch.as_tensor(v, dtype=weight.dtype, device=weight.device).detach()

    return t(A_plus), t(A_minus), t(w_min), t(w_max)


def _check_dense(weight, pre_spikes, post_spikes, x_pre, x_post):
    if weight.ndim != 2:
        raise ValueError(f"stdp_dense_update: weight must be (n_pre, n_post), got "
                         f"{tuple(weight.shape)}")
    n_pre, n_post = weight.shape
    _check_sides("stdp_dense_update", n_pre, n_post, pre_spikes, post_spikes, x_pre, x_post)


def _check_sides(who, n_pre, n_post, pre_spikes, post_spikes, x_pre, x_post):
    for name, x, n in (("pre_spikes", pre_spikes, n_pre), ("x_pre", x_pre, n_pre),
                       ("post_spikes", post_spikes, n_post), ("x_post", x_post, n_post)):
        if x.shape[-1] != n:
            raise ValueError(f"{who}: '{name}' must end in {n} entries, got shape "
                             f"{tuple(x.shape)}")
    if pre_spikes.shape != x_pre.shape or post_spikes.shape != x_post.shape or (
        pre_spikes.shape[:-1] != post_spikes.shape[:-1]
    ):
        raise ValueError(
            f"{who}: spikes and traces must share their batch shape, got pre_spikes "
            f"{tuple(pre_spikes.shape)}, x_pre {tuple(x_pre.shape)}, post_spikes "
            f"{tuple(post_spikes.shape)}, x_post {tuple(x_post.shape)}"
        )


def stdp_dense_update(
    weight: torch.Tensor, pre_spikes: torch.Tensor, post_spikes: torch.Tensor,
    x_pre: torch.Tensor, x_post: torch.Tensor, *, A_plus, A_minus, w_min=0.0,
    w_max=float("inf"), multiplicative: bool = False, inplace: bool = False,
) -> torch.Tensor:
    r"""Steps 2–3 of the STDP step (depression, then potentiation) for a dense weight matrix.

    Parameters
    ----------
    weight : Tensor, shape ``(n_pre, n_post)``
        The weights (canonical unit of what they deliver).
    pre_spikes, post_spikes : Tensor, shapes ``(..., n_pre)`` and ``(..., n_post)``
        This step's spikes (0/1 or graded), with one shared batch shape.
    x_pre, x_post : Tensor, shapes like the spikes
        The traces **decayed** to this step, before this step's spikes are added.
    A_plus, A_minus : float or 0-d tensor
        Potentiation and depression amplitudes, in the weight's unit (``>= 0``).
    w_min, w_max : float or 0-d tensor
        Weight bounds (``w_max`` may be ``inf`` for the additive rule).
    multiplicative : bool, default False
        Soft-bound rule instead of the additive one (see the module docstring).
    inplace : bool, default False
        Write into ``weight`` (only the touched rows and columns; use under ``torch.no_grad``)
        instead of a clone.

    Returns
    -------
    Tensor
        The updated weights (``weight`` itself when ``inplace``). Not differentiable.
    """
    _check_dense(weight, pre_spikes, post_spikes, x_pre, x_post)
    out = weight if inplace else weight.detach().clone()
    _stdp_dense_update_(out, pre_spikes.detach(), post_spikes.detach(), x_pre.detach(),
                        x_post.detach(), *_params(weight, A_plus, A_minus, w_min, w_max),
                        bool(multiplicative))
    return out


def stdp_dense_update_reference(
    weight, pre_spikes, post_spikes, x_pre, x_post, *, A_plus, A_minus, w_min=0.0,
    w_max=float("inf"), multiplicative: bool = False,
) -> torch.Tensor:
    """:func:`stdp_dense_update` with full outer products over every synapse (the reference).

    Equal to the event-driven form when the weights lie within ``[w_min, w_max]`` (the event
    form clips only the entries it touches).
    """
    n_pre, n_post = weight.shape
    dtype = weight.dtype
    s_pre, s_post = _as_2d(pre_spikes, n_pre, dtype), _as_2d(post_spikes, n_post, dtype)
    xp, xq = _as_2d(x_pre, n_pre, dtype), _as_2d(x_post, n_post, dtype)
    a_plus, a_minus, lo, hi = _params(weight, A_plus, A_minus, w_min, w_max)
    w = _apply(weight, s_pre.t() @ xq, a_minus, lo, hi, multiplicative, potentiate=False)
    return _apply(w, xp.t() @ s_post, a_plus, lo, hi, multiplicative, potentiate=True)


def stdp_dense_step(
    weight, pre_spikes, post_spikes, x_pre, x_post, decay_pre, decay_post, *, A_plus, A_minus,
    w_min=0.0, w_max=float("inf"), multiplicative: bool = False, inplace: bool = False,
    learn: bool = True,
):
    r"""One full STDP step (decay, depression, potentiation, trace jumps) on a dense matrix.

    ``x_pre``/``x_post`` are the traces after the previous step; ``decay_pre`` and
    ``decay_post`` are :math:`e^{-\Delta t/\tau_+}` and :math:`e^{-\Delta t/\tau_-}`. With
    ``learn=False`` only the traces advance. Returns ``(weight, x_pre, x_post)``.
    """
    x_pre = x_pre * decay_pre
    x_post = x_post * decay_post
    if learn:
        weight = stdp_dense_update(weight, pre_spikes, post_spikes, x_pre, x_post,
                                   A_plus=A_plus, A_minus=A_minus, w_min=w_min, w_max=w_max,
                                   multiplicative=multiplicative, inplace=inplace)
    return weight, x_pre + pre_spikes.detach(), x_post + post_spikes.detach()


# ------------------------------------------------------------------------------------ ELL
def ell_post_csr(indices: torch.Tensor, n_post: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The post-to-pre mapping of a fixed fan-out table, as CSR over postsynaptic neurons.

    Parameters
    ----------
    indices : Tensor of int, shape ``(n_pre, K)``
        Target of every synapse.
    n_post : int
        Number of postsynaptic neurons.

    Returns
    -------
    indptr : Tensor, shape ``(n_post + 1,)``
        Synapses ending on post neuron ``j`` are ``slots[indptr[j]:indptr[j + 1]]``.
    slots : Tensor, shape ``(n_pre * K,)``
        Flat synapse positions ``i * K + k`` (row ``slots // K``), sorted by target and, within a
        target, ascending. int32 (4 bytes per synapse) unless there are more than
        :math:`2^{31} - 1` synapses (int64).
    """
    flat = indices.reshape(-1).long()
    nnz = flat.numel()
    dtype = torch.int32 if nnz <= _INT32_MAX else torch.int64
    slots = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat, minlength=n_post)
    indptr = torch.zeros(n_post + 1, dtype=torch.int64, device=indices.device)
    torch.cumsum(counts, 0, out=indptr[1:])
    return indptr.to(dtype), slots.to(dtype)


def _stdp_ell_update_torch(weight, indices, post_indptr, post_slots, pre_spikes, post_spikes,
                           x_pre, x_post, A_plus, A_minus, w_min, w_max, multiplicative):
    """The pure-torch implementation of ``torchbrain::stdp_ell_update_`` (CPU path; fallback
    on CUDA)."""
    n_pre, K = indices.shape
    n_post = post_indptr.shape[0] - 1
    if K == 0:
        return
    dtype = weight.dtype
    s_pre = _as_2d(pre_spikes, n_pre, dtype)
    s_post = _as_2d(post_spikes, n_post, dtype)
    x_pre = _as_2d(x_pre, n_pre, dtype)
    x_post = _as_2d(x_post, n_post, dtype)
    a_plus, a_minus = A_plus.to(dtype), A_minus.to(dtype)
    lo, hi = w_min.to(dtype), w_max.to(dtype)
    # Depression: the K synapses of each active row, with the post trace at their targets.
    rows = torch.nonzero((s_pre != 0).any(0)).squeeze(1)
    if rows.numel():
        targets = indices.index_select(0, rows).long()                      # (n_rows, K)
        amount = torch.einsum("br,brk->rk", s_pre.index_select(1, rows), x_post[:, targets])
        current = weight.index_select(0, rows)
        weight.index_copy_(0, rows, _apply(current, amount, a_minus, lo, hi, multiplicative,
                                           potentiate=False))
    # Potentiation: every synapse ending on an active post neuron, found through the CSR.
    cols = torch.nonzero((s_post != 0).any(0)).squeeze(1)
    if cols.numel():
        starts = post_indptr.index_select(0, cols).long()
        counts = post_indptr.index_select(0, cols + 1).long() - starts
        total = int(counts.sum())
        if total:
            owner = torch.repeat_interleave(torch.arange(cols.numel(), device=cols.device),
                                            counts, output_size=total)
            first = torch.cumsum(counts, 0) - counts
            pos = starts.index_select(0, owner) + (
                torch.arange(total, device=cols.device) - first.index_select(0, owner))
            slots = post_slots.index_select(0, pos).long()                 # (total,)
            syn_rows = torch.div(slots, K, rounding_mode="floor")
            amount = (s_post.index_select(1, cols).index_select(1, owner)
                      * x_pre.index_select(1, syn_rows)).sum(0)
            flat = weight.view(-1)
            current = flat.index_select(0, slots)
            flat.index_copy_(0, slots, _apply(current, amount, a_plus, lo, hi, multiplicative,
                                              potentiate=True))


@torch.library.custom_op("torchbrain::stdp_ell_update_", mutates_args=("weight",))
def _stdp_ell_update_(
    weight: torch.Tensor, indices: torch.Tensor, post_indptr: torch.Tensor,
    post_slots: torch.Tensor, pre_spikes: torch.Tensor, post_spikes: torch.Tensor,
    x_pre: torch.Tensor, x_post: torch.Tensor, A_plus: torch.Tensor, A_minus: torch.Tensor,
    w_min: torch.Tensor, w_max: torch.Tensor, multiplicative: bool,
) -> None:
    _stdp_ell_update_torch(weight, indices, post_indptr, post_slots, pre_spikes, post_spikes,
                           x_pre, x_post, A_plus, A_minus, w_min, w_max, multiplicative)


#: Weight dtypes the kernels compute in (float16/bfloat16 keep the torch path, which rounds
#: every operation to the weight's dtype).
_KERNEL_DTYPES = (torch.float32, torch.float64)
_INDEX_DTYPES = (torch.int32, torch.int64)


def _kernel_supports(weight, indices, post_indptr, post_slots, *_) -> bool:
    return (weight.dtype in _KERNEL_DTYPES and weight.is_contiguous()
            and all(t.dtype in _INDEX_DTYPES for t in (indices, post_indptr, post_slots)))


_stdp_ell_update_cuda = register_cuda(
    _stdp_ell_update_, "stdp_ell", "stdp_ell_update_", _stdp_ell_update_torch, _kernel_supports)


@_stdp_ell_update_.register_fake
def _(weight, indices, post_indptr, post_slots, pre_spikes, post_spikes, x_pre, x_post, A_plus,
      A_minus, w_min, w_max, multiplicative):
    return None


def stdp_ell_update(
    weight: torch.Tensor, indices: torch.Tensor, post_indptr: torch.Tensor,
    post_slots: torch.Tensor, pre_spikes: torch.Tensor, post_spikes: torch.Tensor,
    x_pre: torch.Tensor, x_post: torch.Tensor, *, A_plus, A_minus, w_min=0.0,
    w_max=float("inf"), multiplicative: bool = False, inplace: bool = False,
) -> torch.Tensor:
    """Steps 2–3 of the STDP step for a fixed fan-out (ELL) table with per-synapse weights.

    Parameters
    ----------
    weight : Tensor, shape ``(n_pre, K)``
        Per-synapse weights (contiguous).
    indices : Tensor of int, shape ``(n_pre, K)``
        Target of every synapse (duplicates are distinct synapses, updated independently).
    post_indptr, post_slots : Tensor
        The post-to-synapse CSR of :func:`ell_post_csr` for ``indices``.
    pre_spikes, post_spikes, x_pre, x_post, A_plus, A_minus, w_min, w_max, multiplicative, inplace
        As :func:`stdp_dense_update`.

    Returns
    -------
    Tensor
        The updated weights (``weight`` itself when ``inplace``).
    """
    if weight.shape != indices.shape:
        raise ValueError(f"stdp_ell_update: weight must have the shape of indices "
                         f"{tuple(indices.shape)}, got {tuple(weight.shape)}")
    n_post = post_indptr.shape[0] - 1
    _check_sides("stdp_ell_update", indices.shape[0], n_post, pre_spikes, post_spikes, x_pre,
                 x_post)
    if inplace and not weight.is_contiguous():
        raise ValueError("stdp_ell_update: an in-place update needs a contiguous weight")
    out = weight if inplace else weight.detach().clone(memory_format=torch.contiguous_format)
    _stdp_ell_update_(out, indices, post_indptr, post_slots, pre_spikes.detach(),
                      post_spikes.detach(), x_pre.detach(), x_post.detach(),
                      *_params(weight, A_plus, A_minus, w_min, w_max), bool(multiplicative))
    return out


def stdp_ell_step(
    weight, indices, post_indptr, post_slots, pre_spikes, post_spikes, x_pre, x_post, decay_pre,
    decay_post, *, A_plus, A_minus, w_min=0.0, w_max=float("inf"), multiplicative: bool = False,
    inplace: bool = False, learn: bool = True,
):
    """One full STDP step on a fixed fan-out table (see :func:`stdp_dense_step`).

    Returns ``(weight, x_pre, x_post)``.
    """
    x_pre = x_pre * decay_pre
    x_post = x_post * decay_post
    if learn:
        weight = stdp_ell_update(weight, indices, post_indptr, post_slots, pre_spikes,
                                 post_spikes, x_pre, x_post, A_plus=A_plus, A_minus=A_minus,
                                 w_min=w_min, w_max=w_max, multiplicative=multiplicative,
                                 inplace=inplace)
    return weight, x_pre + pre_spikes.detach(), x_post + post_spikes.detach()
