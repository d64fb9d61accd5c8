"""Score matching: denoising (multi-scale), sliced (variance-reduced) and exact."""

from __future__ import annotations

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.energy import EnergyFn, energy_and_score
from hebm_core.objectives.base import Objective, ObjectiveOutput, draw_levels, noise_ladder, per_row
from hebm_core.options import check_int
from hebm_core.tree import Sample

__all__ = ["DenoisingScoreMatching", "SlicedScoreMatching", "ExactScoreMatching"]


class DenoisingScoreMatching(Objective):
    """Multi-scale DSM (Vincent 2011; Song & Ermon 2019).

    Each sample draws a level σ from a geometric schedule, is perturbed ``x̃ = x + σ z`` and the
    model's score at ``(x̃, σ)`` regresses ``-z/σ`` with weight λ(σ) = σ², i.e. the loss is
    ``½ ‖σ s(x̃, σ) + z‖²`` averaged over the batch. ``n_sigmas=1`` is single-scale DSM.
    """

    uses_noise_levels = True

    def __init__(
        self,
        sigma_min: float = 0.01,
        sigma_max: float = 1.0,
        n_sigmas: int = 10,
        sigmas: list[float] | None = None,
        **kw,
    ) -> None:
        super().__init__(**kw)
        self.register_buffer("sigmas", noise_ladder("dsm", sigma_min, sigma_max, n_sigmas, sigmas))

    def forward(self, model: EnergyFn, x: Sample) -> ObjectiveOutput:
        sig = draw_levels(self.sigmas, x)
        z = self.space.noise_like(x)
        xt = tree.tree_map(lambda a, n: a + per_row(sig, a) * n, x, z)
        _, s = energy_and_score(model, xt, sig, create_graph=True)
        s = self.space.tangent(s)
        resid = tree.tree_map(lambda sc, n: per_row(sig, sc) * sc + n, s, z)
        loss = 0.5 * tree.batch_dot(resid, resid).mean()
        return ObjectiveOutput(loss, {"dsm": float(loss.detach())})


class SlicedScoreMatching(Objective):
    """Sliced score matching with variance reduction (Song et al. 2019, SSM-VR).

    ``E_v[vᵀ ∇_x(vᵀ s(x))] + ½‖s(x)‖²`` with ``n_projections`` Gaussian (or Rademacher)
    directions per sample; ``sigma`` is passed to noise-conditional models.
    """

    def __init__(
        self, n_projections: int = 1, distribution: str = "gaussian", sigma: float | None = None, **kw
    ) -> None:
        super().__init__(**kw)
        if distribution not in ("gaussian", "rademacher"):
            raise ValueError(
                f"SlicedScoreMatching: distribution must be 'gaussian' or 'rademacher', got {distribution!r}"
            )
        self.n_projections = check_int("ssm", "n_projections", n_projections, 1, 1000)
        self.distribution, self.sigma = distribution, sigma

    def forward(self, model: EnergyFn, x: Sample) -> ObjectiveOutput:
        if self.n_projections > 1:
            x = tree.cat([x] * self.n_projections)
        xg = tree.with_grad(x)
        sig = _sigma(self.sigma, xg)
        _, s = energy_and_score(model, xg, sig, create_graph=True)
        s = self.space.tangent(s)
        v = self.space.noise_like(xg)
        if self.distribution == "rademacher":
            v = tree.tree_map(torch.sign, v)
        sv = tree.batch_dot(s, v)
        leaves = tree.state_leaves(xg)
        grads = torch.autograd.grad(sv.sum(), leaves, create_graph=True)
        it = iter(grads)
        jv = tree.tree_map(lambda _: next(it), xg)
        loss = (tree.batch_dot(v, jv) + 0.5 * tree.batch_dot(s, s)).mean()
        return ObjectiveOutput(loss, {"ssm": float(loss.detach())})


class ExactScoreMatching(Objective):
    """Hyvärinen's score matching ``tr ∇_x s(x) + ½‖s(x)‖²`` with the exact trace (one backward per dimension).

    For flat ``[B, D]`` data with ``D <= max_dim``; use sliced or denoising score matching above that.
    """

    def __init__(self, max_dim: int = 64, sigma: float | None = None, **kw) -> None:
        super().__init__(**kw)
        self.max_dim, self.sigma = int(max_dim), sigma

    def forward(self, model: EnergyFn, x: Tensor) -> ObjectiveOutput:
        if not isinstance(x, Tensor) or x.dim() != 2:
            raise ValueError("ExactScoreMatching needs flat [B, D] tensors; use sliced or denoising score matching")
        d = x.shape[1]
        if d > self.max_dim:
            raise ValueError(
                f"ExactScoreMatching costs one backward pass per dimension: D={d} > max_dim={self.max_dim}"
            )
        xg = x.detach().requires_grad_(True)
        _, s = energy_and_score(model, xg, _sigma(self.sigma, xg), create_graph=True)
        trace = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for i in range(d):
            trace = trace + torch.autograd.grad(s[:, i].sum(), xg, create_graph=True)[0][:, i]
        loss = (trace + 0.5 * s.pow(2).sum(1)).mean()
        return ObjectiveOutput(loss, {"esm": float(loss.detach())})


def _sigma(sigma: float | None, x: Sample) -> Tensor | None:
    if sigma is None:
        return None
    leaf = tree.state_leaves(x)[0]
    return torch.full((leaf.shape[0],), float(sigma), device=leaf.device, dtype=leaf.dtype)
