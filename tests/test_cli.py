"""The ``hebm`` command: one-line errors with exit status 2, and a tiny run -> sample -> evaluate."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _util import assert_state_equal

from hebm_core.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: training options small enough for a few seconds on two cores
TINY_TRAIN = [
    "--steps", "40",
    "--device", "cpu",
    "--set", "data.n=1000",
    "--set", "data.n_test=400",
    "--set", "model.hidden=32",
    "--set", "objective.n_sigmas=4",
    "--set", "sampler.steps_per_sigma=10",
    "--set", "train.ema_decay=0.9",
    "--set", "train.log_every=10",
    "--set", "train.tensorboard=false",
]  # fmt: skip
TINY = [*TINY_TRAIN, "--n", "200"]


def hebm(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str, *fragments: str) -> None:
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hebm: error: ")
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """One tiny hybrid run (the toy defaults: rings + radius), shared by the tests below."""
    out = tmp_path_factory.mktemp("run")
    config = out / "run.toml"
    config.write_text('plugin = "toy"\nstatistics = ["radius"]\n[data]\nname = "rings"\n[evaluate]\nmetrics = ["mmd"]')
    assert main(["run", "--config", str(config), "--out", str(out), *TINY]) == 0
    return out


# --------------------------------------------------------------------------- errors
def test_unknown_plugin(capsys):
    rc, _, err = hebm(capsys, "train", "--plugin", "nope")
    assert_one_line_error(rc, err, "unknown plugin 'nope'", "known:", "toy")


def test_unknown_dataset(capsys):
    rc, _, err = hebm(capsys, "run", "--dataset", "spiral")
    assert_one_line_error(rc, err, "unknown dataset 'spiral' in plugin 'toy'", "rings")


def test_unknown_statistic(capsys):
    rc, _, err = hebm(capsys, "train", "--statistic", "radius", "--statistic", "curvature")
    assert_one_line_error(rc, err, "unknown statistic 'curvature'", "radius, sin_sum, square")


def test_malformed_toml(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('plugin = "toy"\n[train]\nsteps = = 3\n')
    rc, _, err = hebm(capsys, "train", "--config", bad)
    assert_one_line_error(rc, err, "bad.toml: malformed TOML", "line 3")


def test_missing_config_file(capsys, tmp_path):
    rc, _, err = hebm(capsys, "run", "--config", tmp_path / "absent.toml")
    assert_one_line_error(rc, err, "config file not found", "absent.toml")


def test_bad_sampler_option_fails_before_training(capsys, tmp_path):
    rc, _, err = hebm(capsys, "run", "--out", tmp_path, "--set", "sampler.step=3", *TINY)
    assert_one_line_error(rc, err, "bad option for sampler 'annealed_langevin': unexpected 'step'", "steps_per_sigma")
    assert not (tmp_path / "checkpoint.pt").exists()


def test_truncated_checkpoint(capsys, run_dir, tmp_path):
    data = (run_dir / "checkpoint.pt").read_bytes()
    broken = tmp_path / "checkpoint.pt"
    broken.write_bytes(data[: len(data) // 2])
    for command in ("sample", "evaluate"):
        rc, _, err = hebm(capsys, command, "--checkpoint", broken, "--out", tmp_path / command)
        assert_one_line_error(rc, err, str(broken), "truncated or corrupted")


def test_error_in_a_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "hebm_core.cli", "run", "--objective", "dsn"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "hebm: error: unknown objective 'dsn'; known: cd, dsm, esm, nce, pcd, recovery, ssm"
    ]


# --------------------------------------------------------------------------- end to end
def test_run_writes_report_samples_and_picture(run_dir):
    rep = json.loads((run_dir / "report.json").read_text())
    assert isinstance(rep["eta"]["radius"], float)
    assert rep["statistics"] == {"trained": ["radius"], "evaluated": ["radius"]}
    assert rep["delta_t"]["radius"] == rep["metrics"]["delta_t/radius"] >= 0
    assert "mmd" in rep["metrics"]
    assert rep["training"]["steps"] == 40
    assert rep["sampling"]["n_samples"] == 200 and rep["sampling"]["samples_per_s"] > 0
    assert rep["sampling"]["options"]["sigmas"] == pytest.approx(sorted(rep["sampling"]["options"]["sigmas"])[::-1])
    assert rep["config"]["train"]["steps"] == 40 and rep["config"]["data"]["n"] == 1000
    assert rep["dataset"]["name"] == "rings" and rep["dataset"]["n_train"] == 1000
    for key in ("torch_version", "hebm_version", "timestamp", "device"):
        assert rep[key]
    assert torch.load(run_dir / "samples.pt").shape == (200, 2)
    assert (run_dir / "samples.png").read_bytes()[:8] == PNG_MAGIC
    assert not list(run_dir.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_sample_from_checkpoint(capsys, run_dir, tmp_path):
    rc, out, err = hebm(capsys, "sample", "--checkpoint", run_dir / "checkpoint.pt", "--n", 50, "--out", tmp_path)
    assert rc == 0, err
    assert torch.load(tmp_path / "samples.pt").shape == (50, 2)
    assert (tmp_path / "samples.png").read_bytes()[:8] == PNG_MAGIC
    assert "samples.png" in out


def test_sampling_from_checkpoint_repeats_the_run(capsys, run_dir, tmp_path):
    rc, _, err = hebm(capsys, "sample", "--checkpoint", run_dir / "checkpoint.pt", "--out", tmp_path)
    assert rc == 0, err
    assert torch.equal(torch.load(tmp_path / "samples.pt"), torch.load(run_dir / "samples.pt"))


def test_evaluate_from_checkpoint(capsys, run_dir, tmp_path):
    rc, out, err = hebm(
        capsys, "evaluate", "--checkpoint", run_dir / "checkpoint.pt", "--n", 100, "--out", tmp_path,
        "--sampler", "langevin", "--set", "sampler.n_steps=20", "--set", "sampler.step_size=1e-3",
    )  # fmt: skip
    assert rc == 0, err
    rep = json.loads((tmp_path / "metrics.json").read_text())
    assert set(rep["delta_t"]) == {"radius"} and rep["delta_t"]["radius"] >= 0
    assert "mmd" in rep["metrics"]
    assert rep["sampling"]["sampler"] == "langevin" and rep["sampling"]["sigma"] == pytest.approx(0.02)  # toy σ_min
    assert "delta_t: radius=" in out


def test_sample_from_a_checkpoint_with_objective_state(capsys, tmp_path):
    """PCD keeps a replay buffer in its state: the checkpoint's objective state loads back for sampling."""
    rc, _, err = hebm(
        capsys, "train", "--objective", "pcd", "--set", "objective.buffer_size=128", "--set", "objective.k=2",
        "--out", tmp_path / "pcd", "--steps", "5", "--device", "cpu", "--set", "data.n=500",
        "--set", "train.tensorboard=false",
    )  # fmt: skip
    assert rc == 0, err
    rc, _, err = hebm(
        capsys, "sample", "--checkpoint", tmp_path / "pcd" / "checkpoint.pt", "--n", 20, "--out", tmp_path / "s",
        "--sampler", "langevin", "--set", "sampler.n_steps=5",
    )  # fmt: skip
    assert rc == 0, err
    assert torch.load(tmp_path / "s" / "samples.pt").shape == (20, 2)


