"""Samplers for hard targets against known answers: parallel tempering, kinetic Langevin, NUTS and
preconditioned MALA on an anisotropic correlated Gaussian, a 10-D two-mode mixture and a target with
scales 100 apart; their traces, options and pytree samples.

Tolerances come from the Monte Carlo error of the final points of independent chains: a coordinate's
mean in units of its std has error ``1/√n``, the relative Frobenius error of the sample covariance
has RMS ``√((tr Σ² + (tr Σ)²) / n) / ‖Σ‖_F``.
"""

import math

import pytest
import torch
from _util import anisotropic_gaussian

from hebm_core.models import GaussianEnergy, GaussianMixtureEnergy
from hebm_core.samplers import (
    HMC,
    MALA,
    NUTS,
    SAMPLERS,
    ParallelTempering,
    PrecondMALA,
    SamplerDivergenceError,
    UnderdampedLangevin,
    metric_windows,
)


@pytest.fixture(scope="module")
def target():
    mean, prec, cov = anisotropic_gaussian(10)
    return GaussianEnergy(mean, prec), mean, cov


def assert_moments(x, mean, cov, z=4.5, bias=0.0):
    """Mean within ``z`` Monte Carlo stds on every coordinate; covariance within twice its RMS error (+ ``bias``)."""
    n = x.shape[0]
    std = cov.diagonal().sqrt()
    mean_err = ((x.mean(0) - mean) / std).abs().max().item()
    rms = math.sqrt((torch.trace(cov @ cov) + torch.trace(cov) ** 2).item() / n) / torch.linalg.matrix_norm(cov).item()
    cov_err = (torch.linalg.matrix_norm(x.T.cov() - cov) / torch.linalg.matrix_norm(cov)).item()
    assert mean_err < z / math.sqrt(n), f"mean error {mean_err:.4f} stds >= {z / math.sqrt(n):.4f}"
    assert cov_err < 2 * rms + bias, f"relative covariance error {cov_err:.4f} >= {2 * rms + bias:.4f}"


@pytest.mark.parametrize(
    "make, n",
    [
        (lambda: UnderdampedLangevin(step_size=0.5, n_steps=300, friction=1.0), 2000),
        (lambda: UnderdampedLangevin(step_size=0.1, n_steps=400, friction=2.0, scheme="obabo"), 2000),
        (lambda: ParallelTempering(step_size=0.2, n_steps=250, adapt_steps=50, n_replicas=3, beta_min=0.5), 2000),
        (
            lambda: ParallelTempering(
                step_size=0.3, n_steps=60, adapt_steps=40, n_replicas=3, beta_min=0.5, kernel="hmc", n_leapfrog=4
            ),
            2000,
        ),
        (lambda: PrecondMALA(step_size=0.1, n_steps=200, adapt_steps=200), 2000),
        (lambda: NUTS(step_size=0.3, n_steps=15, adapt_steps=60), 1000),
    ],
    ids=["baoab", "obabo", "pt-mala", "pt-hmc", "precond-mala", "nuts"],
)
def test_moments_of_a_correlated_anisotropic_gaussian(make, n, target):
    energy, mean, cov = target
    sampler = make()
    x = sampler.run(energy, torch.randn(n, 10))
    # BAOAB has no bias in the positions of a Gaussian; OBABO's O(h²) bias is ~1% at hω = 0.2
    assert_moments(x, mean, cov, bias=0.03 if getattr(sampler, "scheme", "") == "obabo" else 0.0)


def test_the_moment_check_fails_on_a_wrong_target(target):
    """The moment check can fail: exact samples of a Gaussian with a 15% wider covariance do not pass."""
    _, mean, cov = target
    wide = GaussianEnergy(mean, torch.linalg.inv(1.15 * cov))
    with pytest.raises(AssertionError, match="covariance"):
        assert_moments(wide.sample(2000), mean, cov)


def _two_modes():
    means = torch.zeros(2, 10)
    means[0, 0], means[1, 0] = 4.5, -4.5  # a barrier of ~10 nats between unit-variance modes
    return GaussianMixtureEnergy(means, 1.0, torch.tensor([0.8, 0.2])), means


def test_parallel_tempering_recovers_mode_weights_where_hmc_does_not():
    """Chains start half in each mode; only moves between the modes give the weights 0.8 / 0.2."""
    gmm, means = _two_modes()
    n = 2000
    x0 = means[torch.arange(n) % 2] + torch.randn(n, 10)
    pt = ParallelTempering(step_size=0.3, n_steps=300, adapt_steps=50, n_replicas=8, beta_min=0.03)
    frac_pt = torch.bincount(gmm.assign(pt.run(gmm, x0)), minlength=2).float() / n
    budget = pt.last_stats["grad_evals_per_chain"]  # all replicas' evaluations per chain
    hmc = HMC(step_size=0.3, n_leapfrog=5, adapt_steps=50, n_steps=int(budget) // 5 - 50)
    frac_hmc = torch.bincount(gmm.assign(hmc.run(gmm, x0)), minlength=2).float() / n
    assert abs(1 + 5 * (hmc.adapt_steps + hmc.n_steps) - budget) <= 5  # the same gradient budget
    # Monte Carlo error of a weight with 2000 chains: 0.009
    assert abs(frac_pt[0].item() - 0.8) < 0.03, frac_pt
    assert abs(frac_hmc[0].item() - 0.8) > 0.1, frac_hmc
    stats = pt.last_stats
    assert len(stats["swap_acceptance"]) == 7 and min(stats["swap_acceptance"]) > 0.2
    assert len(stats["acceptance_per_replica"]) == 8 and stats["betas"][0] == 1.0
    assert 0.4 < stats["acceptance"] < 0.75


def test_nuts_adapts_to_scales_100_apart():
    stds = torch.logspace(-1, 1, 5)  # 0.1 … 10
    energy = GaussianEnergy(torch.zeros(5), torch.diag(stds**-2))
    nuts = NUTS(step_size=0.1, n_steps=20, adapt_steps=60, max_depth=6)
    x = nuts.run(energy, torch.randn(400, 5))
    ratio = (nuts.inv_mass / stds**2).tolist()
    assert all(0.7 < r < 1.4 for r in ratio), ratio  # the metric found every scale
    stats = nuts.last_stats
    assert stats["step_size"] > 0.5  # a unit metric would need a step under the smallest scale
    assert stats["tree_depth"] < 3 and stats["grad_evals_per_draw"] < 8
    assert abs(stats["acceptance"] - 0.8) < 0.1 and stats["divergent"] == 0
    var_ratio = x.var(0) / stds**2
    assert ((var_ratio - 1).abs() < 4.5 * math.sqrt(2 / 400)).all(), var_ratio  # variance MC error √(2/n)


def test_precond_mala_adapts_its_metric_and_then_is_exact():
    stds = torch.logspace(-1, 1, 5)
    energy = GaussianEnergy(torch.zeros(5), torch.diag(stds**-2))
    pm = PrecondMALA(step_size=0.01, n_steps=200, adapt_steps=300)
    x = pm.run(energy, torch.randn(1000, 5))
    assert all(0.7 < r < 1.4 for r in (pm.inv_mass / stds**2).tolist())
    assert abs(pm.last_stats["acceptance"] - 0.574) < 0.1 and pm.last_stats["step_size"] > 0.3
    assert ((x.var(0) / stds**2 - 1).abs() < 4.5 * math.sqrt(2 / 1000)).all()


def test_nuts_chains_build_their_own_trees():
    """A batch of flat and stiff chains (an integer context leaf sets each one's scale): each chain
    stops its tree on its own, the stopped ones cost little, and neither kind disturbs the other."""

    def energy(x, sigma=None):
        return 0.5 * x["pos"].pow(2).sum(-1) * 64.0 ** x["stiff"]

    n = 512
    stiff = (torch.arange(n) % 2).long()
    scale = 8.0 ** -stiff.double()
    x0 = {"pos": torch.randn(n, 2, dtype=torch.float64) * scale[:, None], "stiff": stiff}
    nuts = NUTS(step_size=0.05, n_steps=10, max_depth=8)
    out = nuts.run(energy, x0)
    assert torch.equal(out["stiff"], stiff)
    for k in (0, 1):
        var = out["pos"][stiff == k].var(0) * 64.0**k
        assert ((var - 1).abs() < 4.5 * math.sqrt(2 / (n // 2))).all(), (k, var)
    stats = nuts.last_stats
    assert 3 < stats["tree_depth"] < 8  # flat chains ~6 doublings, stiff ones ~3
    assert stats["grad_evals_per_draw"] < 1.3 * stats["n_leapfrog"]  # chains that stopped are not evaluated
    # the same through per-chain noise levels: each active chain is evaluated at its own σ
    noisy = nuts.run(lambda x, sigma: 0.5 * x.pow(2).sum(-1) / sigma**2, x0["pos"], scale)
    for k in (0, 1):
        var = noisy[stiff == k].var(0) * 64.0**k
        assert ((var - 1).abs() < 4.5 * math.sqrt(2 / (n // 2))).all(), (k, var)
    small = NUTS(step_size=0.05, n_steps=3, max_depth=3)
    small.run(energy, x0)
    assert small.last_stats["n_leapfrog"] <= 7 and small.last_stats["tree_depth"] <= 3


def test_nuts_divergence_is_reported():
    energy = GaussianEnergy(torch.zeros(3), torch.eye(3))
    with pytest.raises(SamplerDivergenceError, match="NUTS diverged"):
        NUTS(step_size=50.0, n_steps=3).run(energy, torch.randn(32, 3))


def test_trace_is_recorded_thinned_and_off_by_default(target):
    energy, _, _ = target
    mala = MALA(step_size=0.1, n_steps=40, adapt_steps=20)
    mala.run(energy, torch.randn(16, 10))
    assert mala.last_trace is None
    mala = MALA(step_size=0.1, n_steps=40, adapt_steps=20, trace_every=5, trace_stat=lambda x: x[:, :3])
    mala.run(energy, torch.randn(16, 10))
    tr = mala.last_trace
    assert tr.steps == list(range(5, 61, 5)) and tr.warmup == 20
    assert tr.energy.shape == (12, 16) and tr.stats.shape == (12, 16, 3) and tr.accept.shape == (12, 16)
    after = tr.sampling()
    assert after.steps[0] == 25 and after.energy.shape == (8, 16) and after.stats.shape == (8, 16, 3)
    for sampler in (
        UnderdampedLangevin(n_steps=10, trace_every=2),
        NUTS(n_steps=6, trace_every=2),
        PrecondMALA(n_steps=6, trace_every=3),
        ParallelTempering(n_steps=6, n_replicas=3, trace_every=3),
    ):
        sampler.run(energy, torch.randn(8, 10))
        assert sampler.last_trace.energy.shape[1] == 8, type(sampler).__name__  # β = 1 replicas only for PT


def test_samplers_move_pytree_samples_and_keep_their_context():
    """A dict sample: the float leaf moves, the boolean mask passes through untouched."""

    def energy(x, sigma=None):
        return 0.5 * x["pos"].pow(2).sum(-1)

    mask = torch.arange(600) % 3 == 0
    for sampler in (
        UnderdampedLangevin(step_size=0.5, n_steps=100),
        NUTS(step_size=0.5, n_steps=20),
        PrecondMALA(step_size=0.5, n_steps=100, adapt_steps=60),
        ParallelTempering(step_size=0.5, n_steps=60, n_replicas=2, beta_min=0.5),
    ):
        out = sampler.run(energy, {"pos": torch.randn(600, 2) + 2.0, "mask": mask})
        assert torch.equal(out["mask"], mask)
        assert (out["pos"].mean(0).abs() < 0.25).all() and ((out["pos"].var(0) - 1).abs() < 0.3).all()


def test_registered_and_options_are_checked():
    assert {"parallel_tempering", "underdamped_langevin", "nuts", "precond_mala"} <= set(SAMPLERS)
    bad = [
        lambda: ParallelTempering(n_replicas=0),
        lambda: ParallelTempering(betas=[0.5, 0.2]),
        lambda: ParallelTempering(betas=[1.0, 0.5, 0.7]),
        lambda: ParallelTempering(kernel="gibbs"),
        lambda: ParallelTempering(swap_every=0),
        lambda: UnderdampedLangevin(friction=0),
        lambda: UnderdampedLangevin(scheme="abc"),
        lambda: UnderdampedLangevin(mass=[1.0, -1.0]),
        lambda: NUTS(max_depth=40),
        lambda: NUTS(step_size=-1.0),
        lambda: PrecondMALA(adapt_metric="yes"),
        lambda: MALA(trace_every=-1),
    ]
    for make in bad:
        with pytest.raises(ValueError) as info:
            make()
        assert "\n" not in str(info.value)


def test_metric_windows_follow_stan():
    assert metric_windows(1000) == [(75, 100), (100, 150), (150, 250), (250, 450), (450, 950)]
    assert metric_windows(10) == []
    wins = metric_windows(100)
    assert wins[0][0] == 15 and wins[-1][1] == 90


def test_diagonal_mass_of_kinetic_langevin():
    """A per-coordinate mass matched to the scales leaves the stationary law the same."""
    stds = torch.tensor([0.2, 1.0, 3.0])
    energy = GaussianEnergy(torch.zeros(3), torch.diag(stds**-2))
    uld = UnderdampedLangevin(step_size=0.3, n_steps=200, mass=stds**-2)
    x = uld.run(energy, torch.randn(2000, 3))
    assert ((x.var(0) / stds**2 - 1).abs() < 4.5 * math.sqrt(2 / 2000)).all()
