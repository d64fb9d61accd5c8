"""QM9 / SMILES-file datasets: GDSS split semantics, content-keyed cache, counted skips, sha256 download."""

import functools
import hashlib
import http.server
import json
import threading

import pytest
import torch
from _molutil import QM9_DIR, qm9_rows
from hebm_mol.datasets import DATASETS, QM9, SmilesFile, nci, to_bundle
from hebm_mol.datasets.base import DownloadError, download_file, sha256_of
from hebm_mol.datasets.qm9 import gdss_split
from hebm_mol.graph import QM9_SPEC
from rdkit import Chem


@pytest.fixture
def small_qm9(tmp_path):
    """The first 3,000 rows of the real qm9.csv with the real test indices that fall among them."""
    root = tmp_path / "qm9"
    root.mkdir()
    rows = qm9_rows(3000)
    (root / "qm9.csv").write_text("smiles\n" + "\n".join(rows) + "\n")
    idx = json.loads((QM9_DIR / "valid_idx_qm9.json").read_text())["valid_idxs"]
    small = [i for i in idx if int(i) < 3000]
    (root / "valid_idx_qm9.json").write_text(json.dumps({"valid_idxs": small}))
    return root, rows, sorted(int(i) for i in small)


def test_split_uses_zero_based_rows_as_gdss(small_qm9, tmp_path):
    root, rows, test_rows = small_qm9
    ds = QM9(root, cache_dir=tmp_path / "cache")
    split = ds.split_indices()
    assert len(ds) == 3000 and not ds.skipped
    assert split["test"].numel() == len(test_rows) and split["train"].numel() == 3000 - len(test_rows)
    # test molecule k is csv row test_rows[k] (0-based), canonicalised
    for k in (0, len(test_rows) // 2, len(test_rows) - 1):
        ref = Chem.MolToSmiles(Chem.MolFromSmiles(rows[test_rows[k]]))
        assert ds.smiles[int(split["test"][k])] == ref
    data = ds.get(int(split["test"][0]))  # PyG view
    assert data.num_nodes == Chem.MolFromSmiles(rows[test_rows[0]]).GetNumAtoms()


def test_the_real_split_has_the_standard_sizes():
    idx = json.loads((QM9_DIR / "valid_idx_qm9.json").read_text())["valid_idxs"]
    n_rows = len(qm9_rows())
    split = gdss_split(QM9_DIR / "valid_idx_qm9.json", n_rows)
    assert (split["test"].numel(), split["train"].numel()) == (13082, 120803) == (len(set(idx)), n_rows - 13082)


def test_cache_is_keyed_by_file_content(small_qm9, tmp_path):
    root, rows, _ = small_qm9
    first = QM9(root, cache_dir=tmp_path / "cache")
    again = QM9(root, cache_dir=tmp_path / "cache")
    assert not first.from_cache and again.from_cache and again.processed_path == first.processed_path
    with open(root / "qm9.csv", "a") as f:
        f.write("CCO\n")
    changed = QM9(root, cache_dir=tmp_path / "cache")
    assert not changed.from_cache and len(changed) == 3001 and changed.processed_path != first.processed_path
    assert changed.info()["canonical_sha256"] is False


def test_malformed_rows_are_counted_not_fatal(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("id,smiles\n1,CCO\n2,\n3,C1CC\n4,CCS\n5,CCCCCCCCCC\n6,C=O\n7\n8,CC.O\n")
    ds = SmilesFile(path, QM9_SPEC, test_fraction=0.0, cache_dir=tmp_path / "c", single_fragment=True)
    assert ds.smiles == ["CCO", "C=O"]
    assert ds.skipped == {
        "malformed row": 2,
        "unparsable": 1,
        "element not allowed": 1,
        "too many atoms": 1,
        "several fragments": 1,
    }
    assert len(ds.info()["skipped_examples"]) == 5


def test_bad_split_file_is_one_clear_error(small_qm9, tmp_path):
    root, _, _ = small_qm9
    (root / "valid_idx_qm9.json").write_text(json.dumps({"valid_idxs": ["5", "999999"]}))
    with pytest.raises(ValueError, match=r"test rows must lie in \[0, 3000\)"):
        QM9(root, cache_dir=tmp_path / "c").split_indices()


def test_missing_files_say_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing qm9.csv, valid_idx_qm9.json .*download=true"):
        QM9(tmp_path, cache_dir=tmp_path / "c")


def test_smiles_file_with_its_own_elements(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_text("# my molecules\nCCS name1\nCSC\n\nCCCl\nCCO\n")
    bundle = DATASETS["smiles"](
        str(path), atoms=["C", "O", "S"], max_atoms=4, test_fraction=0.25, cache_dir=str(tmp_path / "c")
    )
    assert bundle.info["n_molecules"] == 3 and bundle.info["skipped"] == {"element not allowed": 1}
    assert bundle.train[0].shape[1:] == (4, 3) and bundle.info["n_test"] == 1


def test_embedded_default_is_rdkit_nci(tmp_path):
    bundle = nci(cache_dir=str(tmp_path))
    assert bundle.info["n_molecules"] == 431  # single-fragment C/N/O/F molecules of <= 9 heavy atoms
    assert bundle.info["n_train"] + bundle.info["n_test"] == 431
    hist = bundle.extras["node_counts"]
    assert abs(float(hist.sum()) - 1) < 1e-9 and float(hist[9]) > 0.2
    # the subset's filters are its definition, recorded apart from skips (no note on every run)
    assert "skipped" not in bundle.info and sum(bundle.info["filtered"].values()) > 4000


def test_bundle_subsets_are_seeded_and_novelty_uses_the_whole_train_split(small_qm9, tmp_path):
    root, _, test_rows = small_qm9
    ds = QM9(root, cache_dir=tmp_path / "c")
    a, b = to_bundle(ds, max_train=100, max_test=50, seed=3), to_bundle(ds, max_train=100, max_test=50, seed=3)
    assert all(torch.equal(u, v) for u, v in zip(a.train, b.train)) and a.train[0].shape[0] == 100
    assert len(a.extras["train_smiles"]) == 3000 - len(test_rows) and len(a.extras["test_smiles"]) == 50


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over ../shared/data and a tampered copy of qm9.csv."""
    bad = tmp_path / "tampered" / "qm9"
    bad.mkdir(parents=True)
    (bad / "qm9.csv").write_bytes((QM9_DIR / "qm9.csv").read_bytes().replace(b"CCO", b"OCC", 1))
    (bad / "valid_idx_qm9.json").write_bytes((QM9_DIR / "valid_idx_qm9.json").read_bytes())
    roots = {"shared": QM9_DIR.parent, "tampered": tmp_path / "tampered"}
    servers = {}
    for name, root in roots.items():
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers[name] = (httpd, f"http://127.0.0.1:{httpd.server_address[1]}")
    yield {k: url for k, (_, url) in servers.items()}
    for httpd, _ in servers.values():
        httpd.shutdown()


def test_download_checks_sha256(server, tmp_path):
    dest = tmp_path / "dl"
    fetched = QM9.fetch(dest, base_url=f"{server['shared']}/qm9")
    assert sorted(p.name for p in fetched) == ["qm9.csv", "valid_idx_qm9.json"]
    for f, digest in QM9.sha256.items():
        assert sha256_of(dest / f) == digest
    assert QM9.fetch(dest, base_url=f"{server['shared']}/qm9") == []  # present files are not fetched again

    bad = tmp_path / "bad"
    with pytest.raises(DownloadError, match="does not match the expected"):
        QM9.fetch(bad, base_url=f"{server['tampered']}/qm9")
    assert not any(bad.glob("*qm9.csv*"))  # nothing half-written is left behind


def test_download_errors_are_one_line(server, tmp_path):
    with pytest.raises(DownloadError, match="cannot download"):
        download_file(f"{server['shared']}/qm9/nope.csv", tmp_path / "x.csv", None)
    ok = download_file(f"{server['shared']}/qm9/PROVENANCE.md", tmp_path / "p.md", None)
    assert hashlib.sha256(ok.read_bytes()).hexdigest() == sha256_of(QM9_DIR / "PROVENANCE.md")


def test_download_true_fetches_only_missing_files(small_qm9, server, tmp_path):
    """What the shipped configs' ``download = true`` does: files already in ``root`` are used as they are,
    a differing copy included (and reported as not canonical); a missing one is fetched and must match."""
    root, _, _ = small_qm9
    bundle = DATASETS["qm9"](
        str(root), download=True, base_url=f"{server['tampered']}/qm9", cache_dir=str(tmp_path / "c")
    )
    assert bundle.info["n_molecules"] == 3000 and bundle.info["canonical_sha256"] is False
    assert bundle.info["source"]["qm9.csv"] == str(root / "qm9.csv")
    (root / "qm9.csv").unlink()
    with pytest.raises(DownloadError, match="does not match the expected"):
        DATASETS["qm9"](str(root), download=True, base_url=f"{server['tampered']}/qm9", cache_dir=str(tmp_path / "c"))
    assert not any(root.glob("*qm9.csv*"))


def test_node_counts_replace_the_size_prior(tmp_path):
    """``node_counts`` (weights by heavy-atom count) is what sampled sizes are drawn from: a shipped
    model keeps its training histogram on another dataset, and a user can ask for sizes."""
    from hebm_mol import prior

    own = nci(cache_dir=str(tmp_path))
    fives = nci(cache_dir=str(tmp_path), node_counts=[0, 0, 0, 0, 0, 1])
    assert fives.extras["node_counts"].tolist() == [0.0] * 5 + [1.0] + [0.0] * 4
    assert not torch.equal(own.extras["node_counts"], fives.extras["node_counts"])
    _, _, mask = prior(64, fives, 1.0)
    assert mask.sum(1).tolist() == [5] * 64
    weighted = nci(cache_dir=str(tmp_path), node_counts=[5, 1, 0, 0, 0, 0, 0, 0, 0, 3])  # weight on 0 atoms ignored
    assert weighted.extras["node_counts"][[1, 9]].tolist() == pytest.approx([0.25, 0.75])
    for bad in ([0, 0], [1] * 11, [0, -1, 2], "9", [0, float("inf")]):
        with pytest.raises(ValueError, match="node_counts must be a list of at most 10 weights"):
            nci(cache_dir=str(tmp_path), node_counts=bad)
