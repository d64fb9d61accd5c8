"""Why a point-cloud hybrid scores as it does: size, spacing, nearest-cloud distances, T's test-set noise.

Reads one ``hebm compare`` folder (``vanilla/`` and ``hybrid/`` with ``checkpoint.pt`` and
``samples.pt``) and writes a JSON report with, for the training shapes, the reference (test)
shapes and each model's samples:

- ``radius``: mean over clouds of the RMS distance to the centroid (a shrinking hybrid shows here);
- ``nn_point``: mean distance from a point to its nearest other point in the same cloud;
- nearest-cloud Chamfer distances: sample → nearest test shape, test → nearest sample, sample →
  nearest other sample, test → nearest other test shape. 1-NNA compares the last two kinds with
  the first two, so a set that tightens faster than it approaches the data scores worse;
- ``one_nna_cd_sides``: 1-NNA-CD's accuracy on the samples and on the test shapes apart;
- ``classes`` (when the dataset labels its clouds): per class, its share of the test shapes and of
  each model's samples (a sample takes its Chamfer-nearest test shape's class), and the share of
  that class's samples whose nearest other cloud is a sample (1-NNA-CD's sample side, by class);
- per evaluated statistic: mean T on the training and the test shapes (with the test mean's
  standard error), T's spread over clouds (``sd``: test shapes and each model's samples) and
  the train/test gap as a share of the vanilla ΔT. ΔT is measured against the test
  shapes while η is calibrated on the training shapes, so this share bounds the reachable reduction;
  ΔT of both models, and the hybrid's reduction, against each split;
- ``smoothing_control`` (``--control``): the vanilla samples smoothed after sampling, one umbrella
  step ``x_i += λ·(mean_{kNN} x_j − x_i)`` with λ bisected so that their plain Laplacian T equals
  the hybrid's, and the configured metrics on them. It separates what any smoothing does to the
  metrics (a sample's nearest other sample gets closer twice as fast as its nearest test shape,
  because both ends lose their noise) from what the hybrid does beyond that.
- ``jitter`` (``--jitter σ …``): the converse control, the vanilla samples with Gaussian noise of
  standard deviation σ added to every coordinate (seeded), and the configured metrics on them. If
  1-NNA falls as noise is added while MMD rises, the set's 1-NNA is rewarding noise, not fidelity.
  ``--summarise`` merges such reports over seeds (means, paired differences against the plain
  vanilla samples, seeds on which the noisy samples score no worse), as ``hebm compare --seeds`` does
  (:func:`hebm_core.runs.summarise`).

    python plugins/hebm-pointcloud/benchmarks/pointcloud_diagnostics.py --run runs/seeds_tilt/seed0 \\
        --out benchmarks/results/pc_diagnostics_seed0.json
    python plugins/hebm-pointcloud/benchmarks/pointcloud_diagnostics.py \\
        --summarise benchmarks/results/pc_diagnostics_jitter_seed*.json --out benchmarks/results/pc_jitter.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from hebm_pointcloud.geometry import chamfer_matrix, gather_neighbours, knn_indices, laplacian, laplacian_vectors
from hebm_pointcloud.metrics import class_shares, nearest_classes, one_nna_hits, one_nna_sides, reference_labels
from hebm_pointcloud.statistics import size_statistic

from hebm_core.config import StatisticEntry
from hebm_core.registry import Plugin, lookup
from hebm_core.runs import environment, evaluate, load_run, summarise, write_json
from hebm_core.runs.build import call_factory
from hebm_core.statistics import Moments, Statistic


def statistic(item: Any, plugin: Plugin) -> Statistic:
    """The plugin's statistic for one config entry (a name or a table; ``moments = m`` adds its powers)."""
    parsed = StatisticEntry.parse(item, hybrid=False)
    factory = lookup(plugin.statistics, parsed.name, "statistic", plugin.name)
    stat = call_factory("statistic", parsed.name, factory, **parsed.options)
    return Moments(stat, parsed.moments) if parsed.moments is not None else stat


def radius(x: torch.Tensor) -> float:
    """Mean over clouds of the RMS distance to the centroid."""
    return float(size_statistic()(x).sqrt().mean())


def nn_point(x: torch.Tensor) -> float:
    return float((x - gather_neighbours(x, knn_indices(x, 1))[:, :, 0]).norm(dim=-1).mean())


def nearest(d: torch.Tensor, leave_one_out: bool = False) -> float:
    """Mean over rows of the smallest entry (the diagonal excluded for a set against itself)."""
    if leave_one_out:
        d = d.clone().fill_diagonal_(float("inf"))
    return float(d.min(1).values.mean())


