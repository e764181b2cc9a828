"""The package's layering: every import (module level and inside functions) goes down the layer order.

The order is written down once, here, and explained in ``docs/architecture.md``. A package may import
itself and any package in a LOWER tier; an import into the same tier (another package) or a higher one
fails, and so does an import cycle between modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import neuralannot

ROOT = Path(neuralannot.__file__).parent

#: Lowest first. Each entry is a package under ``neuralannot`` (or a top-level module), ``neuralannot``
#: itself standing for the root ``__init__`` (version only).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("neuralannot", "utils", "paths"),  # generic helpers, no project imports
    ("geometry",),  # rotations, cameras, alignment
    ("render",),  # headless mesh renderer
    ("bodies",),  # body models, joint sets, pose embeddings, part tables
    ("metrics", "surface"),  # batched metrics, point-to-surface error
    ("data",),  # samples, adapters, crops, synthetic generator, load_samples
    ("io",),  # pseudo-GT files and record builder, export, write guards
    ("models",),  # backbones and heads
    ("training",),  # offline asset training (pose VAE)
    ("annotators",),  # neural annotator, SMPLify-X, EFT, hybrid, two-stage
    ("evaluation",),  # metrics of pseudo-GTs against GT
    ("comparison",),  # every annotator on the same samples
    ("report",),  # HTML report
    ("commands",),  # CLI sub-commands
    ("demo",),  # the README demo
    ("cli",),  # entry point
)
TIER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every ``neuralannot`` module ``name`` imports, anywhere in the file (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):  # annotation-only imports do not run: drop ``if TYPE_CHECKING:`` bodies
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and getattr(test, "id", getattr(test, "attr", "")) == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # ``from neuralannot import metrics`` imports the module ``neuralannot.metrics``
            found.update(f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in MODULES)
    return {m for m in found if m == "neuralannot" or m.startswith("neuralannot.")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "neuralannot"


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_every_package_has_a_layer():
    missing = sorted({_layer(m) for m in MODULES} - set(TIER))
    assert not missing, f"add {missing} to LAYERS (and to docs/architecture.md)"


def test_no_upward_or_sideways_import():
    bad = []
    for src, targets in GRAPH.items():
        for dst in targets:
            a, b = _layer(src), _layer(dst)
            if a != b and TIER.get(b, -1) >= TIER.get(a, -1):
                bad.append(f"{src} -> {dst} ({a} tier {TIER.get(a)}, {b} tier {TIER.get(b)})")
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(bad))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package_graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for src, targets in GRAPH.items():
        g.setdefault(_layer(src), set()).update(_layer(t) for t in targets if _layer(t) != _layer(src))
    return g


def test_no_import_cycle_between_packages():
    assert _cycles(_package_graph()) == []


def test_no_import_cycle_between_modules():
    # a package's ``__init__`` re-exporting its own modules is not a cycle of work: only edges into
    # modules that are not the importer's own package ``__init__`` count
    graph = {src: {t for t in targets if not src.startswith(t + ".")} for src, targets in GRAPH.items()}
    assert _cycles(graph) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]), ({"a": {"b"}, "b": set()}, [])],
)
def test_cycle_finder(graph, expected):
    assert _cycles(graph) == expected


def test_checker_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from neuralannot.cli import main\n    return main\n")
    assert _imports("neuralannot.bodies.m", f) == {"neuralannot.cli"}
    f.write_text("import typing\nif typing.TYPE_CHECKING:\n    from neuralannot.cli import main\n")
    assert _imports("neuralannot.bodies.m", f) == set()
