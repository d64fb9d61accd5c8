"""Point-cloud datasets: ShapeNet in three on-disk layouts, and the embedded primitives.

Every factory returns a :class:`~hebm_core.data.DataBundle` whose ``train``/``test`` are float32
``[S, N, 3]`` tensors and whose ``info`` records the source, the categories, the split rule, the
normalisation and its parameters, the sha256 of the files read, and the evaluation protocol.

Layouts (one class each, PyG style: ``raw_file_names`` lists what is read, ``process`` reads it):

- :class:`PC15k`: ``<root>/<synset>/<split>/<id>.npy`` (ShapeNetCore.v2.PC15k, PointFlow/ShapeGF)
- :class:`ONetPointCloud`: ``<root>/<synset>/<id>/pointcloud.npz`` (Occupancy Networks)
- :class:`MeshFolder`: ``<root>/<synset>/<id>.{obj,ply,off}[.gz]`` or
  ``<root>/<synset>/<id>/models/model_normalized.obj``
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hebm_core.data import DataBundle
from hebm_pointcloud.io import MESH_SUFFIXES, read_mesh, read_npy, read_npz
from hebm_pointcloud.primitives import SHAPES, make_mesh, sample_mesh

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

#: ShapeNetCore category names -> synset ids (the 13 Occupancy-Networks classes and a few more)
SYNSETS = {
    "airplane": "02691156",
    "bench": "02828884",
    "cabinet": "02933112",
    "car": "02958343",
    "chair": "03001627",
    "display": "03211117",
    "lamp": "03636649",
    "speaker": "03691459",
    "rifle": "04090263",
    "sofa": "04256520",
    "table": "04379243",
    "telephone": "04401088",
    "vessel": "04530566",
    "bathtub": "02808440",
    "bed": "02818832",
    "bookshelf": "02871439",
    "guitar": "03467517",
    "motorbike": "03790512",
    "mug": "03797390",
    "pistol": "03948459",
}
_NAMES = {v: k for k, v in SYNSETS.items()}

#: split ("train", "test") -> each cloud's class name, in the split's order
Labels = dict[str, list[str]]

#: how the metrics are computed; copied into every report through ``DataBundle.info``
PROTOCOL = {
    "space": "metrics are computed on the normalised clouds of this dataset (see 'normalization'), N points each",
    "cd": "Chamfer: mean_a min_b |a-b|^2 + mean_b min_a |a-b|^2 (squared Euclidean, PointFlow)",
    "emd": "EMD: exact optimal transport (POT ot.emd2, uniform weights) of Euclidean distances, i.e. the mean "
    "matched distance per point (PointFlow); computed on emd_points random points per cloud, error vs exact on "
    "full clouds reported as pointflow/emd_subsample_*",
    "mmd": "MMD-X: mean over reference shapes of the distance to the nearest generated shape",
    "cov": "COV-X: % of reference shapes that are the nearest reference of at least one generated shape",
    "1nna": "1-NNA-X: leave-one-out 1-NN classifier accuracy (%) on generated ∪ reference; 50 % is ideal",
    "sets": "generated set truncated to the reference size (PointFlow uses |S_g| = |S_r|); reference = test split",
}


def resolve_categories(category: str | Sequence[str], available: Sequence[str] | None = None) -> list[str]:
    """Synset ids for a name (``"chair"``), an id (``"03001627"``), a list of either, or ``"all"``."""
    items = [category] if isinstance(category, str) else list(category)
    out: list[str] = []
    for item in items:
        item = str(item).strip().lower()
        if item == "all":
            if available is None:
                raise ValueError("category 'all' needs a dataset root to list")
            out.extend(sorted(available))
        elif item in SYNSETS:
            out.append(SYNSETS[item])
        elif item.isdigit() and len(item) == 8:
            out.append(item)
        else:
            raise ValueError(
                f"unknown ShapeNet category {item!r}: give a synset id (8 digits) or one of {sorted(SYNSETS)}"
            )
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- normalisation
def _per_shape(fn: Callable[[np.ndarray], tuple[np.ndarray, float]]):
    def apply(train: list[np.ndarray], test: list[np.ndarray]) -> tuple[list, list, dict[str, Any]]:
        return [fn(c) for c in train], [fn(c) for c in test], {}

    return apply


def _unit_sphere(c: np.ndarray) -> np.ndarray:
    c = c - c.mean(0)
    return c / max(float(np.linalg.norm(c, axis=1).max()), 1e-12)


def _bbox(c: np.ndarray) -> np.ndarray:
    lo, hi = c.min(0), c.max(0)
    return (c - (lo + hi) / 2) / max(float((hi - lo).max()) / 2, 1e-12)


def _global(train: list[np.ndarray], test: list[np.ndarray]) -> tuple[list, list, dict[str, Any]]:
    """PointFlow's: subtract the mean of all training points, divide by their (scalar) std."""
    allp = np.concatenate(train).astype(np.float64)
    mean, std = allp.mean(0), float(allp.std())
    f = lambda c: ((c - mean) / std).astype(np.float32)  # noqa: E731
    return [f(c) for c in train], [f(c) for c in test], {"mean": mean.round(6).tolist(), "std": round(std, 6)}


