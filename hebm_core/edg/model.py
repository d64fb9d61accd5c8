"""The Energy-based Diffusion Generator (Wang, Guo, Wu & Zhou, arXiv 2401.02080) as one module.

- decoder ``p_D(z₀) p_D(x | z₀)``: ``z₀ ~ N(0, I)``, then :class:`~hebm_core.edg.decoder.GHDDecoder`;
- encoder ``p_E(z₀ | x)``: ``z_T ~ N(0, I)`` run back through a VP diffusion of the latent whose
  conditional score ``s(z_t, x, t)`` is

      s = −z + c_t α_t ∇_y log p_D(x | y)|_{y = α_t z} + α_t σ_t · NN(z, x, t),   c_t = 1 / (1 + σ_t² p̂(x))

  The first two terms are the score of ``z_t | x`` when ``p_D(x | z)`` is Gaussian in ``z`` with
  precision ``p̂`` (a learned positive vector, modulated by ``x``, times the decoder's
  ``mean((scale/σ_D)²)``): they equal the posterior's score
  ``∇ log p_D(z₀ | x)`` at ``t = 0`` (where the bound's optimum puts the encoder) and ``−z`` as
  ``α_t → 0`` at ``t = T`` (``z_T`` independent of ``x``); the network's correction vanishes at both
  ends. ``posterior_score = false`` drops the middle term (cheaper: no pass through the decoder).

The module is an :class:`~hebm_core.energy.EnergyModel` whose ``energy`` is the target's ``U`` so the
core :class:`~hebm_core.training.Trainer` can train it (checkpoints, exact resume, EMA); the target
and the evaluation counter are shared by every copy (the EMA copy included) and are not weights.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from hebm_core.edg.config import EDGOptions
from hebm_core.edg.decoder import GHDDecoder
from hebm_core.edg.nets import MLP, EvalCounter, Shared, VPSchedule, time_features
from hebm_core.energy import EnergyFn, EnergyModel

__all__ = ["EDG", "ScoreNet"]


class ScoreNet(nn.Module):
    """The encoder's correction network and its likelihood precision ``p̂(x)``."""

    def __init__(self, latent_dim: int, dim: int, hidden: int, depth: int) -> None:
        super().__init__()
        self.net = MLP(latent_dim + dim + 16, latent_dim, hidden, depth)
        self.log_precision = nn.Parameter(torch.zeros(latent_dim))
        self.precision_net = MLP(dim, latent_dim, hidden, 1)

    def precision(self, x_scaled: Tensor) -> Tensor:
        return torch.exp(self.log_precision + self.precision_net(x_scaled).clamp(-20, 20))

    def forward(self, z: Tensor, x_scaled: Tensor, t_features: Tensor) -> Tensor:
        return self.net(torch.cat([z, x_scaled, t_features], -1))


