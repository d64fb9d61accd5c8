"""Shared helpers for the molecule-plugin tests."""

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

PLUGIN = Path(__file__).resolve().parents[1]
#: the test machines' data (``../shared/data`` next to the repository); tests pass it explicitly
SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
QM9_DIR = SHARED / "qm9"
CONFIGS = PLUGIN / "configs"


def load_benchmark(name: str) -> ModuleType:
    """The script ``plugins/hebm-mol/benchmarks/<name>.py`` as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"mol_benchmark_{name}", PLUGIN / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def qm9_rows(n: int | None = None) -> list[str]:
    lines = (QM9_DIR / "qm9.csv").read_text().splitlines()[1:]
    return lines if n is None else lines[:n]


def dense(atoms: str, bonds: list[tuple[int, int, int]], n_max: int = 9):
    """A one-graph batch from element letters over C/N/O/F and (i, j, order) bonds."""
    types = "CNOF"
    x = torch.zeros(1, n_max, 4, dtype=torch.float64)
    a = torch.zeros(1, n_max, n_max, dtype=torch.float64)
    for i, el in enumerate(atoms):
        x[0, i, types.index(el)] = 1.0
    for i, j, o in bonds:
        a[0, i, j] = a[0, j, i] = float(o)
    mask = torch.arange(n_max)[None] < len(atoms)
    return x, a, mask
