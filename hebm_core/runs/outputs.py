"""Output folders: checked before any work, and written as one unit.

- :func:`prepare_out_dir` refuses a folder that is a file, lies under a file or cannot be written,
  before anything is trained or loaded (and before anything is created), and removes what killed
  runs left behind (temporary files of atomic writes, staging folders).
- :class:`Staging` collects a run's outputs (samples, pictures) in a hidden folder inside the run's
  folder; :meth:`Staging.commit` removes the old report first, moves the new files in and writes the
  report last, so the report (the manifest) names files that all belong to it.
- :func:`replace_folder` writes a folder that holds only outputs (``hebm sample``'s) beside it and
  swaps it in, so a killed command leaves the old folder or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hebm_core.config import ConfigError
from hebm_core.runs.report import write_json

__all__ = ["prepare_out_dir", "Staging", "replace_folder"]

_STAGING = ".staging-"


def _stale(folder: Path) -> list[Path]:
    """Leftovers of killed writes in ``folder``: ``.<name>.*.tmp`` files and staging folders."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(".") and (p.name.endswith(".tmp") or _STAGING in p.name)]


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder``: the only test of writability that also holds for root."""
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(b"0")
    Path(probe).unlink(missing_ok=True)


def prepare_out_dir(path: str | Path) -> Path:
    """Check that ``path`` is, or can become, a writable folder (nothing is created yet) and clean it
    of stale temporary files; one :class:`ConfigError` line otherwise."""
    out = Path(path)
    _restore_interrupted_swap(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {str(out)!r} is a file, not a folder")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"output folder {str(out)!r} lies under {str(existing)!r}, which is a file")
    try:
        _probe(existing)
    except OSError as exc:
        raise ConfigError(f"cannot write to output folder {str(out)!r}: {exc.strerror or exc}") from None
    if int(os.environ.get("RANK", "0")) != 0 or not out.is_dir():  # under torchrun rank 0 alone tidies
        return out
    siblings = [p for p in _stale(out.parent) if p.name.startswith(f".{out.name}{_STAGING}")]
    for leftover in _stale(out) + siblings:
        _remove(leftover)
    return out


def _restore_interrupted_swap(out: Path) -> None:
    """A swap killed between its two renames left the old folder aside and none in place: put it back."""
    if out.exists() or not out.parent.is_dir():
        return
    for old in out.parent.glob(f".{out.name}{_STAGING}old-*"):
        os.replace(old, out)
        return


class Staging:
    """A hidden folder in ``out_dir`` where a run's outputs are written before they land together."""

    def __init__(self, out_dir: str | Path, manifest: str = "report.json") -> None:
        self.out = Path(out_dir)
        self.manifest = manifest
        self.out.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=_STAGING, dir=self.out))

    def final(self, path: str | Path) -> str:
        """Where a file written in the staging folder will be after :meth:`commit`."""
        p = Path(path)
        return str(self.out / p.relative_to(self.dir)) if p.is_relative_to(self.dir) else str(p)

    def commit(self, report: Mapping[str, Any]) -> Path:
        """Old report out, new files in, new report last; returns the report's path."""
        manifest = self.out / self.manifest
        manifest.unlink(missing_ok=True)
        for src in sorted(self.dir.rglob("*"), key=lambda p: len(p.parts)):
            dst = self.out / src.relative_to(self.dir)
            if src.is_dir():
                dst.mkdir(exist_ok=True)
            else:
                os.replace(src, dst)
        shutil.rmtree(self.dir, ignore_errors=True)
        return write_json(manifest, report)

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _owned(folder: Path, manifest: str) -> bool:
    """Whether every file in ``folder`` is its manifest or listed in it (a folder of one command's outputs)."""
    report = folder / manifest
    try:
        listed = {Path(f).name for f in json.loads(report.read_text()).get("files", [])} | {manifest}
    except (OSError, ValueError, AttributeError):
        return False
    return all(p.name in listed or p.name.startswith(".") for p in folder.iterdir())


def replace_folder(out_dir: str | Path, manifest: str, write: Callable[[Path], Mapping[str, Any]]) -> dict[str, Any]:
    """``write(staging)`` fills a sibling staging folder (returning its report, the manifest, with
    file paths as they will be), then the staging folder replaces ``out_dir``. A folder that holds
    files of something else (a run's checkpoint) is refused rather than replaced."""
    out = prepare_out_dir(out_dir)
    if out.is_dir() and any(out.iterdir()) and not _owned(out, manifest):
        raise ConfigError(
            f"output folder {str(out)!r} holds files that are not outputs of a previous {manifest} "
            "(a run's checkpoint?): give this command its own --out"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}{_STAGING}", dir=out.parent))
    old = stage.with_name(f".{out.name}{_STAGING}old-{stage.name[-8:]}")
    try:
        report = dict(write(stage))
        write_json(stage / manifest, report)
        if out.exists():
            os.replace(out, old)
        os.replace(stage, out)
    except BaseException:
        _remove(stage)
        raise
    _remove(old)
    return report
