"""Run configuration: the plugin's ``default_config`` < a TOML file < command-line overrides.

A configuration is a plain dict with this shape (every section optional in a file)::

    plugin = "toy"
    statistics = ["radius"]        # names or tables {name = "...", ...options}; [] = vanilla model
    [data]      name = "rings"     # + options for the plugin's dataset factory
    [model]     name = "mlp"       # + options for the model factory, called as factory(example=batch, **options)
    [objective] name = "dsm"       # + options (hebm_core.objectives.OBJECTIVES)
    [train]     steps = 2000       # hebm_core.trainer.TrainConfig fields
    [sampler]   name = "annealed_langevin"   # + n_samples, batch_size, init_sigma, sampler options (SAMPLERS)
    [evaluate]  metrics = ["delta_t", "mmd"] # + statistics = [...] evaluated besides the trained ones

Merging is recursive over tables, except that a section whose ``name`` changes is replaced as a
whole (the old options belonged to the old factory) and lists are replaced, never concatenated.
Every problem is one :class:`ConfigError` line saying where it is and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:  # Python 3.11+
    import tomllib as _toml
except ModuleNotFoundError:  # Python 3.10: the backport, if installed
    try:
        import tomli as _toml  # type: ignore[no-redef]
    except ModuleNotFoundError:
        _toml = None  # type: ignore[assignment]

from hebm_core.calibration import CALIBRATION_METHODS
from hebm_core.objectives import OBJECTIVES
from hebm_core.registry import Plugin, PluginRegistry, lookup
from hebm_core.samplers import SAMPLERS
from hebm_core.trainer import TrainConfig, resolve_device

__all__ = [
    "ConfigError",
    "CORE_DEFAULTS",
    "SECTIONS",
    "TOP_LEVEL_KEYS",
    "load_toml",
    "merge",
    "parse_assignment",
    "cli_overrides",
    "resolve_config",
    "validate",
    "entry",
    "get_registry",
]

#: sections naming a factory with ``name`` plus its options
NAMED_SECTIONS = ("data", "model", "objective", "sampler")
SECTIONS = (*NAMED_SECTIONS, "train", "evaluate", "hybrid")
TOP_LEVEL_KEYS = ("plugin", "statistics", *SECTIONS)
#: keys of [hybrid]: how the statistic term scales with the noise level (see HybridEnergy)
HYBRID_KEYS = (
    "sigma_power",
    "denoised",
    "calibrate_rounds",
    "calibrate_samples",
    "calibrate_lr",
    "calibrate_method",
    "calibrate_max_kl",
)
#: keys of [sampler] that the pipeline consumes (the rest go to the sampler class)
SAMPLER_RUN_KEYS = ("n_samples", "batch_size", "init_sigma")
EVALUATE_KEYS = ("metrics", "statistics")

#: what a plugin's default_config may leave out
CORE_DEFAULTS: dict[str, Any] = {
    "plugin": "toy",
    "statistics": [],
    "objective": {"name": "dsm"},
    "train": {},
    "sampler": {"name": "annealed_langevin", "n_samples": 2000},
    "evaluate": {"metrics": []},  # ΔT is always computed
}


class ConfigError(ValueError):
    """A configuration problem; ``str()`` is one line for the user."""


_REGISTRY: PluginRegistry | None = None


def get_registry() -> PluginRegistry:
    """The process-wide registry of installed plugins (entry points are read once)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = PluginRegistry()
    return _REGISTRY


# --------------------------------------------------------------------------- reading and merging
def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error becomes one line with the file, line and column."""
    path = Path(path)
    if _toml is None:
        raise ConfigError("reading TOML needs Python 3.11+ or the 'tomli' package (pip install tomli)")
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        with path.open("rb") as f:
            return _toml.load(f)
    except _toml.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: tables merge recursively, lists and scalars replace.

    A table whose ``name`` differs from the base's is taken as a whole: options meant for one
    dataset/model/objective/sampler factory must not leak into another.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            if "name" in value and value["name"] != old.get("name"):
                out[key] = copy.deepcopy(dict(value))
            else:
                out[key] = merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_assignment(text: str) -> dict[str, Any]:
    """``"train.lr=1e-3"`` -> ``{"train": {"lr": 0.001}}``; the value is read as TOML, else as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set expects KEY=VALUE with a dotted key (e.g. train.lr=1e-3), got {text!r}")
    value: Any = raw.strip()
    if _toml is not None:
        try:
            value = _toml.loads(f"v = {raw.strip()}")["v"]
        except _toml.TOMLDecodeError:
            value = raw.strip()
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def cli_overrides(
    *,
    plugin: str | None = None,
    dataset: str | None = None,
    model: str | None = None,
    objective: str | None = None,
    sampler: str | None = None,
    statistics: list[str] | None = None,
    steps: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    n_samples: int | None = None,
    assignments: list[str] | None = None,
) -> dict[str, Any]:
    """The override dict for the command-line flags that were given (``None`` = not given)."""
    out: dict[str, Any] = {}
    if plugin is not None:
        out["plugin"] = plugin
    for key, name in (("data", dataset), ("model", model), ("objective", objective), ("sampler", sampler)):
        if name is not None:
            out[key] = {"name": name}
    for a in assignments or []:  # after the names, so --dataset X --set data.n=9 keeps both
        out = merge(out, parse_assignment(a))
    if statistics is not None:
        out["statistics"] = list(statistics)
    train = {k: v for k, v in (("steps", steps), ("seed", seed), ("device", device)) if v is not None}
    if train:
        out = merge(out, {"train": train})
    if n_samples is not None:
        out = merge(out, {"sampler": {"n_samples": n_samples}})
    return out


