"""From a resolved configuration to the parts of one experiment: data, statistics, objective, model.

Every name is looked up in a dict registry (the plugin's datasets/models/statistics/metrics, the
core's and the plugin's objectives and samplers); nothing here knows a particular domain.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.checkpoint import one_line
from hebm_core.config import ConfigError, RunConfig, StatisticEntry
from hebm_core.data import DataBundle
from hebm_core.energy import EnergyModel
from hebm_core.hybrid import HybridEnergy
from hebm_core.objectives import Objective
from hebm_core.registry import Plugin, PluginRegistry, get_registry, lookup
from hebm_core.runs.conditioning import targets_of
from hebm_core.statistics import Components, Moments, Statistic
from hebm_core.training import seed_everything
from hebm_core.tree import Sample

__all__ = ["Experiment", "EXAMPLE_SIZE", "accepts", "build", "call_factory", "check_fit", "make_statistic"]

#: size of the example batch given to model factories and HybridEnergy
EXAMPLE_SIZE = 256


@dataclass
class Experiment:
    """Everything built from one configuration, before training: its config, plugin, data, the
    hybrid's statistics (and those only evaluated), the model and the objective."""

    config: RunConfig
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
        return self.bundle.reference

    @property
    def training_sigmas(self) -> Tensor | None:
        """The objective's noise levels, largest first (``None`` if it uses none)."""
        s = getattr(self.objective, "sigmas", None)
        if not isinstance(s, Tensor) or s.numel() == 0:
            return None
        return s.detach().double().flatten().sort(descending=True).values.cpu()

    @property
    def density_sigma(self) -> float | None:
        """The noise level at which a noise-conditional model is read as a density (its smallest training
        σ: the NLL, a checkpoint as a sampling target); ``None`` for a model without noise levels."""
        sigmas = self.training_sigmas
        return float(sigmas[-1]) if sigmas is not None and getattr(self.model, "noise_conditional", False) else None


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


