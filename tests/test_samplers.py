"""Samplers against known answers: a 10-D anisotropic Gaussian and a 2-D mixture's mode weights."""

import math

import pytest
import torch
from _util import anisotropic_gaussian

from hebm_core.energy import EnergyModel
from hebm_core.models import GaussianEnergy, GaussianMixtureEnergy
from hebm_core.samplers import HMC, MALA, AnnealedLangevin, Langevin, SamplerDivergenceError, SamplerStuckError
from hebm_core.space import Space
from hebm_core.tree import batch_size

N_CHAINS = 3000


@pytest.fixture(scope="module")
def target():
    mean, prec, cov = anisotropic_gaussian(10)
    return GaussianEnergy(mean, prec), mean, cov


def _assert_moments(x, mean, cov, mean_tol, cov_tol):
    std = cov.diagonal().sqrt()
    mean_err = ((x.mean(0) - mean) / std).abs().max().item()
    cov_err = (torch.linalg.matrix_norm(x.T.cov() - cov) / torch.linalg.matrix_norm(cov)).item()
    assert mean_err < mean_tol, f"mean error {mean_err:.3f} (in stds) >= {mean_tol}"
    assert cov_err < cov_tol, f"relative covariance error {cov_err:.3f} >= {cov_tol}"


@pytest.mark.parametrize(
    "sampler",
    [
        Langevin(step_size=0.02, n_steps=1500),
        MALA(step_size=0.1, n_steps=500, adapt_steps=200),
        HMC(step_size=0.1, n_steps=150, n_leapfrog=10, adapt_steps=100),
    ],
    ids=["langevin", "mala", "hmc"],
)
def test_gaussian_mean_and_covariance(sampler, target):
    torch.manual_seed(0)
    energy, mean, cov = target
    x = sampler.run(energy, torch.randn(N_CHAINS, 10))
    # Monte-Carlo error of the mean with 3000 chains is ~0.02 std; ULA's O(ε) bias is ~4% on the stiffest axis
    _assert_moments(x, mean, cov, mean_tol=0.1, cov_tol=0.1)


def test_samplers_fail_on_wrong_target(target):
    """The moment check above can fail: chains of a different Gaussian do not pass it."""
    torch.manual_seed(0)
    energy, mean, cov = target
    wrong = GaussianEnergy(mean + 0.5, torch.linalg.inv(cov))
    x = MALA(step_size=0.1, n_steps=300, adapt_steps=100).run(wrong, torch.randn(N_CHAINS, 10))
    with pytest.raises(AssertionError):
        _assert_moments(x, mean, cov, mean_tol=0.1, cov_tol=0.1)


def test_mala_and_hmc_adapt_to_target_acceptance(target):
    torch.manual_seed(0)
    energy, _, _ = target
    mala = MALA(step_size=1e-3, n_steps=200, adapt_steps=300)
    mala.run(energy, torch.randn(500, 10))
    assert abs(mala.last_stats["acceptance"] - 0.574) < 0.1
    hmc = HMC(step_size=1e-3, n_steps=100, adapt_steps=150, n_leapfrog=5, target_accept=0.8)
    hmc.run(energy, torch.randn(500, 10))
    assert abs(hmc.last_stats["acceptance"] - 0.8) < 0.1
    assert hmc.last_stats["step_size"] > 1e-2  # it grew from the far too small start


def test_hmc_recovers_mixture_mode_weights():
    """Chains start symmetric around three modes; only real mixing gives 0.5 / 0.3 / 0.2."""
    torch.manual_seed(0)
    ang = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3])
    means = 2.0 * torch.stack([ang.cos(), ang.sin()], 1)
    weights = torch.tensor([0.5, 0.3, 0.2])
    gmm = GaussianMixtureEnergy(means, 0.7, weights)
    hmc = HMC(step_size=0.3, n_leapfrog=10, n_steps=300, adapt_steps=100)
    x = hmc.run(gmm, 2 * torch.randn(N_CHAINS, 2))
    frac = torch.bincount(gmm.assign(x), minlength=3).float() / N_CHAINS
    assert torch.allclose(frac, weights, atol=0.04), frac


