"""Samples on disk: ``samples.pt``, one binary PLY per cloud (Open3D), and PNG grids of samples and data.

Pictures come from Open3D's offscreen renderer where a Vulkan loader is present (run in a child
process with a timeout, so a driver crash cannot take the run down) and from matplotlib 3-D
scatter plots otherwise. A failed picture is a warning (``notes`` in ``report.json``), never an error.
"""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from hebm_core.data import DataBundle
from hebm_pointcloud.io import write_ply

__all__ = ["write_samples", "render_grid", "RENDERERS", "vulkan_available"]

#: at most this many PLY files and pictured clouds per run
MAX_PLY = 256
GRID = 16


def vulkan_available() -> bool:
    """Whether a Vulkan loader library can be found (Open3D's headless renderer needs one)."""
    return ctypes.util.find_library("vulkan") is not None


def _mpl_grid(clouds: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    n = len(clouds)
    cols = min(4, n)
    rows = -(-n // cols)
    lim = float(np.quantile(np.abs(clouds), 0.995)) or 1.0
    fig = plt.figure(figsize=(2.6 * cols, 2.6 * rows + 0.4))
    for i, c in enumerate(clouds):
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        # shapes are y-up (ShapeNet); matplotlib's vertical axis is z
        ax.scatter(c[:, 0], c[:, 2], c[:, 1], s=1.5, c=c[:, 2], cmap="winter", vmin=-lim, vmax=lim, linewidths=0)
        ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_zlim(-lim, lim)
        ax.view_init(elev=20, azim=-60)
        ax.set_axis_off()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# Post-processing (tone mapping) is off so that colours and the white background come out exactly;
# points are coloured by height (y, as ShapeNet is y-up) along matplotlib's "winter" ramp, blue low, green high.
_O3D_SCRIPT = """
import sys, numpy as np
from hebm_pointcloud._open3d import open3d
o3d = open3d(); r = o3d.visualization.rendering
out, size, files = sys.argv[1], 256, sys.argv[2:]
ren = r.OffscreenRenderer(size, size)
ren.scene.view.set_post_processing(False)
ren.scene.set_background([1, 1, 1, 1])
view = np.array([1.2, 0.9, 1.8]); view *= 1.05 / np.sin(np.radians(15.0)) / np.linalg.norm(view)
tiles = []
for f in files:
    pc = o3d.io.read_point_cloud(f); p = np.asarray(pc.points); c = p.mean(0)
    rad = np.linalg.norm(p - c, axis=1).max() or 1.0
    h = 0.5 + 0.5 * (p[:, 1] - c[1]) / rad
    pc.colors = o3d.utility.Vector3dVector(np.stack([np.zeros_like(h), h, 1 - 0.5 * h], 1))
    mat = r.MaterialRecord(); mat.shader = "defaultUnlit"; mat.point_size = 2.0 if len(p) > 1500 else 3.0
    ren.scene.clear_geometry(); ren.scene.add_geometry("pc", pc, mat)
    ren.setup_camera(30.0, c, c + view * rad, [0, 1, 0])  # the bounding sphere fills the 30° view
    tiles.append(np.asarray(ren.render_to_image()))
cols = min(4, len(tiles)); rows = -(-len(tiles) // cols)
grid = np.full((rows * size, cols * size, 3), 255, np.uint8)
for i, t in enumerate(tiles):
    grid[(i // cols) * size:(i // cols + 1) * size, (i % cols) * size:(i % cols + 1) * size] = t[..., :3]
o3d.io.write_image(out, o3d.geometry.Image(grid))
"""


def _o3d_grid(clouds: np.ndarray, path: Path, title: str, ply_files: list[Path] | None = None) -> None:
    if not vulkan_available():
        raise RuntimeError("no Vulkan loader (libvulkan) found for Open3D's offscreen renderer")
    if not ply_files:
        ply_files = [write_ply(c, path.parent / f".render_{i}.ply") for i, c in enumerate(clouds)]
    proc = subprocess.run(
        [sys.executable, "-c", _O3D_SCRIPT, str(path), *map(str, ply_files)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if proc.returncode != 0 or not path.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"Open3D offscreen rendering failed (exit {proc.returncode}): {tail[0]}")


#: renderer name -> function (clouds [n, N, 3], png path, title); tried in this order
RENDERERS: dict[str, Callable[..., None]] = {"open3d": _o3d_grid, "matplotlib": _mpl_grid}


def render_grid(
    clouds: np.ndarray, path: str | Path, title: str, order: tuple[str, ...] = ("open3d", "matplotlib")
) -> str:
    """A PNG grid of up to :data:`GRID` clouds with the first renderer that works; returns its name.

    Renderer failures become warnings; a ``RuntimeError`` is raised only when every renderer failed.
    """
    path = Path(path)
    clouds = np.asarray(clouds)[:GRID]
    reasons = []
    for name in order:
        try:
            RENDERERS[name](clouds, path, title)
            return name
        except Exception as exc:  # a picture must never end a run
            reasons.append(f"{name}: {exc}")
    raise RuntimeError("; ".join(reasons))


def write_samples(samples: Tensor, out_dir: str | Path, bundle: DataBundle | None = None) -> list[str]:
    """``samples.pt``, ``ply/sample_XXX.ply`` (first :data:`MAX_PLY`), ``samples.png`` and ``reference.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x = samples.detach().float().cpu()
    torch.save(x, out / "samples.pt")
    written = [str(out / "samples.pt")]
    for i, c in enumerate(x[:MAX_PLY].numpy()):
        written.append(str(write_ply(c, out / "ply" / f"sample_{i:03d}.ply")))
    name = (bundle.info.get("name", "") if bundle is not None else "") or "clouds"
    pictures = [("samples.png", x.numpy(), f"{name}: samples")]
    if bundle is not None:
        ref = bundle.test if bundle.test is not None else bundle.train
        pictures.append(("reference.png", ref.detach().float().cpu().numpy(), f"{name}: data"))
    order = ("open3d", "matplotlib") if vulkan_available() else ("matplotlib",)
    for fname, clouds, title in pictures:
        try:
            used = render_grid(clouds, out / fname, title, order)
            written.append(str(out / fname))
            if used != order[0]:
                warnings.warn(f"{fname}: rendered with {used} ({order[0]} failed)", stacklevel=2)
        except RuntimeError as exc:
            warnings.warn(f"{fname}: no picture written ({exc})", stacklevel=2)
    if "open3d" not in order:
        warnings.warn(
            "no Vulkan loader found: pictures drawn with matplotlib, not Open3D "
            "(Debian/Ubuntu: apt-get install libvulkan1 mesa-vulkan-drivers)",
            stacklevel=2,
        )
    for tmp in out.glob(".render_*.ply"):
        tmp.unlink()
    return written
