"""Training: the loop (:class:`Trainer`), its options (:class:`TrainConfig`), random state and EMA,
DDP, logs and learning-rate schedules, one module each."""

from hebm_core.training.config import TrainConfig
from hebm_core.training.schedules import LR_SCHEDULES, lr_factor
from hebm_core.training.state import (
    ema_with_warmup,
    load_model_state,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
)
from hebm_core.training.trainer import RESUME_KEYS, Trainer, TrainingDivergedError

__all__ = [
    "LR_SCHEDULES",
    "RESUME_KEYS",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "ema_with_warmup",
    "load_model_state",
    "lr_factor",
    "resolve_device",
    "rng_state",
    "seed_everything",
    "set_rng_state",
]
