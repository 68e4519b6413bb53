"""Fixed fan-out connectivity: every presynaptic neuron projects to the same number of targets.

``EventFixedProb`` (= ``EventFixedNumConn``) keeps brainpy.state's semantics: a float ``conn_num``
``p`` is **not** a Bernoulli probability but a fixed out-degree ``int(n_post * p)``; targets are
drawn with replacement unless ``allow_multi_conn=False``. The table is stored as an ``(n_pre, K)``
int32 index tensor (4 bytes per synapse) plus one scalar weight (homogeneous) or an
``(n_pre, K)`` weight table (8 bytes per synapse in float32). The forward pass is the event-driven
op :func:`torchbrain.ops.event_ell_matvec`, whose cost grows with spikes x fan-out.

Differences from the reference: the default ``seed=None`` draws from torch's global generator
(``torch.manual_seed`` makes it reproducible; the reference used NumPy's global RNG); graded
inputs are weighted by their value instead of being binarised.
"""

from __future__ import annotations

import math

import torch

from ..module import check_seed
from ..ops import event_ell_matvec
from .base import Comm

__all__ = ["EventFixedNumConn", "EventFixedProb", "FixedNumConn", "fixed_out_degree_table"]

#: Rows per chunk when drawing targets without replacement (bounds the temporary memory).
_CHUNK_ELEMENTS = 1 << 24


