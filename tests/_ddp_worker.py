"""Worker for tests/test_ddp.py, run by ``torch.distributed.run --nproc_per_node=2`` on the CPU (gloo).

Usage: ``python -m torch.distributed.run --standalone --nproc_per_node=2 tests/_ddp_worker.py MODE OUT_DIR``.

- ``grad``: the trainer creates (and destroys) the process group; one DDP step's gradient is compared
  with the single-process gradient of the same global batch.
- ``train``: the worker creates one process group shared by several trainers (gloo does not survive
  repeated init/destroy cycles in one process reliably): NCE training, and an exactly resumed PCD run.

Each rank writes ``OUT_DIR/result_rank{r}.json`` and its final states as ``OUT_DIR/<run>_rank{r}.pt``;
the runs' own files go to ``OUT_DIR/<run>/`` (rank 0 only).
"""

from __future__ import annotations

import json
import os
import sys
import weakref
from pathlib import Path

import torch
import torch.distributed as dist

from hebm_core.data import BatchIterator
from hebm_core.hybrid import HybridEnergy
from hebm_core.models import MLPEnergy
from hebm_core.objectives import ExactScoreMatching, NoiseContrastiveEstimation, PersistentContrastiveDivergence
from hebm_core.statistics import identity
from hebm_core.training import TrainConfig, Trainer


def make_model(data: torch.Tensor, seed: int = 1) -> HybridEnergy:
    torch.manual_seed(seed)
    return HybridEnergy(MLPEnergy(dim=2, hidden=8, depth=2, noise_conditional=False), [identity], example=data[:4])


def config(**kw) -> TrainConfig:
    opts = dict(batch_size=16, lr=1e-2, progress=False, tensorboard=False, device="cpu", log_every=1)
    opts.update(kw)
    return TrainConfig(**opts)


def states(t: Trainer) -> dict:
    return {
        "model": t.model.state_dict(),
        "ema": t.ema.state_dict() if t.ema is not None else None,
        "optimizer": t.optimizer.state_dict(),
        "objective": t.objective.state_dict(),
        "step": t.step,
    }


def grad_check(out: Path, rank: int, result: dict) -> None:
    """One DDP step's gradient equals the single-process gradient of the same global batch (float64)."""
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = Trainer(make_model(data).double(), ExactScoreMatching(), data, config(steps=1, grad_clip=None, ema_decay=None))
    wrapper = weakref.ref(t.train_model)
    t.fit()
    result["ddp_wrapper_released"] = t.train_model is None and wrapper() is None
    result["trainer_world_size"] = t.world_size
    result["group_destroyed"] = not dist.is_initialized()
    ddp_grads = {n: p.grad for n, p in t.model.named_parameters() if p.grad is not None}
    batch = next(BatchIterator(data, 16, seed=0))
    ref = make_model(data).double()
    ExactScoreMatching()(ref, batch).loss.backward()
    ref_grads = {n: p.grad for n, p in ref.named_parameters() if p.grad is not None}
    local = make_model(data).double()  # the gradient of this rank's shard alone, which DDP must not return
    ExactScoreMatching()(local, batch[rank * 8 : (rank + 1) * 8]).loss.backward()
    result["grad_names"] = sorted(ddp_grads)
    result["ref_grad_names"] = sorted(ref_grads)
    common = [n for n in ref_grads if n in ddp_grads]
    result["grads_allclose"] = all(torch.allclose(ddp_grads[n], ref_grads[n], rtol=1e-10, atol=1e-12) for n in common)
    result["grad_max_abs_diff"] = max(float((ddp_grads[n] - ref_grads[n]).abs().max()) for n in common)
    result["local_shard_grad_diff"] = max(
        float((p.grad - ref_grads[n]).abs().max()) for n, p in local.named_parameters() if n in ref_grads
    )
    # the group this trainer created is gone, so a second fit under DDP must say so, not fail inside DDP
    t.config.steps = 3
    try:
        t.fit()
        result["refit_error"] = None
    except RuntimeError as err:
        result["refit_error"] = str(err)
    result["refit_step"] = t.step


def train_check(out: Path, rank: int, result: dict) -> None:
    dist.init_process_group("gloo")
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(1)) * 0.5 + 1.0

    # NCE: the learned log Z is an objective parameter and must stay in sync like the model's
    # fit twice (4 steps, then on to 6): the second fit wraps the model in DDP again
    t = Trainer(make_model(data), NoiseContrastiveEstimation(), data, config(steps=4, checkpoint_every=3), out / "nce")
    t.fit()
    t.config.steps = 6
    summary = t.fit()
    result["nce_summary"] = {k: summary[k] for k in ("steps", "final_metrics", "eta", "device", "world_size")}
    torch.save(states(t), out / f"nce_rank{rank}.pt")

    # exact resume under DDP: per-rank noise streams and per-rank PCD chains come back from the checkpoint
    def pcd() -> PersistentContrastiveDivergence:
        return PersistentContrastiveDivergence(buffer_size=32, k=2, step_size=0.05, reinit_prob=0.2)

    cfg = config(steps=6, checkpoint_every=3, ema_decay=0.9)
    straight = Trainer(make_model(data), pcd(), data, cfg, out / "straight")
    straight.fit()
    Trainer(make_model(data), pcd(), data, config(steps=3, checkpoint_every=3, ema_decay=0.9), out / "resumed").fit()
    resumed = Trainer(make_model(data, seed=5), pcd(), data, cfg, out / "resumed")
    resumed.fit(resume=True)
    torch.save(states(straight), out / f"straight_rank{rank}.pt")
    torch.save(states(resumed), out / f"resumed_rank{rank}.pt")
    result["shared_group_kept"] = dist.is_initialized()
    dist.barrier()  # no rank closes its connections while another still uses them
    dist.destroy_process_group()


def main(mode: str, out: Path) -> None:
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    result: dict = {"rank": rank, "world_size": int(os.environ["WORLD_SIZE"])}
    {"grad": grad_check, "train": train_check}[mode](out, rank, result)
    (out / f"result_rank{rank}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