def smoothing_control(x: torch.Tensor, target: float, k: int = 8, iters: int = 30) -> tuple[float, torch.Tensor]:
    """``(λ, clouds)``: ``x`` after one umbrella step ``x − λ·L(x)`` (every point moves ``λ`` of the
    way to its kNN centroid) whose mean Laplacian T is ``target`` (λ bisected in [0, 1])."""
    lap = laplacian_vectors(x, knn_indices(x, k))  # x's graph: only λ changes below

    def t(lam: float) -> float:
        return float(laplacian(x - lam * lap, k).mean())

    if t(0.0) <= target:
        return 0.0, x
    lo, hi = 0.0, 1.0
    for _ in range(iters):  # T falls as λ grows over [0, 1]
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t(mid) > target else (lo, mid)
    return hi, x - hi * lap


def summarise_jitter(paths: list[Path]) -> dict[str, Any]:
    """Per noise level: :func:`~hebm_core.runs.summarise` of the noisy against the plain vanilla samples
    (their metrics from each report's ``compare.json``) over the given diagnostics reports."""
    per_level: dict[str, dict[str, Any]] = {}
    for path in paths:
        rep = json.loads(path.read_text())
        plain = json.loads((Path(rep["run"]) / "compare.json").read_text())["metrics"]
        for sigma, noisy in rep.get("jitter", {}).items():
            metrics = {k: {"vanilla": plain[k]["vanilla"], "hybrid": v} for k, v in noisy.items() if k in plain}
            per_level.setdefault(sigma, {})[rep["run"]] = {"metrics": metrics}
    return {sigma: {"runs": sorted(runs), "summary": summarise(runs)} for sigma, runs in per_level.items()}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", help="a `hebm compare` output folder")
    p.add_argument(
        "--summarise",
        nargs="+",
        type=Path,
        metavar="REPORT",
        help="merge the jitter of these diagnostics reports over seeds instead (needs no --run)",
    )
    p.add_argument("--out", default="benchmarks/results/pc_diagnostics.json", help="JSON report path")
    p.add_argument("--control", action="store_true", help="also score the smoothed-vanilla control (slow: EMD)")
    p.add_argument(
        "--samples",
        help="hybrid samples to use instead of hybrid/samples.pt (e.g. a tilt_statistics.py "
        "tilt; with --control they are scored again)",
    )
    p.add_argument(
        "--statistics",
        default="[]",
        help="JSON list of statistics to describe besides the run's evaluated ones, e.g. '[\"inertia\"]'",
    )
    p.add_argument(
        "--jitter",
        type=float,
        nargs="*",
        default=[],
        help="noise levels σ at which to score the vanilla samples with added N(0, σ²) noise",
    )
    return p


def _nearest(
    samples: dict[str, torch.Tensor], ref: torch.Tensor, d_rr: torch.Tensor, ref_labels: list[str] | None, report: dict
) -> None:
    """Per side: Chamfer nearest-neighbour distances, the 1-NNA sides and (with labels) the class shares."""
    for side, s in samples.items():
        d_gr, d_gg = chamfer_matrix(s, ref), chamfer_matrix(s, s)
        report["chamfer_nearest"][side] = {
            "sample_to_test": nearest(d_gr),
            "test_to_sample": nearest(d_gr.T),
            "sample_to_sample": nearest(d_gg, True),
        }
        gen, test = one_nna_sides(d_gg, d_gr, d_rr)
        report["one_nna_cd_sides"][side] = {"samples_pct": 100 * gen, "test_pct": 100 * test}
        if ref_labels:
            cls = nearest_classes(d_gr, ref_labels)
            caught = one_nna_hits(d_gg, d_gr, d_rr)[: len(s)]  # a sample whose nearest cloud is a sample
            report["classes"][side] = {
                c: {
                    "samples_pct": 100 * g_share,
                    "test_pct": 100 * r_share,
                    "nearest_is_sample_pct": 100 * float(caught[[k == c for k in cls]].float().mean())
                    if c in cls
                    else None,
                }
                for c, (g_share, r_share) in class_shares(d_gr, ref_labels).items()
            }


