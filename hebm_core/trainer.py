"""The training loop: Adam (own learning rate for the hybrid weights η), gradient clipping, EMA,
metrics CSV / TensorBoard, atomic checkpoints with exact resume, and DistributedDataParallel.

Exact resume: a checkpoint holds everything the next step depends on (weights, optimizer and EMA
state, the objective's state such as PCD's replay buffer, every random generator, the position of
the batch iterator), so an interrupted and resumed run ends with the same bits as an uninterrupted
one on the CPU.

Distributed: under ``torchrun`` (``WORLD_SIZE > 1``) every rank draws the same global batch of
``batch_size`` rows and trains on its contiguous shard; DDP averages the gradients, which equals
the gradient of the global batch. The global torch generator is seeded ``seed + rank`` so the
objectives' noise differs between ranks.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import math
import os
import random
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel
from torch.utils import _pytree as pytree
from tqdm.auto import tqdm

from hebm_core import __version__, tree
from hebm_core.checkpoint import FORMAT_VERSION, CheckpointError, _one_line, load_checkpoint
from hebm_core.checkpoint import save_checkpoint as _write_checkpoint
from hebm_core.data import BatchIterator
from hebm_core.energy import EnergyModel
from hebm_core.hybrid import HybridEnergy
from hebm_core.objectives.base import Objective
from hebm_core.tree import Sample

__all__ = [
    "LR_SCHEDULES",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "load_model_state",
    "lr_factor",
    "resolve_device",
    "seed_everything",
]

#: keys a checkpoint needs beyond :data:`hebm_core.checkpoint.REQUIRED_KEYS` to resume training
RESUME_KEYS = ("model", "objective", "optimizer", "data_iter", "rng")

#: train options that change the trajectory: resuming with other values warns that the run is no longer exact
_TRAJECTORY_OPTIONS = (
    "batch_size",
    "lr",
    "eta_lr",
    "lr_schedule",
    "warmup_steps",
    "weight_decay",
    "grad_clip",
    "ema_decay",
    "seed",
)


def _cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * progress))


#: learning-rate multipliers by the fraction of the (post-warmup) steps done; a pure function of the
#: step, so a resumed run continues the schedule exactly without any scheduler state
LR_SCHEDULES = {"constant": lambda progress: 1.0, "cosine": _cosine}


def lr_factor(schedule: str, step: int, steps: int, warmup_steps: int = 0) -> float:
    """The multiplier of the configured learning rates for optimizer step ``step`` (0-based).

    A linear warmup over ``warmup_steps`` (from ``1/warmup_steps`` to 1), then ``schedule`` over the rest.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    rest = max(steps - warmup_steps, 1)
    return LR_SCHEDULES[schedule](min((step - warmup_steps) / rest, 1.0))