def test_annealed_langevin_on_noise_conditional_mixture():
    """Annealed Langevin with the exact noisy scores of a mixture reproduces its mode weights."""
    torch.manual_seed(0)
    means = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])
    weights = torch.tensor([0.7, 0.3])

    class NoisyMixture(GaussianMixtureEnergy):
        noise_conditional = True

        def energy(self, x, sigma=None):
            s2 = self.stds.pow(2) + (0 if sigma is None else sigma[:, None] ** 2)
            sq = torch.cdist(x, self.means).pow(2)
            return -torch.logsumexp(torch.log(self.weights) - 0.5 * sq / s2 - torch.log(s2), -1)

    target = NoisyMixture(means, 0.3, weights)
    sampler = AnnealedLangevin(
        torch.exp(torch.linspace(math.log(3.0), math.log(0.01), 10)), steps_per_sigma=100, eps=5e-5
    )
    x = sampler.run(target, 3.0 * torch.randn(N_CHAINS, 2))
    frac = torch.bincount(target.assign(x), minlength=2).float() / N_CHAINS
    assert torch.allclose(frac, weights, atol=0.05), frac
    assert (x[:, 1].std() - 0.3).abs() < 0.05


@pytest.mark.parametrize(
    "sampler",
    [Langevin(step_size=5.0, n_steps=50), AnnealedLangevin([1.0, 0.5], steps_per_sigma=50, eps=2.0)],
    ids=["langevin", "annealed"],
)
def test_divergence_is_detected_with_a_clear_message(sampler, target):
    energy, _, _ = target
    with pytest.raises(SamplerDivergenceError) as info:
        sampler.run(energy, torch.randn(64, 10))
    msg = str(info.value)
    assert "diverged at step" in msg and "try a step size of" in msg
    assert info.value.suggested_step_size < info.value.step_size
    if isinstance(sampler, AnnealedLangevin):
        assert "σ =" in msg


def test_mala_overflow_raises_and_stuck_chains_are_an_error(target):
    energy, _, _ = target
    with pytest.raises(SamplerDivergenceError, match="MALA diverged at step 1"):
        MALA(step_size=1e20, n_steps=5).run(energy, torch.randn(64, 10))
    with pytest.raises(SamplerStuckError, match=r"MALA accepted 0\.00% of proposals .* under its floor of 1%"):
        MALA(step_size=1e3, n_steps=20).run(energy, torch.randn(64, 10))
    with pytest.warns(RuntimeWarning, match="barely moved"):  # a floor of 0: only the warning
        MALA(step_size=1e3, n_steps=20, min_acceptance=0).run(energy, torch.randn(64, 10))
    sampler = MALA(step_size=0.05, n_steps=50)
    sampler.run(energy, torch.randn(64, 10))
    assert 0.3 < sampler.last_stats["acceptance"] <= 1  # recorded for the report


def test_projection_keeps_chains_in_the_box():
    torch.manual_seed(0)
    g = GaussianEnergy(torch.zeros(2), torch.eye(2))
    x = Langevin(step_size=0.05, n_steps=200, space=Space(-0.5, 0.5)).run(g, torch.randn(500, 2))
    assert x.min() >= -0.5 and x.max() <= 0.5
    assert x.std() > 0.2  # chains still move inside the box


def test_structured_sample_keeps_context_leaves():
    """A (features, mask) sample: the float leaf moves, the bool mask is carried unchanged."""
    torch.manual_seed(0)

    class MaskedGaussian(EnergyModel):
        def energy(self, x, sigma=None):
            feats, mask = x
            return 0.5 * (feats.pow(2) * mask).sum(-1)

    mask = torch.rand(256, 4) > 0.3
    x0 = (torch.randn(256, 4) + 3.0, mask)
    out = Langevin(step_size=0.05, n_steps=300).run(MaskedGaussian(), x0)
    assert batch_size(out) == 256
    assert out[1] is mask or torch.equal(out[1], mask)
    assert out[0][mask].mean().abs() < 0.15  # relaxed to N(0,1) where the mask is set