def _statistics(
    exp, train: torch.Tensor, ref: torch.Tensor, samples: dict[str, torch.Tensor], compare: dict, extra: list
) -> dict:
    """Per statistic: train/test/model means and spreads, ΔT against each split and the hybrid's reduction."""
    out = {}
    for stat in exp.eval_statistics + extra:
        with torch.no_grad():
            t_train = torch.cat([stat(train[i : i + 64]) for i in range(0, len(train), 64)]).double()
            t_test = stat(ref).double()
            t_all = {side: stat(x).double() for side, x in samples.items()}
            t_model = {side: t.mean(0) for side, t in t_all.items()}
        gap = (t_test.mean(0) - t_train.mean(0)).abs()
        dv = compare["metrics"].get(f"delta_t/{stat.name}", {}).get("vanilla")
        # ΔT against each split, and the hybrid's reduction on each (mean over components)
        delta = {
            split: {side: float((m - ref_t.mean(0)).abs().mean()) for side, m in t_model.items()}
            for split, ref_t in (("test", t_test), ("train", t_train))
        }
        out[stat.name] = {
            "train_mean": t_train.mean(0).tolist(),
            "test_mean": t_test.mean(0).tolist(),
            "test_mean_se": (t_test.std(0) / len(t_test) ** 0.5).tolist(),
            "model_mean": {side: m.tolist() for side, m in t_model.items()},
            # spread over clouds: a strong tilt can pull every sample to the same T (they grow alike)
            "sd": {"test": t_test.std(0).tolist(), **{side: t.std(0).tolist() for side, t in t_all.items()}},
            "train_test_gap_pct_of_vanilla_delta_t": (100 * gap / dv).tolist() if dv else None,
            "delta_t": delta,
            "delta_t_reduction_pct": {
                split: 100 * (1 - d["hybrid"] / d["vanilla"]) if d["vanilla"] else None for split, d in delta.items()
            },
        }
    return out


def _smoothing_control(exp, samples: dict[str, torch.Tensor], compare: dict, rescore: bool) -> dict:
    """The vanilla samples smoothed to the hybrid's Laplacian, scored beside the hybrid's metrics
    (scored again when ``rescore``: samples other than the run's own; slow: EMD)."""
    with torch.no_grad():
        target = float(laplacian(samples["hybrid"]).mean())
        lam, smoothed = smoothing_control(samples["vanilla"], target)
    scored = {k: v for k, v in evaluate(smoothed, exp).items() if not k.endswith("_s")}
    hybrid = evaluate(samples["hybrid"], exp) if rescore else {k: v["hybrid"] for k, v in compare["metrics"].items()}
    return {
        "lambda": lam,
        "laplacian_target": target,
        "metrics": scored,
        "hybrid": {k: hybrid[k] for k in scored if k in hybrid},
        "vanilla": {k: compare["metrics"][k]["vanilla"] for k in scored if k in compare["metrics"]},
    }


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.summarise:
        merged = {**environment(), "command": " ".join(sys.argv), "jitter": summarise_jitter(args.summarise)}
        write_json(args.out, merged)
        print(json.dumps(merged["jitter"], indent=1))
        return 0
    if not args.run:
        p.error("--run is required (or --summarise)")
    run = Path(args.run)
    exp, _ = load_run(run / "vanilla" / "checkpoint.pt", device="cpu")
    train, ref = exp.bundle.train, exp.reference
    paths = {"vanilla": run / "vanilla" / "samples.pt", "hybrid": Path(args.samples or run / "hybrid" / "samples.pt")}
    samples = {side: torch.load(path, weights_only=True) for side, path in paths.items()}
    d_rr = chamfer_matrix(ref, ref)
    clouds = {"train": train, "test": ref, **samples}
    report: dict = {
        **environment(),
        "run": str(run),
        "samples": {k: str(v) for k, v in paths.items()},
        "radius": {k: radius(v) for k, v in clouds.items()},
        "nn_point": {k: nn_point(v) for k, v in clouds.items()},
        "chamfer_nearest": {"test_to_test": nearest(d_rr, True)},
        "one_nna_cd_sides": {},
        "statistics": {},
    }
    ref_labels = reference_labels(exp.bundle)
    if ref_labels:
        report["classes"] = {}
    _nearest(samples, ref, d_rr, ref_labels, report)
    compare = json.loads((run / "compare.json").read_text())
    extra = [
        t
        for t in (statistic(item, exp.plugin) for item in json.loads(args.statistics))
        if t.name not in {s.name for s in exp.eval_statistics}
    ]
    report["statistics"] = _statistics(exp, train, ref, samples, compare, extra)
    if args.control:
        report["smoothing_control"] = _smoothing_control(exp, samples, compare, bool(args.samples))
    if args.jitter:
        report["jitter"] = {}
        g = torch.Generator().manual_seed(0)
        for sigma in args.jitter:
            noisy = samples["vanilla"] + sigma * torch.randn(samples["vanilla"].shape, generator=g)
            report["jitter"][str(sigma)] = {k: v for k, v in evaluate(noisy, exp).items() if not k.endswith("_s")}
            write_json(args.out, report)
    write_json(args.out, report)
    keys = (
        "radius",
        "nn_point",
        "chamfer_nearest",
        "one_nna_cd_sides",
        "classes",
        "statistics",
        "smoothing_control",
        "jitter",
    )
    print(json.dumps({k: report[k] for k in keys if k in report}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
