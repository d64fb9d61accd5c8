"""Plugins are found through real ``hebm.plugins`` entry points; a broken one is reported, not fatal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from hebm_core import registry as registry_module
from hebm_core.cli import main
from hebm_core.data import DataBundle
from hebm_core.registry import Plugin, PluginRegistry, UnknownNameError

PLUGIN_SOURCE = '''
"""A test-only plugin: a 1-D Gaussian dataset and a learnable Gaussian energy; no picture, no extra metrics."""
import torch

from hebm_core.data import DataBundle
from hebm_core.models import GaussianEnergy
from hebm_core.registry import Plugin
from hebm_core.statistics import square


def shifted(n=256, mean=2.0):
    g = torch.Generator().manual_seed(0)
    return DataBundle(train=mean + torch.randn(n, 1, generator=g), info={"name": "shifted", "mean": mean})


def gauss(example):
    return GaussianEnergy(dim=example.shape[1], learnable=True)


plugin = Plugin(
    name="testplug",
    description="test-only plugin",
    datasets={"shifted": shifted},
    models={"gauss": gauss},
    statistics={"square": lambda: square},
    default_config={
        "statistics": ["square"],
        "data": {"name": "shifted"},
        "model": {"name": "gauss"},
        "objective": {"name": "ssm"},
        "train": {"steps": 3, "batch_size": 64, "tensorboard": False, "device": "cpu"},
        "sampler": {"name": "langevin", "n_samples": 32, "n_steps": 5},
    },
)
'''


@pytest.fixture
def plugin_path(tmp_path, monkeypatch) -> Path:
    """A folder with two packages and one distribution whose entry points name both (one is broken)."""
    root = tmp_path / "site"
    (root / "hebm_testplug").mkdir(parents=True)
    (root / "hebm_testplug" / "__init__.py").write_text(PLUGIN_SOURCE)
    (root / "hebm_brokenplug").mkdir()
    (root / "hebm_brokenplug" / "__init__.py").write_text('raise ImportError("needs libfrobnicate")\n')
    (root / "hebm_exitplug").mkdir()
    (root / "hebm_exitplug" / "__init__.py").write_text("import sys\nsys.exit(3)\n")
    dist = root / "hebm_testplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hebm-testplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [hebm.plugins]
            testplug = hebm_testplug:plugin
            broken = hebm_brokenplug:plugin
            exits = hebm_exitplug:plugin
            """
        )
    )
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(registry_module, "_REGISTRY", None)  # the CLI's cached registry must re-read entry points
    yield root
    for mod in ("hebm_testplug", "hebm_brokenplug", "hebm_exitplug"):
        sys.modules.pop(mod, None)


def test_entry_points_are_discovered_with_toy(plugin_path):
    reg = PluginRegistry()
    assert {"toy", "testplug"} <= set(reg.plugins)
    plug = reg.get("testplug")
    assert isinstance(plug, Plugin) and plug.summary()["datasets"] == ["shifted"]
    bundle = plug.datasets["shifted"](n=8)
    assert isinstance(bundle, DataBundle) and bundle.train.shape == (8, 1)


def test_broken_entry_point_is_reported_and_the_others_work(plugin_path):
    reg = PluginRegistry()
    assert set(reg.failures) == {"broken", "exits"}
    assert reg.failures["exits"].startswith("SystemExit: 3")  # sys.exit at import is a failure like any other
    assert reg.failures["broken"].startswith("ImportError: needs libfrobnicate")
    assert "hebm_brokenplug" in reg.failures["broken"]  # where it failed
    with pytest.raises(UnknownNameError, match="plugin 'broken' is installed but failed to load: ImportError"):
        reg.get("broken")
    assert reg.get("toy").datasets["rings"](n=4, n_test=0).train.shape == (4, 2)


def test_without_the_folder_there_is_no_test_plugin():
    reg = PluginRegistry()
    assert "toy" in reg.plugins and "testplug" not in reg.plugins and "broken" not in reg.failures


def test_hebm_plugins_lists_both_in_a_subprocess(plugin_path, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(plugin_path), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "hebm_core.cli", "plugins"]
    proc = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"toy", "testplug"} <= set(data["plugins"])
    assert data["plugins"]["testplug"]["models"] == ["gauss"]
    assert data["failures"]["broken"].startswith("ImportError: needs libfrobnicate")
    assert data["failures"]["exits"].startswith("SystemExit: 3")
    run = subprocess.run([*cmd[:-1], "run", "--plugin", "exits"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 2 and run.stderr.startswith("hebm: error: plugin 'exits' is installed but failed to load")

    text = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "testplug: test-only plugin" in text.stdout
    assert "broken: BROKEN: ImportError: needs libfrobnicate" in text.stdout
    assert "  datasets:    checkerboard, gaussian, gaussian_mixture, moons, rings" in text.stdout


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_a_plugin_runs_through_the_generic_pipeline(plugin_path, tmp_path, capsys, one_thread):
    """No write_samples, no metrics, no annealed sampler: the pipeline's defaults take over."""
    rc = main(["run", "--plugin", "testplug", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["config"]["plugin"] == "testplug" and rep["config"]["objective"]["name"] == "ssm"
    assert set(rep["eta"]) == {"square"} and set(rep["delta_t"]) == {"square"}
    assert rep["sampling"]["sigma"] is None and rep["sampling"]["init_sigma"] == 1.0
    assert torch.load(tmp_path / "samples.pt").shape == (32, 1)
    assert rep["dataset"]["mean"] == 2.0
