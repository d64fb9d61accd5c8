"""Vanilla against hybrid: same seed, model and budget; over several seeds (and data folds) with a
paired summary.

Direction of each metric in the summary: MMD, ΔT and 1-NNA are better lower (1-NNA's ideal is
50 %, and generated sets are above it), COV and everything named ``valid``/``unique``/``novel``/
``connected`` better higher.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics as st
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hebm_core.config import ConfigError, Factory, RunConfig
from hebm_core.registry import PluginRegistry, get_registry
from hebm_core.runs.outputs import prepare_out_dir
from hebm_core.runs.report import environment, write_json
from hebm_core.runs.workflow import run

__all__ = ["compare", "compare_seeds", "summarise", "HIGHER_IS_BETTER"]

#: substrings of metric keys that are better when higher (everything else: lower is better)
HIGHER_IS_BETTER = ("cov_", "valid", "unique", "novel", "connected")
#: bookkeeping keys that are not quality metrics
SKIP = (
    "time_s",
    "check_pairs",
    "n_generated",
    "n_reference",
    "emd_points",
    "subsample",
    "data_t/",
    "model_t/",
    "train_t/",
    "_se/",
    "/class_pct/",
    "/class_reference_pct/",
)


def _pair(hybrid: RunConfig) -> tuple[RunConfig, RunConfig]:
    """The vanilla and hybrid configs: both evaluate the hybrid's statistics and ``[evaluate] statistics``
    (with their targets, so the vanilla side reports how far it is from them)."""
    if not hybrid.statistics:
        raise ConfigError(
            "compare needs at least one statistic for the hybrid model (statistics = [...] or --statistic)"
        )
    hybrid = hybrid.replace()
    names = {s.name for s in hybrid.statistics}
    evaluated = [*hybrid.statistics, *(s for s in hybrid.evaluate.statistics if s.name not in names)]
    hybrid.evaluate.statistics = [
        s.__class__(s.name, dict(s.options), s.moments, target=s.target, tolerance=s.tolerance) for s in evaluated
    ]
    vanilla = hybrid.replace(statistics=[])
    return vanilla, hybrid


def compare(
    config: RunConfig | Mapping[str, Any],
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
    (positive: the hybrid model matches the statistic better) with each side's standard error.
    """
    registry = registry or get_registry()
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config, registry)
    vanilla_cfg, hybrid_cfg = _pair(cfg)
    out = prepare_out_dir(out_dir)
    shared = out / "vanilla" / "checkpoint.pt" if share_network and hybrid_cfg.train.eta_lr == 0 else None
    reports = {
        "vanilla": run(vanilla_cfg, out / "vanilla", resume=resume, registry=registry),
        "hybrid": run(hybrid_cfg, out / "hybrid", resume=resume, registry=registry, network_from=shared),
    }
    if any("rank" in r for r in reports.values()):
        return reports
    result = {**environment(), **_side_by_side(reports["vanilla"], reports["hybrid"])}
    result["config"] = hybrid_cfg.to_dict()
    result["statistics"] = [s.name for s in hybrid_cfg.statistics]
    result["runs"] = {"vanilla": str(out / "vanilla"), "hybrid": str(out / "hybrid")}
    write_json(out / "compare.json", result)
    return result


def _side_by_side(v: dict[str, Any], h: dict[str, Any]) -> dict[str, Any]:
    keys = sorted(set(v.get("metrics", {})) | set(h.get("metrics", {})))
    side = {k: {"vanilla": v.get("metrics", {}).get(k), "hybrid": h.get("metrics", {}).get(k)} for k in keys}
    delta = {}
    for stat in sorted(set(v.get("delta_t", {})) & set(h.get("delta_t", {}))):
        dv, dh = v["delta_t"][stat], h["delta_t"][stat]
        delta[stat] = {
            "vanilla": dv,
            "hybrid": dh,
            "delta_t_reduction_pct": round(100 * (dv - dh) / dv, 2) if dv and dh is not None else None,
        }
        for name, rep in (("vanilla", v), ("hybrid", h)):
            se = rep.get("metrics", {}).get(f"delta_t_se/{stat}")
            if se is not None:
                delta[stat][f"{name}_se"] = se
    return {
        "eta": h.get("eta", {}),
        "delta_t": delta,
        "metrics": side,
        "training": {"vanilla": v.get("training"), "hybrid": h.get("training")},
        "sampling": {"vanilla": v.get("sampling"), "hybrid": h.get("sampling")},
    }


