"""EMD on subsampled clouds vs exact EMD on full clouds (shared ShapeNet, 2,048 points), and their cost.

    OMP_NUM_THREADS=1 python benchmarks/pointcloud_emd.py [--root DIR] [--pairs 12] [--points 256 512 1024]

Writes benchmarks/results/pointcloud_emd.json: per subsample size the mean/max relative error over
the pairs and the seconds per EMD, plus the exact full-cloud cost.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from hebm_pointcloud.data import shapenet
from hebm_pointcloud.metrics import emd


def main() -> None:
    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "shapenet" / "onet_pointcloud"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(root))
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--points", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--n-points", type=int, default=2048)
    args = ap.parse_args()
    torch.set_num_threads(1)
    b = shapenet(args.root, n_points=args.n_points)
    clouds = torch.cat([b.train, b.test]).numpy()
    rng = np.random.default_rng(0)
    pairs = [tuple(rng.choice(len(clouds), 2, replace=False)) for _ in range(args.pairs)]
    t0 = time.perf_counter()
    exact = [emd(clouds[i], clouds[j]) for i, j in pairs]
    out = {"n_points": args.n_points, "pairs": len(pairs), "exact_s_per_pair": (time.perf_counter() - t0) / len(pairs)}
    for m in args.points:
        t0 = time.perf_counter()
        sub = [
            emd(
                clouds[i][rng.choice(args.n_points, m, replace=False)],
                clouds[j][rng.choice(args.n_points, m, replace=False)],
            )
            for i, j in pairs
        ]
        rel = np.abs(np.array(sub) - np.array(exact)) / np.array(exact)
        out[f"sub{m}"] = {
            "mean_rel_error": float(rel.mean()),
            "max_rel_error": float(rel.max()),
            "s_per_pair": (time.perf_counter() - t0) / len(pairs),
        }
    target = Path(__file__).resolve().parent / "results" / "pointcloud_emd.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
