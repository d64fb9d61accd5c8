"""Sampler base: the loop, progress bar, projection and divergence detection shared by all samplers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from hebm_core import tree
from hebm_core.energy import EnergyFn, energy_and_score
from hebm_core.space import EUCLIDEAN, Space
from hebm_core.tree import Sample

__all__ = ["Sampler", "SamplerDivergenceError", "SamplerStuckError", "ChainState", "PROGRESS_MIN_STEPS"]

#: runs shorter than this many steps get no progress bar unless asked for
PROGRESS_MIN_STEPS = 500


class SamplerDivergenceError(RuntimeError):
    """A chain left the finite numbers: the message says where and what step size to try."""

    def __init__(self, sampler: str, step: int, step_size: float, n_bad: int, n_total: int, sigma: float | None = None):
        self.step, self.step_size, self.sigma, self.n_bad = step, step_size, sigma, n_bad
        self.suggested_step_size = step_size / 4
        where = f"step {step}" + (f" (σ = {sigma:.4g})" if sigma is not None else "")
        super().__init__(
            f"{sampler} diverged at {where}: {n_bad}/{n_total} chains non-finite with step size {step_size:.4g}; "
            f"try a step size of {self.suggested_step_size:.4g} or below"
        )


class SamplerStuckError(RuntimeError):
    """A Metropolis sampler accepted fewer proposals than its floor: its chains did not move; one line."""


@dataclass
class ChainState:
    """Current points with their energies and scores, so no transition evaluates the model twice."""

    x: Sample
    energy: Tensor
    score: Sample
    stats: dict[str, float] = field(default_factory=dict)


class Sampler(ABC):
    """A batched sampler: every chain moves at once, one row of the batch per chain.

    ``space`` draws the noise and projects (clamps) proposals; ``progress`` is ``None`` for a bar
    on long runs only; ``check_every`` is how often (in steps) chains are checked for NaN/Inf.
    """

    name = "sampler"

    def __init__(self, space: Space | None = None, progress: bool | None = None, check_every: int = 1) -> None:
        if check_every < 1:
            raise ValueError("check_every must be >= 1")
        self.space = space or EUCLIDEAN
        self.progress = progress
        self.check_every = check_every
        self.last_stats: dict[str, float] = {}

    @abstractmethod
    def run(self, energy: EnergyFn, x0: Sample, sigma: float | Tensor | None = None) -> Sample:
        """Run the chains from ``x0``; returns the final points (detached)."""

    def __call__(self, energy: EnergyFn, x0: Sample, sigma: float | Tensor | None = None) -> Sample:
        return self.run(energy, x0, sigma)

    # helpers for subclasses -------------------------------------------------
    @staticmethod
    def sigma_tensor(sigma: float | Tensor | None, x: Sample) -> Tensor | None:
        """A noise level as a contiguous ``[B]`` tensor on the sample's device (``None`` stays ``None``).

        Contiguous on purpose: a stride-0 ``expand`` makes every op that reads σ in the network
        slower (measured ~10% of a small MLP's step).
        """
        if sigma is None:
            return None
        leaf = tree.state_leaves(x)[0]
        if isinstance(sigma, Tensor) and sigma.dim() == 1 and sigma.shape[0] == leaf.shape[0]:
            return sigma.to(device=leaf.device, dtype=leaf.dtype)
        return torch.full((leaf.shape[0],), float(sigma), dtype=leaf.dtype, device=leaf.device)

    def evaluate(self, energy: EnergyFn, x: Sample, sigma: Tensor | None) -> tuple[Tensor, Sample]:
        """Energy and score at ``x``, the score restricted to the space's allowed directions."""
        e, s = energy_and_score(energy, x, sigma, create_graph=False)
        return e, self.space.tangent(s)

    @contextmanager
    def progress_bar(self, total: int, desc: str) -> Iterator[tqdm]:
        disable = (not self.progress) if self.progress is not None else (True if total < PROGRESS_MIN_STEPS else None)
        bar = tqdm(total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True)
        try:
            yield bar
        finally:
            bar.close()

    def check(
        self, x: Sample, step: int, step_size: float, sigma: float | None = None, energy: Tensor | None = None
    ) -> None:
        """Raise :class:`SamplerDivergenceError` if any chain holds a NaN/Inf (every ``check_every`` steps)."""
        if step % self.check_every:
            return
        if tree.all_finite(x) and (energy is None or bool(torch.isfinite(energy).all())):
            return
        ok = tree.per_sample_finite(x)
        if energy is not None:
            ok = ok & torch.isfinite(energy)
        if not bool(ok.all()):
            raise SamplerDivergenceError(type(self).__name__, step, step_size, int((~ok).sum()), ok.numel(), sigma)
