"""AIS / BDMC bounds at MNIST's dimension: on a 784-D Gaussian with pixel-like scales, whose log Z is
exact (``GaussianEnergy.log_partition``), the forward/reverse interval holds the truth and narrows as
the number of temperatures grows. The same toolbox call (``hebm_core.samplers.bdmc.bdmc``) brackets
log Z of the image models in ``bits_per_dim``."""

import math

import pytest
import torch

from hebm_core.models import GaussianEnergy
from hebm_core.samplers.ais import AIS
from hebm_core.samplers.bdmc import bdmc
from hebm_core.samplers.mh import HMC

DIM = 28 * 28


class DiagonalGaussian(GaussianEnergy):
    """The core Gaussian with a diagonal precision, its score in closed form without forming the
    784×784 precision on every call (log_partition and sample stay the core's, exact)."""

    def __init__(self, mean, std):
        super().__init__(mean, torch.diag(std.pow(-2)))
        self.register_buffer("prec", std.pow(-2).to(self.mean.dtype))

    def energy_and_score(self, x, sigma=None, create_graph=False):
        diff = x - self.mean
        return 0.5 * (diff.pow(2) * self.prec).sum(-1), -diff * self.prec


def _target():
    """Means and standard deviations like dequantised MNIST pixels: background near 0, strokes brighter."""
    g = torch.Generator().manual_seed(0)
    mean = 0.13 + 0.1 * torch.randn(DIM, generator=g, dtype=torch.float64)
    std = 0.05 + 0.3 * torch.rand(DIM, generator=g, dtype=torch.float64)
    return DiagonalGaussian(mean, std)


def _bdmc(target, n_temps, seed=0):
    base = DiagonalGaussian(torch.full((DIM,), 0.13, dtype=torch.float64), torch.full((DIM,), 0.5, dtype=torch.float64))
    ais = AIS(n_temps=n_temps, n_chains=64, kernel=HMC(step_size=0.05, n_leapfrog=5))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    return bdmc(target, base, ais, exact=target.sample, generator=gen, z=3.0)


def test_truth_is_exact_for_the_diagonal_gaussian():
    t = _target()
    std = t.prec.rsqrt()
    expected = std.log().sum() + 0.5 * DIM * math.log(2 * math.pi)
    assert float(t.log_partition()) == pytest.approx(float(expected), rel=1e-6)


def test_bounds_contain_the_true_log_z_and_tighten_as_temperatures_grow():
    target = _target()
    truth = float(target.log_partition())
    few, many = _bdmc(target, 30), _bdmc(target, 300)
    for res in (few, many):
        lo, hi = res.log_z_interval
        assert lo <= truth <= hi, (res.n_temps, lo, truth, hi)
        assert res.upper_bound_valid and res.reverse_start == "exact"
        assert res.log_z_lower <= truth + 3 * res.log_z_lower_stderr
        assert res.log_z_upper >= truth - 3 * res.log_z_upper_stderr
    width = {r.n_temps: r.log_z_interval[1] - r.log_z_interval[0] for r in (few, many)}
    assert width[300] < 0.5 * width[30], width
    assert abs(many.gap) < abs(few.gap)
