"""QM9 (133,885 molecules of ≤ 9 heavy atoms C/N/O/F) from its SMILES CSV, with the GDSS test split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from torch import Tensor

from hebm_mol.datasets.base import MolGraphDataset

__all__ = ["QM9", "read_smiles_csv", "gdss_split"]

_SELFIES = "https://raw.githubusercontent.com/aspuru-guzik-group/selfies/eb6177e5f20cfd8787f2ac4423f5b38dce6eeeb8"
_MOFLOW = "https://raw.githubusercontent.com/calvin-zcx/moflow/3611c637260272b3d34a298f221623cb59e01091"


def read_smiles_csv(path: str | Path, column: str = "smiles") -> list[str | None]:
    """One SMILES per data row from the column named ``column`` (case-insensitive); a row without it,
    or with an empty cell, is ``None`` so that row numbers keep their meaning."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty CSV file")
        names = [h.strip().lower() for h in header]
        if column.lower() not in names:
            raise ValueError(f"{path}: no column {column!r} in the header {header}")
        k = names.index(column.lower())
        out: list[str | None] = []
        for row in reader:
            cell = row[k].strip() if len(row) > k else ""
            out.append(cell or None)
    return out


class QM9(MolGraphDataset):
    """QM9 as GDSS uses it: ``qm9.csv`` (column ``smiles``, row i = gdb_(i+1)) and the MoFlow/GDSS test
    split ``valid_idx_qm9.json`` whose entries are 0-based row numbers (13,082 test, 120,803 train).

    ``download=True`` fetches both files from their canonical commits (selfies, MoFlow) and checks
    their sha256; any other copy in ``root`` is used as it is, its sha256 recorded in reports.
    """

    name = "qm9"
    raw_file_names = ("qm9.csv", "valid_idx_qm9.json")
    urls = {
        "qm9.csv": f"{_SELFIES}/tests/test_sets/qm9.csv",
        "valid_idx_qm9.json": f"{_MOFLOW}/data/valid_idx_qm9.json",
    }
    sha256 = {
        "qm9.csv": "80c060e299a44112b89be3fc6d95145dfeda97aa3eab1e2662aafdfbb00f7929",
        "valid_idx_qm9.json": "889fd232a33d8a2c00f057c807b119e72abd5baa48f6fab93e8d8b7a79340f4d",
    }

    def read_smiles(self) -> list[str | None]:
        return read_smiles_csv(self.root / "qm9.csv")

    def split(self, n_rows: int) -> dict[str, Tensor]:
        return gdss_split(self.root / "valid_idx_qm9.json", n_rows)


def gdss_split(path: str | Path, n_rows: int) -> dict[str, Tensor]:
    """Train/test row numbers from a MoFlow/GDSS ``valid_idx`` file: its entries are the test rows, 0-based."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        items = raw["valid_idxs"] if isinstance(raw, dict) else raw
        test = torch.tensor(sorted({int(i) for i in items}), dtype=torch.long)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: expected {{'valid_idxs': [row numbers]}} ({exc})") from None
    if test.numel() and (test.min() < 0 or test.max() >= n_rows):
        raise ValueError(f"{path}: test rows must lie in [0, {n_rows}), got {int(test.min())}..{int(test.max())}")
    is_test = torch.zeros(n_rows, dtype=torch.bool)
    is_test[test] = True
    return {"train": torch.nonzero(~is_test).flatten(), "test": test}
