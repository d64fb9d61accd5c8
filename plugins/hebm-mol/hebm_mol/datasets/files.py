"""Defensive reading of users' files.

A raw file is checked before anything is allocated for it (a regular file, its size under a limit),
then decoded as text: a UTF-8 byte-order mark is dropped, UTF-16/32 files with a BOM are decoded as
such, compressed or binary content, NUL bytes and invalid UTF-8 are refused with the file, the place
and the reason. Every problem is a one-line ``ValueError`` (the core shows it as ``hebm: error: …``).
"""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path

__all__ = [
    "MAX_TEXT_BYTES",
    "MAX_SPLIT_BYTES",
    "MAX_ROWS",
    "MAX_GRAPH_BYTES",
    "check_raw_file",
    "read_text",
    "human_bytes",
    "iter_lines",
]

#: largest SMILES / CSV file read (ChEMBL's 2.4M SMILES with ids is ~200 MB)
MAX_TEXT_BYTES = 1 << 30
#: largest split file read (QM9's ``valid_idx_qm9.json`` is 130 kB)
MAX_SPLIT_BYTES = 64 << 20
#: most data rows in one file
MAX_ROWS = 5_000_000
#: most memory the dense graphs of one dataset may need (uint8 store plus float32 train/test copies)
MAX_GRAPH_BYTES = 16 << 30

_MAGIC = {
    b"\x1f\x8b": "gzip-compressed",
    b"BZh": "bzip2-compressed",  # checked with its block magic below
    b"\xfd7zXZ\x00": "xz-compressed",
    b"PK\x03\x04": "a zip archive (an .xlsx workbook?)",
    b"\x28\xb5\x2f\xfd": "zstd-compressed",
}
_BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def check_raw_file(path: Path, limit: int, what: str = "file") -> int:
    """The size of ``path`` once it is known to be a regular file of at most ``limit`` bytes."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path}: not a regular file (a device, pipe or socket cannot be a {what})")
    if st.st_size > limit:
        raise ValueError(f"{path}: {human_bytes(st.st_size)} is over the {human_bytes(limit)} limit for a {what}")
    return int(st.st_size)


def _where(text: bytes, pos: int) -> str:
    line = text.count(b"\n", 0, pos) + 1
    col = pos - (text.rfind(b"\n", 0, pos) + 1) + 1
    return f"line {line}, column {col}"


def read_text(path: str | Path, limit: int = MAX_TEXT_BYTES, what: str = "file") -> str:
    """The text of ``path`` (checked with :func:`check_raw_file` first), decoded as described above."""
    path = Path(path)
    check_raw_file(path, limit, what)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(data) > limit:  # the file grew since it was checked
        raise ValueError(f"{path}: over the {human_bytes(limit)} limit for a {what}")
    for magic, kind in _MAGIC.items():
        if data.startswith(magic) and (magic != b"BZh" or data[4:10] == b"1AY&SY"):
            raise ValueError(f"{path}: is {kind}, not a text {what}; extract it first")
    encoding = "utf-8"
    for bom, enc in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom) :], enc
            break
    if encoding == "utf-8":
        nul = data.find(b"\x00")
        if nul >= 0:
            raise ValueError(f"{path}: contains a NUL byte at {_where(data, nul)}; not a text {what}")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding == "utf-8":
            raise ValueError(
                f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at {_where(data, exc.start)}); save it as UTF-8"
            ) from None
        raise ValueError(f"{path}: not valid {encoding.upper()} text despite its byte-order mark") from None
    if "\x00" in text:
        raise ValueError(f"{path}: contains a NUL character; not a text {what}")
    return text


def iter_lines(text: str):
    """The lines of ``text`` with their ``\\n`` kept (for ``csv.reader``), without copying the whole text;
    ``\\r\\n`` and old-Mac ``\\r`` line ends (alone or mixed with ``\\n``) are read as ``\\n``."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    start, n = 0, len(text)
    while start < n:
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1
