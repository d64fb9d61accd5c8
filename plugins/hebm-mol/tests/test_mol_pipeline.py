"""The mol plugin end to end through the ``hebm`` command: train, sample, quantise, evaluate, write."""

import json

import pytest
from _molutil import CONFIGS, QM9_DIR
from rdkit import Chem

from hebm_core.cli import main
from hebm_core.config import Factory, load_toml, resolve_config
from hebm_core.registry import PluginRegistry
from hebm_core.runs import SamplingPlan, build, build_metrics

TINY = [
    "--plugin",
    "mol",
    "--steps",
    "30",
    "--n",
    "24",
    "--set",
    "train.batch_size=32",
    "--set",
    "train.log_every=10",
    "--set",
    "objective.n_sigmas=4",
    "--set",
    "sampler.steps_per_sigma=3",
    "--set",
    "sampler.batch_size=16",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mol") / "run"
    assert main(["run", "--out", str(out), *TINY]) == 0
    return out


def test_plugin_is_registered_through_its_entry_point():
    reg = PluginRegistry()
    assert "mol" in reg.plugins and "mol" not in reg.failures
    summary = reg.get("mol").summary()
    assert {"qm9", "smiles", "nci"} <= set(summary["datasets"]) and summary["statistics"] == [
        "bond_orders",
        "charge",
        "elements",
        "fragments",
        "rings",
        "valency",
    ]
    assert summary["pretrained"] == ["qm9"]


def test_run_reports_gdss_metrics_eta_and_timing(run_dir):
    rep = json.loads((run_dir / "report.json").read_text())
    m = rep["metrics"]
    assert m["n_generated"] == 24 and 0.0 <= m["validity"] <= 1.0 and m["corrected/validity"] >= m["validity"]
    for key in ("uniqueness", "novelty", "nspdk_mmd", "fcd", "delta_t/valency", "validity_connected"):
        assert key in m
    assert "GDSS" in rep["dataset"]["metrics_protocol"] and rep["dataset"]["n_molecules"] == 431
    assert set(rep["eta"]) == {"valency"} and rep["sampling"]["samples_per_s"] > 0
    # ΔT is measured on the quantised molecules: it is a count of over-valent bond orders, data has none
    assert m["data_t/valency"] == 0.0 and m["model_t/valency"] >= 0.0


def test_written_molecules_agree_with_the_metrics(run_dir):
    rep = json.loads((run_dir / "report.json").read_text())
    lines = (run_dir / "smiles.txt").read_text().splitlines()
    valid = [s for s in lines if s != "INVALID"]
    assert len(lines) == 24 and len(valid) == rep["metrics"]["n_valid"]
    sdf = [m for m in Chem.SDMolSupplier(str(run_dir / "molecules.sdf")) if m is not None]
    assert [Chem.MolToSmiles(m) for m in sdf] == valid
    if valid:
        assert (run_dir / "molecules.png").stat().st_size > 1000


@pytest.mark.parametrize("name", ["qm9_cpu.toml", "qm9_gpu.toml"])
def test_shipped_configs_build(name, tmp_path, monkeypatch):
    """Every option in the shipped QM9 configs is accepted (on the small embedded data, on the CPU)."""
    monkeypatch.setenv("HEBM_CACHE", str(tmp_path))
    path = CONFIGS / name
    shipped = load_toml(path)
    # a user's config names a data root of their own (relative to the working directory) and fetches QM9 there
    assert shipped["data"] == {"name": "qm9", "root": "data/qm9", "download": True}
    assert shipped["sampler"]["n_samples"] == 10000
    cfg = resolve_config(path, {"data": {"root": str(QM9_DIR)}, "train": {"device": "cpu"}})
    assert cfg.data == Factory("qm9", {"root": str(QM9_DIR), "download": True})
    assert cfg.sampler.n_samples == 10000 and cfg.train.device == "cpu"
    # everything but the 133k-molecule dataset is built: the embedded NCI sample stands in for it
    exp = build(cfg.replace(data=Factory("nci")))
    plan = SamplingPlan.build(exp)
    assert len(plan.sampler.sigmas) * plan.sampler.steps_per_sigma >= 400
    assert [type(m).__name__ for m in build_metrics(exp)] == ["StatisticGap", "MoleculeMetrics"]
