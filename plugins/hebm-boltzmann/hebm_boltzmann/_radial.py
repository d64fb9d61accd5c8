"""1-D quadrature helpers: a normaliser ``log ∫ exp(−u)`` and an inverse-CDF sampler on a fine grid.

The targets whose log Z and exact samples reduce to one dimension (rings: the radius; Many-Well:
one double well) use these; the grid is fine enough (≥ 20 001 points over the mass) that the
trapezoid rule's error is far below the figures reported (tests check it against ``scipy.integrate.quad``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["Grid1D"]


class Grid1D:
    """``density ∝ exp(log_f(t))`` on ``[lo, hi]``: its log normaliser and exact draws (inverse CDF, linear
    interpolation between grid points)."""

    def __init__(self, log_f: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, n: int = 200_001) -> None:
        self.t = np.linspace(lo, hi, n)
        lf = log_f(self.t)
        m = float(lf.max())
        f = np.exp(lf - m)
        dt = self.t[1] - self.t[0]
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * dt)])
        self.log_norm = m + math.log(float(cdf[-1]))
        self.cdf = cdf / cdf[-1]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` draws as a float32 tensor."""
        u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
        return torch.from_numpy(np.interp(u, self.cdf, self.t)).float()
