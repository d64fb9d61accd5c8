"""The plugin's benchmarks/tilt_statistics.py and benchmarks/pointcloud_diagnostics.py on a tiny
`hebm compare` run; benchmarks/statistic_speed.py on tiny clouds."""

import json

import pytest
import torch
from _pcutil import load_benchmark

from hebm_core import runs

TINY = {
    "plugin": "pointcloud",
    "statistics": ["size"],
    "data": {"name": "primitives", "classes": ["box", "cylinder"], "n_train": 16, "n_test": 8, "n_points": 64},
    "model": {"name": "set_energy", "hidden": 16, "depth": 1},
    "objective": {"name": "dsm", "sigma_min": 0.02, "sigma_max": 1.0, "n_sigmas": 4},
    "hybrid": {"sigma_power": 2, "calibrate_rounds": 1, "calibrate_samples": 8, "calibrate_lr": 1.0},
    "train": {"steps": 20, "batch_size": 8, "eta_lr": 0.0, "log_every": 10, "checkpoint_every": 20},
    "sampler": {"name": "annealed_langevin", "n_samples": 8, "steps_per_sigma": 3},
    "evaluate": {
        "metrics": [{"name": "pointflow", "emd_points": 32, "emd_check_pairs": 2}],
        "statistics": [{"name": "laplacian", "k": 8}],
    },
}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    runs.compare(TINY, out)
    return out, json.loads((out / "compare.json").read_text())


