"""Diffusion recovery likelihood: its conditional sampler hits the closed-form Gaussian conditional,
and training with it recovers a Gaussian's mean and covariance."""

from __future__ import annotations

import math

import pytest
import torch
from _util import fit

from hebm_core.models import GaussianEnergy, MLPEnergy
from hebm_core.objectives import OBJECTIVES, RecoveryLikelihood
from hebm_core.space import Space

MEAN = torch.tensor([1.0, -0.5])
COV = torch.tensor([[1.0, 0.5], [0.5, 0.8]])


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return MEAN + torch.randn(20000, 2, generator=g) @ torch.linalg.cholesky(COV).T


def _errors(model: GaussianEnergy) -> tuple[float, float]:
    with torch.no_grad():
        mean_err = (model.mean - MEAN).abs().max().item()
        cov_err = (torch.linalg.matrix_norm(model.covariance - COV) / torch.linalg.matrix_norm(COV)).item()
    return mean_err, cov_err


def test_registered_under_its_name():
    assert OBJECTIVES["recovery"] is RecoveryLikelihood and RecoveryLikelihood.uses_noise_levels


@pytest.mark.parametrize(
    "scaled, metropolis, step_scale, cov_tol",
    [(False, True, 0.5, 0.04), (True, True, 0.5, 0.04), (False, False, 0.02, 0.06), (True, False, 0.02, 0.06)],
)
def test_conditional_chains_have_the_closed_form_moments(scaled, metropolis, step_scale, cov_tol):
    """For ``E = ½ (x−μ)ᵀ P (x−μ)`` the conditional is Gaussian with precision ``P + a²/σ² I`` and mean
    ``C (P μ + a x̃/σ²)``; two groups of chains at different σ and x̃ share one batch. The unadjusted
    chain's variance is inflated by about ``ε λ / 2`` (a few %), hence its looser tolerance."""
    torch.manual_seed(0)
    model = GaussianEnergy(MEAN, torch.linalg.inv(COV))
    objective = RecoveryLikelihood(
        sigmas=[0.3, 0.8], n_steps=200, step_scale=step_scale, scaled=scaled, metropolis=metropolis
    )
    n = 20000
    groups = [(0.3, torch.tensor([0.3, 0.9])), (0.8, torch.tensor([2.0, -1.5]))]
    x_noisy = torch.cat([xt.expand(n, 2) for _, xt in groups])
    sigma = torch.cat([torch.full((n,), s) for s, _ in groups])
    xs = objective.sample_conditional(model, x_noisy, sigma)
    prec = torch.linalg.inv(COV)
    for k, (s, xt) in enumerate(groups):
        a = math.sqrt(1 - s**2) if scaled else 1.0
        cov = torch.linalg.inv(prec + a**2 / s**2 * torch.eye(2))
        mean = cov @ (prec @ MEAN + a * xt / s**2)
        chunk = xs[k * n : (k + 1) * n]
        se = (torch.diagonal(cov) / n).sqrt()
        assert ((chunk.mean(0) - mean).abs() < 4 * se + 0.002).all(), (chunk.mean(0), mean)
        rel = torch.linalg.matrix_norm(torch.cov(chunk.T) - cov) / torch.linalg.matrix_norm(cov)
        assert rel < cov_tol, f"σ={s}: relative covariance error {rel:.3f}"
    if metropolis:
        assert 0.3 < objective.last_accept < 1.0


@pytest.mark.parametrize("scaled, sigma_max", [(False, 1.0), (True, 0.5)])
def test_training_recovers_the_gaussian(data, scaled, sigma_max):
    """With exact (Metropolis-adjusted) conditional chains: mean within 0.05, covariance within 6 %."""
    torch.manual_seed(0)
    model = GaussianEnergy(dim=2, learnable=True)
    objective = RecoveryLikelihood(
        sigma_min=0.1, sigma_max=sigma_max, n_steps=30, step_scale=0.5 if not scaled else 0.2,
        scaled=scaled, metropolis=True,
    )  # fmt: skip
    fit(model, objective, data, 300, lr=5e-2)
    mean_err, cov_err = _errors(model)
    assert mean_err < 0.05 and cov_err < 0.06, (mean_err, cov_err)


def test_short_run_unadjusted_chains_train_close(data):
    """The paper's unadjusted short-run chains (30 steps) land near the answer: their bias sharpens
    the model a little (covariance ~10 % small), so the tolerance is wider than the exact chains'."""
    torch.manual_seed(0)
    model = GaussianEnergy(dim=2, learnable=True)
    fit(model, RecoveryLikelihood(sigma_max=1.0), data, 300, lr=5e-2)
    mean_err, cov_err = _errors(model)
    assert mean_err < 0.06 and cov_err < 0.2, (mean_err, cov_err)


def test_untrained_model_fails_the_same_check():
    assert max(_errors(GaussianEnergy(dim=2, learnable=True))) > 0.06


def test_a_noise_conditional_network_gets_gradients_and_the_space_is_respected():
    torch.manual_seed(0)
    model = MLPEnergy(dim=2, hidden=16, depth=2)
    objective = RecoveryLikelihood(n_steps=3, space=Space(-1.0, 1.0), metropolis=True)
    out = objective(model, torch.rand(64, 2) * 2 - 1)
    out.loss.backward()
    assert math.isfinite(out.loss.item()) and {"recovery", "e_pos", "e_neg", "accept"} <= set(out.metrics)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    x_noisy, sig = objective.perturb(torch.zeros(32, 2))
    assert objective.sample_conditional(model, x_noisy, sig).abs().max() <= 1.0
    restored = RecoveryLikelihood(sigmas=[9.0] * objective.sigmas.numel())
    restored.load_state_dict(objective.state_dict())
    assert torch.equal(restored.sigmas, objective.sigmas)


def test_a_run_builds_it_from_a_config():
    from hebm_core import runs
    from hebm_core.config import resolve_config

    cfg = resolve_config(overrides={"objective": {"name": "recovery", "n_steps": 5, "metropolis": True}})
    exp = runs.build(cfg)
    assert isinstance(exp.objective, RecoveryLikelihood) and exp.objective.n_steps == 5
    assert math.isfinite(exp.objective(exp.model, exp.example[:32]).loss.item())


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"n_steps": 0}, "n_steps"),
        ({"step_scale": 0.0}, "step_scale"),
        ({"step_scale": 2.0}, "step_scale"),
        ({"sigmas": []}, "sigmas"),
        ({"sigmas": [0.1, -1.0]}, "sigmas"),
        ({"sigmas": "abc"}, "sigmas"),
        ({"sigma_min": 0.5, "sigma_max": 0.1}, "sigma_max"),
        ({"n_sigmas": 0}, "n_sigmas"),
        ({"scaled": True, "sigma_max": 1.0}, "below 1"),
        ({"metropolis": "yes"}, "metropolis"),
        ({"alpha": -1.0}, "alpha"),
    ],
)
def test_bad_config_is_one_clear_error(kw, match):
    with pytest.raises(ValueError, match=match):
        RecoveryLikelihood(**kw)
