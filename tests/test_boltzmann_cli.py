"""``hebm boltzmann``: the report of EDG and its equal-budget baselines, a trained checkpoint as the
target, and the one-line errors. Core only: the targets here are registered by a test plugin (the
``hebm-boltzmann`` plugin's own tests cover its targets)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from hebm_core import registry as registry_module
from hebm_core.cli import main
from hebm_core.registry import Plugin, PluginRegistry
from hebm_core.targets import Target, checkpoint_target

torch.set_num_threads(1)

MEAN = torch.tensor([1.0, -2.0])
STD = torch.tensor([0.5, 1.5])
GAUSS_LOG_Z = float(math.log(2 * math.pi) + STD.log().sum())

EDG_TINY = [
    "--steps", "5",
    "--n", "64",
    "--no-plot",
    "--set", "edg.ghd_steps=2",
    "--set", "edg.hidden=16",
    "--set", "edg.score_hidden=16",
    "--set", "train.batch_size=32",
    "--set", "train.progress=false",
    "--set", "weights.method=\"rk4\"",
    "--set", "weights.ode_steps=8",
    "--set", "mcmc.n_leapfrog=3",
]  # fmt: skip


def gauss(x: torch.Tensor, sigma=None) -> torch.Tensor:
    return 0.5 * ((x - MEAN) / STD).pow(2).sum(-1)


def gauss_target() -> Target:
    return Target(
        name="gauss",
        energy=gauss,
        dim=2,
        sample=lambda n, g: MEAN + STD * torch.randn(n, 2, generator=g),
        log_z=GAUSS_LOG_Z,
        scale=1.5,
        metrics={"mean0": lambda x, w: float(x[:, 0].mean() if w is None else (w * x[:, 0]).sum())},
    )


@pytest.fixture
def registry(monkeypatch):
    """The installed plugins plus one test plugin with the target ``gauss``."""
    reg = PluginRegistry()
    reg.register(Plugin(name="gausstest", targets={"gauss": gauss_target}))
    monkeypatch.setattr(registry_module, "_REGISTRY", reg)
    return reg


def test_report_edg_and_baselines_at_equal_budget(registry, tmp_path, capsys):
    assert main(["boltzmann", "--target", "gauss", "--out", str(tmp_path), *EDG_TINY]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    rows = report["samplers"]
    assert set(rows) == {"edg", "hmc", "mala", "ais"}
    budget = report["budget_evals"]
    assert budget == rows["edg"]["evals"] > 0
    for kind in ("hmc", "mala", "ais"):
        assert 0 < rows[kind]["evals"] <= budget, kind
    # the baselines spend most of the budget: equal budgets, not a starved baseline
    assert rows["hmc"]["evals"] > 0.5 * budget and rows["ais"]["evals"] > 0.7 * budget
    edg = rows["edg"]["weights"]
    assert 1 / 64 <= edg["ress"] <= 1 and edg["log_z_lower"] <= edg["log_z"] + 1e-9
    # AIS on a target with exact samples brackets log Z (forward below, reverse above, up to noise)
    ais = rows["ais"]
    assert ais["log_z"] - 0.5 < GAUSS_LOG_Z < ais["log_z_upper"] + 0.5
    assert "mmd_anice" in rows["hmc"]["metrics"] and "mean0" in rows["mala"]["metrics"]
    assert "metrics_reweighted" in rows["edg"] and "metrics_reweighted" not in rows["hmc"]
    assert "budget" in capsys.readouterr().out


def test_target_errors(registry, tmp_path, capsys):
    assert main(["boltzmann", "--target", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hebm: error: unknown target 'nope'") and "gauss" in err and len(err.splitlines()) == 1
    assert main(["boltzmann", "--out", str(tmp_path)]) == 2
    assert "give one of --target NAME or --checkpoint PATH" in capsys.readouterr().err
    assert main(["boltzmann", "--target", "gauss", "--set", "bogus.x=1", "--out", str(tmp_path)]) == 2
    assert "--set takes" in capsys.readouterr().err


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    """A tiny noise-conditional hybrid run on the toy rings (DSM: has a smallest σ)."""
    out = tmp_path_factory.mktemp("toyrun")
    config = out / "run.toml"
    config.write_text('plugin = "toy"\nstatistics = ["radius"]\n[data]\nname = "rings"\n')
    argv = ["train", "--config", str(config), "--out", str(out), "--steps", "20", "--device", "cpu"]
    argv += ["--set", "data.n=500", "--set", "model.hidden=16", "--set", "objective.n_sigmas=4"]
    argv += ["--set", "train.tensorboard=false"]
    assert main(argv) == 0
    return out / "checkpoint.pt"


def test_checkpoint_target_is_the_model_at_its_smallest_sigma(toy_run):
    from hebm_core.runs.checkpoints import load_run

    target = checkpoint_target(toy_run)
    exp, model = load_run(toy_run, "cpu")
    assert target.dim == 2 and target.sample is None and target.log_z is None
    sigma = float(exp.training_sigmas[-1])
    assert target.info["sigma"] == pytest.approx(sigma)
    x = torch.randn(16, 2)
    with torch.no_grad():
        want = model(x, torch.full((16,), sigma))
    torch.testing.assert_close(target.energy(x), want)
    ref = target.reference(100, torch.Generator().manual_seed(0))
    assert ref.shape == (100, 2)
    # ΔT of the run's statistic: zero on the data itself, positive on points far from the rings
    (name,) = [k for k in target.metrics if k.startswith("delta_t/")]
    data = exp.reference
    assert target.metrics[name](data, None) == pytest.approx(0.0, abs=1e-9)
    assert target.metrics[name](10 * data, None) > 0.1


def test_checkpoint_cli(toy_run, tmp_path):
    argv = ["boltzmann", "--checkpoint", str(toy_run), "--sampler", "mala", "--budget", "2000", "--n", "32"]
    assert main([*argv, "--out", str(tmp_path), "--no-plot"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["info"]["checkpoint"] == str(toy_run)
    rows = report["samplers"]
    assert rows["ais"].get("log_z_upper") is None and rows["ais"]["ais"]["reverse"] is None
    assert any(k.startswith("delta_t/") for k in rows["mala"]["metrics"])


def test_edg_sampler_resamples_by_weight():
    """The sampler's output is the weighted draw resampled: its mean matches the Gaussian's within
    the resampling error, and its stats carry the weights' summary and the evaluation counts."""
    from hebm_core.samplers import SAMPLERS

    sampler = SAMPLERS["edg"](
        edg={"ghd_steps": 2, "hidden": 16, "score_hidden": 32},
        weights={"method": "rk4", "ode_steps": 16},
        train={"steps": 150, "batch_size": 128, "lr": 3e-3},
        scale=1.5,
    )
    torch.manual_seed(0)
    x = sampler.run(gauss, torch.zeros(2000, 2))
    assert x.shape == (2000, 2) and bool(torch.isfinite(x).all())
    stats = sampler.last_stats
    assert 0 < stats["ress"] <= 1 and stats["train_evals"] > 0 and stats["weight_evals"] > 0
    assert stats["log_z_lower"] <= stats["log_z"] + 1e-9
    torch.testing.assert_close(x.mean(0), MEAN, atol=0.3, rtol=0)
    with pytest.raises(ValueError, match="flat"):
        sampler.run(gauss, torch.zeros(4, 1, 2))


