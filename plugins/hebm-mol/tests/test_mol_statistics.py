"""The valency statistic: exact counts on hand-made graphs, violations, and its gradient."""

import pytest
import torch
from _molutil import dense
from hebm_mol import valency
from hebm_mol.graph import QM9_SPEC, smiles_to_graph
from hebm_mol.statistics import Valency


def _value(stat, g):
    return stat(g)[0].tolist()


def test_valid_molecules_have_no_excess_and_exact_hydrogen_and_bond_counts():
    stat = Valency(components=("excess", "hydrogens", "bonds"))
    for smiles, h, bonds in [("CCO", 6, 2), ("C=O", 2, 2), ("C#N", 1, 3), ("FC(F)F", 1, 3), ("c1ccoc1", 4, 7)]:
        x, a, n = smiles_to_graph(smiles)
        g = (x[None].double(), a[None].double(), (torch.arange(9) < n)[None])
        assert _value(stat, g) == [0.0, float(h), float(bonds)], smiles


def test_violations_are_counted_as_bond_order_mass():
    excess = Valency()
    # carbon with five single bonds: one unit over
    assert _value(excess, dense("CCCCCC", [(0, k, 1) for k in range(1, 6)])) == [1.0]
    # O with a double and a single bond (valence 3 > 2), F with two bonds (2 > 1): 1 + 1
    assert _value(excess, dense("COCF", [(0, 1, 2), (1, 2, 1), (2, 3, 1), (3, 0, 1)])) == [2.0]
    # N with four bonds is allowed as N+ (GDSS decoding) unless charged_n is off
    n4 = dense("NCCCC", [(0, k, 1) for k in range(1, 5)])
    assert _value(excess, n4) == [0.0]
    assert _value(valency(charged_n=False), n4) == [1.0]
    # a triple bond on O: 3 - 2 = 1 over, on the oxygen only (carbon's 3 <= 4)
    assert _value(excess, dense("CO", [(0, 1, 3)])) == [1.0]


def test_padding_and_negative_bond_orders_do_not_count():
    x, a, mask = dense("CC", [(0, 1, 1)])
    a = a.clone()
    a[0, 5, 6] = a[0, 6, 5] = 9.0  # garbage between padded nodes
    a[0, 0, 1] = a[0, 1, 0] = -2.0
    assert _value(Valency(components=("excess", "bonds")), (x, a, mask)) == [0.0, 0.0]


def test_gradient_matches_finite_differences():
    torch.manual_seed(0)
    stat = Valency(QM9_SPEC, components=("excess", "hydrogens", "bonds"))
    mask = torch.arange(9)[None].expand(3, 9) < torch.tensor([[9], [6], [4]])
    x = (torch.rand(3, 9, 4, dtype=torch.float64) * 1.2 - 0.1).requires_grad_()
    a0 = torch.rand(3, 9, 9, dtype=torch.float64) * 3 - 0.3
    a = (0.5 * (a0 + a0.transpose(1, 2))).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, a: stat((x, a, mask)), (x, a), eps=1e-6, atol=1e-5)
    # and the statistic really depends on both leaves
    gx, ga = torch.autograd.grad(stat((x, a, mask)).sum(), (x, a))
    assert gx.abs().sum() > 0 and ga.abs().sum() > 0


def test_element_mismatch_is_one_clear_error():
    x, a, mask = dense("CC", [(0, 1, 1)])
    with pytest.raises(ValueError, match="graphs have 3 element types but the statistic knows"):
        Valency()((x[..., :3], a, mask))
    assert _value(valency(atoms=["C", "N", "O"]), (x[..., :3], a, mask)) == [0.0]
