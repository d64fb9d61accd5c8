"""Energy-based Diffusion Generator (EDG; Wang, Guo, Wu & Zhou, arXiv 2401.02080): a data-free
sampler for ``p(x) ∝ exp(−U(x))`` trained with the core trainer, with importance weights, rESS and log Z."""

from hebm_core.edg.config import EDGOptions, WeightOptions
from hebm_core.edg.loss import EDGLoss, bound_terms
from hebm_core.edg.model import EDG
from hebm_core.edg.train import TRAIN_DEFAULTS, EDGRun, edg_train_config, train_edg
from hebm_core.edg.weights import (
    EDGDivergenceError,
    WeightedSamples,
    draw_weighted,
    encoder_log_density,
    summarise_log_weights,
)

__all__ = [
    "EDG",
    "EDGDivergenceError",
    "EDGLoss",
    "EDGOptions",
    "EDGRun",
    "TRAIN_DEFAULTS",
    "edg_train_config",
    "WeightOptions",
    "WeightedSamples",
    "bound_terms",
    "draw_weighted",
    "encoder_log_density",
    "summarise_log_weights",
    "train_edg",
]
