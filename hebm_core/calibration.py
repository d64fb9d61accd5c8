"""Moment matching for η: drive ``gap = E_model T − E_data T`` to 0 with the network held fixed.

A self-contained algorithm: :func:`calibrate` takes ``measure(η)`` (the statistics of fresh samples
drawn at that η), the data's statistics and a starting η, and returns a :class:`CalibrationResult`;
it imports nothing from the run stages and never touches a model.

For ``log p = F + η·T − log Z`` the log-likelihood's gradient in η is ``−gap`` and its curvature
``−Cov_model T``, so the first step is Newton's, ``η −= lr·C⁻¹·gap`` with ``C`` the round-0
samples' robust covariance (:func:`curvature`): scale-free, and exact for an exact sampler with
``lr = 1``. Later steps follow a rule of :data:`CALIBRATION_METHODS` (per-component secants, or a
joint Newton step with a measured response), each at most ``max_growth`` times the previous one and,
optionally, within a trust region of predicted KL ``max_kl`` (:func:`within_kl`). A round whose
standardised gap ``Σ |gap| / sd T`` is larger than the best one's is undone (so is one whose
sampler diverged, or whose gap is over :data:`RUNAWAY` times the start's: chains that ran off to
huge finite values); the next try lies at most halfway back. E_model is a median of means over
groups of chains, so a rare chain that runs off cannot steer η.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "CALIBRATION_METHODS",
    "RUNAWAY",
    "CalibrationError",
    "CalibrationOptions",
    "CalibrationResult",
    "Diverged",
    "Progress",
    "Round",
    "calibrate",
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


#: how :func:`calibrate` steps after round 0 (``[hybrid] calibrate_method``)
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


class Diverged(Exception):
    """Raised by ``measure`` when sampling at the tried η diverged; ``cause`` is the original error."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class CalibrationError(RuntimeError):
    """The calibration cannot start: the starting η gives no finite statistics; one line."""


@dataclass
class CalibrationOptions:
    """``rounds`` of steps after round 0, Newton's ``lr``, the step ``method``, the trust region
    ``max_kl``, the growth bound per step and the number of median-of-means ``groups``."""

    rounds: int = 0
    lr: float = 1.0
    method: str = "secant"
    max_kl: float = math.inf
    max_growth: float = 4.0
    groups: int = 10


@dataclass
class CalibrationResult:
    """The best η found (in the starting η's dtype) and every round's record."""

    eta: Tensor
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Measured:
    gap: Tensor
    mean_gap: Tensor
    curv: tuple[Tensor, Tensor, Tensor] | None
    ran_off: int | None
    diverged: str | None
    n: int = 0


