"""The mesh layout: ``<root>/<synset>/<id>.<mesh suffix>[.gz]`` or ShapeNetCore.v2's
``<root>/<synset>/<id>/models/model_normalized.obj``, each mesh Poisson-disk sampled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hebm_pointcloud.data.layout import Layout
from hebm_pointcloud.io import MESH_SUFFIXES, mesh_from_arrays, read_mesh_arrays
from hebm_pointcloud.primitives import sample_mesh

__all__ = ["MeshFolder"]


class MeshFolder(Layout):
    """Meshes (OBJ/PLY/OFF/STL/glTF, optionally ``.gz``), Poisson-disk sampled with Open3D to ``pool_points`` points."""

    #: degenerate (zero-area) triangles dropped from the meshes read so far
    dropped_triangles = 0

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(
            _mesh_files(root / s) for s in ([p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else [])
        )

    def raw_file_names(self, synset: str, split: str) -> list[Path]:
        duplicates: list[Path] = []
        ids = _mesh_files(self.root / synset, duplicates)
        if split == "train":  # count each once
            for p in duplicates:
                self.skip("another file has the same shape id", p, f"the shape id of {p.name} is taken by another file")
        return self._split(synset, ids, split)

    def process(self, path: Path, n_pool: int, seed: int) -> np.ndarray:
        verts, tris, notes = read_mesh_arrays(path)
        self.dropped_triangles += notes["degenerate_triangles_dropped"]
        return sample_mesh(mesh_from_arrays(verts, tris), n_pool, seed)


def _mesh_files(folder: Path, duplicates: list[Path] | None = None) -> dict[str, Path]:
    """Shape id -> mesh file in a synset folder (flat files, or ShapeNetCore.v2's models/model_normalized.obj);
    a second file with an id already taken (``a.obj`` and ``a.ply``) goes to ``duplicates``."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out

    def add(key: str, p: Path) -> None:
        if key in out:
            if duplicates is not None:
                duplicates.append(p)
        else:
            out[key] = p

    for p in sorted(folder.iterdir()):
        name = p.name.lower()
        if p.is_file():
            for suf in MESH_SUFFIXES:
                if name.endswith(suf) or name.endswith(suf + ".gz"):
                    add(p.name[: -len(suf) - (3 if name.endswith(".gz") else 0)], p)
                    break
        elif p.is_dir() and (p / "models" / "model_normalized.obj").is_file():
            add(p.name, p / "models" / "model_normalized.obj")
    return out
