"""Objective base: a module mapping (energy model, data batch) to a scalar loss and metrics."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from torch import Tensor, nn

from hebm_core.energy import EnergyFn
from hebm_core.space import EUCLIDEAN, Space
from hebm_core.tree import Sample

__all__ = ["Objective", "ObjectiveOutput"]


@dataclass
class ObjectiveOutput:
    loss: Tensor
    metrics: dict[str, float] = field(default_factory=dict)


class Objective(nn.Module, ABC):
    """Base class for training objectives.

    An objective is a module so that its own learnable quantities (NCE's log Z) and state
    (persistent CD's replay buffer) travel in checkpoints with ``state_dict``. Shape-dependent
    state is built in :meth:`setup`, which the trainer calls once with a data batch before the
    optimizer is created.
    """

    #: whether the objective feeds noise levels σ to the model (noise-conditional networks)
    uses_noise_levels: bool = False

    def __init__(self, space: Space | None = None) -> None:
        super().__init__()
        self.space = space or EUCLIDEAN

    def setup(self, example: Sample) -> None:
        """Build state that depends on the data's shape (default: nothing)."""

    @abstractmethod
    def forward(self, model: EnergyFn, x: Sample) -> ObjectiveOutput:
        """Loss on a batch ``x`` (the trainer passes the plain model, also under DDP)."""
