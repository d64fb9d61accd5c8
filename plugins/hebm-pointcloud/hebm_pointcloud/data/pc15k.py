"""The PC15k layout: ``<root>/<synset>/{train,val,test}/<id>.npy`` (PointFlow, ShapeGF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hebm_pointcloud.data.layout import Layout
from hebm_pointcloud.io import read_npy

__all__ = ["PC15k"]


class PC15k(Layout):
    """ShapeNetCore.v2.PC15k: ``<root>/<synset>/{train,val,test}/<id>.npy`` of 15,000 points each."""

    split_rule = "the layout's own train/ and test/ folders"

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(p.is_file() for p in root.glob("*/train/*.npy"))

    def raw_file_names(self, synset: str, split: str) -> list[Path]:
        self._no_folds("PC15k's own train/ and test/ folders")
        return sorted(p for p in (self.root / synset / split).glob("*.npy") if p.is_file())

    def process(self, path: Path, n_pool: int, seed: int) -> np.ndarray:
        return read_npy(path)
