"""Stanford PLY 1.0 (ascii, binary little- and big-endian), every declared count checked before allocating."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from hebm_pointcloud.formats._common import BadFile, _fan_array, _int, _triangles, fan

__all__ = ["parse_ply", "PLY_MAX_HEADER"]

_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
#: the header may be at most this long (real headers are a few hundred bytes)
PLY_MAX_HEADER = 65536


class _Prop:
    def __init__(self, name: str, code: str, count_code: str | None = None) -> None:
        self.name, self.code, self.count_code = name, code, count_code  # count_code: list properties only

    @property
    def is_list(self) -> bool:
        return self.count_code is not None


class _Element:
    def __init__(self, name: str, count: int) -> None:
        self.name, self.count, self.props = name, count, []


def _ply_header(data: bytes, path: Path) -> tuple[str, list[_Element], int]:
    """``(format, elements, offset of the body)``."""
    if not data.startswith(b"ply"):
        raise BadFile(path, "malformed mesh", "not a PLY file (no 'ply' magic)")
    end = data.find(b"end_header", 0, PLY_MAX_HEADER)
    if end < 0:
        raise BadFile(path, "malformed mesh", f"no 'end_header' in the first {PLY_MAX_HEADER} bytes")
    body = end + len(b"end_header")
    if data[body : body + 2] == b"\r\n":
        body += 2
    elif data[body : body + 1] in (b"\n", b"\r"):
        body += 1
    else:
        raise BadFile(path, "malformed mesh", "'end_header' is not followed by a line break")
    fmt, elements = None, []
    lines = data[:end].decode("ascii", errors="replace").splitlines()
    for lineno, line in enumerate(lines[1:], 2):
        parts = line.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "format":
            if len(parts) != 3 or parts[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
                raise BadFile(path, "malformed mesh", f"header line {lineno}: unknown PLY format {line[:60]!r}")
            if parts[2] != "1.0":
                raise BadFile(path, "unsupported format", f"PLY version {parts[2][:10]!r} (1.0 only)")
            fmt = parts[1]
        elif parts[0] == "element":
            if len(parts) != 3:
                raise BadFile(
                    path, "malformed mesh", f"header line {lineno}: {line[:60]!r} is not 'element NAME COUNT'"
                )
            count = _int(parts[2], path, f"header line {lineno}: element count")
            if count < 0:
                raise BadFile(path, "malformed mesh", f"header line {lineno}: negative element count {count}")
            elements.append(_Element(parts[1], count))
        elif parts[0] == "property":
            if not elements:
                raise BadFile(path, "malformed mesh", f"header line {lineno}: property before any element")
            if len(parts) == 5 and parts[1] == "list":
                if parts[2] not in _PLY_TYPES or parts[3] not in _PLY_TYPES or _PLY_TYPES[parts[2]][0] == "f":
                    raise BadFile(path, "malformed mesh", f"header line {lineno}: bad list types in {line[:60]!r}")
                elements[-1].props.append(_Prop(parts[4], _PLY_TYPES[parts[3]], _PLY_TYPES[parts[2]]))
            elif len(parts) == 3 and parts[1] in _PLY_TYPES:
                elements[-1].props.append(_Prop(parts[2], _PLY_TYPES[parts[1]]))
            else:
                raise BadFile(path, "malformed mesh", f"header line {lineno}: bad property {line[:60]!r}")
        else:
            raise BadFile(path, "malformed mesh", f"header line {lineno}: unknown keyword {parts[0][:20]!r}")
    if fmt is None:
        raise BadFile(path, "malformed mesh", "PLY header has no 'format' line")
    for el in elements:
        if not el.props and el.count:
            raise BadFile(path, "malformed mesh", f"element {el.name!r} has {el.count} rows but no properties")
    return fmt, elements, body


def _check_declared(elements: list[_Element], available: int, unit: str, path: Path, minimum) -> None:
    """The header's counts need at least ``Σ count · minimum(element)`` units; refuse before allocating."""
    need = sum(el.count * minimum(el) for el in elements)
    if need > available:
        counts = ", ".join(f"{el.count} {el.name}" for el in elements)
        raise BadFile(
            path, "truncated", f"header declares {counts}, which needs at least {need} {unit}; the file has {available}"
        )


def _binary_elements(data: bytes, pos: int, elements: list[_Element], endian: str, path: Path) -> tuple[dict, int]:
    """Each element's rows: a structured array, or (with lists of varying length) a list of row tuples."""
    out = {}
    _check_declared(
        elements,
        len(data) - pos,
        "bytes",
        path,
        lambda el: sum(np.dtype(p.count_code if p.is_list else p.code).itemsize for p in el.props),
    )
    for el in elements:
        arr, pos = _binary_fixed(data, pos, el, endian, path)
        if arr is None:
            arr, pos = _binary_rows(data, pos, el, endian, path)
        out[el.name] = arr
    return out, pos


