"""The noise-conditional conv energy: one scalar per image, conditioned on σ, with the preconditioning's
known answer at initialisation."""

import pytest
import torch
from hebm_image.model import ConvEnergy, conv_energy


def _example(side=8, n=4):
    return torch.rand(n, 1, side, side, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("side,levels,stride", [(8, 2, 1), (28, 2, 1), (28, 1, 2)])
def test_one_finite_scalar_per_image(side, levels, stride):
    torch.manual_seed(0)
    x = _example(side, 5)
    model = conv_energy(x, channels=8, levels=levels, stride=stride)
    e = model(x, torch.full((5,), 0.1))
    assert e.shape == (5,) and torch.isfinite(e).all()
    _, score = model.energy_and_score(x, torch.full((5,), 0.1))
    assert score.shape == x.shape


def test_untrained_energy_is_the_blurred_gaussian_of_the_preconditioning():
    """F = 0 at initialisation (zeroed output layer): E = ½‖x‖²·σ²/(σ²+σ_d²)² (the module docstring)."""
    x = _example()
    model = conv_energy(x, channels=8, sigma_data=0.3)
    for s in (0.02, 0.5):
        var = s**2 + 0.09
        expected = 0.5 * x.flatten(1).pow(2).sum(1) * (s / var) ** 2
        assert torch.allclose(model(x, torch.full((4,), s)), expected, rtol=1e-5)


def test_the_energy_depends_on_sigma_once_the_network_is_not_zero():
    torch.manual_seed(0)
    x = _example()
    model = conv_energy(x, channels=8)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    e_small, e_large = model(x, torch.full((4,), 0.02)), model(x, torch.full((4,), 0.8))
    assert not torch.allclose(e_small, e_large)
    # per-image σ: each row sees its own level
    mixed = model(x, torch.tensor([0.02, 0.8, 0.02, 0.8]))
    assert torch.allclose(mixed[[0, 2]], e_small[[0, 2]], rtol=1e-5)
    assert torch.allclose(mixed[[1, 3]], e_large[[1, 3]], rtol=1e-5)
    # the network is bounded, so E grows quadratically far away: exp(-E) normalisable
    assert (model(100 * x, torch.full((4,), 0.02)) > 10 * e_small).all()


def test_noise_conditional_needs_sigma_and_fixed_sigma_model_ignores_it():
    x = _example()
    with pytest.raises(ValueError, match="pass sigma"):
        conv_energy(x, channels=8)(x)
    fixed = ConvEnergy(1, (8, 8), channels=8, noise_conditional=False, sigma=0.05)
    assert torch.equal(fixed(x), fixed(x, torch.full((4,), 0.9)))


def test_bad_options_are_one_line_errors():
    x = _example()
    with pytest.raises(ValueError, match="channels"):
        conv_energy(x, channels=0)
    with pytest.raises(ValueError, match="cannot be divided"):
        conv_energy(torch.zeros(2, 1, 28, 28), levels=2, stride=2)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        conv_energy(torch.zeros(2, 64))
