"""Tilt trained vanilla networks by other statistics and score each tilt against vanilla, over seeds.

With ``train.eta_lr = 0`` a hybrid's network is the vanilla network of the same seed, bit for bit,
so a statistic can be tried without training again. For each ``hebm compare`` folder in ``--runs``
this script loads ``vanilla/checkpoint.pt``, wraps its (EMA) network in a ``HybridEnergy`` with
each ``--try`` set of statistics, fits η by the run's own moment matching (its ``[hybrid]
calibrate_*``), draws the run's samples with the run's sampler and seed, and evaluates them with the
run's metrics. The vanilla samples are evaluated again with every tried statistic, so every ΔT
has a vanilla side. The report has, per try, the per-seed metrics, η and calibration history (a
tilt none of whose rounds after the first was ``kept`` is the vanilla model), and the summary of
``hebm compare --seeds`` (:func:`hebm_core.runs.summarise`: means, paired difference ± SE, seeds on
which the tilt is no worse); each tilt's samples are saved as ``<run>/tilts/<name>.pt``. The runs'
settings (``[hybrid]``, ``[sampler]``, ``[evaluate]``) are those of ``hybrid/checkpoint.pt``, which
the compare's hybrid was sampled and scored with.

    hebm compare --plugin pointcloud --seeds 0 1 --out runs/seeds_tilt
    python plugins/hebm-pointcloud/benchmarks/tilt_statistics.py --runs runs/seeds_tilt/seed0 runs/seeds_tilt/seed1 \\
        --try laplacian_shape,size --try spacing --out benchmarks/results/pc_tilts.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from hebm_core import runs
from hebm_core.checkpoint import load_checkpoint
from hebm_core.config import StatisticEntry
from hebm_core.training import load_model_state


def parse_try(text: str) -> list[Any]:
    """``a,b`` (statistic names) or a JSON list of names / ``{"name": ..., options}`` tables."""
    text = text.strip()
    if text.startswith("["):
        items = json.loads(text)
        if not isinstance(items, list) or not items:
            raise ValueError(f"--try {text!r}: need a non-empty JSON list")
        return items
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError("--try needs at least one statistic name")
    return names


def label(items: list[Any]) -> str:
    return "+".join(
        i if isinstance(i, str) else i["name"] + "".join(f"_{k}{v}" for k, v in i.items() if k != "name") for i in items
    )


def unique_entries(items: list[Any]) -> list[Any]:
    """Statistic entries (names or tables) once per name, first one kept, in their config form."""
    seen: set[str] = set()
    out = []
    for item in items:
        parsed = StatisticEntry.parse(item, hybrid=False)
        if parsed.name not in seen:
            seen.add(parsed.name)
            out.append(parsed.to_config())
    return out


def print_summary(summary: dict[str, Any], prefix: str = "", side: str = "tilt") -> None:
    """One line per metric: both means, the paired difference ± SE, seeds where ``side`` is no worse."""
    for key, s in summary.items():
        se = f" ± {s['diff_se']:.3g}" if s["diff_se"] is not None else ""
        print(
            f"{prefix}{key:36s} vanilla {s['vanilla_mean']:.5g}  {side} {s['hybrid_mean']:.5g}  "
            f"diff {s['diff_mean']:+.3g}{se}  {side} no worse {s['seeds_hybrid_no_worse']}/{s['seeds']}"
        )


def _as_evaluated(item: Any) -> Any:
    """A tried statistic's entry as an evaluated one: without ``sigma_power``, which only scales a hybrid term."""
    if isinstance(item, dict) and "sigma_power" in item:
        rest = {k: v for k, v in item.items() if k != "sigma_power"}
        return rest["name"] if list(rest) == ["name"] else rest
    return item


