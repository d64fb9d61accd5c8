"""A user's own molecules from a SMILES file, and the embedded default (RDKit's NCI sample)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hebm_mol.checks import check_fraction, check_path, check_seed, shown
from hebm_mol.datasets.base import MolGraphDataset
from hebm_mol.datasets.files import MAX_ROWS, MAX_TEXT_BYTES, check_raw_file, iter_lines, read_text
from hebm_mol.datasets.qm9 import read_smiles_csv
from hebm_mol.graph import GraphSpec

__all__ = ["SmilesFile", "nci_path"]


def nci_path() -> Path:
    """RDKit's ``Data/NCI/first_5K.smi`` (4,991 NCI molecules; ships with every RDKit wheel)."""
    from rdkit import RDConfig

    return Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"


class SmilesFile(MolGraphDataset):
    """Molecules from one file: ``.csv``/``.tsv`` (a ``smiles`` column) or ``.smi``/``.txt``/anything
    else (SMILES first on each line, an optional name after whitespace; ``#`` comments and blank
    lines ignored). The file is read defensively (see :mod:`hebm_mol.datasets.files`).

    Elements and the maximum atom count come from ``spec``; molecules outside it are skipped and
    counted. The test split is a seeded random ``test_fraction`` of the rows (at least one row when
    ``test_fraction > 0`` and the file has two or more rows; at least one row always trains).
    """

    name = "smiles"

    def __init__(
        self,
        path: str | Path,
        spec: GraphSpec,
        test_fraction: float = 0.1,
        seed: int = 0,
        column: str = "smiles",
        **kw,
    ) -> None:
        path = check_path("smiles", "path", path)
        test_fraction = check_fraction("smiles", "test_fraction", test_fraction)
        seed = check_seed("smiles", seed)
        if not isinstance(column, str) or not column.strip():
            raise ValueError(f"smiles: column must be a non-empty column name, got {shown(column)}")
        check_raw_file(path, MAX_TEXT_BYTES, "SMILES file")
        self.raw_file_names = (path.name,)
        self.name = f"smiles-{path.stem}"
        self.test_fraction, self.seed, self.column = test_fraction, seed, column
        super().__init__(path.parent, spec, **kw)

    def reader_options(self) -> dict[str, Any]:
        csv_like = self.raw_file_names[0].lower().endswith((".csv", ".tsv"))
        return {"column": self.column.strip().lower()} if csv_like else {}

    def read_smiles(self) -> list[str | None]:
        path = self.raw_paths[0]
        text = read_text(path, what="SMILES file")
        if path.suffix.lower() in (".csv", ".tsv"):
            return read_smiles_csv(path, self.column, max_rows=MAX_ROWS, text=text)
        out: list[str | None] = []
        for line in iter_lines(text):
            text_ = line.strip()
            if not text_ or text_.startswith("#"):
                continue
            if len(out) >= MAX_ROWS:
                raise ValueError(f"{path}: more than {MAX_ROWS:,} rows; split the file")
            out.append(text_.split()[0])
        return out

    def split(self, n_rows: int) -> dict[str, Tensor]:
        perm = torch.randperm(n_rows, generator=torch.Generator().manual_seed(self.seed))
        n_test = int(round(self.test_fraction * n_rows))
        if self.test_fraction > 0 and n_rows >= 2:
            n_test = min(max(n_test, 1), n_rows - 1)
        return {"train": perm[n_test:].sort().values, "test": perm[:n_test].sort().values}
