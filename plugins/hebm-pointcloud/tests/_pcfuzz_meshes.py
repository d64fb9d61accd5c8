"""Fuzz-test generators of hostile mesh files, one per kind of damage (``MESH_KINDS``)."""

from __future__ import annotations

import gzip
import random

import numpy as np
from _pcfuzz_writers import (
    FORMATS,
    WRITERS,
    Hostile,
    box,
    gz,
    prism,
    tris,
    w_obj,
    w_off,
    w_ply_ascii,
    w_ply_bin,
    w_stl_ascii,
    w_stl_bin,
)


def _mesh(rng: random.Random, fmt: str | None = None):
    fmt = fmt or rng.choice(FORMATS)
    v, faces = (box if rng.random() < 0.6 else prism)(rng)
    return fmt, v, faces


def _write(fmt: str, v, faces) -> bytes:
    return WRITERS[fmt][1](v, faces)


def m_nonfinite(rng):
    fmt, v, f = _mesh(rng)
    v[rng.randrange(len(v)), rng.randrange(3)] = rng.choice([np.nan, np.inf, -np.inf])
    return Hostile(f"bad{WRITERS[fmt][0]}", _write(fmt, v, f), "skip"), fmt


def m_huge(rng):
    fmt, v, f = _mesh(rng)
    v[rng.randrange(len(v)), rng.randrange(3)] = rng.choice([1e30, -1e38, 3e12])
    return Hostile(f"bad{WRITERS[fmt][0]}", _write(fmt, v, f), "skip"), fmt


def m_index_past_end(rng):
    fmt = rng.choice(["obj", "off", "ply_ascii", "ply_le", "ply_be"])
    _, v, f = _mesh(rng, fmt)
    f[rng.randrange(len(f))][rng.randrange(3)] = len(v) + rng.randrange(0, 1000)
    return Hostile(f"bad{WRITERS[fmt][0]}", _write(fmt, v, f), "skip"), fmt


def m_negative_index(rng):
    fmt = rng.choice(["off", "ply_ascii", "ply_le", "ply_be", "obj"])
    _, v, f = _mesh(rng, fmt)
    if fmt == "obj":  # 0, or a relative index before the first vertex
        bad = rng.choice([-1, -(len(v) + 2)])  # written as i + 1: 0 or -(len+1)
    else:
        bad = -rng.randrange(1, 50)
    f[rng.randrange(len(f))][rng.randrange(3)] = bad
    return Hostile(f"bad{WRITERS[fmt][0]}", _write(fmt, v, f), "skip"), fmt


def m_relative_obj(rng):
    _, v, f = _mesh(rng, "obj")
    lines = [f"v {a} {b} {c}" for a, b, c in v] + ["f " + " ".join(str(i - len(v)) for i in face) for face in f]
    return Hostile("rel.obj", ("\n".join(lines) + "\n").encode(), "ok"), "obj"


def m_declared_more(rng):
    fmt = rng.choice(["off", "ply_ascii", "ply_le", "ply_be", "stl_bin"])
    _, v, f = _mesh(rng, fmt)
    extra = rng.choice([1, 7, 10**6, 10**12])
    if fmt == "stl_bin":
        data = w_stl_bin(v, f, count=len(tris(f)) + min(extra, 2**32 - 1 - len(tris(f))))
    else:
        counts = (len(v) + extra, len(f)) if rng.random() < 0.5 else (len(v), len(f) + extra)
        data = WRITERS[fmt][1](v, f, counts)
    return Hostile(f"bad{WRITERS[fmt][0]}", data, "skip"), fmt


def m_declared_fewer(rng):
    fmt = rng.choice(["off", "ply_ascii", "ply_le", "ply_be", "stl_bin"])
    _, v, f = _mesh(rng, fmt)
    if fmt == "stl_bin":
        data = w_stl_bin(v, f, count=len(tris(f)) - 1)
    else:
        counts = (len(v), len(f) - rng.randrange(1, len(f)))
        data = WRITERS[fmt][1](v, f, counts)
    return Hostile(f"bad{WRITERS[fmt][0]}", data, "skip"), fmt


def m_truncated(rng):
    fmt, v, f = _mesh(rng)
    data = _write(fmt, v, f)
    return Hostile(f"cut{WRITERS[fmt][0]}", data[: rng.randrange(1, len(data) - 2)], "any"), fmt


