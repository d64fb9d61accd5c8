"""Molecule metrics for generated QM9-like graphs, following the GDSS evaluation protocol (see :data:`PROTOCOL`).

Generated molecules arrive as unsanitised RDKit mols (GDSS ``construct_mol`` style: kekulé bonds, N/O with one
bond too many carry a +1 charge) or ``None`` for graphs that could not be built. Nothing here modifies its inputs.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import networkx as nx
import numpy as np
from rdkit import Chem, RDLogger
from scipy import linalg

from hebm_mol.nspdk import NSPDKMean, nspdk_mean, nspdk_mmd

__all__ = [
    "PROTOCOL",
    "CanonicalSmilesSet",
    "canonical_smiles",
    "canonical_smiles_set",
    "canonicalize_smiles",
    "clear_caches",
    "correct_mol",
    "evaluate_molecules",
    "fcd_score",
    "is_valid",
    "sanitized",
    "mols_to_nx",
    "nspdk_mmd",
]

PROTOCOL = (
    "Molecule metrics follow GDSS (Jo et al., 2022). Validity w/o correction: fraction of ALL generated graphs "
    "(unbuildable ones count as invalid) whose RDKit mol, built without sanitisation (N/O with one extra bond get "
    "charge +1), has no atom above its allowed valence (GDSS's check) and passes Chem.SanitizeMol; "
    "validity_connected additionally requires a single fragment. Uniqueness: "
    "distinct canonical SMILES (RDKit, isomeric) / number of valid molecules. Novelty (MOSES/GDSS convention): "
    "distinct valid canonical SMILES not in the canonicalised training set / distinct valid canonical SMILES. "
    "NSPDK MMD: squared MMD with the linear NSPDK kernel (EDeN complexity=4, i.e. radius and distance <= 4, "
    "atom-symbol node labels, bond-order edge labels, aromatic counted as 1, block-wise then global L2 "
    "normalisation; 63-bit hashed features) between the valid generated molecules and the test set. FCD: "
    "Frechet ChemNet Distance (fcd 1.2.2, ChemNet v0.13) between the canonical SMILES of the valid generated "
    "molecules (duplicates kept) and of the test set. 'corrected/' metrics apply GDSS's correction first: while an "
    "atom exceeds its largest allowed valence (RDKit valence list of the isoelectronic element, i.e. shifted by the "
    "formal charge), lower that atom's first highest-order bond by one (removing it at zero), then keep the largest "
    "fragment by atom count; uniqueness, novelty, NSPDK and FCD on the corrected set are the figures GDSS reports. "
    "A ratio or distance that is undefined for the run (no valid molecule; FCD with fewer than two molecules on "
    "either side) is left out of hebm's reports, never reported as NaN."
)

_BOND_TYPES = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
_CACHE_VERSION = "v1"
_canon_cache: dict[str, CanonicalSmilesSet] = {}
_fcd_ref_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
_nspdk_ref_cache: dict[str, NSPDKMean] = {}
_ref_cache: dict[str, list[str]] = {}
RDLogger.DisableLog("rdApp.*")


# ----------------------------------------------------------------------------- validity and canonical SMILES


def sanitized(mol: Chem.Mol | None) -> Chem.Mol | None:
    """A sanitised copy of ``mol``, or None when it is None, has no atoms, has an atom above its allowed valence as
    built (GDSS's check_valency), or fails ``Chem.SanitizeMol``."""
    if mol is None:
        return None
    try:
        if mol.GetNumAtoms() == 0 or _first_overvalent_atom(_kekulized(mol)) is not None:
            return None
        m = Chem.Mol(mol)
        Chem.SanitizeMol(m)
        return m
    except Exception:  # RDKit raises several exception types for bad molecules
        return None


def is_valid(mol: Chem.Mol | None) -> bool:
    """True if no atom of ``mol`` exceeds its allowed valence and a copy passes ``Chem.SanitizeMol`` (None and empty
    mols are invalid). The valence check matters for e.g. a neutral N(=O)=O: SanitizeMol's clean-up step would
    rewrite it as [N+](=O)[O-] and accept it, GDSS (sanitising with SANITIZE_PROPERTIES only) rejects it."""
    return sanitized(mol) is not None


def canonical_smiles(mol: Chem.Mol | None) -> str | None:
    """Canonical isomeric SMILES of the sanitised mol, or None if it is invalid."""
    m = sanitized(mol)
    if m is None:
        return None
    try:
        return Chem.MolToSmiles(m)
    except Exception:
        return None


def canonicalize_smiles(smiles: Iterable[str]) -> list[str | None]:
    """Canonical form (``MolToSmiles(MolFromSmiles(s))``) of each SMILES, None where RDKit cannot parse it."""
    out: list[str | None] = []
    for s in smiles:
        m = Chem.MolFromSmiles(s) if isinstance(s, str) else None
        out.append(Chem.MolToSmiles(m) if m is not None else None)
    return out


class CanonicalSmilesSet(frozenset):
    """A frozenset of SMILES already in canonical form (from :func:`canonical_smiles_set`); passed as training set
    it is used as is, which skips re-canonicalising 133k molecules (~20 s) per evaluation."""


def _digest(smiles: Iterable[str]) -> str:
    h = hashlib.sha256()
    for s in smiles:
        h.update(s.encode())
        h.update(b"\n")
    return h.hexdigest()


def canonical_smiles_set(smiles: Iterable[str], cache_dir: str | os.PathLike | None = None) -> CanonicalSmilesSet:
    """Set of canonical SMILES of ``smiles`` (unparsable entries dropped), memoised in memory and, with
    ``cache_dir``, on disk, keyed by a sha256 of the input strings in order."""
    if isinstance(smiles, CanonicalSmilesSet):
        return smiles
    smiles = [s for s in smiles]
    key = _digest(smiles)
    if key in _canon_cache:
        return _canon_cache[key]
    path = Path(cache_dir) / f"canonical_smiles_{_CACHE_VERSION}_{key[:32]}.txt" if cache_dir is not None else None
    if path is not None and path.is_file():
        result = CanonicalSmilesSet(s for s in path.read_text().split("\n") if s)
    else:
        result = CanonicalSmilesSet(s for s in canonicalize_smiles(smiles) if s)
        if path is not None:
            _atomic_write(path, "\n".join(sorted(result)).encode())
    _canon_cache[key] = result
    return result


def clear_caches() -> None:
    """Forget what this process memoised (canonical training sets, test references, FCD and NSPDK reference
    statistics); files written to a ``cache_dir`` stay and are read again on the next call."""
    for cache in (_canon_cache, _fcd_ref_cache, _nspdk_ref_cache, _ref_cache):
        cache.clear()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- GDSS correction


def _max_valence(atom: Chem.Atom) -> float:
    """Largest valence RDKit allows ``atom``: the valence list of the isoelectronic element (atomic number minus
    formal charge: N+ -> C: 4, O+ -> N: 3, N- -> O: 2); unlimited where RDKit lists -1 or nothing applies."""
    z = atom.GetAtomicNum() - atom.GetFormalCharge()
    if z < 1 or z > 118:
        return math.inf
    vals = list(Chem.GetPeriodicTable().GetValenceList(z))
    if not vals or -1 in vals:
        return math.inf
    return float(max(vals))


def _valence(atom: Chem.Atom) -> float:
    """Explicit valence from the bonds (aromatic = 1.5) plus explicit hydrogens; needs no sanitisation."""
    return sum(b.GetBondTypeAsDouble() for b in atom.GetBonds()) + atom.GetNumExplicitHs()


def _kekulized(mol: Chem.Mol) -> Chem.Mol:
    """``mol`` itself if it has no aromatic bond, else a kekulised copy (unchanged copy if kekulisation fails)."""
    if not any(b.GetBondType() == Chem.BondType.AROMATIC for b in mol.GetBonds()):
        return mol
    m = Chem.RWMol(mol)
    try:
        m.UpdatePropertyCache(strict=False)
        Chem.Kekulize(m, clearAromaticFlags=True)
    except Exception:
        return Chem.Mol(mol)
    return m.GetMol()


def _first_overvalent_atom(mol: Chem.Mol) -> int | None:
    for atom in mol.GetAtoms():
        if _valence(atom) > _max_valence(atom) + 1e-9:
            return atom.GetIdx()
    return None


def correct_mol(mol: Chem.Mol | None) -> Chem.Mol | None:
    """GDSS valency correction then largest fragment, as a new sanitised mol (None if impossible).

    While some atom (the first in index order, as RDKit would report it) exceeds its allowed valence, its first
    highest-order non-aromatic bond is lowered by one order (removed when it reaches 0; GDSS removes and re-adds the
    bond, which we mirror so later tie-breaks follow the same bond order). Then the largest fragment by atom count
    is kept (first one on ties; GDSS takes the longest fragment SMILES, which almost always coincides)."""
    if mol is None:
        return None
    try:
        if mol.GetNumAtoms() == 0:
            return None
        rw = Chem.RWMol(_kekulized(mol))
        for _ in range(3 * rw.GetNumBonds() + 1):  # each step lowers the total bond order
            idx = _first_overvalent_atom(rw)
            if idx is None:
                break
            bonds = [b for b in rw.GetAtomWithIdx(idx).GetBonds() if b.GetBondType() != Chem.BondType.AROMATIC]
            if not bonds:
                return None
            bond = max(bonds, key=lambda b: b.GetBondTypeAsDouble())
            i, j, order = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), int(bond.GetBondTypeAsDouble())
            rw.RemoveBond(i, j)
            if order - 1 >= 1:
                rw.AddBond(i, j, _BOND_TYPES[order - 1])
        else:
            return None
        m = rw.GetMol()
        Chem.SanitizeMol(m)
        frags = Chem.GetMolFrags(m, asMols=True, sanitizeFrags=True)
        return Chem.Mol(max(frags, key=lambda f: f.GetNumAtoms()))
    except Exception:
        return None


