"""Preconditioned MALA, and the pieces it shares with NUTS and parallel tempering.

* :func:`~hebm_core.samplers.moves.mala_move` / :func:`~hebm_core.samplers.moves.hmc_move`
  (re-exported here): the proposals, with a diagonal inverse mass matrix.
* :class:`WindowedVariance`: Stan's windowed adaptation of a diagonal inverse mass matrix from the
  chains' variance (a fast initial buffer, doubling slow windows, a terminal buffer).
* :class:`MetricAdaptiveSampler`: the warm-up loop shared by :class:`PrecondMALA` and NUTS: dual
  averaging of the step size, metric windows (the step size is searched again and its averaging
  restarted after each), then both are held fixed so the kernel is an exact MH kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.energy import EnergyFn
from hebm_core.samplers.base import ChainState
from hebm_core.samplers.mh import DualAveraging, MetropolisSampler
from hebm_core.samplers.moves import hmc_move, mala_move, rows
from hebm_core.tree import Sample

__all__ = [
    "PrecondMALA",
    "MetricAdaptiveSampler",
    "WindowedVariance",
    "metric_windows",
    "find_step_size",
    "mala_move",
    "hmc_move",
    "rows",
]


def find_step_size(accept: Callable[[float], float], eps: float, target: float, max_tries: int = 60) -> float:
    """Stan's initial step-size heuristic: double (or halve) ``eps`` until the mean acceptance of one
    trial move, ``accept(eps)``, crosses ``target``. Each try costs one model evaluation."""
    a = accept(eps)
    up = a > target
    for _ in range(max_tries):
        nxt = eps * (2.0 if up else 0.5)
        if not 1e-12 < nxt < 1e12:
            break
        a = accept(nxt)
        eps = nxt
        if (a <= target) if up else (a > target):
            break
    return eps


def metric_windows(warmup: int, init: int = 75, term: int = 50, base: int = 25) -> list[tuple[int, int]]:
    """Stan's slow adaptation windows ``(start, end]`` in 1-based steps for ``warmup`` warm-up steps.

    An initial buffer lets chains reach the typical set, windows double in length, the last one is
    stretched to the terminal buffer (kept for the step size alone). Under 20 steps: no windows.
    """
    if warmup < 20:
        return []
    if init + term + base > warmup:
        init, term = int(0.15 * warmup), int(0.1 * warmup)
        base = warmup - init - term
    out, start, size = [], init, base
    while start < warmup - term:
        end = start + size
        if end + 2 * size >= warmup - term:  # the next, doubled window would not fit: stretch this one
            end = warmup - term
        out.append((start, end))
        start, size = end, 2 * size
    return out


class WindowedVariance:
    """Per-coordinate variance of the chains over each window (pooled over chains and steps), in float64.

    :meth:`observe` is fed the points after every warm-up step; at the end of a window it returns the
    new inverse mass (Stan's regularised variance, shrunk towards 1e-3 by ``5/(n+5)``), else ``None``.
    """

    def __init__(self, warmup: int) -> None:
        self.windows = metric_windows(warmup)
        self._reset()

    def _reset(self) -> None:
        self.n, self.s1, self.s2 = 0, None, None

    def observe(self, t: int, x: Sample) -> Sample | None:
        win = next((w for w in self.windows if w[0] < t <= w[1]), None)
        if win is None:
            return None
        leaves = [leaf.detach().double() for leaf in tree.state_leaves(x)]
        s1 = [v.sum(0) for v in leaves]
        s2 = [(v * v).sum(0) for v in leaves]
        self.n += leaves[0].shape[0]
        self.s1 = s1 if self.s1 is None else [a + b for a, b in zip(self.s1, s1)]
        self.s2 = s2 if self.s2 is None else [a + b for a, b in zip(self.s2, s2)]
        if t < win[1]:
            return None
        n = self.n
        var = [(b / n - (a / n) ** 2).clamp(min=0) * (n / (n - 1)) for a, b in zip(self.s1, self.s2)]
        var = [(n / (n + 5.0)) * v + 1e-3 * (5.0 / (n + 5.0)) for v in var]
        self._reset()
        it = iter(var)
        return tree.tree_map(lambda leaf: next(it).to(leaf.dtype), x)


def _summary(minv: Sample | None) -> dict[str, float]:
    if minv is None:
        return {"inv_mass_min": 1.0, "inv_mass_max": 1.0}
    leaves = tree.state_leaves(minv)
    return {
        "inv_mass_min": min(float(v.min()) for v in leaves),
        "inv_mass_max": max(float(v.max()) for v in leaves),
    }


class MetricAdaptiveSampler(MetropolisSampler):
    """A Metropolis sampler whose warm-up adapts a diagonal inverse mass matrix and the step size.

    During the ``adapt_steps`` warm-up steps the step size follows dual averaging towards
    ``target_accept`` and, with ``adapt_metric``, :attr:`inv_mass` is re-estimated at the end of each
    Stan window; after warm-up both are fixed. :attr:`inv_mass` is ``None`` (unit mass) until the
    first window closes, and keeps the adapted value after the run. Extra per-step statistics that
    ``transition`` puts in ``ChainState.stats`` are averaged over the sampling steps into ``last_stats``.
    """

    def __init__(self, step_size: float = 0.1, n_steps: int = 100, adapt_metric: bool = True, **kw) -> None:
        super().__init__(step_size=step_size, n_steps=n_steps, **kw)
        if not isinstance(adapt_metric, bool):
            raise ValueError(f"{type(self).__name__}: adapt_metric must be true or false, got {adapt_metric!r}")
        self.adapt_metric = adapt_metric
        self.inv_mass: Sample | None = None
        self._metric: WindowedVariance | None = None  # the current run's warm-up metric estimate
        self._sums: dict[str, float] = {}  # the current run's per-step statistics, summed after warm-up

    def probe(self, energy: EnergyFn, state: ChainState, sigma: Tensor | None, step_size: float) -> float:
        """Mean acceptance probability of one trial move from ``state`` (for :func:`find_step_size`)."""
        raise NotImplementedError

    def _search(self, energy: EnergyFn, state: ChainState, sig: Tensor | None, eps: float) -> DualAveraging:
        eps = find_step_size(lambda h: self.probe(energy, state, sig, h), eps, self.target_accept)
        return DualAveraging(eps, self.target_accept)

    def begin_warmup(self, energy: EnergyFn, state: ChainState, sig: Tensor | None) -> tuple[float, Any]:
        self.inv_mass, self._sums = None, {}
        self._metric = WindowedVariance(self.adapt_steps) if self.adapt_steps and self.adapt_metric else None
        return self.step_size, self._search(energy, state, sig, self.step_size) if self.adapt_steps else None

    def warmup_update(
        self, t: int, energy: EnergyFn, state: ChainState, sig: Tensor | None, accept: float, adapter: Any
    ) -> tuple[float, Any]:
        """Dual averaging of the step size; at the end of each Stan window the new metric and a fresh
        step-size search under it."""
        eps = adapter.update(accept)
        new = self._metric.observe(t, state.x) if self._metric is not None else None
        if new is not None:
            self.inv_mass = new
            adapter = self._search(energy, state, sig, eps)
            eps = adapter.final
        return (adapter.final if t == self.adapt_steps else eps), adapter

    def observe_sampling(self, state: ChainState) -> None:
        for k, v in state.stats.items():
            self._sums[k] = self._sums.get(k, 0.0) + v

    def run_stats(self, n_sampling: int) -> dict[str, float]:
        extra = {k: v / max(n_sampling, 1) for k, v in self._sums.items()}
        return {**_summary(self.inv_mass), **extra}


class PrecondMALA(MetricAdaptiveSampler):
    """MALA with a diagonal preconditioner: ``y = x + ε m s(x) + √(2ε m) ξ`` with an MH correction.

    ``m`` (:attr:`inv_mass`) is the chains' per-coordinate variance, estimated in Stan's windows
    during the ``adapt_steps`` warm-up (set ``adapt_metric=False`` for unit mass), so a target whose
    scales differ by orders of magnitude is sampled as if it were isotropic. After warm-up ``m`` and
    ``ε`` are fixed and the chain is an exact MH chain for the target.
    """

    name = "precond_mala"
    target_accept = 0.574

    def propose(self, energy, state, sigma, step_size):
        return mala_move(self, energy, state, sigma, step_size, minv=self.inv_mass)

    def probe(self, energy, state, sigma, step_size):
        _, log_alpha = self.propose(energy, state, sigma, step_size)
        return float(torch.nan_to_num(log_alpha, nan=-math.inf).clamp(max=0).exp().mean())