def _nonfinite_option(value: Any, key: str) -> str | None:
    """The dotted key of a NaN/inf float inside an option value (lists and tables included), else ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return key
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _nonfinite_option(v, f"{key}[{k}]" if isinstance(k, int) else f"{key}.{k}")
        if found:
            return found
    return None


def call_factory(
    kind: str, name: str, factory: Callable[..., Any], *args: Any, internal: tuple[str, ...] = (), **options
):
    """``factory(*args, **options)``; an option it does not take or rejects is one :class:`ConfigError` line.

    ``internal`` names keywords the run stages supply themselves (``example``, ``space``), which are
    not listed as user options. A NaN or infinite number among the options is refused before the
    call; a ``TypeError`` / ``ValueError`` / ``RuntimeError`` / ``OverflowError`` the factory raises
    (a negative size reaching torch, say) is reported as a bad option, a ``MemoryError`` as one too
    large.
    """
    for key, value in options.items():
        bad = _nonfinite_option(value, key)
        if bad:
            raise ConfigError(f"bad option for {kind} {name!r}: {bad} must be a finite number, got {value!r}")
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
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise ConfigError(f"bad option for {kind} {name!r}: {one_line(exc, with_type=False)}") from None
    except MemoryError:
        raise ConfigError(f"bad option for {kind} {name!r}: too large for this machine's memory") from None


# --------------------------------------------------------------------------- build
def make_statistic(item: StatisticEntry, plugin: Plugin, registry: PluginRegistry) -> Statistic:
    """The statistic of one entry: a ``Statistic`` (no options) or a factory called with the options;
    only the ``components`` named (when its factory does not take that option itself); its powers
    up to ``moments`` when given."""
    found = registry.statistic(plugin.name, item.name)
    options = dict(item.options)
    picked = options.pop("components", None) if "components" in options and not accepts(found, "components") else None
    if isinstance(found, Statistic):
        if options:
            raise ConfigError(f"statistic {item.name!r} is a Statistic, not a factory: it takes no options")
        stat = found
    else:
        _require_factory(item, found)
        stat = call_factory("statistic", item.name, found, **options)
        if not isinstance(stat, Statistic):
            raise ConfigError(f"statistic {item.name!r} gave {type(stat).__name__}, not a hebm_core Statistic")
    if picked is not None:
        try:
            stat = Components(stat, picked)
        except ValueError as exc:
            raise ConfigError(f"statistic {item.name!r}: {exc}") from None
    return Moments(stat, item.moments) if item.moments is not None else stat


def _require_factory(item: StatisticEntry, found: Any) -> None:
    """A plain function of the sample is not a factory: say how to make it a statistic."""
    try:
        params = inspect.signature(found).parameters.values()
    except (TypeError, ValueError):
        return
    required = [
        p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if [r for r in required if r not in item.options]:
        raise ConfigError(
            f"statistic {item.name!r} needs {', '.join(map(repr, required))}: a function of the sample must be "
            "decorated with @hebm_core.statistic (a factory takes only options)"
        )


def _evaluated(
    cfg: RunConfig, plugin: Plugin, registry: PluginRegistry, statistics: list[Statistic]
) -> list[Statistic]:
    """The hybrid's statistics, then ``[evaluate] statistics`` and the plugin's default ones (once each)."""
    out = list(statistics)
    defaults = [StatisticEntry.parse(s) for s in plugin.default_config.get("statistics", [])]
    for item in [*cfg.evaluate.statistics, *defaults]:
        stat = make_statistic(item, plugin, registry)
        if stat.name not in {t.name for t in out}:
            out.append(stat)
    return out


def check_fit(stat: Statistic, example: Sample, domain: str, differentiable: bool) -> None:
    """A statistic must map the domain's samples to finite ``[B, k]`` values and, in a hybrid term,
    have a gradient in the sample (sampling moves chains along η·∇T); one :class:`ConfigError` line if not."""
    where = f"statistic {stat.name!r} does not fit the {domain!r} samples"
    b = tree.batch_size(example)
    x = tree.with_grad(example) if differentiable else example
    try:
        with torch.enable_grad():
            t = stat(x)
    except Exception as exc:  # the user's code on our samples: any failure is a misfit, said in one line
        said = one_line(exc, with_type=False) if isinstance(exc, ConfigError) else one_line(exc)
        raise ConfigError(f"{where}: {said}") from None
    if not isinstance(t, Tensor) or t.dim() != 2 or t.shape[0] != b:
        shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise ConfigError(f"{where}: it returned {shape} for a batch of {b}; it must return [B] or [B, k]")
    if not bool(torch.isfinite(t).all()):
        raise ConfigError(f"{where}: it is not finite on the training data")
    if differentiable:
        leaves = [leaf for leaf in tree.state_leaves(x) if leaf.requires_grad]
        grads = torch.autograd.grad(t.sum(), leaves, allow_unused=True) if t.requires_grad else [None]
        if all(g is None for g in grads):
            raise ConfigError(
                f"{where}: it has no gradient in the sample (a hybrid term moves samples along η·∇T; "
                "use it in [evaluate] statistics to report its ΔT only)"
            )


def _dataset(cfg: RunConfig, plugin: Plugin) -> DataBundle:
    name = cfg.data.name
    bundle = call_factory("dataset", name, lookup(plugin.datasets, name, "dataset", plugin.name), **cfg.data.options)
    if not isinstance(bundle, DataBundle):
        raise ConfigError(
            f"dataset {name!r} of plugin {plugin.name!r} returned {type(bundle).__name__}, not a DataBundle"
        )
    bundle.info.setdefault("name", name)
    return bundle


def _skip_note(bundle: DataBundle) -> list[str]:
    """A note for the terminal when the dataset skipped rows or files (``info["skipped"]``: reason -> count)."""
    skipped = bundle.info.get("skipped")
    if not isinstance(skipped, dict) or not sum(int(v) for v in skipped.values()):
        return []
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items(), key=lambda kv: -int(kv[1])) if int(v))
    return [f"dataset {bundle.info.get('name')!r} skipped {sum(int(v) for v in skipped.values())} entries ({reasons})"]


def _model(cfg: RunConfig, plugin: Plugin, example: Sample, noise_levels: bool) -> EnergyModel:
    """The plugin's network, noise-conditional when the objective feeds noise levels (unless configured)."""
    name, options = cfg.model.name, dict(cfg.model.options)
    factory = lookup(plugin.models, name, "model", plugin.name)
    if accepts(factory, "noise_conditional"):
        options.setdefault("noise_conditional", noise_levels)
    seed_everything(cfg.train.seed)
    model = call_factory("model", name, factory, internal=("example",), example=example, **options)
    if not isinstance(model, EnergyModel):
        raise ConfigError(
            f"model {name!r} of plugin {plugin.name!r} returned {type(model).__name__}, not an EnergyModel"
        )
    return model


