"""Evaluation stage: the configured metrics (ΔT per statistic always among them) and the test NLL by AIS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.config import ConfigError, Entry
from hebm_core.energy import EnergyModel
from hebm_core.metrics import Metric
from hebm_core.models import GaussianEnergy
from hebm_core.registry import lookup
from hebm_core.runs.build import Experiment, accepts, call_factory
from hebm_core.samplers import AIS, HMC, nll_from_log_z
from hebm_core.tree import Sample

__all__ = ["build_metrics", "evaluate", "log_likelihood", "delta_t_of"]


def build_metrics(exp: Experiment, metrics: list[Entry] | None = None) -> list[Metric]:
    """The metrics named in ``[evaluate] metrics`` (the plugin's and the core's), with the core's
    ``delta_t`` first when they do not name it: ΔT per statistic is always computed, against the
    training data too when a test split exists."""
    items = list(exp.config.evaluate.metrics if metrics is None else metrics)
    if not any(m.name == "delta_t" for m in items):
        items.insert(0, Entry("delta_t"))
    table = exp.plugin.all_metrics()
    built: list[Metric] = []
    for item in items:
        factory = lookup(table, item.name, "metric", exp.plugin.name)
        opts = {**item.options, "bundle": exp.bundle} if accepts(factory, "bundle") else dict(item.options)
        built.append(
            call_factory("metric", item.name, factory, exp.eval_statistics, internal=("statistics", "bundle"), **opts)
        )
    return built


def evaluate(samples: Sample, exp: Experiment, metrics: list[Metric] | None = None) -> dict[str, float]:
    """Every metric of ``metrics`` (default: :func:`build_metrics`) on ``samples`` against the reference data.

    ΔT covers the trained statistics, ``[evaluate] statistics`` and the plugin's default
    statistics, so a vanilla model reports ΔT for the statistics a hybrid model would use.
    """
    built = build_metrics(exp) if metrics is None else metrics
    samples = tree.to_device(samples, "cpu")
    reference = tree.to_device(exp.reference, "cpu")
    out: dict[str, float] = {}
    for m in built:
        try:
            m.update(samples, reference)
            out.update(m.compute())
        except (ValueError, RuntimeError) as exc:  # e.g. an MMD of one sample
            raise ConfigError(f"metric {getattr(m, 'name', type(m).__name__)!r} cannot be computed: {exc}") from None
    return out


def delta_t_of(metrics: Mapping[str, float]) -> dict[str, float]:
    """``{statistic: ΔT}`` from a metrics dict."""
    return {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("delta_t/")}


def log_likelihood(
    model: EnergyModel, exp: Experiment, n_chains: int = 256, n_temps: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Test-set NLL (nats, bits/dim) of a model on flat-able tensor data, with log Z from AIS.

    AIS runs HMC from a diagonal Gaussian fitted to the training data (std widened 1.5×) to the
    model; a noise-conditional model is evaluated at the smallest training σ, i.e. as the density of
    data blurred by that σ. The report carries AIS's spread (bootstrap standard error, ESS).
    """
    train, ref = exp.bundle.train, exp.reference
    if not isinstance(train, Tensor):
        raise ConfigError("log-likelihood by AIS needs tensor samples; this dataset's samples are structured")
    device = next(model.parameters(), torch.empty(0)).device
    shape = train.shape[1:]
    flat = train.flatten(1).double()
    std = (flat.std(0) * 1.5).clamp_min(1e-3)
    base = GaussianEnergy(flat.mean(0), torch.diag(std.pow(-2))).to(device)
    sigmas = exp.training_sigmas
    sigma = float(sigmas[-1]) if sigmas is not None and getattr(model, "noise_conditional", False) else None

    def energy(x: Tensor, sig: Tensor | None = None) -> Tensor:
        return model(x.view(-1, *shape), sig)

    gen = torch.Generator(device=device).manual_seed(seed)
    ais = AIS(n_temps=n_temps, n_chains=n_chains, kernel=HMC(step_size=0.1, n_leapfrog=5))
    res = ais.estimate(energy, base.float(), sigma=sigma, generator=gen)
    out = nll_from_log_z(energy, ref.flatten(1).to(device), res.log_z, sigma)
    return {**out, "ais": res.to_dict(), "sigma": sigma, "base": "diagonal Gaussian fitted to train data, std x1.5"}
