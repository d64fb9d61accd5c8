"""The GDSS-protocol molecule metrics as a hebm :class:`~hebm_core.metrics.Metric`."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from rdkit import Chem

from hebm_core.data import DataBundle
from hebm_core.metrics import Metric
from hebm_mol.graph import QM9_SPEC, graphs_to_mols
from hebm_mol.metrics import PROTOCOL, evaluate_molecules

__all__ = ["MoleculeMetrics"]


class MoleculeMetrics(Metric):
    """Decode generated graphs to molecules and score them against the bundle's train/test SMILES:
    validity without correction, uniqueness, novelty, NSPDK MMD and FCD against test, and with
    ``correct`` the same after GDSS's valency correction, reported under ``corrected/``.

    ``protocol`` (the conventions) is returned by :meth:`describe` and recorded in reports.
    """

    name = "molecules"

    def __init__(
        self,
        bundle: DataBundle,
        correct: bool = True,
        nspdk: bool = True,
        fcd: bool = True,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.bundle, self.correct, self.nspdk, self.fcd, self.cache_dir = bundle, correct, nspdk, fcd, cache_dir
        self.spec = bundle.extras.get("spec", QM9_SPEC)
        self.mols: list[Chem.Mol | None] = []

    def reset(self) -> None:
        self.mols = []

    def update(self, samples, reference=None) -> None:
        self.mols.extend(graphs_to_mols(samples, self.spec))

    def compute(self) -> dict[str, float]:
        if not self.mols:
            raise RuntimeError("MoleculeMetrics needs generated samples")
        ex = self.bundle.extras
        out = evaluate_molecules(
            self.mols,
            ex["train_smiles"],
            ex["test_smiles"],
            correct=self.correct,
            nspdk=self.nspdk,
            fcd=self.fcd,
            cache_dir=self.cache_dir,
        )
        valid, connected = out.get("validity", 0.0), out.get("validity_connected", 0.0)
        if valid > 0 and connected < 0.5 * valid:
            warnings.warn(
                f"{100 * (1 - connected / valid):.0f} % of the valid molecules are fragmented (validity "
                f"{100 * valid:.1f} %, valid and connected {100 * connected:.1f} %): validity alone overstates them",
                stacklevel=2,
            )
        # NaN marks a metric without enough molecules to be defined (see PROTOCOL): reports leave it out
        return {k: v for k, v in out.items() if math.isfinite(v)}

    @staticmethod
    def describe() -> dict[str, Any]:
        return {"protocol": PROTOCOL}
