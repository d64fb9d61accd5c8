"""Point-cloud datasets: ShapeNet in three on-disk layouts, and the embedded primitives.

Every factory returns a :class:`~hebm_core.data.DataBundle` whose ``train``/``test`` are float32
``[S, N, 3]`` tensors and whose ``info`` records the source, the categories, the split rule, the
normalisation and its parameters, the sha256 of the files read, and the evaluation protocol.

Layouts (one class each, PyG style: ``raw_file_names`` lists what is read, ``process`` reads it):

- :class:`PC15k`: ``<root>/<synset>/<split>/<id>.npy`` (ShapeNetCore.v2.PC15k, PointFlow/ShapeGF)
- :class:`ONetPointCloud`: ``<root>/<synset>/<id>/pointcloud.npz`` (Occupancy Networks)
- :class:`MeshFolder`: ``<root>/<synset>/<id>.{obj,ply,off,stl,gltf,glb}[.gz]`` or
  ``<root>/<synset>/<id>/models/model_normalized.obj``

A file the dataset cannot use (corrupt, truncated, non-finite, degenerate; see
:mod:`hebm_pointcloud.io`) is skipped and counted by reason in ``info["skipped"]`` (the first
:data:`~hebm_pointcloud.data.layout.MAX_LISTED` in ``info["skipped_files"]``, with the detail),
which the core prints; with ``bad_files = "error"`` the first one is an error instead. A category
whose every training file is skipped is an error. Options are checked (types, ranges, memory)
before any file is read.

Modules: :mod:`.common` (categories, protocol), :mod:`.normalize`, :mod:`.layout` (the split),
one per layout (:mod:`.pc15k`, :mod:`.onet`, :mod:`.mesh_folder`), :mod:`.load` (the ShapeNet
factories) and :mod:`.synthetic` (the primitives).
"""

from __future__ import annotations

from hebm_pointcloud.data.common import PROTOCOL, SYNSETS, resolve_categories
from hebm_pointcloud.data.load import LAYOUTS, meshes, shapenet
from hebm_pointcloud.data.mesh_folder import MeshFolder
from hebm_pointcloud.data.normalize import NORMALIZATIONS
from hebm_pointcloud.data.onet import ONetPointCloud
from hebm_pointcloud.data.pc15k import PC15k
from hebm_pointcloud.data.synthetic import primitives

__all__ = [
    "SYNSETS",
    "resolve_categories",
    "NORMALIZATIONS",
    "PC15k",
    "ONetPointCloud",
    "MeshFolder",
    "LAYOUTS",
    "shapenet",
    "meshes",
    "primitives",
    "DATASETS",
    "PROTOCOL",
]

#: name -> factory, as the plugin registers them
DATASETS = {"shapenet": shapenet, "meshes": meshes, "primitives": primitives}
