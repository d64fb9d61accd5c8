"""Coordinate normalisations of the clouds, by name (``[data] normalization``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["NORMALIZATIONS", "normalize"]


def _per_shape(fn: Callable[[np.ndarray], tuple[np.ndarray, float]]):
    def apply(train: list[np.ndarray], test: list[np.ndarray]) -> tuple[list, list, dict[str, Any]]:
        return [fn(c) for c in train], [fn(c) for c in test], {}

    return apply


def _unit_sphere(c: np.ndarray) -> np.ndarray:
    c = c.astype(np.float64)
    c = c - c.mean(0)
    return (c / max(float(np.linalg.norm(c, axis=1).max()), 1e-300)).astype(np.float32)


def _bbox(c: np.ndarray) -> np.ndarray:
    c = c.astype(np.float64)
    lo, hi = c.min(0), c.max(0)
    return ((c - (lo + hi) / 2) / max(float((hi - lo).max()) / 2, 1e-300)).astype(np.float32)


def _global(train: list[np.ndarray], test: list[np.ndarray]) -> tuple[list, list, dict[str, Any]]:
    """PointFlow's: subtract the mean of all training points, divide by their (scalar) std."""
    allp = np.concatenate(train).astype(np.float64)
    mean, std = allp.mean(0), float(allp.std())
    if not std > 1e-12 * max(1.0, float(np.abs(allp).max())):
        raise ValueError(f"normalization 'global': the {len(allp)} training points have no spread (std {std:.3g})")
    f = lambda c: ((c.astype(np.float64) - mean) / std).astype(np.float32)  # noqa: E731
    return [f(c) for c in train], [f(c) for c in test], {"mean": mean.round(6).tolist(), "std": round(std, 6)}


def _none(train: list[np.ndarray], test: list[np.ndarray]) -> tuple[list, list, dict[str, Any]]:
    return train, test, {}


#: name -> (description, function (train clouds, test clouds) -> (train, test, parameters))
NORMALIZATIONS: dict[str, tuple[str, Callable]] = {
    "global": ("PointFlow: (x - mean of all training points) / their scalar std", _global),
    "unit_sphere": (
        "per shape: centre on the point mean, scale the farthest point to radius 1",
        _per_shape(_unit_sphere),
    ),
    "bbox": ("per shape: centre the bounding box, scale its longest side to 2 ([-1, 1])", _per_shape(_bbox)),
    "none": ("coordinates as stored", _none),
}


def normalize(name: str, train: list[np.ndarray], test: list[np.ndarray]):
    if name not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {name!r}; known: {', '.join(NORMALIZATIONS)}")
    desc, fn = NORMALIZATIONS[name]
    tr, te, params = fn(train, test)
    if not all(np.isfinite(c).all() for c in (*tr, *te)):  # the readers checked the inputs; a guard
        raise ValueError(f"normalization {name!r} gave non-finite coordinates")
    return tr, te, {"name": name, "what": desc, **params}
