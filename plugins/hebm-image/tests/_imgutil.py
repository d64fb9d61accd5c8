"""Shared helpers for the image plugin's tests: the shared data's paths and hand-made IDX datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hebm_image.data import FILES
from hebm_image.idx import write_idx

PLUGIN = Path(__file__).resolve().parents[1]
CONFIGS = PLUGIN / "configs"
#: the test machines' data (``../shared/data`` next to the repository); tests pass it explicitly
SHARED = PLUGIN.parents[2] / "shared" / "data"
MNIST = SHARED / "mnist"
FASHION = SHARED / "fashion_mnist"


def tiny_images(n: int, seed: int = 0, side: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seeded uint8 images with a blank 2-pixel border and labels 0..9."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, side, side), np.uint8)
    x[:, 2:-2, 2:-2] = rng.integers(0, 256, (n, side - 4, side - 4))
    return x, (np.arange(n) % 10).astype(np.uint8)


def write_dataset(root: Path, n_train: int = 30, n_test: int = 10) -> dict[str, np.ndarray]:
    """The four MNIST-named IDX ``.gz`` files of a hand-made dataset in ``root``; returns the arrays."""
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        x, y = tiny_images(n, seed)
        images, labels = FILES[split]
        write_idx(root / images, x)
        write_idx(root / labels, y)
        arrays[images], arrays[labels] = x, y
    return arrays
