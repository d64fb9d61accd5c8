"""The EDG decoder ``p_D(x | z₀)``: generalised Hamiltonian dynamics driven by ∇U, then one Brownian step.

``z₀ -> (x⁰, v⁰)`` by a linear map plus an MLP; then ``K`` leapfrog-like steps in which small
networks correct the kicks and the drifts (L2HMC-style, Levy et al. 2018) with trainable positive
step sizes per step and per dimension:

    v ← v ⊙ exp(½ tanh S_v) − ½ε ⊙ (g ⊙ exp(½ tanh Q_v) + T_v)      (S_v, Q_v, T_v)(x, g, k)
    x ← x + ε ⊙ (v ⊙ exp(tanh Q_x) + T_x)                          (Q_x, T_x)(x, v, k)
    v ← the same kick at the new x

with ``g`` the target's gradient ∇U(x), softly clipped to a norm (any deterministic map gives a valid
decoder, and the clip keeps a step from one near-singular gradient, e.g. two Lennard-Jones particles
nearly on top of each other, finite). The trajectory is deterministic given ``z₀``; the last step
is a Langevin step ``x = x^K − ½σ² ⊙ g(x^K) + σ ⊙ ξ`` with a trainable ``σ``, so
``p_D(x | z₀) = N(x; μ(z₀), diag σ²)`` is analytic. One pass evaluates ∇U at ``K + 1`` points.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from hebm_core.edg.nets import MLP, soft_clip, time_features

__all__ = ["GHDDecoder"]

#: ``(x, create_graph) -> ∇U(x)``
GradFn = Callable[[Tensor, bool], Tensor]


class GHDDecoder(nn.Module):
    """``p_D(x | z₀)`` on ``[B, dim]`` from latents ``[B, latent_dim]``; ``scale`` is the target's rough
    spread (inputs of the networks are divided by it, the final noise is in its units)."""

    def __init__(
        self,
        dim: int,
        latent_dim: int,
        steps: int = 8,
        step_size: float = 0.1,
        final_std: float = 0.05,
        grad_clip: float = 1e3,
        hidden: int = 64,
        depth: int = 2,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.dim, self.latent_dim, self.steps, self.grad_clip = dim, latent_dim, steps, float(grad_clip)
        self.register_buffer("scale", torch.full((dim,), float(scale)))
        self.loc = nn.Parameter(torch.zeros(dim))
        self.lin_x = nn.Linear(latent_dim, dim, bias=False)
        self.lin_v = nn.Linear(latent_dim, dim, bias=False)
        with torch.no_grad():  # x⁰ = z (first coordinates), v⁰ = the next ones when there are, else 0
            self.lin_x.weight.zero_()
            self.lin_v.weight.zero_()
            n = min(dim, latent_dim)
            self.lin_x.weight[:n, :n] = torch.eye(n)
            m = min(dim, latent_dim - n)
            if m > 0:
                self.lin_v.weight[:m, n : n + m] = torch.eye(m)
        self.init_net = MLP(latent_dim, 2 * dim, hidden, depth) if depth > 0 else None
        emb = 8
        self.kick_net = MLP(2 * dim + 2 * emb, 3 * dim, hidden, depth) if depth > 0 and steps else None
        self.drift_net = MLP(2 * dim + 2 * emb, 2 * dim, hidden, depth) if depth > 0 and steps else None
        self.log_eps = nn.Parameter(torch.full((max(steps, 1), dim), math.log(step_size)))
        self.log_final = nn.Parameter(torch.full((dim,), math.log(final_std)))
        self._emb = emb

    # -- pieces --------------------------------------------------------------------------------
    @property
    def final_std(self) -> Tensor:
        """``σ`` of the Brownian step, per dimension."""
        return self.scale * self.log_final.exp()

    def step_sizes(self) -> Tensor:
        """``[K, dim]`` trainable positive step sizes."""
        return self.log_eps.exp()[: self.steps]

    def start(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(x⁰, v⁰)`` from the latent."""
        x, v = self.lin_x(z), self.lin_v(z)
        if self.init_net is not None:
            dx, dv = self.init_net(z).chunk(2, -1)
            x, v = x + dx, v + dv
        return self.loc + self.scale * x, v

    def _features(self, a: Tensor, b: Tensor, k: int) -> Tensor:
        kk = torch.full((a.shape[0],), (k + 0.5) / max(self.steps, 1), dtype=a.dtype, device=a.device)
        return torch.cat([a, b, time_features(kk, 1.0, self._emb)], -1)

    def _kick(self, x: Tensor, v: Tensor, g: Tensor, eps: Tensor, k: int) -> Tensor:
        if self.kick_net is None:
            return v - 0.5 * eps * g
        out = self.kick_net(self._features(x / self.scale, torch.asinh(g * self.scale), k))
        s, q, t = out.chunk(3, -1)
        return v * torch.exp(0.5 * torch.tanh(s)) - 0.5 * eps * (g * torch.exp(0.5 * torch.tanh(q)) + t)

    def _drift(self, x: Tensor, v: Tensor, eps: Tensor, k: int) -> Tensor:
        if self.drift_net is None:
            return x + eps * v
        q, t = self.drift_net(self._features(x / self.scale, v, k)).chunk(2, -1)
        return x + eps * (v * torch.exp(torch.tanh(q)) + t * self.scale)

    # -- the map -------------------------------------------------------------------------------
    def mean(self, z: Tensor, grad: GradFn, create_graph: bool) -> Tensor:
        """``μ(z₀)``: the GHD trajectory's end after the Langevin step's drift (``K + 1`` gradient evaluations)."""
        x, v = self.start(z)
        g = soft_clip(grad(x, create_graph), self.grad_clip)
        eps_all = self.step_sizes()
        for k in range(self.steps):
            eps = eps_all[k]
            v = self._kick(x, v, g, eps, k)
            x = self._drift(x, v, eps, k)
            g = soft_clip(grad(x, create_graph), self.grad_clip)
            v = self._kick(x, v, g, eps, k)
        return x - 0.5 * self.final_std.pow(2) * g

    def log_prob(self, x: Tensor, mean: Tensor) -> Tensor:
        """``log N(x; mean, diag σ²)`` per row."""
        std = self.final_std
        r = (x - mean) / std
        return -0.5 * r.pow(2).sum(-1) - std.log().sum() - 0.5 * self.dim * math.log(2 * math.pi)
