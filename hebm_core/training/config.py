"""``[train]``: the options of one training run, their defaults, types and ranges."""

from __future__ import annotations

from dataclasses import dataclass

from hebm_core.options import Options, option
from hebm_core.training.schedules import LR_SCHEDULES

__all__ = ["TrainConfig"]


def _positive(v: float) -> bool:
    return v > 0


def _non_negative(v: float) -> bool:
    return v >= 0


@dataclass
class TrainConfig(Options):
    """Options of one training run (the ``[train]`` section of a run configuration)."""

    section = "train"

    steps: int = option(2000, "an integer in [0, 1e9]", lambda v: 0 <= v <= 10**9, "optimizer steps")
    batch_size: int = option(
        256, "an integer in [1, 1e7]", lambda v: 1 <= v <= 10**7, "global batch (split over DDP ranks)"
    )
    lr: float = option(1e-3, "a number in (0, 1000]", lambda v: 0 < v <= 1000, "Adam learning rate of the network")
    eta_lr: float | None = option(
        None,
        "a number >= 0 (or null for lr)",
        _non_negative,
        "learning rate of parameter groups that name it (the hybrid's η); 0 freezes them, null: lr",
    )
    lr_schedule: str = option(
        "constant", f"one of {', '.join(LR_SCHEDULES)}", LR_SCHEDULES.__contains__, "constant or cosine (to 0)"
    )
    warmup_steps: int = option(0, "an integer >= 0", _non_negative, "linear warmup of every learning rate")
    weight_decay: float = option(0.0, "a number >= 0", _non_negative, "Adam weight decay (network only)")
    grad_clip: float | None = option(1.0, "a number > 0 (or null for no clipping)", _positive, "max gradient norm")
    ema_decay: float | None = option(
        0.999, "a number in [0, 1) (or null for no EMA)", lambda v: 0 <= v < 1, "EMA of the weights used to sample"
    )
    seed: int = option(0, "an integer in [0, 2**63)", lambda v: 0 <= v < 2**63, "seed of every generator")
    device: str = option("auto", "a string", None, "auto, cpu, cuda, cuda:1, …")
    log_every: int = option(50, "an integer >= 1", _positive, "steps between metrics.csv rows")
    checkpoint_every: int = option(500, "an integer >= 1", _positive, "steps between checkpoints (and one at the end)")
    tensorboard: bool = option(True, None, None, "also log to TensorBoard when it is installed")
    progress: bool | None = option(None, "true or false (or null: when a terminal)", None, "progress bar")
    strict: bool = option(False, None, None, "a loss that blows up over its running median is an error, not a warning")

    #: options that name a parameter group's learning rate (see EnergyModel.parameter_groups)
    GROUP_LR_OPTIONS = ("eta_lr",)
    #: options that change the trajectory: resuming with other values warns that the run is no longer exact
    TRAJECTORY_OPTIONS = (
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
