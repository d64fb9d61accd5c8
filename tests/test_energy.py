"""Energies and statistics: closed forms against autograd, products of experts, temperature."""

import math

import pytest
import torch
from _util import anisotropic_gaussian

from hebm_core import GaussianEnergy, MLPEnergy, SumEnergy, energy_and_score, statistic
from hebm_core.energy import autograd_energy_and_score
from hebm_core.models import GaussianMixtureEnergy
from hebm_core.statistics import Statistic, identity, radius, sin_sum, square


def test_closed_form_gaussian_score_equals_autograd():
    mean, prec, _ = anisotropic_gaussian(5)
    g = GaussianEnergy(mean, prec)
    x = torch.randn(32, 5)
    e1, s1 = g.energy_and_score(x)
    e2, s2 = autograd_energy_and_score(g.energy, x)
    assert torch.allclose(e1, e2, atol=1e-5) and torch.allclose(s1, s2, atol=1e-5)


def test_gaussian_log_partition_matches_quadrature_in_1d():
    g = GaussianEnergy(torch.tensor([0.3]), torch.tensor([[4.0]]))
    grid = torch.linspace(-10, 10, 200001).unsqueeze(1)
    z = torch.trapezoid(torch.exp(-g.energy(grid)), grid.squeeze(1))
    assert abs(math.log(z) - g.log_partition().item()) < 1e-4


def test_product_of_experts_adds_precisions():
    a = GaussianEnergy(torch.zeros(3), torch.eye(3) * 2)
    b = GaussianEnergy(torch.ones(3), torch.eye(3) * 3)
    poe = a + b
    assert isinstance(poe, SumEnergy)
    # (2x² + 3(x-1)²)/2 is a Gaussian with precision 5 and mean 3/5
    x = torch.randn(8, 3)
    expected = GaussianEnergy(torch.full((3,), 0.6), torch.eye(3) * 5)
    const = poe.energy(torch.full((1, 3), 0.6))
    assert torch.allclose(poe.energy(x) - const, expected.energy(x), atol=1e-5)
    assert torch.allclose(poe.score(x), expected.score(x), atol=1e-5)


def test_temperature_scales_energy_and_score():
    g = GaussianEnergy(torch.zeros(2), torch.eye(2))
    hot = g.tempered(2.0)
    x = torch.randn(4, 2)
    assert torch.allclose(hot.energy(x), g.energy(x) / 2)
    assert torch.allclose(hot.score(x), g.score(x) / 2)
    with pytest.raises(ValueError):
        g.tempered(0.0)


def test_mixture_is_normalised():
    gmm = GaussianMixtureEnergy(
        torch.tensor([[0.0, 0.0], [3.0, 1.0]]), torch.tensor([0.5, 1.0]), torch.tensor([0.3, 0.7])
    )
    xs = torch.linspace(-8, 10, 601)
    grid = torch.cartesian_prod(xs, xs)
    mass = torch.exp(-gmm.energy(grid)).sum() * (xs[1] - xs[0]) ** 2
    assert abs(mass.item() - 1.0) < 1e-3


def test_noise_conditional_mlp_needs_sigma_and_scales_with_it():
    m = MLPEnergy(dim=2)
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="noise-conditional"):
        m.energy(x)
    e = m.energy(x, torch.full((5,), 0.5))
    assert e.shape == (5,)
    _, s = energy_and_score(m, x, torch.full((5,), 0.5))
    assert s.shape == x.shape


def test_statistics_shapes_values_and_gradients():
    x = torch.tensor([[3.0, 4.0], [0.0, 1.0]], requires_grad=True)
    assert torch.equal(identity(x), x)
    assert torch.equal(square(x), x**2)
    assert torch.allclose(radius(x), torch.tensor([[5.0], [1.0]]))
    assert torch.allclose(sin_sum(x), torch.sin(torch.tensor([[7.0], [1.0]])))
    g = torch.autograd.grad(radius(x).sum(), x)[0]
    assert torch.allclose(g[0], torch.tensor([0.6, 0.8]))


def test_statistic_decorator_and_validation():
    @statistic
    def mean_abs(x):
        """Mean absolute value."""
        return x.abs().mean(1)

    assert isinstance(mean_abs, Statistic) and mean_abs.name == "mean_abs"
    assert mean_abs(torch.ones(3, 4)).shape == (3, 1)

    @statistic(name="bad")
    def bad(x):
        return x.unsqueeze(-1).unsqueeze(-1)

    with pytest.raises(ValueError, match="bad"):
        bad(torch.ones(2, 2))
