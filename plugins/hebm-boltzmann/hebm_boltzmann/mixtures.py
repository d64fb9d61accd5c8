"""Gaussian mixtures in 2-D: A-NICE-MC's MoG2 and MoG6, MoG2 with unequal variances, MoG9 and FAB's
40-mode GMM. Each has exact samples, log Z = 0 (normalised densities) and a mode-weight metric.

Definitions (``U = −log p``, isotropic components, equal weights):

- ``mog2``: means (±5, 0), std 0.5 (A-NICE-MC ``mog2.py``);
- ``mog2_unequal``: means (±5, 0), stds 1.5 (left) and 0.3 (right) — our choice (the EDG paper's
  "MoG2(i)" gives no numbers);
- ``mog6``: six means on the circle of radius 5 at angles k·60°, std 0.5 (A-NICE-MC ``mog6.py``);
- ``mog9``: means on the grid {−5, 0, 5}², std 0.5 — our choice;
- ``gmm40``: FAB's GMM (Midgley et al. 2023): ``torch.manual_seed(0)``, means
  ``(rand(40, 2) − 0.5)·2·40``, std ``softplus(1) ≈ 1.313``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from hebm_core.targets import Target

__all__ = ["Mixture", "MIXTURES"]


class Mixture:
    """An isotropic Gaussian mixture: ``means [K, d]``, ``stds [K]``, ``weights [K]`` (sum 1)."""

    def __init__(self, means: Tensor, stds: Tensor, weights: Tensor | None = None) -> None:
        self.means = means.float()
        self.stds = stds.float()
        k = means.shape[0]
        self.weights = weights.float() if weights is not None else torch.full((k,), 1.0 / k)
        if not (self.stds > 0).all() or abs(float(self.weights.sum()) - 1) > 1e-5:
            raise ValueError("mixture stds must be positive and weights must sum to 1")

    def log_components(self, x: Tensor) -> Tensor:
        """``[B, K]``: log of weight × component density."""
        mu, s = self.means.to(x), self.stds.to(x)
        d = x.shape[-1]
        sq = (x[:, None, :] - mu).pow(2).sum(-1)
        return self.weights.to(x).log() - 0.5 * sq / s.pow(2) - d * s.log() - 0.5 * d * math.log(2 * math.pi)

    def energy(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        """``U(x) = −log p(x)`` ``[B]``."""
        return -torch.logsumexp(self.log_components(x), -1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator)
        return self.means[k] + self.stds[k, None] * eps

    def mode_weight_error(self, x: Tensor, w: Tensor | None = None) -> float:
        """Total-variation distance ``½ Σ_k |ŵ_k − w_k|`` between the (weighted) fraction of samples whose
        most responsible component is ``k`` and the true weights."""
        k = self.log_components(x.float()).argmax(-1)
        ww = torch.full((x.shape[0],), 1.0 / x.shape[0]) if w is None else w.double().cpu()
        frac = torch.zeros(self.means.shape[0], dtype=torch.float64).index_add_(0, k.cpu(), ww.double())
        return float(0.5 * (frac - self.weights.double()).abs().sum())

    def target(self, name: str, scale: float, **info) -> Target:
        d = self.means.shape[1]
        return Target(
            name,
            self.energy,
            d,
            sample=self.sample,
            log_z=0.0,
            scale=scale,
            metrics={"mode_weight_error": self.mode_weight_error},
            info={"modes": self.means.shape[0], **info},
        )


def _circle(k: int, r: float) -> Tensor:
    a = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    return torch.stack([r * a.cos(), r * a.sin()], 1).float()


def mog2() -> Target:
    """A-NICE-MC's MoG2: means (±5, 0), std 0.5."""
    return Mixture(torch.tensor([[5.0, 0.0], [-5.0, 0.0]]), torch.full((2,), 0.5)).target("mog2", 5.0)


def mog2_unequal() -> Target:
    """MoG2 with unequal variances: std 1.5 at (−5, 0), 0.3 at (5, 0) (our choice)."""
    return Mixture(torch.tensor([[-5.0, 0.0], [5.0, 0.0]]), torch.tensor([1.5, 0.3])).target("mog2_unequal", 5.0)


def mog6() -> Target:
    """A-NICE-MC's MoG6: six means on the circle of radius 5, std 0.5."""
    return Mixture(_circle(6, 5.0), torch.full((6,), 0.5)).target("mog6", 5.0)


def mog9() -> Target:
    """A 3×3 grid of means {−5, 0, 5}², std 0.5 (our choice)."""
    g = torch.tensor([-5.0, 0.0, 5.0])
    return Mixture(torch.cartesian_prod(g, g), torch.full((9,), 0.5)).target("mog9", 5.0)


def gmm40(seed: int = 0) -> Target:
    """FAB's 40-mode GMM on [−40, 40]² (means from ``torch.manual_seed(seed)``), std softplus(1)."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand((40, 2), generator=g) - 0.5) * 2 * 40
    std = float(F.softplus(torch.tensor(1.0)))
    return Mixture(means, torch.full((40,), std)).target("gmm40", 25.0, seed=seed)


MIXTURES = {"mog2": mog2, "mog2_unequal": mog2_unequal, "mog6": mog6, "mog9": mog9, "gmm40": gmm40}
