"""Concrete energies for flat vectors ``[B, D]``: analytic targets with known log Z, and an MLP.

The analytic ones are the known answers the test-suite measures objectives, samplers and AIS
against; the MLP is the default network of the toy domain.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hebm_core.energy import EnergyModel
from hebm_core.options import check_int

__all__ = ["GaussianEnergy", "GaussianMixtureEnergy", "MLPEnergy"]


class GaussianEnergy(EnergyModel):
    """``E(x) = ½ (x-μ)ᵀ P (x-μ)`` with precision ``P = L Lᵀ``; closed-form score and log Z.

    With ``learnable=True`` the mean and the Cholesky factor of the precision are parameters (the
    diagonal through a softplus), which is what the objective tests fit.
    """

    def __init__(
        self,
        mean: Tensor | None = None,
        precision: Tensor | None = None,
        dim: int | None = None,
        learnable: bool = False,
    ) -> None:
        super().__init__()
        if mean is None:
            if dim is None:
                raise ValueError("GaussianEnergy needs a mean or a dim")
            mean = torch.zeros(dim)
        mean = torch.as_tensor(mean, dtype=torch.get_default_dtype())
        d = mean.shape[-1]
        if precision is None:
            precision = torch.eye(d)
        precision = torch.as_tensor(precision, dtype=mean.dtype)
        if precision.shape != (d, d):
            raise ValueError(f"precision must be [{d},{d}], got {tuple(precision.shape)}")
        chol = torch.linalg.cholesky(precision)
        if learnable:
            self.mean = nn.Parameter(mean.clone())
            self.chol_offdiag = nn.Parameter(torch.tril(chol, -1))
            self.chol_diag_raw = nn.Parameter(torch.log(torch.expm1(torch.diagonal(chol))))
        else:
            self.register_buffer("mean", mean.clone())
            self.register_buffer("chol_offdiag", torch.tril(chol, -1))
            self.register_buffer("chol_diag_raw", torch.log(torch.expm1(torch.diagonal(chol))))

    @property
    def chol(self) -> Tensor:
        return torch.tril(self.chol_offdiag, -1) + torch.diag(F.softplus(self.chol_diag_raw))

    @property
    def precision(self) -> Tensor:
        chol = self.chol
        return chol @ chol.T

    @property
    def covariance(self) -> Tensor:
        return torch.cholesky_inverse(self.chol)

    def energy(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        z = (x - self.mean) @ self.chol
        return 0.5 * z.pow(2).sum(-1)

    def energy_and_score(self, x, sigma=None, create_graph=False):
        if create_graph:
            return super().energy_and_score(x, sigma, create_graph)
        with torch.no_grad():
            diff = x - self.mean
            pd = diff @ self.precision
            return 0.5 * (pd * diff).sum(-1), -pd

    def log_partition(self) -> Tensor:
        """Exact ``log ∫ exp(-E)``: ``D/2 log 2π − ½ log det P``."""
        d = self.mean.shape[-1]
        return 0.5 * d * math.log(2 * math.pi) - torch.log(torch.diagonal(self.chol)).sum()

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(n, self.mean.shape[-1], generator=generator, device=self.mean.device)
        # x = μ + L^{-T} ε has covariance (L Lᵀ)^{-1} = P^{-1}
        return self.mean + torch.linalg.solve_triangular(self.chol.T, eps.T, upper=True).T


class GaussianMixtureEnergy(EnergyModel):
    """Normalised mixture of isotropic Gaussians: ``E(x) = -log Σ_k w_k N(x; μ_k, s_k² I)``, so log Z = 0."""

    def __init__(self, means: Tensor, stds: Tensor | float, weights: Tensor | None = None) -> None:
        super().__init__()
        means = torch.as_tensor(means, dtype=torch.get_default_dtype())
        k = means.shape[0]
        stds = torch.as_tensor(stds, dtype=means.dtype).expand(k).clone()
        weights = torch.full((k,), 1.0 / k) if weights is None else torch.as_tensor(weights, dtype=means.dtype)
        if torch.any(weights < 0) or not torch.isclose(weights.sum(), torch.tensor(1.0, dtype=weights.dtype)):
            raise ValueError("mixture weights must be non-negative and sum to 1")
        self.register_buffer("means", means)
        self.register_buffer("stds", stds)
        self.register_buffer("weights", weights)

    def component_log_prob(self, x: Tensor) -> Tensor:
        """``log w_k + log N(x; μ_k, s_k²)`` for every component: ``[B, K]``."""
        d = self.means.shape[-1]
        sq = torch.cdist(x, self.means).pow(2)
        var = self.stds.pow(2)
        return torch.log(self.weights) - 0.5 * sq / var - 0.5 * d * torch.log(2 * math.pi * var)

    def energy(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        return -torch.logsumexp(self.component_log_prob(x), -1)

    def assign(self, x: Tensor) -> Tensor:
        """Most likely component of each point."""
        return self.component_log_prob(x).argmax(-1)

    def log_partition(self) -> Tensor:
        return torch.zeros((), device=self.means.device)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[-1], generator=generator, device=self.means.device)
        return self.means[k] + self.stds[k, None] * eps


class MLPEnergy(EnergyModel):
    """Smooth MLP energy on ``[B, D]``, optionally noise-conditional.

    Noise conditioning follows NCSNv2: the network sees ``log σ`` and its energy is divided by
    ``σ``, so the score scales as ``1/σ`` across a geometric noise schedule. SiLU keeps second
    derivatives non-zero, which exact and sliced score matching need.
    """

    #: the largest width and depth accepted (a typo must not build a network that fills the memory)
    MAX_HIDDEN, MAX_DEPTH = 16_384, 64

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, noise_conditional: bool = True) -> None:
        super().__init__()
        check_int("MLPEnergy", "dim", dim, 1, 1_000_000)
        check_int("MLPEnergy", "hidden", hidden, 1, self.MAX_HIDDEN)
        check_int("MLPEnergy", "depth", depth, 0, self.MAX_DEPTH)
        self.noise_conditional = bool(noise_conditional)
        layers: list[nn.Module] = []
        width = dim + (1 if noise_conditional else 0)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def energy(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        if not self.noise_conditional:
            return self.net(x).squeeze(-1)
        if sigma is None:
            raise ValueError(
                "this MLPEnergy is noise-conditional: pass sigma (use the smallest training σ for clean data)"
            )
        sigma = sigma.reshape(-1, 1).to(x.dtype).expand(x.shape[0], 1)
        h = torch.cat([x, sigma.log()], -1)
        return self.net(h).squeeze(-1) / sigma.squeeze(-1)
