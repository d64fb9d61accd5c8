"""MCMC diagnostics against known answers: iid draws, chains stuck in different modes, an AR(1)
chain with a closed-form ESS, the KSD of exact and of shifted samples, and a sampler's own trace."""

import json
import math

import pytest
import torch

from hebm_core.diagnostics import (
    acceptance_summary,
    diagnose,
    energy_summary,
    ess_bulk,
    ksd,
    rank_normalize,
    split_rhat,
)
from hebm_core.models import GaussianEnergy
from hebm_core.samplers import MALA, NUTS


def _ar1(n, m, phi, k=1):
    """``m`` stationary AR(1) chains ``x_t = φ x_{t-1} + ε_t`` of length ``n``: ``[n, m, k]``."""
    eps = torch.randn(n, m, k, dtype=torch.float64)
    x = torch.empty_like(eps)
    x[0] = eps[0] / math.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + eps[t]
    return x


def test_iid_draws_have_rhat_one_and_ess_n():
    x = torch.randn(1000, 4, 3)
    rhat, ess = split_rhat(x), ess_bulk(x)
    assert rhat.shape == (3,) and ((rhat - 1).abs() < 0.01).all(), rhat
    # the ESS estimate of iid draws scatters by a few percent around n = 4000
    assert ((ess / 4000 - 1).abs() < 0.2).all(), ess


def test_chains_stuck_in_different_modes_have_large_rhat():
    x = torch.randn(500, 4) + torch.tensor([-3.0, -3.0, 3.0, 3.0])
    assert split_rhat(x).item() > 1.5
    trend = torch.randn(500, 4) + torch.linspace(0, 4, 500)[:, None]  # every chain drifts: split halves disagree
    assert split_rhat(trend).item() > 1.2
    same_mean_other_scale = torch.randn(500, 4) * torch.tensor([1.0, 1.0, 5.0, 5.0])  # the folded R-hat sees it
    assert split_rhat(same_mean_other_scale).item() > 1.1


def test_ar1_ess_matches_its_closed_form():
    """``ESS = n (1 − φ) / (1 + φ)`` for an AR(1) chain; the estimate scatters by ~10% at this length."""
    phi, n, m = 0.9, 5000, 4
    expected = n * m * (1 - phi) / (1 + phi)
    ess = ess_bulk(_ar1(n, m, phi)).item()
    assert abs(ess / expected - 1) < 0.3, (ess, expected)
    assert ess < 0.1 * n * m


def test_ties_and_constants():
    """Discrete statistics (many ties) get average ranks; a constant one is NaN, not an error."""
    x = torch.randint(0, 2, (400, 4)).double()
    assert abs(split_rhat(x).item() - 1) < 0.05 and math.isfinite(ess_bulk(x).item())
    z = rank_normalize(torch.tensor([[1.0], [1.0], [2.0]]))
    assert z[0, 0, 0] == z[1, 0, 0] < z[2, 0, 0]
    assert math.isnan(split_rhat(torch.ones(100, 4)).item())
    with pytest.raises(ValueError, match="at least 4 draws"):
        split_rhat(torch.randn(3, 2))


def test_ksd_is_small_for_exact_samples_and_larger_for_shifted_ones():
    g = GaussianEnergy(torch.tensor([0.5, -0.5]), torch.tensor([[2.0, 0.5], [0.5, 1.0]]))
    x = g.sample(800)
    exact, shifted, wide = ksd(x, g), ksd(x + 0.5, g), ksd(g.mean + 1.5 * (x - g.mean), g)
    assert exact < 0.12  # ~ n^{-1/2} for exact samples
    assert shifted > 4 * exact and wide > 3 * exact
    assert ksd(x, lambda v: g.energy_and_score(v)[1]) == pytest.approx(exact)  # a score callable is the same
    assert ksd(x[:50], g, chunk=7) == pytest.approx(ksd(x[:50], g))