def test_vanilla_run_still_reports_delta_t(capsys, tmp_path):
    rc, _, err = hebm(capsys, "run", "--no-statistics", "--out", tmp_path, *TINY, "--steps", "5")
    assert rc == 0, err
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["eta"] == {} and rep["statistics"]["trained"] == []
    assert "radius" in rep["delta_t"]  # the toy plugin's default statistic


def test_compare_vanilla_and_hybrid(capsys, tmp_path):
    rc, out, err = hebm(capsys, "compare", "--statistic", "square", "--out", tmp_path, *TINY, "--steps", "5")
    assert rc == 0, err
    res = json.loads((tmp_path / "compare.json").read_text())
    assert set(res["delta_t"]) == {"square", "radius"}
    sq = res["delta_t"]["square"]
    assert sq["delta_t_reduction_pct"] == pytest.approx(100 * (sq["vanilla"] - sq["hybrid"]) / sq["vanilla"], abs=0.01)
    assert set(res["eta"]) == {"square"}
    assert res["metrics"]["delta_t/square"] == {"vanilla": sq["vanilla"], "hybrid": sq["hybrid"]}
    assert res["metrics"]["delta_t_se/square"] == {"vanilla": sq["vanilla_se"], "hybrid": sq["hybrid_se"]}
    assert 0 < sq["vanilla_se"] < sq["vanilla"]
    assert (tmp_path / "vanilla" / "report.json").exists() and (tmp_path / "hybrid" / "samples.png").exists()
    assert f"delta_t square: vanilla {sq['vanilla']:.4g} ± {sq['vanilla_se']:.4g}" in out


