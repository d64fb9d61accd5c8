"""Hostile inputs through the real CLI: every case ends in exit 0 or one ``hebm: error:`` line (exit 2),
never a traceback, a hang or a non-finite number in a written report.

Cases come from seeded generators (``random.Random(seed)``), one pytest item each, with ids that say
what the case is; the generators and the case table live in the ``_pcfuzz_*`` modules beside this
file. Files are written under ``tmp_path`` in the layouts the loaders read:

- ``mesh``: ``<root>/04379243/<id>.<ext>[.gz]`` (the ``meshes`` dataset),
- ``npy``: ``<root>/03001627/{train,test}/<id>.npy`` (PC15k),
- ``npz``: ``<root>/02691156/<id>/pointcloud.npz`` (Occupancy Networks).

A hostile file is either ``mixed`` with good files (it must then be skipped and counted, or, if it
is in fact a valid file, such as a quad-only OBJ, used: exit 0 either way) or ``alone`` (a skipped
file leaves no training shape: exit 2). ``expect`` says which outcome a case must have: ``skip``
(the file is unusable), ``ok`` (it is valid), ``error`` (a bad option or folder: exit 2) or ``any``
(random damage that may or may not leave a valid file: only the harness's rules). Control cases
(valid data, every layout and format, ``hebm run`` with tiny sampling) must train, so the suite
cannot pass by refusing everything. Sized to run in about a minute on one thread: 64-point clouds,
a handful of shapes, 2 steps, an 8-wide network of depth 1, no EMD.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from _pcfuzz_cases import Case, control_cases, file_cases, folder_cases
from _pcfuzz_options import option_cases

from hebm_core.testing import run_cli

CASES = control_cases() + file_cases() + folder_cases() + option_cases()


def _param(case: Case):
    return pytest.param(case, id=case.id, marks=list(case.marks))


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pictures with matplotlib in this process, not Open3D's offscreen renderer in a subprocess (8 s each)
    monkeypatch.setattr("hebm_pointcloud.render.vulkan_available", lambda: False)
    args = case.make(tmp_path, random.Random(case.seed))
    res = run_cli(args, timeout=60)
    assert not res.problems(), (res.problems(), res.stderr[-2000:], res.stdout[-2000:])
    said = res.stdout + res.stderr
    if case.expect == "error":
        assert res.rc == 2, (res.rc, said[-2000:])
    elif case.expect in ("ok", "skip"):
        assert res.rc == 0, (res.rc, said[-2000:])
        skipped = re.search(r"dataset '\w+' skipped \d+", said) is not None
        assert skipped == (case.expect == "skip"), said[-2000:]
    if res.rc == 0:
        assert (tmp_path / "out" / "report.json").is_file()


def test_enough_cases() -> None:
    """At least 200 hostile cases (and every kind of file among them), plus controls that must train."""
    hostile = [c for c in CASES if not c.id.startswith("control-")]
    assert len(hostile) >= 200, len(hostile)
    assert sum(c.expect == "ok" for c in CASES) >= 20
    ids = " ".join(c.id for c in CASES)
    for kind in ("npy-", "npz-", "obj", "off", "ply", "stl", "gz", "lst-", "opt-data", "opt-model", "opt-statistic"):
        assert kind in ids, kind
