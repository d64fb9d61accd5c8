"""Diffusion recovery likelihood (Gao et al. 2021): contrastive learning of ``p(x | x̃)`` at many noise levels."""

from __future__ import annotations

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.energy import EnergyFn, energy_and_score
from hebm_core.objectives.base import Objective, ObjectiveOutput, draw_levels, noise_ladder, per_row
from hebm_core.options import check_int, check_number
from hebm_core.samplers.langevin import MAX_STEPS
from hebm_core.tree import Sample

__all__ = ["RecoveryLikelihood"]

_OWNER = "recovery"


class RecoveryLikelihood(Objective):
    """Maximise the recovery likelihood ``log p_θ(x | x̃)`` of data from its noisy version.

    Each sample draws a level σ from the noise ladder and is perturbed ``x̃ = a x + σ z`` (``a = 1``,
    or ``a = √(1 − σ²)`` with ``scaled=True``, the paper's variance-preserving form). Given ``x̃``
    the model's conditional ``p(x | x̃) ∝ exp(−E(x, σ) − ‖x̃ − a x‖² / (2σ²))`` is far better
    conditioned than ``p(x)``: the Gaussian term dominates at small σ, so a short Langevin chain
    started at ``x̃ / a`` samples it. The loss ``E(x, σ) − E(x⁻, σ)`` (plus ``alpha`` times the
    squared energies) is the contrastive gradient of that conditional likelihood.

    The chain takes ``n_steps`` steps ``x ← x + ε ∇log p(x | x̃) + √(2ε) ξ`` with
    ``ε = step_scale · σ² / a²``: proportional to the variance of the Gaussian term, so one step
    moves a chain the same fraction of its conditional width at every level. Noise, score
    directions and projections come from the objective's space, so any plugin's data works.
    ``metropolis=True`` accepts or rejects each step (MALA), removing the discretisation bias of
    the unadjusted chain at the price of one comparison per step (the energy is evaluated anyway).
    """

    uses_noise_levels = True

    def __init__(
        self,
        sigma_min: float = 0.05,
        sigma_max: float = 0.5,
        n_sigmas: int = 6,
        sigmas: list[float] | None = None,
        n_steps: int = 30,
        step_scale: float = 0.05,
        scaled: bool = False,
        metropolis: bool = False,
        alpha: float = 0.0,
        **kw,
    ) -> None:
        super().__init__(**kw)
        self.register_buffer("sigmas", noise_ladder(_OWNER, sigma_min, sigma_max, n_sigmas, sigmas))
        self.n_steps = check_int(_OWNER, "n_steps", n_steps, 1, MAX_STEPS)
        self.step_scale = check_number(_OWNER, "step_scale", step_scale, 0, 1, open_low=True)
        self.alpha = check_number(_OWNER, "alpha", alpha, 0)
        for name, flag in (("scaled", scaled), ("metropolis", metropolis)):
            if not isinstance(flag, bool):
                raise ValueError(f"{_OWNER}: {name} must be true or false, got {flag!r}")
        if scaled and float(self.sigmas.max()) >= 1:
            raise ValueError(f"{_OWNER}: scaled=True needs every sigma below 1, got max {float(self.sigmas.max()):g}")
        self.scaled, self.metropolis = scaled, metropolis
        self.last_accept = 1.0

    def scale(self, sigma: Tensor) -> Tensor:
        """The data's factor ``a(σ)`` in ``x̃ = a x + σ z`` (``[B]``)."""
        return torch.sqrt(1 - sigma**2) if self.scaled else torch.ones_like(sigma)

    def perturb(self, x: Sample) -> tuple[Sample, Tensor]:
        """Noisy data ``x̃`` and each sample's noise level σ ``[B]``, drawn from the ladder."""
        sig = draw_levels(self.sigmas, x)
        a = self.scale(sig)
        z = self.space.noise_like(x)
        return tree.tree_map(lambda v, n: per_row(a, v) * v + per_row(sig, v) * n, x, z), sig

    def conditional(self, model: EnergyFn, x: Sample, x_noisy: Sample, sigma: Tensor) -> tuple[Tensor, Sample]:
        """The conditional's energy ``E(x, σ) + ‖x̃ − a x‖²/(2σ²)`` ``[B]`` and its score (tangent to the space)."""
        a = self.scale(sigma)
        e, s = energy_and_score(model, x, sigma, create_graph=False)
        resid = tree.tree_map(lambda y, u: y - per_row(a, u) * u, x_noisy, x)
        score = tree.tree_map(lambda g, r: g + per_row(a / sigma**2, r) * r, s, resid)
        return e + tree.batch_dot(resid, resid) / (2 * sigma**2), self.space.tangent(score)

    def sample_conditional(self, model: EnergyFn, x_noisy: Sample, sigma: Tensor) -> Sample:
        """Short-run Langevin samples of ``p(x | x̃)`` started at ``x̃ / a`` (detached); ``metropolis``
        adds the MALA accept/reject step, which makes the chains exact for the conditional."""
        a = self.scale(sigma)
        eps = self.step_scale * sigma**2 / a**2
        x_noisy = tree.detach(x_noisy)
        x = self.space.project(tree.tree_map(lambda v: v / per_row(a, v), x_noisy))
        u, g = self.conditional(model, x, x_noisy, sigma)
        accepted = torch.zeros_like(sigma)
        noise_std = torch.sqrt(2 * eps)
        for t in range(1, self.n_steps + 1):
            noise = self.space.noise_like(x)
            y = self.space.project(
                tree.tree_map(lambda v, d, n: v + per_row(eps, v) * d + per_row(noise_std, v) * n, x, g, noise)
            )
            if not tree.all_finite(y):
                raise FloatingPointError(
                    f"{_OWNER}: Langevin chains diverged at step {t} (step_scale {self.step_scale:g}); "
                    f"try step_scale {self.step_scale / 4:g}"
                )
            u_y, g_y = self.conditional(model, y, x_noisy, sigma)
            if not self.metropolis:
                x, u, g = y, u_y, g_y
                continue
            log_ratio = u - u_y + _log_q(x, y, g_y, eps) - _log_q(y, x, g, eps)
            ok = torch.rand_like(log_ratio).log() < log_ratio
            accepted = accepted + ok.to(accepted.dtype)
            x, u, g = tree.where(ok, y, x), torch.where(ok, u_y, u), tree.where(ok, g_y, g)
        self.last_accept = float(accepted.mean()) / self.n_steps if self.metropolis else 1.0
        return tree.detach(x)

    def forward(self, model: EnergyFn, x: Sample) -> ObjectiveOutput:
        x_noisy, sig = self.perturb(x)
        x_neg = self.sample_conditional(model, x_noisy, sig)
        b = tree.batch_size(x)
        energies = model(tree.cat([x, x_neg]), torch.cat([sig, sig]))
        e_pos, e_neg = energies[:b], energies[b:]
        loss = e_pos.mean() - e_neg.mean()
        if self.alpha:
            loss = loss + self.alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        return ObjectiveOutput(
            loss,
            {
                "recovery": float(loss.detach()),
                "e_pos": float(e_pos.detach().mean()),
                "e_neg": float(e_neg.detach().mean()),
                **({"accept": self.last_accept} if self.metropolis else {}),
            },
        )


def _log_q(to: Sample, frm: Sample, score: Sample, eps: Tensor) -> Tensor:
    """Langevin proposal log density ``log q(to | frm)`` up to a constant shared by both directions."""
    d = tree.tree_map(lambda t, f, g: t - f - per_row(eps, t) * g, to, frm, score)
    return -tree.batch_dot(d, d) / (4 * eps)
