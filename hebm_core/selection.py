"""Which statistics help: fit the exponential tilt of a trained network by every candidate at once,
then keep the components whose held-out log-likelihood gain is significant.

For ``p_η ∝ p_θ·exp(η·T)`` the expected data log-likelihood gains

    G(η) = η·E_data[T] − log E_θ[exp(η·T)]  =  KL(p_data ‖ p_θ) − KL(p_data ‖ p_η)

nats per sample: the KL the tilt removes. With samples of ``p_θ`` the second term is a log-mean-exp
over them (importance sampling), so the maximum-likelihood η of any subset of components is a
concave problem solved by Newton's method on one set of samples, with no new sampling per subset
(the ESS of the weights says when the samples cannot support the tilt). Components are selected by
backward elimination on held-out data: the component whose removal costs the least held-out gain
(the lower end of a bootstrap interval over model samples and held-out rows) is dropped while that
cost is not significant; correlated components are therefore judged jointly, each by what it adds
to the others. Self-contained like :mod:`hebm_core.calibration`: it sees statistics matrices only.

Two kinds of component cannot be judged this way and are dropped first, each with its reason: one
that is constant on the samples and the data (it carries nothing), and one whose data mean the
reweighted samples cannot reach (the data's value lies outside what the model's samples cover, e.g.
an element the network never generates): there the maximum-likelihood η does not exist, and the
fitted η and "gain" grow without bound as the ridge shrinks. A component whose data sit on the edge
of the samples' range (zero valency excess in valid molecules) is reachable: its tilt is the limit
that conditions on that edge, with the finite gain −log P_θ(edge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = ["SelectionOptions", "SelectionResult", "fit_tilt", "tilt_gain", "select"]


@dataclass
class SelectionOptions:
    """``alpha``: one-sided level of the bootstrap intervals, shared by the candidates (Bonferroni:
    each interval is at ``alpha / K``); ``min_gain``: nats per sample a kept
    component must add on held-out data (at the interval's lower end); ``n_boot`` resamples; ``ridge``
    on the standardised η (keeps the fit finite where the data's mean lies outside the samples);
    ``max_gap_sd``: a component whose standardised gap the fitted tilt leaves above this is
    unreachable by reweighting and dropped."""

    alpha: float = 0.05
    min_gain: float = 1e-3
    n_boot: int = 100
    ridge: float = 1e-4
    max_gap_sd: float = 0.05
    seed: int = 0


@dataclass
class SelectionResult:
    """The kept components, the fitted η (original units), and a row per component with its reasons."""

    kept: list[str]
    eta: dict[str, float]
    components: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _logmeanexp(v: Tensor) -> Tensor:
    return torch.logsumexp(v, 0) - math.log(v.shape[0])


def tilt_gain(eta: Tensor, model: Tensor, mean: Tensor) -> Tensor:
    """``η·mean − log mean_i exp(η·T_i)`` over model samples ``model [N, k]``: the predicted gain (nats)."""
    return eta @ mean - _logmeanexp(model @ eta)


def fit_tilt(model: Tensor, mean: Tensor, ridge: float = 1e-4, iters: int = 100) -> Tensor:
    """The η maximising :func:`tilt_gain` minus ``ridge/2·|η|²`` (Newton with backtracking; concave)."""
    k = model.shape[1]
    eta = torch.zeros(k, dtype=model.dtype)
    if k == 0:
        return eta

    def objective(e: Tensor) -> Tensor:
        return tilt_gain(e, model, mean) - 0.5 * ridge * e @ e

    value = objective(eta)
    for _ in range(iters):
        w = torch.softmax(model @ eta, 0)
        centred = model - w @ model
        grad = mean - w @ model - ridge * eta
        hess = (centred * w[:, None]).T @ centred + ridge * torch.eye(k, dtype=model.dtype)
        step = torch.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-8:
            trial = objective(eta + t * step)
            if trial >= value:
                break
            t /= 2
        eta, improvement, value = eta + t * step, float(trial - value), trial
        if improvement < 1e-12 or float(grad.abs().max()) < 1e-9:
            break
    return eta


def _ess(model: Tensor, eta: Tensor) -> float:
    w = torch.softmax(model @ eta, 0)
    return float(1.0 / (w * w).sum())


def _drop_costs(model: Tensor, fit_mean: Tensor, held: Tensor, keep: list[int], ridge: float) -> Tensor:
    """Per kept component: held-out gain of the full tilt minus that of the tilt refitted without it."""

    def held_gain(cols: list[int]) -> Tensor:
        eta = fit_tilt(model[:, cols], fit_mean[cols], ridge)
        return tilt_gain(eta, model[:, cols], held[cols])

    full = held_gain(keep)
    return torch.stack([full - held_gain([c for c in keep if c != j]) for j in keep])


def _bootstrap(model: Tensor, fit: Tensor, held: Tensor, keep: list[int], o: SelectionOptions, g) -> Tensor:
    """Bootstrap draws of :func:`_drop_costs` over model samples and both data sets: ``[n_boot, len(keep)]``."""
    draws = []
    for _ in range(o.n_boot):
        m = model[torch.randint(len(model), (len(model),), generator=g)]
        f = fit[torch.randint(len(fit), (len(fit),), generator=g)].mean(0)
        h = held[torch.randint(len(held), (len(held),), generator=g)].mean(0)
        draws.append(_drop_costs(m, f, h, keep, o.ridge))
    return torch.stack(draws)


def select(
    model: Tensor, fit: Tensor, held: Tensor, names: list[str], options: SelectionOptions | None = None
) -> SelectionResult:
    """Select components of ``T`` for the tilt of the network that produced ``model`` (its samples'
    statistics ``[N, K]``), fitting η on the data rows ``fit`` and judging on ``held`` (both ``[·, K]``)."""
    o = options or SelectionOptions()
    g = torch.Generator().manual_seed(o.seed)
    model, fit, held = (t.double() for t in (model, fit, held))
    (zm, zf, zh), scale, constant = _standardise(model, fit, held)
    rows: dict[int, dict[str, Any]] = {j: {"held_out_gain": None, "interval": None} for j in range(len(names))}
    for j in torch.nonzero(constant).flatten().tolist():
        rows[j].update(decision="drop", reason="constant on the model's samples and on the data: it carries nothing")
    keep = [j for j in range(len(names)) if not constant[j]]
    keep = _drop_unreachable(zm, zf.mean(0), keep, rows, o)
    level = o.alpha / max(len(names), 1)  # Bonferroni: every candidate is a test
    while keep:
        costs = _drop_costs(zm, zf.mean(0), zh.mean(0), keep, o.ridge)
        draws = _bootstrap(zm, zf, zh, keep, o, g)
        lower, upper = torch.quantile(draws, level, dim=0), torch.quantile(draws, 1 - level, dim=0)
        for i, j in enumerate(keep):
            rows[j] = {"held_out_gain": float(costs[i]), "interval": [float(lower[i]), float(upper[i])]}
        worst = int(torch.argmin(lower))
        if float(lower[worst]) >= o.min_gain:
            break
        j = keep.pop(worst)
        rows[j]["decision"] = "drop"
        rows[j]["reason"] = (
            f"adds {rows[j]['held_out_gain']:.3g} nats on held-out data, {1 - level:.1%} interval "
            f"[{rows[j]['interval'][0]:.3g}, {rows[j]['interval'][1]:.3g}] reaches below {o.min_gain:g}"
        )
    return _result(zm, zf, zh, scale, names, keep, rows, o)


def _standardise(model: Tensor, fit: Tensor, held: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:
    """Centre on the data's mean and scale by the spread of model samples and data together (a
    component constant in the data, like zero valency excess, still has the model's spread); a
    component constant in both is flagged."""
    pooled = torch.cat([model, fit])
    scale = pooled.std(0)
    constant = scale <= 1e-12 * pooled.abs().amax(0).clamp_min(1.0)
    scale = torch.where(constant, torch.ones_like(scale), scale)
    centre = fit.mean(0)
    return [(t - centre) / scale for t in (model, fit, held)], scale, constant


def _drop_unreachable(zm: Tensor, mean: Tensor, keep: list[int], rows: dict, o: SelectionOptions) -> list[int]:
    """Drop, one at a time and worst first, the components whose gap the fitted tilt leaves above
    ``o.max_gap_sd``: reweighting the model's samples cannot reach the data's mean there."""
    keep = list(keep)
    while keep:
        eta = fit_tilt(zm[:, keep], mean[keep], o.ridge)
        w = torch.softmax(zm[:, keep] @ eta, 0)
        gaps = (w @ zm[:, keep] - mean[keep]).abs()
        worst = int(torch.argmax(gaps))
        if float(gaps[worst]) <= o.max_gap_sd:
            return keep
        j = keep.pop(worst)
        rows[j].update(
            decision="drop",
            unreachable=True,
            reason=f"the reweighted samples cannot reach the data's mean (gap {float(gaps[worst]):.3g} sd after "
            "the fit): the data's value lies outside what the model's samples cover, so η and the gain would "
            "grow without bound; a hybrid calibrated on fresh chains may still use it, reweighting cannot judge it",
        )
    return keep


def _result(zm, zf, zh, scale, names, keep, rows, o) -> SelectionResult:
    eta_z = fit_tilt(zm[:, keep], zf.mean(0)[keep], o.ridge)
    w = torch.softmax(zm[:, keep] @ eta_z, 0) if keep else torch.full((len(zm),), 1.0 / len(zm), dtype=zm.dtype)
    after = (w @ zm - zf.mean(0)).abs()
    before = (zm.mean(0) - zf.mean(0)).abs()
    eta = {names[j]: float(e / scale[j]) for j, e in zip(keep, eta_z)}
    eta_sd = {names[j]: float(e) for j, e in zip(keep, eta_z)}
    components = []
    for j, name in enumerate(names):
        row = {"name": name, "gap_before_sd": float(before[j]), "gap_after_sd": float(after[j]), **rows[j]}
        if j in keep:
            row.update(decision="keep", eta=eta[name], eta_sd=eta_sd[name], reason="its held-out gain is significant")
        components.append(row)
    summary = {
        "predicted_gain_nats": float(tilt_gain(eta_z, zm[:, keep], zf.mean(0)[keep])) if keep else 0.0,
        "held_out_gain_nats": float(tilt_gain(eta_z, zm[:, keep], zh.mean(0)[keep])) if keep else 0.0,
        "importance_ess": _ess(zm[:, keep], eta_z) if keep else float(len(zm)),
        "n_model_samples": len(zm),
        "n_fit": len(zf),
        "n_held_out": len(zh),
        "options": {
            "alpha": o.alpha,
            "min_gain": o.min_gain,
            "n_boot": o.n_boot,
            "ridge": o.ridge,
            "max_gap_sd": o.max_gap_sd,
            "seed": o.seed,
        },
    }
    return SelectionResult([names[j] for j in keep], eta, components, summary)
