"""AIS against exact log-partition functions."""

import math

import torch
from _util import anisotropic_gaussian

from hebm_core.models import GaussianEnergy, GaussianMixtureEnergy
from hebm_core.samplers import AIS, HMC, MALA, nll_from_log_z


def _base(dim, std=3.0):
    return GaussianEnergy(torch.zeros(dim), torch.eye(dim) / std**2)


def test_ais_log_z_of_anisotropic_gaussian_within_0_1_nats():
    torch.manual_seed(0)
    mean, prec, _ = anisotropic_gaussian(10)
    target = GaussianEnergy(mean, prec)
    exact = float(target.log_partition())
    ais = AIS(n_temps=1000, n_chains=512, kernel=HMC(step_size=0.2, n_leapfrog=5))
    res = ais.estimate(target, _base(10), generator=torch.Generator().manual_seed(1))
    assert abs(res.log_z - exact) < 0.1, (res, exact)
    assert 0 < res.log_z_stderr < 0.1  # the reported spread is honest: small but not zero
    assert res.ess > 50 and 0.3 < res.acceptance < 0.99


def test_ais_with_mala_on_a_mixture_and_a_shifted_energy():
    """log Z of a normalised mixture is 0; adding a constant c to the energy shifts log Z by -c."""
    torch.manual_seed(0)
    gmm = GaussianMixtureEnergy(
        torch.tensor([[-1.5, 0.0], [1.5, 0.5]]), torch.tensor([0.6, 0.8]), torch.tensor([0.4, 0.6])
    )
    ais = AIS(n_temps=500, n_chains=512, kernel=MALA(step_size=0.1))
    res = ais.estimate(gmm, _base(2))
    assert abs(res.log_z) < 0.1, res

    def shifted(x, sigma=None):
        return gmm(x) + 2.0

    res2 = AIS(n_temps=500, n_chains=512, kernel=MALA(step_size=0.1)).estimate(shifted, _base(2))
    assert abs(res2.log_z + 2.0) < 0.1, res2


def test_nll_and_bits_per_dim_from_log_z():
    torch.manual_seed(0)
    mean, prec, _ = anisotropic_gaussian(4)
    g = GaussianEnergy(mean, prec)
    x = g.sample(20000)
    out = nll_from_log_z(g, x, float(g.log_partition()))
    # the differential entropy of a Gaussian: ½ log det(2πe Σ)
    entropy = 0.5 * (4 * math.log(2 * math.pi * math.e) - torch.logdet(prec).item())
    assert abs(out["nll_nats"] - entropy) < 0.05
    assert abs(out["bits_per_dim"] - out["nll_nats"] / (4 * math.log(2))) < 1e-9
