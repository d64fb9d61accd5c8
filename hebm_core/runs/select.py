"""The selection stage: which of a bank of candidate statistics the trained network's tilt needs.

Trains the vanilla network (or takes a finished run's), draws one set of samples with the run's
sampler, evaluates every candidate on them, on the training data (fit) and on held-out data (the
test split, else a seeded 30 % of the training rows that the fit does not see), and runs
:func:`hebm_core.selection.select`. Writes ``selection.json``: every component with its
standardised gap before and after the tilt, its held-out gain and interval, the decision and why,
and the ``statistics = [...]`` to train a hybrid with, with the tilt's η as ``eta_start`` for the
calibration's ``[hybrid] calibrate_start`` (both also as TOML, for a config or ``--set``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hebm_core import tree
from hebm_core.config import ConfigError, RunConfig, StatisticEntry, toml_value
from hebm_core.registry import PluginRegistry, get_registry
from hebm_core.runs.build import build, check_fit, make_statistic
from hebm_core.runs.checkpoints import load_run
from hebm_core.runs.outputs import prepare_out_dir
from hebm_core.runs.report import environment, write_json
from hebm_core.runs.sampling import SamplingPlan
from hebm_core.runs.workflow import train
from hebm_core.selection import SelectionOptions, select
from hebm_core.statistics import Statistic
from hebm_core.tree import Sample

__all__ = ["select_statistics"]


def _stacked(stats: list[Statistic], x: Sample, chunk: int = 1024) -> torch.Tensor:
    n = tree.batch_size(x)
    with torch.no_grad():
        parts = [
            torch.cat([s(tree.index(x, slice(i, i + chunk))).double() for s in stats], 1) for i in range(0, n, chunk)
        ]
    return torch.cat(parts).cpu()


def _splits(bundle, seed: int) -> tuple[Sample, Sample]:
    """Fit rows and held-out rows: the training data and the test split, or a seeded 70/30 split."""
    train = bundle.training_subset(10000)
    if bundle.test is not None:
        return train, bundle.test
    n = tree.batch_size(train)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    cut = int(0.7 * n)
    return tree.index(train, perm[:cut]), tree.index(train, perm[cut:])


def select_statistics(
    config: RunConfig,
    out_dir: str | Path,
    checkpoint: str | Path | None = None,
    n: int | None = None,
    options: SelectionOptions | None = None,
    registry: PluginRegistry | None = None,
) -> dict[str, Any]:
    """Select among ``config.statistics`` (the candidates) for the vanilla network of ``config``
    (trained into ``out_dir/vanilla``, or the network of ``checkpoint``); writes ``selection.json``."""
    registry = registry or get_registry()
    out = prepare_out_dir(out_dir)
    if not config.statistics:
        raise ConfigError("select-statistics needs candidate statistics (statistics = [...] or --statistic)")
    if checkpoint is not None:
        exp, model = load_run(checkpoint, config.train.device, registry)
        model = getattr(model, "base", model)  # a hybrid's network alone: the tilt starts from η = 0
    else:
        exp = build(config.replace(statistics=[]), registry)
        trainer, _ = train(exp, out / "vanilla", resume=True)
        model = trainer.sampling_model()
    plugin = registry.get(exp.config.plugin)
    entries = [StatisticEntry(s.name, dict(s.options), s.moments) for s in config.statistics]
    candidates = [make_statistic(e, plugin, registry) for e in entries]
    for stat in candidates:
        check_fit(stat, exp.example, plugin.name, differentiable=True)
    plan = SamplingPlan.build(exp, config.sampler)
    samples, sampling = plan.draw(model, exp, n=n)
    fit, held = _splits(exp.bundle, config.train.seed)
    widths = [_stacked([s], tree.index(exp.example, slice(0, 2))).shape[1] for s in candidates]
    names = [c for s, k in zip(candidates, widths) for c in s.names(k)]
    opts = options or SelectionOptions(seed=config.train.seed)
    result = select(_stacked(candidates, samples), _stacked(candidates, fit), _stacked(candidates, held), names, opts)
    report = _report(config, entries, candidates, widths, result, sampling)
    write_json(out / "selection.json", report)
    return report


def _kept_entry(entry: StatisticEntry, stat: Statistic, width: int, kept: list[str]) -> str | dict[str, Any]:
    """The entry to train with: as given when every component is kept, else with ``components``
    naming the kept ones (the core or the factory picks them)."""
    if len(kept) == width:
        return entry.to_config()
    prefix = f"{stat.name}."
    short = [n[len(prefix) :] if n.startswith(prefix) else n for n in kept]
    return StatisticEntry(entry.name, {**entry.options, "components": short}, entry.moments).to_config()


#: a kept component whose fitted η exceeds this (per data sd) conditions on an edge of the samples'
#: range (zero valency excess, one fragment): its η is bounded only by the ridge, no start for Langevin
EDGE_ETA_SD = 10.0


def _eta_start(result, candidates, kept_by) -> tuple[dict[str, Any], list[str]]:
    """The tilt's η per kept statistic for ``[hybrid] calibrate_start``; edge components start at 0."""
    rows = {c["name"]: c for c in result.components}
    edge = [n for kept in kept_by.values() for n in kept if abs(rows[n]["eta_sd"]) > EDGE_ETA_SD]
    start = {}
    for i, kept in kept_by.items():
        if kept:
            values = [0.0 if n in edge else result.eta[n] for n in kept]
            start[candidates[i].name] = values if len(values) > 1 else values[0]
    return start, edge


def _report(config, entries, candidates, widths, result, sampling) -> dict[str, Any]:
    owners = [i for i, k in enumerate(widths) for _ in range(k)]
    kept_by: dict[int, list[str]] = {}
    for i, c in zip(owners, result.components):
        kept_by.setdefault(i, [])
        if c["decision"] == "keep":
            kept_by[i].append(c["name"])
    notes = []
    ess = result.summary["importance_ess"]
    if ess < 0.1 * result.summary["n_model_samples"]:
        notes.append(
            f"the tilt's importance ESS is {ess:.0f} of {result.summary['n_model_samples']} samples: the model's "
            "samples barely cover the data's statistics, so gains are uncertain; draw more samples (--n)"
        )
    unreachable = [c["name"] for c in result.components if c.get("unreachable")]
    if unreachable:
        notes.append(
            f"dropped as unreachable by reweighting: {', '.join(unreachable)} (the model's samples never come near "
            "the data's value; more samples, or a hybrid calibrated on fresh chains, may still use them)"
        )
    statistics = [_kept_entry(entries[i], candidates[i], widths[i], kept) for i, kept in kept_by.items() if kept]
    eta_start, edge = _eta_start(result, candidates, kept_by)
    if edge:
        notes.append(
            f"eta_start leaves {', '.join(edge)} at 0: the data sit at the edge of the samples' range there "
            f"(|η| > {EDGE_ETA_SD:g} per sd), where the tilt's η only grows with less ridge"
        )
    return {
        **environment(),
        "config": config.to_dict(),
        "candidates": [e.to_config() for e in entries],
        "components": result.components,
        "kept": result.kept,
        "eta": result.eta,
        "statistics": statistics,
        "statistics_toml": toml_value(statistics),
        "eta_start": eta_start,
        "eta_start_toml": toml_value(eta_start),
        "summary": result.summary,
        "sampling": sampling,
        "notes": notes,
    }
