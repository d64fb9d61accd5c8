"""MCMC diagnostics: split R-hat and bulk ESS, acceptance, kernel Stein discrepancy, energy traces.

* :func:`split_rhat` and :func:`ess_bulk` follow Vehtari, Gelman, Simpson, Carpenter & Bürkner
  (2021): draws are rank-normalised over all chains, chains are split in halves (so a trend within
  a chain shows as disagreement), R-hat is the larger of the rank-normalised and the folded
  (``|x − median|``) one, ESS uses Geyer's initial monotone sequence of the autocorrelations
  computed with the FFT and combined across chains.
* :func:`ksd` is the kernel Stein discrepancy with the inverse multiquadric kernel (Gorham & Mackey
  2017): it needs only the model's score at the samples, not its normaliser, and is 0 in the limit
  exactly when the samples follow the model.
* :func:`diagnose` turns a sampler's :class:`~hebm_core.samplers.base.Trace` (``trace_every``) into
  the plain numbers a run report holds.

Traces are ``[draws, chains]`` or ``[draws, chains, k]`` (one column per statistic).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.energy import EnergyModel, energy_and_score
from hebm_core.tree import Sample

__all__ = [
    "split_rhat",
    "ess_bulk",
    "rank_normalize",
    "acceptance_summary",
    "ksd",
    "energy_summary",
    "diagnose",
    "STUCK_ACCEPTANCE",
]

#: a chain whose mean acceptance is below this is counted as stuck
STUCK_ACCEPTANCE = 0.05


def _draws(x: Tensor) -> Tensor:
    """``x`` as float64 ``[draws, chains, k]``."""
    x = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if x.dim() == 2:
        x = x[..., None]
    if x.dim() != 3:
        raise ValueError(f"a trace must be [draws, chains] or [draws, chains, k], got shape {tuple(x.shape)}")
    return x


def _split(x: Tensor) -> Tensor:
    """Each chain cut in two halves (the middle draw of an odd count dropped): ``[n // 2, 2m, k]``."""
    half = x.shape[0] // 2
    return torch.cat([x[:half], x[x.shape[0] - half :]], 1)


def _ranks(v: Tensor) -> Tensor:
    """Average ranks (1-based) of a 1-D tensor, ties sharing the mean of their ranks."""
    order = torch.argsort(v)
    sorted_v = v[order]
    _, inverse, counts = torch.unique_consecutive(sorted_v, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    mean_rank = ends - (counts.double() - 1) / 2
    out = torch.empty_like(v, dtype=torch.float64)
    out[order] = mean_rank[inverse]
    return out


def rank_normalize(x: Tensor) -> Tensor:
    """Normal scores of the pooled ranks per statistic: ``Φ⁻¹((r − 3/8) / (S + 1/4))``, same shape."""
    x = _draws(x)
    n, m, k = x.shape
    flat = x.reshape(n * m, k)
    z = torch.stack([_ranks(flat[:, j]) for j in range(k)], 1)
    return torch.special.ndtri((z - 0.375) / (n * m + 0.25)).reshape(n, m, k)


def _rhat(x: Tensor) -> Tensor:
    n = x.shape[0]
    chain_mean = x.mean(0)
    b = n * chain_mean.var(0, unbiased=True)
    w = x.var(0, unbiased=True).mean(0)
    var_plus = (n - 1) / n * w + b / n
    return torch.sqrt(var_plus / w)


def split_rhat(x: Tensor) -> Tensor:
    """Rank-normalised split R-hat per statistic ``[k]`` (≈ 1 for chains that agree; NaN when constant)."""
    x = _draws(x)
    if x.shape[0] < 4:
        raise ValueError("split R-hat needs at least 4 draws per chain")
    s = _split(x)
    folded = (s - s.flatten(0, 1).median(0).values).abs()
    return torch.maximum(_rhat(rank_normalize(s)), _rhat(rank_normalize(folded)))


def _autocov(x: Tensor) -> Tensor:
    """Biased autocovariance along dim 0 of ``[n, m, k]`` via the FFT (zero-padded, no wrap-around)."""
    n = x.shape[0]
    c = x - x.mean(0)
    f = torch.fft.rfft(c, n=2 * n, dim=0)
    return torch.fft.irfft(f * f.conj(), n=2 * n, dim=0)[:n] / n


def _ess(x: Tensor) -> Tensor:
    """ESS of ``[n, m, k]`` (Geyer's initial monotone sequence on the multi-chain autocorrelation)."""
    n, m, _ = x.shape
    acov = _autocov(x)
    w = acov[0].mean(0) * n / (n - 1)  # mean within-chain variance
    var_plus = w * (n - 1) / n + (x.mean(0).var(0, unbiased=True) if m > 1 else 0.0)
    rho = 1 - (w - acov.mean(1)) / var_plus  # [n, k]
    pairs = rho[: 2 * (n // 2)].reshape(n // 2, 2, -1).sum(1)  # P_t = ρ_{2t} + ρ_{2t+1}
    positive = torch.cumprod((pairs > 0).double(), 0)  # the initial positive run
    monotone = torch.cummin(torch.where(positive > 0, pairs, torch.zeros_like(pairs)), 0).values
    tau = -1 + 2 * (monotone * positive).sum(0)
    tau = torch.clamp(tau, min=1 / math.log10(n * m))  # ArviZ's cap: ESS at most S·log10(S)
    return n * m / tau


def ess_bulk(x: Tensor) -> Tensor:
    """Bulk effective sample size per statistic ``[k]`` (rank-normalised split chains)."""
    x = _draws(x)
    if x.shape[0] < 4:
        raise ValueError("ESS needs at least 4 draws per chain")
    return _ess(rank_normalize(_split(x)))


def acceptance_summary(accept: Tensor) -> dict[str, float]:
    """Acceptance probabilities ``[draws, chains]``: the mean, the spread over chains and how many are stuck."""
    a = torch.as_tensor(accept).detach().double().cpu()
    per_chain = a.mean(0) if a.dim() == 2 else a
    return {
        "acceptance": float(per_chain.mean()),
        "acceptance_chain_min": float(per_chain.min()),
        "acceptance_chain_q10": float(per_chain.quantile(0.1)),
        "stuck_chains": float((per_chain < STUCK_ACCEPTANCE).double().mean()),
    }


def _flat(x: Sample) -> Tensor:
    return torch.cat([leaf.reshape(leaf.shape[0], -1) for leaf in tree.state_leaves(x)], 1)


def _scores(score: Callable[[Sample], Sample] | EnergyModel, x: Sample, sigma: float | None) -> Tensor:
    if isinstance(score, EnergyModel):
        leaf = tree.state_leaves(x)[0]
        sig = None if sigma is None else torch.full((tree.batch_size(x),), float(sigma), device=leaf.device)
        return _flat(energy_and_score(score, x, sig)[1])
    return _flat(score(x))


def ksd(
    samples: Sample,
    score: Callable[[Sample], Sample] | EnergyModel,
    c: float = 1.0,
    beta: float = -0.5,
    sigma: float | None = None,
    chunk: int = 2048,
) -> float:
    """Kernel Stein discrepancy of ``samples`` against ``score`` (a callable ``x -> score`` or an
    :class:`EnergyModel`, whose ``−∇E`` is used) with the IMQ kernel ``(c² + |x − y|²)^β``.

    The V-statistic ``√(mean_ij k_p(x_i, x_j))``: about ``n^{-1/2}`` for exact samples, a constant
    for samples of another distribution. Costs ``n²`` kernel evaluations, in row chunks of ``chunk``.
    """
    x = _flat(samples).double()
    s = _scores(score, samples, sigma).detach().double().to(x.device)
    n, d = x.shape
    x2, sx_self = x.pow(2).sum(1), (s * x).sum(1)
    total = x.new_zeros(())
    for i in range(0, n, chunk):  # [chunk, n] blocks: memory n·chunk, never n·n·d
        xi, si = x[i : i + chunk], s[i : i + chunk]
        r2 = (x2[i : i + chunk, None] + x2[None, :] - 2 * xi @ x.T).clamp_min(0)
        u = c * c + r2
        k = u.pow(beta)
        # (s_j − s_i)·(x_i − x_j) from inner products alone
        sr = (xi @ s.T) - sx_self[None, :] - sx_self[i : i + chunk, None] + (si @ x.T)
        cross = 2 * beta * u.pow(beta - 1) * sr
        trace = -2 * beta * d * u.pow(beta - 1) - 4 * beta * (beta - 1) * u.pow(beta - 2) * r2
        total = total + (k * (si @ s.T) + cross + trace).sum()
    return math.sqrt(max(float(total) / (n * n), 0.0))


def energy_summary(energy: Tensor) -> dict[str, float]:
    """An energy trace ``[draws, chains]``: its mean and spread, and the drift from the first half of
    the draws to the second in units of the spread (large when the chains were still moving)."""
    e = torch.as_tensor(energy).detach().double().cpu()
    half = e.shape[0] // 2
    sd = float(e.std()) if e.numel() > 1 else float("nan")
    drift = float(e[half:].mean() - e[:half].mean()) / sd if half and sd > 0 else float("nan")
    return {"energy_mean": float(e.mean()), "energy_std": sd, "energy_drift": drift}


def _stat_block(prefix: str, x: Tensor, scalar: bool = False) -> dict[str, Any]:
    """R-hat and bulk ESS of ``x``: one float each when ``scalar``, else per column with the worst of each."""
    if x.shape[0] < 4:
        return {}
    rhat, ess = split_rhat(x), ess_bulk(x)
    if scalar:
        return {f"{prefix}rhat": float(rhat[0]), f"{prefix}ess_bulk": float(ess[0])}
    return {
        f"{prefix}rhat": rhat.tolist(),
        f"{prefix}ess_bulk": ess.tolist(),
        f"{prefix}max_rhat": float(torch.nan_to_num(rhat, nan=math.inf).max()),
        f"{prefix}min_ess_bulk": float(torch.nan_to_num(ess, nan=0.0).min()),
    }


def diagnose(
    trace: Any, samples: Sample | None = None, score: Callable[[Sample], Sample] | EnergyModel | None = None
) -> dict[str, float | list]:
    """The diagnostics of a run as plain numbers: what a run report includes.

    ``trace`` is a sampler's ``last_trace`` (only its draws after warm-up are used) or a tensor
    ``[draws, chains, k]`` of statistics. Gives ``draws`` and ``chains``; for a ``Trace`` the energy's
    split R-hat, bulk ESS and :func:`energy_summary`, the statistics' R-hat and ESS per column (with
    their worst), and :func:`acceptance_summary` when it recorded acceptance; with ``samples`` and
    ``score``, the :func:`ksd`. Non-finite values (a constant statistic) are NaN.
    """
    out: dict[str, float | list] = {}
    if isinstance(trace, Tensor):
        stats = _draws(trace)
        out.update(draws=stats.shape[0], chains=stats.shape[1], **_stat_block("", stats))
    else:
        tr = trace.sampling() if hasattr(trace, "sampling") else trace
        out.update(draws=int(tr.energy.shape[0]), chains=int(tr.energy.shape[1]) if tr.energy.dim() == 2 else 0)
        if out["draws"]:
            out.update(_stat_block("energy_", tr.energy, scalar=True))
            out.update(energy_summary(tr.energy))
        if tr.stats is not None and tr.stats.shape[0]:
            out.update(_stat_block("", tr.stats))
        if tr.accept is not None and tr.accept.shape[0]:
            out.update(acceptance_summary(tr.accept))
    if samples is not None and score is not None:
        out["ksd"] = ksd(samples, score)
    return out
