"""What the datasets share: ShapeNet's category ids, the metric protocol, the bounds, and the bundle."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hebm_core.data import DataBundle

__all__ = ["SYNSETS", "SYNSET_NAMES", "PROTOCOL", "MAX_POINTS", "Labels", "resolve_categories", "make_bundle"]

#: the largest n_points / pool_points / point count of a primitive cloud
MAX_POINTS = 2**20

#: ShapeNetCore category names -> synset ids (the 13 Occupancy-Networks classes and a few more)
SYNSETS = {
    "airplane": "02691156",
    "bench": "02828884",
    "cabinet": "02933112",
    "car": "02958343",
    "chair": "03001627",
    "display": "03211117",
    "lamp": "03636649",
    "speaker": "03691459",
    "rifle": "04090263",
    "sofa": "04256520",
    "table": "04379243",
    "telephone": "04401088",
    "vessel": "04530566",
    "bathtub": "02808440",
    "bed": "02818832",
    "bookshelf": "02871439",
    "guitar": "03467517",
    "motorbike": "03790512",
    "mug": "03797390",
    "pistol": "03948459",
}
SYNSET_NAMES = {v: k for k, v in SYNSETS.items()}

#: split ("train", "test") -> each cloud's class name, in the split's order
Labels = dict[str, list[str]]

#: how the metrics are computed; copied into every report through ``DataBundle.info``
PROTOCOL = {
    "space": "metrics are computed on the normalised clouds of this dataset (see 'normalization'), N points each",
    "cd": "Chamfer: mean_a min_b |a-b|^2 + mean_b min_a |a-b|^2 (squared Euclidean, PointFlow)",
    "emd": "EMD: exact optimal transport (POT ot.emd2, uniform weights) of Euclidean distances, i.e. the mean "
    "matched distance per point (PointFlow); computed on emd_points random points per cloud, error vs exact on "
    "full clouds reported as pointflow/emd_subsample_*",
    "mmd": "MMD-X: mean over reference shapes of the distance to the nearest generated shape",
    "cov": "COV-X: % of reference shapes that are the nearest reference of at least one generated shape",
    "1nna": "1-NNA-X: leave-one-out 1-NN classifier accuracy (%) on generated ∪ reference; 50 % is ideal",
    "sets": "generated set truncated to the reference size (PointFlow uses |S_g| = |S_r|); reference = test split",
}


def resolve_categories(category: str | Sequence[str], available: Sequence[str] | None = None) -> list[str]:
    """Synset ids for a name (``"chair"``), an id (``"03001627"``), a list of either, or ``"all"``."""
    items = [category] if isinstance(category, str) else list(category)
    out: list[str] = []
    for item in items:
        item = str(item).strip().lower()
        if item == "all":
            if available is None:
                raise ValueError("category 'all' needs a dataset root to list")
            out.extend(sorted(available))
        elif item in SYNSETS:
            out.append(SYNSETS[item])
        elif item.isdigit() and len(item) == 8:
            out.append(item)
        else:
            raise ValueError(
                f"unknown ShapeNet category {item!r}: give a synset id (8 digits) or one of {sorted(SYNSETS)}"
            )
    return list(dict.fromkeys(out))


def make_bundle(train: np.ndarray, test: np.ndarray, info: dict[str, Any], name: str, labels: Labels) -> DataBundle:
    """The bundle; ``extras["labels"]`` holds each cloud's class (split -> names), for per-class metrics."""
    return DataBundle(
        train=torch.from_numpy(train.copy()),
        test=torch.from_numpy(test.copy()) if len(test) else None,
        info={"name": name, **info, "protocol": dict(PROTOCOL)},
        extras={"labels": {k: list(v) for k, v in labels.items()}},
    )
