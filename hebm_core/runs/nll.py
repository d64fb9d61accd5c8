"""The test-set NLL of a trained model, bracketed by forward and reverse AIS (BDMC)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from hebm_core.config import ConfigError
from hebm_core.energy import EnergyModel
from hebm_core.models import GaussianEnergy
from hebm_core.runs.build import Experiment
from hebm_core.samplers.ais import AIS, AISResult, nll_from_log_z
from hebm_core.samplers.bdmc import bdmc
from hebm_core.samplers.mh import HMC

__all__ = ["log_likelihood", "NLL_DIRECTIONS", "REVERSE_STARTS"]

#: how :func:`log_likelihood` may start its reverse AIS chains
REVERSE_STARTS = ("auto", "exact", "data", "forward", "none")

#: what the NLL bounds mean, carried in every report
NLL_DIRECTIONS = (
    "NLL = E_test[E(x)] + log Z. nll_lower uses forward AIS's log Z, a stochastic lower bound on log Z, so it is "
    "a lower bound on the NLL: optimistic, the true NLL is at least this in expectation. nll_upper uses reverse "
    "AIS's log Z, an upper bound on the NLL (pessimistic) only when upper_bound_valid is true. nll_nats and "
    "bits_per_dim are the lower (optimistic) values. *_interval widens both ends by z bootstrap standard errors."
)


@dataclass
class _Bracket:
    """What one forward (and maybe reverse) AIS run says about log Z."""

    lower: float
    upper: float | None
    gap: float | None
    interval: tuple[float, float] | None
    valid: bool
    note: str
    warning: str | None
    forward: AISResult
    reverse: dict[str, Any] | None


def _reverse_start(model: EnergyModel, reverse: str, sigma: float | None) -> str:
    if reverse not in REVERSE_STARTS:
        raise ConfigError(f"log_likelihood: reverse must be one of {', '.join(REVERSE_STARTS)}, got {reverse!r}")
    exact_ok = callable(getattr(model, "sample", None)) and sigma is None
    if reverse == "exact" and not exact_ok:
        why = "its density is blurred by a noise level" if sigma is not None else "it has no sample method"
        raise ConfigError(f"log_likelihood: reverse='exact' needs exact samples of the model, but {why}")
    if reverse == "auto":
        return "exact" if exact_ok else "data"
    return reverse


def _data_starts(train: Tensor, n: int, sigma: float | None, seed: int, device: torch.device) -> Tensor:
    """``n`` training rows (flat, float32), blurred by ``sigma`` when the model is a density of blurred data."""
    g = torch.Generator().manual_seed(seed + 1)
    rows = train.flatten(1)
    rows = rows[torch.randperm(rows.shape[0], generator=g)[:n]].float()
    if sigma is not None:
        rows = rows + sigma * torch.randn(rows.shape, generator=g)
    return rows.to(device)


def _bracket(model, how, energy, base, ais, sigma, gen, train, seed, bdmc_kw) -> _Bracket:
    """Forward AIS alone (``how == "none"``) or BDMC with the reverse chains started as ``how`` says."""
    if how == "none":
        fwd = ais.estimate(energy, base, sigma=sigma, generator=gen)
        note = "no reverse AIS was run: there is no upper bound on log Z or the NLL"
        return _Bracket(fwd.log_z, None, None, None, False, note, note, fwd, None)
    kw: dict[str, Any] = dict(bdmc_kw)
    if how == "exact":
        kw["exact"] = lambda n, g: model.sample(n, generator=g).reshape(n, -1)
    elif how == "data":
        device = base.mean.device
        kw["approximate"] = _data_starts(train, ais.n_chains, sigma, seed, device)
        kw["approximate_label"] = "training data" + (f" blurred by sigma={sigma:.4g}" if sigma is not None else "")
    res = bdmc(energy, base, ais, sigma=sigma, generator=gen, **kw)
    return _Bracket(
        res.log_z_lower,
        res.log_z_upper,
        res.gap,
        res.log_z_interval,
        res.upper_bound_valid,
        res.reverse_start_note,
        res.warning,
        res.forward,
        res.reverse.to_dict(),
    )


def _report(e_test: float, dim: int, b: _Bracket, how: str, sigma: float | None) -> dict[str, Any]:
    def nll(log_z: float | None) -> float | None:
        return None if log_z is None else e_test + log_z

    def bpd(v: float | None) -> float | None:
        return None if v is None else v / (dim * math.log(2))

    lo, hi = nll(b.lower), nll(b.upper)
    nll_int = None if b.interval is None else [nll(b.interval[0]), nll(b.interval[1])]
    return {
        "nll_nats": lo,
        "bits_per_dim": bpd(lo),
        "dim": dim,
        "nll_lower": lo,
        "nll_upper": hi,
        "bits_per_dim_lower": bpd(lo),
        "bits_per_dim_upper": bpd(hi),
        "nll_interval": nll_int,
        "bits_per_dim_interval": None if nll_int is None else [bpd(v) for v in nll_int],
        "log_z_lower": b.lower,
        "log_z_upper": b.upper,
        "log_z_gap": b.gap,
        "log_z_interval": None if b.interval is None else list(b.interval),
        "upper_bound_valid": b.valid,
        "reverse_start": how,
        "reverse_start_note": b.note,
        "nll_directions": NLL_DIRECTIONS,
        "warning": b.warning,
        "ais": b.forward.to_dict(),
        "ais_reverse": b.reverse,
        "sigma": sigma,
        "base": "diagonal Gaussian fitted to train data, std x1.5, at least 2 sigma_min",
    }


def log_likelihood(
    model: EnergyModel,
    exp: Experiment,
    n_chains: int = 256,
    n_temps: int = 1000,
    seed: int = 0,
    reverse: str = "auto",
    steps_per_temp: int = 1,
    schedule: str = "sigmoid",
    burn_in: int = 0,
    gap_tol: float = 0.5,
    z: float = 2.0,
) -> dict[str, Any]:
    """Test-set NLL (nats, bits/dim) of a model on flat-able tensor data, bracketed by forward and reverse AIS.

    AIS runs HMC from a diagonal Gaussian fitted to the training data (std widened 1.5×, at least 2σ
    for a noise-conditional model) to the model; a noise-conditional model is evaluated at the smallest
    training σ, i.e. as the density of
    data blurred by that σ. Forward AIS bounds log Z, hence the NLL, from below (``nll_lower``:
    optimistic); reverse AIS (:func:`~hebm_core.samplers.bdmc.bdmc`) along the same path gives
    ``nll_upper``, an upper bound only when its chains start from exact samples of the model
    (``upper_bound_valid``). ``reverse`` picks those starts: ``"exact"`` (the model's own ``sample``
    method, which is taken to draw exact samples, as the analytic energies do), ``"data"`` (training
    rows, blurred by σ for a noise-conditional model: approximate, flagged as such; ``burn_in`` MH steps
    at the model first), ``"forward"`` (the forward run's final samples: no bound, and blind to modes
    the forward run missed), ``"none"`` (forward AIS only), or ``"auto"``: exact samples when the model
    has them, else data. The report carries each side's spread (bootstrap standard error, ESS), the
    gap, how the reverse chains started and a ``warning`` when the gap exceeds ``gap_tol`` nats or the
    upper bound does not hold; ``nll_nats``/``bits_per_dim`` are the lower (optimistic) values.
    """
    train, ref = exp.bundle.train, exp.reference
    if not isinstance(train, Tensor):
        raise ConfigError("log-likelihood by AIS needs tensor samples; this dataset's samples are structured")
    device = next(model.parameters(), torch.empty(0)).device
    shape = train.shape[1:]
    flat = train.flatten(1).double()
    sigma = exp.density_sigma
    # the base covers the data blurred by σ: a near-constant coordinate (an image's blank border)
    # still spreads by σ under the model, and a base narrower than that starves AIS of overlap
    std = (flat.std(0) * 1.5).clamp_min(max(1e-3, 2 * (sigma or 0.0)))
    base = GaussianEnergy(flat.mean(0), torch.diag(std.pow(-2))).to(device).float()
    how = _reverse_start(model, reverse, sigma)

    def energy(x: Tensor, sig: Tensor | None = None) -> Tensor:
        return model(x.view(-1, *shape), sig)

    gen = torch.Generator(device=device).manual_seed(seed)
    kernel = HMC(step_size=0.1, n_leapfrog=5)
    ais = AIS(n_temps=n_temps, n_chains=n_chains, kernel=kernel, steps_per_temp=steps_per_temp, schedule=schedule)
    mean_energy = nll_from_log_z(energy, ref.flatten(1).to(device), 0.0, sigma)
    bdmc_kw = {"burn_in": burn_in, "gap_tol": gap_tol, "z": z}
    b = _bracket(model, how, energy, base, ais, sigma, gen, train, seed, bdmc_kw)
    return _report(mean_energy["nll_nats"], mean_energy["dim"], b, how, sigma)
