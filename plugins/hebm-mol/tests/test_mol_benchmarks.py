"""The plugin's benchmarks/mol_eta_sweep.py and benchmarks/mol_sampling_speed.py on a tiny run."""

import json

import pytest
from _molutil import load_benchmark

from hebm_core import runs
from hebm_core.config import resolve_config

TINY = {
    "plugin": "mol",
    "hybrid": {"calibrate_rounds": 1, "calibrate_samples": 16},
    "objective": {"n_sigmas": 4},
    "train": {"steps": 30, "batch_size": 32, "log_every": 10},
    "sampler": {"n_samples": 24, "batch_size": 16, "steps_per_sigma": 3, "progress": False},
    "evaluate": {"metrics": [{"name": "molecules", "nspdk": False, "fcd": False}]},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("mol_bench") / "run"
    rep = runs.run(resolve_config(overrides=TINY), out)
    return out / "checkpoint.pt", rep


def test_eta_sweep_repeats_the_run_at_its_eta(trained, tmp_path):
    checkpoint, rep = trained
    eta = rep["eta"]["valency"]
    target = tmp_path / "results" / "sweep.json"  # its folder does not exist yet
    argv = ["--checkpoint", str(checkpoint), "--etas", "0", repr(eta), "--n", "24", "--device", "cpu"]
    out = load_benchmark("mol_eta_sweep").main([*argv, "--out", str(target)])
    written = json.loads(target.read_text())
    assert [r["eta"] for r in written["rows"]] == [0.0, eta] and written["data_t"] == out["data_t"]
    assert out["statistic"] == {"name": "valency", "components": ["excess"]} and out["data_t"] == 0.0
    assert [r["eta"] for r in out["rows"]] == [0.0, eta] and out["sampler"]["progress"] is False
    if out["picture"] is not None:
        assert (tmp_path / "results" / "sweep.png").stat().st_size > 1000
    # same checkpoint weights, seed and sampler: at the run's calibrated η the sweep draws the run's molecules
    at_run = out["rows"][1]
    m = rep["metrics"]
    assert at_run["model_t"] == pytest.approx(m["model_t/valency"]) and at_run["validity"] == m["validity"]
    assert out["rows"][0]["model_t"] != at_run["model_t"]  # and η is what the sweep varies
    for r in out["rows"]:
        assert 0.0 <= r["validity"] <= 1.0 and r["delta_t"] == pytest.approx(r["model_t"]) and "fcd" in r


@pytest.mark.parametrize("with_checkpoint", [False, True])
def test_sampling_speed(trained, tmp_path, with_checkpoint):
    checkpoint, _ = trained
    target = tmp_path / "speed.json"
    argv = ["--n", "20", "--steps", "8", "--n-sigmas", "4", "--batch", "8", "--device", "cpu", "--out", str(target)]
    if with_checkpoint:
        argv += ["--checkpoint", str(checkpoint)]
    else:
        argv += ["--hidden", "16", "--edge-hidden", "8"]
    out = load_benchmark("mol_sampling_speed").main(argv)
    assert json.loads(target.read_text())["molecules_per_s"] == out["molecules_per_s"] > 0
    assert out["n_molecules"] == 20 and out["steps"] == 8 and out["device"] == "cpu" and out["dataset"] == "nci"
    assert out["seconds_per_step"] > 0 and out["parameters"] > 0
    if with_checkpoint:
        assert 0.0 <= out["validity_wo_correction"] <= 1.0
    else:
        assert "validity_wo_correction" not in out
