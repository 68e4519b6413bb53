r"""Capture ``K`` steps of a stateful network in one CUDA graph and replay them.

Why
---
A compiled chunk of ``K`` steps still launches every kernel from the host, one after the other,
and on a GPU a small network's step is shorter than the launches it takes. A CUDA graph records
the launches once and replays them with one call, so the host cost of ``K`` steps becomes one
replay plus a copy of the recorded outputs.

What a graph imposes
--------------------
A CUDA graph replays fixed memory addresses: its kernels read the tensors that were bound when it
was captured and write their results into the graph's private memory pool. torchbrain's steps
*rebind* their States (``self.V = V_new``), so after a capture the attributes would point at pool
tensors while every replay again reads the capture-time ones: each chunk would restart from the
same state. :class:`CapturedChunk` therefore

1. ends the captured region by copying each State's final value into the tensor that was bound
   before the capture (``before.copy_(after)``, a device copy recorded in the graph) and rebinding
   the attribute to it, so every replay reads and writes the same addresses (States mutated in
   place, such as ring buffers, already keep theirs);
2. feeds the start time ``t0`` of each chunk through a static device tensor updated with
   ``fill_`` before each replay (a Python number, or a CPU scalar tensor passed as a kernel
   argument, would be baked into the graph);
3. runs the warm-up chunks CUDA graphs require (lazy initialisation, compilation, workspaces) on
   a side stream, after snapshotting every State; the snapshot is copied back afterwards (and the
   random generators are restored), so setting up the graph does not advance the simulation;
4. compares the modules' non-State attributes and buffers after the last two warm-up chunks: a
   value that changes from one chunk to the next (a Python counter, a rebound non-State buffer, a
   one-shot input left for the next step) would be replayed at its capture-time value, so it is
   reported, naming the module and the attribute;
5. turns a failed capture (most often an operation that synchronises with the host, such as
   ``nonzero`` or ``.item()`` in a pure-torch fallback path) into a :class:`GraphCaptureError`
   naming the module: one eager probe step runs under a guard that makes host synchronisation
   raise (``torch.cuda.set_sync_debug_mode("error")``), and the innermost module of the network
   in its traceback is the culprit.

Between replays nothing may rebind the network's non-State tensors (:meth:`CapturedChunk.is_current`
tells); States rebound from outside (``tb.reset_all_states``, an uncaptured chunk) are copied into
the static tensors by :meth:`CapturedChunk.sync_states`.

Testing without a GPU
---------------------
The graph object is injectable (``graph_factory``). :class:`EmulatedGraph` reproduces the memory
semantics above on any device: at capture it records the State tensors the captured function
reads and the ones it leaves bound; a replay binds the States to the read ones, re-runs the
function, copies its results into the capture-time tensors (the "pool") and rebinds to them. A
chunk that forgot the copy-back, or baked ``t0`` in, therefore gives a different raster under
the emulation as it would on a GPU.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = [
    "GraphCaptureError",
    "StateSlot",
    "state_slots",
    "CapturedChunk",
    "CUDAGraphBackend",
    "EmulatedGraph",
]


class GraphCaptureError(RuntimeError):
    """The chunk cannot be captured in (or replayed from) a CUDA graph; the message says why."""


class StateSlot(NamedTuple):
    """Where a State lives: its qualified name, the module holding it and the attribute name."""

    qualname: str
    module: nn.Module
    name: str


def state_slots(net: nn.Module) -> list[StateSlot]:
    """Every State attribute of ``net`` and its submodules (each module once), in module order."""
    slots = []
    for prefix, module in net.named_modules():
        for name in getattr(module, "_state_kinds", {}):
            slots.append(StateSlot(f"{prefix}.{name}" if prefix else name, module, name))
    return slots


def _bind(slot: StateSlot, value: torch.Tensor | None) -> None:
    setter = getattr(slot.module, "_set_state_value", None)
    if setter is not None:
        setter(slot.name, value)
    else:  # pragma: no cover - only torchbrain modules declare States
        setattr(slot.module, slot.name, value)


def _describe(t: Any) -> str:
    if not isinstance(t, torch.Tensor):
        return repr(t)
    return f"{str(t.dtype).removeprefix('torch.')}{list(t.shape)} on {t.device}"


def _compatible(a: Any, b: Any) -> bool:
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return a is None and b is None
    return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    return str(t.device), t.untyped_storage().data_ptr()


# ------------------------------------------------------------------ non-State values
class _Same:
    """Compares equal only to the same object (tensors are told apart by identity, not value)."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self):  # pragma: no cover - never hashed, defined for consistency
        return id(self.obj)

    def __repr__(self):
        return f"<{_describe(self.obj)} at {id(self.obj):#x}>"


