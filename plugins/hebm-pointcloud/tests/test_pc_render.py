"""Pictures: Open3D's offscreen renderer where a Vulkan loader exists, matplotlib otherwise."""

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
from hebm_pointcloud import render

SIZE = 256  # the Open3D tile's side in pixels

needs_vulkan = pytest.mark.skipif(
    not render.vulkan_available(),
    reason="no Vulkan loader for Open3D's offscreen renderer (Debian: apt-get install libvulkan1 mesa-vulkan-drivers)",
)


def _sphere(n: int = 2000) -> np.ndarray:
    p = np.random.default_rng(0).normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def _ink_box(tile: np.ndarray) -> tuple[int, int, int, int, int]:
    """Rows and columns spanned by non-white pixels, and their count."""
    ink = tile[..., :3].min(-1) < 0.9
    rows, cols = np.nonzero(ink)
    return rows.min(), rows.max(), cols.min(), cols.max(), int(ink.sum())


@needs_vulkan
def test_open3d_grid_frames_each_cloud_y_up_on_white(tmp_path):
    sphere = _sphere()
    pole = np.zeros((2000, 3))
    pole[:, 1] = np.linspace(-1.0, 1.0, 2000)  # a vertical segment
    clouds = np.stack([sphere, 3.0 * sphere + [5.0, -2.0, 1.0], pole])
    path = tmp_path / "grid.png"
    assert render.render_grid(clouds, path, "t", ("open3d",)) == "open3d"
    img = mpimg.imread(path)
    assert img.shape[:2] == (SIZE, 3 * SIZE)
    assert np.allclose(img[0, 0, :3], 1.0) and np.allclose(img[-1, -1, :3], 1.0)  # white background
    tiles = [img[:, i * SIZE : (i + 1) * SIZE] for i in range(3)]
    small, large, seg = (_ink_box(t) for t in tiles)
    # the camera frames the bounding sphere: a moved, scaled copy draws the same picture
    assert np.abs(np.subtract(small[:4], large[:4])).max() <= 2
    assert abs(small[4] - large[4]) <= 0.1 * small[4]
    # the whole sphere fits in the tile, filling most of it
    assert 0 < small[0] and small[1] < SIZE - 1 and small[3] - small[2] > 0.6 * SIZE
    # y is up: the segment stands upright and is coloured by height (greener at the top)
    r0, r1, c0, c1, _ = seg
    assert r1 - r0 > 4 * (c1 - c0)
    solid = tiles[2][..., 0] < 0.3  # the ramp's colours have no red; edges blended with white do
    rows = np.nonzero(solid.any(1))[0]
    green = [tiles[2][r][solid[r], 1].mean() for r in (rows[0], rows[-1])]
    assert green[0] > 0.9 and green[1] < 0.1


def test_without_vulkan_open3d_fails_clearly_and_matplotlib_draws(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "vulkan_available", lambda: False)
    clouds = _sphere(256)[None]
    with pytest.raises(RuntimeError, match="no Vulkan loader"):
        render.render_grid(clouds, tmp_path / "a.png", "t", ("open3d",))
    assert render.render_grid(clouds, tmp_path / "b.png", "t") == "matplotlib"
    assert mpimg.imread(tmp_path / "b.png").ndim == 3
    with pytest.warns(UserWarning, match="matplotlib, not Open3D"):
        written = render.write_samples(torch.from_numpy(clouds).float(), tmp_path / "out")
    assert any(w.endswith("samples.png") for w in written)


def test_a_failing_open3d_falls_back_to_matplotlib_with_a_warning(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("driver crashed")

    monkeypatch.setattr(render, "vulkan_available", lambda: True)
    monkeypatch.setitem(render.RENDERERS, "open3d", broken)
    with pytest.warns(UserWarning, match=r"samples.png: rendered with matplotlib \(open3d failed\)"):
        written = render.write_samples(torch.from_numpy(_sphere(128)[None]).float(), tmp_path)
    assert str(tmp_path / "samples.png") in written and (tmp_path / "samples.png").exists()
    with pytest.raises(RuntimeError, match="open3d: driver crashed; matplotlib: "):
        monkeypatch.setitem(render.RENDERERS, "matplotlib", broken)
        render.render_grid(_sphere(64)[None], tmp_path / "x.png", "t")
