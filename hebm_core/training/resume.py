"""Checkpoints of a training run: the payload of the current state, atomic saves, exact restore.

A checkpoint holds everything the next step depends on (weights, optimizer and EMA state, the
objective's state such as PCD's replay buffer, every random generator, the position of the batch
iterator), so an interrupted and resumed run ends with the same bits as an uninterrupted one on
the CPU. :class:`Resumable` is the part of :class:`~hebm_core.training.Trainer` that does it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch.distributed as dist

from hebm_core import __version__
from hebm_core.checkpoint import FORMAT_VERSION, CheckpointError, nonfinite_entries, one_line, save_checkpoint
from hebm_core.training.config import TrainConfig
from hebm_core.training.state import rng_state, seed_everything, set_rng_state, to_cpu

__all__ = ["RESUME_KEYS", "Resumable"]

#: keys a checkpoint needs beyond :data:`hebm_core.checkpoint.REQUIRED_KEYS` to resume training
RESUME_KEYS = ("model", "objective", "optimizer", "data_iter", "rng")


class Resumable:
    """Checkpoint payload, save and restore of a trainer (its ``model``, ``objective``, ``optimizer``,
    ``ema``, ``batches``, ``config``, ``step``, rank and world size)."""

    def _rank_states(self) -> list[dict[str, Any]] | None:
        """Per-rank random generators and objective state (collective under DDP; ``None`` on one process)."""
        if self.world_size == 1:
            return None
        mine = {"rng": rng_state(), "objective": to_cpu(self.objective.state_dict())}
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, mine)
        return gathered

    def state_payload(self) -> dict[str, Any]:
        """The checkpoint payload of the current state (weights_only-loadable values only)."""
        return {
            "format_version": FORMAT_VERSION,
            "hebm_version": __version__,
            "step": self.step,
            "model": self.model.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rng_state(),
            "rank_states": None,
            "world_size": self.world_size,
            "data_iter": self.batches.state_dict(),
            "config": self.config.to_dict(),
            "spec": self.spec,
            "model_info": self.model.describe(),
            "metrics": dict(self.last_metrics),
            "elapsed_s": self._elapsed_before,
        }

    def save_checkpoint(
        self, path: str | Path | None = None, elapsed_s: float | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        """Write the current state to ``path`` (default ``checkpoint_path``; nothing without ``out_dir``).

        ``extra`` adds top-level entries (tensors and plain data), e.g. a calibrated η; a later save
        without them drops them, as they describe the weights of this step.
        Under DDP every rank must call it (with the same ``out_dir``): the per-rank generator states and
        objective states are gathered, and rank 0 writes the file.
        """
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            return
        rank_states = self._rank_states()
        self._saved_step = self.step
        if not self.is_main:
            return
        payload = self.state_payload()
        payload["rank_states"] = rank_states
        if elapsed_s is not None:
            payload["elapsed_s"] = elapsed_s
        payload.update(extra or {})
        save_checkpoint(path, payload)

    def _changed_options(self, old: dict[str, Any]) -> list[str]:
        """Trajectory options whose value differs from the checkpoint's (a group-lr option only if a group uses it)."""
        used = {g.lr_option for g in self._groups if g.lr_option}
        changed = [
            f"{k} {old[k]!r} -> {getattr(self.config, k)!r}"
            for k in TrainConfig.TRAJECTORY_OPTIONS
            if k in old and old[k] != getattr(self.config, k) and (k not in TrainConfig.GROUP_LR_OPTIONS or k in used)
        ]
        if self.config.lr_schedule != "constant" and old.get("steps", self.config.steps) != self.config.steps:
            changed.append(f"steps {old['steps']!r} -> {self.config.steps!r} (the lr schedule spans steps)")
        return changed

    def restore(self, payload: dict[str, Any], path: str | Path) -> None:
        """Continue from a checkpoint payload (read from ``path``): weights, optimizer, EMA, objective,
        data order, random state and step. A payload that does not fit is one :class:`CheckpointError`."""
        missing = [k for k in RESUME_KEYS if k not in payload]
        if missing:
            raise CheckpointError(f"checkpoint '{path}' cannot resume training (missing keys: {', '.join(missing)})")
        bad = nonfinite_entries(
            {"model": payload["model"], "ema": payload.get("ema"), "optimizer": payload["optimizer"]}
        )
        if bad:
            raise CheckpointError(
                f"checkpoint '{path}' holds non-finite weights ({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}): "
                "resuming would train on NaN; start again or from an earlier checkpoint"
            )
        changed = self._changed_options(payload.get("config") or {})
        if changed:
            warnings.warn(
                f"resuming from '{path}' with changed train options ({'; '.join(changed)}): "
                "the run will differ from an uninterrupted one",
                stacklevel=3,
            )
        rank_states = payload.get("rank_states")
        per_rank = rank_states if isinstance(rank_states, list) and len(rank_states) == self.world_size else None
        self._load_states(payload, per_rank, path)
        for group, opts in zip(self.optimizer.param_groups, self._group_options):
            group.update(opts)  # the config given now wins over the learning rates stored in the checkpoint
        self.step = int(payload["step"])
        if per_rank is not None:
            set_rng_state(per_rank[self.rank]["rng"])
        elif self.world_size == 1 and payload.get("world_size", 1) == 1:
            set_rng_state(payload["rng"])
        else:
            warnings.warn(
                f"checkpoint '{path}' was written by {payload.get('world_size', 1)} process(es), this run has "
                f"{self.world_size}: noise streams are re-seeded and the run is not an exact continuation",
                stacklevel=3,
            )
            seed_everything(hash((self.config.seed, self.rank, self.step)) % 2**31)
        self.last_metrics = dict(payload.get("metrics") or {})
        self._elapsed_before = float(payload.get("elapsed_s") or 0.0)
        self._saved_step = self.step

    def _load_states(self, payload: dict[str, Any], per_rank: list[Any] | None, path: str | Path) -> None:
        try:
            self.model.load_state_dict(payload["model"])
            self.objective.load_state_dict(per_rank[self.rank]["objective"] if per_rank else payload["objective"])
            self.optimizer.load_state_dict(payload["optimizer"])
            if self.ema is not None:
                if payload.get("ema") is not None:
                    self.ema.load_state_dict(payload["ema"])
                else:
                    warnings.warn(f"checkpoint '{path}' has no EMA weights: the EMA restarts here", stacklevel=4)
            perm = payload["data_iter"].get("perm")
            if perm is not None and perm.numel() != self.batches.n:
                raise ValueError(f"the data set has {self.batches.n} samples, the checkpoint's run had {perm.numel()}")
            self.batches.load_state_dict(payload["data_iter"])
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(
                f"checkpoint '{path}' does not fit this run's model, objective or data ({one_line(e)})"
            ) from e