# ----------------------------------------------------------------------------- graphs, NSPDK, FCD


def mols_to_nx(mols: Iterable[Chem.Mol]) -> list[nx.Graph]:
    """GDSS ``mols_to_nx``: node ``label`` = atom symbol, edge ``label`` = int(bond order) (aromatic -> 1)."""
    graphs = []
    for mol in mols:
        g = nx.Graph()
        for atom in mol.GetAtoms():
            g.add_node(atom.GetIdx(), label=atom.GetSymbol())
        for bond in mol.GetBonds():
            g.add_edge(bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), label=int(bond.GetBondTypeAsDouble()))
        graphs.append(g)
    return graphs


def _chemnet_activations(smiles: Sequence[str], device: str | None, batch_size: int = 256) -> np.ndarray:
    """ChemNet penultimate activations (fcd's model and one-hot encoding, run in this process)."""
    import fcd
    import torch
    from fcd.utils import SmilesDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fcd.load_ref_model()
        data = SmilesDataset(list(smiles))
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        loader = torch.utils.data.DataLoader(data, batch_size=batch_size, num_workers=0)
        out = []
        model.to(device)
        try:
            with torch.no_grad():
                for batch in loader:
                    out.append(model(batch.transpose(1, 2).float().to(device)).cpu().numpy().astype(np.float64))
        finally:
            model.to("cpu")
    return np.concatenate(out, axis=0)


