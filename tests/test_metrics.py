"""StatisticGap: ΔT against the reference and, given one, against the training data."""

import pytest
import torch

from hebm_core.metrics import StatisticGap
from hebm_core.statistics import identity


def test_statistic_gap_against_reference_and_training_data():
    samples = torch.tensor([[1.0, 2.0], [1.0, 2.0]])  # E_model T = (1, 2)
    reference = torch.zeros(3, 2)  # (0, 0)
    train = torch.tensor([[0.0, 0.0], [2.0, 2.0]]).repeat(5, 1)  # (1, 1), read in chunks of 3
    gap = StatisticGap([identity], train=train, chunk=3)
    gap.update(samples[:1], reference)
    gap.update(samples[1:])
    out = gap.compute()
    assert out["delta_t/identity"] == pytest.approx(1.5)  # mean over components of |(1, 2) − (0, 0)|
    assert out["delta_t_train/identity"] == pytest.approx(0.5)  # |(1, 2) − (1, 1)|
    assert out["train_t/identity"] == pytest.approx(1.0) and out["data_t/identity"] == pytest.approx(0.0)
    assert gap.compute() == out  # the training side is read once
    gap.reset()
    with pytest.raises(RuntimeError, match="both generated samples and reference"):
        gap.compute()
    no_train = StatisticGap([identity])
    no_train.update(samples, reference)
    assert not any(k.startswith(("delta_t_train/", "train_t/")) for k in no_train.compute())


def test_statistic_gap_standard_errors_are_those_of_the_two_means():
    """Known answer: unbiased variances 4/3 (model, n = 4) and 4 (reference, n = 5), one component."""
    samples = torch.tensor([[0.0], [2.0], [0.0], [2.0]])  # mean 1, unbiased variance 4/3
    reference = torch.tensor([[-2.0], [2.0], [0.0], [-2.0], [2.0]])  # mean 0, unbiased variance 4
    gap = StatisticGap([identity])
    gap.update(samples, reference)
    out = gap.compute()
    assert out["delta_t/identity"] == pytest.approx(1.0)
    assert out["data_t_se/identity"] == pytest.approx((4 / 5) ** 0.5)
    assert out["delta_t_se/identity"] == pytest.approx((4 / 3 / 4 + 4 / 5) ** 0.5)
    # against training data (mean 0, unbiased variance 2 over n = 3): the model's error plus the train mean's
    with_train = StatisticGap([identity], train=torch.tensor([[-1.0], [0.0], [1.0]]) * 2**0.5)
    with_train.update(samples, reference)
    train_out = with_train.compute()
    assert train_out["delta_t_train_se/identity"] == pytest.approx((4 / 3 / 4 + 2 / 3) ** 0.5)
    assert train_out["delta_t_se/identity"] == pytest.approx(out["delta_t_se/identity"])
    # and by simulation: the spread of ΔT's signed difference over repeats is the reported error
    torch.manual_seed(0)
    diffs, ses = [], []
    for _ in range(400):
        g = StatisticGap([identity])
        g.update(torch.randn(10, 1) * 2 + 1, torch.randn(30, 1))
        o = g.compute()
        diffs.append(o["model_t/identity"] - o["data_t/identity"])
        ses.append(o["delta_t_se/identity"])
    expected = (4 / 10 + 1 / 30) ** 0.5
    assert torch.tensor(diffs).std().item() == pytest.approx(expected, rel=0.1)
    assert torch.tensor(ses).mean().item() == pytest.approx(expected, rel=0.05)
    one = StatisticGap([identity])
    one.update(samples[:1], reference[:1])
    assert not any("_se/" in k for k in one.compute())  # one cloud per side: no error to report
