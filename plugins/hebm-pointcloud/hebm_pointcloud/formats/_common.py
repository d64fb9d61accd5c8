"""What every mesh reader shares: the :class:`BadFile` error, the coordinate bound, and polygon fans."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["BadFile", "MAX_COORD", "SLIVER", "fan"]

#: a triangle whose area is at most this times its longest edge² is degenerate (dropped)
SLIVER = 1e-6
#: the largest coordinate a file may hold: beyond it a float32 cloud has no resolution left for a
#: shape's detail (1e7 in any unit: 10 km in mm), and a value like 1e30 is corruption, not geometry
MAX_COORD = 1e7


class BadFile(ValueError):
    """A file the dataset cannot use. ``reason`` is a short category (counted when files are skipped),
    ``detail`` says what exactly is wrong; the message is ``<path>: <detail>``."""

    def __init__(self, path: str | Path, reason: str, detail: str | None = None) -> None:
        self.path, self.reason, self.detail = Path(path), reason, detail or reason
        super().__init__(f"{path}: {self.detail}")


def fan(poly: list[int] | np.ndarray) -> list[tuple[int, int, int]]:
    """Triangles of a polygon ``[i0, i1, …, in−1]`` as a fan from its first corner (``n − 2`` of them)."""
    return [(poly[0], poly[k], poly[k + 1]) for k in range(1, len(poly) - 1)]


def _fan_array(rows: np.ndarray) -> np.ndarray:
    """Fan triangles ``[F·(L − 2), 3]`` of ``F`` polygons of ``L`` corners each (``rows`` ``[F, L]``)."""
    f, n = rows.shape
    if n == 3:
        return rows.astype(np.int64, copy=False)
    k = np.arange(1, n - 1)
    tri = np.stack([np.broadcast_to(rows[:, :1], (f, n - 2)), rows[:, k], rows[:, k + 1]], -1)
    return tri.reshape(-1, 3).astype(np.int64, copy=False)


def _text(data: bytes, path: Path, fmt: str) -> str:
    if b"\x00" in data:
        raise BadFile(path, "malformed mesh", f"binary data (NUL bytes) in a text {fmt} file")
    return data.decode("utf-8", errors="replace")


def _triangles(tris: list[tuple[int, int, int]], path: Path) -> np.ndarray:
    """``[F, 3]`` int64; an index no int64 holds (``f 1 2 99999999999999999999``) is out of range."""
    try:
        return np.asarray(tris, dtype=np.int64).reshape(-1, 3)
    except OverflowError:
        raise BadFile(path, "face index out of range", "a face index is too large for any vertex count") from None


def _int(tok: str, path: Path, what: str) -> int:
    try:
        return int(tok)
    except ValueError:
        raise BadFile(path, "malformed mesh", f"{what} {tok!r} is not an integer") from None
