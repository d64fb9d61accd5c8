"""The configuration reference: one row per key, generated from the section dataclasses (the only
place defaults are written), printed by ``hebm config --reference`` and kept in the README."""

from __future__ import annotations

import math

from hebm_core.config.schema import DEFAULT_OBJECTIVE, DEFAULT_PLUGIN, EvaluateConfig, HybridConfig, SamplerConfig
from hebm_core.training.config import TrainConfig

__all__ = ["reference_rows", "reference_table"]

_TOP = [
    ("plugin", DEFAULT_PLUGIN, "the plugin whose datasets, models and statistics the run uses"),
    (
        "statistics",
        [],
        "the hybrid's statistics: names, import paths or tables {name, options…, moments, sigma_power, "
        "components, target, tolerance}; [] = vanilla",
    ),
    ("data.name", "(plugin)", "the plugin's dataset; other data.* keys are its options"),
    ("model.name", "(plugin)", "the plugin's network, called with example=<256 training samples>; model.* options"),
    ("objective.name", DEFAULT_OBJECTIVE, "dsm, ssm, esm, cd, pcd, nce (or the plugin's); objective.* options"),
]


def _fmt(v: object) -> str:
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str) and not v.startswith("("):
        return f'"{v}"'
    return str(v)


def reference_rows() -> list[tuple[str, str, str]]:
    """``(key, default, meaning)`` for every config key the core reads."""
    rows = [(k, _fmt(d), doc) for k, d, doc in _TOP]
    for cls in (TrainConfig, SamplerConfig, EvaluateConfig, HybridConfig):
        rows += [(f"{cls.section}.{k}", _fmt(d), doc) for k, d, doc in cls.reference()]
    rows.append(
        ("sampler.*", "", "any other key is an option of the sampler class (steps_per_sigma, eps, step_size, …)")
    )
    return rows


def reference_table() -> str:
    """The rows as a Markdown table."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{k}` | `{d}` | {doc} |" if d else f"| `{k}` | | {doc} |" for k, d, doc in reference_rows()]
    return "\n".join(lines)
