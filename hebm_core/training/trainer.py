"""The training loop: Adam per parameter group, gradient clipping, EMA, metrics CSV / TensorBoard,
atomic checkpoints with exact resume, and DistributedDataParallel.

The trainer knows only :class:`~hebm_core.energy.EnergyModel`: which parameters train at which
learning rate, which freeze, and what is logged next to the loss all come from the model's
``parameter_groups`` / ``freeze`` / ``log_values`` / ``describe``.

Exact resume: a checkpoint holds everything the next step depends on (weights, optimizer and EMA
state, the objective's state such as PCD's replay buffer, every random generator, the position of
the batch iterator), so an interrupted and resumed run ends with the same bits as an uninterrupted
one on the CPU. Under DDP the global torch generator is seeded ``seed + rank`` so the objectives'
noise differs between ranks.
"""

from __future__ import annotations

import gc
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from hebm_core import tree
from hebm_core.checkpoint import load_checkpoint
from hebm_core.data import BatchIterator
from hebm_core.energy import EnergyModel
from hebm_core.objectives.base import Objective
from hebm_core.training.config import TrainConfig
from hebm_core.training.distributed import DistributedLoss, init_distributed, mean_over_ranks
from hebm_core.training.logging import MetricsLog, tensorboard_writer
from hebm_core.training.resume import RESUME_KEYS, Resumable
from hebm_core.training.schedules import lr_factor
from hebm_core.training.state import ema_with_warmup, seed_everything
from hebm_core.training.watch import LossWatch
from hebm_core.tree import Sample

__all__ = ["Trainer", "TrainingDivergedError", "RESUME_KEYS"]


class TrainingDivergedError(RuntimeError):
    """The loss or the gradient left the finite numbers; ``str()`` is one line with the step and a remedy."""


