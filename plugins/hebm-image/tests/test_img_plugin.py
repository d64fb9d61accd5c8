"""The plugin end to end through the core's run stages: the entry point, a tiny run of the embedded
default (report, samples .npz, PNG grid), the bits/dim metric's arithmetic on a model with a known
log Z, and the shipped configs, which name a data root of the user's choosing."""

import copy
import json
import math

import numpy as np
import pytest
import torch
from _imgutil import CONFIGS, MNIST
from hebm_image import DEFAULT_CONFIG
from hebm_image.data import FILES, digits
from hebm_image.likelihood import bits_per_dim
from hebm_image.sampling import LastDraw

from hebm_core.cli import main as hebm
from hebm_core.config import load_toml, parse_assignment, resolve_config
from hebm_core.energy import EnergyModel
from hebm_core.registry import PluginRegistry
from hebm_core.runs import SamplingPlan, build, build_metrics, run


def tiny(cache) -> dict:
    """The embedded default at a budget of seconds."""
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    cfg["objective"]["n_sigmas"] = 4
    cfg["model"] = {"name": "conv_energy", "channels": 8, "levels": 1, "blocks": 1}
    cfg["train"].update(steps=10, log_every=5, checkpoint_every=10)
    cfg["hybrid"].update(calibrate_rounds=1, calibrate_samples=32)
    cfg["sampler"].update(n_samples=40, steps_per_sigma=2)
    cfg["evaluate"]["metrics"] = [
        {"name": "sample_quality", "epochs": 1, "cache_dir": str(cache)},
        {"name": "bits_per_dim", "n_chains": 8, "n_temps": 10, "burn_in": 1, "max_test": 50},
    ]
    return cfg


def test_registered_through_entry_point_and_listed(capsys):
    reg = PluginRegistry()
    assert "image" in reg.plugins, reg.failures
    p = reg.get("image")
    assert {"digits", "mnist", "fashion_mnist"} <= set(p.datasets) and {"margin", "ink", "sin_sum"} <= set(p.statistics)
    assert {"sample_quality", "bits_per_dim"} <= set(p.metrics) and "image_langevin" in p.samplers
    assert p.default_config["data"]["name"] == "digits"
    assert hebm(["plugins"]) == 0
    assert "image: " in capsys.readouterr().out


def test_tiny_run_of_the_embedded_default_writes_report_samples_and_grid(tmp_path):
    rep = run(tiny(tmp_path / "cache"), tmp_path / "run")
    m = rep["metrics"]
    for key in ("delta_t/margin", "delta_t/ink", "delta_t/sin_sum", "fid", "classifier/test_accuracy_pct"):
        assert key in m
    for side in ("lower", "upper"):
        assert math.isfinite(m[f"nll/bits_per_dim_levels_{side}"])
        assert m[f"nll/bits_per_dim_levels_{side}"] == pytest.approx(m[f"nll/bits_per_dim_{side}"] + math.log2(17))
    assert m["nll/upper_bound_valid"] == 0 and m["nll/sigma"] == pytest.approx(0.02)
    assert any("bits_per_dim: NLL = " in n for n in rep["notes"])
    pixels = rep["dataset"]["pixels"]
    assert pixels["dequantization"] == "uniform" and "log2(17)" in pixels["change_of_variables"]
    assert set(rep["eta"]) == {"margin", "ink", "sin_sum"} and len(rep["eta"]["margin"]) == 4
    out = tmp_path / "run"
    with np.load(out / "samples.npz") as z:
        assert z["images"].shape == (40, 1, 8, 8) and z["levels"].max() <= 16 and int(z["n_levels"]) == 17
        assert 0 <= z["images"].min() and z["images"].max() <= 1
    assert (out / "samples.png").stat().st_size > 1000
    assert json.loads((out / "report.json").read_text())["sampling"]["samples_per_s"] > 0


class ImageGaussian(EnergyModel):
    """``N(μ, s²I)`` on ``[B, 1, 8, 8]`` images: log Z = D log s + D/2 log 2π, exactly."""

    noise_conditional = False

    def __init__(self, mean: torch.Tensor, s: float) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.s = s

    def energy(self, x, sigma=None):
        return 0.5 * (x - self.mean).flatten(1).pow(2).sum(1) / self.s**2

    def sample(self, n):
        return self.mean + self.s * torch.randn(n, *self.mean.shape[1:])


@pytest.mark.filterwarnings("ignore:bits_per_dim")
def test_bits_per_dim_brackets_the_true_nll_of_a_known_gaussian():
    """The metric's arithmetic (mean test energy, log Z, D, the log2 L offset) on a model whose NLL is exact."""
    torch.manual_seed(0)
    bundle = digits(seed=0)
    mean, s = bundle.train.mean(0, keepdim=True), 0.25
    model = ImageGaussian(mean, s)
    dim = 64
    log_z = dim * math.log(s) + 0.5 * dim * math.log(2 * math.pi)
    true_bpd = (float(model(bundle.test).mean()) + log_z) / (dim * math.log(2)) + math.log2(17)
    bundle.space.last_draw = LastDraw(model, None)
    metric = bits_per_dim([], bundle, n_chains=128, n_temps=300, burn_in=0, z=3.0)
    metric.update(model.sample(256))  # exact samples: the reverse side is then a real upper bound
    m = metric.compute()
    assert m["nll/bits_per_dim_levels_interval_lo"] <= true_bpd <= m["nll/bits_per_dim_levels_interval_hi"]
    assert m["nll/bits_per_dim_levels_upper"] - m["nll/bits_per_dim_levels_lower"] < 0.02
    assert m["nll/sigma"] == 0 and m["nll/n_test"] == len(bundle.test)


