"""Run the real ``hebm`` CLI on one (hostile) input and judge the outcome.

A case passes when the command exits 0 or 2, prints no traceback, reports a failure as exactly one
``hebm: error: …`` line, finishes within its timeout, and every JSON it wrote under its ``--out``
folder holds only finite numbers (outside the echoed ``config``). Cases run in this process (a
``SIGALRM`` timer stops a hang), so a few hundred of them take minutes, not the ~2 s of interpreter
start-up each a subprocess would cost.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import signal
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CaseResult", "run_cli", "nonfinite_in_json"]


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in the code under test swallows it."""


@dataclass
class CaseResult:
    """The outcome of one CLI call."""

    argv: list[str]
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    escaped: str | None = None  # the traceback of an exception that left main()
    hung: bool = False
    reports: dict[str, list[str]] = field(default_factory=dict)  # JSON file -> its non-finite entries

    def problems(self) -> list[str]:
        """Why this case fails (empty: it passed)."""
        out = []
        if self.hung:
            out.append(f"hang: no result after {self.seconds:.0f} s")
        if self.escaped:
            out.append("traceback: " + self.escaped.strip().splitlines()[-1])
        if "Traceback (most recent call last)" in self.stderr + self.stdout:
            out.append("traceback printed")
        if self.rc not in (0, 2, None):
            out.append(f"exit status {self.rc}")
        errors = [ln for ln in self.stderr.splitlines() if ln.startswith("hebm: error:")]
        if self.rc == 2 and len(errors) != 1:
            out.append(f"exit 2 with {len(errors)} 'hebm: error:' lines")
        out += [f"non-finite in {f}: {', '.join(keys[:5])}" for f, keys in self.reports.items() if keys]
        return out


def _nonfinite(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        out.append(path)
    elif isinstance(value, str) and value.strip().lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        out.append(path)
    elif isinstance(value, dict):
        for k, v in value.items():
            if not (path == "" and k == "config"):  # the user's own input, echoed
                _nonfinite(v, f"{path}/{k}", out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _nonfinite(v, f"{path}[{i}]", out)


def nonfinite_in_json(path: str | Path) -> list[str]:
    """Keys of a JSON file that hold NaN / ±inf (as numbers or as strings); an unreadable file is one entry."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"unreadable ({type(exc).__name__})"]
    found: list[str] = []
    _nonfinite(data, "", found)
    return found


def _out_dir(argv: Sequence[str]) -> Path | None:
    for i, a in enumerate(argv):
        if a == "--out" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if a.startswith("--out="):
            return Path(a.split("=", 1)[1])
    return None


def run_cli(argv: Sequence[str], timeout: float = 60.0) -> CaseResult:
    """``hebm <argv>`` in this process, with stdout/stderr captured and a wall-clock limit."""
    from hebm_core.cli import main

    argv = [str(a) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    rc: int | None = None
    escaped, hung = None, False

    def alarm(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    except _Timeout:
        hung = True
    except BaseException:  # anything that left main() would be a traceback for the user
        escaped = traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    result = CaseResult(argv, rc, out.getvalue(), err.getvalue(), time.perf_counter() - t0, escaped, hung)
    folder = _out_dir(argv)
    if folder is not None and folder.is_dir():
        result.reports = {str(p): nonfinite_in_json(p) for p in folder.rglob("*.json")}
    return result
