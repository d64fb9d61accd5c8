"""SIGKILL a real ``hebm train`` / ``hebm sample`` at random moments; judge what is left.

- train: each trial kills a run at a random time (often mid-checkpoint: one is written every
  ``--checkpoint-every`` steps), resumes it with ``--resume`` to the end, and compares the final
  checkpoint's weights, EMA, optimizer state and metrics rows with an uninterrupted run's: they must
  be bit-identical.
- sample: each trial kills ``hebm sample`` while it replaces a folder of earlier samples; what is
  left must be the old set or the new set (its report lists exactly its files), never a mix.

    python benchmarks/kill_resume.py --trials 35 --out docs/results/kill_resume.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from hebm_core.runs import environment, write_json

HEBM = [sys.executable, "-m", "hebm_core.cli"]
TINY = ["--set", "data.n=256", "--set", "data.n_test=64", "--set", "model.hidden=16", "--set", "model.depth=2"]


def _train_args(out: Path, steps: int, every: int) -> list[str]:
    sets = [
        "--set",
        f"train.checkpoint_every={every}",
        "--set",
        "train.log_every=1",
        "--set",
        "train.tensorboard=false",
    ]
    return [*HEBM, "train", "--steps", str(steps), *TINY, *sets, "--out", str(out)]


def _run(args: list[str], kill_after: float | None = None) -> int | None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    if kill_after is None:
        return proc.wait()
    try:
        return proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None


def _state(folder: Path) -> tuple[dict[str, Any], list[list[str]]]:
    payload = torch.load(folder / "checkpoint.pt", weights_only=True)
    rows = [r[:-1] for r in csv.reader((folder / "metrics.csv").open())]  # elapsed_s (last column) differs
    return {k: payload[k] for k in ("model", "ema", "optimizer", "step")}, rows


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def train_trials(root: Path, trials: int, steps: int, every: int, rng: random.Random) -> dict[str, Any]:
    straight = root / "straight"
    t0 = time.perf_counter()
    assert _run(_train_args(straight, steps, every)) == 0, "the uninterrupted run failed"
    duration = time.perf_counter() - t0
    reference = _state(straight)
    rows = []
    for i in range(trials):
        out = root / f"train{i}"
        at = rng.uniform(0.3 * duration, duration)
        finished = _run(_train_args(out, steps, every), kill_after=at) is not None
        rc = _run([*_train_args(out, steps, every), "--resume"])
        same = rc == 0 and all(_equal(x, y) for x, y in zip(_state(out), reference))
        leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
        rows.append({"kill_after_s": round(at, 3), "finished_before_kill": finished, "resume_rc": rc,
                     "bit_identical": same, "leftover_files": leftovers})  # fmt: skip
        shutil.rmtree(out, ignore_errors=True)
    return {"uninterrupted_s": round(duration, 2), "trials": rows,
            "bit_identical": sum(r["bit_identical"] for r in rows), "n": len(rows)}  # fmt: skip


def _sample_set(folder: Path) -> str:
    """``old``/``new`` when the folder is one whole set (its report lists exactly its files), else ``mixed``."""
    report = folder / "sample_report.json"
    if not report.exists():
        return "missing" if not folder.exists() else "mixed"
    rep = json.loads(report.read_text())
    listed = {Path(f).name for f in rep["files"]}
    present = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
    n = torch.load(folder / "samples.pt", weights_only=True).shape[0] if "samples.pt" in present else None
    if listed != present or n != rep["sampling"]["n_samples"]:
        return "mixed"
    return "old" if n == 64 else "new"


def sample_trials(root: Path, trials: int, n: int, rng: random.Random) -> dict[str, Any]:
    run = root / "for_sampling"
    assert _run(_train_args(run, 50, 50)) == 0
    sample = [*HEBM, "sample", "--checkpoint", str(run / "checkpoint.pt")]
    t0 = time.perf_counter()
    _run([*sample, "--n", str(n), "--out", str(root / "timing")])
    duration = time.perf_counter() - t0
    outcomes = []
    for i in range(trials):
        out = root / f"sample{i}"
        assert _run([*sample, "--n", "64", "--out", str(out)]) == 0
        _run([*sample, "--n", str(n), "--out", str(out)], kill_after=rng.uniform(0.5 * duration, 1.1 * duration))
        outcomes.append(_sample_set(out))
    return {"outcomes": outcomes, "mixed": outcomes.count("mixed"), "n": len(outcomes)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=35)
    p.add_argument("--sample-trials", type=int, default=10)
    p.add_argument("--sample-n", type=int, default=4096, help="samples of each killed hebm sample")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--checkpoint-every", type=int, default=7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/kill_resume.json"))
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        result = {
            **environment(),
            "command": " ".join(["python", "benchmarks/kill_resume.py", *(argv or sys.argv[1:])]),
            "train": train_trials(root, args.trials, args.steps, args.checkpoint_every, rng),
            "sample": sample_trials(root, args.sample_trials, args.sample_n, rng),
        }
    write_json(args.out, result)
    t, s = result["train"], result["sample"]
    print(f"train: {t['bit_identical']}/{t['n']} bit-identical after SIGKILL + --resume")
    print(f"sample: {s['mixed']}/{s['n']} left a mix of old and new files ({', '.join(s['outcomes'])})")
    print(f"wrote {args.out}")
    return 0 if t["bit_identical"] == t["n"] and s["mixed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
