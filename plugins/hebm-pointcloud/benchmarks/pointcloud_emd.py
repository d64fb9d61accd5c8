"""EMD on subsampled clouds vs exact EMD on full clouds (ShapeNet, 2,048 points), and their cost.

    OMP_NUM_THREADS=1 python plugins/hebm-pointcloud/benchmarks/pointcloud_emd.py --root DIR \\
        [--pairs 12] [--points 256 512 1024] [--out benchmarks/results/pointcloud_emd.json]

``--root`` is a ShapeNet folder in any layout the ``shapenet`` dataset reads (default, as in
``configs/shapenet.toml``: ``data/shapenet/onet_pointcloud`` under the working directory). Writes a
JSON report: per subsample size the mean/max relative error over the pairs and the seconds per EMD,
plus the exact full-cloud cost.
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

from hebm_core.runs import write_json


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="data/shapenet/onet_pointcloud", help="ShapeNet folder (PC15k, ONet or meshes)")
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--points", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--n-points", type=int, default=2048)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/pointcloud_emd.json"), help="JSON report path")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        b = shapenet(args.root, n_points=args.n_points)
    except (FileNotFoundError, ValueError) as exc:
        ap.error(str(exc))
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
    write_json(args.out, out)
    print(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
