"""The checks every mesh passes, whichever reader produced its arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hebm_pointcloud.formats._common import MAX_COORD, SLIVER, BadFile

__all__ = ["check_mesh"]


def check_mesh(verts: np.ndarray, tris: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Finite vertices within ±:data:`MAX_COORD`, every face index in range, positive total area.

    Returns ``(vertices, triangles without the degenerate ones, how many were dropped)``: a triangle
    with a repeated corner or (numerically) zero area adds no surface, so dropping it changes no
    sample; a mesh whose every triangle is degenerate is refused.
    """
    if len(tris) == 0:
        raise BadFile(path, "no faces", f"mesh has no faces ({len(verts)} vertices; a point-only or empty file)")
    bad = ~np.isfinite(verts)
    if bad.any():
        raise BadFile(
            path,
            "non-finite values",
            f"{int(bad.any(1).sum())} of {len(verts)} vertices have NaN or infinite coordinates",
        )
    big = float(np.abs(verts).max()) if verts.size else 0.0
    if big > MAX_COORD:
        raise BadFile(path, "coordinates out of range", f"vertex coordinate {big:.3g} is beyond ±{MAX_COORD:g}")
    lo, hi = int(tris.min()), int(tris.max())
    if lo < 0 or hi >= len(verts):
        which = lo if lo < 0 else hi
        face = int(np.argwhere((tris < 0) | (tris >= len(verts)))[0, 0])
        raise BadFile(
            path,
            "face index out of range",
            f"face {face} refers to vertex {which}, but there are {len(verts)} vertices (0…{len(verts) - 1})",
        )
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    edge2 = np.maximum.reduce([((b - a) ** 2).sum(1), ((c - b) ** 2).sum(1), ((a - c) ** 2).sum(1)])
    # degenerate: area within rounding of zero next to the longest edge (a collinear triangle stored in
    # float32 keeps an area of ~1e-8 edge²; a real sliver has far more)
    keep = area > SLIVER * edge2
    if not keep.any():
        raise BadFile(
            path, "zero area", f"all {len(tris)} faces are degenerate (zero area: a point, a line or repeated corners)"
        )
    return verts, tris[keep], int((~keep).sum())
