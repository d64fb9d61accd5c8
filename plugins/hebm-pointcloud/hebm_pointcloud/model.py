"""A permutation-invariant, noise-conditional set energy: one scalar per cloud, an equivariant score.

Every point is lifted by a shared MLP, then ``depth`` residual equivariant blocks mix the points'
features, and a per-point head gives energies that are summed over points. Two blocks:
``"pool"`` (DeepSets/PointNet: each point's feature plus pooled mean and max features of the
whole cloud; O(B·N·hidden²)) and ``"edge"`` (DGCNN's EdgeConv on the kNN graph of the input
cloud plus the pooled context, so a point sees its local surface; O(B·N·k·hidden) more).
Summing (not averaging) keeps each point's score O(1/σ) whatever the number of points. Noise
conditioning follows NCSNv2 as :class:`hebm_core.models.MLPEnergy` does: the network sees
``log σ``, its input is scaled by ``1/sqrt(σ² + s²)`` (s: the data's coordinate std) and the
energy is divided by ``σ``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from hebm_core.energy import EnergyModel
from hebm_pointcloud import _checks as chk
from hebm_pointcloud.geometry import check_clouds, gather_neighbours, knn_indices

__all__ = ["SetEnergy", "set_energy", "POOLS", "BLOCKS", "MODELS", "MAX_PARAMETERS"]

#: the most weights a set network may have (4e8 bytes in float32); more is a mistyped option
MAX_PARAMETERS = 10**8


def _mean(h: Tensor) -> Tensor:
    return h.mean(1)


def _max(h: Tensor) -> Tensor:
    return h.amax(1)


def _meanmax(h: Tensor) -> Tensor:
    return torch.cat([h.mean(1), h.amax(1)], -1)


#: pooling name -> (function [B, N, H] -> [B, P·H], P)
POOLS: dict[str, tuple[Callable[[Tensor], Tensor], int]] = {
    "mean": (_mean, 1),
    "max": (_max, 1),
    "meanmax": (_meanmax, 2),
}


class EquivariantBlock(nn.Module):
    """``h_i ← h_i + W₂ SiLU(W₁ h_i + U pool(h) + c·log σ)``: permutation-equivariant, residual."""

    neighbours = 0  # needs no kNN graph

    def __init__(self, hidden: int, pool: str, conditional: bool) -> None:
        super().__init__()
        self.pool, width = POOLS[pool]
        self.local = nn.Linear(hidden, hidden)
        self.glob = nn.Linear(width * hidden, hidden, bias=False)
        self.cond = nn.Linear(1, hidden, bias=False) if conditional else None
        self.out = nn.Linear(hidden, hidden)
        self.act = nn.SiLU()

    def _point_term(self, h: Tensor, points: Tensor, idx: Tensor | None) -> Tensor:
        """What each point contributes from itself (and, in subclasses, its neighbourhood)."""
        return self.local(h)

    def forward(self, h: Tensor, log_sigma: Tensor | None, points: Tensor, idx: Tensor | None) -> Tensor:
        z = self._point_term(h, points, idx) + self.glob(self.pool(h)).unsqueeze(1)
        if self.cond is not None and log_sigma is not None:
            z = z + self.cond(log_sigma.view(-1, 1, 1))
        return h + self.out(self.act(z))


class EdgeBlock(EquivariantBlock):
    """EdgeConv plus context: ``h_i ← h_i + W₂ SiLU(W₁ h_i + max_{j∈kNN(i)} [B(h_j − h_i) + C(x_j − x_i)]
    + U pool(h) + c·log σ)``.

    The kNN graph ``idx`` (``k`` neighbours, at most N − 1) of the scaled input points is built once
    per forward by :class:`SetEnergy`, without gradient, and held fixed as the Laplacian statistic's
    is; the score flows through the offsets ``x_j − x_i`` and the features. The linear maps are
    applied per point before the gather, so the k neighbours cost a gather and a max, not k matrix
    products.
    """

    def __init__(self, hidden: int, k: int, pool: str, conditional: bool) -> None:
        if k < 1:
            raise ValueError(f"edge blocks need k >= 1 neighbours, got {k}")
        super().__init__(hidden, pool, conditional)
        self.neighbours = k
        self.neighbour = nn.Linear(hidden, hidden, bias=False)
        self.offset = nn.Linear(3, hidden, bias=False)

    def _point_term(self, h: Tensor, points: Tensor, idx: Tensor | None) -> Tensor:
        nb = self.neighbour(h)
        edge = gather_neighbours(nb, idx) - nb.unsqueeze(2)
        edge = edge + self.offset(gather_neighbours(points, idx) - points.unsqueeze(2))
        return self.local(h) + edge.amax(2)


#: block name -> factory(hidden, conditional, pool, k)
BLOCKS: dict[str, Callable[[int, bool, str, int], nn.Module]] = {
    "pool": lambda hidden, conditional, pool, k: EquivariantBlock(hidden, pool, conditional),
    "edge": lambda hidden, conditional, pool, k: EdgeBlock(hidden, k, pool, conditional),
}


class SetEnergy(EnergyModel):
    """``E(x, σ) = Σ_i head(h_i) / σ`` over the points of each cloud ``x`` ``[B, N, 3]``."""

    def __init__(
        self,
        hidden: int = 64,
        depth: int = 3,
        pool: str = "meanmax",
        data_std: float = 0.5,
        noise_conditional: bool = True,
        block: str = "pool",
        k: int = 16,
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; known: {', '.join(sorted(POOLS))}")
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; known: {', '.join(sorted(BLOCKS))}")
        if hidden < 1 or depth < 0:
            raise ValueError(f"SetEnergy needs hidden >= 1 and depth >= 0, got {hidden}, {depth}")
        self.noise_conditional = noise_conditional
        self.data_std = float(data_std)
        self.lift = nn.Sequential(nn.Linear(3 + int(noise_conditional), hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(BLOCKS[block](hidden, noise_conditional, pool, k) for _ in range(depth))
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def energy(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        x = check_clouds(x)
        log_sigma = None
        if self.noise_conditional:
            if sigma is None:
                raise ValueError(
                    "this SetEnergy is noise-conditional: pass sigma (the smallest training σ for clean data)"
                )
            sigma = sigma.reshape(-1).to(x.dtype).expand(x.shape[0])
            log_sigma = sigma.log()
            c_in = (sigma.pow(2) + self.data_std**2).rsqrt().view(-1, 1, 1)
            points = x * c_in
            feats = torch.cat([points, log_sigma.view(-1, 1, 1).expand(-1, x.shape[1], 1)], -1)
        else:
            points = feats = x / self.data_std
        h = self.lift(feats)
        k = max((block.neighbours for block in self.blocks), default=0)
        idx = knn_indices(points, min(k, points.shape[1] - 1)) if k else None  # one graph for every block
        for block in self.blocks:
            h = block(h, log_sigma, points, idx)
        e = self.head(h).squeeze(-1).sum(1)
        return e / sigma if self.noise_conditional else e


def set_energy(
    example: Tensor,
    hidden: int = 64,
    depth: int = 3,
    pool: str = "meanmax",
    noise_conditional: bool = True,
    block: str = "pool",
    k: int = 16,
) -> SetEnergy:
    """:class:`SetEnergy` with the input scale taken from the example batch's coordinate std.

    Options are checked before the network is built: ``hidden`` in [1, 4096], ``depth`` in [0, 64]
    (and at most :data:`MAX_PARAMETERS` weights in all), ``k`` in [1, 1024] and, with edge blocks,
    fewer than the clouds' points.
    """
    hidden = chk.integer("hidden", hidden, 1, 4096)
    depth = chk.integer("depth", depth, 0, 64)
    pool = chk.choice("pool", pool, sorted(POOLS))
    block = chk.choice("block", block, sorted(BLOCKS))
    noise_conditional = chk.flag("noise_conditional", noise_conditional)
    k = chk.integer("k", k, 1, 1024)
    weights = (3 + depth * (2 + POOLS[pool][1] + (block == "edge"))) * hidden * hidden
    if weights > MAX_PARAMETERS:
        raise ValueError(
            f"hidden = {hidden} and depth = {depth} give about {weights:.3g} weights; at most {MAX_PARAMETERS:.0e}"
        )
    example = check_clouds(example, "model example")
    n = example.shape[1]
    if block == "edge" and depth and k >= n:
        raise ValueError(f"k = {k} neighbours needs clouds of more than {k} points; these have {n}")
    std = float(example.float().std()) if example.numel() > 1 else 0.5
    if not math.isfinite(std):
        raise ValueError("the example clouds hold non-finite coordinates")
    return SetEnergy(
        hidden=hidden,
        depth=depth,
        pool=pool,
        data_std=std or 0.5,
        noise_conditional=noise_conditional,
        block=block,
        k=k,
    )


#: name -> factory, as the plugin registers them
MODELS = {"set_energy": set_energy}
