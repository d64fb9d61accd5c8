"""Annealing schedules for AIS: ``0 = β_0 ≤ … ≤ β_{T-1} = 1``, by name, explicit values or a function."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["SCHEDULES", "ScheduleSpec", "geometric_schedule", "linear_schedule", "make_schedule", "sigmoid_schedule"]

#: a schedule: a name of :data:`SCHEDULES`, explicit βs, or a function ``n -> βs``
ScheduleSpec = str | Sequence[float] | Tensor | Callable[[int], Tensor]


def linear_schedule(n: int) -> Tensor:
    """β evenly spaced from 0 to 1 in ``n`` steps."""
    return torch.linspace(0.0, 1.0, n, dtype=torch.float64)


def geometric_schedule(n: int, beta_min: float = 1e-4) -> Tensor:
    """β = 0, then ``n-1`` values geometrically spaced from ``beta_min`` to 1.

    Dense near 0, where a broad base and a narrow target differ most per unit of β (the steps are
    then roughly even in the log of the path's precision).
    """
    if not 0 < beta_min < 1:
        raise ValueError("beta_min must lie in (0, 1)")
    if n == 2:
        return torch.tensor([0.0, 1.0], dtype=torch.float64)
    rest = torch.logspace(math.log10(beta_min), 0.0, n - 1, dtype=torch.float64)
    rest[-1] = 1.0
    return torch.cat([torch.zeros(1, dtype=torch.float64), rest])


def sigmoid_schedule(n: int, rad: float = 4.0) -> Tensor:
    """β from 0 to 1 in ``n`` steps, dense at both ends (Grosse et al. 2013)."""
    t = torch.linspace(-rad, rad, n, dtype=torch.float64)
    s = torch.sigmoid(t)
    return (s - s[0]) / (s[-1] - s[0])


#: the schedules selectable by name
SCHEDULES: dict[str, Callable[[int], Tensor]] = {
    "linear": linear_schedule,
    "geometric": geometric_schedule,
    "sigmoid": sigmoid_schedule,
}


def make_schedule(spec: ScheduleSpec, n: int) -> Tensor:
    """The βs of ``spec`` (a name, explicit values, or ``n -> βs``) as float64, checked to run
    monotonically (non-decreasing) from exactly 0 to exactly 1. Explicit values set their own length."""
    if isinstance(spec, str):
        if spec not in SCHEDULES:
            raise ValueError(f"unknown AIS schedule {spec!r}; choose one of {sorted(SCHEDULES)} or pass the βs")
        betas = SCHEDULES[spec](n)
    elif callable(spec):
        betas = torch.as_tensor(spec(n), dtype=torch.float64)
    else:
        betas = torch.as_tensor(spec, dtype=torch.float64)
    betas = betas.flatten().cpu()
    if betas.numel() < 2:
        raise ValueError("an AIS schedule needs at least two temperatures")
    if not bool(torch.isfinite(betas).all()) or float(betas[0]) != 0.0 or float(betas[-1]) != 1.0:
        raise ValueError("an AIS schedule must start at β = 0 and end at β = 1")
    if bool((betas.diff() < 0).any()):
        raise ValueError("an AIS schedule must be non-decreasing")
    return betas
