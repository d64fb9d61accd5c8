"""Fuzz-test helpers: random shapes, writers of every mesh format, .npy/.npz builders."""

from __future__ import annotations

import gzip
import random
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MESH_SYN, NPY_SYN, NPZ_SYN = "04379243", "03001627", "02691156"
TINY = ["--steps", "2", "--set", "model.hidden=8", "--set", "model.depth=1", "--set", "data.n_points=64"]
RUN_TINY = [
    "--set",
    "sampler.n_samples=4",
    "--set",
    "sampler.steps_per_sigma=1",
    "--set",
    "objective.n_sigmas=2",
    "--set",
    "hybrid.calibrate_rounds=0",
    "--set",
    "train.eta_lr=0.01",
    "--set",
    'evaluate.metrics=[{name = "pointflow", use_emd = false}]',
]


# --------------------------------------------------------------------------- shapes and writers
def box(rng: random.Random) -> tuple[np.ndarray, list[list[int]]]:
    """A random box: 8 vertices, 6 quads."""
    s = [rng.uniform(0.3, 1.0) for _ in range(3)]
    v = np.array([[(i & 1) * s[0], (i >> 1 & 1) * s[1], (i >> 2 & 1) * s[2]] for i in range(8)], dtype=np.float64)
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    return v + rng.uniform(-1, 1), quads


def prism(rng: random.Random, n: int = 6) -> tuple[np.ndarray, list[list[int]]]:
    """An n-gon prism: two n-gons and n quads."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r, h = rng.uniform(0.3, 1), rng.uniform(0.3, 1)
    ring = np.stack([r * np.cos(a), r * np.sin(a), np.zeros(n)], -1)
    v = np.concatenate([ring, ring + [0, 0, h]])
    faces = [list(range(n))[::-1], list(range(n, 2 * n))]
    faces += [[i, (i + 1) % n, n + (i + 1) % n, n + i] for i in range(n)]
    return v, faces


def tris(faces: list[list[int]]) -> list[list[int]]:
    return [[f[0], f[k], f[k + 1]] for f in faces for k in range(1, len(f) - 1)]


def fnum(x: float) -> str:
    return repr(float(x)) if np.isfinite(x) else str(float(x))


def w_obj(v, faces) -> bytes:
    lines = ["# hebm fuzz", "o shape"] + [f"v {fnum(a)} {fnum(b)} {fnum(c)}" for a, b, c in v]
    lines += ["f " + " ".join(str(i + 1) for i in f) for f in faces]
    return ("\n".join(lines) + "\n").encode()


def w_off(v, faces, counts: tuple[int, int] | None = None) -> bytes:
    nv, nf = counts or (len(v), len(faces))
    lines = ["OFF", f"{nv} {nf} 0"] + [f"{fnum(a)} {fnum(b)} {fnum(c)}" for a, b, c in v]
    lines += [f"{len(f)} " + " ".join(map(str, f)) for f in faces]
    return ("\n".join(lines) + "\n").encode()


def _ply_head(fmt: str, nv: int, nf: int) -> bytes:
    return (
        f"ply\nformat {fmt} 1.0\ncomment hebm fuzz\nelement vertex {nv}\nproperty float x\nproperty float y\n"
        f"property float z\nelement face {nf}\nproperty list uchar int vertex_indices\nend_header\n"
    ).encode()


def w_ply_ascii(v, faces, counts: tuple[int, int] | None = None) -> bytes:
    nv, nf = counts or (len(v), len(faces))
    body = [f"{fnum(a)} {fnum(b)} {fnum(c)}" for a, b, c in v] + [f"{len(f)} " + " ".join(map(str, f)) for f in faces]
    return _ply_head("ascii", nv, nf) + ("\n".join(body) + "\n").encode()


def w_ply_bin(v, faces, counts: tuple[int, int] | None = None, endian: str = "<") -> bytes:
    nv, nf = counts or (len(v), len(faces))
    fmt = "binary_little_endian" if endian == "<" else "binary_big_endian"
    out = bytearray(_ply_head(fmt, nv, nf))
    out += np.asarray(v, dtype=endian + "f4").tobytes()
    for f in faces:
        out += struct.pack(f"{endian}B{len(f)}i", len(f), *f)
    return bytes(out)


def w_stl_ascii(v, faces) -> bytes:
    lines = ["solid fuzz"]
    for t in tris(faces):
        lines += ["facet normal 0 0 0", "outer loop"] + [f"vertex {' '.join(fnum(c) for c in v[i])}" for i in t]
        lines += ["endloop", "endfacet"]
    return ("\n".join(lines + ["endsolid fuzz"]) + "\n").encode()


def w_stl_bin(v, faces, count: int | None = None) -> bytes:
    t = tris(faces)
    out = bytearray(b"hebm fuzz".ljust(80, b" ")) + struct.pack("<I", len(t) if count is None else count)
    for tri in t:
        out += struct.pack("<3f", 0, 0, 0) + np.asarray(v, "<f4")[tri].tobytes() + b"\0\0"
    return bytes(out)


#: format -> (suffix, writer(v, faces))
WRITERS: dict[str, tuple[str, Callable]] = {
    "obj": (".obj", w_obj),
    "off": (".off", w_off),
    "ply_ascii": (".ply", w_ply_ascii),
    "ply_le": (".ply", w_ply_bin),
    "ply_be": (".ply", lambda v, f, counts=None: w_ply_bin(v, f, counts, endian=">")),
    "stl_ascii": (".stl", w_stl_ascii),
    "stl_bin": (".stl", w_stl_bin),
}
FORMATS = list(WRITERS)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def npy(descr: str, shape: tuple, body: bytes, fortran: bool = False, version: tuple[int, int] = (1, 0)) -> bytes:
    """A .npy file with the header we choose (which may lie about the body)."""
    head = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode()
    size = 2 if version == (1, 0) else 4
    pad = (-(len(head) + 1 + 6 + 2 + size)) % 64
    head = head + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack("<H" if size == 2 else "<I", len(head)) + head + body


def cloud(rng: random.Random, n: int = 200) -> np.ndarray:
    g = np.random.default_rng(rng.randrange(2**32))
    x = g.normal(size=(n, 3))
    return (x / np.linalg.norm(x, axis=1, keepdims=True) * g.uniform(0.5, 1.5, 3)).astype(np.float32)


def npy_of(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def npz_of(compression: int = zipfile.ZIP_STORED, **arrays: np.ndarray | bytes) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for k, a in arrays.items():
            zf.writestr(f"{k}.npy", a if isinstance(a, bytes) else npy_of(a))
    return buf.getvalue()


@dataclass
class Hostile:
    """One hostile file: its name in the layout, its bytes, and what the loader must make of it."""

    name: str
    data: bytes | None  # None: a directory
    expect: str