_SCALARS = (bool, int, float, complex, str, type(None))
#: nn.Module internals that are not a module's values (hooks, children, States' kinds).
_SKIP_ATTRIBUTES = frozenset({"_modules", "_state_kinds", "_param_units", "_factory",
                              "_non_persistent_buffers_set",
                              # host-side bookkeeping no step reads: simulation time, dt checked
                              "_torchbrain_t", "_dt_checked"})


def _token(value: Any, depth: int = 2) -> Any:
    """What of ``value`` a graph would bake in: scalars by value, tensors by identity."""
    if isinstance(value, torch.Tensor):
        return _Same(value)
    if isinstance(value, _SCALARS):
        return value
    if depth > 0 and isinstance(value, dict):
        return tuple((k, _token(v, depth - 1)) for k, v in value.items())
    if depth > 0 and isinstance(value, list | tuple):
        return tuple(_token(v, depth - 1) for v in value)
    return None  # functions, surrogates, devices, ...: not values a step changes


def _non_state_values(net: nn.Module) -> dict[tuple[str, str], Any]:
    """Tokens of every non-State value of every module: attributes, buffers and parameters."""
    out = {}
    for prefix, module in net.named_modules():
        states = getattr(module, "_state_kinds", {})
        for attr, value in vars(module).items():
            if attr in _SKIP_ATTRIBUTES or attr.endswith("hooks") or attr.endswith("hooks_"):
                continue
            if attr in ("_buffers", "_parameters"):
                for name, tensor in value.items():
                    if name not in states:
                        out[(prefix, name)] = _token(tensor)
            else:
                out[(prefix, attr)] = _token(value)
    return out


def _changes(before: dict, after: dict) -> list[tuple[str, str]]:
    """The keys whose token differs, in a stable order."""
    keys = list(before) + [k for k in after if k not in before]
    return [k for k in keys if before.get(k, "<absent>") != after.get(k, "<absent>")]


def _has_tensor(value: Any, depth: int = 2) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if depth > 0 and isinstance(value, dict):
        return any(_has_tensor(v, depth - 1) for v in value.values())
    if depth > 0 and isinstance(value, list | tuple):
        return any(_has_tensor(v, depth - 1) for v in value)
    return False


class _CarriedRead(Exception):
    """A step read a non-State tensor left by the previous step (raised by the probe)."""

    def __init__(self, origin: tuple[str, str]):
        super().__init__(f"read of {origin[1]!r} of module {origin[0]!r}")
        self.origin = origin


class _CarriedTensor(torch.Tensor):
    """Stands in for a non-State tensor during the probe step: any use of its values raises.

    Metadata (``shape``, ``dtype``, ``device``, read through properties) stays readable: a graph
    bakes those in legitimately.
    """

    _origin: tuple[str, str]

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") == "__get__":
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **(kwargs or {}))
        for leaf in torch.utils._pytree.tree_leaves((args, kwargs)):
            if isinstance(leaf, _CarriedTensor):
                raise _CarriedRead(leaf._origin)
        raise _CarriedRead(("?", "?"))  # pragma: no cover - a sentinel is always an argument


def _poison(value: Any, origin: tuple[str, str], depth: int = 2) -> Any:
    """``value`` with every tensor in it replaced by a :class:`_CarriedTensor`."""
    if isinstance(value, torch.Tensor):
        sentinel = value.detach().as_subclass(_CarriedTensor)
        sentinel._origin = origin
        return sentinel
    if depth > 0 and isinstance(value, dict):
        return type(value)((k, _poison(v, origin, depth - 1)) for k, v in value.items())
    if depth > 0 and isinstance(value, list | tuple):
        return type(value)(_poison(v, origin, depth - 1) for v in value)
    return value


