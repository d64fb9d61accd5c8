"""Conditional sampling by a statistic's ``target``: the calibration matches the asked mean instead
of the data's, the report says how close the samples came, and bad targets fail before training."""

from __future__ import annotations

import json

import pytest
import torch
from test_cli import TINY, TINY_TRAIN, assert_one_line_error, hebm

from hebm_core.config import ConfigError, StatisticEntry
from hebm_core.runs.conditioning import TargetHit, shift_to_targets, targets_of
from hebm_core.statistics import statistic


@statistic(name="pair", component_names=("a", "b"))
def pair(x: torch.Tensor) -> torch.Tensor:
    return x


def test_targets_shift_only_the_named_components_and_keep_their_spread():
    x = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    entry = StatisticEntry.parse({"name": "pair", "target": {"b": 3.0}, "tolerance": 0.5})
    targets = targets_of([entry], [pair], x.float())
    assert [t.values for t in targets] == [{1: 3.0}] and targets[0].names == ["pair.a", "pair.b"]
    shifted = shift_to_targets(x, targets)
    assert torch.equal(shifted[:, 0], x[:, 0]) and shifted[:, 1].mean().item() == pytest.approx(3.0)
    assert shifted[:, 1].std().item() == pytest.approx(x[:, 1].std().item())
    hit = TargetHit(targets)
    hit.update(torch.stack([x[:, 0], x[:, 1] + 3], 1).float())
    out = hit.compute()
    assert out["target/pair.b"] == 3.0 and abs(out["target_model/pair.b"] - 3.0) < 0.1
    assert out["target_hit/pair.b"] == pytest.approx(0.383, abs=0.04)  # P(|N(0,1)| ≤ 0.5)
    assert "target/pair.a" not in out


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"name": "pair", "target": "high"}, "target must be a number"),
        ({"name": "pair", "target": [1.0, float("nan")]}, "target must be a number"),
        ({"name": "pair", "tolerance": 0.5}, "tolerance needs a target"),
        ({"name": "pair", "target": 1.0, "tolerance": -1}, "tolerance must be a number > 0"),
    ],
)
def test_bad_targets_are_one_line_config_errors(item, fragment):
    with pytest.raises(ConfigError, match=fragment):
        StatisticEntry.parse(item)


def test_a_target_that_names_no_component_or_the_wrong_count_fails():
    x = torch.zeros(4, 2)
    with pytest.raises(ConfigError, match=r"target names \['c'\], its components are \['a', 'b'\]"):
        targets_of([StatisticEntry.parse({"name": "pair", "target": {"c": 1.0}})], [pair], x)
    with pytest.raises(ConfigError, match="3 values for 2 components"):
        targets_of([StatisticEntry.parse({"name": "pair", "target": [1.0, 2.0, 3.0]})], [pair], x)


def test_a_run_with_a_target_samples_at_that_mean(capsys, tmp_path):
    """Rings of radii 1 and 2 in equal parts (data mean ≈ 1.5): asking for a mean radius of 2.6 moves
    the calibrated samples there, a mean no data point has."""
    argv = ["run", "--out", tmp_path, *TINY, "--set", 'statistics=[{name="radius", target=2.6, tolerance=0.25}]']
    argv += ["--set", "hybrid.calibrate_rounds=4", "--set", "hybrid.calibrate_samples=500", "--n", 1000]
    rc, _, err = hebm(capsys, *argv)
    assert rc == 0, err
    m = json.loads((tmp_path / "report.json").read_text())["metrics"]
    assert m["target/radius"] == 2.6 and abs(m["data_t/radius"] - 1.5) < 0.05
    assert abs(m["target_model/radius"] - 2.6) < 0.12, m["target_model/radius"]
    assert 0 < m["target_hit/radius"] <= 1


def test_a_target_with_a_typo_fails_before_training(capsys, tmp_path):
    argv = ["run", "--out", tmp_path, *TINY, "--set", 'statistics=[{name="radius", target={r = 2.0}}]']
    rc, _, err = hebm(capsys, *argv)
    assert_one_line_error(rc, err, "target names ['r']")
    assert not (tmp_path / "checkpoint.pt").exists()


def test_compare_reports_the_target_on_both_sides(capsys, tmp_path):
    """Known answer: the tilt exp(η·x) of N(m, 1) is N(m + η, 1), so on 1-D Gaussian data with m = 1 the
    target E[x] = 2 needs η = 1 and puts P(|x − 2| ≤ 0.5) = 38 % of the samples within the tolerance
    (the vanilla side, reporting against the same target, P(0.5 ≤ N(0, 1) ≤ 1.5) = 24 %)."""
    stat = '{name="identity", target=2.0, tolerance=0.5}'
    argv = ["compare", "--out", tmp_path, *TINY, "--set", f"statistics=[{stat}]", "--set", "train.eta_lr=0"]
    argv += ["--dataset", "gaussian", "--set", "data.dim=1", "--steps", 600, "--n", 4000]
    argv += ["--set", "objective.n_sigmas=8", "--set", "sampler.steps_per_sigma=30"]
    argv += ["--set", "hybrid.calibrate_rounds=4", "--set", "hybrid.calibrate_samples=2000"]
    rc, out, err = hebm(capsys, *argv)
    assert rc == 0, err
    rep = json.loads((tmp_path / "compare.json").read_text())
    m = rep["metrics"]
    assert m["data_t/identity"]["vanilla"] == pytest.approx(1.0, abs=0.05)  # the data's mean
    assert m["target/identity"] == {"vanilla": 2.0, "hybrid": 2.0}
    assert abs(m["target_model/identity"]["hybrid"] - 2.0) < 0.08  # 4 standard errors of 4,000 samples
    assert abs(m["target_model/identity"]["vanilla"] - 1.0) < 0.1
    hit = m["target_hit/identity"]
    assert abs(hit["vanilla"] - 0.242) < 0.05 and abs(hit["hybrid"] - 0.383) < 0.05, hit
    assert "target identity: 2 -> " in out


def test_components_pick_named_columns_of_any_statistic(capsys, tmp_path):
    from hebm_core.statistics import Components

    x = torch.randn(5, 2)
    assert torch.equal(Components(pair, ["b"])(x), x[:, 1:])
    assert Components(pair, ["b", "a"]).names(2) == ["pair.b", "pair.a"]
    with pytest.raises(ValueError, match=r"components \['a', 'b'\], got \['c'\]"):
        Components(pair, ["c"])
    rc, _, err = hebm(
        capsys, "train", "--out", tmp_path, *TINY_TRAIN, "--set", 'statistics=[{name="radius", components=["x"]}]'
    )
    assert_one_line_error(rc, err, "statistic 'radius': components must be a non-empty list")
