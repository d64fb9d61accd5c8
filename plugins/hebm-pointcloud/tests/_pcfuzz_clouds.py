"""Fuzz-test generators of hostile PC15k ``.npy`` and Occupancy-Networks ``.npz`` files."""

from __future__ import annotations

import struct
import zipfile

import numpy as np
from _pcfuzz_writers import Hostile, cloud, npy, npy_of, npz_of

#: the kinds of .npy file :func:`n_npy` draws from (the last six are valid)
NPY_KINDS = [
    "bad_magic",
    "tib_header",
    "more_rows",
    "fewer_rows",
    "dtype_lie",
    "truncated",
    "object",
    "structured",
    "shape_1d",
    "shape_n2",
    "shape_n4",
    "shape_3d",
    "shape_0",
    "nan",
    "inf",
    "empty_file",
    "huge_value",
    "bool",
    "complex",
    "header_garbage",
    "version3",
    "negative_shape",
    "degenerate",
    "few_points",
    "float16",
    "int16",
    "big_endian",
    "fortran",
    "version2",
    "float64",
]


def n_npy(rng):
    """A hostile (or, for the kinds in ``ok``, valid but unusual) PC15k ``.npy`` file."""
    c = cloud(rng)
    raw = c.astype("<f4").tobytes()
    kind = rng.choice(NPY_KINDS)
    ok = {"float16", "int16", "big_endian", "fortran", "version2", "float64"}
    n = len(c)
    data = {
        "bad_magic": lambda: b"\x93NUMPZ" + npy_of(c)[6:],
        "tib_header": lambda: npy("<f4", (2**40 // 12, 3), raw),
        "more_rows": lambda: npy("<f4", (n + rng.randrange(1, 100), 3), raw),
        "fewer_rows": lambda: npy("<f4", (n - rng.randrange(1, 100), 3), raw),
        "dtype_lie": lambda: npy("<f8", (n, 3), raw),
        "truncated": lambda: npy_of(c)[: rng.randrange(10, 128 + len(raw) - 1)],
        "object": lambda: npy("|O", (n, 3), b"\x80\x04K\x01."),
        "structured": lambda: npy("[('x', '<f4'), ('y', '<f4'), ('z', '<f4')]", (n,), raw),
        "shape_1d": lambda: npy_of(c.reshape(-1)),
        "shape_n2": lambda: npy_of(c[:, :2]),
        "shape_n4": lambda: npy_of(np.concatenate([c, c[:, :1]], 1)),
        "shape_3d": lambda: npy_of(c.reshape(n, 3, 1)),
        "shape_0": lambda: npy_of(np.zeros((0, 3), np.float32)),
        "nan": lambda: npy_of(np.where(np.arange(c.size).reshape(c.shape) == rng.randrange(c.size), np.nan, c)),
        "inf": lambda: npy_of(np.where(np.arange(c.size).reshape(c.shape) == rng.randrange(c.size), -np.inf, c)),
        "empty_file": lambda: b"",
        "huge_value": lambda: npy_of(np.where(np.arange(c.size).reshape(c.shape) == 5, 1e300, c.astype(np.float64))),
        "bool": lambda: npy_of(c > 0),
        "complex": lambda: npy_of(c.astype(np.complex64)),
        "header_garbage": lambda: (
            b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + bytes(rng.randrange(256) for _ in range(118)) + raw
        ),
        "version3": lambda: b"\x93NUMPY\x03\x00" + npy_of(c)[8:],
        "negative_shape": lambda: npy("<f4", (-n, 3), raw),
        "degenerate": lambda: npy_of(np.ones((n, 3), np.float32) * 0.25),
        "few_points": lambda: npy_of(c[:10]),
        "float16": lambda: npy_of(c.astype(np.float16)),
        "int16": lambda: npy_of((c * 1000).astype(np.int16)),
        "big_endian": lambda: npy_of(c.astype(">f4")),
        "fortran": lambda: npy_of(np.asfortranarray(c)),
        "version2": lambda: npy("<f4", (n, 3), raw, version=(2, 0)),
        "float64": lambda: npy_of(c.astype(np.float64)),
    }[kind]()
    return Hostile("bad.npy", data, "ok" if kind in ok else "skip"), kind


#: the kinds of .npz file :func:`n_npz` draws from (``*_ok``: valid)
NPZ_KINDS = [
    "garbage",
    "pk_truncated",
    "lzma_ok",
    "lzma_corrupt",
    "bzip2_ok",
    "bzip2_corrupt",
    "deflate_corrupt",
    "missing_key",
    "shape_n2",
    "object",
    "nan",
    "empty_zip",
    "lying_member",
    "encrypted",
    "unknown_method",
    "truncated",
    "float16_ok",
    "deflate_ok",
    "huge_value",
]


def n_npz(rng):
    """A hostile (or, for ``*_ok`` kinds, valid) Occupancy-Networks ``pointcloud.npz``."""
    c = cloud(rng)
    kind = rng.choice(NPZ_KINDS)
    expect = "ok" if kind.endswith("_ok") else "skip"
    if kind == "garbage":
        data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 4, 100, 3000])))
    elif kind == "pk_truncated":
        data = b"PK\x03\x04" + bytes(20)
    elif kind in ("lzma_ok", "bzip2_ok", "deflate_ok", "float16_ok"):
        method = {
            "lzma_ok": zipfile.ZIP_LZMA,
            "bzip2_ok": zipfile.ZIP_BZIP2,
            "deflate_ok": zipfile.ZIP_DEFLATED,
            "float16_ok": zipfile.ZIP_STORED,
        }[kind]
        pts = c.astype(np.float16) if kind == "float16_ok" else c
        data = npz_of(method, points=pts, normals=c)
    elif kind in ("lzma_corrupt", "bzip2_corrupt", "deflate_corrupt", "encrypted", "unknown_method"):
        data = _damaged_zip(kind, c, rng)
    elif kind == "missing_key":
        data = npz_of(normals=c)
    elif kind == "shape_n2":
        data = npz_of(points=c[:, :2])
    elif kind == "object":
        data = npz_of(points=npy("|O", (len(c), 3), b"\x80\x04K\x01."))
    elif kind == "nan":
        bad = c.copy()
        bad[rng.randrange(len(c)), rng.randrange(3)] = np.nan
        data = npz_of(points=bad)
    elif kind == "empty_zip":
        data = npz_of()
    elif kind == "lying_member":
        data = npz_of(points=npy("<f4", (2**40 // 12, 3), c.tobytes()))
    elif kind == "huge_value":
        data = npz_of(points=np.where(np.arange(c.size).reshape(c.shape) == 7, 1e20, c.astype(np.float64)))
    else:  # truncated
        full = npz_of(points=c)
        data = full[: rng.randrange(1, len(full) - 1)]
    return Hostile("pointcloud.npz", data, expect), kind


def _damaged_zip(kind: str, c: np.ndarray, rng) -> bytes:
    """A zip of ``c`` with damaged compressed bytes, an encryption flag or an unknown compression method."""
    if kind.endswith("_corrupt"):
        method = {"lzma": zipfile.ZIP_LZMA, "bzip2": zipfile.ZIP_BZIP2, "deflate": zipfile.ZIP_DEFLATED}[
            kind.split("_")[0]
        ]
        data = bytearray(npz_of(method, points=c))
        start = 30 + len("points.npy")
        for _ in range(8):
            data[rng.randrange(start + 10, start + 200)] ^= 1 << rng.randrange(8)
        return bytes(data)
    if kind == "encrypted":
        data = bytearray(npz_of(points=c))
        data[6] |= 1  # general-purpose flag bit 0 (local header) ...
        cd = data.rfind(b"PK\x01\x02")
        data[cd + 8] |= 1  # ... and the central directory's
        return bytes(data)
    data = bytearray(npz_of(points=c))  # unknown_method
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<H", data, cd + 10, 99)
    struct.pack_into("<H", data, 8, 99)
    return bytes(data)
