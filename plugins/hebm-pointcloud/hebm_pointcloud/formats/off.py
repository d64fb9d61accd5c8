"""Object File Format (ascii OFF and its colour/normal/texture variants): counts checked against the lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hebm_pointcloud.formats._common import BadFile, _int, _text, _triangles, fan

__all__ = ["parse_off"]

_OFF_HEADS = {"OFF", "COFF", "NOFF", "CNOFF", "STOFF", "STCOFF", "STNOFF", "STCNOFF"}


def parse_off(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Object File Format (ascii): ``OFF``, ``V F E``, V vertex lines, F face lines ``n i1 … in [colour]``.

    The declared counts must match the lines that follow exactly: fewer lines is a truncated file,
    more is data the header does not account for.
    """
    text = _text(data, path, "OFF")
    lines = [s for s in (ln.split("#", 1)[0].strip() for ln in text.splitlines()) if s]
    if not lines:
        raise BadFile(path, "malformed mesh", "empty OFF file")
    head = lines[0].split()
    if head[0] not in _OFF_HEADS:
        if head[0].endswith("OFF"):
            raise BadFile(path, "unsupported format", f"OFF variant {head[0]!r} is not supported (3-D OFF only)")
        raise BadFile(path, "malformed mesh", f"not an OFF file (first word {head[0][:20]!r}, expected OFF)")
    rest, start = head[1:], 1
    if rest and rest[0].upper() == "BINARY":
        raise BadFile(path, "unsupported format", "binary OFF is not supported")
    if not rest:
        if len(lines) < 2:
            raise BadFile(path, "truncated", "OFF file ends before its vertex and face counts")
        rest, start = lines[1].split(), 2
    if len(rest) not in (2, 3):
        raise BadFile(path, "malformed mesh", f"OFF counts line {' '.join(rest)[:40]!r}: expected 'V F E'")
    nv, nf = _int(rest[0], path, "vertex count"), _int(rest[1], path, "face count")
    if nv < 0 or nf < 0:
        raise BadFile(path, "malformed mesh", f"negative OFF counts: {nv} vertices, {nf} faces")
    body = lines[start:]
    if nv + nf > len(body):  # checked before anything is allocated
        raise BadFile(path, "truncated", f"declares {nv} vertices and {nf} faces but holds only {len(body)} data lines")
    if nv + nf < len(body):
        raise BadFile(
            path,
            "trailing data",
            f"holds {len(body)} data lines but declares {nv} vertices and {nf} faces ({nv + nf} lines)",
        )
    verts = np.empty((nv, 3), dtype=np.float64)
    for i, line in enumerate(body[:nv]):
        parts = line.split()
        if len(parts) < 3:
            raise BadFile(path, "malformed mesh", f"vertex {i} has {len(parts)} coordinates, expected 3")
        try:
            verts[i] = [float(parts[0]), float(parts[1]), float(parts[2])]
        except ValueError:
            raise BadFile(path, "malformed mesh", f"vertex {i}: {line[:40]!r} is not three numbers") from None
    tris: list[tuple[int, int, int]] = []
    for j, line in enumerate(body[nv:]):
        parts = line.split()
        n = _int(parts[0], path, f"face {j}'s corner count")
        if n < 3 or len(parts) < n + 1:
            raise BadFile(
                path, "malformed mesh", f"face {j} declares {n} corners and lists {len(parts) - 1} (3 or more needed)"
            )
        tris.extend(fan([_int(t, path, f"face {j}'s index") for t in parts[1 : n + 1]]))
    return verts, _triangles(tris, path)
