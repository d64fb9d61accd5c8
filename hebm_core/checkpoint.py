"""Checkpoint files: atomic writes and safe (``weights_only``) reads with one-line errors.

A checkpoint is a plain dict of tensors, dicts, lists, tuples, numbers, strings and ``None``,
so it loads with ``torch.load(weights_only=True)``: opening a checkpoint never runs code from
the file. Writes go to a temporary file in the same directory that replaces the old file only
once it is complete and on disk, so a crash or a full disk mid-save keeps the previous
checkpoint intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CheckpointError",
    "FORMAT_VERSION",
    "REQUIRED_KEYS",
    "load_checkpoint",
    "nonfinite_entries",
    "payload_digest",
    "save_checkpoint",
]

#: key of the payload's own checksum (:func:`payload_digest` of everything else)
CHECKSUM_KEY = "checksum"

#: version of the payload layout; bumped when a key changes meaning
FORMAT_VERSION = 1

#: keys every hebm checkpoint has (the trainer writes more, see :class:`hebm_core.trainer.Trainer`)
REQUIRED_KEYS = ("format_version", "step", "model", "config")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or read; ``str()`` is one line naming the file and the reason."""


def one_line(err: BaseException, limit: int = 200, with_type: bool = True) -> str:
    """The first non-empty line of an exception's message, shortened: torch's messages span many lines."""
    text = str(err).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if len(line) > limit:
        line = line[: limit - 3] + "..."
    if not with_type:
        return line or type(err).__name__
    return f"{type(err).__name__}: {line}" if line else type(err).__name__


def _weights_only_detail(err: BaseException, limit: int = 200) -> str | None:
    """The actual reason inside torch's multi-paragraph "Weights only load failed" message, on one line."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker not in text:
        return None
    detail = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
    detail = " ".join(detail.split())
    if len(detail) > limit:
        detail = detail[: limit - 3] + "..."
    return detail


def _feed(h: Any, obj: Any) -> None:
    """Hash ``obj`` by structure and content: every tensor's dtype, shape and bytes, every other value's repr."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k, v in obj.items():
            h.update(repr(k).encode())
            _feed(h, v)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__[0]}{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    else:
        h.update(repr(obj).encode())


def payload_digest(payload: dict[str, Any]) -> str:
    """SHA-256 of a checkpoint payload's content (its own checksum entry left out). torch's zip
    container does not check its records' CRCs on load, so a flipped byte in a tensor would load
    silently without it."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != CHECKSUM_KEY})
    return h.hexdigest()


def nonfinite_entries(state: Any, prefix: str = "") -> list[str]:
    """Keys of floating-point tensors in a (nested) state that hold NaN or ±inf."""
    if isinstance(state, torch.Tensor):
        return [prefix] if state.is_floating_point() and not bool(torch.isfinite(state).all()) else []
    if isinstance(state, dict):
        return [k for key, v in state.items() for k in nonfinite_entries(v, f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(state, (list, tuple)):
        return [k for i, v in enumerate(state) for k in nonfinite_entries(v, f"{prefix}[{i}]")]
    return []


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (temp file in the same directory, fsync, ``os.replace``).

    ``format_version`` is added when missing. Any failure raises :class:`CheckpointError` and
    leaves both ``path`` (old content or absent) and the directory (no temp file) as they were.
    """
    path = Path(path)
    if "format_version" not in payload:
        payload = {"format_version": FORMAT_VERSION, **payload}
    payload = {**payload, CHECKSUM_KEY: payload_digest(payload)}
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as e:
        raise CheckpointError(f"could not write checkpoint '{path}': {e.strerror or one_line(e)}") from e
    except Exception as e:
        raise CheckpointError(f"could not write checkpoint '{path}' ({one_line(e)})") from e
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and check its version and keys.

    Every failure (missing, unreadable, truncated, not a checkpoint, unsafe content, newer
    format) is a :class:`CheckpointError` whose message is one line.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint '{path}' not found")
    if path.is_dir():
        raise CheckpointError(f"checkpoint '{path}' is a directory, not a checkpoint file")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        raise CheckpointError(f"checkpoint '{path}' could not be read ({one_line(e)})") from e
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        detail = _weights_only_detail(e)
        if detail is not None and "Unsupported global" in detail:
            raise CheckpointError(
                f"checkpoint '{path}' holds objects that weights_only=True refuses to load ({detail})"
            ) from e
        raise CheckpointError(f"checkpoint '{path}' is truncated or corrupted ({detail or one_line(e)})") from e
    except Exception as e:
        raise CheckpointError(f"checkpoint '{path}' is truncated or corrupted ({one_line(e)})") from e
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"checkpoint '{path}' is not a hebm checkpoint (it holds a {type(payload).__name__}, not a dict)"
        )
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"checkpoint '{path}' is not a hebm checkpoint (missing keys: {', '.join(missing)})")
    version = payload["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"checkpoint '{path}' is not a hebm checkpoint (format_version = {version!r})")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint '{path}' has format version {version}, newer than this hebm-core reads ({FORMAT_VERSION}); "
            "upgrade hebm-core"
        )
    stored = payload.get(CHECKSUM_KEY)  # checkpoints written before checksums have none
    if stored is not None and stored != payload_digest(payload):
        raise CheckpointError(f"checkpoint '{path}' is corrupted: its content does not match its checksum")
    return payload
