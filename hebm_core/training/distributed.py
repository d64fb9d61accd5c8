"""DistributedDataParallel: process-group setup and the module DDP wraps.

Under ``torchrun`` (``WORLD_SIZE > 1``) every rank draws the same global batch and trains on its
contiguous shard; DDP averages the gradients, which equals the gradient of the global batch.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor, nn

from hebm_core.energy import EnergyModel
from hebm_core.objectives.base import Objective
from hebm_core.training.state import resolve_device
from hebm_core.tree import Sample

__all__ = ["DistributedLoss", "init_distributed", "mean_over_ranks"]


class DistributedLoss(nn.Module):
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


def init_distributed(device_name: str) -> tuple[torch.device, int, int, bool]:
    """Device, rank, world size and whether this call created the process group."""
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


def mean_over_ranks(values: list[float], world_size: int, device: torch.device) -> list[float]:
    """The mean of ``values`` over every rank (the values themselves on one process)."""
    if world_size == 1 or not values:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / world_size).tolist()
