"""Vanilla against hybrid over several training seeds: is the hybrid's gain bigger than the noise?

``hebm compare`` on one seed cannot tell a real difference from seed noise when the test set is
small (PointFlow's metrics on 32 shapes move by several points between seeds). This script runs
``hebm compare`` once per seed (same config and flags as the CLI; each seed in its own folder, so
``--resume`` reuses finished runs), then writes one JSON report with every metric per seed, the
mean and standard deviation of each side, the paired difference hybrid − vanilla with its
standard error, and how many seeds the hybrid is no worse on, plus a plot.

Direction: MMD, ΔT and 1-NNA are better lower (1-NNA's ideal is 50 %, and generated sets here
are always above it), COV and everything named ``valid``/``unique``/``novel`` better higher.

``--folds`` makes it a cross-validation: seed S also holds out fold S of the data (``data.fold``),
so a small test set's own sampling error averages out over the folds instead of biasing every seed
the same way.

    python benchmarks/compare_seeds.py --plugin pointcloud --statistic laplacian_shape \\
        --set 'evaluate.statistics=[{name="laplacian",k=8}]' --seeds 0 1 2 --out runs/pc_seeds
"""

from __future__ import annotations

import argparse
import json
import math
import statistics as st
import sys
from pathlib import Path
from typing import Any

from hebm_core import pipeline
from hebm_core.cli import _add_config_args, _config

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
    "/class_pct/",  # a class's share is better neither way (their distance, class_tv_pct, is)
    "/class_reference_pct/",
)


def higher_is_better(key: str) -> bool:
    return any(s in key for s in HIGHER_IS_BETTER)


def summarise(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Mean/sd per side, paired difference with its standard error, and seeds where hybrid ≥ vanilla."""
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


def print_summary(summary: dict[str, Any], prefix: str = "", side: str = "hybrid") -> None:
    """One line per metric: both means, the paired difference ± SE, seeds where ``side`` is no worse."""
    for key, s in summary.items():
        se = f" ± {s['diff_se']:.3g}" if s["diff_se"] is not None else ""
        print(
            f"{prefix}{key:36s} vanilla {s['vanilla_mean']:.5g}  {side} {s['hybrid_mean']:.5g}  "
            f"diff {s['diff_mean']:+.3g}{se}  {side} no worse {s['seeds_hybrid_no_worse']}/{s['seeds']}"
        )


def plot(summary: dict[str, Any], path: Path) -> Path | None:
    """One panel per metric: vanilla and hybrid means with ±1 sd over seeds (matplotlib if installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keys = list(summary)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _add_config_args(p, sampling=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (one compare each)")
    p.add_argument("--resume", action="store_true", help="reuse finished seeds' runs in --out")
    p.add_argument(
        "--folds",
        action="store_true",
        help="cross-validation: seed S also holds out fold S of the data (--set data.fold=S), so the seeds' "
        "test sets differ; with the hash split, test_fraction 0.25 and a multiple of 4 shapes per category "
        "(the shared ShapeNet's 20), seeds 0 1 2 3 hold every shape out once",
    )
    p.add_argument(
        "--collect",
        action="store_true",
        help="run nothing: report the finished compares <out>/seed<S>/compare.json (config flags are ignored)",
    )
    p.add_argument("--report", default="benchmarks/results/compare_seeds.json", help="JSON report path")
    args = p.parse_args(argv)
    out = Path(args.out or "runs/compare_seeds")
    per_seed: dict[int, dict[str, Any]] = {}
    assignments = list(args.set or [])
    for seed in args.seeds:
        if args.collect:
            done = out / f"seed{seed}" / "compare.json"
            if not done.is_file():
                p.error(f"--collect: {done} is missing (run the compare first)")
            per_seed[seed] = json.loads(done.read_text())
            continue
        args.seed = seed
        args.set = assignments + ([f"data.fold={seed}"] if args.folds else [])
        cfg = _config(args)
        print(f"seed {seed}: hebm compare -> {out / f'seed{seed}'}", file=sys.stderr, flush=True)
        per_seed[seed] = pipeline.compare(cfg, out / f"seed{seed}", resume=args.resume)
    summary = summarise(per_seed)
    first = per_seed[args.seeds[0]]
    report_path = Path(args.report)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    picture = plot(summary, report_path.with_suffix(".png"))
    pipeline.write_json(
        report_path,
        {
            **pipeline.environment(),
            "command": " ".join(sys.argv),
            "config": first["config"],
            "seeds": args.seeds,
            "summary": summary,
            "folds": {s: rep["config"].get("data", {}).get("fold", 0) for s, rep in per_seed.items()},
            "eta": {s: rep["eta"] for s, rep in per_seed.items()},
            "delta_t": {s: rep["delta_t"] for s, rep in per_seed.items()},
            "per_seed": {s: rep["metrics"] for s, rep in per_seed.items()},
            "training_s": {
                s: {k: (v or {}).get("wall_time_s") for k, v in rep["training"].items()} for s, rep in per_seed.items()
            },
            "plot": str(picture) if picture else None,
        },
    )
    print_summary(summary)
    print(f"wrote {report_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
