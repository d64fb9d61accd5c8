"""Evaluation stage: the configured metrics (ΔT per statistic always among them); the test NLL by AIS
is :func:`hebm_core.runs.nll.log_likelihood`, re-exported here."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from hebm_core import tree
from hebm_core.config import ConfigError, Entry
from hebm_core.metrics import Metric
from hebm_core.registry import get_registry, lookup
from hebm_core.runs.build import Experiment, accepts, call_factory, make_statistic
from hebm_core.runs.conditioning import TargetHit, targets_of
from hebm_core.runs.nll import log_likelihood
from hebm_core.tree import Sample

__all__ = ["build_metrics", "evaluate", "log_likelihood", "delta_t_of"]


def build_metrics(exp: Experiment, metrics: list[Entry] | None = None) -> list[Metric]:
    """The metrics named in ``[evaluate] metrics`` (the plugin's and the core's), with the core's
    ``delta_t`` first when they do not name it: ΔT per statistic is always computed, against the
    training data too when a test split exists; a hybrid with ``target`` statistics also gets
    :class:`~hebm_core.runs.conditioning.TargetHit`."""
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
    targets = targets_of(exp.config.statistics, exp.statistics, exp.example)
    hybrid = {e.name for e in exp.config.statistics}
    reported = [e for e in exp.config.evaluate.statistics if e.target is not None and e.name not in hybrid]
    if reported:
        stats = [make_statistic(e, exp.plugin, get_registry()) for e in reported]
        targets += targets_of(reported, stats, exp.example)
    return [*built, TargetHit(targets)] if targets else built


def evaluate(samples: Sample, exp: Experiment, metrics: list[Metric] | None = None) -> dict[str, float]:
    """Every metric of ``metrics`` (default: :func:`build_metrics`) on ``samples`` against the reference data.

    ΔT covers the trained statistics, ``[evaluate] statistics`` and the plugin's default
    statistics, so a vanilla model reports ΔT for the statistics a hybrid model would use.
    """
    built = build_metrics(exp) if metrics is None else metrics
    samples = tree.to_device(samples, "cpu")
    reference = tree.to_device(exp.reference, "cpu")
    out: dict[str, float] = {}
    with warnings.catch_warnings(record=True) as caught:  # a metric's warnings become the report's notes
        warnings.simplefilter("always")
        for m in built:
            try:
                m.update(samples, reference)
                out.update(m.compute())
            except (ValueError, RuntimeError) as exc:  # e.g. an MMD of one sample
                name = getattr(m, "name", type(m).__name__)
                raise ConfigError(f"metric {name!r} cannot be computed: {exc}") from None
    exp.notes.extend(n for n in dict.fromkeys(str(w.message) for w in caught) if n not in exp.notes)
    return out


def delta_t_of(metrics: Mapping[str, float]) -> dict[str, float]:
    """``{statistic: ΔT}`` from a metrics dict."""
    return {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("delta_t/")}
