"""The plugin end to end through the core's run stages: registry, run, report, PLY + PNG outputs;
the shipped configs, which name a data root of the user's choosing."""

import json

import pytest
import torch
from _pcutil import CONFIGS, ONET

from hebm_core.cli import main as hebm
from hebm_core.config import load_toml, parse_assignment, resolve_config
from hebm_core.registry import PluginRegistry
from hebm_core.runs import SamplingPlan, build, build_metrics, run

TINY = {
    "plugin": "pointcloud",
    "statistics": [{"name": "laplacian", "ks": [4, 8]}],
    "data": {"name": "primitives", "classes": ["box", "cylinder"], "n_train": 16, "n_test": 4, "n_points": 64},
    "model": {"name": "set_energy", "hidden": 16, "depth": 1},
    "objective": {"name": "dsm", "sigma_min": 0.02, "sigma_max": 1.0, "n_sigmas": 4},
    "train": {"steps": 20, "batch_size": 8, "eta_lr": 0.05, "log_every": 10, "checkpoint_every": 20},
    "sampler": {"name": "annealed_langevin", "n_samples": 4, "steps_per_sigma": 3},
    "evaluate": {"metrics": [{"name": "pointflow", "emd_points": 32, "emd_check_pairs": 2}]},
}


def test_registered_through_entry_point():
    reg = PluginRegistry()
    assert "pointcloud" in reg.plugins, reg.failures
    p = reg.get("pointcloud")
    assert {"shapenet", "meshes", "primitives"} <= set(p.datasets) and "laplacian" in p.statistics
    assert p.default_config["data"]["name"] == "primitives"


def test_tiny_run_writes_report_ply_and_png(tmp_path):
    rep = run(TINY, tmp_path)
    m = rep["metrics"]
    for key in ("delta_t/laplacian", "pointflow/mmd_cd", "pointflow/cov_emd_pct", "pointflow/1nna_cd_pct"):
        assert key in m
    # a test split: ΔT is also reported against the training shapes η is fitted on
    assert m["delta_t_train/laplacian"] == pytest.approx(abs(m["model_t/laplacian"] - m["train_t/laplacian"]))
    assert m["pointflow/emd_subsample_mean_rel_error"] >= 0
    assert set(rep["eta"]) == {"laplacian"} and len(rep["eta"]["laplacian"]) == 2
    assert rep["dataset"]["protocol"]["cd"].startswith("Chamfer") and rep["dataset"]["normalization"]["name"]
    assert (tmp_path / "ply" / "sample_003.ply").exists() and (tmp_path / "samples.png").exists()
    assert json.loads((tmp_path / "report.json").read_text())["sampling"]["samples_per_s"] > 0


def test_default_config_scales_the_laplacian_like_a_gaussian_score_and_fits_eta_by_moments():
    """The shipped default: η·T·(σ_min/σ)² with T the size-relative Laplacian, η frozen while the
    network trains and fitted by moment matching afterwards.

    DSM's optimal η for the statistic alone at σ_min, −E⟨z/σ, ∇T⟩/E‖∇T‖², is thousands here: the
    scale η must reach (the calibrated one was −5.4e3 and −7.1e3 on two seeds).
    """
    from hebm_pointcloud import DEFAULT_CONFIG

    cfg = {**DEFAULT_CONFIG, "data": {**DEFAULT_CONFIG["data"], "n_train": 8, "n_test": 2}}
    exp = build(cfg)
    model, sig_min = exp.model.double(), DEFAULT_CONFIG["objective"]["sigma_min"]
    assert model.sigma_power == 2 and model.sigma_ref == pytest.approx(sig_min)
    assert [s.name for s in exp.statistics] == ["laplacian_shape", "size", "d2"]
    name = exp.statistics[0].name
    x = exp.bundle.train[:8].double()
    with torch.no_grad():
        model.eta[name].fill_(-1.0)
    for s in (sig_min, 10 * sig_min):
        xs = x.clone()
        sig = torch.full((8,), s, dtype=x.dtype)
        e_h = model.energy(xs, sig).sum() - model.base.energy(xs, sig).sum()  # η_size = η_d2 = 0
        t = exp.statistics[0](xs).sum()
        ratio = (e_h / t).item()
        assert ratio == pytest.approx((sig_min / s) ** 2, rel=1e-6)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(x.shape, generator=g, dtype=x.dtype)
    xt = (x + sig_min * z).requires_grad_(True)
    grad = torch.autograd.grad(exp.statistics[0](xt).sum(), xt)[0]
    eta_star = -(((z / sig_min) * grad).sum() / grad.pow(2).sum()).item()
    assert eta_star < -1e3
    hyb, train = DEFAULT_CONFIG["hybrid"], DEFAULT_CONFIG["train"]
    assert train["eta_lr"] == 0 and hyb["calibrate_rounds"] >= 4


