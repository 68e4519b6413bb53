r"""Random connectivity generated in parallel on every rank, identical on any number of ranks.

The random table is cut into **blocks** of ``block_rows`` rows, and block ``b`` is drawn from its
own generator, seeded with a stable hash of ``(seed, stream, b)`` (BLAKE2b, not Python's salted
``hash``). A block therefore has the same content whoever draws it, on one rank or on many, and a
rank draws exactly the blocks it needs, keeps the synapses onto the neurons it owns and drops
the rest before drawing the next block. No rank ever holds the full synapse list: the peak memory
is one block plus the local synapses.

Two rules are provided:

* **Fixed out-degree** (:func:`fixed_out_degree_local`; the Brette et al. / COBANet rule, and
  brainpy's ``EventFixedProb``): every presynaptic neuron draws ``k`` targets. Rows are
  presynaptic neurons, so which synapses land on a rank is known only after drawing them: every
  rank draws every block (time :math:`O(n_\mathrm{pre} k)` per rank, the same as one process)
  but keeps only its :math:`\approx 1/W` share (memory :math:`O(n_\mathrm{pre} k / W)`).
* **Fixed in-degree** (:func:`fixed_in_degree_local`): every postsynaptic neuron draws ``k``
  sources. Rows are postsynaptic neurons, so a rank draws only the blocks that overlap its own
  neurons: time *and* memory shrink as :math:`1/W`. Prefer it at very large scale.

Both return a :class:`LocalTable`: the incoming synapses of the local neurons as a CSR matrix over
the *global* presynaptic index (``indptr`` of length ``n_pre + 1``; ``targets`` holding local
postsynaptic indices), which is what delivering a global spike list needs: the synapses of spike
``i`` are ``targets[indptr[i]:indptr[i + 1]]``, in the order they were drawn. Storage: 4 bytes
per local synapse plus 8 bytes per presynaptic neuron.

The draws depend on the device type of the generator (CPU and CUDA generators give different,
each reproducible, tables), on ``block_rows`` and on the seed, never on the number of ranks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from ..comm.fixed_num import fixed_out_degree_table

__all__ = [
    "LocalTable",
    "block_generator",
    "fixed_out_degree_local",
    "blockwise_out_degree_table",
    "fixed_in_degree_local",
    "blockwise_in_degree_table",
    "initial_values_local",
]



@dataclass
class LocalTable:
    """Incoming synapses of the local neurons, as CSR over the global presynaptic index.

    Attributes
    ----------
    indptr : Tensor (int64, ``n_pre + 1``)
        Synapses of presynaptic neuron ``i`` are ``targets[indptr[i]:indptr[i + 1]]``.
    targets : Tensor (int32, ``nnz``)
        Local postsynaptic index of each synapse (global index minus ``post_start``).
    n_pre : int
        Number of presynaptic neurons.
    post_start, post_stop : int
        The global postsynaptic range of this table.
    """

    indptr: torch.Tensor
    targets: torch.Tensor
    n_pre: int
    post_start: int
    post_stop: int

    @property
    def num_synapses(self) -> int:
        return int(self.targets.numel())

    def nbytes(self) -> int:
        """Bytes held by the table."""
        return (self.indptr.numel() * self.indptr.element_size()
                + self.targets.numel() * self.targets.element_size())

    def to_dense_counts(self) -> torch.Tensor:
        """``(n_pre, n_local)`` number of synapses per pair (tests and small tables only)."""
        n_local = self.post_stop - self.post_start
        counts = torch.zeros(self.n_pre, n_local, dtype=torch.int64, device=self.targets.device)
        rows = torch.searchsorted(self.indptr[1:], torch.arange(self.num_synapses,
                                  device=self.indptr.device), right=True)
        counts.index_put_((rows, self.targets.long()), torch.ones_like(rows), accumulate=True)
        return counts


def _stable_seed(seed: int, stream: str, block: int) -> int:
    digest = hashlib.blake2b(f"torchbrain:{int(seed)}:{stream}:{int(block)}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def block_generator(seed: int, stream: str, block: int, device=None) -> torch.Generator:
    """A generator for block ``block`` of the random stream ``stream``, seeded from ``seed``.

    The seed is a BLAKE2b hash of ``(seed, stream, block)``, so it is stable across processes,
    machines and Python runs (unlike the salted built-in ``hash``).
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"block_generator: 'seed' must be an int, got {seed!r}")
    device = torch.device(device if device is not None else "cpu")
    gen = torch.Generator(device=device)
    gen.manual_seed(_stable_seed(seed, stream, block))
    return gen