def _binary_fixed(data: bytes, pos: int, el: _Element, endian: str, path: Path):
    """All rows at once when every list in the element has the length its first row gives it."""
    if el.count == 0:
        return {}, pos
    fields, cur = [], pos
    for p in el.props:
        if not p.is_list:
            fields.append((p.name, endian + p.code))
            cur += np.dtype(p.code).itemsize
            continue
        csize = np.dtype(p.count_code).itemsize
        if cur + csize > len(data):
            raise BadFile(path, "truncated", f"file ends inside the first {el.name!r} row")
        n = int(np.frombuffer(data, endian + p.count_code, 1, cur)[0])
        isize = np.dtype(p.code).itemsize
        if n < 0 or cur + csize + n * isize > len(data):
            raise BadFile(path, "truncated", f"the first {el.name!r} row's list of {n} runs past the end of the file")
        fields += [(p.name + "/count", endian + p.count_code), (p.name, endian + p.code, (n,))]
        cur += csize + n * isize
    try:
        dtype = np.dtype(fields)
    except (ValueError, TypeError):  # duplicate property names
        raise BadFile(path, "malformed mesh", f"element {el.name!r} has duplicate property names") from None
    if pos + el.count * dtype.itemsize > len(data):
        if not any(p.is_list for p in el.props):
            raise BadFile(
                path,
                "truncated",
                f"{el.count} {el.name!r} rows need {el.count * dtype.itemsize} bytes; {len(data) - pos} are left",
            )
        return None, pos  # varying list lengths, maybe: read row by row
    arr = np.frombuffer(data, dtype, el.count, pos)
    for p in el.props:
        if p.is_list and (arr[p.name + "/count"] != arr[p.name + "/count"][0]).any():
            return None, pos
    return {p.name: arr[p.name] for p in el.props}, pos + el.count * dtype.itemsize


def _binary_rows(data: bytes, pos: int, el: _Element, endian: str, path: Path) -> tuple[list, int]:
    """Row by row (lists of varying length): a list of rows, each a dict of property -> value or tuple."""
    e = "<" if endian == "<" else ">"
    rows = []
    for r in range(el.count):
        row = {}
        for p in el.props:
            try:
                if p.is_list:
                    (n,) = struct.unpack_from(e + np.dtype(p.count_code).char, data, pos)
                    pos += np.dtype(p.count_code).itemsize
                    if n < 0 or pos + n * np.dtype(p.code).itemsize > len(data):
                        raise BadFile(
                            path, "truncated", f"{el.name!r} row {r}: a list of {n} runs past the end of the file"
                        )
                    row[p.name] = struct.unpack_from(f"{e}{n}{np.dtype(p.code).char}", data, pos)
                    pos += n * np.dtype(p.code).itemsize
                else:
                    (row[p.name],) = struct.unpack_from(e + np.dtype(p.code).char, data, pos)
                    pos += np.dtype(p.code).itemsize
            except struct.error:
                raise BadFile(
                    path, "truncated", f"file ends inside {el.name!r} row {r} of the {el.count} declared"
                ) from None
        rows.append(row)
    return rows, pos


def _ascii_elements(data: bytes, pos: int, elements: list[_Element], path: Path) -> tuple[dict, list]:
    """Each element's rows (see :func:`_binary_elements`) and the tokens left over."""
    tokens = data[pos:].split()
    _check_declared(elements, len(tokens), "numbers", path, lambda el: len(el.props))
    out, t = {}, 0
    for el in elements:
        if el.count == 0:
            out[el.name] = {}
            continue
        if not any(p.is_list for p in el.props):
            k = len(el.props)
            chunk = tokens[t : t + el.count * k]
            if len(chunk) < el.count * k:
                raise BadFile(path, "truncated", f"file ends inside the {el.count} declared {el.name!r} rows")
            vals = _numbers(chunk, path, el.name).reshape(el.count, k)
            out[el.name] = {p.name: vals[:, j] for j, p in enumerate(el.props)}
            t += el.count * k
            continue
        if len(el.props) == 1:  # the common face element: try the all-same-length reading first
            first = _numbers(tokens[t : t + 1], path, el.name)
            n = int(first[0]) if first.size else -1
            block = tokens[t : t + el.count * (n + 1)] if n >= 0 else []
            if n >= 0 and len(block) == el.count * (n + 1):
                rows = _numbers(block, path, el.name).reshape(el.count, n + 1)
                if (rows[:, 0] == n).all():
                    out[el.name] = {el.props[0].name: rows[:, 1:]}
                    t += el.count * (n + 1)
                    continue
        rows_list = []
        for r in range(el.count):
            row = {}
            for p in el.props:
                if t >= len(tokens):
                    raise BadFile(path, "truncated", f"file ends inside {el.name!r} row {r} of the {el.count} declared")
                if p.is_list:
                    n = _int(tokens[t].decode("ascii", "replace"), path, f"{el.name!r} row {r}: list length")
                    if n < 0 or t + 1 + n > len(tokens):
                        raise BadFile(
                            path, "truncated", f"{el.name!r} row {r}: list of {n} runs past the end of the file"
                        )
                    row[p.name] = tuple(_numbers(tokens[t + 1 : t + 1 + n], path, el.name))
                    t += 1 + n
                else:
                    row[p.name] = float(_numbers(tokens[t : t + 1], path, el.name)[0])
                    t += 1
            rows_list.append(row)
        out[el.name] = rows_list
    return out, tokens[t:]


