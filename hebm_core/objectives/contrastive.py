"""Contrastive objectives: CD-k, persistent CD with a replay buffer, and noise-contrastive estimation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils import _pytree as pytree

from hebm_core import tree
from hebm_core.energy import EnergyFn
from hebm_core.objectives.base import Objective, ObjectiveOutput
from hebm_core.options import check_int, check_number
from hebm_core.samplers.base import Sampler
from hebm_core.samplers.langevin import Langevin
from hebm_core.tree import Sample

__all__ = ["ContrastiveDivergence", "PersistentContrastiveDivergence", "NoiseContrastiveEstimation", "GaussianNoise"]


class ContrastiveDivergence(Objective):
    """CD-k: negatives from ``k`` sampler steps started at the data batch.

    Loss ``E(x⁺) − E(x⁻) + α (E(x⁺)² + E(x⁻)²)``; the α term (Du & Mordatch 2019) keeps energies
    bounded. The sampler's chains carry no gradient to the parameters.
    """

    def __init__(
        self,
        k: int = 10,
        step_size: float = 1e-2,
        sampler: Sampler | None = None,
        alpha: float = 0.0,
        sigma: float | None = None,
        **kw,
    ) -> None:
        super().__init__(**kw)
        self.sampler = sampler or Langevin(step_size=step_size, n_steps=k, space=self.space)
        self.alpha = check_number("cd", "alpha", alpha, 0)
        self.sigma = None if sigma is None else check_number("cd", "sigma", sigma, 0, open_low=True)

    def start(self, x: Sample) -> Sample:
        """Where negative chains start: the data batch itself for CD-k."""
        return x

    def finish(self, x_neg: Sample) -> None:
        """Hook for persistent chains to store their end points."""

    def forward(self, model: EnergyFn, x: Sample) -> ObjectiveOutput:
        sig = (
            None
            if self.sigma is None
            else torch.full((tree.batch_size(x),), self.sigma, device=tree.state_leaves(x)[0].device)
        )
        x0 = self.start(x)
        x_neg = self.sampler.run(model, x0, sig)
        self.finish(x_neg)
        b = tree.batch_size(x)
        energies = model(tree.cat([x, x_neg]), None if sig is None else torch.cat([sig, sig]))
        e_pos, e_neg = energies[:b], energies[b:]
        loss = e_pos.mean() - e_neg.mean()
        if self.alpha:
            loss = loss + self.alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        return ObjectiveOutput(
            loss,
            {"e_pos": float(e_pos.detach().mean()), "e_neg": float(e_neg.detach().mean()), "cd": float(loss.detach())},
        )


class PersistentContrastiveDivergence(ContrastiveDivergence):
    """PCD (Tieleman 2008) with a replay buffer (Du & Mordatch 2019).

    Negatives continue chains drawn from a buffer of ``buffer_size`` points; each drawn chain is
    re-initialised from noise with probability ``reinit_prob``. The buffer starts as noise
    ``init_std · N(0, I)`` (in the objective's space) and is saved in checkpoints.
    """

    def __init__(self, buffer_size: int = 10000, reinit_prob: float = 0.05, init_std: float = 1.0, **kw) -> None:
        super().__init__(**kw)
        self.buffer_size = check_int("pcd", "buffer_size", buffer_size, 1, 10_000_000)
        self.reinit_prob = check_number("pcd", "reinit_prob", reinit_prob, 0, 1)
        self.init_std = check_number("pcd", "init_std", init_std, 0, open_low=True)
        self._spec = None
        self._idx: Tensor | None = None

    def _noise(self, like: Sample) -> Sample:
        return tree.tree_map(lambda n: n * self.init_std, self.space.noise_like(like))

    def setup(self, example: Sample) -> None:
        n = tree.batch_size(example)
        reps = math.ceil(self.buffer_size / n)
        like = tree.index(tree.cat([example] * reps), slice(0, self.buffer_size))
        leaves, self._spec = pytree.tree_flatten(self._noise(like))
        self._n_leaves = len(leaves)
        for i, leaf in enumerate(leaves):
            self.register_buffer(f"buffer_{i}", leaf.detach().clone())

    @property
    def buffer(self) -> Sample:
        if self._spec is None:
            raise RuntimeError("PersistentContrastiveDivergence.setup(example) must run before training")
        leaves = [getattr(self, f"buffer_{i}") for i in range(self._n_leaves)]
        return pytree.tree_unflatten(leaves, self._spec)

    def start(self, x: Sample) -> Sample:
        b = tree.batch_size(x)
        buf = self.buffer
        device = tree.state_leaves(buf)[0].device
        self._idx = torch.randint(0, self.buffer_size, (b,), device=device)
        chains = tree.index(buf, self._idx)
        reinit = torch.rand(b, device=device) < self.reinit_prob
        return tree.where(reinit, self._noise(chains), chains)

    def finish(self, x_neg: Sample) -> None:
        leaves = pytree.tree_leaves(x_neg)
        for i, leaf in enumerate(leaves):
            getattr(self, f"buffer_{i}")[self._idx] = leaf.detach()


class GaussianNoise(nn.Module):
    """NCE noise: a diagonal Gaussian, fitted to the data's mean and std unless given."""

    def __init__(self, mean: Tensor | None = None, std: Tensor | None = None, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = float(scale)
        self.register_buffer("mean", None if mean is None else torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", None if std is None else torch.as_tensor(std, dtype=torch.float32))

    def fit(self, x: Tensor) -> None:
        if self.mean is None:
            self.mean = x.mean(0).detach().clone()
        if self.std is None:
            self.std = (x.std(0) * self.scale).clamp_min(1e-3).detach().clone()

    def sample(self, n: int) -> Tensor:
        return self.mean + self.std * torch.randn(n, *self.mean.shape, device=self.mean.device)

    def log_prob(self, x: Tensor) -> Tensor:
        z = (x - self.mean) / self.std
        return (-0.5 * z.pow(2) - torch.log(self.std) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)


class NoiseContrastiveEstimation(Objective):
    """NCE (Gutmann & Hyvärinen 2010) with a learned log-normaliser ``log Z``.

    The model's log density is ``-E(x) - log Z``; logistic regression separates data from
    ``ratio`` × as many noise samples. ``noise`` is any module with ``sample(n)`` and
    ``log_prob(x)`` (and optionally ``fit(x)``); the default is a diagonal Gaussian fitted to the
    data with its std widened by ``noise_scale`` (settable from a config file).
    At the optimum ``log Z`` is the model's true log-partition function.
    """

    def __init__(
        self,
        noise: nn.Module | None = None,
        ratio: float = 1.0,
        noise_scale: float = 1.0,
        sigma: float | None = None,
        **kw,
    ) -> None:
        super().__init__(**kw)
        check_number("nce", "ratio", ratio, 0, 1000, open_low=True)
        check_number("nce", "noise_scale", noise_scale, 0, open_low=True)
        self.noise = noise or GaussianNoise(scale=noise_scale)
        self.ratio, self.sigma = float(ratio), sigma
        self.log_z = nn.Parameter(torch.zeros(()))

    def setup(self, example: Sample) -> None:
        if hasattr(self.noise, "fit"):
            self.noise.fit(example)

    def forward(self, model: EnergyFn, x: Tensor) -> ObjectiveOutput:
        b = x.shape[0]
        m = max(1, round(self.ratio * b))
        y = self.noise.sample(m).to(x.dtype)
        both = torch.cat([x, y])
        sig = None if self.sigma is None else torch.full((b + m,), self.sigma, device=x.device)
        log_pm = -model(both, sig) - self.log_z
        g = log_pm - self.noise.log_prob(both) - math.log(m / b)
        g_pos, g_neg = g[:b], g[b:]
        loss = -(F.logsigmoid(g_pos).mean() + (m / b) * F.logsigmoid(-g_neg).mean())
        acc = 0.5 * (float((g_pos > 0).float().mean()) + float((g_neg < 0).float().mean()))
        return ObjectiveOutput(
            loss, {"nce": float(loss.detach()), "accuracy": acc, "log_z": float(self.log_z.detach())}
        )
