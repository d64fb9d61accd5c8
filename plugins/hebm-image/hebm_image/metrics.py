"""Sample quality: FID on the features of a small classifier trained on the training split, and what
that classifier says about the samples.

The classifier (three 3×3 convolutions, a 128-unit feature layer, a linear read-out) trains for a few
epochs on the run's training images and labels (at least :data:`MIN_STEPS` mini-batches, so that a small
set such as the 1,438 training digits still gets a usable classifier), once: its weights are cached under
``$HEBM_CACHE`` (else ``$XDG_CACHE_HOME/hebm``, ``~/.cache/hebm``) in ``image/classifier-<key>.pt``, the
key a digest of the training data's sha256, the subset, the image shape and the classifier's options.
Its test accuracy is reported with every score. Keys (all in the report's ``metrics``):

- ``fid``: Fréchet distance between the 128-D features of the samples and of the test images;
  ``fid_train_test`` the same between as many training images and the test images: the value of a
  perfect model at this sample size (FID is biased upwards at small sizes).
- ``classifier/test_accuracy_pct``; ``classifier/confidence``: the mean top softmax probability on the samples;
  ``classifier/agreement_pct``: the share of samples whose predicted class is the label of their nearest
  test image in pixel space (a sample that looks like a digit to both agrees); ``classifier/class_tv_pct``:
  the total-variation distance between the predicted classes of the samples and the test labels.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hebm_core.data import DataBundle
from hebm_core.metrics import Metric
from hebm_core.options import check_int
from hebm_core.statistics import Statistic

__all__ = ["METRICS", "Classifier", "SampleQuality", "cache_dir", "frechet_distance", "train_classifier"]

VERSION = 2
#: the fewest mini-batches of 128 the classifier trains for, whatever ``epochs`` says
MIN_STEPS = 500


def cache_dir() -> Path:
    """``$HEBM_CACHE`` or ``$XDG_CACHE_HOME/hebm`` (``~/.cache/hebm``)."""
    if os.environ.get("HEBM_CACHE"):
        return Path(os.environ["HEBM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hebm"


class Classifier(nn.Module):
    """Conv(32) → Conv(64, stride 2) → Conv(64, stride 2) → 4×4 pooling → 128 features → classes."""

    def __init__(self, in_channels: int = 1, n_classes: int = 10, features: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, features), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(features, n_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def _batched(fn, x: Tensor, batch: int = 512) -> Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[i : i + batch]) for i in range(0, len(x), batch)])


def _key(bundle: DataBundle, epochs: int) -> str:
    info = bundle.info
    spec = {
        "version": VERSION,
        "dataset": info.get("name"),
        "sha256": info.get("sha256"),
        "n_train": int(bundle.train.shape[0]),
        "seed": info.get("seed"),
        "dequantization": (info.get("pixels") or {}).get("dequantization"),
        "shape": list(bundle.train.shape[1:]),
        "epochs": epochs,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:24]


def train_classifier(
    bundle: DataBundle, epochs: int = 2, cache: str | Path | None = None, seed: int = 0
) -> tuple[Classifier, dict[str, Any]]:
    """The cached classifier of this training data, or a freshly trained one (then cached); returns it with
    ``{"test_accuracy_pct", "cache_file", "from_cache", "epochs"}``."""
    labels = bundle.extras.get("train_labels")
    if labels is None:
        raise ValueError("the classifier needs labelled training images (extras['train_labels'])")
    classes = len(bundle.extras.get("classes") or range(int(labels.max()) + 1))
    folder = Path(cache).expanduser() if cache is not None else cache_dir()
    path = folder / "image" / f"classifier-{_key(bundle, epochs)}.pt"
    net = Classifier(bundle.train.shape[1], classes)
    info: dict[str, Any] = {"cache_file": str(path), "epochs": epochs}
    if path.is_file():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(payload["state"])
            info.update(from_cache=True, test_accuracy_pct=float(payload["test_accuracy_pct"]))
            return net.eval(), info
        except Exception:  # a damaged cache file is retrained and replaced, never fatal
            pass
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = Classifier(bundle.train.shape[1], classes)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x, y = bundle.train, labels
        passes = max(epochs, -(-MIN_STEPS // -(-len(x) // 128)))
        for _ in range(passes):
            perm = torch.randperm(len(x), generator=g)
            for i in range(0, len(x), 128):
                idx = perm[i : i + 128]
                loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    net.eval()
    test_y = bundle.extras.get("test_labels")
    acc = float((_batched(net, bundle.test).argmax(1) == test_y).float().mean() * 100) if test_y is not None else None
    info.update(from_cache=False, test_accuracy_pct=acc)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        torch.save({"state": net.state_dict(), "test_accuracy_pct": acc}, tmp)
        os.replace(tmp, path)
    except OSError as exc:  # an unwritable cache costs a retraining next time, nothing more
        info["cache_error"] = str(exc)
    return net, info


def _stats(f: Tensor) -> tuple[Tensor, Tensor]:
    f = f.double()
    return f.mean(0), torch.cov(f.T)


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """``‖μ_a − μ_b‖² + tr(C_a + C_b − 2(C_a C_b)^½)`` between two feature sets ``[N, d]``."""
    (ma, ca), (mb, cb) = _stats(a), _stats(b)
    w, v = torch.linalg.eigh(ca)
    root_a = (v * w.clamp_min(0).sqrt()) @ v.T
    cross = torch.linalg.eigvalsh(root_a @ cb @ root_a).clamp_min(0).sqrt().sum()
    return float((ma - mb).pow(2).sum() + ca.trace() + cb.trace() - 2 * cross)


class SampleQuality(Metric):
    """FID on the classifier's features, the classifier's accuracy, confidence and agreement (module docstring)."""

    name = "sample_quality"

    def __init__(self, bundle: DataBundle, epochs: int = 2, cache_dir: str | None = None) -> None:
        self.bundle, self.epochs, self.cache = bundle, epochs, cache_dir
        self._x: list[Tensor] = []

    def update(self, samples: Tensor, reference: Tensor | None = None) -> None:
        self._x.append(samples.detach().float().cpu())

    def compute(self) -> dict[str, float]:
        x = torch.cat(self._x)
        if len(x) < 2:
            raise ValueError(f"FID needs at least 2 samples, got {len(x)}")
        net, info = train_classifier(self.bundle, self.epochs, self.cache)
        test, test_y = self.bundle.test, self.bundle.extras.get("test_labels")
        f_test, f_x = _batched(net.features, test), _batched(net.features, x)
        pick = torch.randperm(len(self.bundle.train), generator=torch.Generator().manual_seed(1))[: len(x)]
        f_train = _batched(net.features, self.bundle.train[pick])
        probs = _batched(lambda b: net(b).softmax(1), x)
        pred = probs.argmax(1)
        out = {
            "fid": frechet_distance(f_x, f_test),
            "fid_train_test": frechet_distance(f_train, f_test),
            "classifier/confidence": float(probs.max(1).values.mean()),
        }
        if info.get("test_accuracy_pct") is not None:
            out["classifier/test_accuracy_pct"] = info["test_accuracy_pct"]
        if test_y is not None:
            nearest = torch.cat([torch.cdist(x[i : i + 256].flatten(1), test.flatten(1)).argmin(1)
                                 for i in range(0, len(x), 256)])  # fmt: skip
            out["classifier/agreement_pct"] = float((pred == test_y[nearest]).float().mean() * 100)
            k = probs.shape[1]
            hist = torch.bincount(pred, minlength=k).double() / len(pred)
            ref = torch.bincount(test_y, minlength=k).double() / len(test_y)
            out["classifier/class_tv_pct"] = float(0.5 * (hist - ref).abs().sum() * 100)
        return out

    def reset(self) -> None:
        self._x = []


def sample_quality(
    statistics: list[Statistic], bundle: DataBundle, epochs: int = 2, cache_dir: str | None = None
) -> Metric:
    """FID and classifier scores of the samples (module docstring); ``epochs`` of classifier training."""
    check_int("sample_quality", "epochs", epochs, 1, 100)
    if cache_dir is not None and not isinstance(cache_dir, str):
        raise ValueError(f"sample_quality: cache_dir must be a folder path, got {cache_dir!r}")
    if bundle.test is None or not isinstance(bundle.train, Tensor) or bundle.train.dim() != 4:
        raise ValueError("sample_quality needs image data [N, C, H, W] with a test split")
    return SampleQuality(bundle, epochs, cache_dir)


METRICS = {"sample_quality": sample_quality}
