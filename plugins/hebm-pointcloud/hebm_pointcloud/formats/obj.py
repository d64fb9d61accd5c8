"""Wavefront OBJ: vertices and polygon faces (triangulated as fans); other statements are ignored."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hebm_pointcloud.formats._common import BadFile, _text, _triangles, fan

__all__ = ["parse_obj"]


def parse_obj(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Wavefront OBJ: ``v x y z [w | r g b]`` and ``f i[/t][/n] …`` faces of 3 or more corners
    (1-based; negative indices count back from the last vertex so far). Other statements are ignored."""
    text = _text(data, path, "OBJ")
    verts: list[tuple[float, float, float]] = []
    tris: list[tuple[int, int, int]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0] not in ("v", "f"):
            continue
        if parts[0] == "v":
            if len(parts) < 4:
                raise BadFile(path, "malformed mesh", f"line {lineno}: a vertex needs 3 coordinates, got {parts[1:]}")
            try:
                verts.append((float(parts[1]), float(parts[2]), float(parts[3])))
            except ValueError:
                raise BadFile(
                    path,
                    "malformed mesh",
                    f"line {lineno}: vertex coordinates {' '.join(parts[1:4])!r} are not numbers",
                ) from None
            continue
        if len(parts) < 4:
            raise BadFile(
                path, "malformed mesh", f"line {lineno}: a face needs 3 or more corners, got {len(parts) - 1}"
            )
        poly = []
        for tok in parts[1:]:
            try:
                i = int(tok.split("/", 1)[0])
            except ValueError:
                raise BadFile(path, "malformed mesh", f"line {lineno}: face corner {tok!r} is not an index") from None
            if i == 0:
                raise BadFile(path, "face index out of range", f"line {lineno}: face index 0 (OBJ counts from 1)")
            if i < 0:
                if -i > len(verts):
                    raise BadFile(
                        path,
                        "face index out of range",
                        f"line {lineno}: relative face index {i} reaches before the first vertex ({len(verts)} so far)",
                    )
                i = len(verts) + i
            else:
                i -= 1
            poly.append(i)
        tris.extend(fan(poly))
    return np.asarray(verts, dtype=np.float64).reshape(-1, 3), _triangles(tris, path)
