"""The typed run configuration: one dataclass per section, resolved and validated once.

:func:`resolve_config` merges the plugin's ``default_config`` < a TOML file < command-line
overrides and returns a :class:`RunConfig`; every stage reads ``cfg.sampler.n_samples``, never a
dict with a fallback. :meth:`RunConfig.to_dict` gives the plain form stored in checkpoints and
reports, which :meth:`RunConfig.from_dict` reads back (old checkpoints included).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hebm_core.calibration import CALIBRATION_METHODS, CalibrationOptions
from hebm_core.config.files import NAMED_SECTIONS, check_structure, entry, load_toml, merge
from hebm_core.options import ConfigError, Options, is_int, is_number, option
from hebm_core.registry import Plugin, PluginRegistry, get_registry, lookup
from hebm_core.training.config import TrainConfig
from hebm_core.training.state import resolve_device

__all__ = [
    "Entry",
    "StatisticEntry",
    "Factory",
    "SamplerConfig",
    "EvaluateConfig",
    "HybridConfig",
    "RunConfig",
    "resolve_config",
]


#: the plugin and the objective a config gets when it names none
DEFAULT_PLUGIN = "toy"
DEFAULT_OBJECTIVE = "dsm"


def _positive(v: float) -> bool:
    return v > 0


def _non_negative(v: float) -> bool:
    return v >= 0


@dataclass
class Entry:
    """A named factory with its options: a list item ``"name"`` or ``{name = "...", ...}``."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, item: Any, kind: str) -> Entry:
        name, opts = entry(item, kind)
        return cls(name, opts)

    def to_config(self) -> str | dict[str, Any]:
        return {"name": self.name, **self.options} if self.options else self.name


def _finite(v: Any) -> bool:
    return is_number(v) and math.isfinite(v)


def _check_target(name: str, target: Any, tolerance: Any) -> None:
    finite = _finite
    ok = (
        finite(target)
        or (isinstance(target, list) and target and all(map(finite, target)))
        or (isinstance(target, Mapping) and target and all(isinstance(k, str) and finite(v) for k, v in target.items()))
    )
    if not ok:
        raise ConfigError(
            f"statistic {name!r}: target must be a number, a list of numbers (one per component) or a table "
            f"{{component = number}}, got {target!r}"
        )
    if tolerance is not None and not (finite(tolerance) and tolerance > 0):
        raise ConfigError(f"statistic {name!r}: tolerance must be a number > 0, got {tolerance!r}")


@dataclass
class StatisticEntry(Entry):
    """A statistic of the plugin: ``moments = m`` adds its powers up to m; ``sigma_power = p`` gives
    its hybrid term its own noise scaling; ``target`` (a number, one per component, or
    ``{component = value}``) makes the calibration match that mean instead of the data's, i.e.
    conditional sampling, with ``tolerance`` for the reported hit rate (in ``[evaluate] statistics``
    a target is only reported against)."""

    moments: int | None = None
    sigma_power: float | None = None
    target: float | list[float] | dict[str, float] | None = None
    tolerance: float | None = None

    @classmethod
    def parse(cls, item: Any, kind: str = "statistic", hybrid: bool = True) -> StatisticEntry:
        name, opts = entry(item, kind)
        orders, power = opts.pop("moments", None), opts.pop("sigma_power", None)
        target, tolerance = opts.pop("target", None), opts.pop("tolerance", None)
        if orders is not None and (not is_int(orders) or orders < 1):
            raise ConfigError(f"statistic {name!r}: moments must be an integer >= 1, got {orders!r}")
        if not hybrid and power is not None:
            raise ConfigError(
                f"statistic {name!r}: sigma_power scales a hybrid term; give it in the top-level statistics"
            )
        if power is not None and (not is_number(power) or not 0 <= power < math.inf):
            raise ConfigError(f"statistic {name!r}: sigma_power must be a number >= 0, got {power!r}")
        if target is not None or tolerance is not None:
            if target is None:
                raise ConfigError(f"statistic {name!r}: tolerance needs a target")
            _check_target(name, target, tolerance)
        return cls(
            name,
            opts,
            orders,
            None if power is None else float(power),
            dict(target) if isinstance(target, Mapping) else target,
            None if tolerance is None else float(tolerance),
        )

    def to_config(self) -> str | dict[str, Any]:
        pairs = (
            ("moments", self.moments),
            ("sigma_power", self.sigma_power),
            ("target", self.target),
            ("tolerance", self.tolerance),
        )
        extra = {k: v for k, v in pairs if v is not None}
        return {"name": self.name, **self.options, **extra} if self.options or extra else self.name


