"""From a resolved configuration to a report: build, train, sample, evaluate, write.

Every name is looked up in a dict registry (the plugin's datasets/models/statistics/metrics,
``OBJECTIVES``, ``SAMPLERS``); nothing here knows about a particular domain, so the molecule,
point-cloud and image plugins run through the same functions as the toy one.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import os
import platform
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import hebm_core
from hebm_core import tree
from hebm_core.calibration import (
    CALIBRATION_METHODS,
    RUNAWAY,
    Progress,
    Round,
    curvature,
    median_of_means,
    step_kl,
    within_kl,
)
from hebm_core.checkpoint import CheckpointError, load_checkpoint
from hebm_core.config import ConfigError, entry, get_registry, section, validate
from hebm_core.data import DataBundle
from hebm_core.energy import EnergyModel
from hebm_core.hybrid import HybridEnergy
from hebm_core.metrics import Metric, StatisticGap
from hebm_core.models import GaussianEnergy
from hebm_core.objectives import OBJECTIVES, Objective
from hebm_core.registry import Plugin, PluginRegistry, lookup
from hebm_core.samplers import AIS, HMC, SAMPLERS, Sampler, SamplerDivergenceError, nll_from_log_z
from hebm_core.statistics import Moments, Statistic
from hebm_core.trainer import TrainConfig, Trainer, load_model_state, resolve_device, seed_everything
from hebm_core.tree import Sample

__all__ = [
    "Components",
    "build",
    "call_factory",
    "train",
    "SamplingPlan",
    "plan_sampling",
    "draw_samples",
    "build_metrics",
    "evaluate",
    "run",
    "compare",
    "load_run",
    "sample_from_checkpoint",
    "evaluate_checkpoint",
    "write_json",
    "EXAMPLE_SIZE",
]

#: size of the example batch given to model factories and HybridEnergy
EXAMPLE_SIZE = 256
CALIBRATED_ETA = "calibrated_eta"  # checkpoint key of η after moment matching (the weights keep the trained η)


@dataclass
class Components:
    """Everything built from one configuration, before training."""

    config: dict[str, Any]
    plugin: Plugin
    bundle: DataBundle
    example: Sample
    statistics: list[Statistic]
    eval_statistics: list[Statistic]
    model: EnergyModel
    objective: Objective
    notes: list[str] = field(default_factory=list)

    @property
    def reference(self) -> Sample:
        """Data the metrics compare samples with: the test split if there is one."""
        return self.bundle.test if self.bundle.test is not None else self.bundle.train

    @property
    def training_sigmas(self) -> Tensor | None:
        """The objective's noise levels, largest first (``None`` if it uses none)."""
        s = getattr(self.objective, "sigmas", None)
        if not isinstance(s, Tensor) or s.numel() == 0:
            return None
        return s.detach().double().flatten().sort(descending=True).values.cpu()


