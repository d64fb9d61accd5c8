"""Training logs: ``metrics.csv`` (one flushed row per logged step, exact under resume) and TensorBoard."""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["MetricsLog", "tensorboard_writer"]


class MetricsLog:
    """``metrics.csv``: header from the first row (or the existing file), one flushed line per logged step."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        self._file = None
        self._writer: csv.DictWriter | None = None
        if resume_step is None:
            path.unlink(missing_ok=True)
        elif path.exists():
            self._truncate(resume_step)

    def _truncate(self, step: int) -> None:
        """Drop rows after the checkpoint's step (the resumed run writes them again) and any torn line."""
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        header, kept = rows[0], []
        for row in rows[1:]:
            try:
                ok = len(row) == len(header) and int(float(row[0])) <= step
            except ValueError:
                ok = False
            if ok:
                kept.append(row)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(kept)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def write(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            fieldnames = None
            if self.path.exists() and self.path.stat().st_size > 0:
                with open(self.path, newline="") as f:
                    fieldnames = next(csv.reader(f), None)
            new = fieldnames is None
            self._file = open(self.path, "a", newline="")  # kept open for the run; closed in close()
            self._writer = csv.DictWriter(self._file, fieldnames or list(row), extrasaction="ignore", restval="")
            if new:
                self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = self._writer = None


def tensorboard_writer(log_dir: Path, purge_step: int | None) -> Any:
    """A ``SummaryWriter`` when the ``tensorboard`` package is installed, else ``None``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # ImportError without tensorboard; anything else from a broken install
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)
