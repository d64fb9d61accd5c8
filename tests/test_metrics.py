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