# --------------------------------------------------------------------------- factories
def _accepted(factory: Callable[..., Any]) -> set[str] | None:
    """Keyword names ``factory`` accepts, or ``None`` when it takes ``**kwargs`` all the way down."""
    try:
        if isinstance(factory, type):
            names: set[str] = set()
            for klass in factory.__mro__:
                init = klass.__dict__.get("__init__")
                if init is None:
                    continue
                params = list(inspect.signature(init).parameters.values())[1:]
                names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
                if not any(p.kind is p.VAR_KEYWORD for p in params):
                    return names
            return None
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def accepts(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory`` names the keyword ``name`` (a bare ``**kwargs`` does not count)."""
    names = _accepted(factory)
    return names is not None and name in names


def call_factory(
    kind: str, name: str, factory: Callable[..., Any], *args: Any, internal: tuple[str, ...] = (), **options
):
    """``factory(*args, **options)``; an option it does not take or rejects is one :class:`ConfigError` line.

    ``internal`` names keywords the pipeline supplies itself (``example``, ``space``), which are
    not listed as user options.
    """
    known = _accepted(factory)
    if known is not None:
        unknown = sorted(set(options) - known)
        if unknown:
            allowed = ", ".join(sorted(known - set(internal))) or "none"
            raise ConfigError(
                f"bad option for {kind} {name!r}: unexpected {', '.join(map(repr, unknown))}; accepted: {allowed}"
            )
    try:
        return factory(*args, **options)
    except ConfigError:
        raise
    except TypeError as exc:
        raise ConfigError(f"bad option for {kind} {name!r}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"bad option for {kind} {name!r}: {exc}") from None


def _statistics(items: list[Any], plugin: Plugin, powers: dict[str, float] | None = None) -> list[Statistic]:
    """The plugin's statistics by config entry; ``moments = m`` (any entry) adds their powers up to m.

    ``sigma_power = p`` on an entry gives that statistic's hybrid term its own noise scaling; it is
    collected into ``powers`` (by statistic name), which only the hybrid's own statistics pass.
    """
    out = []
    for item in items:
        name, opts = entry(item, "statistic")
        orders = opts.pop("moments", None)
        power = opts.pop("sigma_power", None)
        stat = call_factory("statistic", name, lookup(plugin.statistics, name, "statistic", plugin.name), **opts)
        if orders is not None:
            if isinstance(orders, bool) or not isinstance(orders, int) or orders < 1:
                raise ConfigError(f"statistic {name!r}: moments must be an integer >= 1, got {orders!r}")
            stat = Moments(stat, orders)
        if power is not None:
            if powers is None:
                raise ConfigError(
                    f"statistic {name!r}: sigma_power scales a hybrid term; give it in the top-level statistics"
                )
            if isinstance(power, bool) or not isinstance(power, (int, float)) or power < 0:
                raise ConfigError(f"statistic {name!r}: sigma_power must be a number >= 0, got {power!r}")
            powers[stat.name] = float(power)
        out.append(stat)
    return out


def build(config: Mapping[str, Any], registry: PluginRegistry | None = None) -> Components:
    """Dataset, statistics, objective and model (seeded with ``train.seed``) from a config.

    A noise-conditional model is asked for when the objective feeds noise levels (DSM); otherwise
    ``noise_conditional=False`` goes to model factories that take it, unless the config sets it.
    """
    registry = registry or get_registry()
    cfg = validate(copy.deepcopy(dict(config)), registry)
    plugin = registry.get(cfg["plugin"])

    dname, dopts = section(cfg, "data")
    bundle = call_factory("dataset", dname, lookup(plugin.datasets, dname, "dataset", plugin.name), **dopts)
    if not isinstance(bundle, DataBundle):
        raise ConfigError(
            f"dataset {dname!r} of plugin {plugin.name!r} returned {type(bundle).__name__}, not a DataBundle"
        )
    bundle.info.setdefault("name", dname)
    n = tree.batch_size(bundle.train)
    example = tree.index(bundle.train, torch.arange(min(EXAMPLE_SIZE, n)))

    powers: dict[str, float] = {}
    statistics = _statistics(cfg.get("statistics", []), plugin, powers)
    eval_statistics = list(statistics)
    extra = list(cfg["evaluate"].get("statistics", [])) + list(plugin.default_config.get("statistics", []))
    for s in _statistics(_unique_entries(extra), plugin):
        if s.name not in {t.name for t in eval_statistics}:
            eval_statistics.append(s)

    oname, oopts = section(cfg, "objective")
    ocls = lookup(OBJECTIVES, oname, "objective")
    objective = call_factory("objective", oname, ocls, internal=("space",), space=bundle.space, **oopts)

    mname, mopts = section(cfg, "model")
    mfactory = lookup(plugin.models, mname, "model", plugin.name)
    if accepts(mfactory, "noise_conditional"):
        mopts.setdefault("noise_conditional", bool(getattr(ocls, "uses_noise_levels", False)))
    seed_everything(int(cfg["train"]["seed"]))
    base = call_factory("model", mname, mfactory, internal=("example",), example=example, **mopts)
    if not isinstance(base, EnergyModel):
        raise ConfigError(
            f"model {mname!r} of plugin {plugin.name!r} returned {type(base).__name__}, not an EnergyModel"
        )
    model = base
    if statistics:
        power = float(cfg.get("hybrid", {}).get("sigma_power", 0.0))
        sigmas = getattr(objective, "sigmas", None)
        scaled = power or any(powers.values())
        ref = float(sigmas.min()) if scaled and isinstance(sigmas, Tensor) and sigmas.numel() else 1.0
        denoised = bool(cfg.get("hybrid", {}).get("denoised", False))
        if denoised and not base.noise_conditional:
            raise ConfigError(
                f"[hybrid] denoised = true needs a noise-conditional model (x̂ = x + σ² s(x, σ)); "
                f"model {mname!r} with objective {oname!r} is not"
            )
        model = HybridEnergy(
            base, statistics, example=example, sigma_power=power, sigma_ref=ref, sigma_powers=powers, denoised=denoised
        )
    return Components(cfg, plugin, bundle, example, statistics, eval_statistics, model, objective)


def _unique_entries(items: list[Any]) -> list[Any]:
    seen, out = set(), []
    for item in items:
        name = entry(item, "statistic")[0]
        if name not in seen:
            seen.add(name)
            out.append(item)
    return out


def eta_of(model: torch.nn.Module) -> dict[str, Any]:
    """η per statistic (empty for a vanilla model)."""
    report = getattr(model, "eta_report", None)
    return report() if callable(report) else {}


# --------------------------------------------------------------------------- train / sample / evaluate
def train(
    comps: Components,
    out_dir: str | Path,
    resume: bool | str | Path = False,
    network_from: str | Path | None = None,
) -> tuple[Trainer, dict[str, Any]]:
    """Fit ``comps.model`` (``checkpoint.pt``, ``metrics.csv`` go to ``out_dir``); returns ``(trainer, summary)``.

    ``network_from``: the checkpoint of a vanilla run whose network a hybrid with η frozen at zero
    takes instead of training the same one again (see :meth:`Trainer.fit`; on one process); its
    ``metrics.csv`` is copied.
    """
    tc = TrainConfig.from_dict(dict(comps.config["train"]))
    trainer = Trainer(comps.model, comps.objective, comps.bundle.train, tc, out_dir=str(out_dir), spec=comps.config)
    if network_from is not None and trainer.world_size == 1 and not (resume and trainer.checkpoint_path.exists()):
        summary = trainer.fit(network_from=network_from)
        summary["network_from"] = str(network_from)
        log = Path(network_from).with_name(trainer.metrics_path.name)
        if log.exists() and not trainer.metrics_path.exists():
            shutil.copyfile(log, trainer.metrics_path)
    else:
        summary = trainer.fit(resume=resume)
    return trainer, summary


def _prior(comps: Components, n: int, sigma: float) -> Sample:
    """Chain starts: the plugin's prior, else ``sigma`` × noise in the data's space."""
    if comps.plugin.prior is not None:
        return comps.plugin.prior(n, comps.bundle, sigma)
    b = tree.batch_size(comps.example)
    like = tree.index(comps.example, torch.arange(n) % b)
    return tree.tree_map(lambda z: z * sigma, comps.bundle.space.noise_like(like))


@dataclass
class SamplingPlan:
    """A constructed sampler and how to run it (built before training, so bad options fail early)."""

    name: str
    sampler: Sampler
    n: int
    batch_size: int
    init_sigma: float
    sigma: float | None
    options: dict[str, Any]


def plan_sampling(
    comps: Components, n: int | None = None, sampler_config: Mapping[str, Any] | None = None
) -> SamplingPlan:
    """The sampler from ``[sampler]`` (or ``sampler_config``) with its noise levels and chain starts.

    A sampler that takes ``sigmas`` and got none uses the objective's training levels (largest
    first). Other samplers on a noise-conditional model run at the smallest training σ. Chains
    start at scale ``init_sigma``: the sampler's largest σ, else the largest training σ, else 1.
    """
    cfg = dict(sampler_config if sampler_config is not None else comps.config["sampler"])
    name = cfg.pop("name")
    count = int(n if n is not None else cfg.get("n_samples", 2000))
    cfg.pop("n_samples", None)
    batch = int(cfg.pop("batch_size", None) or count)
    init_sigma = cfg.pop("init_sigma", None)
    if count < 1:
        raise ConfigError(f"the number of samples must be positive, got {count}")
    cls = lookup(SAMPLERS, name, "sampler")
    train_sigmas = comps.training_sigmas
    if accepts(cls, "sigmas") and "sigmas" not in cfg:
        if train_sigmas is None:
            raise ConfigError(
                f"sampler {name!r} needs 'sigmas' in [sampler]: the objective has no noise levels to reuse"
            )
        cfg["sigmas"] = train_sigmas.tolist()
    sampler: Sampler = call_factory("sampler", name, cls, internal=("space",), space=comps.bundle.space, **cfg)

    own = getattr(sampler, "sigmas", None)
    run_sigma: float | None = None
    if own is None and getattr(comps.model, "noise_conditional", False):
        if train_sigmas is None:
            raise ConfigError("the model is noise-conditional but the objective has no noise levels to sample at")
        run_sigma = float(train_sigmas[-1])
    if init_sigma is None:
        if own is not None:
            init_sigma = float(max(own))
        elif train_sigmas is not None:
            init_sigma = float(train_sigmas[0])
        else:
            init_sigma = 1.0
    return SamplingPlan(name, sampler, count, batch, float(init_sigma), run_sigma, cfg)


def draw_samples(
    model: EnergyModel,
    comps: Components,
    n: int | None = None,
    sampler_config: Mapping[str, Any] | None = None,
    device: torch.device | str | None = None,
) -> tuple[Sample, dict[str, Any]]:
    """Draw ``n`` samples (default ``[sampler] n_samples``) from ``model`` as planned by :func:`plan_sampling`.

    Chains start from ``plugin.prior(n, bundle, init_sigma)`` (default: ``init_sigma`` × noise in the
    data's space); the result goes through ``plugin.finalize`` if the plugin has one (timed with the
    sampling). The random state is reseeded with ``train.seed``, so sampling from a checkpoint
    repeats the samples of the run. Returns the samples (on the CPU) and the timing.
    """
    plan = plan_sampling(comps, n, sampler_config)
    name, sampler, count, batch = plan.name, plan.sampler, plan.n, plan.batch_size
    init_sigma, run_sigma, cfg = plan.init_sigma, plan.sigma, plan.options

    device = torch.device(device) if device is not None else next(model.parameters(), torch.empty(0)).device
    model = model.to(device).eval()
    seed_everything(int(comps.config["train"]["seed"]))
    chunks = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for start in range(0, count, batch):
        m = min(batch, count - start)
        x0 = tree.to_device(_prior(comps, m, float(init_sigma)), device)
        chunks.append(tree.to_device(sampler.run(model, x0, run_sigma), "cpu"))
    samples = chunks[0] if len(chunks) == 1 else tree.cat(chunks)
    if comps.plugin.finalize is not None:
        samples = comps.plugin.finalize(samples, comps.bundle)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    info = {
        "sampler": name,
        "options": {k: v for k, v in cfg.items()},
        "n_samples": count,
        "batch_size": batch,
        "init_sigma": float(init_sigma),
        "sigma": run_sigma,
        "wall_time_s": round(wall, 4),
        "samples_per_s": round(count / wall, 2) if wall > 0 else None,
        "device": str(device),
        "stats": dict(getattr(sampler, "last_stats", {}) or {}),
    }
    return samples, info


def build_metrics(comps: Components, metrics: list[Any] | None = None) -> list[Metric]:
    """The plugin's metrics named in ``[evaluate] metrics``, plus ΔT (:class:`StatisticGap`) if not among them."""
    items = list(comps.config["evaluate"].get("metrics", []) if metrics is None else metrics)
    built: list[Metric] = []
    for item in items:
        name, opts = entry(item, "metric")
        factory = lookup(comps.plugin.metrics, name, "metric", comps.plugin.name)
        if accepts(factory, "bundle"):
            opts = {**opts, "bundle": comps.bundle}
        built.append(
            call_factory("metric", name, factory, comps.eval_statistics, internal=("statistics", "bundle"), **opts)
        )
    if not any(isinstance(m, StatisticGap) for m in built):
        # with a test split, also the gap to (a subset of) the training data that η is fitted on
        train = training_subset(comps) if comps.bundle.test is not None else None
        built.insert(0, StatisticGap(comps.eval_statistics, train=train))
    return built


