"""Training an EDG with the core :class:`~hebm_core.training.Trainer` (checkpoints, exact resume, EMA,
``metrics.csv``, progress bar), and the energies it can target.

The trained module is the :class:`~hebm_core.edg.model.EDG` (decoder and encoder networks), the
objective :class:`~hebm_core.edg.loss.EDGLoss`, and the "data" a dummy index set of one batch: the
latents are drawn fresh at every step from the global generator, which checkpoints hold. A trained
hebm run is a target through :func:`hebm_core.targets.checkpoint_target`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hebm_core.edg.config import EDGOptions
from hebm_core.edg.loss import EDGLoss
from hebm_core.edg.model import EDG
from hebm_core.edg.weights import EDGDivergenceError
from hebm_core.energy import EnergyFn
from hebm_core.training import TrainConfig, Trainer, TrainingDivergedError

__all__ = ["EDGRun", "TRAIN_DEFAULTS", "edg_train_config", "train_edg", "frozen"]

#: the generator's training where the caller does not say (the EDG paper gives no schedule)
TRAIN_DEFAULTS = {"steps": 2000, "batch_size": 256, "lr": 1e-3, "tensorboard": False}


def edg_train_config(options: dict[str, Any] | None = None) -> TrainConfig:
    """The trainer's options for an EDG: :data:`TRAIN_DEFAULTS` with ``options`` over them."""
    return TrainConfig.from_dict({**TRAIN_DEFAULTS, **(options or {})})


@dataclass
class EDGRun:
    """A trained EDG: the sampling model (EMA weights when EMA is on), the trainer and its summary;
    ``train_evals`` counts the target's evaluations over the whole training (resumed parts included)."""

    model: EDG
    trainer: Trainer
    summary: dict[str, Any]

    @property
    def train_evals(self) -> int:
        return int(self.trainer.objective.energy_evals)


def frozen(energy: EnergyFn) -> EnergyFn:
    """``energy`` with its parameters (if it is a module) out of autograd: EDG trains only its own networks."""
    if isinstance(energy, torch.nn.Module):
        for p in energy.parameters():
            p.requires_grad_(False)
        energy.eval()
    return energy


def train_edg(
    energy: EnergyFn,
    dim: int,
    options: EDGOptions | None = None,
    train: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    scale: float = 1.0,
    sigma: float | None = None,
    resume: bool | str | Path = False,
    spec: dict | None = None,
    loc: torch.Tensor | None = None,
) -> EDGRun:
    """Train an EDG for ``energy`` (``U``, on ``[B, dim]``) and return it with the trainer's summary.

    ``train.batch_size`` latents per step; ``out_dir`` gets ``checkpoint.pt`` and ``metrics.csv``;
    ``resume`` continues from the checkpoint there (or the one named) exactly; ``scale`` and ``loc`` are
    the generator's initial spread and centre.
    """
    options = options or EDGOptions()
    train = train or TrainConfig()
    torch.manual_seed(train.seed)  # the networks' initial weights (the trainer then seeds the steps)
    model = EDG(frozen(energy), dim, options, scale=scale, sigma=sigma, loc=loc)
    objective = EDGLoss(options.time_samples)
    data = torch.zeros(train.batch_size, 1)
    trainer = Trainer(model, objective, data, train, out_dir=out_dir, spec=spec)
    try:
        summary = trainer.fit(resume=resume)
    except TrainingDivergedError as exc:
        raise EDGDivergenceError(
            f"EDG training diverged ({exc}); if the target's energy or gradient is not finite where the "
            "generator starts, lower edg.step_size or edg.grad_clip, or set a smaller scale"
        ) from exc
    summary["energy_evals"] = int(objective.energy_evals)
    sampling = trainer.sampling_model()
    assert isinstance(sampling, EDG)
    return EDGRun(sampling, trainer, summary)
