"""GDSS metrics of one trained QM9 network under several annealed-Langevin settings, side by side.

Each setting draws ``--n`` molecules from the checkpoint (same seed) with the run's sampler and the
options given, scores them with the run's metrics and records the wall time; the JSON holds one
row per setting. FCD and NSPDK depend on the sample size: compare rows of one sweep, not with
10,000-molecule figures.

    python plugins/hebm-mol/benchmarks/qm9_sampler_sweep.py --checkpoint runs/qm9_long/vanilla/checkpoint.pt \\
        --data-root data/qm9 --n 2000 --out plugins/hebm-mol/results/qm9_sampler_sweep.json \\
        --setting steps_per_sigma=20,eps=2e-4 --setting steps_per_sigma=40,eps=1e-4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hebm_core.config import parse_assignment
from hebm_core.runs import SamplingPlan, environment, evaluate, load_run, write_json
from hebm_core.runs.checkpoints import sampler_config


def parse_setting(text: str) -> dict:
    """``"steps_per_sigma=40,eps=1e-4"`` -> ``{"steps_per_sigma": 40, "eps": 0.0001}`` (values as TOML)."""
    out: dict = {}
    for part in filter(None, text.split(",")):
        out.update(parse_assignment(part.strip()))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data-root", help="QM9 folder over the checkpoint's data.root")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--setting", action="append", required=True, help="sampler options, e.g. eps=1e-4")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    exp, model = load_run(args.checkpoint, "auto", data={"root": args.data_root} if args.data_root else None)
    rows = []
    for text in args.setting:
        options = {**parse_setting(text), "n_samples": args.n, "progress": False}
        plan = SamplingPlan.build(exp, sampler_config(exp, None, options))
        start = time.perf_counter()
        samples, info = plan.draw(model, exp)
        seconds = time.perf_counter() - start
        metrics = evaluate(samples, exp)
        rows.append({"setting": parse_setting(text), "sampling_s": seconds, "sampling": info, "metrics": metrics})
        keys = ("validity", "validity_connected", "uniqueness", "novelty", "nspdk_mmd", "fcd")
        print(text, " ".join(f"{k}={metrics.get(k, float('nan')):.4g}" for k in keys), f"{seconds:.0f}s", flush=True)
    write_json(Path(args.out), {**environment(), "checkpoint": args.checkpoint, "n": args.n, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
