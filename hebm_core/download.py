"""Files from the network for dataset loaders: an atomic, sha256-checked download and a cache folder."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["DownloadError", "download_file", "sha256_of", "default_cache_dir"]


class DownloadError(RuntimeError):
    """A download failed or its content does not have the expected sha256; ``str()`` is one line."""


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """The sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$HEBM_CACHE`` or ``$XDG_CACHE_HOME/hebm`` (``~/.cache/hebm``)."""
    if os.environ.get("HEBM_CACHE"):
        return Path(os.environ["HEBM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hebm"


def download_file(url: str, dest: str | Path, sha256: str | None, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` atomically (a temp file renamed into place); with ``sha256`` the
    content must match or nothing is kept. Any failure is one :class:`DownloadError`."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while block := resp.read(1 << 20):
                h.update(block)
                out.write(block)
        if sha256 is not None and h.hexdigest() != sha256:
            raise DownloadError(f"{url}: sha256 {h.hexdigest()} does not match the expected {sha256}")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:  # ValueError: a malformed URL
        raise DownloadError(f"cannot download {url}: {exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest
