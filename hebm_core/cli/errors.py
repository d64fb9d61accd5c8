"""How the CLI reports failures: user errors as one line `hebm: error: …` (exit 2), warnings as `hebm: warning: …`."""

from __future__ import annotations

import sys

from hebm_core.calibration import CalibrationError
from hebm_core.checkpoint import CheckpointError
from hebm_core.config import ConfigError
from hebm_core.registry import UnknownNameError
from hebm_core.samplers import SamplerDivergenceError, SamplerStuckError
from hebm_core.training import TrainingDivergedError

__all__ = ["USER_ERRORS", "user_errors", "os_error", "show_warning"]

#: errors shown as one line and exit status 2
USER_ERRORS = (
    ConfigError,
    UnknownNameError,
    CheckpointError,
    SamplerDivergenceError,
    SamplerStuckError,
    TrainingDivergedError,
    CalibrationError,
    FileNotFoundError,
)


def user_errors() -> tuple[type[BaseException], ...]:
    from hebm_core.runs.sampling import RunawayError

    return (*USER_ERRORS, RunawayError)


def os_error(exc: OSError) -> str:
    """An OS error (a full disk, a read-only or missing folder, a file where a folder should be) as one line."""
    where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot read or write{where}: {reason}"


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line ``hebm: warning: …`` (not Python's file:line and source echo)."""
    print(f"hebm: warning: {' '.join(str(message).split())}", file=file or sys.stderr, flush=True)
