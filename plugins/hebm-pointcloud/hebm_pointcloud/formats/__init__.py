"""Strict readers of OBJ, OFF, PLY (ascii and binary) and STL (ascii and binary) meshes, in numpy.

Open3D's readers accept malformed files without a word (a PLY face index past the vertex count, a
truncated PLY, an OFF that declares more faces than it holds) and keep only the triangles of an
OBJ (a quad-only OBJ reads as empty, a mixed one loses its quads). These readers check every
count a header declares against the bytes that are there before allocating anything, read
polygons of any size and triangulate them (a fan from the first corner, as Open3D, trimesh and
Blender's OBJ importers do for convex faces), and raise :class:`BadFile` with the file, a short
reason (which a dataset counts when it skips the file) and the detail (line numbers, counts).

They are written here rather than wrapped around ``plyfile`` or ``trimesh`` because those trust the
header too: ``plyfile`` allocates the declared element counts before reading a byte (a header that
claims 2⁴⁰ vertices asks for terabytes), accepts data after the last element, and reads an
in-memory binary file row by row in Python; ``trimesh`` is not a dependency of the project.
Open3D stays the sampler (:func:`hebm_pointcloud.primitives.sample_mesh`) and the reader of glTF.

Each ``parse_<format>(data, path)`` takes the file's bytes (already decompressed and bounded by the
caller) and returns ``(vertices float64 [V, 3], triangles int64 [F, 3])``, unchecked for range,
finiteness and area: :func:`check_mesh` does that for every format alike.
"""

from __future__ import annotations

from hebm_pointcloud.formats._common import MAX_COORD, BadFile, fan
from hebm_pointcloud.formats.check import check_mesh
from hebm_pointcloud.formats.obj import parse_obj
from hebm_pointcloud.formats.off import parse_off
from hebm_pointcloud.formats.ply import parse_ply
from hebm_pointcloud.formats.stl import parse_stl

__all__ = [
    "BadFile",
    "MAX_COORD",
    "parse_obj",
    "parse_off",
    "parse_ply",
    "parse_stl",
    "PARSERS",
    "check_mesh",
    "fan",
]

#: mesh suffix -> parser (``.gltf``/``.glb`` go through Open3D, see :mod:`hebm_pointcloud.io`)
PARSERS = {".obj": parse_obj, ".off": parse_off, ".ply": parse_ply, ".stl": parse_stl}
