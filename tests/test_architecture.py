"""The import map of docs/architecture.rst, checked against the code.

Every ``import`` statement of the package (module level or inside a function: a lazy import is
still a dependency) is read with :mod:`ast`, resolved to the torchbrain module it names, and
held against the layers below. An import may go sideways (within a layer) or down, never up,
and no group of modules may import each other in a circle. The few upward imports that remain
are listed in ``ALLOWED_UPWARD`` with the reason each is there.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The layers, bottom first: a module may import its own layer and the layers before it.
#: (Matched by the longest prefix of the module's dotted name.)
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kernels", ("torchbrain.kernels",)),
    ("core", ("torchbrain.units", "torchbrain.state", "torchbrain.module", "torchbrain.environ",
              "torchbrain.surrogate", "torchbrain.init", "torchbrain.describe",
              "torchbrain.dynamics", "torchbrain.cache")),
    ("functional", ("torchbrain.functional", "torchbrain.analysis", "torchbrain.plot")),
    ("ops", ("torchbrain.ops",)),
    ("modules", ("torchbrain.neurons", "torchbrain.synapses", "torchbrain.comm",
                 "torchbrain.outputs", "torchbrain.projections", "torchbrain.inputs",
                 "torchbrain.readouts", "torchbrain.delay", "torchbrain.plasticity")),
    ("models", ("torchbrain.models",)),
    ("drivers", ("torchbrain.drivers",)),
    ("applications", ("torchbrain.training", "torchbrain.lightning", "torchbrain.distributed",
                      "torchbrain.interop", "torchbrain.data")),
    ("package", ("torchbrain", "torchbrain.__main__")),
)

#: Upward imports that stay, ``(importer, imported): why``. Keep it short: each entry is a
#: place where the map bends, and the reason must still hold when you read it.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    ("torchbrain.distributed._selftest", "torchbrain"):
        "a torchrun entry point, like __main__: it drives the library by its public names",
}


def _module_files() -> dict[str, Path]:
    files = {}
    for path in sorted((ROOT / "torchbrain").rglob("*.py")):
        rel = path.relative_to(ROOT / "torchbrain")
        if rel.parts[0] == "kernels":  # the symlink of a source checkout; kernels/ is read below
            continue
        files[_dotted("torchbrain", rel)] = path
    for path in sorted((ROOT / "kernels").glob("*.py")):  # installed as torchbrain.kernels
        files[_dotted("torchbrain.kernels", path.relative_to(ROOT / "kernels"))] = path
    return files


def _dotted(prefix: str, rel: Path) -> str:
    parts = [prefix, *rel.with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: torchbrain modules it imports}`` for every module of the package."""
    files = _module_files()
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # `from pkg import sub` imports the submodule pkg.sub when there is one
                subs = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in files]
                targets.update(subs)
                if len(subs) < len(node.names):
                    targets.add(source)
        graph[name] = {_known(t, files) for t in targets if t.split(".")[0] == "torchbrain"}
        graph[name].discard(name)
    return graph


def _known(target: str, files: dict[str, Path]) -> str:
    """The module (or package) a dotted import name lands in."""
    while target not in files and "." in target:
        target = target.rpartition(".")[0]
    return target


def layer_of(module: str) -> int:
    best, index = "", None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, index = prefix, i
    if index is None:
        raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: add it")
    return index


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  if layer_of(b) > layer_of(a))


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def without_package_faces(graph: dict[str, set[str]], faces: set[str]) -> dict[str, set[str]]:
    """The graph with each package's ``__init__`` (its face) replaced by the modules it hands on:
    a module that imports a sibling through its package's face depends on that sibling, not on
    the package, and a package importing its own modules is no circle of concepts."""
    def through(b: str, seen: frozenset) -> set[str]:
        if b not in faces:
            return {b}
        if b in seen:
            return set()
        return set().union(*(through(c, seen | {b}) for c in graph.get(b, ())))

    return {a: set().union(*(through(b, frozenset()) for b in targets)) - {a}
            for a, targets in graph.items() if a not in faces}


GRAPH = import_graph()
FACES = {m for m, path in _module_files().items() if path.name == "__init__.py"}


def test_every_module_is_in_a_layer():
    for module in GRAPH:
        layer_of(module)


def test_no_import_circle():
    assert circles(without_package_faces(GRAPH, FACES)) == []


def test_imports_flow_down():
    upward = [edge for edge in upward_imports(GRAPH) if edge not in ALLOWED_UPWARD]
    assert upward == [], "imports from a lower layer up (see docs/architecture.rst):\n" + "\n".join(
        f"  {a} -> {b}" for a, b in upward)


def test_allow_list_is_still_needed():
    stale = [edge for edge in ALLOWED_UPWARD if edge not in upward_imports(GRAPH)]
    assert stale == []


def test_kernels_import_no_library_module():
    """Triton kernels get what they need as arguments (no surrogate, no op, no module)."""
    for module, targets in GRAPH.items():
        if module.startswith("torchbrain.kernels"):
            assert all(t.startswith("torchbrain.kernels") for t in targets), (module, targets)


def test_the_checks_can_fail():
    """The cycle finder and the layer rule on a small graph with both faults."""
    graph = {"torchbrain.state": {"torchbrain.module"}, "torchbrain.module": {"torchbrain.state"},
             "torchbrain.ops.x": {"torchbrain.neurons.lif"}, "torchbrain.neurons.lif": set()}
    assert circles(graph) == [["torchbrain.module", "torchbrain.state"]]
    assert upward_imports(graph) == [("torchbrain.ops.x", "torchbrain.neurons.lif")]
