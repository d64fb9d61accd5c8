"""The fixes behind the fuzz suite, one by one: what is read, what is refused (and how it is said), what is counted."""

import codecs
import csv
import gzip
import importlib
import json
import math
from pathlib import Path

import pytest
import torch
from _molutil import QM9_DIR, dense
from hebm_mol import molecules, valency
from hebm_mol.datasets import DATASETS, QM9, SmilesFile, read_smiles_csv
from hebm_mol.datasets import base as base_module
from hebm_mol.datasets.files import check_raw_file, read_text
from hebm_mol.datasets.qm9 import gdss_split
from hebm_mol.evaluation import MoleculeMetrics
from hebm_mol.graph import QM9_SPEC, GraphSpec
from hebm_mol.metrics import evaluate_molecules
from hebm_mol.models import MAX_PARAMETERS, EDPGNNEnergy, parameter_count
from hebm_mol.statistics import Valency
from rdkit import Chem

from hebm_core.options import ConfigError

#: the module itself (the package attribute ``hebm_mol.datasets.smiles`` is the dataset factory)
smiles_module = importlib.import_module("hebm_mol.datasets.smiles")
ROWS = ["CCO", "CC=O", "C1CC1", "CCN", "COC", "CC(=O)O", "CCCC", "C#N", "OCCO", "CC(C)O"]


def _smiles(tmp_path, name: str, data: bytes, **kw):
    path = tmp_path / name
    path.write_bytes(data)
    return DATASETS["smiles"](str(path), cache_dir=str(tmp_path / "cache"), **kw)