def test_compare_with_frozen_eta_takes_the_vanilla_network_exactly(capsys, tmp_path):
    """With ``eta_lr = 0`` compare trains the network once: the hybrid's state (weights, EMA, optimizer,
    random state) is what training it again gives, and the hybrid then samples with its calibrated η."""
    from hebm_core.checkpoint import load_checkpoint

    frozen = ["--set", "train.eta_lr=0", "--set", "hybrid.calibrate_rounds=2", "--set", "hybrid.calibrate_samples=200"]
    rc, _, err = hebm(capsys, "compare", "--statistic", "square", "--out", tmp_path / "c", *TINY, *frozen)
    assert rc == 0, err
    res = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert res["training"]["hybrid"]["network_from"] == str(tmp_path / "c" / "vanilla" / "checkpoint.pt")
    assert res["training"]["hybrid"]["steps"] == 40 and torch.tensor(res["eta"]["square"]).abs().sum() > 0
    rc, _, err = hebm(capsys, "run", "--statistic", "square", "--out", tmp_path / "h", *TINY, *frozen)
    assert rc == 0, err
    shared, trained = (load_checkpoint(d / "checkpoint.pt") for d in (tmp_path / "c" / "hybrid", tmp_path / "h"))
    for key in ("model", "ema", "optimizer", "rng", "data_iter", "calibrated_eta"):
        assert_state_equal(shared[key], trained[key], key)
    logs = [(tmp_path / "c" / d / "metrics.csv").read_text() for d in ("vanilla", "hybrid")]
    assert logs[0] == logs[1]
    # resuming the compare keeps the hybrid's own checkpoint
    rc, _, err = hebm(capsys, "compare", "--statistic", "square", "--out", tmp_path / "c", *TINY, *frozen, "--resume")
    assert rc == 0, err
    assert "network_from" not in json.loads((tmp_path / "c" / "compare.json").read_text())["training"]["hybrid"]


def test_resume_continues_a_finished_run(capsys, run_dir, tmp_path):
    shutil.copytree(run_dir, tmp_path, dirs_exist_ok=True)
    config = run_dir / "run.toml"
    rc, _, err = hebm(capsys, "train", "--config", config, "--out", tmp_path, "--resume", *TINY_TRAIN, "--steps", 45)
    assert rc == 0, err
    training = json.loads((tmp_path / "report.json").read_text())["training"]
    assert training["steps"] == 45
    assert round(training["steps_per_s"] * training["wall_time_s"]) == 5  # continued, not restarted


def test_without_matplotlib_there_is_a_note_not_a_crash(monkeypatch, tmp_path):
    from hebm_core import runs
    from hebm_core.config import resolve_config

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    comps = runs.build(resolve_config(None, {"data": {"name": "moons", "n": 50}}))
    files, notes = runs.write_outputs(comps.bundle.train[:10], comps, tmp_path)
    assert files == [str(tmp_path / "samples.pt")] and not (tmp_path / "samples.png").exists()
    assert len(notes) == 1 and "matplotlib is not installed" in notes[0]


def test_evaluate_nll_by_ais_matches_the_exact_gaussian_likelihood(capsys, tmp_path):
    """A learnable Gaussian energy has a closed-form log Z: `evaluate --nll` must reproduce its test NLL."""
    from hebm_core.checkpoint import load_checkpoint
    from hebm_core.models import GaussianEnergy
    from hebm_core.toy.datasets import gaussian

    rc, _, err = hebm(
        capsys, "train", "--dataset", "gaussian", "--model", "gaussian", "--objective", "ssm", "--no-statistics",
        "--steps", "300", "--device", "cpu", "--set", "data.dim=3", "--set", "train.lr=0.02",
        "--set", "train.tensorboard=false", "--out", tmp_path / "g",
    )  # fmt: skip
    assert rc == 0, err
    rc, out, err = hebm(
        capsys, "evaluate", "--checkpoint", tmp_path / "g" / "checkpoint.pt", "--n", 100, "--nll",
        "--ais-chains", 256, "--ais-temps", 300, "--sampler", "mala", "--set", "sampler.n_steps=20",
        "--out", tmp_path / "ev",
    )  # fmt: skip
    assert rc == 0, err
    ll = json.loads((tmp_path / "ev" / "metrics.json").read_text())["log_likelihood"]
    model = GaussianEnergy(dim=3, learnable=True)
    payload = load_checkpoint(tmp_path / "g" / "checkpoint.pt")
    model.load_state_dict({k.removeprefix("module."): v for k, v in payload["ema"].items() if k != "n_averaged"})
    test = gaussian(dim=3).test.float()
    with torch.no_grad():
        exact = float(model.energy(test).mean() + model.log_partition())
    assert abs(ll["nll_nats"] - exact) < 0.05, (ll, exact)
    assert ll["bits_per_dim"] == pytest.approx(ll["nll_nats"] / (3 * math.log(2)))
    assert "bits/dim" in out