def test_sample_checkpoint_with_edg(toy_run, tmp_path):
    argv = ["sample", "--checkpoint", str(toy_run), "--sampler", "edg", "--n", "64", "--out", str(tmp_path)]
    for opt in ("train.steps=5", "train.batch_size=32", "edg.ghd_steps=2", "edg.hidden=16", "weights.ode_steps=8"):
        argv += ["--set", f"sampler.{opt}"]
    argv += ["--set", 'sampler.weights.method="rk4"', "--device", "cpu"]
    assert main(argv) == 0
    report = json.loads((tmp_path / "sample_report.json").read_text())
    stats = report["sampling"]["stats"]
    assert report["sampling"]["sampler"] == "edg" and 0 < stats["ress"] <= 1
    assert stats["train_evals"] > 0 and stats["train_evals"] % (5 * 32) == 0  # 5 steps of 32 latents


def test_untrustworthy_weights_are_flagged():
    from hebm_core.cli.boltzmann import _weights_warning

    assert _weights_warning({"ress": 0.4, "fallback_rows": 0, "n": 100}) is None
    stiff = _weights_warning({"ress": 0.4, "fallback_rows": 100, "n": 100})
    assert stiff is not None and "100 of 100 weights" in stiff
    assert "rESS 0.0005" in _weights_warning({"ress": 0.0005, "fallback_rows": 0, "n": 100})
