"""SMILES ↔ dense graph ↔ PyG conversions and GDSS quantisation."""

import random

import pytest
import torch
from _molutil import qm9_rows
from hebm_mol.graph import (
    QM9_SPEC,
    GraphSpec,
    MolConversionError,
    from_pyg,
    graph_to_mol,
    graphs_to_mols,
    quantize,
    smiles_to_graph,
    to_pyg,
)
from rdkit import Chem


def _decode(smiles, spec=QM9_SPEC):
    x, a, n = smiles_to_graph(smiles, spec)
    mol = graph_to_mol(x, a, torch.arange(spec.max_atoms) < n, spec)
    Chem.SanitizeMol(mol)
    return Chem.MolToSmiles(mol)


def test_qm9_round_trip_on_a_large_subset():
    rows = qm9_rows()
    sample = random.Random(0).sample(rows, 6000)
    neutral = charged = 0
    for s in sample:
        ref = Chem.MolFromSmiles(s)
        out = _decode(s)  # every graph decodes to a molecule RDKit sanitises
        if any(a.GetFormalCharge() for a in ref.GetAtoms()):
            charged += 1
        else:
            neutral += 1
            assert out == Chem.MolToSmiles(ref), s
    assert neutral > 5800 and charged > 0


def test_charges_follow_gdss():
    # charges are not encoded: a zwitterion comes back neutral, a 4-bonded N comes back as N+
    assert _decode("[NH3+]CC([O-])=O") == Chem.MolToSmiles(Chem.MolFromSmiles("NCC(=O)O"))
    assert _decode("C[N+](C)(C)C") == "C[N+](C)(C)C"


def test_aromatic_input_is_kekulised():
    x, a, n = smiles_to_graph("c1ccccc1")
    orders = sorted(a[:6, :6][torch.triu(torch.ones(6, 6), 1).bool()].tolist())
    assert orders.count(1.0) == 3 and orders.count(2.0) == 3 and n == 6


@pytest.mark.parametrize(
    "smiles, reason",
    [("not a smiles", "unparsable"), ("CCS", "element not allowed"), ("CCCCCCCCCC", "too many atoms")],
)
def test_unencodable_molecules_say_why(smiles, reason):
    with pytest.raises(MolConversionError) as err:
        smiles_to_graph(smiles)
    assert err.value.reason == reason


def test_pyg_round_trip():
    for s in ["CC(=O)N", "C#CC1CC1O", "FC(F)(F)C=O"]:
        x, a, n = smiles_to_graph(s)
        mask = torch.arange(9) < n
        data = to_pyg(x, a, mask)
        assert data.num_nodes == n and data.edge_index.shape[1] == 2 * int((a > 0).sum() // 2)
        x2, a2, mask2 = from_pyg(data)
        assert torch.equal(x2, x) and torch.equal(a2, a) and torch.equal(mask2, mask)


def test_spec_rejects_unknown_elements():
    with pytest.raises(ValueError, match="unknown element"):
        GraphSpec(("C", "Xx"), 9)


def test_quantize_thresholds_and_argmax():
    a = torch.tensor([[0.0, 0.49, 0.5, 1.49], [0.49, 0.0, 1.5, 2.49], [0.5, 1.5, 0.0, 2.5], [1.49, 2.49, 2.5, 0.0]])
    x = torch.tensor([[0.9, 0.1, 0.0, 0.0], [0.2, 0.7, 0.1, 0.0], [0.0, 0.1, 0.3, 0.2], [-1, -1, -1, 5.0]])
    mask = torch.tensor([True, True, True, False])
    xq, aq, _ = quantize(x[None], a[None], mask[None])
    assert aq[0, :3, :3].tolist() == [[0, 0, 1], [0, 0, 2], [1, 2, 0]]
    assert torch.all(aq[0, 3] == 0) and torch.all(xq[0, 3] == 0)  # padding is cleared
    assert xq[0, :3].argmax(-1).tolist() == [0, 1, 2]


def test_batch_decode_matches_single():
    graphs = [smiles_to_graph(s) for s in ["CCO", "C=CC#N", "OC1CC1"]]
    x = torch.stack([g[0] for g in graphs])
    a = torch.stack([g[1] for g in graphs])
    mask = torch.arange(9)[None] < torch.tensor([g[2] for g in graphs])[:, None]
    noisy = (x + 0.2 * torch.rand_like(x) * mask[..., None], a + 0.3 * (torch.rand_like(a) - 0.5), mask)
    mols = graphs_to_mols(noisy)
    assert [Chem.MolToSmiles(m) for m in mols] == ["CCO", "C=CC#N", "OC1CC1"]
