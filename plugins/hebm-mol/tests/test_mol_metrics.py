"""hebm_mol.metrics / hebm_mol.nspdk: known answers on QM9 and hand-made molecules."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hebm_mol.metrics import (
    PROTOCOL,
    CanonicalSmilesSet,
    canonical_smiles,
    canonical_smiles_set,
    clear_caches,
    correct_mol,
    evaluate_molecules,
    fcd_score,
    is_valid,
    mols_to_nx,
    nspdk_mmd,
)
from hebm_mol.nspdk import nspdk_features, nspdk_mean
from rdkit import Chem, RDConfig

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
N_SUB = 500


@pytest.fixture(scope="module")
def qm9() -> tuple[list[str], list[str]]:
    """(raw test SMILES, raw train SMILES) of the GDSS split."""
    rows = (DATA / "qm9" / "qm9.csv").read_text().split()
    assert rows[0] == "smiles" and len(rows) == 133_886
    rows = rows[1:]
    idx = [int(s) for s in json.loads((DATA / "qm9" / "valid_idx_qm9.json").read_text())["valid_idxs"]]
    test_set = set(idx)
    return [rows[i] for i in idx], [rows[i] for i in range(len(rows)) if i not in test_set]


@pytest.fixture(scope="module")
def test_sub(qm9) -> list[str]:
    return qm9[0][:N_SUB]


@pytest.fixture(scope="module")
def nci() -> list[str]:
    """RDKit's NCI sample: a different chemical family (drug-like, larger, S/Cl/P/...)."""
    lines = (Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi").read_text().splitlines()[:600]
    out = []
    for line in lines:
        m = Chem.MolFromSmiles(line.split()[0])
        if m is not None:
            out.append(Chem.MolToSmiles(m))
    return out[:N_SUB]


def _unsanitized(smiles: str) -> Chem.Mol:
    return Chem.MolFromSmiles(smiles, sanitize=False)


def _as_decoded(smiles: str) -> Chem.Mol:
    """What the graph decoder gives for a dataset molecule: kekulé bonds, charges kept, no aromatic flags."""
    m = Chem.MolFromSmiles(smiles)
    Chem.Kekulize(m, clearAromaticFlags=True)
    return m


def _pentavalent_carbon() -> Chem.Mol:
    """C(=C)(C)(C)C: the central carbon has valence 5 (a double bond plus three single bonds)."""
    rw = Chem.RWMol()
    for _ in range(5):
        rw.AddAtom(Chem.Atom(6))
    rw.AddBond(0, 1, Chem.BondType.SINGLE)
    rw.AddBond(0, 2, Chem.BondType.DOUBLE)
    rw.AddBond(0, 3, Chem.BondType.SINGLE)
    rw.AddBond(0, 4, Chem.BondType.SINGLE)
    return rw.GetMol()


def _charged_ammonium_like() -> Chem.Mol:
    """GDSS construct_mol output for N with 4 single bonds: formal charge +1 -> C[N+](C)(C)C."""
    rw = Chem.RWMol()
    n = rw.AddAtom(Chem.Atom(7))
    for _ in range(4):
        c = rw.AddAtom(Chem.Atom(6))
        rw.AddBond(n, c, Chem.BondType.SINGLE)
    rw.GetAtomWithIdx(n).SetFormalCharge(1)
    return rw.GetMol()


# ----------------------------------------------------------------------------- validity and correction


def test_hand_made_validity():
    assert not is_valid(_pentavalent_carbon())
    assert canonical_smiles(_pentavalent_carbon()) is None
    charged = _charged_ammonium_like()
    assert is_valid(charged)
    assert canonical_smiles(charged) == "C[N+](C)(C)C"
    uncharged = Chem.RWMol(charged)
    uncharged.GetAtomWithIdx(0).SetFormalCharge(0)
    assert not is_valid(uncharged.GetMol())  # neutral tetravalent N
    # neutral pentavalent nitro N: SanitizeMol alone would rewrite it to [N+](=O)[O-]; GDSS's valence check rejects it
    assert not is_valid(_unsanitized("CN(=O)=O"))
    assert is_valid(_unsanitized("C[N+](=O)[O-]"))
    assert not is_valid(None)
    assert not is_valid(Chem.Mol())
    # the input is never modified (still unsanitised: no implicit-H perception was stored)
    m = _pentavalent_carbon()
    is_valid(m)
    correct_mol(m)
    assert m.GetBondBetweenAtoms(0, 2).GetBondType() == Chem.BondType.DOUBLE


def test_correct_mol_lowers_highest_order_bond():
    fixed = correct_mol(_pentavalent_carbon())
    assert fixed is not None and is_valid(fixed)
    assert Chem.MolToSmiles(fixed) == "CC(C)(C)C"  # the double bond became single
    # valid molecules pass through unchanged (up to sanitisation)
    assert Chem.MolToSmiles(correct_mol(_unsanitized("C[N+](C)(C)C"))) == "C[N+](C)(C)C"
    # O with a triple bond and a single bond (valence 4 > 2): triple -> double -> single
    assert Chem.MolToSmiles(correct_mol(_unsanitized("CO#C"))) == "COC"
    # N=N(=O)C: the central N has valence 5; its first highest-order bond N=N is lowered (valence 4, still > 3),
    # then N=O -> NN(O)C.
    assert Chem.MolToSmiles(correct_mol(_unsanitized("N=N(=O)C"))) == "CN(N)O"
    assert Chem.MolToSmiles(correct_mol(_unsanitized("CN(=O)=O"))) == "CN(O)O"
    assert correct_mol(None) is None


def test_correct_mol_charged_valence_limits():
    # N+ may have valence 4: five bonds are one too many, four are fine.
    rw = Chem.RWMol(_charged_ammonium_like())
    c = rw.AddAtom(Chem.Atom(6))
    rw.AddBond(1, c, Chem.BondType.SINGLE)
    rw.GetBondBetweenAtoms(0, 1).SetBondType(Chem.BondType.DOUBLE)
    assert not is_valid(rw.GetMol())
    assert Chem.MolToSmiles(correct_mol(rw.GetMol())) == "CC[N+](C)(C)C"  # N+=C lowered to N+-C


def test_correct_mol_keeps_largest_fragment():
    assert Chem.MolToSmiles(correct_mol(_unsanitized("CCO.CCCCN.C"))) == "CCCCN"
    assert Chem.MolToSmiles(correct_mol(_unsanitized("O.C(C)(C)(C)(C)=C"))) == "CC(C)(C)C"  # corrected, then largest


# ----------------------------------------------------------------------------- NSPDK


def test_nspdk_isomorphic_graphs_identical_and_normalised(test_sub):
    rng = random.Random(0)
    mols = [Chem.MolFromSmiles(s) for s in test_sub[:50]]
    permuted = []
    for m in mols:
        order = list(range(m.GetNumAtoms()))
        rng.shuffle(order)
        permuted.append(Chem.RenumberAtoms(m, order))
    x = nspdk_features(mols + permuted).toarray()
    np.testing.assert_allclose(x[:50], x[50:], rtol=0, atol=1e-12)
    k = x @ x.T
    np.testing.assert_allclose(np.diag(k), 1.0, atol=1e-12)
    assert (k[:50, :50][~np.eye(50, dtype=bool)] < 1 - 1e-9).all()  # distinct molecules: kernel below 1
    # networkx graphs with relabelled nodes give the same vectors as the mols
    g = mols_to_nx(mols[:5])
    g = [nx.relabel_nodes(h, {v: f"n{v}" for v in h}) for h in g]
    y = nspdk_features(mols[:5] + g).toarray()
    np.testing.assert_allclose(y[:5], y[5:], rtol=0, atol=1e-12)


def test_nspdk_known_small_graph():
    # Ethane C-C: atoms share one neighbourhood per radius; features: (r, d) in {(0,0), (1,0), (0,1), (1,1)},
    # each with one pair and one half feature of equal count -> 8 equal entries 1/sqrt(8).
    x = nspdk_features([Chem.MolFromSmiles("CC")]).toarray()
    np.testing.assert_allclose(np.sort(x[x != 0]), np.full(8, 8**-0.5))
    # labels matter: ethane vs methylamine share no pair feature and no half feature
    x2 = nspdk_features([Chem.MolFromSmiles("CC"), Chem.MolFromSmiles("CN")]).toarray()
    assert 0 < x2[0] @ x2[1] < 1


def test_nspdk_mmd_qm9(test_sub, qm9, nci):
    mols = [Chem.MolFromSmiles(s) for s in test_sub]
    assert nspdk_mmd(mols, mols) == pytest.approx(0.0, abs=1e-12)
    mean = nspdk_mean(mols)
    assert nspdk_mmd(mols_to_nx(mols), mean) == pytest.approx(0.0, abs=1e-12)
    same_family = nspdk_mmd([Chem.MolFromSmiles(s) for s in qm9[1][::240][:N_SUB]], mean)  # spread over train
    other_family = nspdk_mmd([Chem.MolFromSmiles(s) for s in nci], mean)
    alkanes = nspdk_mmd([Chem.MolFromSmiles("C" * n) for n in range(1, 10)], mean)
    assert 0 < same_family < 0.01 and other_family > 0.03 and alkanes > 0.1  # measured: 0.0032, 0.067, 0.30
    # MMD equals the kernel form mean(Kxx) + mean(Kyy) - 2 mean(Kxy)
    a, b = mols[:40], [Chem.MolFromSmiles(s) for s in nci[:30]]
    x = nspdk_features(a + b)
    k = (x @ x.T).toarray()
    kernel_form = k[:40, :40].mean() + k[40:, 40:].mean() - 2 * k[:40, 40:].mean()
    assert nspdk_mmd(a, b) == pytest.approx(kernel_form, abs=1e-12)
    with pytest.raises(ValueError):
        nspdk_mmd([], mols)


# ----------------------------------------------------------------------------- FCD and the whole protocol


def test_fcd(test_sub, nci, tmp_path):
    canon = [canonical_smiles(Chem.MolFromSmiles(s)) for s in test_sub]
    assert fcd_score(canon, canon) < 0.1
    other = fcd_score(nci, canon, cache_dir=tmp_path)
    assert other > 10
    assert len(list(tmp_path.glob("fcd_ref_*.npz"))) == 1
    assert fcd_score(nci, canon, cache_dir=tmp_path) == pytest.approx(other, rel=1e-9)  # from the cache
    with pytest.raises(ValueError):
        fcd_score(["C"], canon)


def test_evaluate_qm9_against_itself(test_sub, qm9):
    raw = test_sub
    mols = [_as_decoded(s) for s in raw] + [None, _pentavalent_carbon()]
    expected_unique = {Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in raw}
    r = evaluate_molecules(mols, train_smiles=raw, test_smiles=raw, correct=True)
    n = len(raw) + 2
    assert r["n_generated"] == n and r["n_valid"] == len(raw)
    assert r["validity"] == pytest.approx(len(raw) / n)
    n_single = sum(len(Chem.GetMolFrags(Chem.MolFromSmiles(s))) == 1 for s in raw)
    assert r["validity_connected"] == pytest.approx(n_single / n)
    assert r["uniqueness"] == pytest.approx(len(expected_unique) / len(raw))
    assert r["novelty"] == 0.0
    assert r["nspdk_mmd"] == pytest.approx(0.0, abs=1e-12)
    assert r["fcd"] < 0.1
    # corrected: the pentavalent carbon becomes neopentane (valid, not in the training set -> novel)
    assert r["corrected/n_valid"] == len(raw) + 1
    assert r["corrected/validity"] == pytest.approx((len(raw) + 1) / n)
    assert r["corrected/novelty"] == pytest.approx(1 / (len(expected_unique) + 1))
    assert 0 < r["corrected/nspdk_mmd"] < 1e-3
    assert set(r) >= {"corrected/uniqueness", "corrected/fcd"}
    assert all(isinstance(v, float) for v in r.values())
    assert "novelty" in PROTOCOL and "|" not in PROTOCOL


def test_evaluate_novelty_and_none(qm9):
    test_raw, train_raw = qm9
    train = canonical_smiles_set(train_raw[:2000])
    assert isinstance(train, CanonicalSmilesSet) and canonical_smiles_set(train) is train
    gen = [_as_decoded(s) for s in train_raw[:30]] + [_as_decoded(s) for s in test_raw[:10]] + [None] * 10
    r = evaluate_molecules(gen, train, test_raw[:200], nspdk=False, fcd=False)
    assert r["validity"] == pytest.approx(40 / 50)
    test_canon = {Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in test_raw[:10]}
    unique = {Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in train_raw[:30] + test_raw[:10]}
    assert r["novelty"] == pytest.approx(len(test_canon - train) / len(unique))
    assert "nspdk_mmd" not in r and "fcd" not in r
    r_none = evaluate_molecules([None, None], train, test_raw[:10], nspdk=True, fcd=True)
    assert r_none["validity"] == 0 and math.isnan(r_none["uniqueness"]) and math.isnan(r_none["fcd"])
    with pytest.raises(TypeError):
        evaluate_molecules(["CCO"], train, test_raw[:10])
    with pytest.raises(ValueError):
        evaluate_molecules([], train, test_raw[:10])


def test_canonical_set_disk_cache(tmp_path, qm9):
    raw = qm9[1][:300]
    first = canonical_smiles_set(raw, cache_dir=tmp_path)
    files = list(tmp_path.glob("canonical_smiles_*.txt"))
    assert len(files) == 1
    clear_caches()
    assert canonical_smiles_set(raw, cache_dir=tmp_path) == first
    assert first == {Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in raw}
    # after clear_caches the set really comes from the file, not from a memo or a recomputation
    files[0].write_text(files[0].read_text() + "\nCCCCCCCCCCCC\n")
    assert canonical_smiles_set(raw, cache_dir=tmp_path) == first  # memoised: the file is not read again
    clear_caches()
    assert canonical_smiles_set(raw, cache_dir=tmp_path) == first | {"CCCCCCCCCCCC"}
