"""STL, binary (its size must match the declared triangle count) or ascii."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from hebm_pointcloud.formats._common import BadFile, _triangles, fan

__all__ = ["parse_stl"]

_STL_DTYPE = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])


def parse_stl(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """STL, binary (80-byte header, uint32 count, 50 bytes a triangle: the size must match the count
    exactly) or ascii (``solid … facet … outer loop vertex x y z … endloop endfacet … endsolid``)."""
    if len(data) >= 84:
        (n,) = struct.unpack_from("<I", data, 80)
        if 84 + 50 * n == len(data):
            tri = np.frombuffer(data, _STL_DTYPE, n, 84)["v"].astype(np.float64)
            return tri.reshape(-1, 3), np.arange(3 * n, dtype=np.int64).reshape(-1, 3)
    if data.lstrip()[:5].lower() == b"solid" and b"\x00" not in data:
        return _ascii_stl(data, path)
    if len(data) < 84:
        raise BadFile(
            path, "truncated", f"{len(data)} bytes: too short for a binary STL (84 or more) and not ascii STL"
        )
    (n,) = struct.unpack_from("<I", data, 80)
    raise BadFile(
        path,
        "truncated" if 84 + 50 * n > len(data) else "trailing data",
        f"binary STL declares {n} triangles ({84 + 50 * n} bytes) but the file has {len(data)} bytes",
    )


def _ascii_stl(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray]:
    tokens = data.decode("utf-8", errors="replace").split()
    verts: list[tuple[float, float, float]] = []
    tris: list[tuple[int, int, int]] = []
    i, n, ended = 1, len(tokens), False
    while i < n:
        tok = tokens[i].lower()
        if tok == "endsolid":
            ended = True
            break
        if tok == "loop":
            poly = []
            i += 1
            while i < n and tokens[i].lower() == "vertex":
                if i + 3 >= n:
                    raise BadFile(path, "truncated", "ascii STL ends inside a vertex")
                try:
                    verts.append((float(tokens[i + 1]), float(tokens[i + 2]), float(tokens[i + 3])))
                except ValueError:
                    raise BadFile(
                        path,
                        "malformed mesh",
                        f"ascii STL vertex {' '.join(tokens[i + 1 : i + 4])[:40]!r} is not numbers",
                    ) from None
                poly.append(len(verts) - 1)
                i += 4
            if i >= n or tokens[i].lower() != "endloop":
                raise BadFile(path, "truncated" if i >= n else "malformed mesh", "ascii STL facet without 'endloop'")
            if len(poly) < 3:
                raise BadFile(path, "malformed mesh", f"ascii STL facet with {len(poly)} vertices (3 or more needed)")
            tris.extend(fan(poly))
        i += 1
    if not ended:
        raise BadFile(path, "truncated", "ascii STL without 'endsolid' (truncated?)")
    return np.asarray(verts, dtype=np.float64).reshape(-1, 3), _triangles(tris, path)
