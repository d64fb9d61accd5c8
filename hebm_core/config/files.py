"""Config files and command-line overrides: read TOML, merge tables, parse ``--set KEY=VALUE``.

A configuration is a plain dict with this shape (every section optional in a file)::

    plugin = "toy"
    statistics = ["radius"]        # names or tables {name = "...", ...options}; [] = vanilla model
    [data]      name = "rings"     # + options for the plugin's dataset factory
    [model]     name = "mlp"       # + options for the model factory, called as factory(example=batch, **options)
    [objective] name = "dsm"       # + options (the core's objectives and the plugin's)
    [train]     steps = 2000       # hebm_core.training.TrainConfig fields
    [sampler]   name = "annealed_langevin"   # + n_samples, batch_size, init_sigma, sampler options
    [evaluate]  metrics = ["mmd"]  # + statistics = [...] evaluated besides the trained ones
    [hybrid]    sigma_power = 0    # how the statistic term scales, and the η calibration

Merging is recursive over tables, except that a section whose ``name`` changes is replaced as a
whole (the old options belonged to the old factory) and lists are replaced, never concatenated.
:mod:`hebm_core.config.schema` turns the merged dict into a typed :class:`RunConfig`.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hebm_core.options import ConfigError

__all__ = [
    "NAMED_SECTIONS",
    "SECTIONS",
    "TOP_LEVEL_KEYS",
    "load_toml",
    "merge",
    "parse_assignment",
    "toml_value",
    "cli_overrides",
    "check_structure",
    "entry",
]

#: sections naming a factory with ``name`` plus its options
NAMED_SECTIONS = ("data", "model", "objective", "sampler")
SECTIONS = (*NAMED_SECTIONS, "train", "evaluate", "hybrid")
TOP_LEVEL_KEYS = ("plugin", "statistics", *SECTIONS)
#: a config file larger than this is refused before it is parsed
MAX_CONFIG_BYTES = 1 << 20


# --------------------------------------------------------------------------- reading and merging
def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error, non-UTF-8 bytes, absurd nesting or size is one line with the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: {path.stat().st_size} bytes is too large for a config file (limit {MAX_CONFIG_BYTES})"
        )
    try:
        raw = path.read_bytes()
        text = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8")  # a BOM, as Windows editors write one
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); TOML files must be UTF-8") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a run configuration") from None


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


def toml_value(value: Any) -> str:
    """``value`` as a TOML inline value (what ``--set KEY=…`` and a config file read back):
    strings quoted, lists in brackets, tables as ``{key = value}``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _toml_key(key: Any) -> str:
    text = str(key)
    return text if text and all(c.isalnum() or c in "-_" for c in text) else json.dumps(text)


def parse_assignment(text: str) -> dict[str, Any]:
    """``"train.lr=1e-3"`` -> ``{"train": {"lr": 0.001}}``; the value is read as TOML, else as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set expects KEY=VALUE with a dotted key (e.g. train.lr=1e-3), got {text!r}")
    value: Any = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:
        raise ConfigError(f"--set {key}: the value is nested too deeply") from None
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
    strict: bool | None = None,
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
    if strict is not None:
        out = merge(out, {"train": {"strict": strict}, "sampler": {"strict": strict}})
    return out


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