# ----------------------------------------------------------------------------- decoding
def test_a_utf8_bom_does_not_hide_the_smiles_header(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(codecs.BOM_UTF8 + ("smiles,name\n" + "\n".join(f"{s},x" for s in ROWS) + "\n").encode())
    assert read_smiles_csv(path) == ROWS
    path.write_bytes(codecs.BOM_UTF16_LE + ("SMILES\r\n" + "\r\n".join(ROWS)).encode("utf-16-le"))
    assert read_smiles_csv(path) == ROWS  # UTF-16 with its BOM (Excel's "Unicode text"), CRLF, no final newline


def test_bad_bytes_are_refused_with_the_file_and_the_place(tmp_path):
    path = tmp_path / "m.smi"
    path.write_bytes(b"CCO\nCC\xe9O name\n")
    with pytest.raises(ValueError, match=r"m\.smi: not UTF-8 text \(byte 0xe9 at line 2, column 3\); save it as UTF-8"):
        read_text(path)
    path.write_bytes(b"CCO\nC\x00C\n")
    with pytest.raises(ValueError, match=r"m\.smi: contains a NUL byte at line 2, column 2"):
        read_text(path)
    path.write_bytes(gzip.compress(b"CCO\n"))
    with pytest.raises(ValueError, match="is gzip-compressed, not a text file; extract it first"):
        read_text(path)


def test_the_size_is_checked_before_anything_is_read(tmp_path, monkeypatch):
    path = tmp_path / "big.smi"
    with open(path, "wb") as f:
        f.truncate((1 << 30) + 1)  # sparse: only the size is claimed
    monkeypatch.setattr(base_module, "sha256_of", lambda p: pytest.fail("hashed before the size check"))
    with pytest.raises(ValueError, match=r"big\.smi: 1\.0 GiB is over the 1\.0 GiB limit for a SMILES file"):
        DATASETS["smiles"](str(path), cache_dir=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="is a folder, not a SMILES file"):
        DATASETS["smiles"](str(tmp_path), cache_dir=str(tmp_path / "c"))
    with pytest.raises(ValueError, match="not a regular file"):
        check_raw_file(Path("/dev/null"), 10)


def test_a_cell_over_the_csv_field_limit_is_a_counted_skip(tmp_path):
    limit = csv.field_size_limit()
    data = ("smiles\n" + "\n".join(ROWS) + "\n" + "C" * 200_000 + "\n").encode()
    bundle = _smiles(tmp_path, "m.csv", data, test_fraction=0.3)
    assert bundle.info["skipped"] == {"SMILES too long": 1} and bundle.info["n_molecules"] == len(ROWS)
    assert "200,000 characters > 1,000 for max_atoms=9" in bundle.info["skipped_examples"][0]
    assert csv.field_size_limit() == limit  # the process-wide limit is restored


@pytest.mark.parametrize("name", ["m.csv", "m.smi"])
def test_a_file_with_too_many_rows_is_refused(tmp_path, monkeypatch, name):
    monkeypatch.setattr(smiles_module, "MAX_ROWS", 5)
    data = (("smiles\n" if name.endswith(".csv") else "") + "\n".join(ROWS) + "\n").encode()
    with pytest.raises(ValueError, match=rf"{name}: more than 5 rows; split the file"):
        _smiles(tmp_path, name, data)


def test_unbalanced_quotes_and_odd_separators(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text('smiles\n"CCO\n' + "\n".join(ROWS) + "\n")
    with pytest.raises(ValueError, match=r"m\.csv: malformed CSV at line \d+: unexpected end of data"):
        read_smiles_csv(path)  # without strict quoting, the rest of the file would silently be one cell
    path.write_text("id;smiles\n" + "\n".join(f"{k};{s}" for k, s in enumerate(ROWS)) + "\n")
    assert read_smiles_csv(path) == ROWS
    path.write_text("smiles\r" + "\r".join(ROWS[:4]) + "\n" + "\r\n".join(ROWS[4:]) + "\n")
    assert read_smiles_csv(path) == ROWS  # old-Mac, Unix and Windows line ends mixed


# ----------------------------------------------------------------------------- QM9 split files
@pytest.fixture
def split_file(tmp_path):
    def write(content) -> str:
        path = tmp_path / "valid_idx_qm9.json"
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path

    return write


@pytest.mark.parametrize(
    "entries, message",
    [
        ([1.7, 3.2], r"valid_idxs\[0\] = 1\.7 is not a row number"),
        ([2, 1.0], r"valid_idxs\[1\] = 1\.0 is not a row number"),
        ([True, False], r"valid_idxs\[0\] = True is not a row number"),
        ([3, -1], r"valid_idxs\[1\] = -1: test rows must lie in \[0, 10\)"),
        ([3, 10], r"valid_idxs\[1\] = 10: test rows must lie in \[0, 10\)"),
        ([4, "004"], r"row 4 is listed twice in valid_idxs \(entries 0 and 1\)"),
        (["5.0"], r"valid_idxs\[0\] = '5\.0' is not a row number"),
        ([], "valid_idxs is empty: no test rows"),
    ],
)
def test_split_entries_must_be_row_numbers(split_file, entries, message):
    path = split_file({"valid_idxs": entries})
    with pytest.raises(ValueError, match=rf"^{path}: {message}"):
        gdss_split(path, 10)


def test_split_formats_that_are_read(split_file):
    assert gdss_split(split_file({"valid_idxs": ["000007", 2]}), 10)["test"].tolist() == [2, 7]  # MoFlow's strings
    assert gdss_split(split_file([2, 7]), 10)["train"].tolist() == [0, 1, 3, 4, 5, 6, 8, 9]
    explicit = gdss_split(split_file({"valid_idxs": [1], "train_idxs": [3, 0]}), 10)
    assert explicit["train"].tolist() == [0, 3] and explicit["test"].tolist() == [1]
    with pytest.raises(ValueError, match=r"rows 3 are in both train_idxs and valid_idxs"):
        gdss_split(split_file({"valid_idxs": [1, 3], "train_idxs": [3, 4]}), 10)
    with pytest.raises(ValueError, match="NaN is not a row number"):
        gdss_split(split_file('{"valid_idxs": [1, NaN]}'), 10)
    with pytest.raises(ValueError, match=r"not valid JSON \(Expecting"):
        gdss_split(split_file('{"valid_idxs": [1,'), 10)
    with pytest.raises(ValueError, match="unknown key 'test'"):
        gdss_split(split_file({"valid_idxs": [1], "test": [2]}), 10)


def test_a_bad_split_is_refused_before_the_rows_are_encoded(tmp_path, monkeypatch):
    (tmp_path / "qm9.csv").write_text("smiles\n" + "\n".join(ROWS) + "\n")
    (tmp_path / "valid_idx_qm9.json").write_text(json.dumps({"valid_idxs": [1.5]}))
    monkeypatch.setattr(base_module, "parse_smiles", lambda s: pytest.fail("encoded before the split was checked"))
    with pytest.raises(ValueError, match=r"valid_idx_qm9\.json: valid_idxs\[0\] = 1\.5"):
        QM9(tmp_path, cache_dir=tmp_path / "c")


def test_the_real_qm9_files_still_read():
    assert len(read_smiles_csv(QM9_DIR / "qm9.csv")) == 133885
    split = gdss_split(QM9_DIR / "valid_idx_qm9.json", 133885)
    assert split["test"].numel() == 13082


# ----------------------------------------------------------------------------- datasets
def test_the_cache_key_includes_the_column(tmp_path):
    """Two columns of one file are two datasets (the cache once returned the first column's for the second)."""
    path = tmp_path / "m.csv"
    path.write_text("a,b\n" + "\n".join(f"{s},{t}" for s, t in zip(ROWS, reversed(ROWS + ["CCCO"]))) + "\n")
    a = SmilesFile(path, QM9_SPEC, test_fraction=0.2, column="a", cache_dir=tmp_path / "c")
    b = SmilesFile(path, QM9_SPEC, test_fraction=0.2, column="b", cache_dir=tmp_path / "c")
    assert a.processed_path != b.processed_path and not b.from_cache
    assert a.smiles[0] == "CCO" and b.smiles[0] == "CCCO"


def test_a_foreign_cache_file_is_rebuilt_and_an_unwritable_cache_is_one_line(tmp_path):
    path = tmp_path / "m.smi"
    path.write_text("\n".join(ROWS) + "\n")
    first = SmilesFile(path, QM9_SPEC, cache_dir=tmp_path / "c")
    torch.save({"x": torch.zeros(3), "smiles": "nope"}, first.processed_path)  # loads, but is not ours
    again = SmilesFile(path, QM9_SPEC, cache_dir=tmp_path / "c")
    assert not again.from_cache and again.smiles == first.smiles
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"cannot write the processed cache in .*file/sub .*writable folder"):
        SmilesFile(path, QM9_SPEC, cache_dir=tmp_path / "file" / "sub")


def test_tiny_files_get_both_splits_and_empty_splits_say_why(tmp_path):
    assert _smiles(tmp_path, "three.smi", b"CCO\nCC=O\nCCN\n").info["n_test"] == 1  # round(0.3) would be 0
    with pytest.raises(ValueError, match=r"the test split has no usable molecule .*skipped: unparsable: 2"):
        _smiles(tmp_path, "bad.smi", b"CCO\nxx\nyy\n", test_fraction=0.6, seed=1)
    with pytest.raises(ValueError, match=r"header\.csv has no data rows"):
        _smiles(tmp_path, "header.csv", b"smiles\n")


def test_test_molecules_seen_in_training_are_counted(tmp_path):
    bundle = _smiles(tmp_path, "dup.smi", b"CCO\n" * 10 + b"OCC\n", test_fraction=0.5)
    assert bundle.info["n_test_in_train"] == bundle.info["n_test"]  # OCC is CCO: every test molecule is known


def test_dense_graphs_that_would_not_fit_are_refused_with_an_estimate(tmp_path, monkeypatch):
    monkeypatch.setattr(base_module, "MAX_GRAPH_BYTES", 1 << 20)
    with pytest.raises(
        ValueError, match=r"10 rows as dense graphs of max_atoms=200 would need about 1\.9 MiB \(limit 1\.0 MiB\)"
    ):
        _smiles(tmp_path, "m.smi", ("\n".join(ROWS) + "\n").encode(), max_atoms=200)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"atoms": "CNOF"}, r"atoms must be a non-empty list of elements"),
        (
            {"atoms": ["c"]},
            r"atoms\[0\] = 'c': unknown element \(element symbols are case-sensitive and unpadded: 'C'\?\)",
        ),
        ({"max_atoms": 9.5}, r"max_atoms must be an integer in \[1, 512\], got 9\.5"),
        ({"max_atoms": 10**5}, r"max_atoms must be an integer in \[1, 512\]"),
        ({"max_train": -2}, r"max_train must be an integer >= 1, got -2"),
        ({"single_fragment": "no"}, r"single_fragment must be true or false, got str 'no'"),
        ({"column": 5}, r"column must be a non-empty column name, got 5"),
        ({"test_fraction": "0.1"}, r"test_fraction must be a number in \[0, 1\), got str '0\.1'"),
        ({"seed": 1.5}, r"seed must be a 64-bit integer, got float 1\.5"),
    ],
)
def test_dataset_options_are_checked_before_any_work(tmp_path, monkeypatch, options, message):
    path = tmp_path / "m.smi"
    path.write_text("\n".join(ROWS) + "\n")
    monkeypatch.setattr(base_module, "sha256_of", lambda p: pytest.fail("read before the options were checked"))
    with pytest.raises(ValueError, match=message):
        DATASETS["smiles"](str(path), cache_dir=str(tmp_path / "c"), **options)


