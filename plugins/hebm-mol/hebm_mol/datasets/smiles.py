"""A user's own molecules from a SMILES file, and the embedded default (RDKit's NCI sample)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from hebm_mol.datasets.base import MolGraphDataset
from hebm_mol.datasets.qm9 import read_smiles_csv
from hebm_mol.graph import GraphSpec

__all__ = ["SmilesFile", "nci_path"]


def nci_path() -> Path:
    """RDKit's ``Data/NCI/first_5K.smi`` (4,991 NCI molecules; ships with every RDKit wheel)."""
    from rdkit import RDConfig

    return Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"


class SmilesFile(MolGraphDataset):
    """Molecules from one file: ``.csv`` (a ``smiles`` column) or ``.smi``/``.txt`` (SMILES first on
    each line, an optional name after whitespace; ``#`` comments and blank lines ignored).

    Elements and the maximum atom count come from ``spec``; molecules outside it are skipped and
    counted. The test split is a seeded random ``test_fraction`` of the rows.
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
        path = Path(path).expanduser()
        if not 0.0 <= test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
        self.raw_file_names = (path.name,)
        self.name = f"smiles-{path.stem}"
        self.test_fraction, self.seed, self.column = test_fraction, seed, column
        super().__init__(path.parent, spec, **kw)

    def read_smiles(self) -> list[str | None]:
        path = self.raw_paths[0]
        if path.suffix.lower() == ".csv":
            return read_smiles_csv(path, self.column)
        out: list[str | None] = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                out.append(text.split()[0])
        return out

    def split(self, n_rows: int) -> dict[str, Tensor]:
        perm = torch.randperm(n_rows, generator=torch.Generator().manual_seed(self.seed))
        n_test = int(round(self.test_fraction * n_rows))
        return {"train": perm[n_test:].sort().values, "test": perm[:n_test].sort().values}