@pytest.mark.parametrize("name", ["shapenet.toml", "gpu.toml"])
def test_shipped_configs_build_and_fit_eta_by_moments(name):
    """Every option of the shipped ShapeNet configs is accepted (on a few embedded primitives): the
    network trains alone and η of the size-relative Laplacian, the size and D2 come from the calibration."""
    cfg = load_toml(CONFIGS / name)
    assert cfg["data"]["name"] == "shapenet"
    cfg["data"] = {"name": "primitives", "n_train": 4, "n_test": 2, "n_points": 64}
    cfg["train"]["device"] = "cpu"
    resolved = resolve_config(overrides=cfg)
    assert resolved.train.eta_lr == 0 and resolved.hybrid.calibrate_rounds >= 4
    exp = build(resolved)
    assert [s.name for s in exp.statistics] == ["laplacian_shape", "size", "d2"]
    assert exp.statistics[2].centres[-1] == pytest.approx(6.0 * 15 / 16)  # global normalisation: distances to ~6
    assert {s.name for s in exp.eval_statistics} >= {"laplacian", "laplacian_shape", "size", "d2"}
    SamplingPlan.build(exp)
    assert [type(m).__name__ for m in build_metrics(exp)] == ["StatisticGap", "PointFlowMetrics"]


@pytest.mark.parametrize(
    ("name", "shipped", "n_train", "n_points"),
    [
        ("shapenet.toml", "data/shapenet/onet_pointcloud", 30 * 8, 512),
        ("gpu.toml", "data/shapenet/ShapeNetCore.v2.PC15k", 30 * 16, 2048),
    ],
)
def test_shipped_configs_read_shapenet_from_the_root_given(name, shipped, n_train, n_points):
    """The shipped configs name a root under the working directory, not this machine's copy: the
    shared ShapeNet is passed explicitly, as a user passes theirs (``--set data.root=...``)."""
    assert load_toml(CONFIGS / name)["data"]["root"] == shipped
    overrides = parse_assignment(f"data.root={ONET}") | {"train": {"device": "cpu"}}
    cfg = resolve_config(CONFIGS / name, overrides)
    assert cfg.data.options["root"] == str(ONET)
    bundle = build(cfg).bundle
    assert bundle.info["layout"] == "onet" and bundle.info["root"] == str(ONET)
    assert bundle.train.shape == (n_train, n_points, 3) and bundle.test.shape == (10, n_points, 3)


def test_a_missing_data_root_is_one_line(tmp_path, monkeypatch, capsys):
    """Run from a folder without the data, the shipped config fails at once with the root it looked for."""
    monkeypatch.chdir(tmp_path)
    cfg = resolve_config(CONFIGS / "shapenet.toml", {"train": {"device": "cpu"}})
    missing = r"ShapeNet root not found: data/shapenet/onet_pointcloud \(set \[data\] root to the dataset folder\)"
    with pytest.raises(FileNotFoundError, match=f"^{missing}$"):
        build(cfg)
    args = ["run", "--config", str(CONFIGS / "shapenet.toml"), "--device", "cpu", "--out", str(tmp_path / "run")]
    assert hebm(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hebm: error: ShapeNet root not found: data/shapenet/")
    assert not (tmp_path / "run").exists()