class EDG(EnergyModel):
    """EDG for a target energy ``U`` (any callable ``(x, sigma) -> [B]``, e.g. an :class:`EnergyModel`)
        on flat vectors of size ``dim``; ``scale`` is the target's rough spread; ``sigma`` is passed to
        ``U`` (a noise-conditional model's smallest σ, else ``None``); ``loc`` the generator's initial centre
    (default 0)."""

    def __init__(
        self,
        target: EnergyFn,
        dim: int,
        options: EDGOptions | None = None,
        scale: float = 1.0,
        sigma: float | None = None,
        loc: Tensor | None = None,
    ) -> None:
        super().__init__()
        o = options or EDGOptions()
        self.options, self.dim = o, int(dim)
        self.latent_dim = int(o.latent_dim or dim)
        self.sigma = sigma
        self._target = Shared(target)
        self.counter_holder = Shared(EvalCounter())
        self.schedule = VPSchedule(o.beta_min, o.beta_max, o.horizon)
        self.decoder = GHDDecoder(
            dim, self.latent_dim, o.ghd_steps, o.step_size, o.final_std, o.grad_clip, o.hidden, o.depth, scale
        )
        self.encoder = ScoreNet(self.latent_dim, dim, o.score_hidden, o.score_depth)
        if loc is not None:  # where the generator starts (e.g. a crystal lattice), trainable from there
            with torch.no_grad():
                self.decoder.loc.copy_(loc.reshape(dim))

    # -- the target --------------------------------------------------------------------------
    @property
    def counter(self) -> EvalCounter:
        return self.counter_holder.obj

    def target_energy(self, x: Tensor) -> Tensor:
        """``U(x)`` (counted)."""
        self.counter.add(x.shape[0])
        fn = self._target.obj
        if self.sigma is None:
            return fn(x)
        return fn(x, torch.full((x.shape[0],), self.sigma, dtype=x.dtype, device=x.device))

    def energy(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        return self.target_energy(x)

    def target_grad(self, x: Tensor, create_graph: bool) -> Tensor:
        """``∇U(x)``; differentiable in ``x`` (and in what ``x`` depends on) with ``create_graph``."""
        with torch.enable_grad():
            xg = x if (create_graph and x.requires_grad) else x.detach().requires_grad_(True)
            e = self.target_energy(xg)
            (g,) = torch.autograd.grad(e.sum(), xg, create_graph=create_graph)
        return g

    # -- decoder -----------------------------------------------------------------------------
    def decode_mean(self, z: Tensor, create_graph: bool = False) -> Tensor:
        return self.decoder.mean(z, self.target_grad, create_graph)

    def generate(self, n: int, create_graph: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """``(z₀, x, log p_D(x | z₀))`` for ``n`` fresh draws (global RNG), reparameterised."""
        ref = self.decoder.loc
        z = torch.randn(n, self.latent_dim, device=ref.device, dtype=ref.dtype)
        mean = self.decode_mean(z, create_graph)
        x = mean + self.decoder.final_std * torch.randn_like(mean)
        return z, x, self.decoder.log_prob(x, mean)

    def log_likelihood(self, x: Tensor, y: Tensor, create_graph: bool = True) -> Tensor:
        """``log p_D(x | z₀ = y)`` per row, differentiable in ``y``."""
        return self.decoder.log_prob(x, self.decode_mean(y, create_graph))

    # -- encoder -----------------------------------------------------------------------------
    def latent_score(self, z: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """``s(z_t, x, t)``, differentiable in ``z`` (and the parameters); ``t`` is ``[B]``."""
        alpha, sig = self.schedule.alpha_sigma(t)
        a, s = alpha[:, None], sig[:, None]
        xs = x / self.decoder.scale
        out = -z + a * s * self.encoder(z, xs, time_features(t, self.schedule.horizon))
        if self.options.posterior_score:
            with torch.enable_grad():
                y = a * z
                if not y.requires_grad:
                    y = y.detach().requires_grad_(True)
                ll = self.log_likelihood(x, y, create_graph=True)
                (grad_y,) = torch.autograd.grad(ll.sum(), y, create_graph=True)
            c = 1.0 / (1.0 + s.pow(2) * self.likelihood_precision(xs))
            out = out + c * a * grad_y
        return out

    def likelihood_precision(self, x_scaled: Tensor) -> Tensor:
        """``p̂(x)``: the learned factor times ``mean((scale / σ_D)²)``, the precision in ``z`` of
        ``p_D(x | z)`` for the decoder's linear start ``x⁰ = scale·z`` (so ``c_t`` is right at
        initialisation and follows the trainable final noise σ_D, instead of being off by ``(scale/σ_D)²``)."""
        d = self.decoder
        base = (d.scale / d.final_std).pow(2).mean()
        return base * self.encoder.precision(x_scaled)

    # -- what the trainer records ------------------------------------------------------------
    def log_values(self) -> dict[str, float]:
        d = self.decoder
        with torch.no_grad():
            out = {"final_std": float(d.final_std.mean())}
            if d.steps:
                out["step_size"] = float(d.step_sizes().mean())
        return out

    def describe(self) -> dict[str, Any]:
        return {"edg": {"latent_dim": self.latent_dim, "ghd_steps": self.decoder.steps, **self.log_values()}}

    @staticmethod
    def log_prior(z: Tensor) -> Tensor:
        """``log N(z; 0, I)`` per row."""
        return -0.5 * z.pow(2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
