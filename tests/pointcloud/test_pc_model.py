"""The set energy: invariant energy, equivariant score (vanilla and hybrid), noise conditioning."""

import pytest
import torch
from hebm_pointcloud.model import set_energy
from hebm_pointcloud.statistics import laplacian_statistic

from hebm_core.hybrid import HybridEnergy


@pytest.mark.parametrize("pool", ["meanmax", "mean", "max"])
def test_permutation_equivariance(pool):
    torch.manual_seed(0)
    x = torch.randn(3, 64, 3, dtype=torch.float64)
    model = set_energy(x, hidden=16, depth=2, pool=pool).double()
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