def _frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 sqrt(S1 S2)) (fcd's formula, with its eps fallback)."""
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all() or np.abs(np.diagonal(covmean).imag).max() > 1e-3:
        off = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    return value if math.isfinite(value) else math.nan


def _stats(act: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return act.mean(0), np.cov(act.T)


def fcd_score(
    smiles_gen: Sequence[str],
    smiles_ref: Sequence[str],
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
) -> float:
    """Fréchet ChemNet Distance between two SMILES lists (at least 2 each; used as given, so pass canonical ones).

    The reference mean/covariance is memoised in memory and, with ``cache_dir``, stored as ``.npz`` keyed by a
    sha256 of the sorted reference SMILES. ``device``: torch device for ChemNet (default: CUDA if available)."""
    if len(smiles_gen) < 2 or len(smiles_ref) < 2:
        raise ValueError("fcd_score needs at least 2 SMILES on each side")
    key = _CACHE_VERSION + _digest(sorted(smiles_ref))
    path = Path(cache_dir) / f"fcd_ref_{_CACHE_VERSION}_{key[-32:]}.npz" if cache_dir is not None else None
    if key not in _fcd_ref_cache and path is not None and path.is_file():
        with np.load(path) as z:
            _fcd_ref_cache[key] = (z["mu"], z["sigma"])
    if key not in _fcd_ref_cache:
        _fcd_ref_cache[key] = _stats(_chemnet_activations(smiles_ref, device))
    if path is not None and not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, mu=_fcd_ref_cache[key][0], sigma=_fcd_ref_cache[key][1])
        os.replace(tmp, path)
    mu_ref, s_ref = _fcd_ref_cache[key]
    mu, s = _stats(_chemnet_activations(smiles_gen, device))
    return _frechet(mu, s, mu_ref, s_ref)


# ----------------------------------------------------------------------------- evaluation


def _reference(test_smiles: Sequence[str], nspdk: bool) -> tuple[list[str], NSPDKMean | None]:
    """Canonical test SMILES (order kept, unparsable dropped) and their NSPDK mean, memoised."""
    if isinstance(test_smiles, str):
        raise TypeError("test_smiles must be a sequence of SMILES, not one string")
    key = _digest(test_smiles)
    if key not in _ref_cache:
        _ref_cache[key] = [s for s in canonicalize_smiles(test_smiles) if s]
    ref = _ref_cache[key]
    if not ref:
        raise ValueError("test_smiles: no parsable SMILES")
    mean = None
    if nspdk:
        nkey = _digest(sorted(ref))
        if nkey not in _nspdk_ref_cache:
            _nspdk_ref_cache[nkey] = nspdk_mean([Chem.MolFromSmiles(s) for s in ref])
        mean = _nspdk_ref_cache[nkey]
    return ref, mean


def _set_metrics(
    mols: list[Chem.Mol],
    smiles: list[str],
    train: CanonicalSmilesSet,
    ref_smiles: list[str],
    ref_nspdk: NSPDKMean | None,
    fcd: bool,
    cache_dir: str | os.PathLike | None,
    device: str | None,
) -> dict[str, float]:
    """Uniqueness, novelty, NSPDK and FCD of a list of valid sanitised mols and their canonical SMILES."""
    nan = float("nan")
    unique = set(smiles)
    out = {
        "uniqueness": len(unique) / len(smiles) if smiles else nan,
        "novelty": len(unique - train) / len(unique) if unique else nan,
    }
    if ref_nspdk is not None:
        out["nspdk_mmd"] = nspdk_mmd(mols, ref_nspdk) if mols else nan
    if fcd:
        enough = len(smiles) >= 2 and len(ref_smiles) >= 2  # a covariance needs two molecules on each side
        out["fcd"] = fcd_score(smiles, ref_smiles, cache_dir=cache_dir, device=device) if enough else nan
    return out


def evaluate_molecules(
    mols: Sequence[Chem.Mol | None],
    train_smiles: Iterable[str] | CanonicalSmilesSet,
    test_smiles: Sequence[str],
    correct: bool = False,
    nspdk: bool = True,
    fcd: bool = True,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
) -> dict[str, float]:
    """GDSS-protocol metrics of generated mols (see :data:`PROTOCOL`) as a flat dict of floats.

    Keys: ``n_generated``, ``n_valid``, ``validity``, ``validity_connected``, ``uniqueness``, ``novelty``,
    ``nspdk_mmd`` (if ``nspdk``), ``fcd`` (if ``fcd``); with ``correct`` also ``corrected/n_valid``,
    ``corrected/validity``, ``corrected/uniqueness``, ``corrected/novelty``, ``corrected/nspdk_mmd``,
    ``corrected/fcd``. Ratios with an empty denominator are NaN. ``train_smiles``: raw SMILES (canonicalised and
    memoised) or a :class:`CanonicalSmilesSet`. Molecules that break RDKit in any way count as invalid."""
    mols = list(mols)
    if not mols:
        raise ValueError("evaluate_molecules: no molecules given")
    bad = [type(m).__name__ for m in mols if m is not None and not isinstance(m, Chem.Mol)]
    if bad:
        raise TypeError(f"evaluate_molecules: expected RDKit Mol or None, got {bad[0]} ({len(bad)} entries)")
    train = canonical_smiles_set(train_smiles, cache_dir=cache_dir)
    ref_smiles, ref_nspdk = _reference(test_smiles, nspdk)

    valid_mols, valid_smiles, n_connected = [], [], 0
    for mol in mols:
        m = sanitized(mol)
        smi = canonical_smiles(m) if m is not None else None
        if smi is None:
            continue
        valid_mols.append(m)
        valid_smiles.append(smi)
        n_connected += len(Chem.GetMolFrags(m)) == 1
    n = len(mols)
    out: dict[str, float] = {
        "n_generated": float(n),
        "n_valid": float(len(valid_mols)),
        "validity": len(valid_mols) / n,
        "validity_connected": n_connected / n,
    }
    out.update(_set_metrics(valid_mols, valid_smiles, train, ref_smiles, ref_nspdk, fcd, cache_dir, device))

    if correct:
        cmols, csmiles = [], []
        for mol in mols:
            m = correct_mol(mol)
            smi = canonical_smiles(m) if m is not None else None
            if smi is not None:
                cmols.append(m)
                csmiles.append(smi)
        out["corrected/n_valid"] = float(len(cmols))
        out["corrected/validity"] = len(cmols) / n
        if csmiles == valid_smiles:  # nothing was corrected: same set, skip the second ChemNet pass
            metrics = {k: out[k] for k in ("uniqueness", "novelty", "nspdk_mmd", "fcd") if k in out}
        else:
            metrics = _set_metrics(cmols, csmiles, train, ref_smiles, ref_nspdk, fcd, cache_dir, device)
        out.update({f"corrected/{k}": v for k, v in metrics.items()})
    return out