def _none(train: list[np.ndarray], test: list[np.ndarray]) -> tuple[list, list, dict[str, Any]]:
    return train, test, {}


#: name -> (description, function (train clouds, test clouds) -> (train, test, parameters))
NORMALIZATIONS: dict[str, tuple[str, Callable]] = {
    "global": ("PointFlow: (x - mean of all training points) / their scalar std", _global),
    "unit_sphere": (
        "per shape: centre on the point mean, scale the farthest point to radius 1",
        _per_shape(_unit_sphere),
    ),
    "bbox": ("per shape: centre the bounding box, scale its longest side to 2 ([-1, 1])", _per_shape(_bbox)),
    "none": ("coordinates as stored", _none),
}


def _normalize(name: str, train: list[np.ndarray], test: list[np.ndarray]):
    if name not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {name!r}; known: {', '.join(NORMALIZATIONS)}")
    desc, fn = NORMALIZATIONS[name]
    tr, te, params = fn(train, test)
    return tr, te, {"name": name, "what": desc, **params}


# --------------------------------------------------------------------------- layouts
def _hash_split(ids: list[str], test_fraction: float, fold: int = 0) -> set[str]:
    """Deterministic test ids: block ``fold`` of ``m = ceil(f·n)`` ids in sha1 order (stable under adding
    files elsewhere). Fold 0 is the first ``m``; folds ``0 … ceil(n/m) − 1`` hold each id out exactly once."""
    if test_fraction <= 0:
        return set()
    order = sorted(ids, key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    m = math.ceil(test_fraction * len(ids))
    if fold * m >= len(ids):
        last = math.ceil(len(ids) / m) - 1
        raise ValueError(f"fold {fold} has no test shapes: {len(ids)} shapes in blocks of {m} give folds 0…{last}")
    return set(order[fold * m : (fold + 1) * m])


class _Layout:
    """A ShapeNet layout under ``root``: which files each split reads, and how to read one."""

    #: how the split is made, for reports
    split_rule = ""

    def __init__(self, root: str | Path, test_fraction: float = 0.25, fold: int = 0) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"ShapeNet root not found: {self.root} (set [data] root to the dataset folder)")
        if not 0 <= test_fraction < 1:
            raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
        if fold < 0 or (fold and not test_fraction):
            raise ValueError(f"fold must be >= 0, and 0 when test_fraction is 0; got {fold}")
        self.test_fraction, self.fold = test_fraction, fold

    def _no_folds(self, what: str) -> None:
        if self.fold:
            raise ValueError(f"fold = {self.fold} needs the hash split, but {self.root} has {what}; leave fold at 0")

    def synsets(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.isdigit())

    @classmethod
    def detect(cls, root: Path) -> bool:
        raise NotImplementedError

    def raw_file_names(self, synset: str, split: str) -> list[Path]:
        raise NotImplementedError

    def process(self, path: Path, n_pool: int, seed: int) -> np.ndarray:
        raise NotImplementedError

    def _split(self, synset: str, ids: dict[str, Path], split: str) -> list[Path]:
        lst = self.root / synset / f"{split}.lst"
        if lst.is_file():
            self._no_folds("its own <synset>/{train,test}.lst split")
            names = [s.strip() for s in lst.read_text().splitlines() if s.strip()]
            self.split_rule = "<synset>/{train,test}.lst files"
            return [ids[n] for n in names if n in ids]
        try:
            test = _hash_split(sorted(ids), self.test_fraction, self.fold)
        except ValueError as err:
            raise ValueError(f"{self.root / synset}: {err}") from None
        k, m = self.fold, f"m = ceil({self.test_fraction}·n)"
        self.split_rule = (
            f"fold {k}: shape ids {k}·m … {k + 1}·m − 1 in sha1 order ({m}) are test, the rest train"
            if k
            else f"first ceil({self.test_fraction}·n) shape ids in sha1 order are test, the rest train"
        )
        keep = (lambda i: i in test) if split == "test" else (lambda i: i not in test)
        return [ids[i] for i in sorted(ids) if keep(i)]


