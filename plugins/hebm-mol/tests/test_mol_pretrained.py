"""The QM9 model that ships with hebm-mol: it samples valid, mostly connected molecules offline (no
QM9 on disk), its file matches the sha256 the plugin and the model card declare, and with a QM9
copy the GDSS protocol evaluates it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _molutil import QM9_DIR
from hebm_mol import PRETRAINED
from rdkit import Chem

from hebm_core.cli import main
from hebm_core.pretrained import file_sha256

ENTRY = PRETRAINED["qm9"]


def test_the_file_matches_the_declared_and_the_documented_sha256():
    digest = file_sha256(ENTRY.file)
    assert digest == ENTRY.sha256 and digest in ENTRY.card.read_text()
    assert ENTRY.file.stat().st_size < 1_000_000  # a few hundred kB: it ships in the repository


def test_the_pretrained_model_samples_valid_connected_molecules_offline(tmp_path):
    out = tmp_path / "s"
    assert (
        main(["sample", "--pretrained", "qm9", "--n", "300", "--out", str(out), "--set", "sampler.progress=false"]) == 0
    )
    smiles = [line.split()[0] for line in (out / "smiles.txt").read_text().splitlines() if line.strip()]
    assert len(smiles) == 300
    mols = [Chem.MolFromSmiles(s) if s != "INVALID" else None for s in smiles]
    valid = [s for s, m in zip(smiles, mols) if m is not None]
    connected = [s for s in valid if "." not in s]
    assert len(valid) / 300 >= 0.9 and len(connected) / 300 >= 0.7, (len(valid), len(connected))
    assert all(a.GetSymbol() in "CNOF" for m in mols if m is not None for a in m.GetAtoms())
    assert max(m.GetNumAtoms() for m in mols if m is not None) <= 9
    assert (out / "molecules.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rep = json.loads((out / "sample_report.json").read_text())
    assert rep["checkpoint"] == str(ENTRY.file)


def test_plugins_lists_the_pretrained_model(capsys):
    assert main(["plugins"]) == 0
    assert "pretrained:  qm9" in capsys.readouterr().out


@pytest.mark.skipif(not (QM9_DIR / "qm9.csv").exists(), reason="needs the QM9 test data")
def test_the_pretrained_model_evaluates_against_qm9_when_given_a_copy(tmp_path):
    argv = ["evaluate", "--pretrained", "mol:qm9", "--n", "200", "--out", str(tmp_path)]
    argv += ["--set", 'data.name="qm9"', "--set", f'data.root="{QM9_DIR}"', "--set", "sampler.progress=false"]
    assert main(argv) == 0
    rep = json.loads((tmp_path / "metrics.json").read_text())
    assert rep["config"]["data"]["name"] == "qm9" and rep["config"]["data"]["root"] == str(QM9_DIR)
    m = rep["metrics"]
    assert m["validity"] >= 0.9 and 0 < m["validity_connected"] <= m["validity"] and m["novelty"] > 0.5
    assert Path(rep["checkpoint"]).name == "qm9.pt"
