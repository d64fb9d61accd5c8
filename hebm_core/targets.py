"""Targets for data-free sampling: an energy ``U(x)`` with ``p(x) ∝ exp(−U(x))`` and no samples,
plus what evaluating a sampler on it needs (exact samples or a reference, a known log Z)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hebm_core.energy import EnergyFn

__all__ = ["Target", "checkpoint_target"]


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


def _at_sigma(model: EnergyFn, sigma: float | None) -> EnergyFn:
    """``model`` as ``U(x)``: a noise-conditional model evaluated at its smallest training σ."""
    if sigma is None:
        return lambda x, s=None: model(x)
    return lambda x, s=None: model(x, torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device))


def _statistic_metrics(statistics: list, data: Tensor) -> dict[str, Callable[[Tensor, Tensor | None], float]]:
    """Per statistic: ``t/<name>``, the samples' E[T] (mean over components; weighted when weights are
    given), to compare samplers of the same model, and ``delta_t/<name>`` = |E_samples[T] − E_data[T]|."""
    out: dict[str, Callable[[Tensor, Tensor | None], float]] = {}
    for stat in statistics:
        with torch.no_grad():
            data_mean = stat(data).double().mean(0)

        def mean(x: Tensor, w: Tensor | None, stat=stat) -> Tensor:
            with torch.no_grad():
                t = stat(x).double()
            return t.mean(0) if w is None else (w.double()[:, None] * t).sum(0) / w.double().sum()

        out[f"t/{stat.name}"] = lambda x, w, mean=mean: float(mean(x, w).mean())
        out[f"delta_t/{stat.name}"] = lambda x, w, mean=mean, d=data_mean: float((mean(x, w) - d).abs().mean())
    return out


def checkpoint_target(path: str | Path, device: str = "cpu") -> Target:
    """A trained hebm run as a target: ``U`` is its model (EMA weights, calibrated η) at its smallest
    training noise level; the reference is the run's reference data (a trained model is only close to
    it, so distances to it measure model and sampler together), and the metrics are ΔT of the run's
    evaluated statistics against that data. Flat ``[B, dim]`` samples only."""
    from hebm_core.edg.train import frozen
    from hebm_core.options import ConfigError
    from hebm_core.runs.checkpoints import load_run
    from hebm_core.tree import state_leaves

    exp, model = load_run(path, device)
    leaves = state_leaves(exp.example)
    data = exp.reference
    if len(leaves) != 1 or leaves[0].dim() != 2 or not isinstance(data, Tensor):
        raise ConfigError(f"{path}: a checkpoint target needs flat [B, dim] samples; this run's are structured")
    dim = int(leaves[0].shape[1])
    sigma = exp.density_sigma
    model = frozen(model)
    data = data.to(device).float()

    def reference(n: int, generator: torch.Generator) -> Tensor:
        idx = torch.randperm(data.shape[0], generator=generator)[: min(n, data.shape[0])]
        return data[idx.to(data.device)]

    scale = float(data.std(0).mean()) if data.shape[0] > 1 else 1.0
    return Target(
        name=f"checkpoint-{Path(path).parent.name or Path(path).stem}",
        energy=_at_sigma(model, sigma),
        dim=dim,
        reference=reference,
        scale=scale,
        metrics=_statistic_metrics(exp.eval_statistics, data),
        info={"checkpoint": str(path), "sigma": sigma, "plugin": exp.plugin.name, "reference_rows": data.shape[0]},
    )
