"""Unadjusted Langevin dynamics and its annealed (NCSN) variant."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.energy import EnergyFn
from hebm_core.options import check_int, check_number
from hebm_core.samplers.base import Sampler
from hebm_core.tree import Sample

__all__ = ["Langevin", "AnnealedLangevin", "geometric_sigmas", "MAX_LEVELS", "MAX_STEPS"]

#: the most noise levels, and steps of one chain, a sampler accepts (a typo must not run for days)
MAX_LEVELS = 100_000
MAX_STEPS = 10_000_000


def geometric_sigmas(sigma_max: float, sigma_min: float, n: int) -> Tensor:
    """``n`` noise levels from ``sigma_max`` down to ``sigma_min``, equally spaced in log."""
    if not (math.isfinite(sigma_max) and sigma_max >= sigma_min > 0):
        raise ValueError(f"need sigma_max >= sigma_min > 0 (finite), got {sigma_max}, {sigma_min}")
    check_int("noise levels", "n", n, 1, MAX_LEVELS)
    return torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), n))


def _langevin_update(x: Tensor, s: Tensor, n: Tensor, step: float, noise_std: float) -> Tensor:
    """``x + step·s + noise_std·n`` in two fused kernels."""
    return torch.add(x, s, alpha=step).add_(n, alpha=noise_std)


class Langevin(Sampler):
    """ULA: ``x ← x + ε ∇log p(x) + √(2ε)·τ ξ`` for ``n_steps`` steps.

    ``noise_scale`` τ < 1 gives the "cold" chains popular for CD training; keep 1 for sampling.
    """

    name = "langevin"

    def __init__(self, step_size: float = 1e-2, n_steps: int = 100, noise_scale: float = 1.0, **kw) -> None:
        super().__init__(**kw)
        self.step_size = check_number("Langevin", "step_size", step_size, 0, open_low=True)
        self.n_steps = check_int("Langevin", "n_steps", n_steps, 0, MAX_STEPS)
        self.noise_scale = check_number("Langevin", "noise_scale", noise_scale, 0)

    def run(self, energy: EnergyFn, x0: Sample, sigma: float | Tensor | None = None) -> Sample:
        x = tree.detach(x0)
        sig = self.sigma_tensor(sigma, x)
        eps = self.step_size
        noise_std = math.sqrt(2 * eps) * self.noise_scale
        with self.progress_bar(self.n_steps, "Langevin") as bar:
            for t in range(1, self.n_steps + 1):
                _, s = self.evaluate(energy, x, sig)
                x = tree.tree_map(
                    lambda a, b, c: _langevin_update(a, b, c, eps, noise_std), x, s, self.space.noise_like(x)
                )
                x = self.space.project(x)
                self.check(x, t, eps, None if sigma is None else float(sig[0]))
                bar.update()
        return x


class AnnealedLangevin(Sampler):
    """Annealed Langevin (Song & Ermon 2019) over decreasing ``sigmas``.

    At level σ_i the step is ``α_i = ε σ_i² / σ_L²`` (the NCSN rule, σ_L the smallest level) with
    ``steps_per_sigma`` steps each. ``denoise`` adds Tweedie's final step ``x + σ_L² s(x, σ_L)``.
    """

    name = "annealed_langevin"

    def __init__(
        self,
        sigmas: Sequence[float] | Tensor,
        steps_per_sigma: int = 100,
        eps: float = 2e-5,
        denoise: bool = True,
        **kw,
    ) -> None:
        super().__init__(**kw)
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
        if sigmas.numel() == 0 or sigmas.numel() > MAX_LEVELS or not bool(torch.isfinite(sigmas).all()):
            raise ValueError(f"AnnealedLangevin needs 1 to {MAX_LEVELS} finite noise levels")
        if torch.any(sigmas <= 0):
            raise ValueError("AnnealedLangevin needs positive noise levels")
        if torch.any(sigmas[1:] > sigmas[:-1]):
            raise ValueError("AnnealedLangevin sigmas must be in decreasing order")
        self.eps = check_number("AnnealedLangevin", "eps", eps, 0, open_low=True)
        self.steps_per_sigma = check_int("AnnealedLangevin", "steps_per_sigma", steps_per_sigma, 1, MAX_STEPS)
        if self.steps_per_sigma * sigmas.numel() > MAX_STEPS:
            raise ValueError(
                f"AnnealedLangevin: {self.steps_per_sigma} steps × {sigmas.numel()} levels is over {MAX_STEPS}"
            )
        self.sigmas, self.denoise = sigmas.tolist(), bool(denoise)

    def run(self, energy: EnergyFn, x0: Sample, sigma: float | Tensor | None = None) -> Sample:
        x = tree.detach(x0)
        s_last = self.sigmas[-1]
        total = len(self.sigmas) * self.steps_per_sigma
        t = 0
        with self.progress_bar(total, "annealed Langevin") as bar:
            for sig_val in self.sigmas:
                sig = self.sigma_tensor(sig_val, x)
                alpha = self.eps * (sig_val / s_last) ** 2
                update = partial(_langevin_update, step=alpha, noise_std=math.sqrt(2 * alpha))
                for _ in range(self.steps_per_sigma):
                    t += 1
                    _, s = self.evaluate(energy, x, sig)
                    x = tree.tree_map(update, x, s, self.space.noise_like(x))
                    x = self.space.project(x)
                    self.check(x, t, alpha, sig_val)
                    bar.update()
            if self.denoise:
                sig = self.sigma_tensor(s_last, x)
                _, s = self.evaluate(energy, x, sig)
                x = self.space.project(tree.tree_map(lambda a, b: a + s_last**2 * b, x, s))
                self.check(x, t + 1, s_last**2, s_last)
        return x
