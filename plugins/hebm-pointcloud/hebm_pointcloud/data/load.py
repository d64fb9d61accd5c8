"""The ``shapenet`` and ``meshes`` datasets: list a layout's files, read them (skipping and counting
the unusable ones), normalise, subsample to ``n_points``, and record what was done in ``info``."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hebm_core.data import DataBundle
from hebm_pointcloud import _checks as chk
from hebm_pointcloud.data.common import MAX_POINTS, SYNSET_NAMES, Labels, make_bundle, resolve_categories
from hebm_pointcloud.data.layout import Layout
from hebm_pointcloud.data.mesh_folder import MeshFolder
from hebm_pointcloud.data.normalize import NORMALIZATIONS, normalize
from hebm_pointcloud.data.onet import ONetPointCloud
from hebm_pointcloud.data.pc15k import PC15k
from hebm_pointcloud.io import BadFile

__all__ = ["LAYOUTS", "BAD_FILES", "shapenet", "meshes"]

#: layout name -> class (``layout = "auto"`` tries them in this order)
LAYOUTS: dict[str, type[Layout]] = {"pc15k": PC15k, "onet": ONetPointCloud, "mesh": MeshFolder}
#: what ``bad_files`` may say: skip an unusable file (and count it), or stop at the first
BAD_FILES = ("skip", "error")


def _sha256(paths: Sequence[Path], root: Path) -> str:
    """One digest over (relative path, file sha256) of every file read, in sorted order."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(root)).encode())
        f = hashlib.sha256()
        with open(p, "rb") as fp:
            for block in iter(lambda fp=fp: fp.read(2**20), b""):
                f.update(block)
        h.update(f.digest())
    return h.hexdigest()


def _subsample(clouds: list[np.ndarray], n_points: int, copies: int, seed: int) -> np.ndarray:
    """``copies`` random subsets of ``n_points`` points per cloud (without replacement): ``[S·copies, N, 3]``."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(clouds) * copies, n_points, 3), dtype=np.float32)
    for i, c in enumerate(clouds):
        for j in range(copies):
            idx = rng.choice(c.shape[0], n_points, replace=False)
            out[i * copies + j] = c[idx]
    return out


def _process(lay: Layout, path: Path, n_points: int, pool_points: int, seed: int, bad_files: str) -> np.ndarray | None:
    """One file's cloud, or ``None`` when it is skipped (counted on the layout)."""
    try:
        cloud = lay.process(path, pool_points, seed)
        if cloud.shape[0] < n_points:
            raise BadFile(
                path, "fewer points than n_points", f"holds {cloud.shape[0]} points, fewer than n_points = {n_points}"
            )
    except BadFile as exc:
        if bad_files == "error":
            raise ValueError(f"{exc} (bad_files = 'skip' skips such files)") from None
        lay.skip(exc.reason, path, exc.detail)
        return None
    return cloud


def _find_layout(root: Path, layout: str) -> str:
    """``layout``, or with ``"auto"`` the first of :data:`LAYOUTS` whose files are under ``root``."""
    if layout == "auto":
        found = [name for name, cls in LAYOUTS.items() if cls.detect(root)]
        if not found:
            raise ValueError(
                f"{root}: no known ShapeNet layout found (<synset>/train/*.npy, <synset>/<id>/pointcloud.npz "
                f"or <synset>/<id>.obj|ply|off|stl); set [data] layout to one of {', '.join(LAYOUTS)}"
            )
        layout = found[0]
    if layout not in LAYOUTS:
        raise ValueError(f"unknown ShapeNet layout {layout!r}; known: auto, {', '.join(LAYOUTS)}")
    return layout


def _list_files(
    lay: Layout, layout: str, category: tuple[str, ...], max_shapes: int | None
) -> dict[str, dict[str, list[Path]]]:
    """Synset -> split -> the files to read; a category without training files is an error."""
    available = lay.synsets()
    if not available and "all" in [c.strip().lower() for c in category]:
        raise FileNotFoundError(f"{lay.root}: no category folders (8-digit ShapeNet synset ids) for category 'all'")
    listed = {
        s: {split: lay.raw_file_names(s, split)[: max_shapes or None] for split in ("train", "test")}
        for s in resolve_categories(category, available)
    }
    for s, got in listed.items():
        if not got["train"]:
            held = f"; its {len(got['test'])} shapes are all test shapes (lower test_fraction)" if got["test"] else ""
            raise FileNotFoundError(
                f"{lay.root / s}: no {layout} training shapes for category {s} ({SYNSET_NAMES.get(s, '?')}){held}"
            )
    return listed