def _check(owner: str, n_pre, n_post, k, block_rows, allow_multi_conn, draw_from=None):
    for name, value, low in (("n_pre", n_pre, 1), ("n_post", n_post, 1), ("k", k, 0),
                             ("block_rows", block_rows, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{owner}: '{name}' must be an int >= {low}, got {value!r}")
    if not allow_multi_conn and draw_from is not None and k > draw_from:
        raise ValueError(
            f"{owner}: cannot draw {k} distinct neurons out of {draw_from} "
            "(allow_multi_conn=False)"
        )


def _check_range(owner: str, start: int, stop: int, n: int) -> None:
    if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start < stop <= n):
        raise ValueError(f"{owner}: the range [{start}, {stop}) must lie inside [0, {n})")


def _draw_block(rows: int, n: int, k: int, allow_multi_conn: bool, gen: torch.Generator,
                device) -> torch.Tensor:
    """``(rows, k)`` int64 draws in ``[0, n)``: with replacement, or ``k`` distinct per row
    (the draws of :func:`torchbrain.comm.fixed_out_degree_table`, from the block's generator)."""
    return fixed_out_degree_table(rows, n, k, allow_multi_conn=allow_multi_conn, generator=gen,
                                  device=device).long()


def _blockwise_table(rows: int, draw_from: int, k: int, seed: int, stream: str,
                     block_rows: int, allow_multi_conn: bool, device) -> torch.Tensor:
    """All ``rows`` of a table drawn block by block, as the ranks draw them (int32)."""
    out = torch.empty(rows, k, dtype=torch.int32, device=device)
    for b, r0 in enumerate(range(0, rows, block_rows)):
        r1 = min(rows, r0 + block_rows)
        gen = block_generator(seed, stream, b, device)
        out[r0:r1] = fixed_out_degree_table(r1 - r0, draw_from, k,
                                            allow_multi_conn=allow_multi_conn, generator=gen,
                                            device=device)
    return out


def blockwise_out_degree_table(n_pre: int, n_post: int, k: int, *, seed: int, stream: str = "",
                               block_rows: int = 1024, allow_multi_conn: bool = True,
                               device=None) -> torch.Tensor:
    """The full ``(n_pre, k)`` int32 target table drawn block by block (one process).

    Row ``i`` is identical to what :func:`fixed_out_degree_local` draws for presynaptic neuron
    ``i`` on any rank, so this is the single-process equivalent of the distributed tables (for
    small networks, references and tests). Parameters as :func:`fixed_out_degree_local`.
    """
    _check("blockwise_out_degree_table", n_pre, n_post, k, block_rows, allow_multi_conn, n_post)
    return _blockwise_table(n_pre, n_post, k, seed, stream, block_rows, allow_multi_conn, device)


def fixed_out_degree_local(n_pre: int, n_post: int, k: int, *, seed: int,
                           post_range: tuple[int, int], stream: str = "",
                           block_rows: int = 1024, allow_multi_conn: bool = True,
                           device=None) -> LocalTable:
    r"""Synapses of a fixed out-degree network that end on ``post_range``, drawn block by block.

    Every presynaptic neuron ``i`` draws ``k`` targets in ``[0, n_post)`` (with replacement unless
    ``allow_multi_conn=False``); this returns those in ``[post_start, post_stop)``.

    Parameters
    ----------
    n_pre, n_post : int
        Population sizes.
    k : int
        Out-degree (targets per presynaptic neuron).
    seed : int
        Seed shared by every rank.
    post_range : (int, int)
        The global postsynaptic range owned by this rank (``Partition.range(rank)``).
    stream : str, default ''
        Name of the random stream (different projections use different streams).
    block_rows : int, default 1024
        Presynaptic rows per block. Part of the table's identity: every rank must use the same.
    allow_multi_conn : bool, default True
        Draw targets with replacement (duplicates deliver once per entry).
    device : optional
        Where the draws and the table live (CPU and CUDA draw different tables).

    Returns
    -------
    LocalTable

    Notes
    -----
    Time :math:`O(n_\mathrm{pre} k)` per rank (every block is drawn), memory
    :math:`O(\mathrm{block\_rows}\,k + \text{local synapses})`.
    """
    owner = "fixed_out_degree_local"
    _check(owner, n_pre, n_post, k, block_rows, allow_multi_conn, n_post)
    lo, hi = (int(v) for v in post_range)
    _check_range(owner, lo, hi, n_post)
    counts, targets = [], []
    for b, r0 in enumerate(range(0, n_pre, block_rows)):
        r1 = min(n_pre, r0 + block_rows)
        gen = block_generator(seed, stream, b, device)
        draws = _draw_block(r1 - r0, n_post, k, allow_multi_conn, gen, device)
        keep = (draws >= lo) & (draws < hi)
        counts.append(keep.sum(1))
        # boolean indexing is row-major: per presynaptic row, in the order of the draws
        targets.append((draws[keep] - lo).to(torch.int32))
    return _csr(torch.cat(counts), torch.cat(targets), n_pre, lo, hi)


def _csr(counts: torch.Tensor, targets: torch.Tensor, n_pre: int, lo: int, hi: int) -> LocalTable:
    indptr = torch.zeros(n_pre + 1, dtype=torch.int64, device=counts.device)
    torch.cumsum(counts, 0, out=indptr[1:])
    return LocalTable(indptr, targets.contiguous(), n_pre, lo, hi)


def blockwise_in_degree_table(n_pre: int, n_post: int, k: int, *, seed: int, stream: str = "",
                              block_rows: int = 1024, allow_multi_conn: bool = True,
                              device=None) -> torch.Tensor:
    """The full ``(n_post, k)`` int32 *source* table of a fixed in-degree network (one process).

    Row ``j`` lists the presynaptic sources of postsynaptic neuron ``j``, identical to what
    :func:`fixed_in_degree_local` draws on any rank.
    """
    _check("blockwise_in_degree_table", n_pre, n_post, k, block_rows, allow_multi_conn, n_pre)
    return _blockwise_table(n_post, n_pre, k, seed, stream, block_rows, allow_multi_conn, device)


def fixed_in_degree_local(n_pre: int, n_post: int, k: int, *, seed: int,
                          post_range: tuple[int, int], stream: str = "",
                          block_rows: int = 1024, allow_multi_conn: bool = True,
                          device=None) -> LocalTable:
    r"""Synapses of a fixed in-degree network onto ``post_range``: each target draws ``k`` sources.

    Blocks are rows of *postsynaptic* neurons, so a rank draws only the blocks overlapping its
    range: time and memory :math:`O((\text{local neurons} + \mathrm{block\_rows})\,k)`.
    Parameters as :func:`fixed_out_degree_local` (``k`` is the in-degree; sources are drawn in
    ``[0, n_pre)``). Within a presynaptic row, synapses are ordered by target, then by draw.
    """
    owner = "fixed_in_degree_local"
    _check(owner, n_pre, n_post, k, block_rows, allow_multi_conn, n_pre)
    lo, hi = (int(v) for v in post_range)
    _check_range(owner, lo, hi, n_post)
    sources = []
    for b in range(lo // block_rows, -(-hi // block_rows)):
        r0, r1 = b * block_rows, min(n_post, (b + 1) * block_rows)
        gen = block_generator(seed, stream, b, device)
        draws = _draw_block(r1 - r0, n_pre, k, allow_multi_conn, gen, device)
        sources.append(draws[max(lo, r0) - r0: min(hi, r1) - r0])
    src = torch.cat(sources)                                   # (n_local, k)
    tgt = torch.arange(hi - lo, device=src.device).unsqueeze(1).expand_as(src)
    src, tgt = src.reshape(-1), tgt.reshape(-1)
    order = torch.sort(src, stable=True).indices              # group by source, keep target order
    counts = torch.bincount(src, minlength=n_pre)
    return _csr(counts, tgt[order].to(torch.int32), n_pre, lo, hi)


def initial_values_local(initializer, num: int, *, seed: int, post_range: tuple[int, int],
                         unit: str, stream: str = "V0", block_rows: int = 1024, dtype=None,
                         device=None) -> torch.Tensor:
    """The slice ``post_range`` of ``num`` per-neuron initial values, identical on any split.

    ``initializer`` (a :mod:`torchbrain.init` initializer, a quantity or a number) is drawn block
    by block with :func:`block_generator` (``(seed, stream, block)``), and only the blocks that
    overlap ``post_range`` are drawn. Returns a plain tensor in the canonical ``unit``.
    """
    from ..init import Initializer
    from ..units import to_canonical

    owner = "initial_values_local"
    lo, hi = (int(v) for v in post_range)
    _check_range(owner, lo, hi, num)
    dtype = dtype or torch.get_default_dtype()
    if not isinstance(initializer, Initializer):
        value = to_canonical(initializer, unit, owner=owner, name="initializer")
        return torch.as_tensor(value, dtype=dtype, device=device).expand(hi - lo).clone()
    parts = []
    for b in range(lo // block_rows, -(-hi // block_rows)):
        r0, r1 = b * block_rows, min(num, (b + 1) * block_rows)
        gen = block_generator(seed, stream, b, device)
        value = initializer(r1 - r0, dtype=dtype, device=device, generator=gen)
        value = torch.as_tensor(to_canonical(value, unit, owner=owner, name="initializer"))
        parts.append(value[max(lo, r0) - r0: min(hi, r1) - r0])
    return torch.cat(parts).to(dtype=dtype, device=device)