def _get_value(module: nn.Module, attr: str) -> Any:
    if attr in module._buffers:
        return module._buffers[attr]
    if attr in module._parameters:
        return module._parameters[attr]
    return vars(module).get(attr)


def _set_value(module: nn.Module, attr: str, value: Any) -> None:
    if attr in module._buffers:
        module._buffers[attr] = value
    else:
        object.__setattr__(module, attr, value)


# ------------------------------------------------------------------ diagnosis
def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _culprit(exc: BaseException, net: nn.Module) -> tuple[str, nn.Module] | None:
    """The innermost module of ``net`` whose method is in the traceback of ``exc`` (or a cause)."""
    names = {id(m): q for q, m in net.named_modules()}
    for err in reversed(_exception_chain(exc)):  # the original error first
        found = None
        tb = err.__traceback__
        while tb is not None:
            obj = tb.tb_frame.f_locals.get("self")
            if obj is not None and id(obj) in names:
                found = (names[id(obj)], obj)
            tb = tb.tb_next
        if found is not None:
            return found
    return None


def _module_label(qualname: str, module: nn.Module) -> str:
    return f"'{qualname}' ({type(module).__name__})" if qualname else type(module).__name__


# ------------------------------------------------------------------ RNG
class _RNGState:
    """The global generators of the CPU and of ``device``, saved to be put back."""

    def __init__(self, device: torch.device):
        self.cpu = torch.get_rng_state()
        self.device = device if device.type == "cuda" else None
        self.cuda = torch.cuda.get_rng_state(device) if self.device is not None else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.device is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


