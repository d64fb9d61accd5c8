"""Sampling stage: one :class:`SamplingPlan` per run, built before training (so bad options fail
early) and used for every draw: the calibration's rounds, the run's samples, a checkpoint's."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from hebm_core import tree
from hebm_core.config import ConfigError, SamplerConfig
from hebm_core.diagnostics import diagnose, ksd
from hebm_core.energy import EnergyModel
from hebm_core.registry import lookup
from hebm_core.runs.build import Experiment, accepts, call_factory
from hebm_core.samplers import Sampler
from hebm_core.training import seed_everything
from hebm_core.tree import Sample

__all__ = ["SamplingPlan", "RunawayError", "start_points", "data_bounds", "KSD_SAMPLES"]

#: at most this many samples enter the report's kernel Stein discrepancy (its cost is quadratic)
KSD_SAMPLES = 1000


class RunawayError(RuntimeError):
    """Chains ran off (``[sampler] strict``); one line."""


def data_bounds(exp: Experiment, factor: float) -> list[tuple[float, float]] | None:
    """Per state leaf of the data, ``(center, limit)``: a sample whose coordinates leave
    ``|x − center| <= limit`` has run off, with ``limit = factor ×`` the largest deviation of the
    training data from its mean (``None`` when ``factor`` is 0: no check)."""
    if not factor:
        return None
    bounds = []
    for leaf in tree.state_leaves(exp.bundle.training_subset(10000)):
        flat = leaf.detach().double()
        center = float(flat.mean())
        spread = float((flat - center).abs().max())
        bounds.append((center, factor * max(spread, 1e-6)))
    return bounds


def _ran_off(samples: Sample, bounds: list[tuple[float, float]] | None) -> int:
    """Chains with a coordinate outside the bounds, or not finite."""
    if bounds is None:
        return 0
    bad = None
    for leaf, (center, limit) in zip(tree.state_leaves(samples), bounds):
        far = ~((leaf.detach().double() - center).abs() <= limit)  # NaN counts as far
        far = far.flatten(1).any(1) if far.dim() > 1 else far
        bad = far if bad is None else bad | far
    return int(bad.sum()) if bad is not None else 0


def start_points(exp: Experiment, n: int, sigma: float) -> Sample:
    """Chain starts: the plugin's prior, else ``sigma`` × noise in the data's space."""
    if exp.plugin.prior is not None:
        return exp.plugin.prior(n, exp.bundle, sigma)
    b = tree.batch_size(exp.example)
    like = tree.index(exp.example, torch.arange(n) % b)
    return tree.tree_map(lambda z: z * sigma, exp.bundle.space.noise_like(like))


@dataclass
class SamplingPlan:
    """A constructed sampler and how to run it: ``n`` samples in batches of ``batch_size`` (``None``:
    all at once) from chains started at scale ``init_sigma``, at noise level ``sigma`` (``None``
    unless a sampler without its own levels runs on a noise-conditional model)."""

    config: SamplerConfig
    sampler: Sampler
    options: dict[str, Any]
    init_sigma: float
    sigma: float | None
    seed: int
    bounds: list[tuple[float, float]] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def n(self) -> int:
        return self.config.n_samples

    @classmethod
    def build(cls, exp: Experiment, config: SamplerConfig | None = None) -> SamplingPlan:
        """The sampler of ``config`` (default: the run's ``[sampler]``) with its noise levels and chain starts.

        A sampler that takes ``sigmas`` and got none uses the objective's training levels (largest
        first). Other samplers on a noise-conditional model run at the smallest training σ. Chains
        start at scale ``init_sigma``: the sampler's largest σ, else the largest training σ, else 1.
        """
        config = config or exp.config.sampler
        options = dict(config.options)
        cls_ = lookup(exp.plugin.all_samplers(), config.name, "sampler")
        train_sigmas = exp.training_sigmas
        if accepts(cls_, "sigmas") and "sigmas" not in options:
            if train_sigmas is None:
                raise ConfigError(
                    f"sampler {config.name!r} needs 'sigmas' in [sampler]: the objective has no noise levels to reuse"
                )
            options["sigmas"] = train_sigmas.tolist()
        sampler = call_factory("sampler", config.name, cls_, internal=("space",), space=exp.bundle.space, **options)
        if getattr(sampler, "trace_every", 0) and getattr(sampler, "trace_stat", None) is None:
            sampler.trace_stat = _stacked(exp.eval_statistics)  # R-hat and ESS per statistic of the run
        own = getattr(sampler, "sigmas", None)
        run_sigma: float | None = None
        if own is None and getattr(exp.model, "noise_conditional", False):
            if train_sigmas is None:
                raise ConfigError("the model is noise-conditional but the objective has no noise levels to sample at")
            run_sigma = float(train_sigmas[-1])
        init = config.init_sigma
        if init is None:
            init = float(max(own)) if own is not None else float(train_sigmas[0]) if train_sigmas is not None else 1.0
        bounds = data_bounds(exp, config.runaway_factor)
        return cls(config, sampler, options, float(init), run_sigma, exp.config.train.seed, bounds)

    def draw(
        self,
        model: EnergyModel,
        exp: Experiment,
        n: int | None = None,
        device: torch.device | str | None = None,
        diagnose: bool = True,
    ) -> tuple[Sample, dict[str, Any]]:
        """Draw ``n`` samples (default ``n_samples``) from ``model``; returns them (on the CPU) and the timing.

        The random state is reseeded with the run's seed first, so every draw with the same plan
        starts from the same chains (sampling from a checkpoint repeats the run's samples, and
        calibration rounds differ by η, not by noise). The result goes through ``plugin.finalize``
        when the plugin has one (timed with the sampling). ``diagnose`` adds :meth:`diagnostics`.
        """
        count = self.n if n is None else int(n)
        if count < 1:
            raise ConfigError(f"the number of samples must be positive, got {count}")
        batch = self.config.batch_size or count
        device = torch.device(device) if device is not None else next(model.parameters(), torch.empty(0)).device
        model = model.to(device).eval()
        seed_everything(self.seed)
        _sync(device)
        t0 = time.perf_counter()
        chunks, ran_off = [], 0
        for start in range(0, count, batch):
            x0 = tree.to_device(start_points(exp, min(batch, count - start), self.init_sigma), device)
            chunks.append(tree.to_device(self.sampler.run(model, x0, self.sigma), "cpu"))
            ran_off += _ran_off(chunks[-1], self.bounds)
        raw = chunks[0] if len(chunks) == 1 else tree.cat(chunks)
        if ran_off and self.config.strict:
            raise RunawayError(f"{self.name}: {ran_off} of {count} chains {self._ran_off_rule()} ([sampler] strict)")
        samples = raw
        if exp.plugin.finalize is not None:
            samples = exp.plugin.finalize(samples, exp.bundle)
        _sync(device)
        wall = time.perf_counter() - t0
        info = self._info(count, batch, wall, device)
        if diagnose:  # the KSD costs a score pass and n² kernel terms: not for draws whose info is dropped
            info["diagnostics"] = self.diagnostics(model, raw, device)
        if self.bounds is not None:
            info["ran_off"] = ran_off
            if ran_off:
                info["note"] = (
                    f"{ran_off} of {count} chains {self._ran_off_rule()}; [sampler] strict = true makes this an error"
                )
        return samples, info

    def diagnostics(self, model: EnergyModel, raw: Sample, device: torch.device) -> dict[str, Any]:
        """Chain diagnostics for the report: the sampler's acceptance, its recorded trace's split
        R-hat / bulk ESS per statistic and energy (``[sampler] trace_every`` > 0 on a sampler that
        records one; the last batch), and the kernel Stein discrepancy of up to :data:`KSD_SAMPLES`
        raw samples against the model's score at the final noise level (tensor samples only)."""
        out: dict[str, Any] = {}
        stats = getattr(self.sampler, "last_stats", {}) or {}
        if "acceptance" in stats:
            out["acceptance"] = stats["acceptance"]
        trace = getattr(self.sampler, "last_trace", None)
        if trace is not None:
            out["trace"] = diagnose(trace)
        else:
            out["trace"] = (
                "not recorded: set [sampler] trace_every > 0 on a sampler that records traces (mala, hmc, ...)"
            )
        if isinstance(raw, torch.Tensor) and raw.dim() >= 2 and raw.shape[0] >= 2:
            x = raw[:KSD_SAMPLES].to(device)
            own = getattr(self.sampler, "sigmas", None)
            sig = self.sigma if own is None else float(min(own))
            sig = sig if getattr(model, "noise_conditional", False) else None
            out["ksd"] = ksd(x, model, sigma=sig)
            out["ksd_note"] = (
                f"IMQ kernel Stein discrepancy of {x.shape[0]} samples against the model's score"
                + (f" at sigma={sig:.4g}" if sig is not None else "")
                + ": ~n^-1/2 for exact samples of the model, larger when the chains have not converged"
            )
        else:
            out["ksd"] = None
            out["ksd_note"] = "not computed: structured samples have no single Euclidean score"
        return out

    def _ran_off_rule(self) -> str:
        factor = self.config.runaway_factor
        return (
            f"ran off (a coordinate over {factor:g}× the data's largest deviation from its mean, or not finite); "
            "lower the step size"
        )

    def _info(self, count: int, batch: int, wall: float, device: torch.device) -> dict[str, Any]:
        return {
            "sampler": self.name,
            "options": dict(self.options),
            "n_samples": count,
            "batch_size": batch,
            "init_sigma": self.init_sigma,
            "sigma": self.sigma,
            "wall_time_s": round(wall, 4),
            "samples_per_s": round(count / wall, 2) if wall > 0 else None,
            "device": str(device),
            "stats": dict(getattr(self.sampler, "last_stats", {}) or {}),
        }


def _stacked(statistics: list) -> Any:
    """The run's statistics as one ``x -> [B, k]`` map (``None`` when it has none)."""
    if not statistics:
        return None

    def stat(x: Sample) -> torch.Tensor:
        vals = [s(x) for s in statistics]
        return torch.cat([v.reshape(v.shape[0], -1) for v in vals], 1)

    return stat


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
