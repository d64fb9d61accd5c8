"""Failure as one line, outputs as one unit, checkpoints that cannot lie, runaways reported."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch

from hebm_core import runs
from hebm_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from hebm_core.cli import main
from hebm_core.training import watch

TINY = ["--set", "data.n=64", "--set", "data.n_test=32", "--set", "model.hidden=8", "--set", "model.depth=1"]
TINY += ["--set", "hybrid.calibrate_rounds=0"]  # the toy default calibrates η; these tests need no η
SAMPLE = ["--set", "sampler.n_samples=16", "--set", "sampler.steps_per_sigma=5"]


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def one_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("hebm: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------- output folders
def test_an_output_folder_that_cannot_be_written_fails_before_any_work(tmp_path, capsys, monkeypatch):
    called = []
    monkeypatch.setattr(runs.workflow, "build", lambda *a, **k: called.append(1))
    afile = tmp_path / "f"
    afile.write_text("x")
    for out, reason in ((afile, "is a file, not a folder"), (afile / "sub", "which is a file"),
                        ("/proc/hebm-out", "cannot write to output folder")):  # fmt: skip
        rc, _, err = cli(capsys, "train", "--steps", "2", *TINY, "--out", out)
        assert rc == 2 and reason in one_error(err)
    assert not called  # refused before the data was even built


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert cli(capsys, "train", "--steps", "4", *TINY, "--set", "train.checkpoint_every=2", "--out", out)[0] == 0
    before = (out / "checkpoint.pt").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    rc, _, err = cli(capsys, "train", "--steps", "8", *TINY, "--out", out, "--resume")
    assert rc == 2 and "No space left on device" in one_error(err) and "torch" not in one_error(err)
    assert (out / "checkpoint.pt").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_stale_temporary_files_are_removed_on_start_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(capsys, "train", "--steps", "2", *TINY, "--out", out)[0] == 0
    junk = [out / ".checkpoint.pt.k1ll3d.tmp", out / ".report.json.x.tmp"]
    for j in junk:
        j.write_bytes(b"\0" * 1000)
    (out / ".staging-abc").mkdir()
    assert cli(capsys, "train", "--steps", "4", *TINY, "--out", out, "--resume")[0] == 0
    assert not any(j.exists() for j in junk) and not (out / ".staging-abc").exists()


def test_a_killed_sample_leaves_the_old_outputs_or_the_new_never_a_mix(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    assert cli(capsys, "run", "--steps", "5", *TINY, *SAMPLE, "--out", run_dir)[0] == 0
    out = tmp_path / "samples"
    assert cli(capsys, "sample", "--checkpoint", run_dir / "checkpoint.pt", "--out", out, "--n", "8")[0] == 0
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(old) == {"samples.pt", "samples.png", "sample_report.json"}

    real = runs.checkpoints.write_outputs

    def killed(samples, exp, where):
        real(samples, exp, where)  # every new file written ...
        raise KeyboardInterrupt  # ... then the process is interrupted before the swap

    monkeypatch.setattr(runs.checkpoints, "write_outputs", killed)
    rc, _, err = cli(capsys, "sample", "--checkpoint", run_dir / "checkpoint.pt", "--out", out, "--n", "12")
    assert rc == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old  # the old set, whole
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind
    monkeypatch.setattr(runs.checkpoints, "write_outputs", real)
    assert cli(capsys, "sample", "--checkpoint", run_dir / "checkpoint.pt", "--out", out, "--n", "12")[0] == 0
    rep = json.loads((out / "sample_report.json").read_text())
    assert rep["sampling"]["n_samples"] == 12 and torch.load(out / "samples.pt").shape[0] == 12
    assert sorted(Path(f).name for f in rep["files"]) == sorted(old)


def test_sample_refuses_to_replace_a_folder_with_other_files(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert cli(capsys, "run", "--steps", "5", *TINY, *SAMPLE, "--out", run_dir)[0] == 0
    rc, _, err = cli(capsys, "sample", "--checkpoint", run_dir / "checkpoint.pt", "--out", run_dir)
    assert rc == 2 and "give this command its own --out" in one_error(err)
    assert (run_dir / "checkpoint.pt").exists()


def test_run_outputs_land_with_their_report(tmp_path, capsys, monkeypatch):
    """A run killed while writing its samples keeps no report naming files that are not there."""
    out = tmp_path / "run"

    def killed(samples, exp, where):
        (Path(where) / "samples.pt").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(runs.workflow, "write_outputs", killed)
    assert cli(capsys, "run", "--steps", "5", *TINY, *SAMPLE, "--out", out)[0] == 130
    assert not (out / "report.json").exists() and not (out / "samples.pt").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".staging")]


# --------------------------------------------------------------------------- checkpoints
def test_a_flipped_byte_in_a_checkpoint_is_caught(tmp_path, capsys):
    weights = torch.linspace(-1, 1, 5000)
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1, "model": {"w": weights}, "config": {}})
    assert torch.equal(load_checkpoint(path)["model"]["w"], weights)
    raw = bytearray(path.read_bytes())
    at = raw.find(weights.numpy().tobytes()[:256])
    assert at > 0
    raw[at + 4000] ^= 0x01  # one bit of one weight: torch's zip reader does not notice
    path.write_bytes(bytes(raw))
    assert not torch.equal(torch.load(path, weights_only=True)["model"]["w"], weights)
    with pytest.raises(CheckpointError, match="is corrupted: its content does not match its checksum"):
        load_checkpoint(path)


def test_non_finite_weights_are_refused_on_resume_and_when_sampling(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(capsys, "train", "--steps", "2", *TINY, "--out", out)[0] == 0
    payload = load_checkpoint(out / "checkpoint.pt")
    key = next(k for k in payload["ema"] if k.startswith("module.") and k.endswith("weight"))
    payload["ema"][key] = torch.full_like(payload["ema"][key], float("nan"))
    save_checkpoint(out / "checkpoint.pt", payload)
    rc, _, err = cli(capsys, "train", "--steps", "4", *TINY, "--out", out, "--resume")
    assert rc == 2 and "non-finite weights" in one_error(err) and key in one_error(err)
    rc, _, err = cli(capsys, "sample", "--checkpoint", out / "checkpoint.pt", "--out", tmp_path / "s")
    assert rc == 2 and "EMA weights are not finite" in one_error(err)


# --------------------------------------------------------------------------- runaways
def test_chains_that_run_off_are_counted_reported_and_strict_makes_them_an_error(tmp_path, capsys):
    out = tmp_path / "run"
    hot = ["--set", "sampler.eps=1.0", "--set", "sampler.n_samples=64"]
    rc, stdout, _ = cli(capsys, "run", "--steps", "50", *TINY, *hot, "--out", out)
    rep = json.loads((out / "report.json").read_text())
    ran_off = rep["sampling"]["ran_off"]
    samples = torch.load(out / "samples.pt")
    train = runs.build(rep["config"]).bundle.train
    limit = 10 * (train - train.mean()).abs().max()
    assert rc == 0 and ran_off == int(((samples - train.mean()).abs() > limit).any(1).sum()) > 0
    assert f"note: {ran_off} of 64 chains ran off" in stdout and any("ran off" in n for n in rep["notes"])
    rc, _, err = cli(capsys, "run", "--steps", "50", *TINY, *hot, "--strict", "--out", tmp_path / "strict")
    assert rc == 2 and f"{ran_off} of 64 chains ran off" in one_error(err)
    calm = tmp_path / "calm"
    assert cli(capsys, "run", "--steps", "50", *TINY, *SAMPLE, "--strict", "--out", calm)[0] == 0
    assert json.loads((calm / "report.json").read_text())["sampling"]["ran_off"] == 0


def test_metropolis_acceptance_is_reported_and_a_stuck_sampler_is_an_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(capsys, "train", "--steps", "5", *TINY, "--out", out)[0] == 0
    ck = out / "checkpoint.pt"
    mala = ["--sampler", "mala", "--set", "sampler.n_steps=20", "--n", "32"]
    assert (
        cli(capsys, "evaluate", "--checkpoint", ck, *mala, "--set", "sampler.step_size=1e-4", "--out", out / "e")[0]
        == 0
    )
    acceptance = json.loads((out / "e" / "metrics.json").read_text())["sampling"]["stats"]["acceptance"]
    assert 0.5 < acceptance <= 1
    rc, _, err = cli(
        capsys, "evaluate", "--checkpoint", ck, *mala, "--set", "sampler.step_size=1e4", "--out", out / "f"
    )
    assert rc == 2 and "under its floor of 1%" in one_error(err)


def test_a_blown_up_loss_is_flagged_and_strict_makes_it_an_error(tmp_path, capsys):
    w = watch.LossWatch()
    assert [w.update(s, v) for s, v in enumerate([1.0, 0.9, 0.95, 0.8], 1)] == [None] * 4
    assert "over 1000× its running median 0.925" in w.update(5, 2e3) and w.flag["step"] == 5
    assert watch.LossWatch().update(1, 5e-4) is None and watch.LossWatch().update(2, 0.5) is None  # near 0: no flag
    out = tmp_path / "run"
    wild = [*TINY, "--set", "model.hidden=128", "--set", "model.depth=3", "--set", "train.lr=1"]
    rc, stdout, err = cli(capsys, "train", "--steps", "30", *wild, "--out", out)
    rep = json.loads((out / "report.json").read_text())
    assert rc == 0 and rep["training"]["loss_blowup"]["step"] >= 2 and "hebm: warning: training loss" in err
    assert "note: training loss" in stdout and "blew up" in stdout
    rc, _, err = cli(capsys, "train", "--steps", "30", *wild, "--strict", "--out", out)
    assert rc == 2 and "training is blowing up" in one_error(err)


def test_a_metric_that_cannot_be_computed_is_one_line_and_reports_hold_no_nan(tmp_path, capsys):
    rc, _, err = cli(capsys, "run", "--steps", "3", *TINY, *SAMPLE, "--n", "1", "--out", tmp_path / "one")
    assert rc == 2 and "metric 'mmd' cannot be computed: MMD needs at least 2 samples" in one_error(err)
    from hebm_core.testing import nonfinite_in_json

    out = tmp_path / "ok"
    assert cli(capsys, "run", "--steps", "3", *TINY, *SAMPLE, "--out", out)[0] == 0
    assert nonfinite_in_json(out / "report.json") == []


def test_sigkill_at_random_moments_resumes_bit_identically(tmp_path):
    """``benchmarks/kill_resume.py`` on two kills of each kind (the benchmark runs 35 and 10)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "kill_resume.py"
    spec = importlib.util.spec_from_file_location("kill_resume", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "kill.json"
    rc = mod.main(
        ["--trials", "2", "--sample-trials", "2", "--steps", "120", "--checkpoint-every", "5", "--out", str(out)]
    )
    rep = json.loads(out.read_text())
    assert rep["train"]["bit_identical"] == 2 and rep["sample"]["mixed"] == 0 and rc == 0
    assert all(not t["leftover_files"] for t in rep["train"]["trials"])
