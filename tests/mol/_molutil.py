"""Shared helpers for the molecule-plugin tests."""

from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
QM9_DIR = SHARED / "qm9"


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
