"""DistributedDataParallel through the Trainer: two real gloo processes on the CPU (launched by torchrun).

The worker is ``tests/_ddp_worker.py``; each launch takes a few seconds (two Python processes importing torch).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from _util import assert_state_equal

WORKER = Path(__file__).with_name("_ddp_worker.py")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed gloo"),
]


def launch(mode: str, out: Path) -> list[dict]:
    """Run the worker in ``mode`` on 2 local processes; returns each rank's result."""
    # faulthandler: a crash inside torch.distributed prints each rank's Python stack into the failure message
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONFAULTHANDLER": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(WORKER), mode, str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"torchrun failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return [json.loads((out / f"result_rank{r}.json").read_text()) for r in range(2)]


def test_ddp_gradient_equals_single_process_gradient_of_the_global_batch(tmp_path):
    results = launch("grad", tmp_path)
    for res in results:
        assert res["world_size"] == 2 and res["trainer_world_size"] == 2
        # the last layer's bias gets no gradient from a score-based loss, in both runs
        assert res["grad_names"] == res["ref_grad_names"] and "base.net.4.bias" not in res["grad_names"]
        assert res["grads_allclose"], res["grad_max_abs_diff"]
        assert res["grad_max_abs_diff"] < 1e-12
        assert res["local_shard_grad_diff"] > 1e-4  # a rank's own shard gradient is different: DDP really reduced
        assert res["group_destroyed"]  # the trainer created the process group, so it destroyed it
        assert res["ddp_wrapper_released"]  # and dropped the DDP wrapper, whose reducer holds the group
        assert "init_process_group before building the Trainer" in res["refit_error"] and res["refit_step"] == 1


def test_ddp_training_keeps_ranks_in_sync_and_resumes_exactly(tmp_path):
    results = launch("train", tmp_path)
    assert all(r["shared_group_kept"] for r in results)  # a group the trainer did not create stays
    assert results[0]["nce_summary"] == results[1]["nce_summary"]
    assert results[0]["nce_summary"]["steps"] == 6 and results[0]["nce_summary"]["world_size"] == 2

    def state(name: str, rank: int) -> dict:
        return torch.load(tmp_path / f"{name}_rank{rank}.pt", weights_only=True)

    # NCE: model, EMA, optimizer and the learned log Z identical on both ranks, and log Z was trained
    nce0, nce1 = state("nce", 0), state("nce", 1)
    assert_state_equal(nce0["model"], nce1["model"], "model")
    assert_state_equal(nce0["ema"], nce1["ema"], "ema")
    assert_state_equal(nce0["optimizer"], nce1["optimizer"], "optimizer")
    assert torch.equal(nce0["objective"]["log_z"], nce1["objective"]["log_z"])
    assert float(nce0["objective"]["log_z"]) != 0.0

    # PCD: 3 steps + resume to 6 == 6 straight steps, on every rank, including each rank's own chains
    for rank in range(2):
        straight, resumed = state("straight", rank), state("resumed", rank)
        assert resumed["step"] == 6
        assert_state_equal(straight, resumed, f"rank {rank}")
    assert not torch.equal(state("straight", 0)["objective"]["buffer_0"], state("straight", 1)["objective"]["buffer_0"])
    assert_state_equal(state("straight", 0)["model"], state("straight", 1)["model"])

    # files: rank 0 alone writes them; the checkpoint carries every rank's generators and objective state
    for run in ("nce", "straight", "resumed"):
        assert sorted(p.name for p in (tmp_path / run).iterdir()) == ["checkpoint.pt", "metrics.csv"]
    ckpt = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["rank_states"]) == 2
    for run in ("nce", "resumed"):  # NCE was fitted twice (to 4, then to 6); PCD resumed from step 3
        with open(tmp_path / run / "metrics.csv", newline="") as f:
            assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4, 5, 6]
