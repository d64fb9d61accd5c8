"""Small building blocks of the EDG networks: an MLP, a time embedding, the VP schedule, an energy
counter and a soft gradient clip."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["MLP", "EvalCounter", "Shared", "VPSchedule", "soft_clip", "time_features"]


class MLP(nn.Module):
    """``depth`` SiLU layers of width ``hidden``; the last layer starts at zero so a correction starts as none."""

    def __init__(self, n_in: int, n_out: int, hidden: int, depth: int, zero_last: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        last = nn.Linear(width, n_out)
        if zero_last:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)


def time_features(t: Tensor, horizon: float, n: int = 8) -> Tensor:
    """``[B, 2n]`` sines and cosines of ``t / T`` at frequencies ``π·1 … π·2^(n-1)``."""
    freqs = math.pi * 2.0 ** torch.arange(n, dtype=t.dtype, device=t.device)
    arg = (t / horizon)[:, None] * freqs
    return torch.cat([arg.sin(), arg.cos()], -1)


def soft_clip(g: Tensor, max_norm: float) -> Tensor:
    """``g / sqrt(1 + ‖g‖² / c²)`` per row: the identity for small gradients, norm ≤ ``c`` always, smooth."""
    sq = g.pow(2).sum(-1, keepdim=True)
    return g * torch.rsqrt(1.0 + sq / max_norm**2)


@dataclass
class VPSchedule:
    """The variance-preserving SDE ``dz = -½β(t) z dt + √β(t) dW`` with ``β`` linear on ``[0, T]``.

    ``z_t | z_0 ~ N(α_t z_0, σ_t² I)`` with ``α_t = exp(-½∫₀ᵗβ)``, ``σ_t² = 1 - α_t²``, so N(0, I) is
    stationary and ``z_T`` is nearly independent of ``z_0`` (``α_T = exp(-½∫β)``).
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    horizon: float = 1.0

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + (self.beta_max - self.beta_min) * t / self.horizon

    def integral(self, t: Tensor) -> Tensor:
        """``∫₀ᵗ β``."""
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t.pow(2) / self.horizon

    def alpha_sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        a = torch.exp(-0.5 * self.integral(t))
        return a, torch.sqrt((1.0 - a.pow(2)).clamp_min(0.0))


class Shared:
    """Holds an object that every copy of a module shares (``deepcopy`` returns the same holder).

    The EMA copy of a model is a deep copy; the target energy and the evaluation counter must stay one object.
    """

    def __init__(self, obj) -> None:
        self.obj = obj

    def __deepcopy__(self, memo) -> Shared:
        return self


class EvalCounter:
    """Counts energy evaluations, one per row of every call of the target's energy (its gradient
    comes with the same call and is not counted again; higher derivatives through it are not counted)."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, rows: int) -> None:
        self.total += int(rows)

    def take(self) -> int:
        """The count since the last ``take`` (then zero)."""
        n, self.total = self.total, 0
        return n