# ------------------------------------------------------------------ graph backends
class CUDAGraphBackend:
    """:class:`torch.cuda.CUDAGraph` behind the small interface :class:`CapturedChunk` uses.

    Parameters
    ----------
    net : nn.Module
        The network (unused here; the emulation needs it).
    device : torch.device
        The CUDA device of the network's States.
    """

    def __init__(self, net: nn.Module, device: torch.device):
        if device.type != "cuda":
            raise GraphCaptureError(
                f"CUDAGraphBackend: CUDA graphs need States on a CUDA device, got {device}"
            )
        self.device = device
        self.graph = torch.cuda.CUDAGraph()

    def warmup(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on a side stream, as CUDA graphs require before a capture."""
        with torch.cuda.device(self.device):
            current = torch.cuda.current_stream()
            side = torch.cuda.Stream()
            side.wait_stream(current)
            with torch.cuda.stream(side):
                fn()
            current.wait_stream(side)

    def capture(self, fn: Callable[[], Any]) -> Any:
        """Record ``fn`` (not executed) and return its outputs, which replays overwrite."""
        with torch.cuda.device(self.device):
            torch.cuda.synchronize()
            with torch.cuda.graph(self.graph):
                return fn()

    def replay(self) -> None:
        self.graph.replay()

    @contextlib.contextmanager
    def host_sync_guard(self) -> Iterator[None]:
        """Make operations that synchronise with the host raise (for the probe step)."""
        previous = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(previous)


#: Operators whose result the host must wait for (a value, or an output size that depends on
#: the data); a CUDA graph cannot record them.
_HOST_SYNC_OPS = frozenset({
    "aten::_local_scalar_dense", "aten::is_nonzero", "aten::item", "aten::nonzero",
    "aten::masked_select", "aten::equal", "aten::unique_consecutive", "aten::_unique",
    "aten::_unique2", "aten::unique_dim", "aten::bincount",
})


class _RejectHostSync(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name in _HOST_SYNC_OPS:
            raise RuntimeError(
                f"EmulatedGraph: {name} synchronises with the host, which a CUDA graph cannot "
                "capture (operation not permitted when stream is capturing)"
            )
        return func(*args, **(kwargs or {}))


class EmulatedGraph:
    """A stand-in for a CUDA graph with its memory semantics, on any device (for tests).

    At :meth:`capture` the function runs once; the emulation records the State tensors bound
    when it started (the addresses the graph's kernels read) and those bound when it ended (the
    graph's pool) and the output. :meth:`replay` binds the States to the former, re-runs the
    function, copies the new values into the latter (and the output into the capture-time
    output) and rebinds the States to them -- what a real replay leaves behind. Tensors the
    function reads through a closure (the static ``t0``) are read again, as a graph reads their
    address.

    Parameters
    ----------
    net : nn.Module
        The network whose States the graph reads and writes.
    device : torch.device, optional
        Unused (any device works).
    forbid_host_sync : bool, default False
        Make host-synchronising operators (``nonzero``, ``.item()``, ``bool(tensor)``, ...)
        raise during the capture and under :meth:`host_sync_guard`, as they do on a GPU. Only
        operators dispatched from Python are seen (not those inside a custom op's CPU kernel,
        nor inside ``torch.compile``'d code, which Dynamo skips under a dispatch mode): use it
        with eager chunks.
    """

    def __init__(self, net: nn.Module, device: torch.device | None = None, *,
                 forbid_host_sync: bool = False):
        self.net = net
        self.forbid_host_sync = forbid_host_sync
        self._fn: Callable[[], Any] | None = None

    def warmup(self, fn: Callable[[], Any]) -> None:
        fn()

    def _bound(self) -> list[Any]:
        """What every place the graph reads holds now: States, then other tensor values."""
        return ([getattr(s.module, s.name) for s in self._slots]
                + [_get_value(m, a) for m, a in self._others])

    def _rebind(self, values: list[Any]) -> None:
        for slot, value in zip(self._slots, values, strict=False):
            _bind(slot, value)
        for (module, attr), value in zip(self._others, values[len(self._slots):], strict=True):
            _set_value(module, attr, value)

    def capture(self, fn: Callable[[], Any]) -> Any:
        self._slots = state_slots(self.net)
        # non-State tensors (plain attributes, buffers) are read at their address as well
        self._others = [
            (module, attr) for _, module in self.net.named_modules()
            for attr, value in [*vars(module).items(), *module._buffers.items()]
            if isinstance(value, torch.Tensor) and attr not in getattr(module, "_state_kinds", {})
        ]
        self._read = self._bound()
        rng = torch.get_rng_state()
        guard = self.host_sync_guard() if self.forbid_host_sync else contextlib.nullcontext()
        with guard:
            out = fn()
        # a real capture executes nothing: the generators do not move
        torch.set_rng_state(rng)
        self._pool = self._bound()
        self._fn, self._out = fn, out
        return out

    def replay(self) -> None:
        if self._fn is None:
            raise RuntimeError("EmulatedGraph: replay() before capture()")
        self._rebind(self._read)
        new_out = self._fn()
        for now, pool in zip(self._bound(), self._pool, strict=True):
            if now is not pool and _compatible(now, pool) and pool is not None:
                # the graph wrote this chunk's value into the tensor the capture left bound
                pool.copy_(now)
        self._rebind(self._pool)
        if new_out is not self._out:
            self._out.copy_(new_out)

    def host_sync_guard(self):
        return _RejectHostSync()


# ------------------------------------------------------------------ the captured chunk
class CapturedChunk:
    r"""``K`` steps of a stateful network captured once in a CUDA graph, replayed per chunk.

    ``fn(t0)`` advances the network by the chunk's steps, starting at time ``t0`` (a 0-d float64
    tensor on the States' device, in ms), and returns one tensor (the chunk's records, e.g.
    ``(K, N)`` spikes). After :meth:`capture`, :meth:`replay(t0) <replay>` does what ``fn(t0)``
    does to the States and returns the records in a static buffer that the next replay
    overwrites (copy what you keep). See the module notes for how the States keep static
    addresses.

    Parameters
    ----------
    net : nn.Module
        The network whose States ``fn`` reads and rebinds.
    fn : callable
        ``fn(t0) -> Tensor``; eager or ``torch.compile``'d. It must not synchronise with the
        host, and may read from the environment only values that stay fixed between replays.
    device : torch.device or str
        Device of the States (and of the static ``t0``).
    graph_factory : callable, optional
        ``graph_factory(net, device)`` returns the graph object (``warmup(f)``, ``capture(f)``,
        ``replay()`` and optionally ``host_sync_guard()``); default :class:`CUDAGraphBackend`.
        Tests pass :class:`EmulatedGraph`.
    warmup : int, default 2
        Warm-up chunks before the capture (>= 2: the last two are compared to find non-State
        values that change between chunks).
    probe : callable, optional
        ``probe(t0)``: an *eager* step (or a few) of the network, run once after a failed
        capture under a host-synchronisation guard so that its traceback names the module that
        cannot be captured. Default: ``fn``.
    owner : str, default "CapturedChunk"
        Name used in error messages.

    Attributes
    ----------
    first_call_seconds : float
        Wall time of the first warm-up chunk (includes ``torch.compile``'s compilation).
    capture_seconds : float
        Wall time of the other warm-up chunks and of the capture itself.

    Raises
    ------
    GraphCaptureError
        From :meth:`capture`, naming the module and the reason when the chunk cannot be
        captured; from :meth:`sync_states` when a State was rebound to a tensor of another
        shape, dtype or device since the capture (capture again).

    Notes
    -----
    Setting up costs ``warmup`` chunks, a copy of every State (the snapshot; for plastic weights
    held as States this doubles their memory for a moment) and, when some non-State tensor
    changes between chunks, one eager probe step. The random numbers of torch's global
    generators are not reproduced bit for bit by a CUDA graph (they are drawn from other
    offsets); the counter-based generators of :mod:`torchbrain.inputs` are.
    """

    def __init__(self, net: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor], *,
                 device: torch.device | str,
                 graph_factory: Callable[[nn.Module, torch.device], Any] | None = None,
                 warmup: int = 2, probe: Callable[[torch.Tensor], Any] | None = None,
                 owner: str = "CapturedChunk"):
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 2:
            raise ValueError(f"{owner}: 'warmup' must be an int >= 2, got {warmup!r}")
        self.net = net
        self.fn = fn
        self.device = torch.device(device)
        self.graph_factory = CUDAGraphBackend if graph_factory is None else graph_factory
        self.warmup = warmup
        self.probe = fn if probe is None else probe
        self.owner = owner
        self.first_call_seconds = 0.0
        self.capture_seconds = 0.0
        self.graph = None
        self._output: torch.Tensor | None = None

    # -------------------------------------------------------------- public
    @torch.inference_mode()
    def capture(self, t0: float) -> None:
        """Warm up, capture one chunk starting at ``t0`` (ms), and leave the States as they were.

        The States are not advanced: the chunk from ``t0`` runs at the first :meth:`replay`.
        """
        self.graph = self._output = None
        self._t0 = torch.full((), float(t0), dtype=torch.float64, device=self.device)
        self._slots = state_slots(self.net)
        self._materialise_states()
        self._static = [getattr(s.module, s.name) for s in self._slots]
        self._static_storages = {_storage_key(t) for t in self._static
                                 if isinstance(t, torch.Tensor)}
        snapshot = [t.clone() if isinstance(t, torch.Tensor) else None for t in self._static]
        rng = _RNGState(self.device)
        graph = self.graph_factory(self.net, self.device)
        try:
            try:
                changed = self._warm_up(graph)
            finally:
                self._restore(snapshot)
                rng.restore()
            if changed:
                self._check_changed_values(changed, snapshot)
            # written before being read in every step: free to change between chunks
            self._scratch = set(changed)
            tic = time.perf_counter()
            try:
                output = graph.capture(self._captured)
            except Exception as exc:
                self._restore(snapshot)
                raise GraphCaptureError(self._diagnose(exc, graph, snapshot)) from exc
            # A real capture executes nothing; the emulation does: put the States back either
            # way (on a GPU this is a redundant copy).
            self._restore(snapshot)
        except GraphCaptureError:
            raise
        except Exception as exc:
            raise GraphCaptureError(
                f"{self.owner}: the chunk failed during the CUDA-graph warm-up: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.capture_seconds += time.perf_counter() - tic
        if not isinstance(output, torch.Tensor):
            raise GraphCaptureError(
                f"{self.owner}: the captured function must return one tensor, got "
                f"{type(output).__name__}"
            )
        self.graph, self._output = graph, output
        self._fixed = self._replayed_values()

    def replay(self, t0: float) -> torch.Tensor:
        """Run the captured chunk from time ``t0`` (ms); returns the static output buffer.

        Nothing is checked here (a replay is the hot loop): after anything outside the graph
        rebinds States, call :meth:`sync_states` first.
        """
        if self.graph is None:
            raise GraphCaptureError(f"{self.owner}: replay() before a successful capture()")
        with torch.inference_mode():
            self._t0.fill_(float(t0))
            self.graph.replay()
        return self._output

    @torch.inference_mode()
    def sync_states(self) -> None:
        """Copy the States rebound since the capture (``tb.reset_all_states``, an uncaptured
        chunk) into the tensors the graph reads, and rebind them there."""
        if self.graph is None:
            return
        for slot, static in zip(self._slots, self._static, strict=True):
            value = getattr(slot.module, slot.name)
            if value is static:
                continue
            if not _compatible(value, static):
                raise GraphCaptureError(
                    f"{self.owner}: State '{slot.qualname}' is now {_describe(value)}, the "
                    f"graph was captured with {_describe(static)}; capture again"
                )
            if static is not None:
                static.copy_(value)
            _bind(slot, static)

    def is_current(self) -> bool:
        """Whether a replay still reads the network's tensors: no State changed shape, dtype or
        device, no State was added or removed, and no non-State value (buffer, parameter,
        attribute) was rebound since the capture. ``False``: capture again."""
        if self.graph is None:
            return False
        slots = state_slots(self.net)
        if [(id(s.module), s.name) for s in slots] != [(id(s.module), s.name)
                                                       for s in self._slots]:
            return False
        for slot, static in zip(slots, self._static, strict=True):
            if not _compatible(getattr(slot.module, slot.name), static):
                return False
        return not _changes(self._fixed, self._replayed_values())

    def _replayed_values(self) -> dict:
        """The non-State values a replay depends on (scratch values left out)."""
        return {k: v for k, v in _non_state_values(self.net).items() if k not in self._scratch}

    # -------------------------------------------------------------- the captured function
    def _captured(self) -> torch.Tensor:
        out = self.fn(self._t0)
        self._copy_back()
        if isinstance(out, torch.Tensor) and _storage_key(out) in self._static_storages:
            out = out.clone()  # the records must not alias a State the next chunk overwrites
        return out

    def _copy_back(self) -> None:
        """Copy each rebound State into its pre-capture tensor and rebind it there."""
        pending = []
        target_of: dict[int, Any] = {}
        for slot, before in zip(self._slots, self._static, strict=True):
            after = getattr(slot.module, slot.name)
            if after is before:
                continue
            if not _compatible(after, before):
                raise GraphCaptureError(
                    f"{self.owner}: State '{slot.qualname}' changed from {_describe(before)} "
                    f"to {_describe(after)} within the chunk; a CUDA graph needs every State "
                    "to keep its shape, dtype and device (initialise the States before running)"
                )
            previous = target_of.setdefault(id(before), after)
            if previous is not after:
                raise GraphCaptureError(
                    f"{self.owner}: State '{slot.qualname}' shares its tensor with another "
                    "State but the chunk gave them different values; give each State its own "
                    "tensor"
                )
            if _storage_key(after) in self._static_storages:
                # `after` is (a view of) a State tensor that another copy may overwrite first
                # (`self.a = self.b` and the like): keep its value.
                after = after.clone()
            pending.append((slot, before, after))
        for slot, before, after in pending:
            before.copy_(after)
            _bind(slot, before)

    # -------------------------------------------------------------- setup helpers
    def _materialise_states(self) -> None:
        # A State stored as a broadcast view (stride 0) cannot be written in place: give it its
        # own memory first.
        for slot in self._slots:
            value = getattr(slot.module, slot.name)
            if isinstance(value, nn.Parameter):
                continue  # written in place already: its address never changes
            if isinstance(value, torch.Tensor) and not value.is_contiguous():
                _bind(slot, value.contiguous())
            elif value is not None and not isinstance(value, torch.Tensor):
                raise GraphCaptureError(
                    f"{self.owner}: State '{slot.qualname}' holds a {type(value).__name__}, "
                    "not a tensor"
                )

    def _restore(self, snapshot: list[torch.Tensor | None]) -> None:
        for slot, static, saved in zip(self._slots, self._static, snapshot, strict=True):
            if isinstance(static, torch.Tensor):
                static.copy_(saved)
            if getattr(slot.module, slot.name) is not static:
                _bind(slot, static)

    def _warm_up(self, graph) -> list[tuple[str, str]]:
        """Run the warm-up chunks; returns the non-State values the last one changed."""
        values = []

        def chunks():
            for i in range(self.warmup):
                tic = time.perf_counter()
                self._captured()
                if i == 0:
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)
                    self.first_call_seconds = time.perf_counter() - tic
                values.append(_non_state_values(self.net))

        tic = time.perf_counter()
        graph.warmup(chunks)
        self.capture_seconds = time.perf_counter() - tic - self.first_call_seconds
        return _changes(values[-2], values[-1])

    def _check_changed_values(self, changed: list[tuple[str, str]], snapshot) -> None:
        """Raise when a non-State value that changes between chunks would be replayed stale.

        A Python value (number, string, ...) is baked into a graph: always an error. A tensor
        rebound every step is fine when each step writes it before reading it (a scratch value,
        such as the conductance a synapse binds on its output); it is an error when a step reads
        the one the previous step left. One eager probe step with those tensors replaced by
        sentinels that raise on use tells which.
        """
        scratch = []
        for qualname, attr in changed:
            module = self.net.get_submodule(qualname)
            value = _get_value(module, attr)
            if not _has_tensor(value):
                raise GraphCaptureError(
                    f"{self.owner}: cannot capture the chunk in a CUDA graph: module "
                    f"{_module_label(qualname, module)} changes '{attr}' (now {value!r}), which "
                    "is not a State, from one chunk to the next; a graph replays the value it "
                    "captured. Keep values that change per step in a State "
                    "(tb.ShortTermState / tb.HiddenState)."
                )
            scratch.append((qualname, attr, module, value))
        rng = _RNGState(self.device)
        found, failure = None, None
        for qualname, attr, module, value in scratch:
            _set_value(module, attr, _poison(value, (qualname, attr)))
        try:
            self.probe(self._t0)
        except _CarriedRead as err:
            found = err.origin
        except Exception as err:  # reported below, with what was being checked
            failure = err
        finally:
            for _, attr, module, value in scratch:
                _set_value(module, attr, value)
            self._restore(snapshot)
            rng.restore()
        if found is not None:
            module = self.net.get_submodule(found[0])
            raise GraphCaptureError(
                f"{self.owner}: cannot capture the chunk in a CUDA graph: module "
                f"{_module_label(found[0], module)} reads '{found[1]}', a tensor that is not "
                "a State, before writing it in a step (it carries a value from one step to the "
                "next); a graph would replay the tensor it captured. Declare it as a State "
                "(tb.ShortTermState / tb.HiddenState)."
            )
        if failure is not None:
            names = ", ".join(f"'{q}.{a}'" if q else f"'{a}'" for q, a, _, _ in scratch)
            raise GraphCaptureError(
                f"{self.owner}: cannot capture the chunk in a CUDA graph: the non-State tensors "
                f"{names} change from one chunk to the next, and the probe step that checks "
                f"they are written before being read failed ({type(failure).__name__}: "
                f"{failure})"
            ) from failure

    def _diagnose(self, exc: BaseException, graph, snapshot) -> str:
        """The error message for a failed capture, naming the module when a probe finds it."""
        reason = f"{type(exc).__name__}: {exc}"
        guard = getattr(graph, "host_sync_guard", None)
        found, probe_error = None, None
        if guard is not None:
            rng = _RNGState(self.device)
            try:
                with guard():
                    self.probe(self._t0)
            except Exception as err:  # the probe is expected to fail: that is the diagnosis
                probe_error = err
                found = _culprit(err, self.net)
            finally:
                self._restore(snapshot)
                rng.restore()
        if found is None:
            found = _culprit(exc, self.net)
        where = "" if found is None else f" in module {_module_label(*found)}"
        if probe_error is not None:
            return (
                f"{self.owner}: cannot capture the chunk in a CUDA graph: an operation{where} "
                f"synchronises with the host ({type(probe_error).__name__}: {probe_error}); "
                "a graph cannot record it (typical: nonzero/.item() in a pure-torch fallback "
                f"path; on CUDA use the Triton kernels). Capture error: {reason}"
            )
        return f"{self.owner}: cannot capture the chunk in a CUDA graph{where}: {reason}"
