"""The EDG training objective: an upper bound on ``KL(p_D(x) ‖ π(x)) − log Z``, simulation-free.

With the decoder ``z₀ ~ N(0, I)``, ``x ~ p_D(x | z₀)`` and the encoder a VP diffusion of the latent
with conditional score ``s(z_t, x, t)`` (``z_T ~ N(0, I)``), the KL between the two joint path laws
bounds the marginal one:

    KL(p_D(x) ‖ π) − log Z ≤ L = E[log p_D(x | z₀) + U(x)]
                                 + ∫₀ᵀ ½β(t) E[‖s(z_t, x, t)‖² + 2 ∇_z·s(z_t, x, t) + k] dt

(``k`` the latent size; the ``k`` term is ``∫∇·f`` of the VP drift, and the prior terms
``E log p_D(z₀) − E log N(z_T)`` cancel because N(0, I) is the VP diffusion's stationary law). The
integral is estimated without simulating anything: ``t`` drawn on ``[0, T]`` (:func:`draw_times`),
``z_t = α_t z₀ + σ_t ε`` drawn exactly, and the divergence exact up to ``edg.exact_divergence_dims``
latent dimensions (Hutchinson's estimate with a Rademacher probe beyond: its variance grows with the
score's Jacobian, which is large near t = 0 when the decoder's last step is narrow). So ``−L`` is a
lower bound on ``log Z`` (the ``elbo`` column) and ``L + log Z`` an upper bound on the KL.

The "data" of the core trainer are a dummy index set: every step draws fresh latents from the
global generator, which the trainer's checkpoints hold, so resuming is exact.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hebm_core.edg.model import EDG
from hebm_core.objectives.base import Objective, ObjectiveOutput

__all__ = ["EDGLoss", "bound_terms", "divergence"]


def divergence(s: Tensor, z: Tensor, exact: bool, create_graph: bool = False) -> Tensor:
    """``∇_z·s`` per row: exact (all rows of the Jacobian in one vmapped backward pass) or Hutchinson's
    estimate with one Rademacher probe."""
    if exact:
        k = z.shape[1]
        eye = torch.eye(k, dtype=s.dtype, device=s.device)[:, None, :].expand(k, *s.shape)
        (jac,) = torch.autograd.grad(s, z, grad_outputs=eye, is_grads_batched=True, create_graph=create_graph)
        return torch.diagonal(jac, dim1=0, dim2=2).sum(-1)  # jac[i, b, j] = ds_i/dz_j
    probe = torch.randint(0, 2, s.shape, device=s.device).to(s.dtype) * 2 - 1
    (jp,) = torch.autograd.grad((s * probe).sum(), z, create_graph=create_graph)
    return (jp * probe).sum(1)


def draw_times(n: int, horizon: float, floor: float, like: Tensor) -> tuple[Tensor, Tensor]:
    """``n`` diffusion times on ``[0, T]`` and ``1 / p(t)``: uniform when ``floor`` is 0, else an even
    mixture of uniform and a density ∝ 1 / (t + floor), which puts draws where the integrand is
    largest (near t = 0 the conditional score's Jacobian grows as the decoder's posterior narrows).
    Unbiased either way; the mixture only lowers the variance of the time integral."""
    u = torch.rand(n, device=like.device, dtype=like.dtype)
    if floor <= 0:
        return u * horizon, torch.full_like(u, horizon)
    ratio = math.log1p(horizon / floor)
    log_t = floor * torch.expm1(torch.rand_like(u) * ratio)
    t = torch.where(torch.rand_like(u) < 0.5, u * horizon, log_t)
    p = 0.5 / horizon + 0.5 / ((t + floor) * ratio)
    return t, 1.0 / p


def bound_terms(model: EDG, n: int, time_samples: int = 1) -> tuple[Tensor, Tensor]:
    """Per-draw ``(log p_D(x|z₀) + U(x), encoder term)`` for ``n`` fresh draws; their sum averages to ``L``."""
    z0, x, log_pd = model.generate(n, create_graph=True)
    recon = log_pd + model.target_energy(x)
    sched = model.schedule
    enc = torch.zeros_like(recon)
    for _ in range(time_samples):
        t, inv_p = draw_times(n, sched.horizon, model.options.time_floor, z0)
        alpha, sig = sched.alpha_sigma(t)
        zt = (alpha[:, None] * z0 + sig[:, None] * torch.randn_like(z0)).requires_grad_(True)
        s = model.latent_score(zt, x, t)
        div = divergence(s, zt, model.latent_dim <= model.options.exact_divergence_dims, create_graph=True)
        integrand = s.pow(2).sum(-1) + 2 * div + model.latent_dim
        enc = enc + inv_p * 0.5 * sched.beta(t) * integrand / time_samples
    return recon, enc


class EDGLoss(Objective):
    """``L`` on a batch of fresh latents (the batch's size is the batch; its values are unused).

    Metrics: ``loss`` = ``L``, ``elbo`` = ``−L`` (a lower bound on log Z), ``recon`` (``E[log p_D + U]``),
    ``encoder`` (the diffusion term). The buffer ``energy_evals`` counts the target's evaluations
    during training (it travels in checkpoints).
    """

    def __init__(self, time_samples: int = 1) -> None:
        super().__init__()
        self.time_samples = int(time_samples)
        self.register_buffer("energy_evals", torch.zeros((), dtype=torch.float64))

    def forward(self, model: EDG, batch: Tensor) -> ObjectiveOutput:
        model.counter.take()
        recon, enc = bound_terms(model, batch.shape[0], self.time_samples)
        loss = (recon + enc).mean()
        self.energy_evals += model.counter.take()
        metrics = {
            "elbo": -float(loss.detach()),
            "recon": float(recon.detach().mean()),
            "encoder": float(enc.detach().mean()),
            "energy_evals": float(self.energy_evals),
        }
        return ObjectiveOutput(loss, metrics)
