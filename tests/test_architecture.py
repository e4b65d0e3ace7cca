"""The layer rule of docs/architecture.md, checked on the import graph of src/.

Every ``import`` of a drivevla module counts, at any depth of the file (TYPE_CHECKING blocks
included): no two files may import each other through any chain, a package imports only
packages on lower layers, and no drivevla import hides inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first; a package may import its own modules and those of strictly lower layers.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("language", "perception"),
    ("sim_bridge",),
    ("planner",),
    ("vla",),
    ("export",),
    ("agents",),
    ("runtime",),
    ("datasets", "benchmarks", "carla"),
    ("training",),
    ("cli",),
)
LAYER_OF = {pkg: i for i, names in enumerate(LAYERS) for pkg in names}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _imports(name: str, path: Path) -> list[tuple[str, ast.stmt]]:
    """(imported drivevla module, statement) for every import in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.c` names a.b.c's module
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("drivevla"):
                found.append((target, node))
    return list({(target, node.lineno): (target, node) for target, node in found}.values())


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYER_OF) else None


def test_every_package_has_a_layer():
    packages = {p.name for p in (SRC / "drivevla").iterdir() if (p / "__init__.py").is_file()}
    packages.discard("checkpoints")  # data only
    assert packages <= set(LAYER_OF), f"packages without a layer: {packages - set(LAYER_OF)}"
    loose = [m for m in MODULES if m.count(".") == 1 and _package(m) is None]
    assert not loose, f"modules outside every package (give them a layer): {loose}"


def test_packages_import_only_lower_layers():
    wrong = []
    for module, edges in GRAPH.items():
        src_pkg = _package(module)
        for target, node in edges:
            dst_pkg = _package(target)
            if src_pkg and dst_pkg and dst_pkg != src_pkg:
                if LAYER_OF[dst_pkg] >= LAYER_OF[src_pkg]:
                    wrong.append(f"{module}:{node.lineno} imports {target}")
    assert not wrong, "imports against the layer rule:\n" + "\n".join(sorted(set(wrong)))


def test_no_import_cycle_between_files():
    adjacency = {m: sorted({t for t, _ in edges}) for m, edges in GRAPH.items()}
    cycles = _strongly_connected(adjacency)
    assert not cycles, f"import cycles: {cycles}"


def test_no_drivevla_import_inside_a_function():
    hidden = [
        f"{module}:{node.lineno} imports {target}"
        for module, edges in GRAPH.items()
        for target, node in edges
        if node.col_offset > 0 and not _under_type_checking(MODULES[module], node)
    ]
    assert not hidden, "imports hidden inside functions:\n" + "\n".join(hidden)


def _under_type_checking(path: Path, target: ast.stmt) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            if any(stmt is target or _same(stmt, target) for stmt in node.body):
                return True
    return False


def _same(a: ast.stmt, b: ast.stmt) -> bool:
    return (a.lineno, a.col_offset) == (b.lineno, b.col_offset)


def _strongly_connected(adjacency: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm; returns every component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in adjacency.get(v, []):
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
                out.append(sorted(component))

    for v in adjacency:
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize(
    "adjacency, expected",
    [
        ({"a": ["b"], "b": ["a"], "c": ["a"]}, [["a", "b"]]),
        ({"a": ["b"], "b": ["c"], "c": []}, []),
    ],
)
def test_cycle_finder_finds_cycles(adjacency, expected):
    assert _strongly_connected(adjacency) == expected
