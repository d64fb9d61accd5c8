"""The Occupancy Networks layout: ``<root>/<synset>/<id>/pointcloud.npz``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hebm_pointcloud.data.layout import Layout
from hebm_pointcloud.io import read_npz

__all__ = ["ONetPointCloud"]


class ONetPointCloud(Layout):
    """Occupancy Networks: ``<root>/<synset>/<id>/pointcloud.npz`` (``points`` [100000, 3], float16)."""

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(p.is_file() for p in root.glob("*/*/pointcloud.npz"))

    def raw_file_names(self, synset: str, split: str) -> list[Path]:
        ids = {p.parent.name: p for p in (self.root / synset).glob("*/pointcloud.npz") if p.is_file()}
        return self._split(synset, ids, split)

    def process(self, path: Path, n_pool: int, seed: int) -> np.ndarray:
        return read_npz(path, "points")
