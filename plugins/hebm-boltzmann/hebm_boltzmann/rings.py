"""A-NICE-MC's rings in 2-D: ``ring`` ``U = ((‖x‖ − 2) / 0.4)²`` and ``ring5`` (their "lord of rings")
``U = min_{i=1..5} ((‖x‖ − i) / 0.2)²``. Both are radial: log Z and exact samples come from the radius's
1-D density ``2π r exp(−u(r))`` (trapezoid rule on a fine grid, angle uniform)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from hebm_boltzmann._radial import Grid1D
from hebm_core.targets import Target

__all__ = ["RINGS", "ring", "ring5", "ring_u", "ring5_u"]


def ring_u(r):
    """Ring's energy as a function of the radius (tensor or array)."""
    return ((r - 2.0) / 0.4) ** 2


def ring5_u(r):
    """Ring5's energy as a function of the radius (tensor or array)."""
    if isinstance(r, Tensor):
        return torch.stack([((r - i) / 0.2) ** 2 for i in range(1, 6)], -1).min(-1).values
    return np.min(np.stack([((r - i) / 0.2) ** 2 for i in range(1, 6)], -1), -1)


def _radius(x: Tensor) -> Tensor:
    return torch.sqrt(x.pow(2).sum(-1) + 1e-12)


def _radial_target(name: str, u: Callable, r_max: float, scale: float) -> Target:
    grid = Grid1D(lambda r: np.log(np.maximum(r, 1e-300)) - u(r), 0.0, r_max)
    log_z = grid.log_norm + math.log(2 * math.pi)

    def energy(x: Tensor, sigma: Tensor | None = None) -> Tensor:
        return u(_radius(x))

    def sample(n: int, generator: torch.Generator) -> Tensor:
        r = grid.sample(n, generator)
        a = torch.rand(n, generator=generator) * 2 * math.pi
        return torch.stack([r * a.cos(), r * a.sin()], 1)

    def radius_mean_error(x: Tensor, w: Tensor | None = None) -> float:
        """|E[‖x‖] − exact| (weighted when weights are given)."""
        r = _radius(x.float()).double()
        est = float(r.mean()) if w is None else float((w.double() * r).sum())
        return abs(est - exact_r)

    with torch.no_grad():
        exact_r = float(_radius(sample(200_000, torch.Generator().manual_seed(0))).double().mean())
    return Target(
        name, energy, 2, sample=sample, log_z=log_z, scale=scale, metrics={"radius_mean_error": radius_mean_error}
    )


def ring() -> Target:
    """A-NICE-MC's ring: radius 2, width 0.4."""
    return _radial_target("ring", ring_u, 8.0, 2.0)


def ring5() -> Target:
    """A-NICE-MC's five rings (radii 1…5, width 0.2)."""
    return _radial_target("ring5", ring5_u, 10.0, 3.0)


RINGS = {"ring": ring, "ring5": ring5}