def test_graph_spec_checks_its_fields():
    with pytest.raises(ValueError, match=r"atoms\[1\] must be an element symbol \(a string\), got 7"):
        GraphSpec(("C", 7), 9)
    with pytest.raises(ValueError, match="max_atoms must be an integer"):
        GraphSpec(("C",), True)


# ----------------------------------------------------------------------------- model, statistic, metrics
def test_model_sizes_are_bounded_before_allocation():
    for sizes in [(4, 32, 3, 2, 6, 16), (5, 8, 1, 1, 1, 1), (3, 17, 4, 3, 7, 5)]:
        model = EDPGNNEnergy(sizes[0], *sizes[1:])
        assert sum(p.numel() for p in model.parameters()) == parameter_count(*sizes)
    assert parameter_count(4, 2048, 32, 2, 6, 16) > MAX_PARAMETERS
    with pytest.raises(ValueError, match=r"would have 1,197,\d{3},\d{3} parameters \(4\.5 GiB in float32\)"):
        EDPGNNEnergy(4, hidden=2048, depth=32)
    with pytest.raises(ValueError, match=r"depth must be an integer in \[1, 32\], got 100000"):
        EDPGNNEnergy(4, depth=100000)
    example = dense("CCO", [(0, 1, 1), (1, 2, 1)])
    with pytest.raises(ValueError, match="n_types=3 but the data has 4 element types"):
        EDPGNNEnergy(n_types=3, example=example)