def m_zero_area(rng):
    fmt, v, f = _mesh(rng)
    kind = rng.choice(["point", "line", "repeat"])
    if kind == "point":
        v[:] = v[0]
    elif kind == "line":
        t = np.linspace(0, 1, len(v))[:, None]
        v[:] = t * [1.0, 2.0, 3.0]
    else:
        f = [[face[0], face[0], face[1]] for face in f]
    return Hostile(f"flat{WRITERS[fmt][0]}", _write(fmt, v, f), "skip"), f"{fmt}-{kind}"


def m_some_degenerate(rng):
    fmt, v, f = _mesh(rng)
    f = [*f, [0, 0, 1], [2, 2, 2]]
    return Hostile(f"part{WRITERS[fmt][0]}", _write(fmt, v, f), "ok"), fmt


def m_polygons(rng):
    fmt = rng.choice(["obj", "off", "ply_ascii", "ply_le", "ply_be"])
    v, f = prism(rng, rng.choice([3, 5, 6, 8]))
    if rng.random() < 0.5:  # mixed: some faces already triangles
        f = [f[0], f[1]] + tris(f[2:])
    return Hostile(f"poly{WRITERS[fmt][0]}", _write(fmt, v, f), "ok"), fmt


def m_quads_only_obj(rng):
    v, f = box(rng)
    return Hostile("quads.obj", w_obj(v, f), "ok"), "obj"


def m_empty(rng):
    fmt = rng.choice(FORMATS)
    return Hostile(f"empty{WRITERS[fmt][0]}", b"" if rng.random() < 0.7 else b"\n\n  \n", "skip"), fmt


def m_points_only(rng):
    fmt = rng.choice(["obj", "off", "ply_ascii", "ply_le"])
    _, v, _f = _mesh(rng, fmt)
    return Hostile(f"pts{WRITERS[fmt][0]}", _write(fmt, v, []), "skip"), fmt


def m_garbage(rng):
    fmt = rng.choice(FORMATS + ["glb", "gltf"])
    n = rng.choice([1, 10, 83, 84, 200, 5000])
    data = bytes(rng.randrange(256) for _ in range(n))
    if fmt == "gltf":
        data = b'{"asset": {"version": "2.0"}, "meshes": [' + data[:50]
    suffix = WRITERS[fmt][0] if fmt in WRITERS else f".{fmt}"
    return Hostile(f"junk{suffix}", data, "any"), fmt


def m_bad_number(rng):
    fmt = rng.choice(["obj", "off", "ply_ascii", "stl_ascii"])
    _, v, f = _mesh(rng, fmt)
    text = _write(fmt, v, f).decode()
    lines = text.splitlines()
    word = rng.choice(["x", "1.2.3", "--", "0x1p3", "NaNa"])
    if fmt == "obj":
        candidates = [i for i, ln in enumerate(lines) if ln.startswith(("v ", "f "))]
    elif fmt == "off":
        candidates = list(range(2, len(lines)))
    elif fmt == "ply_ascii":
        candidates = list(range(lines.index("end_header") + 1, len(lines)))
    else:
        candidates = [i for i, ln in enumerate(lines) if ln.startswith("vertex")]
    i = rng.choice(candidates)
    parts = lines[i].split()
    parts[rng.randrange(1, len(parts)) if fmt in ("obj", "stl_ascii") else rng.randrange(len(parts))] = word
    lines[i] = " ".join(parts)
    return Hostile(f"word{WRITERS[fmt][0]}", ("\n".join(lines) + "\n").encode(), "skip"), fmt


def m_ply_header(rng):
    v, f = box(rng)
    data = w_ply_ascii(v, f) if rng.random() < 0.5 else w_ply_bin(v, f)
    kind = rng.choice(["no_format", "bad_type", "no_end", "neg_count", "huge_count", "version", "endian", "magic"])
    edits = {
        "no_format": (b"format ascii 1.0\n", b"")
        if b"format ascii" in data
        else (b"format binary_little_endian 1.0\n", b""),
        "bad_type": (b"property float x", b"property float128 x"),
        "no_end": (b"end_header", b"end_headr"),
        "neg_count": (b"element vertex 8", b"element vertex -8"),
        "huge_count": (b"element face 6", b"element face 1000000000000000"),
        "version": (b" 1.0\n", b" 2.0\n"),
        "endian": (b"binary_little_endian", b"binary_middle_endian") if b"binary" in data else (b"ascii", b"asci"),
        "magic": (b"ply\n", b"plz\n"),
    }
    old, new = edits[kind]
    return Hostile("head.ply", data.replace(old, new, 1), "skip"), kind


def m_ply_list(rng):
    v, f = box(rng)
    data = bytearray(w_ply_bin(v, f))
    # the last face's count byte says 255 corners: the list runs past the end
    data[-(1 + 4 * 4)] = 255
    return Hostile("list.ply", bytes(data), "skip"), "count255"


