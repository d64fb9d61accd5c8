"""The set energy: invariant energy, equivariant score (vanilla and hybrid), noise conditioning."""

import pytest
import torch
from hebm_pointcloud.model import set_energy
from hebm_pointcloud.statistics import laplacian_statistic

from hebm_core.hybrid import HybridEnergy


@pytest.mark.parametrize(
    "options",
    [
        {"pool": "meanmax"},
        {"pool": "mean"},
        {"pool": "max"},
        {"block": "edge", "k": 6},
    ],
)
def test_permutation_equivariance(options):
    torch.manual_seed(0)
    x = torch.randn(3, 64, 3, dtype=torch.float64)
    model = set_energy(x, hidden=16, depth=2, **options).double()
    hybrid = HybridEnergy(model, [laplacian_statistic(k=4)], example=x)
    with torch.no_grad():
        hybrid.eta["laplacian"].fill_(-3.0)
    perm = torch.randperm(64)
    sigma = torch.full((3,), 0.3, dtype=torch.float64)
    for m in (model, hybrid):
        e, s = m.energy_and_score(x, sigma)
        ep, sp = m.energy_and_score(x[:, perm], sigma)
        assert torch.allclose(e, ep, atol=1e-9)
        assert torch.allclose(s[:, perm], sp, atol=1e-9)


def test_noise_conditioning_and_shapes():
    x = torch.randn(2, 32, 3)
    model = set_energy(x, hidden=8, depth=1)
    assert model.noise_conditional
    assert model(x, torch.tensor([0.1, 1.0])).shape == (2,)
    with pytest.raises(ValueError, match="pass sigma"):
        model(x)
    plain = set_energy(x, hidden=8, depth=1, noise_conditional=False)
    assert plain(x).shape == (2,)
    with pytest.raises(ValueError, match=r"\[B, N, 3\]"):
        model(torch.randn(2, 32, 2), torch.ones(2))


def test_edge_block_score_matching_gradients():
    """Score matching differentiates the score: the edge block's second derivatives must match
    finite differences of the first, and every one of its parameters must get a gradient."""
    torch.manual_seed(1)
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    model = set_energy(x, hidden=8, depth=1, block="edge", k=4).double()
    sigma = torch.full((2,), 0.5, dtype=torch.float64)

    def score_norm(points):
        _, s = model.energy_and_score(points, sigma, create_graph=True)
        return s.pow(2).sum()

    xg = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(score_norm(xg), xg)
    direction = torch.randn_like(x)
    h = 1e-5
    numeric = (score_norm(x + h * direction) - score_norm(x - h * direction)) / (2 * h)
    assert torch.allclose((grad * direction).sum(), numeric, rtol=1e-5)
    loss = score_norm(x)
    loss.backward()
    block = model.blocks[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())


def test_bad_block_options():
    x = torch.randn(2, 16, 3)
    with pytest.raises(ValueError, match="unknown block 'conv'; known: edge, pool"):
        set_energy(x, block="conv")
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 1024\], got 0"):
        set_energy(x, block="edge", k=0)
