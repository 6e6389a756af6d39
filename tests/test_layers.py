"""The import layers (README "Layout"): every module of ``vasot_dist`` and ``vasot_pipelines`` imports only from
its own layer or the layers below it, and no chain of imports comes back to where it started.

The imports are read from the source with ``ast`` (nothing is imported), including those inside functions
and under ``TYPE_CHECKING``: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"vasot_dist": ROOT / "vasot_dist", "vasot_pipelines": ROOT / "pipelines" / "vasot_pipelines"}

# Lowest first. A module may import its own layer and the layers listed before it. "vasot_dist" is the root
# package's __init__ only (``vasot_dist.load``, imported inside the function, so importing any subpackage stays
# light); every other name covers a package (or module) and everything under it.
LAYERS: list[tuple[str, ...]] = [
    ("vasot_dist.runtime", "vasot_dist.ot"),
    ("vasot_dist.config",),
    ("vasot_dist.data", "vasot_dist.models"),
    ("vasot_dist.losses",),
    ("vasot_dist.eval",),
    ("vasot_dist.train",),
    ("vasot_dist.tune",),
    ("vasot_pipelines",),
    ("vasot_dist.infer",),
    ("vasot_dist.cli", "vasot_dist"),
]


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of the longest name that covers ``module``; None when none does."""
    best, best_len = None, -1
    for i, names in enumerate(LAYERS):
        for name in names:
            covers = module == name or (name != "vasot_dist" and module.startswith(name + "."))
            if covers and len(name) > best_len:
                best, best_len = i, len(name)
    return best


def project_modules() -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file of the packages (``__init__`` is the package)."""
    out = {}
    for pkg, folder in PACKAGES.items():
        for f in sorted(folder.rglob("*.py")):
            parts = [pkg, *f.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = f
    return out


def imports_of(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """Project modules ``module`` imports, with the line: ``from a import b`` counts as ``a.b`` when that is a
    module, else as ``a``; relative imports are resolved against ``module``'s package."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            # `import a.b.c` of a name that is not a module file (an attribute): its longest module prefix
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module and (target, node.lineno) not in out:
                out.append((target, node.lineno))
    return out


def _graph() -> tuple[dict[str, Path], dict[str, list[tuple[str, int]]]]:
    known = project_modules()
    return known, {m: imports_of(m, p, known) for m, p in known.items()}


def _where(known: dict[str, Path], module: str, line: int) -> str:
    return f"{known[module].relative_to(ROOT)}:{line}"


def test_every_module_has_a_layer():
    unplaced = [m for m in project_modules() if layer_of(m) is None]
    assert not unplaced, f"modules in no layer (add them to LAYERS in {Path(__file__).name}): {unplaced}"


def test_no_module_imports_a_layer_above_its_own():
    known, graph = _graph()
    upward = []
    for module, targets in graph.items():
        mine = layer_of(module)
        for target, line in targets:
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{_where(known, module, line)}: {module} (layer {mine}: {', '.join(LAYERS[mine])}) "
                              f"imports {target} (layer {theirs}: {', '.join(LAYERS[theirs])})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def find_cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """One cycle (as a closed path of modules) per strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph.get(v, []):
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
                cycles.append(_closed_path(graph, set(component), v))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def _closed_path(graph: dict[str, list[tuple[str, int]]], component: set[str], start: str) -> list[str]:
    """A path start -> ... -> start inside ``component`` (breadth first, so the shortest)."""
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w, _ in graph[v]:
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [*reversed(path), start]
                if w in component and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover - a component of size > 1 has one


def test_no_import_cycles():
    known, graph = _graph()
    lines = []
    for cycle in find_cycles(graph):
        steps = [f"{a} imports {b} ({_where(known, a, next(ln for t, ln in graph[a] if t == b))})"
                 for a, b in zip(cycle, cycle[1:])]
        lines.append(" -> ".join(cycle) + "\n    " + "\n    ".join(steps))
    assert not lines, "import cycles:\n" + "\n".join(lines)


def unit_of(module: str) -> str:
    """The name in :data:`LAYERS` that covers ``module`` (its package, for the package-level graph)."""
    names = [n for names in LAYERS for n in names
             if module == n or (n != "vasot_dist" and module.startswith(n + "."))]
    return max(names, key=len)


def test_no_import_cycles_between_packages():
    """Modules may be acyclic while their packages import each other (``eval`` <-> ``train`` once did);
    within one layer only this check can see it."""
    known, graph = _graph()
    packages: dict[str, list[tuple[str, int]]] = {}
    via: dict[tuple[str, str], str] = {}
    for module, targets in graph.items():
        edges = packages.setdefault(unit_of(module), [])
        for target, line in targets:
            a, b = unit_of(module), unit_of(target)
            if a != b and (b, 0) not in edges:
                edges.append((b, 0))
                via[a, b] = f"{module} imports {target} ({_where(known, module, line)})"
    lines = [" -> ".join(c) + "\n    " + "\n    ".join(via[a, b] for a, b in zip(c, c[1:]))
             for c in find_cycles(packages)]
    assert not lines, "packages that import each other:\n" + "\n".join(lines)


def test_the_checks_see_upward_imports_and_cycles(tmp_path):
    """The walk itself: a relative import, a lazy import in a function, ``from pkg import module``."""
    pkg = tmp_path / "vasot_dist"
    (pkg / "eval").mkdir(parents=True)
    (pkg / "train").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "eval" / "__init__.py").write_text("from . import runner\n")
    (pkg / "eval" / "runner.py").write_text("def f():\n    from vasot_dist.train import loop\n")
    (pkg / "train" / "loop.py").write_text("from ..eval.runner import f\n")
    known = {"vasot_dist": pkg / "__init__.py", "vasot_dist.eval": pkg / "eval" / "__init__.py",
             "vasot_dist.eval.runner": pkg / "eval" / "runner.py", "vasot_dist.train.loop": pkg / "train" / "loop.py"}
    graph = {m: imports_of(m, p, known) for m, p in known.items()}
    assert graph["vasot_dist.eval"] == [("vasot_dist.eval.runner", 1)]
    assert graph["vasot_dist.eval.runner"] == [("vasot_dist.train.loop", 2)]
    assert graph["vasot_dist.train.loop"] == [("vasot_dist.eval.runner", 1)]
    assert layer_of("vasot_dist.eval.runner") < layer_of("vasot_dist.train.loop")  # the lazy import is upward
    assert find_cycles(graph) == [["vasot_dist.eval.runner", "vasot_dist.train.loop", "vasot_dist.eval.runner"]]