# --------------------------------------------------------------------------- resolving
def resolve_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    registry: PluginRegistry | None = None,
) -> dict[str, Any]:
    """Merge ``CORE_DEFAULTS`` < plugin ``default_config`` < TOML file < ``overrides`` and validate.

    The plugin is the one named in ``overrides``, else in the file, else ``toy``.
    """
    registry = registry or get_registry()
    overrides = dict(overrides or {})
    file_cfg: dict[str, Any] = {}
    if path is not None:
        file_cfg = load_toml(path)
        check_structure(file_cfg, where=str(path))
    check_structure(overrides, where="command line")
    name = overrides.get("plugin", file_cfg.get("plugin", CORE_DEFAULTS["plugin"]))
    if not isinstance(name, str):
        raise ConfigError(f"'plugin' must be a string, got {type(name).__name__}")
    plugin = registry.get(name)
    cfg = merge(CORE_DEFAULTS, plugin.default_config)
    cfg = merge(cfg, file_cfg)
    cfg = merge(cfg, overrides)
    cfg["plugin"] = name
    cfg = validate(cfg, registry)
    try:  # only here, not in validate(): a checkpoint's spec may name a device this machine lacks
        resolve_device(cfg["train"]["device"])
    except ValueError as exc:
        raise ConfigError(f"[train] {exc}") from None
    return cfg


def check_structure(cfg: Mapping[str, Any], where: str) -> None:
    """Top-level keys known and sections are tables (before merging, so errors name their source)."""
    for key, value in cfg.items():
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{where}: unknown top-level key {key!r}; known: {', '.join(TOP_LEVEL_KEYS)}")
        if key in SECTIONS and not isinstance(value, Mapping):
            raise ConfigError(f"{where}: [{key}] must be a table, got {type(value).__name__} {value!r}")


def entry(item: Any, kind: str) -> tuple[str, dict[str, Any]]:
    """A list entry ``"name"`` or ``{name = "...", ...options}`` as ``(name, options)``."""
    if isinstance(item, str):
        return item, {}
    if isinstance(item, Mapping) and isinstance(item.get("name"), str):
        opts = {k: v for k, v in item.items() if k != "name"}
        return item["name"], opts
    raise ConfigError(f"each {kind} must be a name or a table with a string 'name', got {item!r}")


def section(cfg: Mapping[str, Any], key: str) -> tuple[str, dict[str, Any]]:
    """A named section as ``(name, options)``."""
    sec = cfg.get(key)
    if not isinstance(sec, Mapping):
        raise ConfigError(f"[{key}] is missing: give it a table with a 'name'")
    name = sec.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"[{key}] needs a string 'name', got {name!r}")
    return name, {k: v for k, v in sec.items() if k != "name"}


