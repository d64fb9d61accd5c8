"""The core's shape: no import cycles, one job per layer, small modules and functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "hebm_core"


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, top_level_only: bool) -> set[str]:
    """The hebm_core modules ``name`` imports (a ``from pkg import sub`` counts as ``pkg.sub`` when it is one)."""
    tree = ast.parse(MODULES[name].read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("hebm_core")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hebm_core"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}
    return {m for m in found if m in MODULES and m != name}


def test_no_import_cycles():
    """Module-level imports form a DAG (a package's ``__init__`` counts as importing what it re-exports)."""
    graph = {m: _imports(m, top_level_only=True) for m in MODULES}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        if state.get(m) == 2:
            return
        assert state.get(m) != 1, f"import cycle: {' -> '.join(path + [m])}"
        state[m] = 1
        for n in sorted(graph[m]):
            if not m.startswith(n + "."):  # a submodule importing its own package's __init__ is Python's order
                visit(n, path + [m])
        state[m] = 2

    for m in sorted(graph):
        visit(m, [])


def _layer(m: str) -> str:
    return m.split(".")[1] if m.count(".") else m


def test_only_the_run_stages_import_both_training_and_sampling():
    for m in MODULES:
        layers = {_layer(n) for n in _imports(m, top_level_only=False)}
        if {"training", "samplers"} <= layers:
            assert _layer(m) in ("runs", "cli"), m
    for m in MODULES:
        layers = {_layer(n) for n in _imports(m, top_level_only=False)}
        if _layer(m) == "training":
            assert not layers & {"samplers", "runs", "hybrid", "config", "cli", "registry"}, (m, layers)
        if _layer(m) in ("samplers", "objectives", "calibration"):
            assert not layers & {"training", "runs", "config", "cli", "registry"}, (m, layers)


def test_the_trainer_knows_no_hybrid():
    for path in (ROOT / "training").glob("*.py"):
        assert "HybridEnergy" not in path.read_text() and "eta_report" not in path.read_text(), path


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_stay_small(name):
    src = MODULES[name].read_text()
    assert len(src.splitlines()) <= 400, f"{name}: {len(src.splitlines())} lines"
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= 60, f"{name}.{node.name}: {length} lines"
