"""How η's moment matching steps: each round's curvature and the rules of :func:`hebm_core.pipeline.calibrate_eta`.

Kept apart from the pipeline (which samples and evaluates) so that config validation can name the
rules without importing the pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "CALIBRATION_METHODS",
    "RUNAWAY",
    "Progress",
    "Round",
    "curvature",
    "median_of_means",
    "step_kl",
    "within_kl",
]


#: a round whose standardised gap ``Σ |gap| / sd T`` is over this many times round 0's has diverged:
#: its chains ran off to huge but finite values (overshoots in the point-cloud experiments reach
#: ~50×, runaway chains 1e21×), so its gap says nothing about the response to η
RUNAWAY = 1e3


def median_of_means(t: Tensor, groups: int = 10, var: bool = False) -> Tensor:
    """Per column of ``t [n, k]``: the median of the means (``var``: the variances) of ``groups``
    interleaved groups of rows (plain mean / variance below ``2·groups`` rows). Robust to a few
    wild rows, near the plain estimate otherwise."""
    stat = (lambda u: u.var(0, correction=0)) if var else (lambda u: u.mean(0))
    if groups < 2 or t.shape[0] < 2 * groups:
        return stat(t)
    return torch.stack([stat(t[i::groups]) for i in range(groups)]).median(0).values


def _correlation(t: Tensor) -> Tensor:
    """The correlation matrix of the columns of ``t`` over its finite rows (identity when undefined)."""
    m = t.shape[1]
    finite = t[torch.isfinite(t).all(1)]
    if m == 1 or finite.shape[0] < 3:
        return torch.eye(m, dtype=t.dtype)
    return torch.nan_to_num(torch.corrcoef(finite.T), nan=0.0).clamp(-1.0, 1.0).fill_diagonal_(1.0)


def curvature(t: Tensor, data_var: Tensor, groups: int = 10) -> tuple[Tensor, Tensor, Tensor]:
    """``(sd, R, R⁺)`` of the samples' statistics ``t [n, k]``: robust sd per component (the
    median-of-groups variance, or the data's where larger: a few wild chains would inflate Var T
    and stall Newton), their correlations ``R`` and its pseudo-inverse. Newton's curvature is
    ``C = D^½·R·D^½``; directions in which ``R`` is nearly singular (eigenvalue under 0.1 % of the
    largest: components that repeat each other) get no step rather than an amplified one."""
    var = torch.nan_to_num(median_of_means(t, groups, var=True), nan=0.0)
    corr = _correlation(t)
    return (
        torch.maximum(var, data_var).clamp_min(1e-12).sqrt(),
        corr,
        torch.linalg.pinv(corr, rtol=1e-3, hermitian=True),
    )


@dataclass
class Round:
    """One calibration round: η tried, its gap (median of means), Σ|gap|/sd, and the round's
    robust ``D^½ = sd`` (max of the samples' and the data's), the samples' correlations ``R`` and
    ``R⁺``, their pseudo-inverse."""

    eta: Tensor
    gap: Tensor
    size: float
    sd: Tensor
    corr: Tensor
    corr_pinv: Tensor


@dataclass
class Progress:
    """What a step rule sees: round 0, the best round so far, the last other η tried with its gap
    (``None`` before the second round), whether the last round was kept, ``calibrate_lr``,
    ``max_growth`` and ``state``, the rule's own memory across rounds."""

    first: Round
    best: Round
    other: tuple[Tensor, Tensor] | None
    kept: bool
    lr: float
    max_growth: float
    state: dict[str, float]


def _secant_step(p: Progress) -> tuple[Tensor, str]:
    """Newton with round 0's curvature, then per-component secants ``−gap / (Δgap/Δη)``."""
    step = -p.lr * (p.first.corr_pinv @ (p.best.gap / p.first.sd)) / p.first.sd
    if p.other is None:
        return step, "newton"
    d_eta = p.best.eta - p.other[0]
    slope = (p.best.gap - p.other[1]) / d_eta
    ok = (d_eta != 0) & (slope > 0) & torch.isfinite(slope)
    kind = "newton"
    if bool(ok.any()):
        step, kind = torch.where(ok, -p.best.gap / slope, step), "secant"
    limit = p.max_growth * d_eta.abs() if p.kept else 0.5 * d_eta.abs()  # half the way back after a rejected try
    limit = torch.where(d_eta != 0, limit, step.abs())
    step = step.clamp(-limit, limit)
    if not p.kept and not bool(ok.any()):
        return -0.5 * d_eta, "backtrack"
    return step, kind


def _joint_step(p: Progress) -> tuple[Tensor, str]:
    """Newton with the best round's own covariance ``C``, every component together, divided by
    one response factor ``α`` (``1/lr`` at first): the samples' gap moves like ``α·C·Δη`` (α = 1
    for an exact sampler, below 1 for short chains). After two tries ``α`` is measured along the
    last move, ``α = Δηᵀ·Δgap / Δηᵀ·C·Δη`` (the last α stays while that is not positive). Unlike per-component
    secants this keeps coupled components (histogram bins, ``T`` and ``T²``) stepping along
    ``C⁻¹·gap`` instead of against each other. The step is scaled down as a whole so that its
    length in units of sd T is at most ``max_growth`` times the last move's (half of it after a
    rejected try)."""
    alpha = p.state.setdefault("alpha", 1.0 / p.lr)
    kind = "newton"
    if p.other is not None:
        d_eta, d_gap = p.best.eta - p.other[0], p.best.gap - p.other[1]
        quad = float(d_eta @ (p.best.sd * (p.best.corr @ (p.best.sd * d_eta))))  # Δηᵀ·C·Δη
        measured = float(d_eta @ d_gap) / quad if quad > 0 else math.nan
        if math.isfinite(measured) and measured > 0:
            alpha, kind = measured, "joint"
            p.state["alpha"] = alpha
        elif not p.kept:
            return -0.5 * d_eta, "backtrack"
    step = -(p.best.corr_pinv @ (p.best.gap / p.best.sd)) / p.best.sd / alpha
    if p.other is not None:
        last = float((p.best.sd * d_eta).norm())
        bound = (p.max_growth if p.kept else 0.5) * last
        length = float((p.best.sd * step).norm())
        if last > 0 and length > bound:
            step = step * (bound / length)
    return step, kind


#: how :func:`hebm_core.pipeline.calibrate_eta` steps after round 0 (``[hybrid] calibrate_method``)
CALIBRATION_METHODS: dict[str, Callable[[Progress], tuple[Tensor, str]]] = {
    "secant": _secant_step,
    "joint": _joint_step,
}


def step_kl(step: Tensor, at: Round) -> float:
    """The KL divergence a move of η by ``step`` makes, to second order, ``½·Δηᵀ·C·Δη`` with the
    round's robust covariance ``C = D^½·R·D^½``: for ``p ∝ p_θ·exp(η·T)`` the Fisher information in
    η is ``Cov T``."""
    scaled = at.sd * step
    return 0.5 * float(scaled @ (at.corr @ scaled))


def within_kl(step: Tensor, at: Round, max_kl: float) -> Tensor:
    """``step`` scaled down, direction kept, so that :func:`step_kl` is at most ``max_kl`` (a trust
    region: where a model's samples respond to η far more than its covariance says, such as a
    term acting at every noise level of an annealed chain, a full Newton step can make the chains
    diverge; a bounded one lets the later rounds measure the response first)."""
    kl = step_kl(step, at)
    return step * math.sqrt(max_kl / kl) if kl > max_kl else step