def validate(cfg: dict[str, Any], registry: PluginRegistry | None = None) -> dict[str, Any]:
    """Check a merged config (keys, types, names) and return it with [train] filled in completely."""
    registry = registry or get_registry()
    check_structure(cfg, where="config")
    name = cfg.get("plugin")
    if not isinstance(name, str):
        raise ConfigError(f"'plugin' must be a string, got {name!r}")
    plugin: Plugin = registry.get(name)

    for key in NAMED_SECTIONS:
        section(cfg, key)
    lookup(plugin.datasets, section(cfg, "data")[0], "dataset", plugin.name)
    lookup(plugin.models, section(cfg, "model")[0], "model", plugin.name)
    lookup(OBJECTIVES, section(cfg, "objective")[0], "objective")
    lookup(SAMPLERS, section(cfg, "sampler")[0], "sampler")

    _check_statistics(cfg.get("statistics", []), plugin, "statistics")

    sampler = cfg["sampler"]
    n = sampler.get("n_samples", 2000)
    if not _is_int(n) or n < 1:
        raise ConfigError(f"[sampler] n_samples must be a positive integer, got {n!r}")
    bs = sampler.get("batch_size")
    if bs is not None and (not _is_int(bs) or bs < 1):
        raise ConfigError(f"[sampler] batch_size must be a positive integer, got {bs!r}")
    init = sampler.get("init_sigma")
    if init is not None and (not _is_number(init) or init <= 0):
        raise ConfigError(f"[sampler] init_sigma must be a positive number, got {init!r}")

    ev = cfg.setdefault("evaluate", {})
    for key in ev:
        if key not in EVALUATE_KEYS:
            raise ConfigError(f"[evaluate] unknown key {key!r}; known: {', '.join(EVALUATE_KEYS)}")
    metrics = ev.get("metrics", [])
    if not isinstance(metrics, list):
        raise ConfigError(f"[evaluate] metrics must be a list, got {type(metrics).__name__} {metrics!r}")
    for m in metrics:
        lookup(plugin.metrics, entry(m, "metric")[0], "metric", plugin.name)
    _check_statistics(ev.get("statistics", []), plugin, "[evaluate] statistics")

    hybrid = cfg.get("hybrid", {})
    for key, value in hybrid.items():
        if key not in HYBRID_KEYS:
            raise ConfigError(f"[hybrid] unknown key {key!r}; known: {', '.join(HYBRID_KEYS)}")
        if key == "calibrate_method":
            if value not in CALIBRATION_METHODS:
                known = ", ".join(sorted(CALIBRATION_METHODS))
                raise ConfigError(f"[hybrid] calibrate_method must be one of {known}, got {value!r}")
            continue
        if key == "denoised":
            if not isinstance(value, bool):
                raise ConfigError(f"[hybrid] denoised must be true or false, got {value!r}")
            continue
        if key == "calibrate_max_kl":
            if not _is_number(value) or not value > 0:
                raise ConfigError(f"[hybrid] calibrate_max_kl must be a number > 0 (inf: no bound), got {value!r}")
            continue
        if not _is_number(value) or value < 0:
            raise ConfigError(f"[hybrid] {key} must be a number >= 0, got {value!r}")
        if key in ("calibrate_rounds", "calibrate_samples") and not _is_int(value):
            raise ConfigError(f"[hybrid] {key} must be an integer, got {value!r}")

    cfg["train"] = check_train(cfg.get("train", {}))
    if cfg.get("statistics") and cfg["train"].get("eta_lr") == 0 and not hybrid.get("calibrate_rounds"):
        raise ConfigError(
            "train.eta_lr = 0 freezes η at 0 during training: set [hybrid] calibrate_rounds to fit η "
            "by moment matching afterwards, or the hybrid model is the vanilla one"
        )
    order = {k: i for i, k in enumerate(TOP_LEVEL_KEYS)}
    return dict(sorted(cfg.items(), key=lambda kv: order[kv[0]]))


def _check_statistics(items: Any, plugin: Plugin, where: str) -> None:
    if not isinstance(items, list):
        raise ConfigError(f"{where} must be a list of names or tables, got {type(items).__name__} {items!r}")
    seen = set()
    for item in items:
        sname, _ = entry(item, "statistic")
        lookup(plugin.statistics, sname, "statistic", plugin.name)
        if sname in seen:
            raise ConfigError(f"{where}: statistic {sname!r} is listed twice")
        seen.add(sname)


def check_train(train: Mapping[str, Any]) -> dict[str, Any]:
    """Type-check [train] against :class:`~hebm_core.trainer.TrainConfig` and fill in its defaults."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for key, value in train.items():
        if key not in fields:
            raise ConfigError(f"[train] unknown key {key!r}; known: {', '.join(fields)}")
        f = fields[key]
        default = f.default if f.default is not dataclasses.MISSING else None
        if value is None and "None" in str(f.type):  # e.g. grad_clip, ema_decay (Python API / checkpoint specs)
            continue
        if not _type_ok(value, default):
            want = _type_name(default)
            raise ConfigError(f"[train] {key} must be {want}, got {type(value).__name__} {value!r}")
    try:
        tc = TrainConfig.from_dict(dict(train))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[train] {exc}") from None
    return dataclasses.asdict(tc)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_ok(value: Any, default: Any) -> bool:
    """Judge a value by its field's default: bool/int/float/str exactly, anything for ``None`` defaults."""
    if default is None:
        return value is None or isinstance(value, (bool, int, float, str))
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return _is_int(value)
    if isinstance(default, float):
        return _is_number(value)
    if isinstance(default, str):
        return isinstance(value, str)
    return True


def _type_name(default: Any) -> str:
    for t, name in ((bool, "true or false"), (int, "an integer"), (float, "a number"), (str, "a string")):
        if isinstance(default, t):
            return name
    return "a value"