def _numbers(tokens: list[bytes], path: Path, where: str) -> np.ndarray:
    try:
        return np.array(tokens, dtype=np.bytes_).astype(np.float64)
    except ValueError:
        bad = next((t for t in tokens if not _is_number(t)), tokens[0] if tokens else b"")
        raise BadFile(path, "malformed mesh", f"{where!r} data: {bad[:20]!r} is not a number") from None


def _is_number(tok: bytes) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _face_list(el: _Element) -> _Prop | None:
    lists = [p for p in el.props if p.is_list]
    named = [p for p in lists if p.name in ("vertex_indices", "vertex_index")]
    return (named or lists or [None])[0]


def parse_ply(data: bytes, path: Path, faces: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Stanford PLY 1.0, ascii or binary: the ``vertex`` element's x, y, z and the ``face`` element's
    index lists (``vertex_indices``/``vertex_index``). Every element the header declares must be
    present in full, and nothing may follow the last one. ``faces=False``: a point cloud (vertices
    only; faces, if any, are read and ignored)."""
    fmt, elements, pos = _ply_header(data, path)
    by_name = {el.name: el for el in elements}
    vert = by_name.get("vertex")
    if vert is None:
        raise BadFile(path, "malformed mesh", "PLY header declares no 'vertex' element")
    missing = [c for c in "xyz" if not any(p.name == c and not p.is_list for p in vert.props)]
    if missing:
        raise BadFile(path, "malformed mesh", f"PLY vertex element lacks the scalar properties {', '.join(missing)}")
    face = by_name.get("face")
    if faces and (face is None or face.count == 0):
        raise BadFile(path, "no faces", "PLY file has no faces (a point cloud or an empty mesh)")
    if face is not None and _face_list(face) is None:
        raise BadFile(path, "malformed mesh", "PLY face element has no vertex_indices list")
    if fmt == "ascii":
        rows, left = _ascii_elements(data, pos, elements, path)
        trailing = len(left)
    else:
        rows, end = _binary_elements(data, pos, elements, "<" if fmt == "binary_little_endian" else ">", path)
        trailing = len(data[end:].strip())
    if trailing:
        raise BadFile(
            path,
            "trailing data",
            f"{trailing} more {'numbers' if fmt == 'ascii' else 'bytes'} after the elements the header declares",
        )
    verts = _vertices(rows["vertex"], vert.count)
    if not faces:
        return verts, np.empty((0, 3), np.int64)
    return verts, _faces(rows["face"], _face_list(face).name, path)


def _vertices(v: dict | list, count: int) -> np.ndarray:
    """``[V, 3]`` float64 from the vertex element's rows (columns, or row dicts when it has lists)."""
    if count == 0:
        return np.empty((0, 3), np.float64)
    if isinstance(v, list):  # rows of dicts (a vertex element with lists of varying length)
        return np.array([[r["x"], r["y"], r["z"]] for r in v], dtype=np.float64).reshape(-1, 3)
    return np.stack([np.asarray(v[c], np.float64) for c in "xyz"], -1)


def _integral(idx: np.ndarray) -> bool:
    """Whether every index is a whole number an int64 holds (an ascii PLY's lists are read as floats)."""
    if not np.issubdtype(idx.dtype, np.floating):
        return True
    return bool(np.isfinite(idx).all() and (idx == np.round(idx)).all() and (np.abs(idx) < 2**62).all())


def _faces(f: dict | list, name: str, path: Path) -> np.ndarray:
    """Fan triangles ``[F, 3]`` int64 of the face element's index lists (columns, or row dicts)."""
    if isinstance(f, dict):
        idx = np.asarray(f[name])
        if idx.ndim != 2 or idx.shape[1] < 3:
            raise BadFile(
                path,
                "malformed mesh",
                f"PLY faces have {idx.shape[1] if idx.ndim == 2 else 0} corners (3 or more needed)",
            )
        if not _integral(idx):
            raise BadFile(path, "malformed mesh", "PLY face indices are not integers")
        return _fan_array(idx.astype(np.int64))
    tris: list[tuple[int, int, int]] = []
    for r, row in enumerate(f):
        poly = np.asarray(row[name])
        if len(poly) < 3:
            raise BadFile(path, "malformed mesh", f"PLY face {r} has {len(poly)} corners (3 or more needed)")
        if not _integral(poly):
            raise BadFile(path, "malformed mesh", f"PLY face {r}'s indices are not integers")
        tris.extend(fan([int(i) for i in poly]))
    return _triangles(tris, path)