def _read_files(
    lay: Layout, listed: dict[str, dict[str, list[Path]]], opts: dict[str, Any]
) -> tuple[dict[str, list[np.ndarray]], dict[str, list[Path]], Labels, dict[str, dict[str, int]]]:
    """``(clouds, files, labels, kept per category)`` per split; the ``i``-th file listed is read with
    seed ``seed + i`` whether or not it is skipped, so a skipped file changes no other file's sample."""
    clouds: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    files: dict[str, list[Path]] = {"train": [], "test": []}
    labels: Labels = {"train": [], "test": []}
    per_cat: dict[str, dict[str, int]] = {}
    i = 0
    for s, splits in listed.items():
        per_cat[s] = {}
        for split, paths in splits.items():
            kept = 0
            for p in paths:
                cloud = _process(lay, p, opts["n_points"], opts["pool_points"], opts["seed"] + i, opts["bad_files"])
                i += 1
                if cloud is None:
                    continue
                clouds[split].append(cloud)
                files[split].append(p)
                labels[split] += [SYNSET_NAMES.get(s, s)] * (opts["samples_per_shape"] if split == "train" else 1)
                kept += 1
            per_cat[s][split] = kept
        if not per_cat[s]["train"]:
            first = next((f for f in lay.skipped_files if f["file"].startswith(f"{s}/")), None)
            why = f" (first: {first['file']}: {first['detail']})" if first else ""
            raise ValueError(
                f"{lay.root / s}: no usable training shapes: all {len(splits['train'])} files were skipped{why}"
            )
    return clouds, files, labels, per_cat


def _info(
    lay: Layout, layout: str, per_cat: dict, files: dict[str, list[Path]], norm: dict, opts: dict[str, Any]
) -> dict[str, Any]:
    """What the bundle records: source, split, sampling, normalisation, file digest and skipped files."""
    n_points, copies, seed = opts["n_points"], opts["samples_per_shape"], opts["seed"]
    info = {
        "source": "ShapeNetCore (see datasets/shapenet.md)",
        "layout": layout,
        "layout_doc": (LAYOUTS[layout].__doc__ or "").strip(),
        "root": str(lay.root),
        "categories": {s: SYNSET_NAMES.get(s, "?") for s in per_cat},
        "shapes_per_category": per_cat,
        "n_shapes_train": len(files["train"]),
        "n_shapes_test": len(files["test"]),
        "split": lay.split_rule,
        "fold": lay.fold,
        "n_points": n_points,
        "samples_per_shape": copies,
        "subsampling": f"{copies} random subset(s) of {n_points} points per training shape, one per test "
        f"shape, without replacement (numpy default_rng seed {seed} / {seed + 1})",
        "normalization": norm,
        "files_sha256": _sha256(files["train"] + files["test"], lay.root),
        "test_ids": [p.relative_to(lay.root).as_posix() for p in files["test"]],
        "skipped": dict(lay.skipped),
        "skipped_files": list(lay.skipped_files),
        "bad_files": opts["bad_files"],
    }
    if layout == "mesh":
        info["mesh_sampling"] = (
            f"Open3D Poisson-disk, {opts['pool_points']} points per mesh (seeded), then random subsets; polygons "
            "triangulated as fans, degenerate (zero-area) triangles dropped"
        )
        info["degenerate_triangles_dropped"] = lay.dropped_triangles
    return info


@functools.lru_cache(maxsize=4)
def _load_shapenet(
    root: str,
    layout: str,
    category: tuple[str, ...],
    n_points: int,
    normalization: str,
    samples_per_shape: int,
    test_fraction: float,
    fold: int,
    max_shapes: int | None,
    pool_points: int,
    seed: int,
    bad_files: str = "skip",
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], Labels]:
    rootp = Path(root).expanduser()
    if not rootp.is_dir():
        raise FileNotFoundError(f"ShapeNet root not found: {rootp} (set [data] root to the dataset folder)")
    layout = _find_layout(rootp, layout)
    lay = LAYOUTS[layout](rootp, test_fraction, fold)
    listed = _list_files(lay, layout, category, max_shapes)
    n_train = sum(len(g["train"]) for g in listed.values())
    n_test = sum(len(g["test"]) for g in listed.values())
    chk.check_memory(
        f"{n_train} training shapes x {samples_per_shape} samples and {n_test} test shapes of {n_points} points",
        12 * n_points * (n_train * samples_per_shape + n_test) + 12 * pool_points * (n_train + n_test),
    )
    opts = {
        "n_points": n_points,
        "pool_points": pool_points,
        "samples_per_shape": samples_per_shape,
        "seed": seed,
        "bad_files": bad_files,
    }
    clouds, files, labels, per_cat = _read_files(lay, listed, opts)
    train, test, norm = normalize(normalization, clouds["train"], clouds["test"])
    tr = _subsample(train, n_points, samples_per_shape, seed)
    te = _subsample(test, n_points, 1, seed + 1) if test else np.empty((0, n_points, 3), np.float32)
    return tr, te, _info(lay, layout, per_cat, files, norm, opts), labels