class Trainer(Resumable):
    """Trains ``model`` with ``objective`` on an in-memory sample ``data`` (batch on dim 0).

    Files (rank 0 only, when ``out_dir`` is given): ``checkpoint.pt``, ``metrics.csv`` and, with
    TensorBoard installed, ``tb/``. ``spec`` (the resolved run configuration, JSON-able) is stored
    in the checkpoint so that the model can be rebuilt from it. Data stays where it is; each batch is
    moved to the device (put ``data`` on the GPU beforehand to avoid the copies).

    Attributes: ``model`` (the plain model, never the DDP wrapper), ``objective``, ``optimizer``,
    ``ema`` (an ``AveragedModel`` or ``None``), ``step``, ``device``, ``rank``, ``world_size``,
    ``train_model`` (the DDP wrapper, which ``fit`` drops when it ends; else ``None``),
    ``checkpoint_path`` and ``metrics_path`` (``None`` without ``out_dir``), ``last_metrics``.
    Calling ``fit`` again (e.g. after raising ``config.steps``) continues the same run; under DDP only
    when the caller created the process group (a group the trainer created is released by ``fit``:
    re-creating it under torchrun can hang).
    """

    def __init__(
        self,
        model: EnergyModel,
        objective: Objective,
        data: Sample,
        config: TrainConfig,
        out_dir: str | Path | None = None,
        spec: dict | None = None,
    ) -> None:
        self.config = config
        self.spec = spec
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.checkpoint_path = self.out_dir / "checkpoint.pt" if self.out_dir is not None else None
        self.metrics_path = self.out_dir / "metrics.csv" if self.out_dir is not None else None

        self.device, self.rank, self.world_size, self._owns_process_group = init_distributed(config.device)
        self.is_main = self.rank == 0
        try:
            self._setup(model, objective, data)
        except BaseException:
            self._release_process_group()
            raise

        self.step = 0
        self.watch = LossWatch()
        self.last_metrics: dict[str, float] = {}
        self._elapsed_before = 0.0  # training seconds of earlier (resumed-from) runs
        self._saved_step: int | None = None

    # -- setup -------------------------------------------------------------------------------
    def _setup(self, model: EnergyModel, objective: Objective, data: Sample) -> None:
        """Seed, move to the device, set the objective up, then build optimizer, EMA and the DDP wrapper."""
        config = self.config
        seed_everything(config.seed + self.rank)

        self.model = model.to(self.device)
        self.objective = objective.to(self.device)
        self.batches = BatchIterator(data, config.batch_size, seed=config.seed)
        global_batch = self.batches.batch_size
        if global_batch % self.world_size:
            raise ValueError(
                f"batch_size {global_batch} (the global batch) must be divisible by the number of processes "
                f"({self.world_size})"
            )
        self.local_batch_size = global_batch // self.world_size
        # the objective's shape-dependent state comes from the first global batch, peeked without consuming it
        first = next(BatchIterator(data, config.batch_size, seed=config.seed))
        self.objective.setup(tree.to_device(first, self.device))
        self.objective.to(self.device)

        self._groups = self.model.parameter_groups()
        for g in self._groups:  # frozen before the optimizer and the EMA copy (which inherits it)
            if self._group_lr(g) == 0:
                self.model.freeze(g.name)
        self.optimizer, self._group_options = self._build_optimizer()
        self._params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.ema: AveragedModel | None = None
        if config.ema_decay is not None:
            self.ema = AveragedModel(self.model, multi_avg_fn=ema_with_warmup(config.ema_decay), use_buffers=True)

        self.train_model: nn.Module | None = self._wrap_ddp() if self.world_size > 1 else None

    def _group_lr(self, group: Any) -> float:
        own = getattr(self.config, group.lr_option) if group.lr_option else None
        return self.config.lr if own is None else own

    def _build_optimizer(self) -> tuple[torch.optim.Adam, list[dict[str, float]]]:
        """Adam over the model's groups (each at its learning rate) and the objective's parameters (lr, no decay)."""
        cfg = self.config
        model_ids = {id(p) for p in self.model.parameters()}
        objective_params = [p for p in self.objective.parameters() if p.requires_grad and id(p) not in model_ids]
        candidates = [
            ([p for p in g.params if p.requires_grad], self._group_lr(g), cfg.weight_decay if g.weight_decay else 0.0)
            for g in self._groups
        ]
        candidates.append((objective_params, cfg.lr, 0.0))
        groups = [{"params": ps, "lr": lr, "weight_decay": wd} for ps, lr, wd in candidates if ps]
        if not groups:
            raise ValueError("nothing to train: neither the model nor the objective has parameters that require grad")
        self._has_objective_params = bool(objective_params)
        options = [{"lr": g["lr"], "weight_decay": g["weight_decay"]} for g in groups]
        return torch.optim.Adam(groups), options

    def _wrap_ddp(self) -> nn.Module:
        """The DDP wrapper of model and objective (it broadcasts rank 0's parameters when built)."""
        from torch.nn.parallel import DistributedDataParallel

        objective_params = list(self.optimizer.param_groups[-1]["params"]) if self._has_objective_params else []
        return DistributedDataParallel(
            DistributedLoss(self.model, self.objective, objective_params),
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=True,
        )

    def _end_distributed(self, completed: bool) -> None:
        """Drop the DDP wrapper, then (after a clean run, all ranks together) release the process group.

        The wrapper's reducer holds the process group: left alive, the group would be torn down at
        interpreter exit, where gloo can abort the process. The barrier keeps a fast rank from closing
        its connections while a slower one is still talking; it is skipped after an error, which
        other ranks may never reach.
        """
        if self.train_model is not None:
            self.train_model = None
            gc.collect()
            if completed and dist.is_initialized():
                dist.barrier()
        self._release_process_group()

    def _release_process_group(self) -> None:
        if self._owns_process_group and dist.is_initialized():
            dist.destroy_process_group()
        self._owns_process_group = False

    def sampling_model(self) -> EnergyModel:
        """The weights to sample from: the EMA copy when EMA is on, else the trained model."""
        return self.ema.module if self.ema is not None else self.model

    # -- one step ----------------------------------------------------------------------------
    def _next_batch(self) -> Sample:
        batch = next(self.batches)
        if self.world_size > 1:
            lo = self.rank * self.local_batch_size
            batch = tree.index(batch, slice(lo, lo + self.local_batch_size))
        return tree.to_device(batch, self.device)

    def _mean_over_ranks(self, values: list[float]) -> list[float]:
        return mean_over_ranks(values, self.world_size, self.device)

    def _diverged(self, what: str, value: float) -> TrainingDivergedError:
        lr = self.config.lr
        return TrainingDivergedError(
            f"training diverged at step {self.step + 1}: {what} is {value} (not finite); "
            f"try a lower learning rate than lr={lr:g} (e.g. {lr / 10:g}) or a smaller grad_clip"
        )

    def _train_step(self) -> tuple[float, dict[str, float], Tensor]:
        """One optimizer step; returns the (global) loss, the objective's local metrics and the pre-clip grad norm."""
        batch = self._next_batch()
        self.optimizer.zero_grad(set_to_none=True)
        if self.train_model is not None:
            loss, metrics = self.train_model(batch)
        else:
            out = self.objective(self.model, batch)
            loss, metrics = out.loss, out.metrics
        # every rank must reach the same verdict, or the others would wait forever in the next all-reduce
        loss_value = self._mean_over_ranks([float(loss.detach())])[0]
        if not math.isfinite(loss_value):
            raise self._diverged("the loss", loss_value)
        loss.backward()
        factor = lr_factor(self.config.lr_schedule, self.step, self.config.steps, self.config.warmup_steps)
        for group, opts in zip(self.optimizer.param_groups, self._group_options):
            group["lr"] = opts["lr"] * factor
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self._params, max_norm)
        if not math.isfinite(float(grad_norm)):
            raise self._diverged("the gradient norm", float(grad_norm))
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.step += 1
        return loss_value, metrics, grad_norm

    def _log_row(self, loss: float, metrics: dict[str, float], grad_norm: Tensor, elapsed: float) -> dict[str, Any]:
        names = [k for k in metrics if k not in ("step", "loss", "grad_norm", "lr", "elapsed_s")]
        values = self._mean_over_ranks([float(metrics[k]) for k in names])
        row: dict[str, Any] = {"step": self.step, "loss": loss}
        row.update(zip(names, values))
        row["grad_norm"] = float(grad_norm)
        row["lr"] = float(self.optimizer.param_groups[0]["lr"])
        extra = self.model.log_values()
        row.update(extra)
        row["elapsed_s"] = round(elapsed, 3)
        self.last_metrics = {k: v for k, v in row.items() if k not in ("step", "elapsed_s") and k not in extra}
        return row

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, resume: bool | str | Path = False) -> dict[str, Any]:
        """Train up to ``config.steps`` steps, optionally resuming, and return a summary.

        ``resume=True`` continues from ``checkpoint_path`` when it exists (else starts fresh); a path
        continues from that file. The summary: ``steps``, ``wall_time_s`` and ``steps_per_s`` of this
        call, ``total_train_time_s`` (training seconds over this and the resumed-from runs),
        ``final_metrics`` (of the last step), the model's :meth:`~EnergyModel.describe` (a hybrid's
        ``eta``) and the EMA model's with an ``_ema`` suffix, ``device`` and ``world_size``.
        """
        completed = False
        t0 = time.perf_counter()
        if self.world_size > 1 and self.train_model is None:  # a later fit of the same trainer
            if not dist.is_initialized():
                raise RuntimeError(
                    "this trainer created the process group and released it when its first fit ended; to fit "
                    "again under DDP, call torch.distributed.init_process_group before building the Trainer"
                )
            self.train_model = self._wrap_ddp()
        sinks: list[Any] = []
        try:
            ckpt = self._resume_from(resume)
            if ckpt is not None:
                self.restore(load_checkpoint(ckpt, map_location="cpu"), ckpt)
            first_step = self.step
            sinks = self._open_sinks(resumed=ckpt is not None or self.step > 0)
            self._loop(t0, *sinks)
            if self._saved_step != self.step:  # e.g. steps=0 on a fresh run: still leave a checkpoint
                self.save_checkpoint(elapsed_s=self._elapsed_before + time.perf_counter() - t0)
            completed = True
        finally:
            for sink in sinks:
                if sink is not None:
                    sink.close()
            self._end_distributed(completed)
        return self._summary(time.perf_counter() - t0, self.step - first_step)

    def _resume_from(self, resume: bool | str | Path) -> Path | None:
        if isinstance(resume, (str, os.PathLike)):
            return Path(resume)
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            return self.checkpoint_path
        return None

    def _open_sinks(self, resumed: bool) -> list[Any]:
        """``[progress bar, metrics.csv, TensorBoard]`` (``None`` where absent); a resumed run keeps its rows."""
        cfg = self.config
        log = writer = None
        resumed_step = self.step if resumed else None
        if self.is_main and self.out_dir is not None and self.step < cfg.steps:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            log = MetricsLog(self.metrics_path, resumed_step)
            if cfg.tensorboard:
                writer = tensorboard_writer(self.out_dir / "tb", None if resumed_step is None else resumed_step + 1)
        disable = True if not self.is_main else (None if cfg.progress is None else not cfg.progress)
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="step", disable=disable, dynamic_ncols=True)
        return [bar, log, writer]

    def _loop(self, t0: float, bar: Any, log: MetricsLog | None, writer: Any) -> None:
        cfg = self.config
        self.model.train()
        while self.step < cfg.steps:
            loss, metrics, grad_norm = self._train_step()
            self._check_blowup(loss)
            last = self.step == cfg.steps
            if self.step % cfg.log_every == 0 or last:
                row = self._log_row(loss, metrics, grad_norm, self._elapsed_before + time.perf_counter() - t0)
                if log is not None:
                    log.write(row)
                if writer is not None:
                    for k, v in row.items():
                        if k not in ("step", "elapsed_s"):
                            writer.add_scalar(k, v, self.step)
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            bar.update(1)
            if self.step % cfg.checkpoint_every == 0 or last:
                self.save_checkpoint(elapsed_s=self._elapsed_before + time.perf_counter() - t0)

    def _check_blowup(self, loss: float) -> None:
        """A loss over 1000× its running median: a warning (recorded in the summary), an error with ``strict``."""
        message = self.watch.update(self.step, loss)
        if message is None:
            return
        lr = self.config.lr
        message += f"; try a lower learning rate than lr={lr:g} (e.g. {lr / 10:g})"
        if self.config.strict:
            raise TrainingDivergedError(message)
        warnings.warn(message + " (train.strict = true makes this an error)", RuntimeWarning, stacklevel=3)

    def _summary(self, wall: float, done: int) -> dict[str, Any]:
        result: dict[str, Any] = {
            "steps": self.step,
            "wall_time_s": wall,
            "steps_per_s": done / wall if wall > 0 else 0.0,
            "total_train_time_s": self._elapsed_before + wall,
            "final_metrics": dict(self.last_metrics),
            **self.model.describe(),
            "device": str(self.device),
            "world_size": self.world_size,
        }
        if self.watch.flag is not None:
            result["loss_blowup"] = dict(self.watch.flag)
        if self.ema is not None:
            result.update({f"{k}_ema": v for k, v in self.ema.module.describe().items()})
        self._elapsed_before += wall  # a later fit of this trainer continues the run's training time
        return result
