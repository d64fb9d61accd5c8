"""The hybrid energy: sign convention, score decomposition, moment matching and η calibration."""

import math

import pytest
import torch
from _util import fit

from hebm_core import EnergyModel, HybridEnergy, MLPEnergy
from hebm_core.models import GaussianEnergy
from hebm_core.objectives import DenoisingScoreMatching
from hebm_core.samplers import MALA
from hebm_core.statistics import identity, radius, sin_sum, square, statistic


def test_starts_vanilla_and_follows_the_sign_convention():
    base = GaussianEnergy(dim=2)
    model = HybridEnergy(base, [identity], example=torch.zeros(1, 2))
    x = torch.randn(16, 2)
    assert torch.equal(model.energy(x), base.energy(x))  # η = 0 at initialisation
    with torch.no_grad():
        model.eta["identity"].copy_(torch.tensor([0.5, -1.0]))
    # log p = F + η·T − log Z  ⇔  E_hybrid = E_base − η·T
    assert torch.allclose(model.energy(x), base.energy(x) - x @ torch.tensor([0.5, -1.0]))
    # score = ∇F + η·∇T = base score + η (for T = x)
    assert torch.allclose(model.score(x), base.score(x) + torch.tensor([0.5, -1.0]), atol=1e-6)
    assert model.eta_report() == {"identity": [0.5, -1.0]}


def test_sigma_power_scales_the_statistic_term_with_the_noise_level():
    base = GaussianEnergy(dim=2)
    model = HybridEnergy(base, [square], example=torch.zeros(1, 2), sigma_power=2, sigma_ref=0.1)
    with torch.no_grad():
        model.eta["square"].copy_(torch.tensor([0.5, -1.0]))
    x = torch.randn(4, 2)
    sigma = torch.tensor([0.1, 0.2, 1.0, 0.05])
    term = (x**2 @ torch.tensor([0.5, -1.0])) * (0.1 / sigma) ** 2
    assert torch.allclose(model.energy(x, sigma), base.energy(x, sigma) - term)
    assert torch.allclose(model.energy(x), base.energy(x) - x**2 @ torch.tensor([0.5, -1.0]))  # no σ: unscaled
    with pytest.raises(ValueError, match="sigma_power >= 0"):
        HybridEnergy(base, [square], example=torch.zeros(1, 2), sigma_power=-1)


def test_positive_eta_raises_the_statistic_under_the_model():
    """With η > 0 on T = x, a standard Gaussian base shifts its mean to +η (exactly, by completing the square)."""
    torch.manual_seed(0)
    model = HybridEnergy(GaussianEnergy(dim=2), [identity], example=torch.zeros(1, 2))
    with torch.no_grad():
        model.eta["identity"].fill_(0.7)
    x = MALA(step_size=0.3, n_steps=300, adapt_steps=100).run(model, torch.randn(4000, 2))
    assert torch.allclose(x.mean(0), torch.full((2,), 0.7), atol=0.06)


def test_eta_per_component_and_by_name():
    @statistic(name="pair", component_names=["a", "b"])
    def pair(x):
        return torch.stack([x[:, 0], x[:, 1] ** 2], 1)

    model = HybridEnergy(MLPEnergy(dim=2, noise_conditional=False), [pair, sin_sum], example=torch.zeros(3, 2))
    assert set(model.eta_report()) == {"pair", "sin_sum"}
    assert model.eta["pair"].shape == (2,) and model.eta["sin_sum"].shape == (1,)
    assert pair.names(2) == ["pair.a", "pair.b"]
    with pytest.raises(ValueError, match="unique"):
        HybridEnergy(GaussianEnergy(dim=2), [sin_sum, sin_sum], example=torch.zeros(1, 2))


class BoundedMLP(EnergyModel):
    """An MLP energy squashed into (-4, 4): it cannot confine mass far from the data, as any network
    that only saw data nearby; only the statistic can supply the missing moments."""

    def __init__(self):
        super().__init__()
        self.net = MLPEnergy(dim=2, hidden=32, depth=2, noise_conditional=False)

    def energy(self, x, sigma=None):
        return 4 * torch.tanh(self.net(x) / 4)


def _skewed_data(n=20000):
    g = torch.Generator().manual_seed(0)
    comp = torch.rand(n, generator=g) < 0.3
    z = torch.randn(n, 2, generator=g)
    return z * torch.tensor([0.5, 0.8]) + torch.tensor([1.0, -0.5]) + comp[:, None] * torch.tensor([0.7, 0.8])


def test_moment_matching_theorem_1():
    """DSM-trained hybrid with T = (x, x²): model moments of T (long MALA chains) match the data's;
    the vanilla model with the same network, seed and budget does not."""
    data = _skewed_data()
    sigma = 0.1
    # DSM fits the σ-noised data: its second moment is the data's plus σ²
    t_data = torch.cat([data.mean(0), data.pow(2).mean(0) + sigma**2])
    t_scale = torch.cat([data.std(0), data.pow(2).std(0)])
    errors = {}
    for kind in ("vanilla", "hybrid"):
        torch.manual_seed(1)
        model = BoundedMLP()
        if kind == "hybrid":
            model = HybridEnergy(model, [identity, square], example=data[:8])
        fit(model, DenoisingScoreMatching(sigmas=[sigma]), data, steps=500, lr=3e-3, eta_lr=5e-2)
        torch.manual_seed(2)
        x = MALA(step_size=0.05, n_steps=800, adapt_steps=200).run(model, torch.randn(4000, 2))
        t_model = torch.cat([x.mean(0), x.pow(2).mean(0)])
        errors[kind] = ((t_model - t_data).abs() / t_scale).max().item()
    assert errors["hybrid"] < 0.1, errors  # within 0.1 data-std of every moment
    assert errors["hybrid"] < errors["vanilla"] / 5, errors


def test_eta_calibration_informative_vs_sin():
    """The paper's ablation: on ring data the radius statistic gets a clearly non-zero η;
    the uninformative sin(1ᵀx) ends at least 5× smaller."""
    g = torch.Generator().manual_seed(0)
    n = 20000
    theta = 2 * math.pi * torch.rand(n, generator=g)
    r = 2 + 0.2 * torch.randn(n, generator=g)
    data = torch.stack([r * theta.cos(), r * theta.sin()], 1)
    eta = {}
    for stat in (radius, sin_sum):
        torch.manual_seed(1)
        model = HybridEnergy(MLPEnergy(dim=2, hidden=32, depth=2, noise_conditional=False), [stat], example=data[:8])
        fit(model, DenoisingScoreMatching(sigmas=[0.1]), data, steps=600, lr=1e-2)
        eta[stat.name] = abs(model.eta_report()[stat.name])
    assert eta["radius"] > 0.1, eta
    assert eta["sin_sum"] * 5 < eta["radius"], eta
