"""Reading and writing clouds and meshes, defensively, with one clear error per malformed file.

Point arrays come from ``.npy`` (PC15k), ``.npz`` (Occupancy Networks ``pointcloud.npz``) and
``.ply`` (the strict reader of :mod:`hebm_pointcloud.formats`) or ``.pcd``/``.xyz``/``.pts``
(Open3D); meshes from ``.obj``/``.ply``/``.off``/``.stl`` (the strict readers; polygons are
triangulated) or ``.gltf``/``.glb`` (Open3D, its result checked alike), each optionally gzipped
(``model.obj.gz``). Every reader returns ``float32 [N, 3]`` numpy arrays (or an Open3D
mesh) and raises ``FileNotFoundError`` for a missing file and :class:`BadFile` (a ``ValueError``
naming the path, with a short ``reason`` a dataset counts when it skips the file) for anything else.

Nothing a file claims is believed before it is checked against the file: an ``.npy`` header's
shape and dtype must account for exactly the bytes that follow it (a header claiming 1 TiB is
refused without allocating), an ``.npz`` member is read through ``zipfile`` member by member with
the same check, pickles are never loaded, a gzip stream is decompressed only up to
:func:`gzip_limit` bytes (a gzip bomb stops there), and every coordinate must be finite and within
``±MAX_COORD``.
"""

from __future__ import annotations

import gzip
import math
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from hebm_pointcloud._open3d import open3d
from hebm_pointcloud.formats import MAX_COORD, PARSERS, BadFile, check_mesh, parse_ply

__all__ = [
    "BadFile",
    "MAX_FILE_BYTES",
    "MAX_COORD",
    "gzip_limit",
    "read_bytes",
    "read_npy",
    "read_npz",
    "read_point_file",
    "read_mesh",
    "read_mesh_arrays",
    "mesh_from_arrays",
    "write_ply",
    "POINT_READERS",
    "MESH_SUFFIXES",
]

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".gltf", ".glb")
#: the largest file (or decompressed gzip stream) a reader takes: 1 GiB, more than any ShapeNet mesh
MAX_FILE_BYTES = 2**30
#: a gzip stream may decompress to this many times its compressed size (meshes compress 3-10×;
#: a bomb 1000×), and always to at least GZIP_FLOOR bytes
GZIP_RATIO = 100
GZIP_FLOOR = 16 * 2**20
#: the longest .npy header read (numpy's own default)
NPY_MAX_HEADER = 10000
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError)


def _exists(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"point-cloud file not found: {path}")
    return path


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        raise BadFile(path, "unreadable file", f"cannot read ({exc.strerror or exc})") from None


