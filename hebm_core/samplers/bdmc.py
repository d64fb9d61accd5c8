"""Bidirectional Monte Carlo (Grosse et al. 2015; Wu et al. 2016): log Z bracketed by forward and reverse AIS.

Forward AIS (base → target) gives ``log_z_lower`` with ``E[log_z_lower] ≤ log Z``; reverse AIS
(target → base, same schedule, same kernels) started from *exact* samples of the target gives
``log_z_upper`` with ``E[log_z_upper] ≥ log Z``. Their difference, the ``gap``, bounds how wrong
either can be in expectation, which the per-run bootstrap errors cannot: a mode forward AIS never
reaches leaves its weights healthy and its error bar small, while reverse chains start in every mode
in proportion to its mass and report the mass the forward run lost.

Both bounds are themselves noisy. ``log_z_interval`` widens them by ``z`` bootstrap standard errors
each, ``[lower - z·se_lower, upper + z·se_upper]``, which is the range to quote when the two
estimates agree to within their noise.

The upper bound holds only when the reverse chains start from exact samples of the target
(``upper_bound_valid``). Without them (a model trained on data) reverse chains can start from the
data (as BDMC does for generative models: approximate, since the model is not the data
distribution) or from the forward run's final samples; both are reported as not valid, and the
latter cannot reveal a mode the forward run missed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from hebm_core import tree
from hebm_core.energy import EnergyFn
from hebm_core.models import GaussianEnergy
from hebm_core.samplers.ais import AIS, AISResult
from hebm_core.tree import Sample

__all__ = ["BDMCResult", "bdmc", "bdmc_warning", "REVERSE_STARTS"]

#: how the reverse chains started -> what that means for the upper bound
REVERSE_STARTS = {
    "exact": "reverse chains started from exact samples of the target: log_z_upper is an upper bound on log Z "
    "(in expectation)",
    "approximate": "reverse chains started from approximate samples of the target ({label}), not exact ones: "
    "log_z_upper is NOT a valid upper bound, only a diagnostic",
    "forward": "reverse chains started from the forward run's own final samples, not exact ones: log_z_upper is "
    "NOT a valid upper bound, and a mode the forward run missed stays missed",
}


@dataclass
class BDMCResult:
    """Forward and reverse AIS on the same path.

    ``log_z_lower``/``log_z_upper`` are the forward/reverse estimates (stochastic bounds: in
    expectation below/above log Z; the upper one only if ``upper_bound_valid``), ``gap`` their
    difference, ``*_stderr`` bootstrap standard errors over chains, ``*_ess`` the effective sample
    sizes of each side's weights, ``log_z_interval`` the bounds widened by ``z`` standard errors.
    ``warning`` is a sentence when the gap or the noise is large or the upper bound does not hold.
    """

    log_z_lower: float
    log_z_upper: float
    gap: float
    log_z_lower_stderr: float
    log_z_upper_stderr: float
    lower_ess: float
    upper_ess: float
    log_z_interval: tuple[float, float]
    z: float
    gap_tol: float
    upper_bound_valid: bool
    reverse_start: str
    reverse_start_note: str
    warning: str | None
    n_temps: int
    n_chains: int
    n_reverse_chains: int
    forward: AISResult = field(repr=False)
    reverse: AISResult = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("forward", "reverse")}
        out["log_z_interval"] = list(self.log_z_interval)
        return {**out, "forward": self.forward.to_dict(), "reverse": self.reverse.to_dict()}


def bdmc_warning(
    lower: float,
    upper: float,
    se_lower: float,
    se_upper: float,
    upper_bound_valid: bool,
    reverse_start_note: str = "",
    gap_tol: float = 0.5,
    z: float = 2.0,
) -> str | None:
    """The sentence(s) a reader must see before trusting a pair of log Z bounds, or ``None``.

    Warns when the gap exceeds ``gap_tol`` nats, when the upper estimate lies below the lower one by
    more than ``z`` combined standard errors (the reverse starts are not samples of the target, or
    too few chains), when either side's ``z``-standard-error half-width exceeds ``gap_tol``, and when
    the upper bound does not hold.
    """
    msgs = []
    gap = upper - lower
    noise = z * math.hypot(se_lower, se_upper) if math.isfinite(se_lower) and math.isfinite(se_upper) else math.inf
    if not (math.isfinite(lower) and math.isfinite(upper)):
        msgs.append(f"a log Z estimate is not finite (lower {lower}, upper {upper})")
    elif gap > gap_tol:
        msgs.append(
            f"the log Z bounds disagree by {gap:.3g} nats (lower {lower:.4g} ± {se_lower:.2g}, upper "
            f"{upper:.4g} ± {se_upper:.2g}; tolerance {gap_tol:g}): forward AIS has missed probability mass "
            "(e.g. a mode) or the annealing is too short, whatever its error bar says; raise n_temps or "
            "steps_per_temp and quote the interval, not the forward estimate"
        )
    elif gap < -noise:
        msgs.append(
            f"the upper estimate lies {-gap:.3g} nats below the lower one, beyond {z:g} standard errors "
            f"({noise:.2g}): the reverse chains did not start from samples of the target, or there are too few chains"
        )
    for side, se in (("lower", se_lower), ("upper", se_upper)):
        if math.isfinite(se) and z * se > gap_tol:
            msgs.append(f"the {side} estimate is noisy ({z:g} standard errors = {z * se:.3g} nats): use more chains")
    if not upper_bound_valid:
        msgs.append(reverse_start_note or "the upper bound does not hold: the reverse chains did not start exact")
    return "; ".join(msgs) if msgs else None


def _take(x: Sample, n: int, generator: torch.Generator | None) -> Sample:
    """``n`` rows of ``x`` drawn without replacement (all of them if it has no more than ``n``)."""
    m = tree.batch_size(x)
    if m <= n:
        return tree.detach(x)
    gen = generator if generator is not None and generator.device.type == "cpu" else None
    idx = torch.randperm(m, generator=gen)[:n]
    return tree.detach(tree.index(x, idx.to(tree.state_leaves(x)[0].device)))


def _reverse_starts(
    ais: AIS,
    fwd: AISResult,
    exact: Sample | Callable[..., Sample] | None,
    approximate: Sample | None,
    generator: torch.Generator | None,
    burn_in: int,
) -> tuple[str, int, Sample]:
    """Where the reverse chains start (exact > approximate > the forward run's end) and how many
    burn-in steps they get (none for exact samples: they are already at the target)."""
    if exact is not None:
        if callable(exact):
            with torch.no_grad():
                return "exact", 0, tree.detach(exact(ais.n_chains, generator))
        return "exact", 0, _take(exact, ais.n_chains, generator)
    if approximate is not None:
        return "approximate", burn_in, _take(approximate, ais.n_chains, generator)
    return "forward", burn_in, fwd.samples


def bdmc(
    energy: EnergyFn,
    base: GaussianEnergy,
    ais: AIS | None = None,
    *,
    exact: Sample | Callable[..., Sample] | None = None,
    approximate: Sample | None = None,
    approximate_label: str = "data",
    sigma: float | None = None,
    generator: torch.Generator | None = None,
    burn_in: int = 0,
    gap_tol: float = 0.5,
    z: float = 2.0,
) -> BDMCResult:
    """Bracket log Z of ``energy`` by forward AIS from ``base`` and reverse AIS back to it.

    The reverse chains start from ``exact`` (exact samples of the target: a tensor, or a function
    ``(n, generator) -> samples`` such as a synthetic target's ``sample``), else from ``approximate``
    (e.g. the training data; ``approximate_label`` names them in the report; ``burn_in`` MH steps at
    β = 1 move them towards the model first), else from the forward run's final samples. Only the first
    gives a valid upper bound. Tensors with more rows than ``ais.n_chains`` are subsampled. The
    reverse run replays the forward run's per-temperature step sizes. ``gap_tol`` and ``z`` set when
    :func:`bdmc_warning` speaks and how wide ``log_z_interval`` is.
    """
    if exact is not None and approximate is not None:
        raise ValueError("give exact or approximate reverse starts, not both")
    if not gap_tol > 0 or not z >= 0:
        raise ValueError("gap_tol must be > 0 and z >= 0")
    ais = ais or AIS()
    fwd = ais.estimate(energy, base, sigma=sigma, generator=generator)
    kind, burn, start = _reverse_starts(ais, fwd, exact, approximate, generator, burn_in)
    note = REVERSE_STARTS[kind].format(label=approximate_label)
    if burn and kind != "exact":
        note += f"; {burn} MH steps at the target moved them first"
    rev = ais.reverse(energy, base, start, sigma=sigma, generator=generator, step_sizes=fwd.step_sizes, burn_in=burn)
    valid = kind == "exact"
    lo, hi = fwd.log_z, rev.log_z
    return BDMCResult(
        log_z_lower=lo,
        log_z_upper=hi,
        gap=hi - lo,
        log_z_lower_stderr=fwd.log_z_stderr,
        log_z_upper_stderr=rev.log_z_stderr,
        lower_ess=fwd.ess,
        upper_ess=rev.ess,
        log_z_interval=(lo - z * fwd.log_z_stderr, hi + z * rev.log_z_stderr),
        z=z,
        gap_tol=gap_tol,
        upper_bound_valid=valid,
        reverse_start=kind,
        reverse_start_note=note,
        warning=bdmc_warning(lo, hi, fwd.log_z_stderr, rev.log_z_stderr, valid, note, gap_tol, z),
        n_temps=ais.n_temps,
        n_chains=fwd.n_chains,
        n_reverse_chains=rev.n_chains,
        forward=fwd,
        reverse=rev,
    )