def test_acceptance_and_energy_summaries():
    acc = torch.full((20, 10), 0.6)
    acc[:, :2] = 0.0
    s = acceptance_summary(acc)
    assert s["stuck_chains"] == pytest.approx(0.2) and s["acceptance"] == pytest.approx(0.48)
    assert s["acceptance_chain_min"] == 0.0
    drifting = torch.linspace(0, 10, 100)[:, None] + torch.randn(100, 4)
    assert energy_summary(drifting)["energy_drift"] > 1
    assert abs(energy_summary(torch.randn(100, 4))["energy_drift"]) < 0.5


def test_diagnose_a_sampler_trace():
    energy = GaussianEnergy(torch.zeros(3), torch.diag(torch.tensor([1.0, 2.0, 0.5])))
    mala = MALA(step_size=0.2, n_steps=400, adapt_steps=100, trace_every=2, trace_stat=lambda x: x)
    x = mala.run(energy, torch.randn(8, 3))
    report = diagnose(mala.last_trace, samples=x, score=energy)
    assert report["draws"] == 200 and report["chains"] == 8  # warm-up draws left out
    assert report["energy_rhat"] < 1.1 and report["max_rhat"] < 1.2  # mixed chains (R-hat noise at 8 × 200 draws)
    assert len(report["rhat"]) == 3 and 0 < report["min_ess_bulk"] < 1600
    assert 0.4 < report["acceptance"] < 0.8 and report["stuck_chains"] == 0
    assert "ksd" in report and "energy_drift" in report
    json.dumps(report, allow_nan=False)  # plain numbers for a report
    raw = diagnose(torch.randn(50, 4, 2))
    assert raw["draws"] == 50 and len(raw["ess_bulk"]) == 2


def test_diagnose_sees_stuck_chains_in_a_trace():
    """NUTS chains started in separate wells of a double well never cross: R-hat of the energy's
    position statistic is far above 1, while the energy (the same in both wells) looks mixed."""

    def energy(x, sigma=None):
        return 8.0 * (x[:, 0] ** 2 - 1) ** 2 + 0.5 * x[:, 1] ** 2

    x0 = torch.stack([torch.tensor([-1.0, 1.0, -1.0, 1.0]), torch.zeros(4)], 1)
    nuts = NUTS(step_size=0.1, n_steps=60, trace_every=1, trace_stat=lambda x: x[:, 0])
    nuts.run(energy, x0)
    report = diagnose(nuts.last_trace)
    assert report["max_rhat"] > 1.5 and report["energy_rhat"] < 1.5  # rank-normalised R-hat saturates near 1.75


def test_every_sampling_report_carries_chain_diagnostics():
    """A run's sampling info holds acceptance, R-hat/ESS per statistic of the recorded trace and the
    KSD against the model's score; KSD separates converged chains from chains stopped at their start."""
    from hebm_core import runs
    from hebm_core.config import SamplerConfig, resolve_config

    cfg = {"plugin": "toy", "data": {"name": "gaussian", "dim": 3}, "model": {"name": "gaussian"}}
    exp = runs.build(resolve_config(overrides={**cfg, "statistics": ["square"], "objective": {"name": "ssm"}}))

    def plan(n_steps: int) -> runs.SamplingPlan:
        opts = {"name": "mala", "n_steps": n_steps, "step_size": 0.3, "trace_every": 2, "init_sigma": 3.0}
        return runs.SamplingPlan.build(exp, SamplerConfig.from_dict(opts))

    _, info = plan(400).draw(exp.model, exp, n=400)
    dg = info["diagnostics"]
    assert 0.3 < dg["acceptance"] < 1.0
    assert dg["trace"]["chains"] == 400 and dg["trace"]["draws"] == 200
    columns = sum(s(exp.reference[:2]).reshape(2, -1).shape[1] for s in exp.eval_statistics)
    assert len(dg["trace"]["rhat"]) == columns >= 3  # one per statistic component (square: one per coordinate)
    assert abs(dg["trace"]["max_rhat"] - 1.0) < 0.05
    _, short = plan(2).draw(exp.model, exp, n=400)
    assert dg["ksd"] < 0.5 * short["diagnostics"]["ksd"]  # chains barely moved from the wide starts
