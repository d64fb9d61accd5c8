"""Shipped models: ``hebm export`` writes a slim checkpoint that samples exactly like the run it came
from; ``--pretrained`` finds a plugin's model by name and refuses a damaged file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from test_cli import TINY, assert_one_line_error, hebm

import hebm_core.cli.checkpoints as cli_checkpoints
from hebm_core.checkpoint import CheckpointError
from hebm_core.cli import main
from hebm_core.pretrained import Pretrained, file_sha256, resolve_pretrained
from hebm_core.registry import PluginRegistry, get_registry


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(["run", "--statistic", "radius", "--out", str(out), *TINY]) == 0
    return out


def test_export_samples_exactly_like_the_run_and_drops_the_training_state(capsys, run, tmp_path):
    slim = tmp_path / "tiny.pt"
    rc, out, err = hebm(capsys, "export", "--checkpoint", run / "checkpoint.pt", "--out", slim)
    assert rc == 0, err and f"sha256 {file_sha256(slim)}" in out
    payload = torch.load(slim, weights_only=True)
    assert not {"optimizer", "ema", "rng", "data_iter"} & set(payload)
    assert slim.stat().st_size < (run / "checkpoint.pt").stat().st_size / 2
    for name, src in (("full", run / "checkpoint.pt"), ("slim", slim)):
        assert hebm(capsys, "sample", "--checkpoint", src, "--n", 64, "--out", tmp_path / name)[0] == 0
    assert torch.equal(torch.load(tmp_path / "full" / "samples.pt"), torch.load(tmp_path / "slim" / "samples.pt"))


def test_export_replaces_or_updates_the_data_table(capsys, run, tmp_path):
    rc, _, err = hebm(capsys, "export", "--checkpoint", run / "checkpoint.pt", "--out", tmp_path / "a.pt",
                      "--set", "data.n=300")  # fmt: skip
    assert rc == 0, err
    data = torch.load(tmp_path / "a.pt", weights_only=True)["spec"]["data"]
    assert data["n"] == 300 and data["n_test"] == 400  # updated, the rest kept
    rc, _, err = hebm(capsys, "export", "--checkpoint", run / "checkpoint.pt", "--out", tmp_path / "b.pt",
                      "--set", 'data.name="gaussian"')  # fmt: skip
    assert rc == 0, err
    assert torch.load(tmp_path / "b.pt", weights_only=True)["spec"]["data"] == {"name": "gaussian"}
    rc, _, err = hebm(capsys, "export", "--checkpoint", run / "checkpoint.pt", "--out", tmp_path / "c.pt",
                      "--set", "train.steps=3")  # fmt: skip
    assert_one_line_error(rc, err, "data.KEY=VALUE")


def _registry(entries: dict[str, Pretrained], other: dict[str, Pretrained] | None = None) -> PluginRegistry:
    reg = PluginRegistry(eps=[])
    reg.register(dataclasses.replace(get_registry().get("toy"), pretrained=entries))
    if other is not None:
        reg.register(dataclasses.replace(get_registry().get("toy"), name="toy2", pretrained=other))
    return reg


def test_pretrained_names_resolve_and_a_damaged_file_is_refused(run, tmp_path):
    slim = tmp_path / "tiny.pt"
    assert main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(slim)]) == 0
    good = Pretrained(slim, file_sha256(slim))
    reg = _registry({"tiny": good})
    assert resolve_pretrained("tiny", reg) == ("toy:tiny", good)
    assert resolve_pretrained("hebm-toy:tiny", reg)[0] == "toy:tiny"
    with pytest.raises(CheckpointError, match="unknown pretrained model 'nope'; installed: toy:tiny"):
        resolve_pretrained("nope", reg)
    with pytest.raises(CheckpointError, match="ambiguous: toy:tiny, toy2:tiny"):
        resolve_pretrained("tiny", _registry({"tiny": good}, {"tiny": good}))
    with pytest.raises(CheckpointError, match="damaged"):
        resolve_pretrained("tiny", _registry({"tiny": Pretrained(slim, "0" * 64)}))
    with pytest.raises(CheckpointError, match="missing"):
        resolve_pretrained("tiny", _registry({"tiny": Pretrained(tmp_path / "gone.pt", "0" * 64)}))


def test_sample_and_evaluate_a_pretrained_model_by_name(capsys, run, tmp_path, monkeypatch):
    slim = tmp_path / "tiny.pt"
    assert main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(slim)]) == 0
    monkeypatch.setattr(
        cli_checkpoints, "get_registry", lambda: _registry({"tiny": Pretrained(slim, file_sha256(slim))})
    )
    rc, out, err = hebm(capsys, "sample", "--pretrained", "tiny", "--n", 32, "--out", tmp_path / "s")
    assert rc == 0, err
    assert torch.load(tmp_path / "s" / "samples.pt").shape == (32, 2) and "samples.png" in out
    rc, _, err = hebm(capsys, "evaluate", "--pretrained", "tiny", "--n", 64, "--out", tmp_path / "e",
                      "--set", "data.n_test=100")  # fmt: skip
    assert rc == 0, err
    rc, _, err = hebm(capsys, "sample", "--pretrained", "nope", "--out", tmp_path / "x")
    assert_one_line_error(rc, err, "unknown pretrained model 'nope'")