def m_stl_ascii_bad(rng):
    v, f = box(rng)
    text = w_stl_ascii(v, f).decode()
    kind = rng.choice(["no_endsolid", "two_vertices", "short_vertex", "no_endloop"])
    if kind == "no_endsolid":
        text = text.replace("endsolid fuzz", "")
    elif kind == "two_vertices":
        i = text.index("vertex")
        text = text[:i] + text[text.index("\n", i) + 1 :]
    elif kind == "short_vertex":
        i = text.index("vertex")
        j = text.index("\n", i)
        text = text[:i] + "vertex 1 2" + text[j:]
    else:
        text = text.replace("endloop", "", 1)
    return Hostile("bad.stl", text.encode(), "skip"), kind


def m_off_variant(rng):
    v, f = box(rng)
    kind = rng.choice(["4OFF", "binary", "same_line", "comments", "COFF", "no_counts", "neg_counts"])
    text = w_off(v, f).decode()
    expect = "skip"
    if kind == "4OFF":
        text = "4" + text
    elif kind == "binary":
        text = text.replace("OFF\n", "OFF BINARY\n", 1)
    elif kind == "same_line":
        text, expect = text.replace("OFF\n", "OFF ", 1), "ok"
    elif kind == "comments":
        text, expect = "# made by hand\n" + text.replace("\n", "  # note\n", 3), "ok"
    elif kind == "COFF":
        lines = text.splitlines()
        lines[0] = "COFF"
        lines[2 : 2 + len(v)] = [ln + " 255 0 0 255" for ln in lines[2 : 2 + len(v)]]
        text, expect = "\n".join(lines) + "\n", "ok"
    elif kind == "no_counts":
        text = "OFF\n"
    else:
        text = text.replace(f"{len(v)} {len(f)} 0", f"-{len(v)} {len(f)} 0")
    return Hostile("var.off", text.encode(), expect), kind


def m_gz(rng):
    fmt, v, f = _mesh(rng)
    inner = _write(fmt, v, f)
    kind = rng.choice(["ok", "truncated", "not_gzip", "bomb", "bomb_text", "bad_crc"])
    suffix = WRITERS[fmt][0] + ".gz"
    if kind == "ok":
        return Hostile(f"g{suffix}", gz(inner), "ok"), f"{fmt}-{kind}"
    if kind == "truncated":
        data = gz(inner)
        return Hostile(f"g{suffix}", data[: rng.randrange(10, len(data) - 1)], "skip"), f"{fmt}-{kind}"
    if kind == "not_gzip":
        return Hostile(f"g{suffix}", inner, "skip"), f"{fmt}-{kind}"
    if kind == "bad_crc":
        data = bytearray(gz(inner))
        data[-8] ^= 0xFF
        return Hostile(f"g{suffix}", bytes(data), "skip"), f"{fmt}-{kind}"
    block = b"\0" * 2**20 if kind == "bomb" else b"v 0 0 0\n" * (2**17)
    member = gzip.compress(block, compresslevel=9, mtime=0)
    return Hostile(f"g{suffix}", member * 40, "skip"), f"{fmt}-{kind}"


def m_other(rng):
    kind = rng.choice(["dir_named_obj", "unknown_suffix_gz", "duplicate_id"])
    v, f = box(rng)
    if kind == "dir_named_obj":
        return Hostile("folder.obj", None, "ok"), kind
    if kind == "unknown_suffix_gz":
        return Hostile("notes.txt.gz", gz(b"hello"), "ok"), kind
    return Hostile("good0.obj", w_obj(v, f), "skip"), kind  # good0.off exists: the same shape id


MESH_KINDS = {
    "nonfinite": m_nonfinite,
    "huge_coord": m_huge,
    "index_past_end": m_index_past_end,
    "negative_index": m_negative_index,
    "relative_obj": m_relative_obj,
    "declared_more": m_declared_more,
    "declared_fewer": m_declared_fewer,
    "truncated": m_truncated,
    "zero_area": m_zero_area,
    "some_degenerate": m_some_degenerate,
    "polygons": m_polygons,
    "quads_only_obj": m_quads_only_obj,
    "empty": m_empty,
    "points_only": m_points_only,
    "garbage": m_garbage,
    "bad_number": m_bad_number,
    "ply_header": m_ply_header,
    "ply_list": m_ply_list,
    "stl_ascii_bad": m_stl_ascii_bad,
    "off_variant": m_off_variant,
    "gz": m_gz,
    "other": m_other,
}
