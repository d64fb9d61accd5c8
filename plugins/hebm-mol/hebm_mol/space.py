"""The space molecular graphs ``(X, A, mask)`` live in: what noise and which moves are allowed."""

from __future__ import annotations

import torch
from torch import Tensor

from hebm_core.space import Space

__all__ = ["GraphSpace", "pair_mask"]

Graph = tuple[Tensor, Tensor, Tensor]


def pair_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``[B, N, N]``: 1 where both nodes are real and ``i != j``."""
    m = mask.to(dtype)
    pair = m.unsqueeze(-1) * m.unsqueeze(-2)
    return pair * (1 - torch.eye(mask.shape[-1], dtype=dtype, device=mask.device))


class GraphSpace(Space):
    """Node features move only on real nodes; the adjacency moves symmetrically, never on the
    diagonal or on padding. The boolean node mask is context and never moves.

    Noise on A is one standard normal per node pair, copied to both triangles; scores are
    symmetrised and masked by :meth:`tangent`, so a network need not be symmetric or mask-aware by
    construction. Score matching and Langevin both use the symmetrised score, so the sampler moves
    each pair variable with its own score (the energy's A-part is then scaled by 2, which samplers
    without a Metropolis test never see).

    :meth:`project` clamps X to ``[−margin, 1 + margin]`` and A to ``[−margin, max_bond + margin]``:
    no data graph lies farther out, and a chain that gets there has run away. Without the box
    about 1 chain in 1000 of a QM9 model ran off to |X| ≈ 8,000, A ≈ 22 (every pair a triple
    bond, valency excess 189 against a mean of 0.02), finite, so no divergence check caught it;
    the box lets the energy pull it back. The default margin, 6, is 4σ at σ = 1.5.
    """

    def __init__(self, margin: float = 6.0, max_bond: float = 3.0) -> None:
        super().__init__()
        if margin <= 0 or max_bond <= 0:
            raise ValueError(f"GraphSpace: margin and max_bond must be positive, got {margin}, {max_bond}")
        self.margin, self.max_bond = float(margin), float(max_bond)

    def project(self, g: Graph) -> Graph:
        x, a, mask = g
        m = self.margin
        return x.clamp(-m, 1 + m), a.clamp(-m, self.max_bond + m), mask

    def noise_like(self, g: Graph) -> Graph:
        x, a, mask = g
        z = torch.randn_like(a).triu(1)
        return (
            torch.randn_like(x) * mask.to(x.dtype).unsqueeze(-1),
            (z + z.transpose(-1, -2)) * pair_mask(mask, a.dtype),
            mask,
        )

    def tangent(self, g: Graph) -> Graph:
        x, a, mask = g
        return x * mask.to(x.dtype).unsqueeze(-1), 0.5 * (a + a.transpose(-1, -2)) * pair_mask(mask, a.dtype), mask

    def dim(self, g: Graph) -> int:
        x, a, _ = g
        n = x.shape[1]
        return n * x.shape[2] + n * (n - 1) // 2