def test_valency_options_and_a_mismatch_with_the_data():
    assert valency(components="bonds").component_names == ("bonds",)  # one name is one component
    with pytest.raises(ValueError, match="components lists a component twice"):
        valency(components=["bonds", "bonds"])
    with pytest.raises(ValueError, match="no default valence for Fe"):
        valency(atoms=["C", "Fe"])
    with pytest.raises(ValueError, match="charged_n must be true or false"):
        valency(charged_n="yes")
    with pytest.raises(ConfigError, match="graphs have 4 element types but the statistic knows"):
        Valency(GraphSpec(("C", "N"), 9))(dense("CC", [(0, 1, 1)]))


def test_undefined_molecule_metrics_are_left_out_not_nan(tmp_path):
    bundle = _smiles(tmp_path, "m.smi", ("\n".join(ROWS) + "\n").encode())
    assert len(bundle.extras["test_smiles"]) == 1  # FCD needs two reference molecules
    r = evaluate_molecules([Chem.MolFromSmiles(s) for s in ROWS[:4]], ROWS, bundle.extras["test_smiles"])
    assert math.isnan(r["fcd"]) and r["validity"] == 1.0  # the library marks it undefined ...
    metric = molecules([], bundle, nspdk=False)
    x, a, mask = dense("CCC", [(0, 1, 3), (1, 2, 3), (0, 2, 3)])  # carbons with six bonds: nothing valid
    metric.update((x.repeat(4, 1, 1), a.repeat(4, 1, 1), mask.repeat(4, 1)))
    out = metric.compute()
    assert out["validity"] == 0.0 and "uniqueness" not in out and "fcd" not in out  # ... the report leaves it out
    assert all(math.isfinite(v) for v in out.values())
    assert "left out of hebm's reports" in MoleculeMetrics.describe()["protocol"]
    with pytest.raises(ValueError, match="fcd must be true or false"):
        molecules([], bundle, fcd="no")