def gzip_limit(compressed_bytes: int) -> int:
    """How many bytes a gzip stream of ``compressed_bytes`` may decompress to."""
    return min(MAX_FILE_BYTES, max(GZIP_FLOOR, GZIP_RATIO * compressed_bytes))


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes (a ``.gz`` file's decompressed bytes), at most :data:`MAX_FILE_BYTES` /
    :func:`gzip_limit`; a larger, unreadable or corrupt file is a :class:`BadFile`."""
    path = _exists(path)
    size = _size(path)
    if size > MAX_FILE_BYTES:
        raise BadFile(
            path, "too large", f"{size / 2**20:.0f} MiB; files of at most {MAX_FILE_BYTES >> 20} MiB are read"
        )
    try:
        if path.suffix.lower() != ".gz":
            return path.read_bytes()
        limit = gzip_limit(size)
        with gzip.open(path, "rb") as src:
            data = src.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        what = "not a readable gzip file" if path.suffix.lower() == ".gz" else "unreadable file"
        raise BadFile(path, what, f"{what} ({_reason(exc)})") from None
    if len(data) > limit:
        raise BadFile(
            path,
            "too large",
            f"decompresses to more than {limit >> 20} MiB from {size} bytes (a gzip bomb, or a mesh too large)",
        )
    return data


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]


# --------------------------------------------------------------------------- point arrays
def _as_points(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
    """``arr`` ``[N, 3]`` as float32, refused (:class:`BadFile`) when a value is not finite, a
    coordinate is beyond ``±MAX_COORD`` or every point sits at the same place."""
    x = np.asarray(arr, dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        raise BadFile(path, "non-finite values", f"{what} holds {int(bad.sum())} non-finite values (NaN or inf)")
    big = float(np.abs(x).max())
    if big > MAX_COORD:
        raise BadFile(path, "coordinates out of range", f"{what} holds the coordinate {big:.3g}, beyond ±{MAX_COORD:g}")
    extent = float(np.ptp(x, axis=0).max())
    if extent <= 1e-6 * max(1.0, big):
        raise BadFile(
            path, "degenerate cloud", f"all {len(x)} points of {what} (nearly) coincide (extent {extent:.3g})"
        )
    return x.astype(np.float32)


def _npy_header(fp: BinaryIO, path: Path, what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The header of the .npy stream ``fp`` (read through ``np.lib.format``), checked: numbers, ``[N, 3]``."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fp, max_header_size=NPY_MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fp, max_header_size=NPY_MAX_HEADER)
        else:
            raise BadFile(path, "not a .npy array", f"{what}: unsupported .npy format version {version}")
    except BadFile:
        raise
    except Exception as exc:  # a hostile header: numpy raises ValueError, SyntaxError, TypeError, ...
        where = "" if what == "the array" else f" ({what})"
        raise BadFile(path, "not a .npy array", f"not a readable .npy array{where}: {_reason(exc)}") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "fiu":
        raise BadFile(path, "unsupported dtype", f"{what} has dtype {dtype}, expected plain numbers (no objects)")
    if len(shape) != 2 or shape[1] != 3 or shape[0] < 1:
        raise BadFile(path, "wrong shape", f"{what} has shape {shape}, expected [N, 3] with N >= 1")
    return shape, fortran, dtype


def _npy_body(data: bytes, shape: tuple[int, ...], fortran: bool, dtype: np.dtype) -> np.ndarray:
    arr = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def _read_npy_stream(fp: BinaryIO, available: int, path: Path, what: str) -> np.ndarray:
    """An ``[N, 3]`` array from ``fp``, whose header and data take ``available`` bytes in all."""
    shape, fortran, dtype = _npy_header(fp, path, what)
    need = math.prod(shape) * dtype.itemsize
    have = available - fp.tell()
    if need != have:
        reason = "truncated" if need > have else "trailing data"
        raise BadFile(
            path, reason, f"{what}: its header claims {shape} {dtype} ({need} bytes) but {have} bytes follow it"
        )
    data = fp.read(need)
    if len(data) != need:
        raise BadFile(path, "truncated", f"{what}: {len(data)} of {need} data bytes could be read")
    return _npy_body(data, shape, fortran, dtype)


def read_npy(path: str | Path) -> np.ndarray:
    """A PC15k ``.npy`` cloud ``[N, 3]`` (never unpickled; the header checked against the file size)."""
    path = _exists(path)
    size = _size(path)
    if size > MAX_FILE_BYTES:
        raise BadFile(path, "too large", f"{size >> 20} MiB; files of at most {MAX_FILE_BYTES >> 20} MiB are read")
    try:
        with open(path, "rb") as fp:
            arr = _read_npy_stream(fp, size, path, "the array")
    except OSError as exc:
        raise BadFile(path, "unreadable file", f"cannot read ({_reason(exc)})") from None
    return _as_points(arr, path, "the array")


def read_npz(path: str | Path, key: str = "points") -> np.ndarray:
    """The ``key`` array (default ``points``) of an Occupancy-Networks ``pointcloud.npz``, read member
    by member through ``zipfile`` (stored, deflate, bzip2 or LZMA; no pickles)."""
    path = _exists(path)
    what = f"array {key!r}"
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            member = f"{key}.npy"
            if member not in names:
                held = ", ".join(n.removesuffix(".npy") for n in names[:10]) or "nothing"
                raise BadFile(path, "missing array", f"no {key!r} array in the .npz (it holds {held})")
            info = zf.getinfo(member)
            if info.file_size > MAX_FILE_BYTES:
                raise BadFile(path, "too large", f"{what} is {info.file_size >> 20} MiB uncompressed")
            with zf.open(info) as fp:
                arr = _read_npy_stream(fp, info.file_size, path, what)
                fp.read(1)  # reach the end of the member: the CRC check
    except BadFile:
        raise
    except _ZIP_ERRORS as exc:
        if isinstance(exc, NotImplementedError):
            raise BadFile(path, "unsupported compression", f"not a readable .npz archive ({_reason(exc)})") from None
        raise BadFile(path, "not a readable .npz archive", f"not a readable .npz archive ({_reason(exc)})") from None
    except Exception as exc:  # lzma.LZMAError, bz2's OSError subclasses, ...: a corrupt member
        raise BadFile(path, "not a readable .npz archive", f"not a readable .npz archive ({_reason(exc)})") from None
    return _as_points(arr, path, what)


def _read_ply_cloud(path: str | Path) -> np.ndarray:
    path = _exists(path)
    verts, _ = parse_ply(read_bytes(path), path, faces=False)
    if len(verts) == 0:
        raise BadFile(path, "no points", "the PLY file holds no points")
    return _as_points(verts, path, "the cloud")


def _read_o3d_cloud(path: str | Path) -> np.ndarray:
    path = _exists(path)
    read_bytes(path)  # the size limit
    cloud = open3d().io.read_point_cloud(str(path))
    if len(cloud.points) == 0:
        raise BadFile(path, "no points", "Open3D read no points (malformed, empty or unsupported point-cloud file)")
    return _as_points(np.asarray(cloud.points), path, "the cloud")


#: suffix -> reader of a point array
POINT_READERS = {
    ".npy": read_npy,
    ".npz": read_npz,
    ".ply": _read_ply_cloud,
    ".pcd": _read_o3d_cloud,
    ".xyz": _read_o3d_cloud,
    ".pts": _read_o3d_cloud,
}


def read_point_file(path: str | Path) -> np.ndarray:
    """A point cloud ``[N, 3]`` from any suffix in :data:`POINT_READERS`."""
    path = Path(path)
    reader = POINT_READERS.get(path.suffix.lower())
    if reader is None:
        raise BadFile(
            path,
            "unsupported format",
            f"unsupported point-cloud suffix {path.suffix!r}; known: {', '.join(POINT_READERS)}",
        )
    return reader(path)


# --------------------------------------------------------------------------- meshes
def _mesh_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".gz":
        suffix = Path(path.stem).suffix.lower()
        if suffix not in MESH_SUFFIXES:
            raise BadFile(
                path,
                "unsupported format",
                f"unsupported mesh suffix {suffix!r} inside .gz; known: {', '.join(MESH_SUFFIXES)}",
            )
    elif suffix not in MESH_SUFFIXES:
        raise BadFile(
            path, "unsupported format", f"unsupported mesh suffix {suffix!r}; known: {', '.join(MESH_SUFFIXES)}"
        )
    return suffix


def _open3d_arrays(data: bytes, suffix: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """glTF/GLB through Open3D (from a temporary copy of the bytes); its arrays are checked by the caller."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"mesh{suffix}"
        target.write_bytes(data)
        mesh = open3d().io.read_triangle_mesh(str(target))
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.int64)


