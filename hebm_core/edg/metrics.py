"""Sample-quality metrics for data-free samplers, each with its definition stated (reports copy it).

- ``mmd_anice``: the squared maximum mean discrepancy, biased (V-statistic) estimator, with A-NICE-MC's
  kernel ``k(x, y) = exp(−‖x − y‖² / d²)`` (``d`` the dimension; their ``mmd.py``):
  ``Σ_ij a_i a_j k(x_i, x_j) + mean_ij k(y_i, y_j) − 2 Σ_ij a_i k(x_i, y_j) / m`` with ``a`` the sample
  weights (``1/n`` unweighted, self-normalised importance weights otherwise).
- ``mmd_median``: the same estimator with a Gaussian kernel ``exp(−‖x − y‖² / (2h²))``, ``h²`` the
  median of the squared distances among the reference samples (median heuristic).
- ``w2``: the Wasserstein-2 distance between the (weighted) samples and the reference samples, exact
  optimal transport by POT (``ot.emd2``, squared Euclidean cost, then the square root); ``None``
  when POT is not installed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["DEFINITIONS", "mmd", "mmd_anice", "mmd_median", "wasserstein2"]

DEFINITIONS = {
    "mmd_anice": "squared MMD, V-statistic, kernel exp(-||x-y||^2 / d^2) (A-NICE-MC), d = dimension",
    "mmd_median": "squared MMD, V-statistic, Gaussian kernel exp(-||x-y||^2 / (2 h^2)), h^2 = median squared "
    "distance among the reference samples",
    "w2": "Wasserstein-2 by exact OT (POT ot.emd2, squared Euclidean cost), square root taken",
}


def _weights(n: int, w: Tensor | None) -> Tensor:
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=torch.float64)
    w = w.double().cpu()
    if w.shape != (n,) or not bool(torch.isfinite(w).all()) or float(w.sum()) <= 0:
        raise ValueError(f"weights must be [n] = [{n}], finite, with a positive sum")
    return w / w.sum()


def mmd(x: Tensor, y: Tensor, inv_width: float, w: Tensor | None = None) -> float:
    """Squared MMD (V-statistic) with kernel ``exp(−‖x − y‖² · inv_width)``; ``w`` weights the ``x`` samples."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"mmd needs [n, d] and [m, d] samples, got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.double().cpu(), y.double().cpu()
    a = _weights(x.shape[0], w)
    kxx = torch.exp(-torch.cdist(x, x).pow(2) * inv_width)
    kyy = torch.exp(-torch.cdist(y, y).pow(2) * inv_width)
    kxy = torch.exp(-torch.cdist(x, y).pow(2) * inv_width)
    return float(a @ kxx @ a + kyy.mean() - 2 * (a @ kxy).mean())


def mmd_anice(x: Tensor, y: Tensor, w: Tensor | None = None) -> float:
    """A-NICE-MC's MMD: kernel ``exp(−‖x − y‖² / d²)``."""
    return mmd(x, y, 1.0 / x.shape[1] ** 2, w)


def mmd_median(x: Tensor, y: Tensor, w: Tensor | None = None) -> float:
    """MMD with a median-heuristic Gaussian kernel (bandwidth from the reference samples ``y``)."""
    d2 = torch.cdist(y.double(), y.double()).pow(2)
    off = d2[~torch.eye(len(y), dtype=torch.bool)]
    h2 = float(off.median()) if off.numel() else 1.0
    return mmd(x, y, 1.0 / (2 * max(h2, 1e-12)), w)


def wasserstein2(x: Tensor, y: Tensor, w: Tensor | None = None) -> float | None:
    """W2 between weighted ``x`` and uniform ``y`` by exact OT with POT; ``None`` without POT."""
    try:
        import ot
    except ImportError:
        return None
    a = _weights(x.shape[0], w).numpy()
    b = torch.full((y.shape[0],), 1.0 / y.shape[0], dtype=torch.float64).numpy()
    cost = torch.cdist(x.double().cpu(), y.double().cpu()).pow(2).numpy()
    return math.sqrt(max(float(ot.emd2(a, b, cost, numItermax=1_000_000)), 0.0))
