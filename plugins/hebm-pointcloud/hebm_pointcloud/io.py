"""Reading and writing clouds and meshes, with one clear error per malformed file.

Point arrays come from ``.npy`` (PC15k), ``.npz`` (Occupancy Networks ``pointcloud.npz``) and
``.ply``/``.pcd``/``.xyz`` (Open3D); meshes from ``.obj``/``.ply``/``.off`` (optionally gzipped, as
in the shared ShapeNet snapshot) through Open3D. Every reader returns ``float32 [N, 3]`` numpy
arrays (or an Open3D mesh) and raises ``FileNotFoundError``/``ValueError`` naming the path.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hebm_pointcloud._open3d import open3d

__all__ = ["read_npy", "read_npz", "read_point_file", "read_mesh", "write_ply", "POINT_READERS", "MESH_SUFFIXES"]

MESH_SUFFIXES = (".obj", ".ply", ".off", ".stl", ".gltf", ".glb")


def _exists(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"point-cloud file not found: {path}")
    return path


def _as_points(arr: Any, path: Path, what: str) -> np.ndarray:
    """``arr`` as finite float32 ``[N, 3]`` with N >= 1, else a ValueError naming ``path``."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{path}: {what} has dtype {arr.dtype}, expected numbers")
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{path}: {what} has shape {arr.shape}, expected [N, 3] with N >= 1")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: {what} holds {int((~np.isfinite(arr)).sum())} non-finite values")
    return arr


def read_npy(path: str | Path) -> np.ndarray:
    """A PC15k ``.npy`` cloud ``[N, 3]``."""
    path = _exists(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
    return _as_points(arr, path, "the array")


def read_npz(path: str | Path, key: str = "points") -> np.ndarray:
    """The ``key`` array (default ``points``) of an Occupancy-Networks ``pointcloud.npz``."""
    path = _exists(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if key not in data.files:
                raise ValueError(
                    f"{path}: no {key!r} array in the .npz (it holds {', '.join(data.files) or 'nothing'})"
                )
            arr = data[key]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from None
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from None
    return _as_points(arr, path, f"array {key!r}")


def _read_o3d_cloud(path: str | Path) -> np.ndarray:
    path = _exists(path)
    cloud = open3d().io.read_point_cloud(str(path))
    if len(cloud.points) == 0:
        raise ValueError(f"{path}: Open3D read no points (malformed, empty or unsupported point-cloud file)")
    return _as_points(np.asarray(cloud.points), path, "the cloud")


#: suffix -> reader of a point array
POINT_READERS = {
    ".npy": read_npy,
    ".npz": read_npz,
    ".ply": _read_o3d_cloud,
    ".pcd": _read_o3d_cloud,
    ".xyz": _read_o3d_cloud,
    ".pts": _read_o3d_cloud,
}


def read_point_file(path: str | Path) -> np.ndarray:
    """A point cloud ``[N, 3]`` from any suffix in :data:`POINT_READERS`."""
    path = Path(path)
    reader = POINT_READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"{path}: unsupported point-cloud suffix {path.suffix!r}; known: {', '.join(POINT_READERS)}")
    return reader(path)


def read_mesh(path: str | Path):
    """An Open3D ``TriangleMesh`` from OBJ/PLY/OFF/STL/glTF (or ``<name>.<ext>.gz``); ValueError without triangles."""
    path = _exists(path)
    o3d = open3d()
    if path.suffix.lower() == ".gz":
        inner = Path(path.stem).suffix.lower()
        if inner not in MESH_SUFFIXES:
            raise ValueError(f"{path}: unsupported mesh suffix {inner!r} inside .gz; known: {', '.join(MESH_SUFFIXES)}")
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / f"mesh{inner}"
            try:
                with gzip.open(path, "rb") as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError) as exc:
                raise ValueError(f"{path}: not a readable gzip file ({exc})") from None
            mesh = o3d.io.read_triangle_mesh(str(target))
    else:
        if path.suffix.lower() not in MESH_SUFFIXES:
            raise ValueError(f"{path}: unsupported mesh suffix {path.suffix!r}; known: {', '.join(MESH_SUFFIXES)}")
        mesh = o3d.io.read_triangle_mesh(str(path))
    if len(mesh.triangles) == 0 or len(mesh.vertices) == 0:
        raise ValueError(f"{path}: Open3D read no triangles (malformed, empty or point-only mesh file)")
    return mesh


def write_ply(points: np.ndarray, path: str | Path) -> Path:
    """One cloud ``[N, 3]`` as a binary PLY through Open3D."""
    o3d = open3d()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
    if not o3d.io.write_point_cloud(str(path), cloud, write_ascii=False):
        raise OSError(f"{path}: Open3D could not write the PLY file")
    return path
