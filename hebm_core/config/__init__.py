"""Run configuration: TOML files and ``--set`` overrides (:mod:`~hebm_core.config.files`) resolved
once into a typed :class:`RunConfig` (:mod:`~hebm_core.config.schema`)."""

from hebm_core.config.files import (
    NAMED_SECTIONS,
    SECTIONS,
    TOP_LEVEL_KEYS,
    check_structure,
    cli_overrides,
    entry,
    load_toml,
    merge,
    parse_assignment,
    toml_value,
)
from hebm_core.config.schema import (
    Entry,
    EvaluateConfig,
    Factory,
    HybridConfig,
    RunConfig,
    SamplerConfig,
    StatisticEntry,
    resolve_config,
)
from hebm_core.options import ConfigError
from hebm_core.registry import get_registry
from hebm_core.training.config import TrainConfig

__all__ = [
    "NAMED_SECTIONS",
    "SECTIONS",
    "TOP_LEVEL_KEYS",
    "ConfigError",
    "Entry",
    "EvaluateConfig",
    "Factory",
    "HybridConfig",
    "RunConfig",
    "SamplerConfig",
    "StatisticEntry",
    "TrainConfig",
    "check_structure",
    "cli_overrides",
    "entry",
    "get_registry",
    "load_toml",
    "merge",
    "parse_assignment",
    "toml_value",
    "resolve_config",
]