def fixed_out_degree_table(
    n_pre: int,
    n_post: int,
    k: int,
    *,
    allow_multi_conn: bool = True,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """An ``(n_pre, k)`` int32 table of target indices in ``[0, n_post)``.

    With ``allow_multi_conn=True`` targets are drawn with replacement (one ``randint``); without,
    each row is a uniform sample without replacement (the ``k`` smallest of ``n_post`` uniform keys,
    drawn in chunks of rows so the temporary memory stays bounded). No Python loop per neuron.
    """
    if allow_multi_conn:
        return torch.randint(0, n_post, (n_pre, k), generator=generator, device=device,
                             dtype=torch.int32)
    if k > n_post:
        raise ValueError(
            f"cannot draw {k} distinct targets out of {n_post} post neurons "
            "(allow_multi_conn=False)"
        )
    rows = max(1, _CHUNK_ELEMENTS // max(n_post, 1))
    out = torch.empty(n_pre, k, dtype=torch.int32, device=device)
    for start in range(0, n_pre, rows):
        stop = min(n_pre, start + rows)
        keys = torch.rand(stop - start, n_post, generator=generator, device=device)
        out[start:stop] = keys.topk(k, dim=1, largest=False).indices.to(torch.int32)
    return out


class EventFixedNumConn(Comm):
    r"""Event-driven connectivity with a fixed number of targets per presynaptic neuron.

    .. math::

        y_j = \sum_i s_i \sum_{k:\, \mathrm{idx}_{ik} = j} w_{ik}

    Parameters
    ----------
    in_size, out_size : int or tuple of int
        Presynaptic and postsynaptic population sizes.
    conn_num : int or float
        Out-degree ``K``; a float in ``[0, 1]`` means ``K = int(n_post * conn_num)``.
    conn_weight : quantity, number, tensor or Initializer
        Weight with the unit of what it delivers: a conductance (nS, for COBA), a current (pA, for
        CUBA) or a voltage (mV, for delta synapses). A scalar is homogeneous (one value, no
        per-synapse storage); an initializer or an ``(n_pre, K)`` tensor gives per-synapse weights.
    allow_multi_conn : bool, default True
        Draw targets with replacement (duplicates deliver the weight once per entry).
    seed : int, optional
        Seed of a private generator; ``None`` uses torch's global generator.
    trainable : bool, default False
        Register the weight as an ``nn.Parameter``.
    efferent_target : {'post'}
        Only ``'post'`` is supported (as in the reference).
    device, dtype : optional
        Factory arguments.

    Notes
    -----
    Memory: 4 bytes per synapse for the indices, plus 4 bytes per synapse for float32 per-synapse
    weights. A ``conn_num`` that rounds to 0 targets gives zero output.
    """

    def __init__(
        self,
        in_size,
        out_size,
        conn_num,
        conn_weight,
        efferent_target: str = "post",
        allow_multi_conn: bool = True,
        seed: int | None = None,
        trainable: bool = False,
        *,
        device=None,
        dtype=None,
    ):
        super().__init__(in_size, out_size, device=device, dtype=dtype)
        if efferent_target != "post":
            raise ValueError(
                f"{self._name()}: parameter 'efferent_target' must be 'post', got "
                f"{efferent_target!r}"
            )
        self.conn_num = self._out_degree(conn_num)
        self.allow_multi_conn = bool(allow_multi_conn)
        self.seed = seed = check_seed(self._name(), seed)
        generator = None
        if seed is not None:
            generator = torch.Generator(device=device or "cpu").manual_seed(int(seed))
        table = fixed_out_degree_table(
            self.n_pre, self.n_post, self.conn_num, allow_multi_conn=self.allow_multi_conn,
            generator=generator, device=device,
        )
        self.register_buffer("indices", table, persistent=True)
        weight = self._weight_tensor(conn_weight, (self.n_pre, self.conn_num))
        if weight.ndim not in (0, 2) or (
            weight.ndim == 2 and tuple(weight.shape) != (self.n_pre, self.conn_num)
        ):
            raise ValueError(
                f"{self._name()}: parameter 'conn_weight' must be a scalar or have shape "
                f"{(self.n_pre, self.conn_num)}, got shape {tuple(weight.shape)}"
            )
        self._store_weight(weight, trainable)

    def _out_degree(self, conn_num) -> int:
        if isinstance(conn_num, bool) or not isinstance(conn_num, int | float):
            raise TypeError(
                f"{self._name()}: parameter 'conn_num' must be an int (out-degree) or a float "
                f"fraction of out_size, got {conn_num!r}"
            )
        if isinstance(conn_num, float):
            if not 0.0 <= conn_num <= 1.0 or math.isnan(conn_num):
                raise ValueError(
                    f"{self._name()}: parameter 'conn_num' as a float is a fraction of the "
                    f"{self.n_post} post neurons and must lie in [0, 1], got {conn_num}"
                )
            return int(self.n_post * conn_num)
        if conn_num < 0:
            raise ValueError(f"{self._name()}: parameter 'conn_num' must be >= 0, got {conn_num}")
        return conn_num

    def _repr_config(self):
        return {**super()._repr_config(), "conn_num": self.conn_num,
                "allow_multi_conn": self.allow_multi_conn, "seed": self.seed}

    @property
    def num_synapses(self) -> int:
        return self.n_pre * self.conn_num

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """``(..., n_pre)`` spikes (or graded events) to ``(..., n_post)`` summed weights."""
        self._check_input(spikes)
        dtype = self.weight.dtype if self.weight.is_floating_point() else spikes.dtype
        if self.conn_num == 0:
            return spikes.new_zeros((*spikes.shape[:-1], self.n_post), dtype=dtype)
        return event_ell_matvec(spikes.to(dtype), self.indices, self.weight, self.n_post)

    def to_dense(self) -> torch.Tensor:
        """The equivalent ``(n_pre, n_post)`` dense weight matrix (for tests and inspection)."""
        eye = torch.eye(self.n_pre, dtype=self.weight.dtype, device=self.indices.device)
        return event_ell_matvec(eye, self.indices, self.weight.detach(), self.n_post)


class EventFixedProb(EventFixedNumConn):
    """brainpy.state's name for :class:`EventFixedNumConn`: the same layer (a fixed out-degree
    ``int(n_post * conn_num)`` for a float ``conn_num``, not a Bernoulli probability).

    A subclass rather than a second name for the class, so that errors and ``repr`` name the class
    the user wrote.
    """


class FixedNumConn(EventFixedNumConn):
    """Fixed fan-out connectivity for graded (non-spike) inputs: ``x @ W`` with the same storage.

    The product skips zero entries of ``x``, so sparse activity is still cheap.
    """
