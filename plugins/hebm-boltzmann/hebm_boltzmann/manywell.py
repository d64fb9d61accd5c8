"""Many-Well (FAB, Midgley et al. 2023): ``d/2`` independent copies of the 2-D double well

    u(a, b) = a⁴ − 6a² − ½a + ½b²

so ``U(x) = Σ_i u(x_{2i}, x_{2i+1})`` (``d = 32`` by default: 2¹⁶ modes). log Z is exact up to 1-D
quadrature: ``(d/2)·(log ∫ exp(−(a⁴ − 6a² − ½a)) da + ½ log 2π)``; exact samples draw ``a`` by
inverse CDF and ``b ~ N(0, 1)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hebm_boltzmann._radial import Grid1D
from hebm_core.targets import Target

__all__ = ["MANYWELL", "manywell", "well_u"]


def well_u(a):
    """The double well's ``a`` part ``a⁴ − 6a² − ½a`` (tensor or array)."""
    return a**4 - 6 * a**2 - 0.5 * a


def manywell(dim: int = 32) -> Target:
    """Many-Well on ``dim`` (even) dimensions."""
    if dim < 2 or dim % 2:
        raise ValueError(f"manywell: dim must be an even integer >= 2, got {dim}")
    grid = Grid1D(lambda a: -well_u(a), -5.0, 5.0)
    pairs = dim // 2
    log_z = pairs * (grid.log_norm + 0.5 * math.log(2 * math.pi))

    def energy(x: Tensor, sigma: Tensor | None = None) -> Tensor:
        a, b = x[:, 0::2], x[:, 1::2]
        return (well_u(a) + 0.5 * b.pow(2)).sum(-1)

    def sample(n: int, generator: torch.Generator) -> Tensor:
        x = torch.randn(n, dim, generator=generator)
        x[:, 0::2] = grid.sample(n * pairs, generator).reshape(n, pairs)
        return x

    def right_well_error(x: Tensor, w: Tensor | None = None) -> float:
        """|estimated − exact| probability that a double-well coordinate is in the right well (a > 0),
        averaged over the ``d/2`` wells."""
        right = (x[:, 0::2] > 0).double().mean(1)
        est = float(right.mean()) if w is None else float((w.double() * right).sum())
        return abs(est - p_right)

    p_right = float(1 - torch.from_numpy(grid.cdf).double()[grid.t.searchsorted(0.0)])
    return Target(
        f"manywell{dim}" if dim != 32 else "manywell",
        energy,
        dim,
        sample=sample,
        log_z=log_z,
        scale=1.7,
        metrics={"right_well_error": right_well_error},
        info={"log_z_per_well": grid.log_norm + 0.5 * math.log(2 * math.pi), "p_right": p_right},
    )


MANYWELL = {"manywell": manywell}
