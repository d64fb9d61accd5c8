"""Molecular datasets (PyG-style, one file each) and the factories that turn them into a DataBundle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from hebm_core.data import DataBundle
from hebm_mol.checks import (
    check_bool,
    check_elements,
    check_max_atoms,
    check_optional_count,
    check_optional_dir,
    check_seed,
    shown,
)
from hebm_mol.datasets.base import MolGraphDataset, default_cache_dir, download_file, sha256_of
from hebm_mol.datasets.qm9 import QM9, read_smiles_csv
from hebm_mol.datasets.smiles import SmilesFile, nci_path
from hebm_mol.graph import GraphSpec
from hebm_mol.space import GraphSpace

__all__ = [
    "MolGraphDataset",
    "QM9",
    "SmilesFile",
    "nci_path",
    "read_smiles_csv",
    "sha256_of",
    "download_file",
    "default_cache_dir",
    "to_bundle",
    "DATASETS",
]


def _subset(idx: torch.Tensor, limit: int | None, seed: int) -> torch.Tensor:
    if limit is None or limit >= idx.numel():
        return idx
    perm = torch.randperm(idx.numel(), generator=torch.Generator().manual_seed(seed))[:limit]
    return idx[perm.sort().values]


def _empty_split(ds: MolGraphDataset, which: str) -> ValueError:
    n_split = int(ds.split(ds.n_rows)["train" if which == "training" else "test"].numel())
    if ds.n_rows == 0:
        files = ", ".join(str(p) for p in ds.raw_paths[:1])
        return ValueError(f"{ds.name}: {files} has no data rows (no SMILES)")
    skipped = ", ".join(f"{k}: {v:,}" for k, v in sorted(ds.skipped.items(), key=lambda kv: -kv[1])) or "none"
    hint = "another split (test_fraction, seed)" if isinstance(ds, SmilesFile) else "a split file that fits the rows"
    return ValueError(
        f"{ds.name}: the {which} split has no usable molecule ({n_split:,} of its rows; {len(ds):,} of "
        f"{ds.n_rows:,} rows were usable, skipped: {skipped}; examples: {'; '.join(ds.skipped_examples[:2]) or '-'}); "
        f"use more rows, or {hint}"
    )


def _node_counts(owner: str, spec: GraphSpec, node_counts: Any, observed: torch.Tensor) -> torch.Tensor:
    """The size prior: the training split's histogram, or the user's weights per heavy-atom count."""
    if node_counts is None:
        return observed / observed.sum()
    ok = isinstance(node_counts, (list, tuple)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < float("inf") for v in node_counts
    )
    if not ok or not 1 <= len(node_counts) <= spec.max_atoms + 1 or not sum(node_counts[1:]) > 0:
        raise ValueError(
            f"{owner}: node_counts must be a list of at most {spec.max_atoms + 1} weights >= 0 (index = heavy atoms, "
            f"0 … {spec.max_atoms}) with some weight above 0 atoms, got {shown(node_counts)}"
        )
    w = torch.zeros(spec.max_atoms + 1, dtype=torch.float64)
    w[: len(node_counts)] = torch.tensor([float(v) for v in node_counts], dtype=torch.float64)
    w[0] = 0.0
    return w / w.sum()


def to_bundle(
    ds: MolGraphDataset,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
    node_counts: Sequence[float] | None = None,
) -> DataBundle:
    """Train/test graphs of ``ds`` (optionally a seeded subset of each) as a :class:`DataBundle`.

    ``extras`` carries what the prior, metrics and writers need: the spec, the node-count
    histogram of the training graphs, and the canonical SMILES of the whole train and test splits
    (novelty is always measured against the whole training split, as GDSS does); ``node_counts``
    replaces the histogram that sampled molecules' sizes are drawn from (weights by heavy-atom
    count: a shipped model's training histogram, or sizes a user wants). A split without
    a usable molecule is one ``ValueError`` with the skip counts; ``info["n_test_in_train"]``
    counts test molecules whose canonical SMILES also occurs in the training split.
    """
    max_train = check_optional_count(ds.name, "max_train", max_train)
    max_test = check_optional_count(ds.name, "max_test", max_test)
    seed = check_seed(ds.name, seed)
    split = ds.split_indices()
    full_train, full_test = split["train"], split["test"]
    if full_train.numel() == 0:
        raise _empty_split(ds, "training")
    if full_test.numel() == 0:
        raise _empty_split(ds, "test")
    train_idx = _subset(full_train, max_train, seed)
    test_idx = _subset(full_test, max_test, seed + 1)
    counts = torch.bincount(ds.n_atoms[train_idx], minlength=ds.spec.max_atoms + 1).double()
    train_smiles = [ds.smiles[i] for i in full_train.tolist()]
    test_smiles = [ds.smiles[i] for i in test_idx.tolist()]
    known = set(train_smiles)
    info: dict[str, Any] = {
        **ds.info(),
        "n_train": int(train_idx.numel()),
        "n_test": int(test_idx.numel()),
        "n_train_split": int(full_train.numel()),
        "n_test_split": int(full_test.numel()),
        "n_test_in_train": sum(s in known for s in test_smiles),
        "subset_seed": seed if (max_train or max_test) else None,
        "encoding": "kekulised, implicit H, one-hot elements, bond orders 0-3, formal charges dropped "
        "(decoded as GDSS: N/O with valence +1 -> charge +1)",
    }
    extras = {
        "spec": ds.spec,
        "node_counts": _node_counts(ds.name, ds.spec, node_counts, counts),
        "train_smiles": train_smiles,
        "test_smiles": test_smiles,
    }
    return DataBundle(ds.graphs(train_idx), ds.graphs(test_idx), GraphSpace(), info, extras)


def _spec(owner: str, atoms: Sequence[str], max_atoms: int) -> GraphSpec:
    return GraphSpec(check_elements(owner, "atoms", atoms), check_max_atoms(owner, max_atoms))


def _common(owner: str, cache_dir: Any, **flags: Any) -> str | None:
    """Checks shared by the factories: ``cache_dir`` (``None`` or a folder) and boolean flags."""
    for name, value in flags.items():
        check_bool(owner, name, value)
    path = check_optional_dir(owner, "cache_dir", cache_dir)
    return None if path is None else str(path)


def qm9(
    root: str | None = None,
    download: bool = False,
    base_url: str | None = None,
    cache_dir: str | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
    node_counts: Sequence[float] | None = None,
) -> DataBundle:
    """QM9 with the GDSS split from ``root`` (default ``$HEBM_CACHE/data/qm9``); ``download`` fetches it."""
    cache_dir = _common("qm9", cache_dir, download=download)
    check_optional_count("qm9", "max_train", max_train)
    check_optional_count("qm9", "max_test", max_test)
    check_seed("qm9", seed)
    if base_url is not None and (not isinstance(base_url, str) or not base_url.startswith(("http://", "https://"))):
        raise ValueError(f"qm9: base_url must be an http:// or https:// address, got {shown(base_url)}")
    path = check_optional_dir("qm9", "root", root) or default_cache_dir() / "data" / "qm9"
    ds = QM9(path, cache_dir=cache_dir, download=download, base_url=base_url)
    return to_bundle(ds, max_train, max_test, seed, node_counts)


def smiles(
    path: str,
    atoms: Sequence[str] = ("C", "N", "O", "F"),
    max_atoms: int = 9,
    test_fraction: float = 0.1,
    seed: int = 0,
    column: str = "smiles",
    single_fragment: bool = False,
    cache_dir: str | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    node_counts: Sequence[float] | None = None,
) -> DataBundle:
    """A user's molecules from a ``.smi``/``.txt``/``.csv`` file; elements and max atoms from the config."""
    cache_dir = _common("smiles", cache_dir, single_fragment=single_fragment)
    check_optional_count("smiles", "max_train", max_train)
    check_optional_count("smiles", "max_test", max_test)
    ds = SmilesFile(
        path,
        _spec("smiles", atoms, max_atoms),
        test_fraction=test_fraction,
        seed=seed,
        column=column,
        single_fragment=single_fragment,
        cache_dir=cache_dir,
    )
    return to_bundle(ds, max_train, max_test, seed, node_counts)


def nci(
    atoms: Sequence[str] = ("C", "N", "O", "F"),
    max_atoms: int = 9,
    test_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: str | None = None,
    node_counts: Sequence[float] | None = None,
) -> DataBundle:
    """The embedded default: RDKit's NCI sample, single-fragment molecules of ≤ 9 heavy atoms C/N/O/F
    (431 of its 4,991), split at random (seeded). Ships with RDKit; nothing is downloaded. A shipped
    model trained elsewhere samples on it with its own ``node_counts``."""
    cache_dir = _common("nci", cache_dir)
    ds = SmilesFile(
        nci_path(),
        _spec("nci", atoms, max_atoms),
        test_fraction=test_fraction,
        seed=seed,
        single_fragment=True,
        cache_dir=cache_dir,
    )
    bundle = to_bundle(ds, None, None, seed, node_counts)
    bundle.info["source_note"] = "RDKit Data/NCI/first_5K.smi (NCI open database sample, public domain)"
    # the filters define the subset: their counts are not skips to warn about on every run
    bundle.info["filtered"] = bundle.info.pop("skipped", {})
    return bundle


DATASETS = {"qm9": qm9, "smiles": smiles, "nci": nci}
