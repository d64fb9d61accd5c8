"""BDMC: forward and reverse AIS bracket log Z on targets with a known answer.

Seeded runs of modest size; ``benchmarks/ais_accuracy.py`` runs the same targets with more seeds,
chains and temperatures.
"""

import json
import math

import pytest
import torch
from _util import anisotropic_gaussian

from hebm_core.config import ConfigError
from hebm_core.models import GaussianEnergy, GaussianMixtureEnergy
from hebm_core.samplers.ais import AIS
from hebm_core.samplers.bdmc import bdmc, bdmc_warning
from hebm_core.samplers.mh import HMC


class ScoredMixture(GaussianMixtureEnergy):
    """The core mixture with a closed-form score (the autograd one is slower, not different)."""

    def energy_and_score(self, x, sigma=None, create_graph=False):
        with torch.no_grad():
            lp = self.component_log_prob(x)
            r = torch.softmax(lp, -1) / self.stds.pow(2)
            return -torch.logsumexp(lp, -1), r @ self.means - x * r.sum(-1, keepdim=True)


def _wide(dim):
    return GaussianEnergy(torch.zeros(dim), torch.eye(dim) / 9.0)


def _gauss(dim):
    mean, prec, _ = anisotropic_gaussian(dim)
    return GaussianEnergy(mean, prec)


def _unequal_mixture():
    """0.8 on a narrow mode, 0.2 on a broad one: tempered, the broad one holds nearly all the mass."""
    means = torch.zeros(2, 10)
    means[0, 0], means[1, 0] = 3.0, -3.0
    return ScoredMixture(means, torch.tensor([0.35, 1.0]), torch.tensor([0.8, 0.2]))


def _run(target, n_temps, seed, n_chains=256, z=3.0, **kw):
    """BDMC with a 3-standard-error interval: the bootstrap error of 256 weights is itself noisy
    (seed 0 of the 50-D Gaussian puts the reverse estimate 2.2 of its standard errors low)."""
    torch.manual_seed(seed)
    ais = AIS(n_temps=n_temps, n_chains=n_chains, kernel=HMC(step_size=0.1, n_leapfrog=5), **kw)
    dim = target.means.shape[-1] if isinstance(target, GaussianMixtureEnergy) else target.mean.shape[-1]
    gen = torch.Generator().manual_seed(seed)
    return bdmc(target, _wide(dim), ais, exact=target.sample, generator=gen, z=z)


@pytest.mark.parametrize("seed", [0, 1])
def test_bounds_bracket_log_z_of_a_50d_rotated_anisotropic_gaussian(seed):
    target = _gauss(50)
    truth = float(target.log_partition())
    res = _run(target, 1000, seed)
    lo, hi = res.log_z_interval
    assert lo <= truth <= hi, res
    assert res.upper_bound_valid and res.reverse_start == "exact"
    assert abs(res.log_z_lower - truth) < 0.3 and abs(res.log_z_upper - truth) < 0.3
    assert abs(res.gap) < 0.5 and res.warning is None
    assert res.lower_ess > 50 and res.upper_ess > 50


@pytest.mark.parametrize("seed", [0, 1])
def test_the_gap_exposes_the_mode_forward_ais_misses_on_an_unequal_mixture(seed):
    """Forward chains settle in the broad light mode; reverse chains start 80 % in the heavy one."""
    target = _unequal_mixture()
    res = _run(target, 1000, seed)
    heavy = int((target.assign(res.forward.samples) == 0).sum())
    assert heavy <= 3  # the scenario: (almost) no forward chain reached the heavy mode
    assert res.log_z_lower < -0.5  # and forward AIS is low by about log(1/0.2) = 1.6 nats
    # whenever it misses, the gap says so, and the interval still holds the true log Z = 0
    assert res.gap > 0.5 and "disagree" in res.warning
    lo, hi = res.log_z_interval
    assert lo <= 0.0 <= hi, res
    assert abs(res.log_z_upper) < 0.4  # reverse chains start in both modes: the upper side is close


def test_the_gap_shrinks_as_the_number_of_temperatures_grows():
    target = _gauss(50)
    gaps = [_run(target, n, seed=3, n_chains=128).gap for n in (25, 100, 800)]
    assert gaps[0] > gaps[1] > gaps[2], gaps
    assert gaps[0] > 2.0 and abs(gaps[2]) < 0.5, gaps


def test_several_mh_steps_per_temperature_reduce_the_error():
    target = _gauss(50)
    truth = float(target.log_partition())
    one, four = (_run(target, 100, seed=2, n_chains=128, steps_per_temp=k) for k in (1, 4))
    assert four.forward.steps_per_temp == 4 == four.reverse.steps_per_temp
    assert abs(four.log_z_lower - truth) < abs(one.log_z_lower - truth)
    assert abs(four.log_z_upper - truth) < abs(one.log_z_upper - truth)
    assert abs(four.gap) < one.gap