def read_mesh_arrays(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(vertices float64 [V, 3], triangles int64 [F, 3], notes)`` of a checked mesh file (see
    :func:`hebm_pointcloud.formats.check_mesh`); ``notes`` counts the degenerate triangles dropped."""
    path = _exists(path)
    suffix = _mesh_suffix(path)
    data = read_bytes(path)
    parser = PARSERS.get(suffix)
    verts, tris = parser(data, path) if parser is not None else _open3d_arrays(data, suffix, path)
    verts, tris, dropped = check_mesh(verts, tris, path)
    return verts, tris, {"degenerate_triangles_dropped": dropped}


def mesh_from_arrays(verts: np.ndarray, tris: np.ndarray):
    """An Open3D ``TriangleMesh`` of checked arrays."""
    o3d = open3d()
    return o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(np.ascontiguousarray(verts, dtype=np.float64)),
        o3d.utility.Vector3iVector(np.ascontiguousarray(tris, dtype=np.int32)),
    )


def read_mesh(path: str | Path):
    """An Open3D ``TriangleMesh`` from OBJ/PLY/OFF/STL/glTF (or ``<name>.<ext>.gz``), checked:
    polygons triangulated, degenerate triangles dropped, and a :class:`BadFile` for a malformed file."""
    verts, tris, _ = read_mesh_arrays(path)
    return mesh_from_arrays(verts, tris)


def write_ply(points: np.ndarray, path: str | Path) -> Path:
    """One cloud ``[N, 3]`` as a binary PLY through Open3D."""
    o3d = open3d()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
    if not o3d.io.write_point_cloud(str(path), cloud, write_ascii=False):
        raise OSError(f"{path}: Open3D could not write the PLY file")
    return path
