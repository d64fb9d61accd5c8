"""Conditional sampling through the hybrid: a statistic with a ``target`` mean.

For the exponential tilt ``p ∝ p_θ·exp(η·T)``, moment matching finds the η whose model mean of T is
a given value; matching the data's mean gives the data-calibrated hybrid, matching a user's value
(``{name = "elements", target = {N = 2}}``) gives the closest distribution to the network's whose
mean of T is that value: conditional generation with the same machinery. Components without a
target keep the data's mean. The calibration gets the data's statistics shifted to the targets
(variances kept), and the report gets, per targeted component, the achieved mean and its standard
error, and with ``tolerance`` the fraction of samples within it of the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.config import ConfigError, StatisticEntry
from hebm_core.metrics import Metric
from hebm_core.statistics import Statistic
from hebm_core.tree import Sample

__all__ = ["Target", "targets_of", "shift_to_targets", "TargetHit"]


@dataclass
class Target:
    """Targets of one statistic: its ``column`` offset in the stacked statistics, ``values``
    (component index -> target mean), the component names and the hit ``tolerance``."""

    statistic: Statistic
    column: int
    values: dict[int, float]
    names: list[str]
    tolerance: float | None


def _values(entry: StatisticEntry, names: list[str]) -> dict[int, float]:
    t = entry.target
    if isinstance(t, dict):
        short = [n.split(".", 1)[-1] for n in names]
        unknown = [k for k in t if k not in short and k not in names]
        if unknown:
            raise ConfigError(f"statistic {entry.name!r}: target names {unknown}, its components are {short}")
        pairs = enumerate(zip(names, short))
        return {i: float(t[n] if n in t else t[k]) for i, (n, k) in pairs if n in t or k in t}
    if isinstance(t, list):
        if len(t) != len(names):
            raise ConfigError(f"statistic {entry.name!r}: target has {len(t)} values for {len(names)} components")
        return {i: float(v) for i, v in enumerate(t)}
    return {i: float(t) for i in range(len(names))}


def targets_of(entries: list[StatisticEntry], statistics: list[Statistic], example: Sample) -> list[Target]:
    """The targeted statistics among a hybrid's (``entries[i]`` configures ``statistics[i]``)."""
    out, column = [], 0
    for entry, stat in zip(entries, statistics):
        with torch.no_grad():
            k = stat(tree.index(example, slice(0, 2))).shape[1]
        if entry.target is not None:
            names = stat.names(k)
            out.append(Target(stat, column, _values(entry, names), names, entry.tolerance))
        column += k
    return out


def shift_to_targets(data: Tensor, targets: list[Target]) -> Tensor:
    """The data's statistics ``[N, K]`` with each targeted column moved to mean = its target."""
    data = data.clone()
    for t in targets:
        for i, value in t.values.items():
            col = t.column + i
            data[:, col] += value - data[:, col].mean()
    return data


class TargetHit(Metric):
    """Per targeted component: ``target/<c>``, the samples' mean ``target_model/<c>`` and its standard
    error, and (with a tolerance) ``target_hit/<c>``, the fraction of samples within it."""

    name = "target"

    def __init__(self, targets: list[Target]) -> None:
        self.targets = targets
        self.values: dict[int, list[Tensor]] = {j: [] for j in range(len(targets))}

    def update(self, samples: Sample, reference: Sample | None = None) -> None:
        with torch.no_grad():
            for j, t in enumerate(self.targets):
                self.values[j].append(t.statistic(samples).double().cpu())

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for j, t in enumerate(self.targets):
            v = torch.cat(self.values[j])
            for i, value in t.values.items():
                c, x = t.names[i], v[:, i]
                out[f"target/{c}"] = value
                out[f"target_model/{c}"] = float(x.mean())
                out[f"target_model_se/{c}"] = float(x.std() / len(x) ** 0.5) if len(x) > 1 else float("nan")
                if t.tolerance is not None:
                    out[f"target_hit/{c}"] = float(((x - value).abs() <= t.tolerance).double().mean())
        return out
