"""Readers and writers: round trips, and one clear error per malformed PLY / NPY / NPZ / mesh file."""

import numpy as np
import pytest
from _pcutil import SHAPENET as SHARED
from hebm_pointcloud.io import read_mesh, read_npy, read_npz, read_point_file, write_ply


def test_ply_round_trip(tmp_path):
    pts = np.random.default_rng(0).random((100, 3)).astype(np.float32)
    path = write_ply(pts, tmp_path / "a.ply")
    assert np.allclose(read_point_file(path), pts, atol=1e-6)


def test_malformed_ply(tmp_path):
    bad = tmp_path / "bad.ply"
    bad.write_text("ply\nformat ascii 1.0\nelement vertex 3\nend_header\nnot numbers\n")
    with pytest.raises(ValueError, match=r"bad\.ply.*'vertex' has 3 rows but no properties"):
        read_point_file(bad)
    bad.write_text(
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\n"
        "end_header\na b c\nd e f\n"
    )
    with pytest.raises(ValueError, match=r"bad\.ply.*'a' is not a number"):
        read_point_file(bad)
    with pytest.raises(FileNotFoundError, match="missing.ply"):
        read_point_file(tmp_path / "missing.ply")


def test_malformed_npy(tmp_path):
    (tmp_path / "garbage.npy").write_bytes(b"definitely not numpy")
    with pytest.raises(ValueError, match=r"garbage\.npy: not a readable \.npy"):
        read_npy(tmp_path / "garbage.npy")
    np.save(tmp_path / "flat.npy", np.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"flat\.npy.*shape \(10, 2\), expected \[N, 3\]"):
        read_npy(tmp_path / "flat.npy")
    arr = np.zeros((10, 3))
    arr[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", arr)
    with pytest.raises(ValueError, match="1 non-finite"):
        read_npy(tmp_path / "nan.npy")


def test_malformed_npz(tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=r"broken\.npz: not a readable \.npz"):
        read_npz(tmp_path / "broken.npz")
    np.savez(tmp_path / "nokey.npz", normals=np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"no 'points' array.*normals"):
        read_npz(tmp_path / "nokey.npz")
    with pytest.raises(ValueError, match="unsupported point-cloud suffix"):
        read_point_file(tmp_path / "cloud.txt")


def test_shared_npz_and_gzipped_mesh():
    npz = next((SHARED / "onet_pointcloud" / "02828884").glob("*/pointcloud.npz"))
    pts = read_npz(npz)
    assert pts.shape == (100000, 3) and pts.dtype == np.float32 and np.abs(pts).max() <= 0.55
    mesh = read_mesh(next((SHARED / "meshes" / "02828884").glob("*.obj.gz")))
    assert len(mesh.triangles) > 10


def test_malformed_mesh(tmp_path):
    (tmp_path / "empty.off").write_text("OFF\n0 0 0\n")
    with pytest.raises(ValueError, match=r"empty\.off: mesh has no faces"):
        read_mesh(tmp_path / "empty.off")


def test_face_indices_no_int64_holds_are_out_of_range(tmp_path):
    """An index too large for int64 (or a non-integral one in an ascii PLY) is a BadFile, not an OverflowError."""
    tri = "v 0 0 0\nv 1 0 0\nv 0 1 0\n"
    (tmp_path / "big.obj").write_text(tri + "f 1 2 99999999999999999999999\n")
    (tmp_path / "big.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 99999999999999999999999\n")
    head = (
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        "element face 2\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"
    )
    (tmp_path / "big.ply").write_text(head + "4 0 1 2 1e30\n")
    (tmp_path / "nan.ply").write_text(head + "4 0 1 2 nan\n")
    for name, match in [
        ("big.obj", "too large for any vertex count"),
        ("big.off", "too large for any vertex count"),
        ("big.ply", "face 1's indices are not integers"),
        ("nan.ply", "face 1's indices are not integers"),
    ]:
        with pytest.raises(ValueError, match=match):
            read_mesh(tmp_path / name)
