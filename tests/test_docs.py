"""The documentation's code runs: the README example, and each "write a statistic" snippet fits its
domain's samples (the fit check a run does before training)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hebm_core import runs
from hebm_core.config import resolve_config
from hebm_core.config.reference import reference_table
from hebm_core.runs.build import check_fit
from hebm_core.statistics import Statistic

ROOT = Path(__file__).resolve().parents[1]


def blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_is_short_and_its_config_table_is_the_generated_one():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert reference_table() in text


def test_readme_example_runs(capsys):
    code = blocks(ROOT / "README.md")[0].replace("range(2000)", "range(20)").replace("rounds=3", "rounds=1")
    code = code.replace("torch.randn(2000, 2)", "torch.randn(200, 2)").replace("rings(n=4000)", "rings(n=500)")
    exec(compile(code, "README.md", "exec"), {})
    assert "radius" in capsys.readouterr().out


@pytest.mark.parametrize("plugin, index", [("toy", 0), ("mol", 1), ("pointcloud", 2), ("image", 3)])
def test_statistic_snippets_fit_their_domain(plugin, index):
    namespace: dict = {}
    exec(compile(blocks(ROOT / "docs" / "statistics.md")[index], "statistics.md", "exec"), namespace)
    stat = next(v for v in namespace.values() if isinstance(v, Statistic))
    overrides = {"plugin": plugin, "statistics": [], "train": {"device": "cpu"}}
    if plugin == "pointcloud":
        overrides["data"] = {"n_train": 8, "n_test": 4, "n_points": 64}
    exp = runs.build(resolve_config(overrides=overrides))
    check_fit(stat, exp.example, plugin, differentiable=True)