def test_run_calibrates_eta_and_stores_it_in_the_checkpoint(capsys, tmp_path):
    from hebm_core.checkpoint import load_checkpoint
    from hebm_core.runs import load_run

    rc, _, err = hebm(
        capsys,
        "run",
        "--out",
        tmp_path,
        *TINY,
        "--set",
        "hybrid.calibrate_rounds=2",
        "--set",
        "hybrid.calibrate_samples=200",
    )
    assert rc == 0, err
    rep = json.loads((tmp_path / "report.json").read_text())
    history = rep["training"]["eta_calibration"]
    assert [h["round"] for h in history] == [0, 1, 2] and history[0]["kept"]
    assert [h for h in history if h["kept"]][-1]["eta"] == rep["eta"]  # the best η seen is the one kept
    _, model = load_run(tmp_path / "checkpoint.pt", "cpu")
    assert model.eta_report() == pytest.approx(rep["eta"])
    # the weights keep the trained η, so a resumed run calibrates again from it, to the same η
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["ema"]["module.eta.radius"].tolist() == pytest.approx([history[0]["eta"]["radius"]])
    rc, _, err = hebm(
        capsys,
        "run",
        "--out",
        tmp_path,
        "--resume",
        *TINY,
        "--set",
        "hybrid.calibrate_rounds=2",
        "--set",
        "hybrid.calibrate_samples=200",
    )
    assert rc == 0, err
    again = json.loads((tmp_path / "report.json").read_text())
    assert again["training"]["eta_calibration"] == history and again["eta"] == rep["eta"]


def test_frozen_eta_trains_the_vanilla_network_and_calibration_fits_eta(capsys, tmp_path):
    """``train.eta_lr = 0``: the hybrid's network is bit for bit the vanilla one (same seed); η is
    then fitted by moment matching alone, and without calibration the config is refused."""
    from hebm_core.checkpoint import load_checkpoint

    rc, _, err = hebm(
        capsys,
        "run",
        "--out",
        tmp_path / "h",
        *TINY,
        "--set",
        "train.eta_lr=0",
        "--set",
        "hybrid.calibrate_rounds=3",
        "--set",
        "hybrid.calibrate_samples=400",
    )
    assert rc == 0, err
    rc, _, err = hebm(capsys, "run", "--out", tmp_path / "v", *TINY, "--no-statistics")
    assert rc == 0, err
    hyb, van = (load_checkpoint(tmp_path / d / "checkpoint.pt") for d in ("h", "v"))
    for k, v in van["model"].items():
        assert torch.equal(hyb["model"]["base." + k], v), k
    assert hyb["model"]["eta.radius"].tolist() == [0.0]  # trained η: frozen at 0
    rep = json.loads((tmp_path / "h" / "report.json").read_text())
    history = rep["training"]["eta_calibration"]
    assert history[0]["eta"] == {"radius": 0.0}
    gaps = [abs(h["gap"]["radius"][0]) for h in history if h["kept"]]
    assert gaps[-1] < 0.5 * gaps[0]  # moment matching moved η and closed most of the gap
    assert rep["eta"]["radius"] != 0.0 and hyb["calibrated_eta"]["radius"].tolist() == [rep["eta"]["radius"]]

    no_calibration = ["--set", "train.eta_lr=0", "--set", "hybrid.calibrate_rounds=0"]
    rc, _, err = hebm(capsys, "run", "--out", tmp_path / "x", *TINY, *no_calibration)
    assert rc != 0 and "calibrate_rounds" in err
