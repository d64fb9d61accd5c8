"""Every objective recovers the mean and precision of a Gaussian EBM from samples."""

import pytest
import torch
from _util import fit

from hebm_core.models import GaussianEnergy
from hebm_core.objectives import (
    ContrastiveDivergence,
    DenoisingScoreMatching,
    ExactScoreMatching,
    NoiseContrastiveEstimation,
    PersistentContrastiveDivergence,
    SlicedScoreMatching,
)
from hebm_core.samplers import MALA

MEAN = torch.tensor([1.0, -0.5, 0.3])
COV = torch.tensor([[1.0, 0.4, 0.0], [0.4, 0.8, -0.2], [0.0, -0.2, 0.5]])
DSM_SIGMA = 0.05

CASES = {
    "dsm": (lambda: DenoisingScoreMatching(sigmas=[DSM_SIGMA]), 1000, 2e-2),
    "ssm": (lambda: SlicedScoreMatching(n_projections=2), 1000, 2e-2),
    "esm": (lambda: ExactScoreMatching(), 1000, 2e-2),
    "cd": (lambda: ContrastiveDivergence(k=20, step_size=0.02), 1000, 2e-2),
    # persistent chains with an exact (MALA) transition: any sampler plugs in
    "pcd": (
        lambda: PersistentContrastiveDivergence(sampler=MALA(step_size=0.2, n_steps=10), buffer_size=4096),
        1000,
        2e-2,
    ),
    "nce": (lambda: NoiseContrastiveEstimation(ratio=2.0), 1500, 2e-2),
}


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return MEAN + torch.randn(20000, 3, generator=g) @ torch.linalg.cholesky(COV).T


@pytest.mark.parametrize("name", list(CASES))
def test_objective_recovers_gaussian(name, data):
    torch.manual_seed(0)
    make, steps, lr = CASES[name]
    model = GaussianEnergy(dim=3, learnable=True)
    objective = make()
    fit(model, objective, data, steps, lr=lr)
    cov = COV + (DSM_SIGMA**2 * torch.eye(3) if name == "dsm" else 0)  # DSM fits the noised data
    target_prec = torch.linalg.inv(cov)
    with torch.no_grad():
        mean_err = (model.mean - MEAN).abs().max().item()
        prec_err = (
            torch.linalg.matrix_norm(model.precision - target_prec) / torch.linalg.matrix_norm(target_prec)
        ).item()
    assert mean_err < 0.05, f"{name}: mean error {mean_err:.3f}"
    assert prec_err < 0.1, f"{name}: relative precision error {prec_err:.3f}"
    if name == "nce":  # NCE's learned log Z is the model's true log-partition function
        assert abs(objective.log_z.item() - model.log_partition().item()) < 0.05


def test_untrained_model_fails_the_same_check(data):
    """The tolerance above is meaningful: the initial model is far outside it."""
    model = GaussianEnergy(dim=3, learnable=True)
    prec_err = torch.linalg.matrix_norm(model.precision - torch.linalg.inv(COV)) / torch.linalg.matrix_norm(
        torch.linalg.inv(COV)
    )
    assert (model.mean - MEAN).abs().max() > 0.05 or prec_err > 0.1


def test_exact_score_matching_refuses_large_dimensions():
    with pytest.raises(ValueError, match="max_dim"):
        ExactScoreMatching(max_dim=8)(GaussianEnergy(dim=16), torch.randn(4, 16))


def test_pcd_buffer_persists_through_state_dict(data):
    obj = PersistentContrastiveDivergence(k=2, buffer_size=256)
    obj.setup(data[:64])
    model = GaussianEnergy(dim=3, learnable=True)
    obj(model, data[:64])
    state = obj.state_dict()
    other = PersistentContrastiveDivergence(k=2, buffer_size=256)
    other.setup(data[:64])
    other.load_state_dict(state)
    assert torch.equal(other.buffer, obj.buffer)


def test_pcd_reinitialisation_frequency(data):
    """reinit_prob=1 restarts every chain from noise; reinit_prob=0 continues the stored chains."""
    torch.manual_seed(0)
    keep = PersistentContrastiveDivergence(k=1, buffer_size=64, reinit_prob=0.0, init_std=1.0)
    keep.setup(data[:64])
    marked = torch.full((64, 3), 7.0)
    keep.buffer_0.copy_(marked)
    assert torch.equal(keep.start(data[:32]), marked[:32])
    fresh = PersistentContrastiveDivergence(k=1, buffer_size=64, reinit_prob=1.0, init_std=1.0)
    fresh.setup(data[:64])
    fresh.buffer_0.copy_(marked)
    starts = fresh.start(data[:32])
    assert (starts - 7.0).abs().min() > 0 and starts.abs().mean() < 2.0  # all from N(0, 1), none from the buffer
    with pytest.raises(ValueError):
        PersistentContrastiveDivergence(reinit_prob=1.5)


def test_nce_noise_is_configurable(data):
    obj = NoiseContrastiveEstimation(noise_scale=2.0)
    obj.setup(data[:4000])
    assert torch.allclose(obj.noise.std, 2.0 * data[:4000].std(0), rtol=1e-4)