def test_tilt_statistics_reproduces_the_compare_hybrid_and_reuses_its_tilts(compared, tmp_path, monkeypatch):
    """Tilting the vanilla network by the run's own statistic with the run's own calibration is
    the compare's hybrid: same η, same metrics. ``--reuse`` scores the saved samples again without
    calibrating; ``--hybrid`` overrides the calibration and names the tilt after it."""
    run, cmp = compared
    mod = load_benchmark("tilt_statistics")
    out = tmp_path / "tilts.json"
    assert mod.main(["--runs", str(run), "--try", "size", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())["tries"]["size"]
    per_seed = rep["per_seed"][str(run)]
    for key in ("pointflow/mmd_cd", "pointflow/1nna_cd_pct", "delta_t/size", "delta_t/laplacian"):
        assert per_seed[key]["vanilla"] == pytest.approx(cmp["metrics"][key]["vanilla"]), key
        assert per_seed[key]["hybrid"] == pytest.approx(cmp["metrics"][key]["hybrid"]), key
    assert rep["runs"][str(run)]["eta"] == pytest.approx(cmp["eta"])
    assert [h["kept"] for h in rep["runs"][str(run)]["calibration"]] == [True, True] and cmp["eta"]["size"] != 0
    saved = run / "tilts" / "size.pt"
    stamp = saved.stat().st_mtime_ns

    def refuse(*args, **kwargs):
        raise AssertionError("--reuse must not calibrate again")

    monkeypatch.setattr(runs, "calibrate_eta", refuse)  # what the benchmark calls
    again = tmp_path / "again.json"
    assert mod.main(["--runs", str(run), "--try", "size", "--reuse", "--out", str(again)]) == 0
    reused = json.loads(again.read_text())["tries"]["size"]["per_seed"][str(run)]
    diff = {k: (v, per_seed.get(k)) for k, v in reused.items() if v != per_seed.get(k) and not k.endswith("_time_s")}
    assert not diff, diff
    assert saved.stat().st_mtime_ns == stamp
    monkeypatch.undo()
    # one round is the Newton step, which both calibration rules share
    joint = tmp_path / "joint.json"
    assert (
        mod.main(
            ["--runs", str(run), "--try", "size", "--hybrid", '{"calibrate_method": "joint"}', "--out", str(joint)]
        )
        == 0
    )
    rep_joint = json.loads(joint.read_text())["tries"]["size@calibrate_method=joint"]
    assert rep_joint["hybrid"] == {"calibrate_method": "joint"}
    assert rep_joint["runs"][str(run)]["eta"] == pytest.approx(cmp["eta"])
    assert (run / "tilts" / "size@calibrate_method=joint.pt").exists()
    # a statistic's own sigma_power: equal to the run's [hybrid] one it is the compare's hybrid again;
    # at 0 the same first Newton step (from the vanilla samples) gives the same η, but other samples
    powers = tmp_path / "powers.json"
    assert (
        mod.main(
            [
                "--runs",
                str(run),
                "--try",
                '[{"name": "size", "sigma_power": 2}]',
                "--try",
                '[{"name": "size", "sigma_power": 0}]',
                "--out",
                str(powers),
            ]
        )
        == 0
    )
    rep_p = json.loads(powers.read_text())
    assert rep_p["evaluated"] == [{"name": "laplacian", "k": 8}, "size"]
    same, zero = rep_p["tries"]["size_sigma_power2"], rep_p["tries"]["size_sigma_power0"]
    assert same["per_seed"][str(run)]["delta_t/size"] == pytest.approx(per_seed["delta_t/size"])
    assert zero["runs"][str(run)]["eta"] == pytest.approx(cmp["eta"])
    assert zero["per_seed"][str(run)]["delta_t/size"]["hybrid"] != pytest.approx(per_seed["delta_t/size"]["hybrid"])


def test_pointcloud_diagnostics_controls(compared, tmp_path):
    """The 1-NNA sides average to the reported 1-NNA; the smoothing control lands on the hybrid's
    plain Laplacian (or leaves smoother samples alone); jitter roughens the vanilla samples."""
    run, cmp = compared
    mod = load_benchmark("pointcloud_diagnostics")
    out = tmp_path / "diag.json"
    assert mod.main(["--run", str(run), "--control", "--jitter", "0.05", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    for side in ("vanilla", "hybrid"):
        sides = rep["one_nna_cd_sides"][side]
        assert (sides["samples_pct"] + sides["test_pct"]) / 2 == pytest.approx(
            cmp["metrics"]["pointflow/1nna_cd_pct"][side]
        )
        # the class shares agree with the metric's, and the by-class sample side averages to the whole
        classes = rep["classes"][side]
        for c, row in classes.items():
            assert row["samples_pct"] == pytest.approx(cmp["metrics"][f"pointflow/class_pct/{c}"][side])
            assert row["test_pct"] == 50.0  # box, cylinder, box, ... over 8 test shapes
        by_class = sum(r["samples_pct"] * (r["nearest_is_sample_pct"] or 0) for r in classes.values()) / 100
        assert by_class == pytest.approx(sides["samples_pct"])
    control = rep["smoothing_control"]
    vanilla_t = cmp["metrics"]["model_t/laplacian"]["vanilla"]
    if control["lambda"] > 0:
        assert control["metrics"]["model_t/laplacian"] == pytest.approx(control["laplacian_target"], rel=1e-3)
    else:
        assert vanilla_t <= control["laplacian_target"]
    assert rep["jitter"]["0.05"]["model_t/laplacian"] > vanilla_t
    merged = tmp_path / "merged.json"
    assert mod.main(["--summarise", str(out), "--out", str(merged)]) == 0
    summary = json.loads(merged.read_text())["jitter"]["0.05"]["summary"]
    plain = cmp["metrics"]["delta_t/laplacian"]["vanilla"]
    assert summary["delta_t/laplacian"]["vanilla_mean"] == pytest.approx(plain)
    assert summary["delta_t/laplacian"]["hybrid_mean"] == pytest.approx(rep["jitter"]["0.05"]["delta_t/laplacian"])
    assert summary["pointflow/mmd_cd"]["seeds"] == 1
    stats = rep["statistics"]["laplacian"]
    test = torch.load(run / "vanilla" / "samples.pt", weights_only=True)
    assert stats["model_mean"]["vanilla"][0] == pytest.approx(cmp["metrics"]["model_t/laplacian"]["vanilla"])
    assert len(stats["sd"]["test"]) == 1 and test.shape[0] == TINY["sampler"]["n_samples"]


def test_statistic_speed_report_checks_agreement(tmp_path, monkeypatch):
    """benchmarks/statistic_speed.py on tiny clouds: the plugin's kernels agree with the plain formulas."""
    mod = load_benchmark("statistic_speed")
    monkeypatch.setattr(mod, "CASES", {"tiny": (4, 48, 8, 1)})
    out = tmp_path / "speed.json"
    assert mod.main(["--cases", "tiny", "--repeats", "1", "--device", "cpu", "--out", str(out)]) == 0
    parts = json.loads(out.read_text())["results"]["tiny"]["parts"]
    assert parts["knn_k8"]["same_neighbour_fraction"] == 1.0
    assert parts["knn_k8"]["far_from_origin_same_fraction_plugin"] > 0.99
    for name in ("laplacian_shape", "d2", "hybrid_energy"):
        assert parts[name]["max_rel_gradient_diff"] < 1e-5 and parts[name]["speedup"] > 0
    assert parts["chamfer_matrix_32x64"]["max_abs_value_diff"] < 1e-5
    denoised = parts["hybrid_score_denoised"]  # statistics at x̂ = x + σ² s: another score, timed beside
    assert denoised["max_rel_score_diff"] > 1e-4 and denoised["cost_ratio"] > 0