def test_bits_per_dim_without_the_image_sampler_is_one_line(tmp_path):
    cfg = tiny(tmp_path / "cache")
    cfg["sampler"]["name"] = "annealed_langevin"
    cfg["evaluate"]["metrics"] = [{"name": "bits_per_dim", "n_chains": 4, "n_temps": 4}]
    cfg["train"]["steps"] = 2
    cfg["statistics"] = []
    with pytest.raises(Exception, match="use \\[sampler\\] name = 'image_langevin'") as err:
        run(cfg, tmp_path / "run")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["digits_cpu.toml", "mnist_cpu.toml", "fashion_mnist_cpu.toml", "mnist_gpu.toml"])
def test_shipped_configs_build_with_the_hybrid_and_its_metrics(name, tmp_path):
    """Every option of the shipped configs is accepted; the IDX ones read a hand-made folder here."""
    from _imgutil import write_dataset

    cfg = load_toml(CONFIGS / name)
    if cfg["data"]["name"] != "digits":
        assert not cfg["data"]["root"].startswith(("/", ".."))  # a folder of the user's, not this machine's copy
        write_dataset(tmp_path, n_train=40, n_test=10)
        cfg["data"].update(root=str(tmp_path))
        side = 28
        x = np.zeros((40, side, side), np.uint8)
        from hebm_image.idx import write_idx

        write_idx(tmp_path / FILES["train"][0], x)
        write_idx(tmp_path / FILES["test"][0], x[:10])
    cfg["train"]["device"] = "cpu"
    exp = build(resolve_config(overrides=cfg))
    assert [s.name for s in exp.statistics] == ["margin", "ink", "sin_sum"] and exp.config.train.eta_lr == 0
    SamplingPlan.build(exp)
    assert [type(m).__name__ for m in build_metrics(exp)] == ["StatisticGap", "SampleQuality", "BitsPerDim"]


@pytest.mark.skipif(not (MNIST / FILES["test"][0]).exists(), reason="no shared MNIST copy at ../shared/data/mnist")
def test_mnist_config_reads_the_root_given(tmp_path, monkeypatch, capsys):
    overrides = parse_assignment(f"data.root={MNIST}") | {"train": {"device": "cpu"}}
    cfg = resolve_config(CONFIGS / "mnist_cpu.toml", overrides)
    bundle = build(cfg).bundle
    assert bundle.train.shape == (10000, 1, 28, 28) and bundle.info["source"] == str(MNIST)
    monkeypatch.chdir(tmp_path)  # the shipped root, data/mnist, is absent here: one line
    args = ["run", "--config", str(CONFIGS / "mnist_cpu.toml"), "--out", str(tmp_path / "run")]
    assert hebm(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing" in err and "data/mnist" in err


class BlurredGaussian(EnergyModel):
    """``N(μ, s²I)`` blurred by σ: ``N(μ, (s² + σ²) I)``, a noise-conditional model with exact log densities."""

    noise_conditional = True

    def __init__(self, mean: torch.Tensor, s: float) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.s = s

    def energy(self, x, sigma=None):
        var = self.s**2 + sigma.reshape(-1).to(x.dtype) ** 2
        return 0.5 * (x - self.mean).flatten(1).pow(2).sum(1) / var

    def log_prob(self, x, sigma: float) -> torch.Tensor:
        var, d = self.s**2 + sigma**2, x[0].numel()
        return -0.5 * (x - self.mean).flatten(1).pow(2).sum(1) / var - 0.5 * d * math.log(2 * math.pi * var)


def test_pf_ode_cross_check_matches_the_exact_likelihood_of_a_blurred_gaussian():
    from hebm_image.likelihood import _pf_ode

    bundle = digits(seed=0)
    model = BlurredGaussian(bundle.train.mean(0, keepdim=True).double(), 0.25)
    x = bundle.test[:32].double()
    exact = float(-model.log_prob(x, 0.02).mean()) / (64 * math.log(2)) + math.log2(17)
    got = _pf_ode(model, x, 0.02, 50.0, 60, math.log2(17), seed=0)
    assert got["nll/pf_ode_bits_per_dim_levels"] == pytest.approx(exact, abs=0.02)


@pytest.mark.filterwarnings("ignore:bits_per_dim")
def test_bits_per_dim_runs_on_images_with_blank_borders(tmp_path):
    """Blank border pixels vary only by the dequantisation noise (std ≈ 0.001): the AIS base is floored at
    2σ_min and HMC's first step follows it, so the chains do not diverge at the first step."""
    from _imgutil import tiny_images
    from hebm_image.data import mnist
    from hebm_image.idx import write_idx

    for split, n in (("train", 40), ("test", 10)):
        x, y = tiny_images(n, side=28)
        write_idx(tmp_path / FILES[split][0], x)
        write_idx(tmp_path / FILES[split][1], y)
    bundle = mnist(root=str(tmp_path))
    model = BlurredGaussian(bundle.train.mean(0, keepdim=True), 0.1)
    bundle.space.last_draw = LastDraw(model, 0.02, 1.0)
    metric = bits_per_dim([], bundle, n_chains=8, n_temps=10, burn_in=1)
    metric.update(bundle.train[:8])
    m = metric.compute()
    assert math.isfinite(m["nll/bits_per_dim_levels_lower"]) and math.isfinite(m["nll/bits_per_dim_levels_upper"])
    assert m["nll/levels_offset_bits"] == 8.0 and m["nll/sigma"] == pytest.approx(0.02)