def _hybrid(cfg: RunConfig, base: EnergyModel, statistics: list[Statistic], example: Sample, objective) -> HybridEnergy:
    """The network plus η·T; the σ reference of a scaled term is the smallest training σ."""
    powers = {
        stat.name: item.sigma_power for item, stat in zip(cfg.statistics, statistics) if item.sigma_power is not None
    }
    hyb = cfg.hybrid
    sigmas = getattr(objective, "sigmas", None)
    scaled = hyb.sigma_power or any(powers.values())
    ref = float(sigmas.min()) if scaled and isinstance(sigmas, Tensor) and sigmas.numel() else 1.0
    if hyb.denoised and not base.noise_conditional:
        raise ConfigError(
            f"[hybrid] denoised = true needs a noise-conditional model (x̂ = x + σ² s(x, σ)); "
            f"model {cfg.model.name!r} with objective {cfg.objective.name!r} is not"
        )
    model = HybridEnergy(
        base,
        statistics,
        example=example,
        sigma_power=hyb.sigma_power,
        sigma_ref=ref,
        sigma_powers=powers,
        denoised=hyb.denoised,
    )
    try:
        model.eta_vector(hyb.calibrate_start)  # a misfit fails here, not after training
    except ValueError as exc:
        raise ConfigError(f"[hybrid] calibrate_start {exc}") from None
    return model


def build(config: RunConfig | Mapping[str, Any], registry: PluginRegistry | None = None) -> Experiment:
    """Dataset, statistics, objective and model (seeded with ``train.seed``) from a config.

    A plain mapping (a checkpoint's spec) is validated first; a :class:`RunConfig` already was.
    """
    registry = registry or get_registry()
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config, registry)
    plugin = registry.get(cfg.plugin)
    bundle = _dataset(cfg, plugin)
    example = tree.index(bundle.train, torch.arange(min(EXAMPLE_SIZE, tree.batch_size(bundle.train))))
    statistics = [make_statistic(item, plugin, registry) for item in cfg.statistics]
    evaluated = _evaluated(cfg, plugin, registry, statistics)
    for stat in evaluated:
        check_fit(stat, example, plugin.name, differentiable=stat in statistics)
    targets_of(cfg.statistics, statistics, example)  # a target that names no component fails before training
    ocls = lookup(plugin.all_objectives(), cfg.objective.name, "objective")
    objective = call_factory(
        "objective", cfg.objective.name, ocls, internal=("space",), space=bundle.space, **cfg.objective.options
    )
    model = _model(cfg, plugin, example, bool(getattr(ocls, "uses_noise_levels", False)))
    if statistics:
        model = _hybrid(cfg, model, statistics, example, objective)
    return Experiment(cfg, plugin, bundle, example, statistics, evaluated, model, objective, _skip_note(bundle))
