"""Run configuration: merge order (plugin default < file < command line) and one-line validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hebm_core import runs
from hebm_core.config import ConfigError, RunConfig, cli_overrides, merge, parse_assignment, resolve_config
from hebm_core.registry import Plugin, PluginRegistry, UnknownNameError
from hebm_core.toy import plugin as toy

DEFAULTS = {
    "statistics": ["radius"],
    "data": {"name": "rings", "n": 64, "n_test": 32, "radii": [1.0, 3.0]},
    "model": {"name": "mlp", "hidden": 8, "depth": 1},
    "objective": {"name": "dsm", "n_sigmas": 3},
    "train": {"steps": 5, "lr": 0.1, "batch_size": 16},
    "sampler": {"name": "annealed_langevin", "n_samples": 10},
}


@pytest.fixture
def registry() -> PluginRegistry:
    """A registry with one plugin ('fake': the toy factories with known defaults), no entry points."""
    reg = PluginRegistry(eps=[])
    reg.register(
        Plugin(
            name="fake",
            datasets=toy.datasets,
            models=toy.models,
            statistics=toy.statistics,
            metrics=toy.metrics,
            default_config=DEFAULTS,
        )
    )
    return reg


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def resolve(registry, tmp_path=None, text=None, **overrides):
    path = write(tmp_path, text) if text is not None else None
    return resolve_config(path, {"plugin": "fake", **overrides}, registry=registry)


def test_merge_order_plugin_default_then_file_then_cli(registry, tmp_path):
    path = write(tmp_path, "[train]\nsteps = 7\nbatch_size = 8\n[data]\nn = 20\n")
    cfg = resolve_config(path, {"plugin": "fake", **cli_overrides(steps=9)}, registry=registry)
    assert cfg.train.steps == 9  # CLI over file over plugin
    assert cfg.train.batch_size == 8  # file over plugin
    assert cfg.train.lr == 0.1  # plugin default kept
    assert cfg.train.ema_decay == 0.999  # TrainConfig default filled in
    assert cfg.data.to_dict() == {"name": "rings", "n": 20, "n_test": 32, "radii": [1.0, 3.0]}
    assert cfg.evaluate.metrics == [] and cfg.hybrid.calibrate_rounds == 0  # defaults (ΔT is always computed)
    assert list(cfg.to_dict())[:4] == ["plugin", "statistics", "data", "model"]
    # the plain form round-trips: a checkpoint's spec reads back as the same config
    assert RunConfig.from_dict(cfg.to_dict(), registry) == cfg


def test_changing_a_name_drops_the_old_factory_options(registry, tmp_path):
    cfg = resolve(registry, tmp_path, '[data]\nname = "moons"\nstd = 0.2\n')
    assert cfg.data.to_dict() == {"name": "moons", "std": 0.2}  # no 'radii' / 'n' leaking from rings
    cfg = resolve_config(None, {"plugin": "fake", **cli_overrides(dataset="moons", assignments=["data.n=9"])}, registry)
    assert cfg.data.to_dict() == {"name": "moons", "n": 9}


def test_statistics_list_is_replaced_and_empty_means_vanilla(registry, tmp_path):
    cfg = resolve(registry, tmp_path, 'statistics = ["square", {name = "sin_sum"}]\n')
    assert cfg.to_dict()["statistics"] == ["square", "sin_sum"]
    assert resolve(registry, statistics=[]).statistics == []


def test_parse_assignment_reads_toml_values():
    assert parse_assignment("train.lr=1e-3") == {"train": {"lr": 0.001}}
    assert parse_assignment("data.radii=[1, 2]") == {"data": {"radii": [1, 2]}}
    assert parse_assignment("model.name=mlp") == {"model": {"name": "mlp"}}
    assert parse_assignment("train.tensorboard=false") == {"train": {"tensorboard": False}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignment("train.lr")


def test_merge_replaces_lists_and_recurses_into_tables():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    assert merge(base, {"a": {"y": [3]}}) == {"a": {"x": 1, "y": [3]}, "b": 1}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}  # inputs untouched


@pytest.mark.parametrize(
    "text, message",
    [
        ('[data\nname = "rings"\n', r"run\.toml: malformed TOML: .*line 1"),
        ("sed = 3\n", r"run\.toml: unknown top-level key 'sed'; known: plugin, statistics, data"),
        ("data = 3\n", r"\[data\] must be a table"),
        ('[train]\nsteps = "many"\n', r"\[train\] steps must be an integer in \[0, 1e9\], got str 'many'"),
        ("[train]\nstepz = 3\n", r"\[train\] unknown key 'stepz'; known: steps, batch_size"),
        ("[train]\nlr = -1.0\n", r"\[train\] lr must be a number in \(0, 1000\], got float -1.0"),
        ("[sampler]\nn_samples = 0\n", r"\[sampler\] n_samples must be a positive integer"),
        ("statistics = 3\n", r"statistics must be a list"),
        ('statistics = ["radius", "radius"]\n', r"statistic 'radius' is listed twice"),
        ("[evaluate]\nmetric = []\n", r"\[evaluate\] unknown key 'metric'; known: metrics, statistics"),
        ("[model]\nname = 3\n", r"\[model\] needs a string 'name', got 3"),
        ('[train]\ndevice = "tpu:7"\n', r"\[train\] unknown device 'tpu:7'"),
        ("[hybrid]\nsigma_pow = 2\n", r"\[hybrid\] unknown key 'sigma_pow'; known: sigma_power"),
        ("[hybrid]\nsigma_power = -1\n", r"\[hybrid\] sigma_power must be a number >= 0"),
        ("[hybrid]\ncalibrate_rounds = 1.5\n", r"\[hybrid\] calibrate_rounds must be an integer"),
        ('[hybrid]\ndenoised = "yes"\n', r"\[hybrid\] denoised must be true or false, got 'yes'"),
    ],
)
def test_validation_errors_are_one_clear_line(registry, tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve(registry, tmp_path, text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[data]\nname = "spiral"\n', "unknown dataset 'spiral' in plugin 'fake'; known: checkerboard, gaussian"),
        ('[objective]\nname = "dsn"\n', "unknown objective 'dsn'; known: cd, dsm, esm, nce, pcd, recovery, ssm"),
        ('[sampler]\nname = "gibbs"\n', "unknown sampler 'gibbs'; known: annealed_langevin, edg, hmc, langevin, mala"),
        ('statistics = ["curvature"]\n', "unknown statistic 'curvature' in plugin 'fake'; known: identity, radius"),
        ('[evaluate]\nmetrics = ["fid"]\n', "unknown metric 'fid' in plugin 'fake'; known: delta_t, mmd"),
    ],
)
def test_unknown_names_list_the_known_ones(registry, tmp_path, text, message):
    with pytest.raises(UnknownNameError) as info:
        resolve(registry, tmp_path, text)
    assert str(info.value).startswith(message)


def test_unknown_plugin(registry):
    with pytest.raises(UnknownNameError, match="unknown plugin 'nope'; known: fake"):
        resolve_config(None, {"plugin": "nope"}, registry=registry)


def test_missing_config_file(registry, tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        resolve_config(tmp_path / "absent.toml", {"plugin": "fake"}, registry=registry)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[objective]\nfoo = 1\n", r"bad option for objective 'dsm': unexpected 'foo'; accepted: n_sigmas, sigma_max"),
        ("[objective]\nsigma_min = 2.0\n", r"bad option for objective 'dsm': need sigma_max >= sigma_min"),
        ("[model]\nwidth = 3\n", r"bad option for model 'mlp': unexpected 'width'; accepted: depth, hidden"),
        ("[data]\nradii = []\n", r"bad option for dataset 'rings': rings: radii must be a non-empty list"),
        ('statistics = [{name = "radius", p = 2}]\n', r"bad option for statistic 'radius': unexpected 'p'"),
    ],
)
def test_bad_factory_options(registry, tmp_path, text, message):
    cfg = resolve(registry, tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        runs.build(cfg, registry)


def test_build_noise_conditional_follows_the_objective(registry):
    dsm = runs.build(resolve(registry), registry)
    assert dsm.model.noise_conditional and dsm.model.eta_report() == {"radius": 0.0}
    ssm = runs.build(resolve(registry, objective={"name": "ssm"}, statistics=[]), registry)
    assert not ssm.model.noise_conditional
    assert [s.name for s in ssm.eval_statistics] == ["radius"]  # plugin default statistic still evaluated


def test_hybrid_sigma_power_refers_to_the_smallest_training_sigma(registry):
    comps = runs.build(resolve(registry, hybrid={"sigma_power": 2}), registry)
    assert comps.model.sigma_power == 2.0
    assert comps.model.sigma_ref == pytest.approx(float(comps.objective.sigmas.min()))
    assert runs.build(resolve(registry), registry).model.sigma_power == 0.0


def test_hybrid_denoised_reaches_the_model(registry):
    assert runs.build(resolve(registry, hybrid={"denoised": True}), registry).model.denoised
    assert not runs.build(resolve(registry), registry).model.denoised
    with pytest.raises(ConfigError, match="denoised = true needs a noise-conditional model"):
        runs.build(resolve(registry, objective={"name": "ssm"}, hybrid={"denoised": True}), registry)


def test_a_statistic_entry_sets_its_own_sigma_power(registry):
    one = [{"name": "radius", "sigma_power": 1}]
    comps = runs.build(resolve(registry, statistics=one, hybrid={"sigma_power": 2}), registry)
    assert comps.model.sigma_power == 2.0 and comps.model.sigma_powers == {"radius": 1.0}
    # the σ reference is the smallest training σ even when only a statistic scales its term
    comps = runs.build(resolve(registry, statistics=one), registry)
    assert comps.model.sigma_power == 0.0 and comps.model.sigma_powers == {"radius": 1.0}
    assert comps.model.sigma_ref == pytest.approx(float(comps.objective.sigmas.min()))
    assert [s.name for s in comps.eval_statistics] == ["radius"]
    with pytest.raises(ConfigError, match=r"statistic 'radius': sigma_power must be a number >= 0, got -1"):
        runs.build(resolve(registry, statistics=[{"name": "radius", "sigma_power": -1}]), registry)
    with pytest.raises(ConfigError, match="sigma_power scales a hybrid term; give it in the top-level statistics"):
        runs.build(resolve(registry, evaluate={"statistics": [{"name": "radius", "sigma_power": 1}]}), registry)


def test_a_report_config_reads_back_through_json(registry):
    """What report.json stores (strict JSON: no inf) is a config RunConfig.from_dict accepts as the same run."""
    import json

    from hebm_core.runs.report import jsonable

    cfg = resolve(registry, hybrid={"calibrate_max_kl": float("inf"), "calibrate_rounds": 2})
    assert cfg.hybrid.calibrate_max_kl is None  # TOML's inf means no bound, stored as null
    text = json.dumps(jsonable(cfg.to_dict()), allow_nan=False)
    assert RunConfig.from_dict(json.loads(text), registry) == cfg


def test_toml_value_is_read_back_by_set_and_by_a_config_file():
    """What select-statistics prints (``statistics = …``) must paste into a config or a --set."""
    import tomllib

    from hebm_core.config import parse_assignment, toml_value

    value = [{"name": "valency", "components": ["excess", "bonds"]}, "elements", {"name": "a b", "t": {"N": 2.0}}]
    value.append({"name": "x", "flag": True, "n": 3, "big": 1e300, "tiny": -2.5e-12, "quote": 'say "hi"\n'})
    text = toml_value(value)
    assert parse_assignment(f"statistics={text}")["statistics"] == value
    assert tomllib.loads(f"statistics = {text}")["statistics"] == value