def _spec(
    run: Path, statistics: list[Any], evaluated: list[Any], hybrid: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    payload = load_checkpoint(run / "vanilla" / "checkpoint.pt", map_location="cpu")
    # the hybrid's own spec, not compare.json's config: JSON holds an unbounded calibrate_max_kl as "inf"
    compared = load_checkpoint(run / "hybrid" / "checkpoint.pt", map_location="cpu")["spec"]
    spec = copy.deepcopy(payload["spec"])
    spec.update(
        statistics=statistics,
        hybrid={**compared["hybrid"], **(hybrid or {})},
        sampler=compared["sampler"],
        evaluate={**compared["evaluate"], "statistics": evaluated},
    )
    return spec, payload


def tilt(
    run: Path, statistics: list[Any], evaluated: list[Any], hybrid: dict[str, Any] | None = None
) -> tuple[dict[str, float], dict[str, Any], Any]:
    """Metrics, η and calibration history of the run's vanilla network tilted by ``statistics``
    (``hybrid`` overrides the run's ``[hybrid]`` options, e.g. the calibration method)."""
    spec, payload = _spec(run, statistics, evaluated, hybrid)
    exp = runs.build(spec)
    load_model_state(exp.model.base, payload, ema=True)
    model = exp.model.eval()
    plan = runs.SamplingPlan.build(exp)
    t0 = time.perf_counter()
    result = runs.calibrate_eta(model, exp, plan)
    calib_s = time.perf_counter() - t0
    model.load_eta(result.eta)
    samples, _ = plan.draw(model, exp)
    info = {"eta": model.eta_report(), "calibration": result.history, "calibration_s": round(calib_s, 1)}
    return runs.evaluate(samples, exp), info, samples


def vanilla_metrics(run: Path, evaluated: list[Any]) -> dict[str, float]:
    """The run's vanilla samples evaluated with every statistic in ``evaluated``."""
    spec, _ = _spec(run, [], evaluated)
    return runs.evaluate(torch.load(run / "vanilla" / "samples.pt", weights_only=True), runs.build(spec))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", required=True, help="`hebm compare` folders (one per seed)")
    p.add_argument(
        "--try",
        dest="tries",
        action="append",
        required=True,
        help="statistics to tilt by: 'a,b' or a JSON list (repeatable)",
    )
    p.add_argument(
        "--evaluate",
        default='[{"name": "laplacian", "k": 8}]',
        help="JSON list of statistics whose ΔT is reported besides the tried ones",
    )
    p.add_argument("--out", default="benchmarks/results/tilt_statistics.json", help="JSON report path")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="score the samples (and η) a previous run saved under <run>/tilts instead of tilting again",
    )
    p.add_argument(
        "--hybrid",
        default="{}",
        help='JSON table over the runs\' [hybrid] options, e.g. \'{"calibrate_method": "joint"}\' '
        "(the tilts' names gain @key=value)",
    )
    return p


def _tilt_run(
    run: Path, stats: list, name: str, evaluated: list, hybrid: dict, reuse: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metrics, info)`` of one run tilted by ``stats``: tilted now (its samples and info saved under
    ``<run>/tilts/<name>``), or with ``reuse`` the saved samples scored again."""
    saved = run / "tilts" / f"{name}.pt"
    if reuse and saved.exists() and saved.with_suffix(".json").exists():
        print(f"{run}: tilt by {name} (reused)", file=sys.stderr, flush=True)
        samples = torch.load(saved, weights_only=True)
        metrics = runs.evaluate(samples, runs.build(_spec(run, stats, evaluated, hybrid)[0]))
        info = json.loads(saved.with_suffix(".json").read_text())
    else:
        print(f"{run}: tilt by {name}", file=sys.stderr, flush=True)
        metrics, info, samples = tilt(run, stats, evaluated, hybrid)
        saved.parent.mkdir(exist_ok=True)
        torch.save(samples, saved)
        runs.write_json(saved.with_suffix(".json"), info)
    return metrics, info


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    tries = [parse_try(t) for t in args.tries]
    hybrid = json.loads(args.hybrid)
    if not isinstance(hybrid, dict):
        p.error(f"--hybrid must be a JSON table of [hybrid] options, got {args.hybrid!r}")
    evaluated = unique_entries(json.loads(args.evaluate) + [_as_evaluated(s) for t in tries for s in t])
    folders = [Path(r) for r in args.runs]
    base = {}
    for run in folders:
        print(f"{run}: vanilla samples", file=sys.stderr, flush=True)
        base[run] = vanilla_metrics(run, evaluated)
    report: dict[str, Any] = {
        **runs.environment(),
        "command": " ".join(sys.argv),
        "evaluated": evaluated,
        "tries": {},
    }
    for stats in tries:
        name = label(stats) + "".join(f"@{k}={v}" for k, v in sorted(hybrid.items()))
        per_seed, infos = {}, {}
        for run in folders:
            metrics, info = _tilt_run(run, stats, name, evaluated, hybrid, args.reuse)
            keys = sorted(set(metrics) | set(base[run]))
            per_seed[str(run)] = {"metrics": {k: {"vanilla": base[run].get(k), "hybrid": metrics.get(k)} for k in keys}}
            infos[str(run)] = info
        report["tries"][name] = {
            "statistics": stats,
            "hybrid": hybrid,
            "summary": runs.summarise(per_seed),
            "runs": infos,
            "per_seed": {r: v["metrics"] for r, v in per_seed.items()},
        }
        runs.write_json(args.out, report)
        print_summary(report["tries"][name]["summary"], prefix=f"{name}: ")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
