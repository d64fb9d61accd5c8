"""Image statistics ``[B, 1, H, W] -> [B, k]``: parameter-free, differentiable, one η per component.

Intensities are the model's pixel values ``x`` (``[0, 1)`` on data; unclipped while sampling), so
every statistic is a plain sum over pixels and its gradient is exact where the samplers move.

- ``margin``: ink in the border frame of width ``width``: the sum of ``x`` over pixels within
  ``width`` of an edge. Digits are centred with a blank border, and a model that puts strokes or
  speckle there is visibly wrong; ``per_side = true`` gives four components (top, bottom, left,
  right; a corner pixel counts for its row side, top or bottom, only) instead of one total.
- ``ink``: the total intensity ``Σ x``.
- ``centre_of_mass``: the intensity-weighted mean row and column of ``max(x, 0)`` in pixel units
  (two components), measured from the image centre.
- ``sin_sum``: the core's uninformative control ``sin(Σ x)``; its η should end near 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from hebm_core.options import check_int
from hebm_core.statistics import Statistic, sin_sum

__all__ = ["STATISTICS", "Margin", "Ink", "CentreOfMass", "frame_masks"]


def _image(x: Tensor, owner: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{owner}: needs images [B, C, H, W], got {shape}")
    return x


def frame_masks(h: int, w: int, width: int) -> Tensor:
    """``[4, h, w]`` 0/1 masks of the top, bottom, left and right parts of the border frame of ``width``
    (disjoint: corners belong to the top and bottom parts)."""
    m = torch.zeros(4, h, w)
    m[0, :width, :] = 1
    m[1, h - width :, :] = 1
    m[2, width : h - width, :width] = 1
    m[3, width : h - width, w - width :] = 1
    return m


class Margin(Statistic):
    """Ink in the border frame of ``width`` pixels: one total, or four sides with ``per_side``."""

    def __init__(self, width: int = 2, per_side: bool = False) -> None:
        self.width = check_int("margin", "width", width, 1, 1024)
        if not isinstance(per_side, bool):
            raise ValueError(f"margin: per_side must be true or false, got {per_side!r}")
        self.per_side = per_side
        self.name = "margin"
        self.component_names = ["top", "bottom", "left", "right"] if per_side else None
        self.dim = 4 if per_side else 1
        self._masks: dict[tuple, Tensor] = {}

    def masks(self, like: Tensor) -> Tensor:
        h, w = like.shape[-2:]
        if 2 * self.width >= min(h, w):
            raise ValueError(f"margin: width {self.width} leaves no interior in {h}x{w} images")
        key = (h, w, like.device, like.dtype)
        if key not in self._masks:
            self._masks[key] = frame_masks(h, w, self.width).to(like.device, like.dtype)
        return self._masks[key]

    def compute(self, x: Tensor) -> Tensor:
        x = _image(x, "margin").sum(1)  # over channels
        sides = torch.einsum("bhw,khw->bk", x, self.masks(x))
        return sides if self.per_side else sides.sum(1, keepdim=True)

    def __repr__(self) -> str:
        return f"Margin(width={self.width}, per_side={self.per_side})"


class Ink(Statistic):
    """Total intensity ``Σ x``."""

    name = "ink"
    dim = 1

    def compute(self, x: Tensor) -> Tensor:
        return _image(x, "ink").flatten(1).sum(1, keepdim=True)


class CentreOfMass(Statistic):
    """Intensity-weighted mean (row, column) of ``max(x, 0)``, in pixels from the image centre."""

    name = "centre_of_mass"
    component_names = ["row", "col"]
    dim = 2

    def compute(self, x: Tensor) -> Tensor:
        w = _image(x, "centre_of_mass").sum(1).clamp_min(0)
        h, wd = w.shape[-2:]
        rows = torch.arange(h, device=w.device, dtype=w.dtype) - (h - 1) / 2
        cols = torch.arange(wd, device=w.device, dtype=w.dtype) - (wd - 1) / 2
        mass = w.sum((1, 2)) + 1e-3
        return torch.stack([(w.sum(2) * rows).sum(1) / mass, (w.sum(1) * cols).sum(1) / mass], 1)


def _fixed(stat: Statistic) -> Callable[[], Statistic]:
    def factory() -> Statistic:
        return stat

    factory.__doc__ = stat.__doc__
    return factory


STATISTICS: dict[str, Callable[..., Statistic]] = {
    "margin": Margin,
    "ink": Ink,
    "centre_of_mass": CentreOfMass,
    "sin_sum": _fixed(sin_sum),
}
