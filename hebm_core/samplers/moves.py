"""One MALA proposal or one HMC trajectory from a cached :class:`ChainState`, shared by every
Metropolis sampler (MALA, HMC, preconditioned MALA, NUTS's leaves, parallel tempering).

Both take the target ``β·E`` with a per-row step size (a float or a ``[B]`` tensor), optional
per-row inverse temperatures ``β`` and a diagonal inverse mass matrix, and start from the state's
cached energy and score, so each new point costs one model evaluation. Updates are fused
``a + α b`` kernels (``torch.add`` / ``torch.addcmul``): on a cheap network the elementwise passes
are a visible share of a step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.energy import EnergyFn
from hebm_core.samplers.base import ChainState, Sampler
from hebm_core.tree import Sample

__all__ = ["Rowwise", "hmc_move", "mala_move", "mul_minv", "rows"]

Rowwise = float | Tensor


def rows(v: Rowwise | None, like: Tensor) -> Rowwise | None:
    """A per-row ``[B]`` tensor viewed to broadcast against ``like`` ``[B, ...]``; floats pass through."""
    if isinstance(v, Tensor) and v.dim() == 1:
        return v.view(-1, *([1] * (like.dim() - 1)))
    return v


def _sq(r: Sample, minv: Sample | None) -> Tensor:
    """``Σ r² / m`` per sample (the norm in the mass matrix ``M = diag(1/m)``)."""
    if minv is None:
        return tree.batch_dot(r, r)
    return tree.batch_dot(r, tree.tree_map(lambda u, m: u / m, r, minv))


def mul_minv(a: Sample, minv: Sample | None) -> Sample:
    """``a · m`` leafwise (``a`` itself without a mass matrix)."""
    return a if minv is None else tree.tree_map(lambda u, m: u * m, a, minv)


def _axpy(a: Tensor, alpha: Rowwise, b: Tensor) -> Tensor:
    """``a + α b`` in one kernel, ``α`` a number or a per-row ``[B]`` tensor."""
    if isinstance(alpha, Tensor):
        return torch.addcmul(a, rows(alpha, a), b)
    return torch.add(a, b, alpha=alpha)


def mala_move(
    sampler: Sampler,
    energy: EnergyFn,
    state: ChainState,
    sigma: Tensor | None,
    h: Rowwise,
    beta: Tensor | None = None,
    minv: Sample | None = None,
) -> tuple[ChainState, Tensor]:
    """A MALA proposal for ``β·E``: ``y = x + h m β s(x) + √(2h m) ξ``; returns it and ``log α`` ``[B]``.

    ``state`` holds the untempered energy and score, so do the returned proposal's. When the space's
    projection leaves ``y`` as it is, the forward residual ``y − x − h m β s(x)`` is ``√(2h m) ξ`` and
    its norm is taken from ``ξ`` (three tensor passes fewer, and no cancellation).
    """
    x, s = state.x, state.score
    hb = h if beta is None else h * beta
    c = torch.sqrt(2 * h) if isinstance(h, Tensor) else math.sqrt(2 * h)
    xi = sampler.space.noise_like(x)
    noise = xi if minv is None else tree.tree_map(lambda n, m: n * m.sqrt(), xi, minv)
    raw = tree.tree_map(lambda a, g, n: _axpy(_axpy(a, hb, g), c, n), x, mul_minv(s, minv), noise)
    y = sampler.space.project(raw)
    e_y, s_y = sampler.evaluate(energy, y, sigma)
    if y is raw:
        fwd = 2 * h * tree.batch_dot(xi, xi)
    else:
        fwd = _sq(tree.tree_map(lambda yy, a, g: _axpy(yy - a, -hb, g), y, x, mul_minv(s, minv)), minv)
    bwd = _sq(tree.tree_map(lambda a, yy, g: _axpy(a - yy, -hb, g), x, y, mul_minv(s_y, minv)), minv)
    de = state.energy - e_y
    log_alpha = (de if beta is None else beta * de) + (fwd - bwd) / (4 * h)
    return ChainState(y, e_y, s_y), log_alpha


def hmc_move(
    sampler: Sampler,
    energy: EnergyFn,
    state: ChainState,
    sigma: Tensor | None,
    h: Rowwise,
    n_leapfrog: int,
    beta: Tensor | None = None,
    minv: Sample | None = None,
) -> tuple[ChainState, Tensor]:
    """``n_leapfrog`` leapfrog steps for ``β·E`` with momentum ``p ~ N(0, diag(1/m))``.

    Returns the end point (untempered energy and score cached) and ``H₀ − H₁``, the log acceptance ratio.
    """
    noise = sampler.space.noise_like(state.x)
    p0 = noise if minv is None else tree.tree_map(lambda n, m: n / m.sqrt(), noise, minv)
    hb = h if beta is None else h * beta
    x, s, e = state.x, state.score, state.energy
    p = tree.tree_map(lambda q, g: _axpy(q, 0.5 * hb, g), p0, s)
    for i in range(n_leapfrog):
        x = sampler.space.project(tree.tree_map(lambda a, q: _axpy(a, h, q), x, mul_minv(p, minv)))
        e, s = sampler.evaluate(energy, x, sigma)
        kick = (0.5 if i == n_leapfrog - 1 else 1.0) * hb  # the last momentum kick is a half step
        p = tree.tree_map(lambda q, g, k=kick: _axpy(q, k, g), p, s)
    e0, e1 = (state.energy, e) if beta is None else (beta * state.energy, beta * e)
    h0 = e0 + 0.5 * tree.batch_dot(p0, mul_minv(p0, minv))
    h1 = e1 + 0.5 * tree.batch_dot(p, mul_minv(p, minv))
    return ChainState(x, e, s), h0 - h1
