"""Targets for data-free sampling: an energy ``U(x)`` with ``p(x) ∝ exp(−U(x))`` and no samples,
plus what evaluating a sampler on it needs (exact samples or a reference, a known log Z)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from hebm_core.energy import EnergyFn

__all__ = ["Target"]


@dataclass
class Target:
    """A target distribution on flat vectors ``[B, dim]``.

    ``energy(x, sigma=None) -> [B]`` is ``U``; ``sample(n, generator)`` draws exact samples when they
    are known (mixtures, many-well), ``reference(n, generator)`` long-run MCMC or other reference
    samples otherwise; ``log_z`` is ``log ∫ exp(−U)`` when known; ``init(n, generator)`` is where
    chains and generators start (default ``scale``·N(0, I)); ``metrics`` are domain figures of a set
    of samples (name -> ``(samples, weights) -> float``, weights ``None`` or self-normalised); ``info``
    goes into every report.
    """

    name: str
    energy: EnergyFn
    dim: int
    sample: Callable[[int, torch.Generator], Tensor] | None = None
    reference: Callable[[int, torch.Generator], Tensor] | None = None
    log_z: float | None = None
    scale: float = 1.0
    init: Callable[[int, torch.Generator], Tensor] | None = None
    metrics: dict[str, Callable[[Tensor, Tensor | None], float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def start(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` starting points."""
        if self.init is not None:
            return self.init(n, generator)
        return self.scale * torch.randn(n, self.dim, generator=generator)
