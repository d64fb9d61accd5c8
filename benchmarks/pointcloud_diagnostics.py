"""Why a point-cloud hybrid scores as it does: size, spacing, nearest-cloud distances, T's test-set noise.

Reads one ``hebm compare`` folder (``vanilla/`` and ``hybrid/`` with ``checkpoint.pt`` and
``samples.pt``) and writes a JSON report with, for the training shapes, the reference (test)
shapes and each model's samples:

- ``radius``: mean over clouds of the RMS distance to the centroid (a shrinking hybrid shows here);
- ``nn_point``: mean distance from a point to its nearest other point in the same cloud;
- nearest-cloud Chamfer distances: sample → nearest test shape, test → nearest sample, sample →
  nearest other sample, test → nearest other test shape. 1-NNA compares the last two kinds with
  the first two, so a set that tightens faster than it approaches the data scores worse;
- per evaluated statistic: mean T on the training and the test shapes (with the test mean's
  standard error) and their gap as a share of the vanilla ΔT. ΔT is measured against the test
  shapes while η is calibrated on the training shapes, so this share bounds the reachable reduction.

    python benchmarks/pointcloud_diagnostics.py --run runs/seeds_tilt/seed0 \\
        --out benchmarks/results/pc_diagnostics_seed0.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from hebm_pointcloud.geometry import chamfer_matrix, gather_neighbours, knn_indices

from hebm_core.pipeline import environment, load_run, write_json


def radius(x: torch.Tensor) -> float:
    return float((x - x.mean(1, keepdim=True)).pow(2).sum(-1).mean(-1).sqrt().mean())


def nn_point(x: torch.Tensor) -> float:
    return float((x - gather_neighbours(x, knn_indices(x, 1))[:, :, 0]).norm(dim=-1).mean())


def nearest(d: torch.Tensor, leave_one_out: bool = False) -> float:
    """Mean over rows of the smallest entry (the diagonal excluded for a set against itself)."""
    if leave_one_out:
        d = d.clone().fill_diagonal_(float("inf"))
    return float(d.min(1).values.mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a `hebm compare` output folder")
    p.add_argument("--out", default="benchmarks/results/pc_diagnostics.json", help="JSON report path")
    args = p.parse_args(argv)
    run = Path(args.run)
    comps, _ = load_run(run / "vanilla" / "checkpoint.pt", device="cpu")
    train, ref = comps.bundle.train, comps.reference
    samples = {side: torch.load(run / side / "samples.pt", weights_only=True) for side in ("vanilla", "hybrid")}
    d_rr = chamfer_matrix(ref, ref)
    clouds = {"train": train, "test": ref, **samples}
    report: dict = {
        **environment(),
        "run": str(run),
        "radius": {k: radius(v) for k, v in clouds.items()},
        "nn_point": {k: nn_point(v) for k, v in clouds.items()},
        "chamfer_nearest": {"test_to_test": nearest(d_rr, True)},
        "statistics": {},
    }
    for side, s in samples.items():
        d_gr = chamfer_matrix(s, ref)
        report["chamfer_nearest"][side] = {
            "sample_to_test": nearest(d_gr),
            "test_to_sample": nearest(d_gr.T),
            "sample_to_sample": nearest(chamfer_matrix(s, s), True),
        }
    compare = json.loads((run / "compare.json").read_text())
    for stat in comps.eval_statistics:
        with torch.no_grad():
            t_train = torch.cat([stat(train[i : i + 64]) for i in range(0, len(train), 64)]).double()
            t_test = stat(ref).double()
        gap = (t_test.mean(0) - t_train.mean(0)).abs()
        dv = compare["metrics"].get(f"delta_t/{stat.name}", {}).get("vanilla")
        report["statistics"][stat.name] = {
            "train_mean": t_train.mean(0).tolist(),
            "test_mean": t_test.mean(0).tolist(),
            "test_mean_se": (t_test.std(0) / len(t_test) ** 0.5).tolist(),
            "train_test_gap_pct_of_vanilla_delta_t": (100 * gap / dv).tolist() if dv else None,
        }
    write_json(args.out, report)
    print(json.dumps({k: report[k] for k in ("radius", "nn_point", "chamfer_nearest", "statistics")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