@dataclass
class Factory(Entry):
    """A section naming a factory (``[data]``, ``[model]``, ``[objective]``) and its options."""

    @classmethod
    def section(cls, section: str, table: Any) -> Factory:
        if not isinstance(table, Mapping):
            raise ConfigError(f"[{section}] is missing: give it a table with a 'name'")
        name = table.get("name")
        if not isinstance(name, str):
            raise ConfigError(f"[{section}] needs a string 'name', got {name!r}")
        return cls(name, {k: v for k, v in table.items() if k != "name"})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}


@dataclass
class SamplerConfig(Options):
    """``[sampler]``: the sampler by name, how many samples in which batches, where chains start;
    every other key is an option of the sampler class."""

    section = "sampler"

    name: str = option("annealed_langevin", "a string", None, "the core's samplers or the plugin's")
    n_samples: int = option(
        2000, "a positive integer <= 10000000", lambda v: 0 < v <= 10**7, "samples drawn by run / sample / evaluate"
    )
    batch_size: int | None = option(None, "a positive integer", _positive, "chains per batch (null: all at once)")
    init_sigma: float | None = option(
        None, "a positive number", _positive, "scale of the chains' start (null: the largest σ)"
    )
    runaway_factor: float = option(
        10.0,
        "a number >= 0",
        _non_negative,
        "a chain beyond this many times the data's largest deviation from its mean ran off (0: no check)",
    )
    strict: bool = option(False, None, None, "chains that ran off are an error, not a counted warning")
    options: dict[str, Any] = field(default_factory=dict, metadata={"internal": True})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SamplerConfig:
        own = {k: v for k, v in data.items() if k in cls.field_names()}
        if "name" in own and not isinstance(own["name"], str):
            raise ConfigError(f"[sampler] needs a string 'name', got {own['name']!r}")
        return cls(**own, options={k: v for k, v in data.items() if k not in own})

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), **self.options}


@dataclass
class EvaluateConfig(Options):
    """``[evaluate]``: metrics to compute (ΔT always is) and statistics evaluated besides the trained ones."""

    section = "evaluate"

    metrics: list = option([], "a list", None, "metric names or tables; ΔT per statistic is always computed")
    statistics: list = option([], "a list", None, "statistics whose ΔT is reported besides the trained ones")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.metrics = [m if isinstance(m, Entry) else Entry.parse(m, "metric") for m in self.metrics]
        self.statistics = _statistic_entries(self.statistics, "[evaluate] statistics", hybrid=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": [m.to_config() for m in self.metrics],
            "statistics": [s.to_config() for s in self.statistics],
        }