# --------------------------------------------------------------------------- several seeds
def higher_is_better(key: str) -> bool:
    return any(s in key for s in HIGHER_IS_BETTER)


def summarise(per_seed: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Per metric: mean/sd per side, the paired difference with its standard error, seeds where hybrid ≥ vanilla."""
    keys = sorted({k for rep in per_seed.values() for k in rep["metrics"] if not any(s in k for s in SKIP)})
    out: dict[str, Any] = {}
    for key in keys:
        pairs = [
            (rep["metrics"][key]["vanilla"], rep["metrics"][key]["hybrid"])
            for rep in per_seed.values()
            if key in rep["metrics"] and None not in rep["metrics"][key].values()
        ]
        if not pairs:
            continue
        v, h = [p[0] for p in pairs], [p[1] for p in pairs]
        diff = [b - a for a, b in pairs]
        up = higher_is_better(key)
        out[key] = {
            "higher_is_better": up,
            "vanilla_mean": st.fmean(v),
            "vanilla_sd": st.stdev(v) if len(v) > 1 else None,
            "hybrid_mean": st.fmean(h),
            "hybrid_sd": st.stdev(h) if len(h) > 1 else None,
            "diff_mean": st.fmean(diff),
            "diff_se": st.stdev(diff) / math.sqrt(len(diff)) if len(diff) > 1 else None,
            "seeds_hybrid_no_worse": sum((b >= a) if up else (b <= a) for a, b in pairs),
            "seeds": len(pairs),
        }
    return out


def _plot(summary: dict[str, Any], path: Path) -> Path | None:
    """One panel per metric: vanilla and hybrid means with ±1 sd over seeds (matplotlib if installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keys = list(summary)
    if not keys:
        return None
    cols = min(4, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        s = summary[key]
        ax.bar(
            [0, 1],
            [s["vanilla_mean"], s["hybrid_mean"]],
            yerr=[s["vanilla_sd"] or 0, s["hybrid_sd"] or 0],
            color=["#999999", "#3b7dd8"],
            capsize=4,
        )
        ax.set_xticks([0, 1], ["vanilla", "hybrid"])
        arrow = "↑" if s["higher_is_better"] else "↓"
        ax.set_title(f"{key.split('/', 1)[-1]} {arrow}  ({s['seeds_hybrid_no_worse']}/{s['seeds']})", fontsize=9)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def compare_seeds(
    config: RunConfig,
    out_dir: str | Path,
    seeds: Sequence[int],
    folds: bool = False,
    registry: PluginRegistry | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """:func:`compare` once per training seed into ``out_dir/seed<S>``, then ``compare_seeds.json`` and a plot.

    ``folds`` makes it a cross-validation: seed S also holds out fold S of the data
    (``data.fold = S``), so a small test set's own sampling error averages out over the folds
    instead of biasing every seed the same way. With ``resume``, a seed whose ``compare.json``
    exists is read, not run again.
    """
    out = Path(out_dir)
    per_seed: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        done = out / f"seed{seed}" / "compare.json"
        if resume and done.is_file():
            per_seed[seed] = json.loads(done.read_text())
            continue
        options = {**config.data.options, **({"fold": seed} if folds else {})}
        cfg = config.replace(
            data=Factory(config.data.name, options), train=dataclasses.replace(config.train, seed=seed)
        )
        per_seed[seed] = compare(cfg, out / f"seed{seed}", registry=registry, resume=resume)
    summary = summarise(per_seed)
    picture = _plot(summary, out / "compare_seeds.png")
    result = {
        **environment(),
        "config": per_seed[seeds[0]]["config"],
        "seeds": list(seeds),
        "summary": summary,
        "folds": {s: rep["config"].get("data", {}).get("fold", 0) for s, rep in per_seed.items()},
        "eta": {s: rep["eta"] for s, rep in per_seed.items()},
        "delta_t": {s: rep["delta_t"] for s, rep in per_seed.items()},
        "per_seed": {s: rep["metrics"] for s, rep in per_seed.items()},
        "training_s": {
            s: {k: (v or {}).get("wall_time_s") for k, v in rep["training"].items()} for s, rep in per_seed.items()
        },
        "plot": str(picture) if picture else None,
    }
    write_json(out / "compare_seeds.json", result)
    return result