class PC15k(_Layout):
    """ShapeNetCore.v2.PC15k: ``<root>/<synset>/{train,val,test}/<id>.npy`` of 15,000 points each."""

    split_rule = "the layout's own train/ and test/ folders"

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(root.glob("*/train/*.npy"))

    def raw_file_names(self, synset: str, split: str) -> list[Path]:
        self._no_folds("PC15k's own train/ and test/ folders")
        return sorted((self.root / synset / split).glob("*.npy"))

    def process(self, path: Path, n_pool: int, seed: int) -> np.ndarray:
        return read_npy(path)


class ONetPointCloud(_Layout):
    """Occupancy Networks: ``<root>/<synset>/<id>/pointcloud.npz`` (``points`` [100000, 3], float16)."""

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(root.glob("*/*/pointcloud.npz"))

    def raw_file_names(self, synset: str, split: str) -> list[Path]:
        ids = {p.parent.name: p for p in (self.root / synset).glob("*/pointcloud.npz")}
        return self._split(synset, ids, split)

    def process(self, path: Path, n_pool: int, seed: int) -> np.ndarray:
        return read_npz(path, "points")


class MeshFolder(_Layout):
    """Meshes (OBJ/PLY/OFF, optionally ``.gz``), Poisson-disk sampled with Open3D to ``pool_points`` points."""

    @classmethod
    def detect(cls, root: Path) -> bool:
        return any(
            _mesh_files(root / s) for s in ([p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else [])
        )

    def raw_file_names(self, synset: str, split: str) -> list[Path]:
        return self._split(synset, _mesh_files(self.root / synset), split)

    def process(self, path: Path, n_pool: int, seed: int) -> np.ndarray:
        return sample_mesh(read_mesh(path), n_pool, seed)


def _mesh_files(folder: Path) -> dict[str, Path]:
    """Shape id -> mesh file in a synset folder (flat files, or ShapeNetCore.v2's models/model_normalized.obj)."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for p in sorted(folder.iterdir()):
        name = p.name.lower()
        for suf in MESH_SUFFIXES:
            if name.endswith(suf) or name.endswith(suf + ".gz"):
                out[p.name[: -len(suf) - (3 if name.endswith(".gz") else 0)]] = p
        if p.is_dir() and (p / "models" / "model_normalized.obj").is_file():
            out[p.name] = p / "models" / "model_normalized.obj"
    return out


#: layout name -> class (``layout = "auto"`` tries them in this order)
LAYOUTS: dict[str, type[_Layout]] = {"pc15k": PC15k, "onet": ONetPointCloud, "mesh": MeshFolder}


def _sha256(paths: Sequence[Path], root: Path) -> str:
    """One digest over (relative path, file sha256) of every file read, in sorted order."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(root)).encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _subsample(clouds: list[np.ndarray], n_points: int, copies: int, seed: int) -> np.ndarray:
    """``copies`` random subsets of ``n_points`` points per cloud (without replacement): ``[S·copies, N, 3]``."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(clouds) * copies, n_points, 3), dtype=np.float32)
    for i, c in enumerate(clouds):
        for j in range(copies):
            idx = rng.choice(c.shape[0], n_points, replace=c.shape[0] < n_points)
            out[i * copies + j] = c[idx]
    return out


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
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], Labels]:
    rootp = Path(root).expanduser()
    if not rootp.is_dir():
        raise FileNotFoundError(f"ShapeNet root not found: {rootp} (set [data] root to the dataset folder)")
    if layout == "auto":
        found = [name for name, cls in LAYOUTS.items() if cls.detect(rootp)]
        if not found:
            raise ValueError(
                f"{rootp}: no known ShapeNet layout found (<synset>/train/*.npy, <synset>/<id>/pointcloud.npz "
                f"or <synset>/<id>.obj|ply|off); set [data] layout to one of {', '.join(LAYOUTS)}"
            )
        layout = found[0]
    if layout not in LAYOUTS:
        raise ValueError(f"unknown ShapeNet layout {layout!r}; known: auto, {', '.join(LAYOUTS)}")
    lay = LAYOUTS[layout](rootp, test_fraction, fold)
    synsets = resolve_categories(category, lay.synsets())
    files: dict[str, list[Path]] = {"train": [], "test": []}
    labels: Labels = {"train": [], "test": []}
    per_cat: dict[str, dict[str, int]] = {}
    for s in synsets:
        per_cat[s] = {}
        for split in files:
            got = lay.raw_file_names(s, split)[: max_shapes or None]
            files[split] += got
            labels[split] += [_NAMES.get(s, s)] * (len(got) * (samples_per_shape if split == "train" else 1))
            per_cat[s][split] = len(got)
        if not per_cat[s]["train"]:
            raise FileNotFoundError(f"{rootp / s}: no {layout} training shapes for category {s} ({_NAMES.get(s, '?')})")
    clouds = {
        split: [lay.process(p, pool_points, seed + i) for i, p in enumerate(paths)] for split, paths in files.items()
    }
    train, test, norm = _normalize(normalization, clouds["train"], clouds["test"])
    tr = _subsample(train, n_points, samples_per_shape, seed)
    te = _subsample(test, n_points, 1, seed + 1) if test else np.empty((0, n_points, 3), np.float32)
    info = {
        "source": "ShapeNetCore (see datasets/shapenet.md)",
        "layout": layout,
        "layout_doc": (LAYOUTS[layout].__doc__ or "").strip(),
        "root": str(rootp),
        "categories": {s: _NAMES.get(s, "?") for s in synsets},
        "shapes_per_category": per_cat,
        "n_shapes_train": len(files["train"]),
        "n_shapes_test": len(files["test"]),
        "split": lay.split_rule,
        "fold": fold,
        "n_points": n_points,
        "samples_per_shape": samples_per_shape,
        "subsampling": f"{samples_per_shape} random subset(s) of {n_points} points per training shape, one per test "
        f"shape, without replacement (numpy default_rng seed {seed} / {seed + 1})",
        "normalization": norm,
        "files_sha256": _sha256(files["train"] + files["test"], rootp),
        "test_ids": [p.relative_to(rootp).as_posix() for p in files["test"]],
    }
    if layout == "mesh":
        info["mesh_sampling"] = f"Open3D Poisson-disk, {pool_points} points per mesh (seeded), then random subsets"
    return tr, te, info, labels


def _bundle(train: np.ndarray, test: np.ndarray, info: dict[str, Any], name: str, labels: Labels) -> DataBundle:
    """The bundle; ``extras["labels"]`` holds each cloud's class (split -> names), for per-class metrics."""
    return DataBundle(
        train=torch.from_numpy(train.copy()),
        test=torch.from_numpy(test.copy()) if len(test) else None,
        info={"name": name, **info, "protocol": dict(PROTOCOL)},
        extras={"labels": {k: list(v) for k, v in labels.items()}},
    )


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
) -> DataBundle:
    """ShapeNet clouds from ``root`` in any layout of :data:`LAYOUTS` (``auto``: detect).

    ``category``: synset ids or names, or ``"all"``; ``normalization``: a key of
    :data:`NORMALIZATIONS`; ``samples_per_shape``: random ``n_points`` subsets drawn per training
    shape (augmentation); ``test_fraction``: share of each category held out when the layout has
    no split of its own; ``fold``: which block of ``m = ⌈test_fraction·n⌉`` ids (in sha1 order) a
    category holds out, ``0 … ⌈n/m⌉ − 1`` (the last may be smaller), for cross-validation on small
    sets; 0 is the default split; ``max_shapes``: cap per category and split; ``pool_points``:
    Poisson samples per mesh (mesh layout only).
    """
    if n_points < 2 or samples_per_shape < 1:
        raise ValueError(f"need n_points >= 2 and samples_per_shape >= 1, got {n_points}, {samples_per_shape}")
    cat = (category,) if isinstance(category, str) else tuple(category)
    tr, te, info, labels = _load_shapenet(
        str(root),
        layout,
        cat,
        int(n_points),
        normalization,
        int(samples_per_shape),
        float(test_fraction),
        int(fold),
        max_shapes,
        int(max(pool_points, n_points)),
        int(seed),
    )
    return _bundle(tr, te, info, "shapenet", labels)