@dataclass
class HybridConfig(Options):
    """``[hybrid]``: how the statistic term scales with σ, where it is evaluated, and η's moment matching."""

    section = "hybrid"

    sigma_power: float = option(0.0, "a number >= 0", _non_negative, "η·T·(σ_min/σ)^p: the term's noise scaling")
    denoised: bool = option(False, None, None, "evaluate T at the Tweedie estimate x̂ = x + σ² s(x, σ)")
    calibrate_rounds: int = option(
        0, "an integer >= 0", _non_negative, "rounds of moment matching for η after training"
    )
    calibrate_samples: int = option(500, "an integer >= 0", _non_negative, "samples per calibration round")
    calibrate_lr: float = option(1.0, "a number >= 0", _non_negative, "Newton step factor of the first round")
    calibrate_method: str = option(
        "secant",
        f"one of {', '.join(sorted(CALIBRATION_METHODS))}",
        CALIBRATION_METHODS.__contains__,
        "secant (per component) or joint (coupled components)",
    )
    calibrate_max_kl: float | None = option(
        None,
        "a number > 0 (or null/inf: no bound)",
        _positive,
        "trust region: predicted KL of one η step",
        finite=False,
    )
    calibrate_start: dict | None = option(
        None,
        "a table {statistic = number or [numbers]}",
        lambda t: all(_finite(v) or (isinstance(v, list) and v and all(map(_finite, v))) for v in t.values()),
        "η where moment matching starts (select-statistics' eta_start); null: the model's η",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.calibrate_max_kl == math.inf:  # TOML's `inf`: the same as no bound, stored as null
            self.calibrate_max_kl = None

    def calibration(self) -> CalibrationOptions:
        """The calibration algorithm's options."""
        return CalibrationOptions(
            rounds=self.calibrate_rounds,
            lr=self.calibrate_lr,
            method=self.calibrate_method,
            max_kl=math.inf if self.calibrate_max_kl is None else self.calibrate_max_kl,
        )


def _statistic_entries(items: Any, where: str, hybrid: bool) -> list[StatisticEntry]:
    if not isinstance(items, list):
        raise ConfigError(f"{where} must be a list of names or tables, got {type(items).__name__} {items!r}")
    out = [s if isinstance(s, StatisticEntry) else StatisticEntry.parse(s, "statistic", hybrid) for s in items]
    seen: set[str] = set()
    for s in out:
        if s.name in seen:
            raise ConfigError(f"{where}: statistic {s.name!r} is listed twice")
        seen.add(s.name)
    return out


@dataclass
class RunConfig:
    """A whole run: the plugin, the hybrid's statistics and one typed object per section."""

    plugin: str
    data: Factory
    model: Factory
    objective: Factory = field(default_factory=lambda: Factory(DEFAULT_OBJECTIVE))
    statistics: list[StatisticEntry] = field(default_factory=list)
    train: TrainConfig = field(default_factory=TrainConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    hybrid: HybridConfig = field(default_factory=HybridConfig)

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any], registry: PluginRegistry | None = None) -> RunConfig:
        """Check a merged config (keys, types, ranges, names) and build it; every problem is one line."""
        check_structure(cfg, where="config")
        name = cfg.get("plugin")
        if not isinstance(name, str):
            raise ConfigError(f"'plugin' must be a string, got {name!r}")
        registry = registry or get_registry()
        plugin = registry.get(name)
        factories = {
            key: Factory.section(key, cfg.get(key, {"name": DEFAULT_OBJECTIVE} if key == "objective" else None))
            for key in NAMED_SECTIONS
            if key != "sampler"
        }
        run = cls(
            plugin=name,
            statistics=_statistic_entries(cfg.get("statistics", []), "statistics", hybrid=True),
            train=TrainConfig.from_dict(cfg.get("train", {})),
            sampler=SamplerConfig.from_dict(cfg.get("sampler", {})),
            evaluate=EvaluateConfig.from_dict(cfg.get("evaluate", {})),
            hybrid=HybridConfig.from_dict(cfg.get("hybrid", {})),
            **factories,
        )
        run.check_names(plugin, registry)
        if run.statistics and run.train.eta_lr == 0 and not run.hybrid.calibrate_rounds:
            raise ConfigError(
                "train.eta_lr = 0 freezes η at 0 during training: set [hybrid] calibrate_rounds to fit η "
                "by moment matching afterwards, or the hybrid model is the vanilla one"
            )
        return run

    def check_names(self, plugin: Plugin, registry: PluginRegistry) -> None:
        """Every name the config gives exists in the plugin or the core (a statistic may also come from
        another package: an import path, or a ``hebm.statistics`` entry point for this domain)."""
        lookup(plugin.datasets, self.data.name, "dataset", plugin.name)
        lookup(plugin.models, self.model.name, "model", plugin.name)
        lookup(plugin.all_objectives(), self.objective.name, "objective")
        lookup(plugin.all_samplers(), self.sampler.name, "sampler")
        for s in [*self.statistics, *self.evaluate.statistics]:
            registry.statistic(plugin.name, s.name)
        for m in self.evaluate.metrics:
            lookup(plugin.all_metrics(), m.name, "metric", plugin.name)

    def to_dict(self) -> dict[str, Any]:
        """The plain form (section order of a config file) stored in checkpoints and reports."""
        return {
            "plugin": self.plugin,
            "statistics": [s.to_config() for s in self.statistics],
            "data": self.data.to_dict(),
            "model": self.model.to_dict(),
            "objective": self.objective.to_dict(),
            "train": self.train.to_dict(),
            "sampler": self.sampler.to_dict(),
            "evaluate": self.evaluate.to_dict(),
            "hybrid": self.hybrid.to_dict(),
        }

    def replace(self, **changes: Any) -> RunConfig:
        """A deep copy with some fields replaced (the copy shares no mutable option dicts)."""
        return dataclasses.replace(copy.deepcopy(self), **changes)


def resolve_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    registry: PluginRegistry | None = None,
) -> RunConfig:
    """Merge plugin ``default_config`` < TOML file < ``overrides`` and validate, once.

    The plugin is the one named in ``overrides``, else in the file, else ``toy``. The device must
    exist on this machine (checked here, not when a checkpoint's spec is read elsewhere).
    """
    registry = registry or get_registry()
    overrides = dict(overrides or {})
    file_cfg: dict[str, Any] = {}
    if path is not None:
        file_cfg = load_toml(path)
        check_structure(file_cfg, where=str(path))
    check_structure(overrides, where="command line")
    name = overrides.get("plugin", file_cfg.get("plugin", DEFAULT_PLUGIN))
    if not isinstance(name, str):
        raise ConfigError(f"'plugin' must be a string, got {type(name).__name__}")
    cfg = merge(merge(registry.get(name).default_config, file_cfg), overrides)
    cfg["plugin"] = name
    run = RunConfig.from_dict(cfg, registry)
    try:
        resolve_device(run.train.device)
    except ValueError as exc:
        raise ConfigError(f"[train] {exc}") from None
    return run