@pytest.mark.parametrize("start", [1e-3, 5.0])
def test_step_size_adaptation_keeps_acceptance_near_its_target(start):
    target = _gauss(10)
    torch.manual_seed(0)
    kw = {"n_temps": 300, "n_chains": 128, "warmup_steps": 0, "jitter": 0.0}
    ais = AIS(kernel=HMC(step_size=start, n_leapfrog=5), **kw)
    res = ais.estimate(target, _wide(10))
    acc = res.accept_rates[1:-1]
    assert abs(float(acc[150:].mean()) - ais.target_accept) < 0.1, acc
    # the step size at a temperature comes from the previous temperature's mean acceptance only
    eps = res.step_sizes
    expect = eps[1:-2] * torch.exp(ais.adapt_rate * (acc[:-1] - ais.target_accept))
    assert torch.allclose(eps[2:-1], expect)
    if start == 5.0:  # without adaptation a step this large is almost never accepted
        fixed = AIS(kernel=HMC(step_size=start, n_leapfrog=5), adapt=False, **kw).estimate(target, _wide(10))
        assert fixed.acceptance < 0.2 < res.acceptance


def test_reverse_replays_the_forward_step_sizes():
    target = _gauss(5)
    res = _run(target, 50, seed=0, n_chains=32)
    assert torch.equal(res.forward.step_sizes, res.reverse.step_sizes)
    assert res.reverse.direction == "reverse" and res.forward.direction == "forward"


def test_reverse_starts_that_are_not_exact_are_flagged():
    target = _gauss(3)
    base = _wide(3)
    ais = AIS(n_temps=50, n_chains=64)
    torch.manual_seed(0)
    fwd = bdmc(target, base, ais)
    assert fwd.reverse_start == "forward" and not fwd.upper_bound_valid
    assert "forward run's own final samples" in fwd.warning and "NOT a valid upper bound" in fwd.warning
    data = target.sample(500) + 0.1 * torch.randn(500, 3)
    approx = bdmc(target, base, ais, approximate=data, approximate_label="training data", burn_in=5)
    assert approx.reverse_start == "approximate" and not approx.upper_bound_valid
    assert "training data" in approx.warning and "5 MH steps" in approx.reverse_start_note
    assert approx.n_reverse_chains == 64  # subsampled to the number of chains
    exact = bdmc(target, base, ais, exact=target.sample(40))
    assert exact.upper_bound_valid and exact.n_reverse_chains == 40
    d = exact.to_dict()
    json.dumps(d)
    assert {"log_z_lower", "log_z_upper", "gap", "log_z_lower_stderr", "log_z_upper_stderr", "lower_ess"} <= set(d)
    assert {"upper_ess", "upper_bound_valid", "reverse_start", "warning", "log_z_interval"} <= set(d)
    with pytest.raises(ValueError, match="not both"):
        bdmc(target, base, ais, exact=data, approximate=data)


def test_bdmc_warning_says_what_is_wrong():
    assert bdmc_warning(-1.6, 0.0, 0.03, 0.13, True).startswith("the log Z bounds disagree by 1.6 nats")
    assert bdmc_warning(-1.6, 0.0, 0.03, 0.13, True, gap_tol=2.0) is None
    assert "below the lower one" in bdmc_warning(0.5, 0.0, 0.05, 0.05, True)
    assert "noisy" in bdmc_warning(0.0, 0.1, 0.4, 0.05, True)
    assert bdmc_warning(0.0, 0.05, 0.05, 0.05, True) is None
    assert bdmc_warning(0.0, 0.05, 0.05, 0.05, False, "reverse chains started from data") == (
        "reverse chains started from data"
    )
    assert "not finite" in bdmc_warning(-math.inf, 0.0, 0.1, 0.1, True)


def _gaussian_experiment():
    from hebm_core import runs
    from hebm_core.config import resolve_config

    cfg = {"plugin": "toy", "data": {"name": "gaussian", "dim": 3}, "model": {"name": "gaussian"}, "statistics": []}
    return runs.build(resolve_config(overrides={**cfg, "objective": {"name": "ssm"}}))


def test_log_likelihood_reports_both_nll_bounds_and_how_the_reverse_chains_started():
    from hebm_core.runs.evaluation import log_likelihood

    torch.manual_seed(0)
    exp = _gaussian_experiment()
    model = exp.model
    with torch.no_grad():
        exact = float(model.energy(exp.reference.float()).mean() + model.log_partition())
    out = log_likelihood(model, exp, n_chains=128, n_temps=200)
    json.dumps(out)
    assert out["reverse_start"] == "exact" and out["upper_bound_valid"] is True
    assert out["nll_interval"][0] <= exact <= out["nll_interval"][1], out
    assert abs(out["nll_lower"] - exact) < 0.1 and abs(out["nll_upper"] - exact) < 0.1
    assert out["nll_nats"] == out["nll_lower"] and out["bits_per_dim"] == out["bits_per_dim_lower"]
    assert out["bits_per_dim_upper"] == pytest.approx(out["nll_upper"] / (3 * math.log(2)))
    assert out["log_z_gap"] == pytest.approx(out["log_z_upper"] - out["log_z_lower"])
    assert "optimistic" in out["nll_directions"] and out["ais"]["direction"] == "forward"
    assert out["ais_reverse"]["direction"] == "reverse"

    data = log_likelihood(model, exp, n_chains=64, n_temps=50, reverse="data")
    assert data["reverse_start"] == "data" and data["upper_bound_valid"] is False
    assert "NOT a valid upper bound" in data["warning"] and "training data" in data["reverse_start_note"]

    none = log_likelihood(model, exp, n_chains=64, n_temps=50, reverse="none")
    assert none["nll_upper"] is None and none["upper_bound_valid"] is False and "no reverse" in none["warning"]
    with pytest.raises(ConfigError, match="reverse must be one of"):
        log_likelihood(model, exp, reverse="backwards")