def training_subset(comps: Components, max_n: int = 10000) -> Sample:
    """Up to ``max_n`` training samples: a seeded random subset (datasets may be sorted, as QM9 is
    by size). η's calibration targets their mean statistic; ΔT's training side uses the same."""
    pick = torch.randperm(tree.batch_size(comps.bundle.train), generator=torch.Generator().manual_seed(0))
    return tree.index(comps.bundle.train, pick[:max_n])


def evaluate(samples: Sample, comps: Components, metrics: list[Any] | None = None) -> dict[str, float]:
    """The configured metrics against the reference data, always including ΔT per statistic.

    ΔT covers the trained statistics, ``[evaluate] statistics`` and the plugin's default
    statistics, so a vanilla model reports ΔT for the statistics a hybrid model would use.
    """
    built = build_metrics(comps, metrics)
    samples = tree.to_device(samples, "cpu")
    reference = tree.to_device(comps.reference, "cpu")
    out: dict[str, float] = {}
    for m in built:
        m.update(samples, reference)
        out.update(m.compute())
    return out


def log_likelihood(
    model: EnergyModel,
    comps: Components,
    n_chains: int = 256,
    n_temps: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Test-set NLL (nats, bits/dim) of a model on flat-able tensor data, with log Z from AIS.

    AIS runs HMC from a diagonal Gaussian fitted to the training data (std widened 1.5×) to the
    model; a noise-conditional model is evaluated at the smallest training σ, i.e. as the density of
    data blurred by that σ. The report carries AIS's spread (bootstrap standard error, ESS).
    """
    train, ref = comps.bundle.train, comps.reference
    if not isinstance(train, Tensor):
        raise ConfigError("log-likelihood by AIS needs tensor samples; this dataset's samples are structured")
    device = next(model.parameters(), torch.empty(0)).device
    shape = train.shape[1:]
    flat = train.flatten(1).double()
    std = (flat.std(0) * 1.5).clamp_min(1e-3)
    base = GaussianEnergy(flat.mean(0), torch.diag(std.pow(-2))).to(device)
    sigmas = comps.training_sigmas
    sigma = float(sigmas[-1]) if sigmas is not None and getattr(model, "noise_conditional", False) else None

    def energy(x: Tensor, sig: Tensor | None = None) -> Tensor:
        return model(x.view(-1, *shape), sig)

    gen = torch.Generator(device=device).manual_seed(seed)
    ais = AIS(n_temps=n_temps, n_chains=n_chains, kernel=HMC(step_size=0.1, n_leapfrog=5))
    res = ais.estimate(energy, base.float(), sigma=sigma, generator=gen)
    out = nll_from_log_z(energy, ref.flatten(1).to(device), res.log_z, sigma)
    return {**out, "ais": res.to_dict(), "sigma": sigma, "base": "diagonal Gaussian fitted to train data, std x1.5"}


def delta_t_of(metrics: Mapping[str, float]) -> dict[str, float]:
    """``{statistic: ΔT}`` from a metrics dict."""
    return {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("delta_t/")}


def write_outputs(samples: Sample, comps: Components, out_dir: str | Path) -> tuple[list[str], list[str]]:
    """``plugin.write_samples`` (else ``samples.pt``); returns ``(paths, notes)`` with its warnings as notes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if comps.plugin.write_samples is not None:
            paths = [str(p) for p in comps.plugin.write_samples(samples, out, comps.bundle)]
        else:
            torch.save(samples, out / "samples.pt")
            paths = [str(out / "samples.pt")]
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    return paths, notes


# --------------------------------------------------------------------------- reports
def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.item() if obj.numel() == 1 else obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, (Path, torch.device, torch.dtype)):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write JSON atomically (temporary file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(_jsonable(data), f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def environment() -> dict[str, Any]:
    """Versions and time for reports."""
    return {
        "hebm_version": hebm_core.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _dataset_info(comps: Components) -> dict[str, Any]:
    info = dict(comps.bundle.info)
    info.setdefault("n_train", tree.batch_size(comps.bundle.train))
    if comps.bundle.test is not None:
        info.setdefault("n_test", tree.batch_size(comps.bundle.test))
    info["space"] = repr(comps.bundle.space)
    return info


def report(
    comps: Components,
    model: torch.nn.Module,
    summary: Mapping[str, Any] | None = None,
    sampling: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    files: list[str] | None = None,
    notes: list[str] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """The report dict (see :func:`run`)."""
    out: dict[str, Any] = {
        **environment(),
        "device": device or (summary or {}).get("device"),
        "config": comps.config,
        "dataset": _dataset_info(comps),
        "statistics": {
            "trained": [s.name for s in comps.statistics],
            "evaluated": [s.name for s in comps.eval_statistics],
        },
        "eta": eta_of(model),
    }
    if summary is not None:
        out["training"] = dict(summary)
    if sampling is not None:
        out["sampling"] = dict(sampling)
    if metrics is not None:
        out["metrics"] = dict(metrics)
        out["delta_t"] = delta_t_of(metrics)
    out["files"] = list(files or [])
    out["notes"] = list(comps.notes) + list(notes or [])
    return out


def run(
    config: Mapping[str, Any],
    out_dir: str | Path,
    resume: bool | str | Path = False,
    registry: PluginRegistry | None = None,
    train_only: bool = False,
    network_from: str | Path | None = None,
) -> dict[str, Any]:
    """Train, sample, evaluate; write ``report.json`` and the plugin's samples + picture to ``out_dir``.

    ``report.json`` holds the resolved config, dataset info, η per statistic, the training summary,
    sampling wall time and samples/s, the metrics (ΔT per statistic among them), the device, torch
    and hebm versions and a timestamp. Under ``torchrun`` only rank 0 samples and writes.
    ``network_from``: see :func:`train`.
    """
    out = Path(out_dir)
    comps = build(config, registry)
    if not train_only:  # a bad sampler or metric option should fail now, not after training
        plan_sampling(comps)
        build_metrics(comps)
    trainer, summary = train(comps, out, resume, network_from)
    model = trainer.sampling_model()
    if not trainer.is_main:  # under torchrun: rank 0 samples and writes
        return {"training": summary, "rank": trainer.rank}
    hyb = comps.config.get("hybrid", {})
    if not train_only and isinstance(model, HybridEnergy) and int(hyb.get("calibrate_rounds", 0)) > 0:
        # the weights keep the trained η (a resumed run calibrates again from it, with the same
        # result); the calibrated η goes under its own checkpoint key, which load_run applies
        trained = {k: v.detach().clone() for k, v in model.eta.items()}
        t0 = time.perf_counter()
        summary["eta_calibration"] = calibrate_configured(model, comps)
        summary["eta_calibration_time_s"] = round(time.perf_counter() - t0, 3)
        calibrated = {k: v.detach().clone().cpu() for k, v in model.eta.items()}
        with torch.no_grad():
            for k, v in trained.items():
                model.eta[k].copy_(v)
            trainer.save_checkpoint(elapsed_s=summary.get("total_train_time_s"), extra={CALIBRATED_ETA: calibrated})
            for k, v in calibrated.items():
                model.eta[k].copy_(v)
    if train_only:
        rep = report(comps, model, summary)
    else:
        samples, sampling = draw_samples(model, comps)
        metrics = evaluate(samples, comps)
        files, notes = write_outputs(samples, comps, out)
        rep = report(comps, model, summary, sampling, metrics, files, notes)
    rep["files"].append(str(out / "report.json"))
    write_json(out / "report.json", rep)
    return rep


def calibrate_configured(model: HybridEnergy, comps: Components) -> list[dict[str, Any]]:
    """:func:`calibrate_eta` with the config's ``[hybrid]`` options (rounds, samples, lr, method, max_kl)."""
    hyb = comps.config.get("hybrid", {})
    return calibrate_eta(
        model,
        comps,
        int(hyb.get("calibrate_rounds", 0)),
        int(hyb.get("calibrate_samples", 500)),
        float(hyb.get("calibrate_lr", 1.0)),
        method=hyb.get("calibrate_method", "secant"),
        max_kl=float(hyb.get("calibrate_max_kl", math.inf)),
    )


def calibrate_eta(
    model: HybridEnergy,
    comps: Components,
    rounds: int,
    n: int,
    lr: float,
    max_data: int = 10000,
    max_growth: float = 4.0,
    groups: int = 10,
    method: str = "secant",
    max_kl: float = math.inf,
) -> list[dict[str, Any]]:
    """Moment matching for η with the network held fixed: drive ``gap = E_model T − E_data T`` to 0.

    For ``log p = F + η·T − log Z`` the log-likelihood's gradient in η is ``−gap`` and its
    curvature ``−Cov_model T``, so the first step is Newton's, ``η −= lr·C⁻¹·gap`` with ``C`` the
    round-0 samples' covariance (robust: median-of-groups variances, or the data's where larger,
    with the samples' correlations ``R``): scale-free, and exact for an exact sampler with
    ``lr = 1``. Correlated components are so stepped jointly (a per-component step overshoots
    them); ``R`` is inverted as a pseudo-inverse that drops directions with eigenvalue below 0.1 %
    of the largest, so components that nearly repeat each other share one step.
    Later steps follow ``method`` (:data:`CALIBRATION_METHODS`). ``"secant"``: per component,
    ``η −= gap / slope`` with ``slope = Δgap/Δη`` measured between the best η so far and the last
    other one tried (a slope that is not positive falls back to the Newton step), so the rounds
    converge where the samples respond to η more weakly than the model says (short chains).
    ``"joint"``: Newton with the best round's own covariance and one measured response factor
    (:func:`hebm_core.calibration._joint_step`), for coupled components. Each step is at most
    ``max_growth`` times the previous one, and its KL divergence ``½·Δηᵀ·C·Δη`` (the best round's
    ``C``) at most ``max_kl`` (:func:`hebm_core.calibration.within_kl`; unbounded by default). A
    round whose standardised gap ``Σ |gap| / sd T`` is larger than the best one's (a too strong η
    can break sampling) is undone (so is one whose sampler diverged): the next try lies at most
    halfway back from the rejected η to the best. A round whose standardised gap is over
    :data:`~hebm_core.calibration.RUNAWAY` times the start's counts as diverged too: its chains
    ran off without reaching inf or NaN, and a secant through it would shrink the step to
    nothing. E_model comes from ``n``
    samples drawn as ``[sampler]`` says (same seed every round, so rounds differ by η, not by
    noise), as a median of means over ``groups`` groups of chains, so a rare chain that runs off
    (one exploded QM9 graph has T ≈ 190 against a mean of 0.03) cannot steer η; E_data from up to
    ``max_data`` training samples (a seeded random subset, since datasets may be sorted, as QM9 is
    by size). Returns every tried η with its gap (and the plain-mean gap), the kind of step that
    led to it, that step's predicted KL (``step_kl``; ``bounded`` when ``max_kl`` cut it), the
    number of chains that ran off (``ran_off``: a statistic over ``RUNAWAY`` round-0 sd from the
    data's mean, or not finite) and whether it was kept; the model ends with the best η (the starting
    one, with a warning, when no step was kept; a warning too when chains ran off at that η).
    """
    step_rule = lookup(CALIBRATION_METHODS, method, "calibration method")
    stats = model.statistics
    data = training_subset(comps, max_data)
    with torch.no_grad():
        d = torch.cat([s(data).double().cpu() for s in stats], 1)
    target_vec, data_var = d.mean(0), d.var(0, correction=0)
    keys = {s.name: model._key(s.name) for s in stats}
    sizes = [model.eta[keys[s.name]].numel() for s in stats]

    def get_eta() -> Tensor:
        return torch.cat([model.eta[keys[s.name]].detach().double().cpu() for s in stats])

    def set_eta(v: Tensor) -> None:
        with torch.no_grad():
            for s, part in zip(stats, v.split(sizes)):
                model.eta[keys[s.name]].copy_(part.to(model.eta[keys[s.name]]))

    history: list[dict[str, Any]] = []
    first: Round | None = None  # round 0: its sd T normalises the gap of every round
    best: Round | None = None
    other: tuple[Tensor, Tensor] | None = None  # the last tried η that is not the best, and its gap
    state: dict[str, float] = {}  # the step rule's memory across rounds
    kind, moved, best_ran_off = "start", {}, 0
    for r in range(rounds + 1):
        eta, diverged, ran_off = get_eta(), None, None
        try:
            samples, _ = draw_samples(model, comps, n=n)
        except SamplerDivergenceError as exc:
            if best is None:
                raise
            diverged = str(exc)
        if diverged:
            gap = mean_gap = torch.full_like(best.gap, math.nan)  # never kept: no curvature needed
        else:
            with torch.no_grad():
                t = torch.cat([s(samples).double().cpu() for s in stats], 1)
            mean_gap = t.mean(0) - target_vec
            gap = median_of_means(t, groups) - target_vec
            curv = curvature(t, data_var, groups)
        scale = first.sd if first is not None else curv[0]  # round 0's sd: chains that ran off inflate their own
        if not diverged:
            far = ((t - target_vec).abs() / scale > RUNAWAY) | ~torch.isfinite(t)
            ran_off = int(far.any(1).sum())  # chains the median of means outvoted
        size = float((gap.abs() / scale).sum())
        if first is not None and size > RUNAWAY * first.size:
            diverged = f"standardised gap {size:.3g} over {RUNAWAY:g}× the start's ({first.size:.3g}): chains ran off"
        kept = not diverged and math.isfinite(size) and (best is None or size <= best.size)
        history.append(
            {
                "round": r,
                "eta": model.eta_report(),
                "gap": {s.name: g.tolist() for s, g in zip(stats, gap.split(sizes))},
                "gap_mean": {s.name: g.tolist() for s, g in zip(stats, mean_gap.split(sizes))},
                "step": kind,
                **moved,
                "kept": kept,
                **({"ran_off": ran_off} if ran_off is not None else {}),
                **({"diverged": diverged} if diverged else {}),
            }
        )
        if kept:
            if best is not None:
                other = (best.eta, best.gap)
            best, best_ran_off = Round(eta, gap, size, *curv), ran_off
            first = first or best
        elif best is None:
            raise RuntimeError(f"η calibration: samples at the trained η give non-finite statistics {gap.tolist()}")
        else:
            # a diverged round gives no slope (its gap is noise from chains that ran off), and no
            # slope at all means the next try backs off halfway
            other = (eta, torch.full_like(gap, math.nan) if diverged else gap)
        if r == rounds:
            break
        step, kind = step_rule(Progress(first, best, other, kept, lr, max_growth, state))
        kl, step = step_kl(step, best), within_kl(step, best, max_kl)
        moved = {"step_kl": min(kl, max_kl), **({"bounded": True} if kl > max_kl else {})}
        set_eta(best.eta + step)
    set_eta(best.eta)
    if rounds and best is first:
        warnings.warn(
            f"η calibration kept none of its {rounds} steps (every try diverged or had a larger "
            f"standardised gap than the start's, {first.size:.3g}): η stays at its starting value; "
            "lower [hybrid] calibrate_lr or raise calibrate_rounds",
            stacklevel=2,
        )
    if best_ran_off:
        warnings.warn(
            f"η calibration: at the kept η {best_ran_off} of {n} chains ran off (a statistic over "
            f"{RUNAWAY:g} sd from the data's mean, or not finite); the median of means outvoted them, "
            "but sampling with this η can give such chains again (lower η with [hybrid] "
            "calibrate_max_kl, or make the sampler stabler)",
            stacklevel=2,
        )
    return history


def compare(
    config: Mapping[str, Any],
    out_dir: str | Path,
    registry: PluginRegistry | None = None,
    resume: bool = False,
    share_network: bool = True,
) -> dict[str, Any]:
    """Vanilla (``statistics = []``) against hybrid (the configured statistics): same seed, model and budget.

    ``resume`` continues each run from its checkpoint (a finished one only samples and evaluates).
    With ``train.eta_lr = 0`` the hybrid's network trains exactly as the vanilla one, so with
    ``share_network`` it is taken from the vanilla run instead of being trained twice.

    Runs both into ``out_dir/vanilla`` and ``out_dir/hybrid`` and writes ``compare.json`` with their
    metrics side by side and, per statistic, ``delta_t_reduction_pct = 100·(ΔT_vanilla − ΔT_hybrid)/ΔT_vanilla``
    (positive: the hybrid model matches the statistic better) with each side's standard error
    (``vanilla_se``, ``hybrid_se``: see :class:`~hebm_core.metrics.StatisticGap`).
    """
    registry = registry or get_registry()
    hybrid_cfg = validate(copy.deepcopy(dict(config)), registry)
    if not hybrid_cfg.get("statistics"):
        raise ConfigError(
            "compare needs at least one statistic for the hybrid model (statistics = [...] or --statistic)"
        )
    vanilla_cfg = copy.deepcopy(hybrid_cfg)
    vanilla_cfg["statistics"] = []
    evaluated = _unique_entries(list(hybrid_cfg["statistics"]) + list(hybrid_cfg["evaluate"].get("statistics", [])))
    for cfg in (vanilla_cfg, hybrid_cfg):
        cfg["evaluate"]["statistics"] = evaluated
    out = Path(out_dir)
    shared = out / "vanilla" / "checkpoint.pt" if share_network and hybrid_cfg["train"].get("eta_lr") == 0 else None
    reports = {
        "vanilla": run(vanilla_cfg, out / "vanilla", resume=resume, registry=registry),
        "hybrid": run(hybrid_cfg, out / "hybrid", resume=resume, registry=registry, network_from=shared),
    }
    if any("rank" in r for r in reports.values()):
        return reports
    v, h = reports["vanilla"], reports["hybrid"]
    keys = sorted(set(v.get("metrics", {})) | set(h.get("metrics", {})))
    side = {k: {"vanilla": v.get("metrics", {}).get(k), "hybrid": h.get("metrics", {}).get(k)} for k in keys}
    delta = {}
    for stat in sorted(set(v.get("delta_t", {})) & set(h.get("delta_t", {}))):
        dv, dh = v["delta_t"][stat], h["delta_t"][stat]
        delta[stat] = {
            "vanilla": dv,
            "hybrid": dh,
            "delta_t_reduction_pct": round(100 * (dv - dh) / dv, 2) if dv > 0 else None,
        }
        for name, rep in (("vanilla", v), ("hybrid", h)):
            se = rep.get("metrics", {}).get(f"delta_t_se/{stat}")
            if se is not None:
                delta[stat][f"{name}_se"] = se
    result = {
        **environment(),
        "config": hybrid_cfg,
        "statistics": [entry(s, "statistic")[0] for s in hybrid_cfg["statistics"]],
        "eta": h.get("eta", {}),
        "delta_t": delta,
        "metrics": side,
        "training": {"vanilla": v.get("training"), "hybrid": h.get("training")},
        "sampling": {"vanilla": v.get("sampling"), "hybrid": h.get("sampling")},
        "runs": {"vanilla": str(out / "vanilla"), "hybrid": str(out / "hybrid")},
    }
    write_json(out / "compare.json", result)
    return result


# --------------------------------------------------------------------------- from a checkpoint
def load_run(
    checkpoint: str | Path,
    device: str = "auto",
    registry: PluginRegistry | None = None,
    ema: bool = True,
) -> tuple[Components, EnergyModel]:
    """Rebuild the components from the checkpoint's spec and load its (EMA) weights onto ``device``."""
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    payload = load_checkpoint(path, map_location="cpu")
    spec = payload.get("spec") if isinstance(payload, Mapping) else None
    if not isinstance(spec, Mapping):
        raise CheckpointError(f"{path}: checkpoint holds no run spec; it was not written by the hebm trainer")
    comps = build(spec, registry)
    load_model_state(comps.model, payload, ema=ema)
    calibrated = payload.get(CALIBRATED_ETA)
    if isinstance(calibrated, Mapping) and isinstance(comps.model, HybridEnergy):
        with torch.no_grad():
            for k, v in calibrated.items():
                if k not in comps.model.eta or comps.model.eta[k].shape != v.shape:
                    raise CheckpointError(f"{path}: calibrated η {k!r} does not fit the model's statistics")
                comps.model.eta[k].copy_(v)
    if isinstance(payload.get("objective"), Mapping):
        # shape-dependent state (PCD's buffer, NCE's fitted noise) exists only after setup()
        comps.objective.setup(comps.example)
        try:
            comps.objective.load_state_dict(payload["objective"])
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{path}: objective state does not fit the configured objective ({exc})") from None
    try:
        target = resolve_device(device)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    model = comps.model.to(target).eval()
    return comps, model


def sample_from_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    n: int | None = None,
    sampler: str | None = None,
    sampler_options: Mapping[str, Any] | None = None,
    device: str = "auto",
    registry: PluginRegistry | None = None,
) -> dict[str, Any]:
    """Samples (and the picture) from a checkpoint into ``out_dir``; writes ``sample_report.json``."""
    comps, model, samples, info = _sample_checkpoint(checkpoint, n, sampler, sampler_options, device, registry)
    files, notes = write_outputs(samples, comps, out_dir)
    rep = report(comps, model, sampling=info, files=files, notes=notes, device=info["device"])
    rep["checkpoint"] = str(checkpoint)
    rep["files"].append(str(Path(out_dir) / "sample_report.json"))
    write_json(Path(out_dir) / "sample_report.json", rep)
    return rep


def evaluate_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    n: int | None = None,
    sampler: str | None = None,
    sampler_options: Mapping[str, Any] | None = None,
    device: str = "auto",
    registry: PluginRegistry | None = None,
    nll: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Sample from a checkpoint and compute the metrics (ΔT per statistic included); writes ``metrics.json``.

    ``nll`` (options of :func:`log_likelihood`, ``{}`` for its defaults) adds the test NLL by AIS.
    """
    comps, model, samples, info = _sample_checkpoint(checkpoint, n, sampler, sampler_options, device, registry)
    metrics = evaluate(samples, comps)
    rep = report(comps, model, sampling=info, metrics=metrics, device=info["device"])
    if nll is not None:
        rep["log_likelihood"] = log_likelihood(model, comps, **nll)
    rep["checkpoint"] = str(checkpoint)
    rep["files"].append(str(Path(out_dir) / "metrics.json"))
    write_json(Path(out_dir) / "metrics.json", rep)
    return rep


def _sample_checkpoint(
    checkpoint: str | Path,
    n: int | None,
    sampler: str | None,
    sampler_options: Mapping[str, Any] | None,
    device: str,
    registry: PluginRegistry | None,
) -> tuple[Components, EnergyModel, Sample, dict[str, Any]]:
    """Rebuild a run from its checkpoint and draw samples with its (or the given) sampler."""
    comps, model = load_run(checkpoint, device, registry)
    scfg = _sampler_config(comps, sampler, sampler_options)
    samples, info = draw_samples(model, comps, n=n, sampler_config=scfg)
    return comps, model, samples, info


def _sampler_config(comps: Components, name: str | None, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The checkpoint's [sampler], or a fresh one for another sampler name, with ``options`` merged in."""
    cfg = dict(comps.config["sampler"])
    if name is not None and name != cfg.get("name"):
        cfg = {"name": name, "n_samples": cfg.get("n_samples", 2000)}
    cfg.update(options or {})
    lookup(SAMPLERS, cfg["name"], "sampler")
    return cfg
