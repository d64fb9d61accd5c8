"""IDX files (LeCun's MNIST format), plain or gzip-compressed: read with every header claim checked, and write.

Layout: a big-endian 4-byte magic ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32 dimensions, then
the payload in C order. MNIST images are magic 2051 (``0x0803``: unsigned bytes, 3 dimensions) and
labels 2049 (``0x0801``: unsigned bytes, 1 dimension). A file that does not hold what its header
says (bad magic, wrong number of dimensions, a zero dimension, a header claiming more bytes than the
file holds, trailing bytes, a broken gzip stream) is one :class:`IDXError` (a ``ValueError``) naming the
file and the reason. The payload is read only up to the size the header declares, and that size is
bounded (``max_bytes``) before anything is allocated, so a forged header cannot exhaust memory.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = ["IDXError", "read_idx", "write_idx", "MAX_IDX_BYTES", "IMAGES_MAGIC", "LABELS_MAGIC"]

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
#: the largest payload accepted (MNIST's training images are 47 MB)
MAX_IDX_BYTES = 1 << 30
#: IDX type codes -> numpy big-endian dtypes
_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}  # fmt: skip
_CODES = {v.newbyteorder("="): k for k, v in _TYPES.items()}


class IDXError(ValueError):
    """A malformed IDX file; ``str()`` is one line naming the file and the reason."""


def _open(path: Path) -> tuple[BinaryIO, bool]:
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, closed there
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb"), True
    return raw, False


def _read_exact(f: BinaryIO, n: int, path: Path, what: str) -> bytes:
    chunks, got = [], 0
    while got < n:
        block = f.read(min(n - got, 1 << 24))
        if not block:
            break
        chunks.append(block)
        got += len(block)
    data = b"".join(chunks)
    if len(data) < n:
        raise IDXError(f"{path}: truncated: the header claims {n} bytes of {what}, the file holds {len(data)}")
    return data


def read_idx(
    path: str | Path,
    magic: int | None = None,
    ndim: int | None = None,
    max_bytes: int = MAX_IDX_BYTES,
) -> tuple[np.ndarray, dict[str, str]]:
    """The array of an IDX file (``.gz`` recognised by its content) and its digests.

    ``magic`` (e.g. :data:`IMAGES_MAGIC`) or ``ndim`` check what the file must be. Returns the array in
    native byte order and ``{"sha256": <of the file as stored>, "payload_sha256": <of the decompressed
    bytes>}``; the second digest does not change when a file is recompressed.
    """
    path = Path(path)
    if not path.is_file():
        raise IDXError(f"{path}: not a file" if path.exists() else f"{path}: no such file")
    try:
        f, gz = _open(path)
    except OSError as exc:
        raise IDXError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    payload = hashlib.sha256()
    try:
        with f:
            head = f.read(4)
            if len(head) < 4:
                raise IDXError(f"{path}: truncated: {len(head)} bytes, shorter than an IDX magic number")
            zero, code, nd = struct.unpack(">HBB", head)
            found = (code << 8) | nd
            if zero != 0 or code not in _TYPES or nd == 0:
                raise IDXError(f"{path}: bad magic number 0x{int.from_bytes(head, 'big'):08x}: not an IDX file")
            if magic is not None and found != magic:
                raise IDXError(f"{path}: magic number {found}, expected {magic}")
            if ndim is not None and nd != ndim:
                raise IDXError(f"{path}: {nd} dimensions, expected {ndim}")
            dims_raw = _read_exact(f, 4 * nd, path, "dimensions")
            dims = struct.unpack(f">{nd}I", dims_raw)
            if any(d == 0 for d in dims):
                raise IDXError(f"{path}: a dimension is 0 ({'x'.join(map(str, dims))}): the file holds no data")
            dtype = _TYPES[code]
            size = int(np.prod(dims, dtype=object)) * dtype.itemsize
            if size > max_bytes:
                raise IDXError(f"{path}: the header claims {size} bytes ({'x'.join(map(str, dims))}), over {max_bytes}")
            body = _read_exact(f, size, path, "data")
            if f.read(1):
                raise IDXError(f"{path}: trailing bytes after the {size} bytes of data the header declares")
    except IDXError:
        raise
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        kind = "broken gzip stream" if gz else "read error"
        raise IDXError(f"{path}: {kind}: {exc}") from None
    for part in (head, dims_raw, body):
        payload.update(part)
    array = np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=True)
    file_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return array, {"sha256": file_sha, "payload_sha256": payload.hexdigest()}


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip when ``compress``, default: the name ends in ``.gz``; mtime 0)."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: cannot store a {array.dtype} array of {array.ndim} dimensions as IDX")
    big = array.astype(_TYPES[code], copy=False)
    data = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + big.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
