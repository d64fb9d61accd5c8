"""IDX files: a round trip on hand-made files, and every malformed file is one clear one-line error."""

import gzip
import struct

import numpy as np
import pytest
from hebm_image.idx import IMAGES_MAGIC, LABELS_MAGIC, IDXError, read_idx, write_idx


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
def test_round_trip_keeps_values_shape_and_dtype(tmp_path, name, dtype):
    rng = np.random.default_rng(0)
    a = (rng.normal(size=(3, 4, 5)) * 50).astype(np.dtype(dtype).newbyteorder("="))
    path = write_idx(tmp_path / name, a)
    b, digests = read_idx(path)
    assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)
    assert len(digests["sha256"]) == 64 and len(digests["payload_sha256"]) == 64


def test_header_is_the_documented_big_endian_layout_and_magic_numbers(tmp_path):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = write_idx(tmp_path / "x.idx", x).read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 3]) and struct.unpack(">HBB", raw[:4]) == (0, 8, 3)
    assert struct.unpack(">3I", raw[4:16]) == (2, 3, 4) and raw[16:] == x.tobytes()
    assert read_idx(tmp_path / "x.idx", magic=IMAGES_MAGIC)[0].shape == (2, 3, 4)
    write_idx(tmp_path / "y.idx", np.arange(5, dtype=np.uint8))
    assert read_idx(tmp_path / "y.idx", magic=LABELS_MAGIC)[0].tolist() == [0, 1, 2, 3, 4]


def test_payload_digest_ignores_the_compression_file_digest_does_not(tmp_path):
    x = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    plain = write_idx(tmp_path / "x.idx", x)
    packed = tmp_path / "x.idx.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=1, mtime=0))
    (_, d1), (_, d2) = read_idx(plain), read_idx(packed)
    assert d1["payload_sha256"] == d2["payload_sha256"] and d1["sha256"] != d2["sha256"]


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return struct.pack(">HBB", 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


BAD = {
    "bad magic": (b"\x12\x34\x08\x03" + bytes(12), "bad magic number"),
    "unknown type": (struct.pack(">HBB", 0, 0x07, 3) + bytes(12), "bad magic number"),
    "short file": (b"\x00\x00", "truncated"),
    "truncated dims": (struct.pack(">HBB", 0, 8, 3) + bytes(4), "truncated"),
    "truncated data": (_header(8, (2, 3, 4)) + bytes(10), "truncated"),
    "trailing bytes": (_header(8, (2, 2)) + bytes(5), "trailing bytes"),
    "zero dimension": (_header(8, (0, 28, 28)), "is 0"),
    "huge claim": (_header(8, (60000, 4096, 4096)), "over"),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("compressed", [False, True])
def test_malformed_files_are_one_line_idx_errors(tmp_path, case, compressed):
    raw, words = BAD[case]
    path = tmp_path / ("f.gz" if compressed else "f")
    path.write_bytes(gzip.compress(raw) if compressed else raw)
    with pytest.raises(IDXError) as err:
        read_idx(path)
    msg = str(err.value)
    assert words in msg and str(path) in msg and "\n" not in msg


def test_wrong_dims_and_magic_are_refused(tmp_path):
    labels = write_idx(tmp_path / "l.idx", np.zeros(4, np.uint8))
    with pytest.raises(IDXError, match="magic number 2049, expected 2051"):
        read_idx(labels, magic=IMAGES_MAGIC)
    with pytest.raises(IDXError, match="1 dimensions, expected 3"):
        read_idx(labels, ndim=3)


def test_broken_gzip_stream_and_missing_file(tmp_path):
    good = gzip.compress(_header(8, (4, 4)) + bytes(16))
    (tmp_path / "broken.gz").write_bytes(good[:-12])
    with pytest.raises(IDXError, match="broken gzip stream|truncated"):
        read_idx(tmp_path / "broken.gz")
    with pytest.raises(IDXError, match="no such file"):
        read_idx(tmp_path / "absent.gz")
    with pytest.raises(IDXError, match="not a file"):
        read_idx(tmp_path)
