"""Generated molecules on disk: a SMILES list, an SDF file and a grid picture."""

from __future__ import annotations

import warnings
from pathlib import Path

from rdkit import Chem

from hebm_core.data import DataBundle
from hebm_mol.graph import QM9_SPEC, graphs_to_mols
from hebm_mol.metrics import sanitized

__all__ = ["write_molecules", "write_samples"]


def write_molecules(mols: list[Chem.Mol | None], out_dir: str | Path, grid: int = 48) -> list[str]:
    """``smiles.txt`` (one line per generated graph, ``INVALID`` where it is not valid by the metrics' rule:
    an atom over its allowed valence, or RDKit's sanitisation fails), ``molecules.sdf``
    (valid ones, numbered by their generation index) and ``molecules.png`` (the first ``grid`` valid)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    valid = [sanitized(m) for m in mols]
    with open(out / "smiles.txt", "w", encoding="utf-8") as f:
        for m in valid:
            f.write((Chem.MolToSmiles(m) if m is not None else "INVALID") + "\n")
    writer = Chem.SDWriter(str(out / "molecules.sdf"))
    for i, m in enumerate(valid):
        if m is not None:
            m.SetProp("_Name", f"sample_{i}")
            writer.write(m)
    writer.close()
    paths = [str(out / "smiles.txt"), str(out / "molecules.sdf")]
    shown = [m for m in valid if m is not None][:grid]
    if shown:
        try:
            from rdkit.Chem import Draw

            img = Draw.MolsToGridImage(
                shown, molsPerRow=8, subImgSize=(180, 180), legends=[Chem.MolToSmiles(m) for m in shown]
            )
            img.save(str(out / "molecules.png"))
            paths.append(str(out / "molecules.png"))
        except Exception as exc:  # drawing needs Pillow/Cairo; a missing picture must not lose the samples
            warnings.warn(f"molecule grid not drawn: {type(exc).__name__}: {exc}", stacklevel=2)
    return paths


def write_samples(samples, out_dir: str | Path, bundle: DataBundle) -> list[str]:
    """Plugin hook: decode the (quantised) graphs and write them with :func:`write_molecules`."""
    spec = bundle.extras.get("spec", QM9_SPEC)
    return write_molecules(graphs_to_mols(samples, spec), out_dir)
