"""Datasets: hand-made IDX folders, the real MNIST / Fashion-MNIST when the shared copy exists, a
checksum-verified download from a loopback HTTP server, and the embedded scikit-learn digits."""

import functools
import hashlib
import http.server
import math
import threading

import numpy as np
import pytest
import torch
from _imgutil import FASHION, MNIST, write_dataset
from hebm_image.data import FILES, KNOWN, DownloadError, dequantize, digits, fashion_mnist, fetch, mnist
from hebm_image.idx import IDXError, write_idx

from hebm_core.download import download_file


def test_hand_made_folder_loads_with_labels_digests_and_the_pixel_convention(tmp_path):
    arrays = write_dataset(tmp_path)
    b = mnist(root=str(tmp_path), seed=3)
    x_train = arrays[FILES["train"][0]]
    assert b.train.shape == (30, 1, 8, 8) and b.test.shape == (10, 1, 8, 8)
    assert torch.equal(b.extras["train_labels"], torch.from_numpy(arrays[FILES["train"][1]].astype(np.int64)))
    # x = (k + u) / 256 with u in [0, 1): floor(256 x) gives the levels back exactly
    assert torch.equal((b.train[:, 0] * 256).floor().to(torch.uint8), torch.from_numpy(x_train))
    assert 0 <= float(b.train.min()) and float(b.train.max()) < 1
    pixels = b.info["pixels"]
    assert (
        pixels["levels"] == 256
        and pixels["bits_per_dim_offset"] == 8.0
        and "log2(256)" in pixels["change_of_variables"]
    )
    assert set(b.info["sha256"]) == {f for pair in FILES.values() for f in pair}
    assert set(b.info["sha256_check"].values()) == {"unknown"}  # hand-made: no canonical digest
    with pytest.raises(ValueError, match="strict_sha256"):
        mnist(root=str(tmp_path), strict_sha256=True)


def test_dequantisation_is_seeded_and_cell_centres_without_it():
    k = np.array([[[0, 255]]], np.uint8)
    a, b = dequantize(k, 256, seed=1), dequantize(k, 256, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, dequantize(k, 256, seed=2))
    assert dequantize(k, 256, 0, "none").flatten().tolist() == [0.5 / 256, 255.5 / 256]


def test_missing_files_wrong_dims_and_bad_labels_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing .*data.download"):
        mnist(root=str(tmp_path / "absent"))
    write_dataset(tmp_path)
    write_idx(tmp_path / FILES["train"][0], np.zeros((30, 8), np.uint8))  # 2-D "images"
    with pytest.raises(IDXError, match="expected 2051") as err:
        mnist(root=str(tmp_path))
    assert "\n" not in str(err.value)
    write_dataset(tmp_path)
    write_idx(tmp_path / FILES["test"][1], np.full(10, 12, np.uint8))
    with pytest.raises(IDXError, match="label 12 outside 0..9"):
        mnist(root=str(tmp_path))
    write_dataset(tmp_path)
    write_idx(tmp_path / FILES["test"][1], np.zeros(9, np.uint8))
    with pytest.raises(IDXError, match="9 labels for the 10 images"):
        mnist(root=str(tmp_path))
    with pytest.raises(ValueError, match="max_train"):
        mnist(root=str(tmp_path), max_train=0)


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server on 127.0.0.1 serving ``tmp_path / "www"``."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_download_checks_sha256_and_keeps_nothing_on_a_mismatch(server, tmp_path):
    www, url = server
    (www / "f.bin").write_bytes(b"hello idx")
    good = hashlib.sha256(b"hello idx").hexdigest()
    dest = download_file(url + "f.bin", tmp_path / "got" / "f.bin", good)
    assert dest.read_bytes() == b"hello idx"
    with pytest.raises(DownloadError, match="does not match the expected"):
        download_file(url + "f.bin", tmp_path / "bad" / "f.bin", "0" * 64)
    assert list((tmp_path / "bad").iterdir()) == []  # no partial or wrong file left behind
    with pytest.raises(DownloadError, match="cannot download"):
        download_file(url + "absent.bin", tmp_path / "bad" / "absent.bin", good)


def test_mnist_download_fetches_the_missing_files_from_the_server(server, tmp_path, monkeypatch):
    www, url = server
    arrays = write_dataset(www)
    digests = {f: hashlib.sha256((www / f).read_bytes()).hexdigest() for f in arrays}
    monkeypatch.setitem(KNOWN["mnist"], "sha256", digests)  # the server's files stand in for the canonical ones
    root = tmp_path / "data"
    got = fetch("mnist", root, base_url=url)
    assert sorted(p.name for p in got) == sorted(arrays)
    assert fetch("mnist", root, base_url=url) == []  # nothing missing, nothing fetched
    (root / FILES["test"][0]).unlink()
    b = mnist(root=str(root), download=True, base_url=url)
    assert b.test.shape == (10, 1, 8, 8) and set(b.info["sha256_check"].values()) == {"canonical"}


def test_digits_is_the_embedded_default_with_17_levels():
    b = digits(test_fraction=0.2, seed=0)
    assert b.train.shape == (1438, 1, 8, 8) and b.test.shape == (359, 1, 8, 8)
    assert b.info["pixels"]["levels"] == 17
    assert b.info["pixels"]["bits_per_dim_offset"] == pytest.approx(math.log2(17))
    assert torch.equal(torch.bincount(b.extras["test_labels"]).gt(0), torch.ones(10, dtype=torch.bool))
    with pytest.raises(ValueError, match="test_fraction"):
        digits(test_fraction=0.9)


@pytest.mark.skipif(not (MNIST / FILES["test"][0]).exists(), reason="no shared MNIST copy at ../shared/data/mnist")
def test_real_mnist_loads_with_its_known_digests():
    b = mnist(root=str(MNIST), max_train=2000, max_test=500)
    assert b.train.shape == (2000, 1, 28, 28) and b.test.shape == (500, 1, 28, 28)
    checks = b.info["sha256_check"]
    assert checks[FILES["test"][0]] == "canonical" and checks[FILES["test"][1]] == "canonical"
    assert checks[FILES["train"][0]] == "canonical"  # the rebuilt copy's payload equals the original's
    assert b.info["payload_sha256"][FILES["train"][0]] == KNOWN["mnist"]["payload_sha256"][FILES["train"][0]]
    # digits sit in the central 20x20 box: the 2-pixel frame holds almost no ink
    frame = b.train[:, 0].clone()
    frame[:, 2:-2, 2:-2] = 0
    assert float(frame.sum((1, 2)).mean()) < 0.05 * float(b.train.sum((1, 2, 3)).mean())
    assert sorted(torch.unique(b.extras["train_labels"]).tolist()) == list(range(10))


@pytest.mark.skipif(not (FASHION / FILES["test"][0]).exists(), reason="no shared copy at ../shared/data/fashion_mnist")
def test_real_fashion_mnist_loads():
    b = fashion_mnist(root=str(FASHION), max_train=1000, max_test=200)
    assert b.train.shape == (1000, 1, 28, 28) and b.info["classes"][9] == "Ankle boot"
    assert "unknown" not in b.info["sha256_check"].values()
