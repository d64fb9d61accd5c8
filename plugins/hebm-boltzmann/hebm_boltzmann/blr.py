"""Bayesian logistic regression on Australian, German and Heart (UCI Statlog, via A-NICE-MC's copies).

Convention (A-NICE-MC): each feature standardised to zero mean and unit variance (statistics of the
training split), a bias column, prior N(0, 1) on every weight and the bias:

    U(v) = Σ_{train} [softplus(η) − y η] + ½‖v‖²,   η = X̃ v

Split (our choice, the EDG paper's is unknown): a permutation from ``torch.Generator().manual_seed(seed)``
(default 0), the first 80 % train, the rest test. Metrics: posterior-predictive test accuracy and AUC
(predicted probability = the (weighted) mean of sigmoid(η) over samples). No exact samples or log Z:
``reference`` runs long HMC chains (step size adapted) on demand.

Data path: ``data_dir`` argument, else the environment variable ``HEBM_BLR_DATA``, else ``data/blr``
relative to the working directory; each set is ``<dir>/<name>/data.npy`` and ``labels.npy``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hebm_core.targets import Target

__all__ = ["BLR", "BLR_SETS", "auc", "load_blr"]

BLR_SETS = ("australian", "german", "heart")
DEFAULT_DIR = Path("data") / "blr"


def load_blr(name: str, data_dir: str | Path | None = None, seed: int = 0, train_frac: float = 0.8):
    """``(x_train, y_train, x_test, y_test)``, standardised, with a leading bias column of ones."""
    if name not in BLR_SETS:
        raise ValueError(f"unknown BLR data set {name!r}; known: {', '.join(BLR_SETS)}")
    root = Path(data_dir or os.environ.get("HEBM_BLR_DATA") or DEFAULT_DIR)
    folder = root / name
    if not (folder / "data.npy").is_file():
        raise FileNotFoundError(
            f"BLR data for {name!r} not found at {folder}/data.npy: pass data_dir= or set HEBM_BLR_DATA "
            "to the folder holding australian/, german/, heart/"
        )
    x = torch.from_numpy(np.load(folder / "data.npy").astype(np.float64))
    y = torch.from_numpy(np.load(folder / "labels.npy").astype(np.float64)).reshape(-1)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    n_train = int(round(train_frac * x.shape[0]))
    tr, te = perm[:n_train], perm[n_train:]
    mu, sd = x[tr].mean(0), x[tr].std(0).clamp_min(1e-12)
    xs = (x - mu) / sd
    xs = torch.cat([torch.ones(x.shape[0], 1, dtype=xs.dtype), xs], 1).float()
    return xs[tr], y[tr].float(), xs[te], y[te].float()


def auc(score: Tensor, y: Tensor) -> float:
    """Area under the ROC curve (Mann–Whitney, ties counted half)."""
    pos, neg = score[y > 0.5].double(), score[y <= 0.5].double()
    if not len(pos) or not len(neg):
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


class BLR:
    """The posterior of a logistic regression with an N(0, 1) prior."""

    def __init__(self, name: str, data_dir: str | Path | None = None, seed: int = 0) -> None:
        self.name = name
        self.x_train, self.y_train, self.x_test, self.y_test = load_blr(name, data_dir, seed)
        self.dim = self.x_train.shape[1]

    def energy(self, v: Tensor, sigma: Tensor | None = None) -> Tensor:
        eta = v @ self.x_train.to(v).T
        nll = (F.softplus(eta) - self.y_train.to(v) * eta).sum(-1)
        return nll + 0.5 * v.pow(2).sum(-1)

    def predictive(self, v: Tensor, w: Tensor | None = None) -> Tensor:
        """Posterior-predictive P(y = 1) on the test set."""
        p = torch.sigmoid(v.float() @ self.x_test.T).double()
        return p.mean(0) if w is None else (w.double()[:, None] * p).sum(0)

    def accuracy(self, v: Tensor, w: Tensor | None = None) -> float:
        return float(((self.predictive(v, w) > 0.5).float() == self.y_test).float().mean())

    def auc(self, v: Tensor, w: Tensor | None = None) -> float:
        return auc(self.predictive(v, w), self.y_test)

    def reference(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` draws from long HMC chains (one chain per draw: 500 adaptation + 2000 steps, 10 leapfrog)."""
        from hebm_core.samplers import HMC

        x0 = 0.1 * torch.randn(n, self.dim, generator=generator)
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
        hmc = HMC(step_size=0.05, n_steps=2000, n_leapfrog=10, adapt_steps=500, progress=False)
        return hmc.run(self.energy, x0)

    def target(self) -> Target:
        return Target(
            f"blr_{self.name}",
            self.energy,
            self.dim,
            reference=self.reference,
            scale=0.3,
            metrics={"test_accuracy": self.accuracy, "test_auc": self.auc},
            info={"n_train": len(self.y_train), "n_test": len(self.y_test), "split": "seeded 80/20"},
        )


def _factory(name: str):
    def make(data_dir: str | None = None, seed: int = 0) -> Target:
        return BLR(name, data_dir, seed).target()

    make.__doc__ = f"Bayesian logistic regression on {name} (``data_dir``: folder of the BLR sets)."
    return make


BLR_TARGETS = {f"blr_{n}": _factory(n) for n in BLR_SETS}
