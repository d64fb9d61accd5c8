"""Shared helpers for the point-cloud plugin's tests: the shared data's paths and the benchmark scripts."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PLUGIN = Path(__file__).resolve().parents[1]
#: the test machines' data (``../shared/data`` next to the repository); tests pass it explicitly
SHARED = PLUGIN.parents[2] / "shared" / "data"
SHAPENET = SHARED / "shapenet"
ONET = SHAPENET / "onet_pointcloud"
CONFIGS = PLUGIN / "configs"


def load_benchmark(name: str) -> ModuleType:
    """The script ``plugins/hebm-pointcloud/benchmarks/<name>.py`` as a module (benchmarks/ is not a package)."""
    path = PLUGIN / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pc_benchmark_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