def _category(category: Any) -> tuple[str, ...]:
    return tuple(chk.names("category", category))


def shapenet(
    root: str,
    layout: str = "auto",
    category: str | list[str] = "all",
    n_points: int = 2048,
    normalization: str = "global",
    samples_per_shape: int = 1,
    test_fraction: float = 0.25,
    fold: int = 0,
    max_shapes: int | None = None,
    pool_points: int = 4096,
    seed: int = 0,
    bad_files: str = "skip",
) -> DataBundle:
    """ShapeNet clouds from ``root`` in any layout of :data:`LAYOUTS` (``auto``: detect).

    ``category``: synset ids or names, or ``"all"``; ``normalization``: a key of
    :data:`NORMALIZATIONS`; ``samples_per_shape``: random ``n_points`` subsets drawn per training
    shape (augmentation); ``test_fraction``: share of each category held out when the layout has
    no split of its own; ``fold``: which block of ``m = ⌈test_fraction·n⌉`` ids (in sha1 order) a
    category holds out, ``0 … ⌈n/m⌉ − 1`` (the last may be smaller), for cross-validation on small
    sets; 0 is the default split; ``max_shapes``: cap per category and split; ``pool_points``:
    Poisson samples per mesh (mesh layout only; at least ``n_points`` are drawn); ``bad_files``:
    ``"skip"`` a file that cannot be used (counted by reason in ``info["skipped"]``) or make it an
    ``"error"``. A cloud file with fewer than ``n_points`` points is such a file.
    """
    root = chk.text("root", root)
    layout = chk.choice("layout", layout, ("auto", *LAYOUTS))
    cat = _category(category)
    n_points = chk.integer("n_points", n_points, 2, MAX_POINTS)
    normalization = chk.choice("normalization", normalization, tuple(NORMALIZATIONS))
    samples_per_shape = chk.integer("samples_per_shape", samples_per_shape, 1, 10_000)
    test_fraction = chk.number("test_fraction", test_fraction, 0.0, 1.0, hi_open=True)
    fold = chk.integer("fold", fold, 0, 1_000_000)
    max_shapes = chk.optional_integer("max_shapes", max_shapes, 1, 10_000_000)
    pool_points = chk.integer("pool_points", pool_points, 2, MAX_POINTS)
    seed = chk.integer("seed", seed, 0, 2**32 - 1)
    bad_files = chk.choice("bad_files", bad_files, BAD_FILES)
    resolve_categories([c for c in cat if c.strip().lower() != "all"])  # unknown names: before any file is read
    tr, te, info, labels = _load_shapenet(
        root,
        layout,
        cat,
        n_points,
        normalization,
        samples_per_shape,
        test_fraction,
        fold,
        max_shapes,
        max(pool_points, n_points),
        seed,
        bad_files,
    )
    return make_bundle(tr, te, info, "shapenet", labels)


def meshes(
    root: str,
    category: str | list[str] = "all",
    n_points: int = 2048,
    normalization: str = "global",
    samples_per_shape: int = 1,
    test_fraction: float = 0.25,
    fold: int = 0,
    max_shapes: int | None = None,
    pool_points: int = 4096,
    seed: int = 0,
    bad_files: str = "skip",
) -> DataBundle:
    """ShapeNet-style meshes under ``root`` (the ``mesh`` layout of :func:`shapenet`, same options)."""
    return shapenet(
        root,
        layout="mesh",
        category=category,
        n_points=n_points,
        normalization=normalization,
        samples_per_shape=samples_per_shape,
        test_fraction=test_fraction,
        fold=fold,
        max_shapes=max_shapes,
        pool_points=pool_points,
        seed=seed,
        bad_files=bad_files,
    )
