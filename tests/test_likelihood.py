"""The probability-flow ODE likelihood against Gaussians, whose VE-perturbed scores and densities are exact.

Data ``N(μ, Σ)`` perturbed by ``N(0, σ² I)`` is ``N(μ, Σ + σ² I)``: the energy below is that
family's exact negative log density at every σ, so ``log p_σ_min(x)`` is known in closed form and
so is the Hutchinson error (the Jacobian of a Gaussian score does not depend on x).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from hebm_core.energy import EnergyModel
from hebm_core.likelihood import PFODEOptions, dequantization_offset, pf_ode_likelihood
from hebm_core.models import MLPEnergy

SIGMA_MIN, SIGMA_MAX = 0.01, 50.0


class PerturbedGaussian(EnergyModel):
    """``E(x, σ) = −log N(x; μ, Σ + σ² I)``: the exact noise-conditional energy of Gaussian data."""

    noise_conditional = True

    def __init__(self, mean: Tensor, cov: Tensor) -> None:
        super().__init__()
        lam, q = torch.linalg.eigh(cov)
        self.register_buffer("mean", mean)
        self.register_buffer("lam", lam)
        self.register_buffer("q", q)

    def energy(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        var = self.lam + (0.0 if sigma is None else sigma.reshape(-1, 1).to(x.dtype) ** 2)
        z = (x - self.mean) @ self.q
        return 0.5 * (z.pow(2) / var).sum(-1) + 0.5 * torch.log(2 * math.pi * var).expand_as(z).sum(-1)

    def log_prob(self, x: Tensor, sigma: float) -> Tensor:
        return -self.energy(x, torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device))

    def hutchinson_sd(self, probe: str) -> float:
        """Std of the one-probe estimate of ``∫ ∇·f d log σ = tr M``.

        ``M = Q diag(½ log((λ + σ_max²)/(λ + σ_min²))) Qᵀ``; Rademacher's variance is ``2 Σ_{i≠j} M_ij²``,
        Gaussian's ``2 ‖M‖_F²``.
        """
        m = self.q @ torch.diag(0.5 * torch.log((self.lam + SIGMA_MAX**2) / (self.lam + SIGMA_MIN**2))) @ self.q.T
        off = m.pow(2).sum() - torch.diagonal(m).pow(2).sum()
        return math.sqrt(2 * (off if probe == "rademacher" else m.pow(2).sum()))


def _isotropic(d: int = 3, s: float = 0.7) -> PerturbedGaussian:
    mean = torch.linspace(-0.5, 0.8, d, dtype=torch.float64)
    return PerturbedGaussian(mean, s**2 * torch.eye(d, dtype=torch.float64))


def _rotated(d: int = 12) -> PerturbedGaussian:
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    stds = torch.logspace(-0.5, 0.3, d, dtype=torch.float64)
    return PerturbedGaussian(torch.linspace(-1, 1, d, dtype=torch.float64), q @ torch.diag(stds**2) @ q.T)


def _data(model: PerturbedGaussian, n: int, seed: int = 1) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.mean.numel(), generator=g, dtype=torch.float64)
    return model.mean + (z * model.lam.sqrt()) @ model.q.T


def _exact_prior(model: PerturbedGaussian):
    return lambda x: model.log_prob(x, SIGMA_MAX)


def test_exact_divergence_matches_the_gaussian_log_density():
    model = _isotropic()
    x = torch.cat([_data(model, 64), 3 * torch.randn(16, 3, dtype=torch.float64)])  # typical and far points
    res = pf_ode_likelihood(
        model, x, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, rtol=1e-7, atol=1e-7, prior=_exact_prior(model)
    )
    err = (res.log_prob - model.log_prob(x, SIGMA_MIN)).abs().max().item()
    assert err < 1e-4, f"max |log p error| {err:.2e} nats"
    assert res.settings["exact_divergence"] and res.nfe > 0
    assert res.log_prob.shape == (80,) and res.log_prob.dtype == torch.float64


def test_default_prior_is_close_when_sigma_max_dwarfs_the_data():
    """``N(0, σ_max² I)`` in place of ``p_σ_max``: the error shrinks like the data scale over σ_max."""
    model = _isotropic()
    x = _data(model, 64)
    res = pf_ode_likelihood(model, x, sigma_min=SIGMA_MIN, sigma_max=200.0, rtol=1e-6, atol=1e-6)
    err = (res.log_prob - model.log_prob(x, SIGMA_MIN)).abs().max().item()
    assert err < 0.02, f"max |log p error| {err:.3f} nats"
    assert abs(res.nll + model.log_prob(x, SIGMA_MIN).mean().item()) < 0.01


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased_with_the_predicted_spread(probe):
    """Per-sample errors have mean 0 within 4 standard errors and the std of the closed-form estimator."""
    model = _rotated()
    x = _data(model, 2000)
    g = torch.Generator().manual_seed(3)
    res = pf_ode_likelihood(
        model,
        x,
        sigma_min=SIGMA_MIN,
        sigma_max=SIGMA_MAX,
        divergence="hutchinson",
        probe=probe,
        prior=_exact_prior(model),
        generator=g,
    )
    err = res.log_prob - model.log_prob(x, SIGMA_MIN)
    sd = model.hutchinson_sd(probe)
    assert abs(err.mean().item()) < 4 * sd / math.sqrt(len(x)), (err.mean().item(), sd)
    assert 0.9 < err.std().item() / sd < 1.1, (err.std().item(), sd)
    assert not res.settings["exact_divergence"]


def test_more_probes_shrink_the_hutchinson_error():
    model = _rotated()
    x = _data(model, 1000)
    kw = dict(sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, divergence="hutchinson", prior=_exact_prior(model))
    res = pf_ode_likelihood(model, x, n_probes=4, generator=torch.Generator().manual_seed(0), **kw)
    ratio = (res.log_prob - model.log_prob(x, SIGMA_MIN)).std().item() / model.hutchinson_sd("rademacher")
    assert 0.4 < ratio < 0.6  # 1/√4


def test_bits_per_dim_and_the_dequantisation_offset():
    assert dequantization_offset(256, 2.0) == pytest.approx(7.0)  # 8-bit images scaled to [-1, 1]
    assert dequantization_offset(256) == pytest.approx(8.0)
    model = _isotropic()
    x = _data(model, 32)
    res = pf_ode_likelihood(model, x, bpd_offset=7.0, prior=_exact_prior(model))
    want = -model.log_prob(x, SIGMA_MIN) / (3 * math.log(2)) + 7.0
    assert torch.allclose(res.bpd, want, atol=1e-3)
    assert res.bits_per_dim == pytest.approx(res.nll / (3 * math.log(2)) + 7.0)
    assert res.settings["bpd_offset"] == 7.0


def test_a_fixed_grid_solver_agrees_with_the_adaptive_one():
    model = _isotropic()
    x = _data(model, 16)
    adaptive = pf_ode_likelihood(model, x, rtol=1e-6, atol=1e-6)
    fixed = pf_ode_likelihood(model, x, method="rk4", step_size=0.1)
    assert torch.allclose(adaptive.log_prob, fixed.log_prob, atol=1e-3)
    assert fixed.nfe == 4 * math.ceil(math.log(SIGMA_MAX / SIGMA_MIN) / 0.1)


def test_a_noise_conditional_network_gets_finite_likelihoods():
    torch.manual_seed(0)
    res = pf_ode_likelihood(MLPEnergy(dim=2, hidden=16, depth=2), torch.randn(8, 2), rtol=1e-4, atol=1e-4)
    assert torch.isfinite(res.log_prob).all() and res.nfe > 0 and math.isfinite(res.nll)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"sigma_min": 0.0}, "sigma_min"),
        ({"sigma_min": 1.0, "sigma_max": 0.5}, "sigma_max"),
        ({"method": "rk45"}, "method"),
        ({"method": "euler"}, "step_size"),
        ({"step_size": 0.1}, "fixed-grid"),
        ({"divergence": "trace"}, "divergence"),
        ({"probe": "uniform"}, "probe"),
        ({"n_probes": 0}, "n_probes"),
        ({"rtol": -1.0}, "rtol"),
        ({"divergence": "exact", "exact_max_dim": 2}, "exact_max_dim"),
        ({"tolerance": 1e-3}, "unknown option"),
    ],
)
def test_bad_options_are_one_clear_error(kw, match):
    with pytest.raises(ValueError, match=match):
        pf_ode_likelihood(_isotropic(), torch.zeros(2, 3, dtype=torch.float64), **kw)


def test_options_object_and_keywords_do_not_mix():
    with pytest.raises(ValueError, match="not both"):
        pf_ode_likelihood(_isotropic(), torch.zeros(2, 3), PFODEOptions(), rtol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_the_device_of_its_input():
    model = _isotropic()
    x = _data(model, 16).cuda()
    model.cuda()
    res = pf_ode_likelihood(model, x, prior=lambda v: model.log_prob(v, SIGMA_MAX), divergence="hutchinson")
    assert res.log_prob.device.type == "cuda"