def meshes(root: str, **options: Any) -> DataBundle:
    """ShapeNet-style meshes under ``root`` (the ``mesh`` layout of :func:`shapenet`)."""
    options.setdefault("layout", "mesh")
    return shapenet(root, **options)


@functools.lru_cache(maxsize=4)
def _load_primitives(
    classes: tuple[str, ...], n_train: int, n_test: int, n_points: int, normalization: str, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], Labels]:
    for c in classes:
        if c not in SHAPES:
            raise ValueError(f"unknown primitive shape {c!r}; known: {', '.join(sorted(SHAPES))}")
    clouds: dict[str, list[np.ndarray]] = {}
    labels: Labels = {}
    for split, n, s in (("train", n_train, 2 * seed), ("test", n_test, 2 * seed + 1)):
        rng = np.random.default_rng(s)
        labels[split] = [classes[i % len(classes)] for i in range(n)]
        clouds[split] = [
            sample_mesh(make_mesh(c, rng), n_points, seed=s * 1_000_003 + i) for i, c in enumerate(labels[split])
        ]
    train, test, norm = _normalize(normalization, clouds["train"], clouds["test"])
    info = {
        "source": "generated by hebm-pointcloud from Open3D primitives (datasets/primitives.md); nothing downloaded",
        "licence": "MIT (the project's)",
        "classes": list(classes),
        "class_counts": {c: labels["train"].count(c) for c in classes},
        "seed": seed,
        "seeds": {"train": 2 * seed, "test": 2 * seed + 1},
        "n_points": n_points,
        "sampling": "Open3D Poisson-disk sampling (init_factor 5, seeded), one cloud per shape",
        "normalization": norm,
    }
    return np.stack(train), np.stack(test) if test else np.empty((0, n_points, 3), np.float32), info, labels


def primitives(
    classes: list[str] | None = None,
    n_train: int = 256,
    n_test: int = 64,
    n_points: int = 2048,
    normalization: str = "unit_sphere",
    seed: int = 0,
) -> DataBundle:
    """Embedded shapes from Open3D primitives (default: tables and chairs made of boxes), Poisson-sampled.

    Classes cycle in order (equal counts); proportions are drawn from seeded generators, so the same
    ``seed`` gives the same clouds. No file is read.
    """
    classes = tuple(classes or ("table", "chair"))
    if n_train < 1 or n_test < 0 or n_points < 2:
        raise ValueError(f"need n_train >= 1, n_test >= 0, n_points >= 2, got {n_train}, {n_test}, {n_points}")
    tr, te, info, labels = _load_primitives(classes, int(n_train), int(n_test), int(n_points), normalization, int(seed))
    return _bundle(tr, te, info, "primitives", labels)


#: name -> factory, as the plugin registers them
DATASETS = {"shapenet": shapenet, "meshes": meshes, "primitives": primitives}
