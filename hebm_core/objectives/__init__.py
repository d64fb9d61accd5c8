"""Training objectives, each usable with any energy model."""

from hebm_core.objectives.base import Objective, ObjectiveOutput
from hebm_core.objectives.contrastive import (
    ContrastiveDivergence,
    GaussianNoise,
    NoiseContrastiveEstimation,
    PersistentContrastiveDivergence,
)
from hebm_core.objectives.recovery import RecoveryLikelihood
from hebm_core.objectives.score_matching import DenoisingScoreMatching, ExactScoreMatching, SlicedScoreMatching

#: objectives by the name used in configs and on the command line
OBJECTIVES: dict[str, type[Objective]] = {
    "dsm": DenoisingScoreMatching,
    "ssm": SlicedScoreMatching,
    "esm": ExactScoreMatching,
    "cd": ContrastiveDivergence,
    "pcd": PersistentContrastiveDivergence,
    "nce": NoiseContrastiveEstimation,
    "recovery": RecoveryLikelihood,
}

__all__ = [
    "OBJECTIVES",
    "ContrastiveDivergence",
    "DenoisingScoreMatching",
    "ExactScoreMatching",
    "GaussianNoise",
    "NoiseContrastiveEstimation",
    "Objective",
    "ObjectiveOutput",
    "PersistentContrastiveDivergence",
    "RecoveryLikelihood",
    "SlicedScoreMatching",
]
