"""Objective base: a module mapping (energy model, data batch) to a scalar loss and metrics."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from hebm_core import tree
from hebm_core.energy import EnergyFn
from hebm_core.options import check_int
from hebm_core.samplers.langevin import MAX_LEVELS, geometric_sigmas
from hebm_core.space import EUCLIDEAN, Space
from hebm_core.tree import Sample

__all__ = ["Objective", "ObjectiveOutput", "noise_ladder", "draw_levels", "per_row"]


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


def noise_ladder(owner: str, sigma_min: float, sigma_max: float, n_sigmas: int, sigmas=None) -> Tensor:
    """The noise levels of a noise-conditional objective (float32): ``sigmas`` as given, else
    ``n_sigmas`` geometric ones from ``sigma_max`` down to ``sigma_min``; bad values are one ValueError."""
    if sigmas is not None:
        try:
            s = torch.as_tensor(sigmas, dtype=torch.float32).flatten()
        except (TypeError, ValueError, RuntimeError):
            s = torch.empty(0)
        if not 0 < s.numel() <= MAX_LEVELS or not bool(((s > 0) & torch.isfinite(s)).all()):
            raise ValueError(f"{owner}: sigmas must be 1 to {MAX_LEVELS} positive finite numbers, got {sigmas!r}")
        return s
    return geometric_sigmas(sigma_max, sigma_min, check_int(owner, "n_sigmas", n_sigmas, 1, MAX_LEVELS)).float()


def draw_levels(sigmas: Tensor, x: Sample) -> Tensor:
    """One noise level per row of ``x`` (``[B]``, on its device and in its dtype), uniform over ``sigmas``."""
    leaf = tree.state_leaves(x)[0]
    idx = torch.randint(0, sigmas.numel(), (tree.batch_size(x),), device=leaf.device)
    return sigmas.to(leaf.device, leaf.dtype)[idx]


def per_row(v: Tensor, like: Tensor) -> Tensor:
    """``[B]`` values shaped to broadcast over the rows of ``like`` (``[B, 1, …]``, in its dtype)."""
    return v.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))