class _Search:
    """The state of one calibration: round 0, the best round, the last other try, the rule's memory."""

    def __init__(self, target: Tensor, options: CalibrationOptions, blocks: dict[str, int]) -> None:
        self.target, self.data_var = target.mean(0), target.var(0, correction=0)
        self.options, self.blocks = options, blocks
        self.first: Round | None = None
        self.best: Round | None = None
        self.other: tuple[Tensor, Tensor] | None = None
        self.state: dict[str, float] = {}
        self.best_ran_off = self.best_n = 0
        self.history: list[dict[str, Any]] = []

    def _split(self, v: Tensor, scalar: bool) -> dict[str, Any]:
        out = {}
        for name, part in zip(self.blocks, v.split(list(self.blocks.values()))):
            values = part.tolist()
            out[name] = values[0] if scalar and len(values) == 1 else values
        return out

    def measure(self, measure: Callable[[Tensor], Tensor], eta: Tensor) -> _Measured:
        """Sample at ``eta``: the gap (median of means and plain mean), the curvature and the chains that ran off."""
        groups = self.options.groups
        try:
            t = measure(eta).double().cpu()
        except Diverged as exc:
            if self.best is None:
                raise (exc.cause or CalibrationError(f"η calibration: sampling at the start diverged: {exc}")) from None
            nan = torch.full_like(self.best.gap, math.nan)  # never kept: no curvature needed
            return _Measured(nan, nan, None, None, str(exc))
        mean_gap = t.mean(0) - self.target
        gap = median_of_means(t, groups) - self.target
        curv = curvature(t, self.data_var, groups)
        scale = self.first.sd if self.first is not None else curv[0]  # round 0's sd: runaways inflate their own
        far = ((t - self.target).abs() / scale > RUNAWAY) | ~torch.isfinite(t)
        return _Measured(gap, mean_gap, curv, int(far.any(1).sum()), None, t.shape[0])

    def record(self, r: int, eta: Tensor, m: _Measured, kind: str, moved: dict[str, Any]) -> bool:
        """Judge a round (kept when it is the best so far), log it, update best and other."""
        scale = self.first.sd if self.first is not None else m.curv[0]
        size = float((m.gap.abs() / scale).sum())
        diverged = m.diverged
        if self.first is not None and size > RUNAWAY * self.first.size:
            diverged = (
                f"standardised gap {size:.3g} over {RUNAWAY:g}× the start's ({self.first.size:.3g}): chains ran off"
            )
        kept = not diverged and math.isfinite(size) and (self.best is None or size <= self.best.size)
        self.history.append(
            {
                "round": r,
                "eta": self._split(eta, scalar=True),
                "gap": self._split(m.gap, scalar=False),
                "gap_mean": self._split(m.mean_gap, scalar=False),
                "step": kind,
                **moved,
                "kept": kept,
                **({"ran_off": m.ran_off} if m.ran_off is not None else {}),
                **({"diverged": diverged} if diverged else {}),
            }
        )
        if kept:
            if self.best is not None:
                self.other = (self.best.eta, self.best.gap)
            self.best, self.best_ran_off, self.best_n = Round(eta, m.gap, size, *m.curv), m.ran_off, m.n
            self.first = self.first or self.best
        elif self.best is None:
            raise CalibrationError(
                f"η calibration: samples at the starting η give non-finite statistics {m.gap.tolist()}"
            )
        else:
            # a diverged round gives no slope (its gap is noise from chains that ran off), and no
            # slope at all means the next try backs off halfway
            self.other = (eta, torch.full_like(m.gap, math.nan) if diverged else m.gap)
        return kept

    def step(self, kept: bool) -> tuple[Tensor, str, dict[str, Any]]:
        """The next move from the best η: the rule's step, cut to the trust region."""
        o = self.options
        rule = CALIBRATION_METHODS[o.method]
        step, kind = rule(Progress(self.first, self.best, self.other, kept, o.lr, o.max_growth, self.state))
        kl, step = step_kl(step, self.best), within_kl(step, self.best, o.max_kl)
        return step, kind, {"step_kl": min(kl, o.max_kl), **({"bounded": True} if kl > o.max_kl else {})}


def calibrate(
    measure: Callable[[Tensor], Tensor],
    target: Tensor,
    eta0: Tensor,
    options: CalibrationOptions | None = None,
    blocks: dict[str, int] | None = None,
) -> CalibrationResult:
    """Moment matching: η such that the statistics of samples at η match ``target``'s mean.

    ``measure(η)`` returns the statistics ``[n, k]`` of fresh samples at ``η`` (raise
    :class:`Diverged` when sampling diverged; use the same seed every round, so that rounds differ
    by η, not by noise); ``target`` is the data's statistics ``[m, k]``; ``eta0 [k]`` the start,
    whose dtype every tried η is rounded to. ``blocks`` names the components (statistic name ->
    size) in the history. Each history entry: the η tried, its gap (median of means) and plain-mean
    gap, the kind of step that led to it, that step's predicted KL (``step_kl``; ``bounded`` when
    ``max_kl`` cut it), the chains that ran off (``ran_off``: a statistic over :data:`RUNAWAY`
    round-0 sd from the data's mean, or not finite) and whether it was kept. Warns when no step was
    kept, and when chains ran off at the kept η.
    """
    options = options or CalibrationOptions()
    if options.method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(sorted(CALIBRATION_METHODS))}")
    target = target.double().cpu()
    search = _Search(target, options, blocks or {"eta": target.shape[1]})
    eta, kind, moved = eta0.double().cpu(), "start", {}
    for r in range(options.rounds + 1):
        kept = search.record(r, eta, search.measure(measure, eta), kind, moved)
        if r == options.rounds:
            break
        step, kind, moved = search.step(kept)
        eta = (search.best.eta + step).to(eta0.dtype).double()
    _warn(search, options)
    return CalibrationResult(search.best.eta.to(eta0.dtype), search.history)


def _warn(search: _Search, options: CalibrationOptions) -> None:
    if options.rounds and search.best is search.first:
        warnings.warn(
            f"η calibration kept none of its {options.rounds} steps (every try diverged or had a larger "
            f"standardised gap than the start's, {search.first.size:.3g}): η stays at its starting value; "
            "lower [hybrid] calibrate_lr or raise calibrate_rounds",
            stacklevel=3,
        )
    if search.best_ran_off:
        warnings.warn(
            f"η calibration: at the kept η {search.best_ran_off} of {search.best_n} chains ran off (a statistic over "
            f"{RUNAWAY:g} sd from the data's mean, or not finite); the median of means outvoted them, "
            "but sampling with this η can give such chains again (lower η with [hybrid] "
            "calibrate_max_kl, or make the sampler stabler)",
            stacklevel=3,
        )