class TrainingDivergedError(RuntimeError):
    """The loss or the gradient left the finite numbers; ``str()`` is one line with the step and a remedy."""


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and every CUDA device), numpy's global generator and Python's ``random``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; otherwise any torch device string (``"cuda:1"``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    return device


@dataclass
class TrainConfig:
    """Options of one training run (the ``train`` section of a run configuration)."""

    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    #: Adam learning rate of the hybrid weights η (``None``: ``lr``); η gets no weight decay. ``0``
    #: freezes η: the network trains alone (at η = 0 exactly as the vanilla model would) and η comes
    #: from moment matching afterwards (``[hybrid] calibrate_rounds``)
    eta_lr: float | None = None
    #: learning-rate schedule over ``steps`` applied to every group: ``constant`` or ``cosine`` (to 0)
    lr_schedule: str = "constant"
    #: linear warmup of the learning rates over the first steps (0: none)
    warmup_steps: int = 0
    weight_decay: float = 0.0
    #: max global gradient norm (``None``: no clipping); the pre-clip norm is logged either way
    grad_clip: float | None = 1.0
    #: decay of the exponential moving average of the weights used for sampling (``None``: no EMA)
    ema_decay: float | None = 0.999
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    #: steps between checkpoints; one is always written at the end
    checkpoint_every: int = 500
    #: also log to TensorBoard when the ``tensorboard`` package is installed
    tensorboard: bool = True
    #: progress bar (``None``: tqdm decides, off when not a terminal)
    progress: bool | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.steps >= 0, "steps must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.eta_lr is None or self.eta_lr >= 0, "eta_lr must be >= 0 (or null for lr; 0 freezes η)"),
            (self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.grad_clip is None or self.grad_clip > 0, "grad_clip must be > 0 (or null for no clipping)"),
            (self.ema_decay is None or 0 <= self.ema_decay < 1, "ema_decay must lie in [0, 1) (or null for no EMA)"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.checkpoint_every >= 1, "checkpoint_every must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"train option: {msg}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a config mapping; unknown keys and ill-typed values are a ``ValueError``.

        Numbers given as strings (YAML reads ``1e-3`` as one) and integral floats for integer
        options are converted.
        """
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown train option(s): {', '.join(unknown)}; known: {', '.join(known)}")
        kinds = {f.name: str(f.type) for f in fields(cls)}
        return cls(**{k: _coerce(k, v, kinds[k]) for k, v in d.items()})


def _coerce(name: str, value: Any, kind: str) -> Any:
    """Convert ``value`` to the option's declared type: ``int``, ``float``, ``bool`` or ``str``, maybe ``| None``."""
    if value is None:
        if "None" in kind:
            return None
        raise ValueError(f"train option {name} must not be null")
    base = kind.replace("| None", "").strip()
    bad = ValueError(f"train option {name} must be {base}, got {value!r}")
    if base == "bool":
        if isinstance(value, bool):
            return value
        raise bad
    if base == "str":
        if isinstance(value, str):
            return value
        raise bad
    if isinstance(value, bool):
        raise bad
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise bad from None
    if not isinstance(value, (int, float)):
        raise bad
    if base == "int":
        if float(value) != int(value):
            raise bad
        return int(value)
    return float(value)


# --------------------------------------------------------------------------------------------
# random state, distributed helpers


def _rng_state() -> dict[str, Any]:
    """Every global generator as weights_only-loadable values (numpy's state becomes a tensor and ints)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    npst = state["numpy"]
    keys = npst["keys"].numpy().astype(np.uint32)
    np.random.set_state((npst["kind"], keys, npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def ema_with_warmup(decay: float):
    """``multi_avg_fn`` for ``AveragedModel``: EMA whose decay ramps up as ``min(decay, (1+n)/(10+n))``.

    A fixed decay of 0.999 leaves three quarters of the average on the first weights after 300
    steps; the ramp (as in TensorFlow's ExponentialMovingAverage with num_updates) lets short runs
    average only the recent, trained weights and long runs reach ``decay``.
    """

    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        n = int(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        torch._foreach_lerp_(averaged, current, 1 - d)

    return update


def _to_cpu(obj: Any) -> Any:
    return pytree.tree_map(lambda t: t.detach().cpu() if isinstance(t, Tensor) else t, obj)


class _DistributedLoss(nn.Module):
    """What DDP wraps: the energy model plus the objective's parameters; ``forward`` runs the objective.

    The objective computes scores with ``autograd.grad(create_graph=True)``. Run through a DDP-wrapped
    *energy* that fails: the last layer's bias never gets a gradient from a score loss, which plain DDP
    rejects, ``find_unused_parameters`` wrongly counts as used (it is in the energy's graph) and
    ``static_graph`` silently leaves gradients unsynchronised. With the whole loss as DDP's output,
    ``find_unused_parameters`` sees the true graph and the reduction is exact. The objective itself
    stays outside the module tree so that its buffers (PCD's chains) remain per-rank state while its
    parameters (NCE's log Z) are synchronised like the model's.
    """

    def __init__(self, model: EnergyModel, objective: Objective, objective_params: list[nn.Parameter]) -> None:
        super().__init__()
        self.model = model
        self.objective_params = nn.ParameterList(objective_params)
        self._objective = (objective,)

    def forward(self, batch: Sample) -> tuple[Tensor, dict[str, float]]:
        out = self._objective[0](self.model, batch)
        return out.loss, out.metrics


# --------------------------------------------------------------------------------------------
# metrics file


class _MetricsLog:
    """``metrics.csv``: header from the first row (or the existing file), one flushed line per logged step."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        self._file = None
        self._writer: csv.DictWriter | None = None
        if resume_step is None:
            path.unlink(missing_ok=True)
        elif path.exists():
            self._truncate(resume_step)

    def _truncate(self, step: int) -> None:
        """Drop rows after the checkpoint's step (the resumed run writes them again) and any torn line."""
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        header, kept = rows[0], []
        for row in rows[1:]:
            try:
                ok = len(row) == len(header) and int(float(row[0])) <= step
            except ValueError:
                ok = False
            if ok:
                kept.append(row)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(kept)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def write(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            fieldnames = None
            if self.path.exists() and self.path.stat().st_size > 0:
                with open(self.path, newline="") as f:
                    fieldnames = next(csv.reader(f), None)
            new = fieldnames is None
            self._file = open(self.path, "a", newline="")  # kept open for the run; closed in close()
            self._writer = csv.DictWriter(self._file, fieldnames or list(row), extrasaction="ignore", restval="")
            if new:
                self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = self._writer = None


def _tensorboard_writer(log_dir: Path, purge_step: int | None) -> Any:
    """A ``SummaryWriter`` when the ``tensorboard`` package is installed, else ``None``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # ImportError without tensorboard; anything else from a broken install
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def _eta_columns(model: nn.Module) -> dict[str, float]:
    """``eta/<component>`` -> value for every hybrid weight in ``model`` (prefixed by module path if several)."""
    hybrids = [(name, m) for name, m in model.named_modules() if isinstance(m, HybridEnergy)]
    cols: dict[str, float] = {}
    for name, h in hybrids:
        prefix = "eta/" if len(hybrids) == 1 else f"eta/{name or 'root'}/"
        report = h.eta_report()
        for s in h.statistics:
            v = report[s.name]
            vals = v if isinstance(v, list) else [v]
            for cname, x in zip(s.names(len(vals)), vals):
                cols[prefix + cname] = float(x)
    return cols


# --------------------------------------------------------------------------------------------
# trainer


class Trainer:
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

    Under DDP the objective runs inside DDP's forward on the plain model (see :class:`_DistributedLoss`):
    double backward through a DDP-wrapped energy does not reduce gradients correctly.
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

        self.device, self.rank, self.world_size, self._owns_process_group = self._init_distributed(config.device)
        self.is_main = self.rank == 0
        try:
            self._setup(model, objective, data)
        except BaseException:
            self._release_process_group()
            raise

        self.step = 0
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

        if config.eta_lr == 0:  # η frozen, before the optimizer and the EMA copy (which inherits it)
            for m in self.model.modules():
                if isinstance(m, HybridEnergy):
                    m.freeze_eta()
        self.optimizer, self._group_options = self._build_optimizer()
        self._params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.ema: AveragedModel | None = None
        if config.ema_decay is not None:
            self.ema = AveragedModel(self.model, multi_avg_fn=ema_with_warmup(config.ema_decay), use_buffers=True)

        self.train_model: nn.Module | None = self._wrap_ddp() if self.world_size > 1 else None

    def _wrap_ddp(self) -> nn.Module:
        """The DDP wrapper of model and objective (it broadcasts rank 0's parameters when built)."""
        from torch.nn.parallel import DistributedDataParallel

        objective_params = list(self.optimizer.param_groups[-1]["params"]) if self._has_objective_params else []
        return DistributedDataParallel(
            _DistributedLoss(self.model, self.objective, objective_params),
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

    @staticmethod
    def _init_distributed(device_name: str) -> tuple[torch.device, int, int, bool]:
        """Device, rank, world size and whether this trainer created the process group."""
        if dist.is_available() and dist.is_initialized():
            rank, world, owns = dist.get_rank(), dist.get_world_size(), False
        else:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank, owns = int(os.environ.get("RANK", "0")), False
        device = resolve_device(device_name)
        if world <= 1:
            return device, 0, 1, False
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            rank, world, owns = dist.get_rank(), dist.get_world_size(), True
        return device, rank, world, owns

    def _build_optimizer(self) -> tuple[torch.optim.Adam, list[dict[str, float]]]:
        """Adam with groups: network weights (lr, weight decay), η (eta_lr, no decay), objective (lr, no decay)."""
        cfg = self.config
        eta_ids = {id(p) for m in self.model.modules() if isinstance(m, HybridEnergy) for p in m.eta.parameters()}
        model_params = [p for p in self.model.parameters() if p.requires_grad]
        model_ids = {id(p) for p in self.model.parameters()}
        objective_params = [p for p in self.objective.parameters() if p.requires_grad and id(p) not in model_ids]
        candidates = [
            ([p for p in model_params if id(p) not in eta_ids], cfg.lr, cfg.weight_decay),
            ([p for p in model_params if id(p) in eta_ids], cfg.eta_lr if cfg.eta_lr is not None else cfg.lr, 0.0),
            (objective_params, cfg.lr, 0.0),
        ]
        groups = [{"params": ps, "lr": lr, "weight_decay": wd} for ps, lr, wd in candidates if ps]
        if not groups:
            raise ValueError("nothing to train: neither the model nor the objective has parameters that require grad")
        self._has_objective_params = bool(objective_params)
        options = [{"lr": g["lr"], "weight_decay": g["weight_decay"]} for g in groups]
        return torch.optim.Adam(groups), options

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
        if self.world_size == 1 or not values:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return (t / self.world_size).tolist()

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
        row.update(_eta_columns(self.model))
        row["elapsed_s"] = round(elapsed, 3)
        return row

    # -- checkpoints -------------------------------------------------------------------------
    def _rank_states(self) -> list[dict[str, Any]] | None:
        """Per-rank random generators and objective state (collective under DDP; ``None`` on one process)."""
        if self.world_size == 1:
            return None
        mine = {"rng": _rng_state(), "objective": _to_cpu(self.objective.state_dict())}
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
            "rng": _rng_state(),
            "rank_states": None,
            "world_size": self.world_size,
            "data_iter": self.batches.state_dict(),
            "config": asdict(self.config),
            "spec": self.spec,
            "eta": self.model.eta_report() if hasattr(self.model, "eta_report") else None,
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
        _write_checkpoint(path, payload)

    def _restore(self, payload: dict[str, Any], path: Path) -> None:
        missing = [k for k in RESUME_KEYS if k not in payload]
        if missing:
            raise CheckpointError(f"checkpoint '{path}' cannot resume training (missing keys: {', '.join(missing)})")
        old = payload.get("config") or {}
        has_eta = isinstance(getattr(self.model, "eta", None), nn.ParameterDict) and len(self.model.eta) > 0
        changed = [
            f"{k} {old[k]!r} -> {getattr(self.config, k)!r}"
            for k in _TRAJECTORY_OPTIONS
            if k in old and old[k] != getattr(self.config, k) and (k != "eta_lr" or has_eta)  # no η: no effect
        ]
        if self.config.lr_schedule != "constant" and old.get("steps", self.config.steps) != self.config.steps:
            changed.append(f"steps {old['steps']!r} -> {self.config.steps!r} (the lr schedule spans steps)")
        if changed:
            warnings.warn(
                f"resuming from '{path}' with changed train options ({'; '.join(changed)}): "
                "the run will differ from an uninterrupted one",
                stacklevel=3,
            )
        rank_states = payload.get("rank_states")
        per_rank = rank_states if isinstance(rank_states, list) and len(rank_states) == self.world_size else None
        try:
            self.model.load_state_dict(payload["model"])
            self.objective.load_state_dict(per_rank[self.rank]["objective"] if per_rank else payload["objective"])
            self.optimizer.load_state_dict(payload["optimizer"])
            if self.ema is not None:
                if payload.get("ema") is not None:
                    self.ema.load_state_dict(payload["ema"])
                else:
                    warnings.warn(f"checkpoint '{path}' has no EMA weights: the EMA restarts here", stacklevel=3)
            perm = payload["data_iter"].get("perm")
            if perm is not None and perm.numel() != self.batches.n:
                raise ValueError(f"the data set has {self.batches.n} samples, the checkpoint's run had {perm.numel()}")
            self.batches.load_state_dict(payload["data_iter"])
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(
                f"checkpoint '{path}' does not fit this run's model, objective or data ({_one_line(e)})"
            ) from e
        for group, opts in zip(self.optimizer.param_groups, self._group_options):
            group.update(opts)  # the config given now wins over the learning rates stored in the checkpoint
        self.step = int(payload["step"])
        if per_rank is not None:
            _set_rng_state(per_rank[self.rank]["rng"])
        elif self.world_size == 1 and payload.get("world_size", 1) == 1:
            _set_rng_state(payload["rng"])
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

    def _restore_base(self, path: Path) -> None:
        """Take the training state of ``path``, a run of this hybrid model's base network alone.

        Valid only while η is frozen at zero: the hybrid network then trains exactly as that run's
        did (same seed, data order and noise), so its weights, EMA, optimizer, data order, random
        state and step are this run's too; η keeps its value.
        """
        if not getattr(self.model, "trains_as_base", False):
            raise ValueError(
                "a hybrid run can take its network from a vanilla run only with η frozen at zero (train.eta_lr = 0)"
            )
        payload = dict(load_checkpoint(path, map_location="cpu"))
        if not isinstance(payload.get("model"), dict):
            raise CheckpointError(f"checkpoint '{path}' has no model weights")
        model_state = self.model.state_dict()
        model_state.update({"base." + k: v for k, v in payload["model"].items()})
        payload["model"] = model_state
        if self.ema is not None and payload.get("ema") is not None:
            ema_state = self.ema.state_dict()
            ema_state.update(
                {
                    k.replace("module.", "module.base.", 1) if k.startswith("module.") else k: v
                    for k, v in payload["ema"].items()
                }
            )
            payload["ema"] = ema_state
        self._restore(payload, path)
        self._saved_step = -1  # this run's own checkpoint is still to be written

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, resume: bool | str | Path = False, network_from: str | Path | None = None) -> dict[str, Any]:
        """Train up to ``config.steps`` steps, optionally resuming, and return a summary.

        ``resume=True`` continues from ``checkpoint_path`` when it exists (else starts fresh); a path
        continues from that file. The summary: ``steps``, ``wall_time_s`` and ``steps_per_s`` of this
        call, ``total_train_time_s`` (training seconds over this and the resumed-from runs),
        ``final_metrics`` (of the last step), ``eta`` (the trained model's hybrid weights, or
        ``None``), ``eta_ema`` (the EMA model's, when EMA is on), ``device`` and ``world_size``.

        ``network_from`` (when not resuming from a checkpoint of this run): a hybrid model with η
        frozen at zero starts from the state of that run of its base network alone, which it would
        only reproduce (see :meth:`_restore_base`); a vanilla run trained to fewer steps is continued.
        """
        cfg = self.config
        log = writer = bar = None
        completed = False
        t0 = time.perf_counter()
        if self.world_size > 1 and self.train_model is None:  # a later fit of the same trainer
            if not dist.is_initialized():
                raise RuntimeError(
                    "this trainer created the process group and released it when its first fit ended; to fit "
                    "again under DDP, call torch.distributed.init_process_group before building the Trainer"
                )
            self.train_model = self._wrap_ddp()
        try:
            ckpt: Path | None = None
            if isinstance(resume, (str, os.PathLike)):
                ckpt = Path(resume)
            elif resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
                ckpt = self.checkpoint_path
            if ckpt is not None:
                self._restore(load_checkpoint(ckpt, map_location="cpu"), ckpt)
            elif network_from is not None:
                ckpt = Path(network_from)
                self._restore_base(ckpt)
            # a checkpoint, or this trainer's own earlier fit: keep the metrics logged up to here
            resumed_step = self.step if ckpt is not None or self.step > 0 else None
            first_step = self.step
            if self.is_main and self.out_dir is not None and self.step < cfg.steps:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                log = _MetricsLog(self.metrics_path, resumed_step)
                if cfg.tensorboard:
                    writer = _tensorboard_writer(
                        self.out_dir / "tb", None if resumed_step is None else resumed_step + 1
                    )
            disable = True if not self.is_main else (None if cfg.progress is None else not cfg.progress)
            bar = tqdm(
                total=cfg.steps, initial=self.step, desc="train", unit="step", disable=disable, dynamic_ncols=True
            )
            self.model.train()
            while self.step < cfg.steps:
                loss, metrics, grad_norm = self._train_step()
                last = self.step == cfg.steps
                if self.step % cfg.log_every == 0 or last:
                    elapsed = self._elapsed_before + time.perf_counter() - t0
                    row = self._log_row(loss, metrics, grad_norm, elapsed)
                    self.last_metrics = {
                        k: v for k, v in row.items() if k not in ("step", "elapsed_s") and not k.startswith("eta/")
                    }
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
            if self._saved_step != self.step:  # e.g. steps=0 on a fresh run: still leave a checkpoint
                self.save_checkpoint(elapsed_s=self._elapsed_before + time.perf_counter() - t0)
            completed = True
        finally:
            if bar is not None:
                bar.close()
            if log is not None:
                log.close()
            if writer is not None:
                writer.close()
            self._end_distributed(completed)

        wall = time.perf_counter() - t0
        done = self.step - first_step
        result: dict[str, Any] = {
            "steps": self.step,
            "wall_time_s": wall,
            "steps_per_s": done / wall if wall > 0 else 0.0,
            "total_train_time_s": self._elapsed_before + wall,
            "final_metrics": dict(self.last_metrics),
            "eta": self.model.eta_report() if hasattr(self.model, "eta_report") else None,
            "device": str(self.device),
            "world_size": self.world_size,
        }
        if self.ema is not None and hasattr(self.ema.module, "eta_report"):
            result["eta_ema"] = self.ema.module.eta_report()
        self._elapsed_before += wall  # a later fit of this trainer continues the run's training time
        return result


def load_model_state(model: nn.Module, payload: dict[str, Any], ema: bool = True) -> None:
    """Load a checkpoint's EMA weights (when present and ``ema``) else its raw weights into ``model``.

    A mismatch between the checkpoint and ``model`` is a :class:`CheckpointError` with a one-line message.
    """
    ema_state = payload.get("ema") if ema else None
    if ema_state is not None:
        state = {k[len("module.") :]: v for k, v in ema_state.items() if k.startswith("module.")}
        which = "EMA"
    else:
        state = payload["model"]
        which = "model"
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and isinstance(state[k], Tensor) and state[k].shape != v.shape
    ]
    problems = [
        f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong_shape))
        if keys
    ]
    if problems:
        raise CheckpointError(f"the checkpoint's {which} weights do not fit this model ({'; '.join(problems)})")
    model.load_state_dict(state)
