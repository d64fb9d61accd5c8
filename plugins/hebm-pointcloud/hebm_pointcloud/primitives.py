"""Shapes the project makes itself from Open3D primitives: the embedded, download-free dataset.

Each class is a function ``(rng) -> TriangleMesh`` drawing its proportions from a seeded numpy
generator: single primitives (box, cylinder, torus, sphere, cone) and compositions of boxes in the
manner of ShapeNet furniture (table: top and four legs; chair: seat, back and four legs). Shapes
are y-up and centred, like ShapeNet, and are turned into clouds by Poisson-disk sampling.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hebm_pointcloud._open3d import open3d

__all__ = ["SHAPES", "make_mesh", "sample_mesh"]


def _box(w: float, h: float, d: float, center: tuple[float, float, float]):
    """An axis-aligned box of size (w, h, d) centred at ``center``."""
    mesh = open3d().geometry.TriangleMesh.create_box(w, h, d)
    return mesh.translate(np.asarray(center) - np.array([w, h, d]) / 2)


def box(rng: np.random.Generator):
    w, h, d = rng.uniform(0.4, 1.0, 3)
    return _box(w, h, d, (0, 0, 0))


def cylinder(rng: np.random.Generator):
    mesh = open3d().geometry.TriangleMesh.create_cylinder(
        radius=rng.uniform(0.15, 0.4), height=rng.uniform(0.5, 1.2), resolution=48, split=4
    )
    return mesh.rotate(mesh.get_rotation_matrix_from_xyz((np.pi / 2, 0, 0)), center=(0, 0, 0))  # axis z -> y


def torus(rng: np.random.Generator):
    return open3d().geometry.TriangleMesh.create_torus(
        torus_radius=rng.uniform(0.35, 0.6),
        tube_radius=rng.uniform(0.06, 0.15),
        radial_resolution=48,
        tubular_resolution=24,
    )


def sphere(rng: np.random.Generator):
    return open3d().geometry.TriangleMesh.create_sphere(radius=rng.uniform(0.3, 0.6), resolution=32)


def cone(rng: np.random.Generator):
    mesh = open3d().geometry.TriangleMesh.create_cone(
        radius=rng.uniform(0.2, 0.45), height=rng.uniform(0.5, 1.0), resolution=48
    )
    return mesh.rotate(mesh.get_rotation_matrix_from_xyz((-np.pi / 2, 0, 0)), center=(0, 0, 0))


def _legs(w: float, d: float, leg: float, height: float, top_y: float):
    """Four square legs of side ``leg`` under a rectangle ``w × d``, from ``top_y - height`` up to ``top_y``."""
    mesh = None
    for sx in (-1, 1):
        for sz in (-1, 1):
            part = _box(leg, height, leg, (sx * (w - leg) / 2, top_y - height / 2, sz * (d - leg) / 2))
            mesh = part if mesh is None else mesh + part
    return mesh


def table(rng: np.random.Generator):
    w, d = rng.uniform(0.8, 1.4), rng.uniform(0.5, 0.9)
    height, top, leg = rng.uniform(0.5, 0.8), rng.uniform(0.04, 0.08), rng.uniform(0.05, 0.09)
    mesh = _box(w, top, d, (0, height / 2 - top / 2, 0))
    return mesh + _legs(w, d, leg, height - top, height / 2 - top)


def chair(rng: np.random.Generator):
    w = rng.uniform(0.45, 0.6)
    d = w * rng.uniform(0.9, 1.1)
    seat_y, seat, leg = rng.uniform(0.4, 0.5), rng.uniform(0.04, 0.07), rng.uniform(0.04, 0.06)
    back_h, back_t = rng.uniform(0.4, 0.6), rng.uniform(0.03, 0.06)
    y0 = -(seat_y + back_h) / 2  # centre the chair vertically
    mesh = _box(w, seat, d, (0, y0 + seat_y - seat / 2, 0))
    mesh += _box(w, back_h, back_t, (0, y0 + seat_y + back_h / 2, -(d - back_t) / 2))
    return mesh + _legs(w, d, leg, seat_y - seat, y0 + seat_y - seat)


#: class name -> mesh builder
SHAPES: dict[str, Callable[[np.random.Generator], object]] = {
    "box": box,
    "cylinder": cylinder,
    "torus": torus,
    "sphere": sphere,
    "cone": cone,
    "table": table,
    "chair": chair,
}


def make_mesh(name: str, rng: np.random.Generator):
    """One random mesh of class ``name``."""
    if name not in SHAPES:
        raise ValueError(f"unknown primitive shape {name!r}; known: {', '.join(sorted(SHAPES))}")
    return SHAPES[name](rng)


def sample_mesh(mesh, n: int, seed: int) -> np.ndarray:
    """``n`` Poisson-disk samples of the mesh surface (Open3D, seeded), float32 ``[n, 3]``."""
    o3d = open3d()
    o3d.utility.random.seed(int(seed) % (2**31))
    cloud = mesh.sample_points_poisson_disk(int(n), init_factor=5)
    pts = np.asarray(cloud.points, dtype=np.float32)
    if pts.shape[0] != n:  # Poisson-disk elimination can return slightly fewer; top up uniformly
        extra = np.asarray(mesh.sample_points_uniformly(n - pts.shape[0]).points, dtype=np.float32)
        pts = np.concatenate([pts, extra])
    return pts
