"""Image datasets: MNIST and Fashion-MNIST from IDX files at any path (optionally downloaded, sha256-checked),
scikit-learn's 8×8 digits (the embedded default), as ``[N, 1, H, W]`` float tensors with their labels.

Pixel convention (stated in every report under ``dataset.pixels``): an image of ``L`` grey levels
(``L = 256`` for MNIST's bytes, 17 for the digits' 0..16) becomes ``x = (k + u) / L`` with ``u ~ U[0, 1)``
drawn once per pixel from the dataset's seed (uniform dequantisation), so ``x`` lies in ``[0, 1)``.
A continuous density ``p`` of ``x`` defines a discrete model ``P(k) = ∫_cell p(x) dx`` of the levels,
and by Jensen ``−log₂ P(k) ≤ E_u[−log₂ p(x)] + D·log₂ L``: bits/dim of the pixel levels are the
continuous bits/dim of ``x`` plus ``log₂ L`` (8 for MNIST), which :mod:`hebm_image.likelihood` adds.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hebm_core.data import DataBundle
from hebm_core.download import DownloadError, download_file
from hebm_core.options import check_int
from hebm_image.idx import IMAGES_MAGIC, LABELS_MAGIC, IDXError, read_idx
from hebm_image.sampling import ImageSpace

__all__ = ["DATASETS", "FILES", "KNOWN", "DownloadError", "fetch", "digits", "mnist", "fashion_mnist", "dequantize"]

#: the four files of an MNIST-format dataset: split -> (images, labels)
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
#: canonical sources (the original MNIST site, yann.lecun.com/exdb/mnist, often refuses downloads;
#: this mirror serves the same bytes) and the sha256 of each file as distributed (of the .gz) and of
#: its decompressed payload where known; a file matching either is the canonical one
KNOWN: dict[str, dict[str, Any]] = {
    "mnist": {
        "base_url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "classes": [str(i) for i in range(10)],
        "sha256": {
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        "payload_sha256": {
            "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        "rebuilt_payload_sha256": {},
    },
    "fashion_mnist": {
        "base_url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "classes": [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],  # fmt: skip
        "sha256": {
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        "payload_sha256": {},
        # images rebuilt from PNGs with a reconstructed order (datasets/mnist.md): the same images and
        # labels as the canonical files, their order within a class not verified
        "rebuilt_payload_sha256": {
            "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        },
    },
}
MAX_SIDE = 4096


def fetch(name: str, root: str | Path, base_url: str | None = None) -> list[Path]:
    """Download the files of dataset ``name`` that ``root`` lacks from ``base_url`` (default: the
    canonical source), each checked against its canonical sha256; returns the files fetched."""
    known = KNOWN[name]
    base = (base_url or known["base_url"]).rstrip("/") + "/"
    root = Path(root).expanduser()
    got = []
    for fname in (f for pair in FILES.values() for f in pair):
        if not (root / fname).exists():
            got.append(download_file(base + fname, root / fname, known["sha256"][fname]))
    return got


def _check(name: str, fname: str, digests: dict[str, str]) -> str:
    known = KNOWN[name]
    if digests["sha256"] == known["sha256"].get(fname) or digests["payload_sha256"] == known["payload_sha256"].get(
        fname
    ):
        return "canonical"
    if digests["payload_sha256"] == known["rebuilt_payload_sha256"].get(fname):
        return "rebuilt copy (datasets/mnist.md)"
    return "unknown"


def _read_split(root: Path, images: str, labels: str, n_classes: int) -> tuple[np.ndarray, np.ndarray, dict]:
    x, dx = read_idx(root / images, magic=IMAGES_MAGIC)
    y, dy = read_idx(root / labels, magic=LABELS_MAGIC)
    if x.dtype != np.uint8 or y.dtype != np.uint8:
        raise IDXError(
            f"{root / (images if x.dtype != np.uint8 else labels)}: pixels and labels must be unsigned bytes"
        )
    if max(x.shape[1:]) > MAX_SIDE:
        raise IDXError(f"{root / images}: images of {x.shape[1]}x{x.shape[2]} pixels, over {MAX_SIDE} a side")
    if len(x) != len(y):
        raise IDXError(f"{root / labels}: {len(y)} labels for the {len(x)} images of {images}")
    if int(y.max()) >= n_classes:
        raise IDXError(f"{root / labels}: label {int(y.max())} outside 0..{n_classes - 1}")
    return x, y, {images: dx, labels: dy}


def _subset(n: int, max_n: int | None, seed: int) -> np.ndarray:
    idx = np.arange(n)
    if max_n is not None and max_n < n:
        idx = np.sort(np.random.default_rng(seed).permutation(n)[:max_n])
    return idx


def dequantize(levels: np.ndarray, n_levels: int, seed: int, method: str = "uniform") -> Tensor:
    """``[N, H, W]`` integer levels -> ``[N, 1, H, W]`` float32 ``(k + u) / L``; ``u ~ U[0,1)`` seeded
    (``"uniform"``) or ``u = ½`` (``"none"``: cell centres)."""
    k = torch.from_numpy(np.ascontiguousarray(levels).astype(np.float32))
    if method == "uniform":
        u = torch.rand(k.shape, generator=torch.Generator().manual_seed(seed))
    else:
        u = torch.full_like(k, 0.5)
    return ((k + u) / n_levels).unsqueeze(1)


def _pixels(n_levels: int, method: str) -> dict[str, Any]:
    bits = math.log2(n_levels)
    return {
        "levels": n_levels,
        "dequantization": method,
        "scaling": f"x = (k + u) / {n_levels} in [0, 1), k the level, u ~ U[0,1) per pixel (seeded)"
        if method == "uniform"
        else f"x = (k + 0.5) / {n_levels} (cell centres; no likelihood bound)",
        "change_of_variables": f"bits/dim of the {n_levels} levels = continuous bits/dim of x + log2({n_levels}) "
        f"= + {bits:g}: P(k) = integral of p over the cell of volume {n_levels}^-D, and -log P(k) <= E_u[-log p(x)] "
        f"+ D log {n_levels} (Jensen)",
        "bits_per_dim_offset": bits,
        "samples": "clipped to [0, 1] after the sampler's final denoising step",
    }


def _bundle(
    name: str,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    n_levels: int,
    classes: list[str],
    seed: int,
    method: str,
    info: dict[str, Any],
    max_train: int | None,
    max_test: int | None,
) -> DataBundle:
    if method not in ("uniform", "none"):
        raise ValueError(f"{name}: dequantize must be 'uniform' or 'none', got {method!r}")
    out: dict[str, tuple[Tensor, Tensor]] = {}
    for i, (split, (x, y)) in enumerate(splits.items()):
        idx = _subset(len(x), max_train if split == "train" else max_test, seed + i)
        out[split] = (dequantize(x[idx], n_levels, seed * 2 + i + 1, method), torch.from_numpy(y[idx].astype(np.int64)))
    (xtr, ytr), (xte, yte) = out["train"], out["test"]
    info = {
        "name": name,
        **info,
        "image_shape": list(xtr.shape[1:]),
        "n_train": len(xtr),
        "n_test": len(xte),
        "classes": classes,
        "pixels": _pixels(n_levels, method),
        "seed": seed,
    }
    extras = {
        "train_labels": ytr,
        "test_labels": yte,
        "classes": classes,
        "levels": n_levels,
        "mean_image": xtr.mean(0),
        "data_key": hashlib.sha256(repr((info.get("sha256"), n_levels)).encode()).hexdigest()[:16],
    }
    return DataBundle(train=xtr, test=xte, space=ImageSpace(), info=info, extras=extras)


def _opt_int(owner: str, name: str, v: Any) -> int | None:
    return None if v is None else check_int(owner, name, v, 1, 10_000_000)


def _idx_dataset(
    name: str,
    root: str,
    download: bool,
    base_url: str | None,
    max_train: int | None,
    max_test: int | None,
    seed: int,
    dequantize: str,
    strict_sha256: bool,
) -> DataBundle:
    if not isinstance(root, str) or not root:
        raise ValueError(f"{name}: root must be a folder path, got {root!r}")
    max_train, max_test = _opt_int(name, "max_train", max_train), _opt_int(name, "max_test", max_test)
    seed = check_int(name, "seed", seed, 0, 2**31 - 1)
    if not isinstance(download, bool) or not isinstance(strict_sha256, bool):
        raise ValueError(f"{name}: download and strict_sha256 must be true or false")
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}: root {str(path)!r} is a file, not a folder")
    missing = [f for pair in FILES.values() for f in pair if not (path / f).exists()]
    if missing and download:
        fetch(name, path, base_url)
        missing = []
    if missing:
        raise FileNotFoundError(f"{name}: missing {', '.join(missing)} in {path} (or set data.download = true)")
    known = KNOWN[name]
    splits, digests = {}, {}
    for split, (images, labels) in FILES.items():
        x, y, d = _read_split(path, images, labels, len(known["classes"]))
        splits[split] = (x, y)
        digests.update(d)
    if splits["train"][0].shape[1:] != splits["test"][0].shape[1:]:
        raise IDXError(f"{path / FILES['test'][0]}: test images are {splits['test'][0].shape[1:]}, train ones "
                       f"{splits['train'][0].shape[1:]}")  # fmt: skip
    checks = {f: _check(name, f, d) for f, d in digests.items()}
    bad = [f for f, c in checks.items() if c == "unknown"]
    if strict_sha256 and bad:
        raise ValueError(f"{name}: {', '.join(bad)} in {path} match no known sha256 (strict_sha256 = true)")
    info = {
        "source": str(path),
        "sha256": {f: d["sha256"] for f, d in digests.items()},
        "payload_sha256": {f: d["payload_sha256"] for f, d in digests.items()},
        "sha256_check": checks,
    }
    return _bundle(name, splits, 256, known["classes"], seed, dequantize, info, max_train, max_test)


def mnist(
    root: str = "data/mnist",
    download: bool = False,
    base_url: str | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
    dequantize: str = "uniform",
    strict_sha256: bool = False,
) -> DataBundle:
    """MNIST from the four IDX ``.gz`` files in ``root`` (``download``: fetch missing ones, sha256-checked).
    ``max_train`` / ``max_test`` take seeded subsets; every file's sha256 and whether it is canonical is in
    ``info``; ``strict_sha256`` refuses a file that matches no known digest."""
    return _idx_dataset("mnist", root, download, base_url, max_train, max_test, seed, dequantize, strict_sha256)


def fashion_mnist(
    root: str = "data/fashion_mnist",
    download: bool = False,
    base_url: str | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
    dequantize: str = "uniform",
    strict_sha256: bool = False,
) -> DataBundle:
    """Fashion-MNIST from its four IDX ``.gz`` files in ``root``; options as :func:`mnist`."""
    return _idx_dataset("fashion_mnist", root, download, base_url, max_train, max_test, seed, dequantize, strict_sha256)


def digits(test_fraction: float = 0.2, seed: int = 0, dequantize: str = "uniform") -> DataBundle:
    """scikit-learn's 1,797 handwritten 8×8 digits (17 grey levels, 0..16) that ship with the library: the
    embedded default. A seeded split holds out ``test_fraction`` of them."""
    from sklearn.datasets import load_digits

    if not (isinstance(test_fraction, (int, float)) and not isinstance(test_fraction, bool)) or not (
        0.05 <= test_fraction <= 0.5
    ):
        raise ValueError(f"digits: test_fraction must be a number in [0.05, 0.5], got {test_fraction!r}")
    seed = check_int("digits", "seed", seed, 0, 2**31 - 1)
    d = load_digits()
    levels = d.images.astype(np.uint8)
    labels = d.target.astype(np.uint8)
    perm = np.random.default_rng(seed).permutation(len(levels))
    n_test = int(round(test_fraction * len(levels)))
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    digest = hashlib.sha256(levels.tobytes() + labels.tobytes()).hexdigest()
    info = {"source": "sklearn.datasets.load_digits", "sha256": {"images+labels": digest}}
    splits = {"train": (levels[train], labels[train]), "test": (levels[test], labels[test])}
    return _bundle("digits", splits, 17, [str(i) for i in range(10)], seed, dequantize, info, None, None)


DATASETS = {"digits": digits, "mnist": mnist, "fashion_mnist": fashion_mnist}
