"""The EDP-GNN energy: one scalar per graph, invariant to node order, blind to padding, confining."""

import pytest
import torch
from hebm_mol import EDPGNNEnergy, prior
from hebm_mol.datasets import nci
from hebm_mol.graph import smiles_to_graph
from hebm_mol.space import GraphSpace

from hebm_core.energy import energy_and_score


def _batch(smiles, n_max=9):
    gs = [smiles_to_graph(s) for s in smiles]
    x = torch.stack([g[0] for g in gs]).double()
    a = torch.stack([g[1] for g in gs]).double()
    mask = torch.arange(n_max)[None] < torch.tensor([g[2] for g in gs])[:, None]
    return x, a, mask


def _model(example, **kw):
    torch.manual_seed(0)
    return EDPGNNEnergy(example=example, **kw).double()


def _noisy(g, sigma=0.3, seed=1):
    torch.manual_seed(seed)
    z = GraphSpace().noise_like(g)
    return g[0] + sigma * z[0], g[1] + sigma * z[1], g[2]


def test_energy_is_permutation_invariant_and_the_score_equivariant():
    g = _noisy(_batch(["CC(=O)NC1CC1", "OCC#N", "FC(F)C(O)C=O"]))
    model = _model(g)
    sigma = torch.tensor([0.3, 0.5, 1.0], dtype=torch.float64)
    e, (sx, sa, _) = energy_and_score(model, g, sigma)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        p = torch.randperm(9, generator=gen)  # mixes real and padded positions too
        gp = (g[0][:, p], g[1][:, p][:, :, p], g[2][:, p])
        ep, (sxp, sap, _) = energy_and_score(model, gp, sigma)
        assert torch.allclose(e, ep, atol=1e-10, rtol=1e-10)
        assert torch.allclose(sx[:, p], sxp, atol=1e-9) and torch.allclose(sa[:, p][:, :, p], sap, atol=1e-9)


def test_energy_ignores_padding_and_is_one_scalar_per_graph():
    g = _noisy(_batch(["CCO", "C1CC1"]))
    model = _model(g)
    e = model(g, torch.tensor([0.2, 0.2], dtype=torch.float64))
    junk = (g[0].clone(), g[1].clone(), g[2])
    pad = ~g[2]
    junk[0][pad] = 7.0
    junk[1][:, 5:, :] = -4.0
    junk[1][:, :, 5:] = -4.0
    assert e.shape == (2,) and torch.allclose(e, model(junk, torch.tensor([0.2, 0.2], dtype=torch.float64)))


def test_energy_confines_chains_far_from_the_data():
    g = _batch(["CCO", "CC(C)=O"])
    model = _model(g)
    far = (g[0] * 50 + 20, g[1] * 50 + 20, g[2])
    _, (sx, sa, _) = energy_and_score(model, far, torch.tensor([0.5, 0.5], dtype=torch.float64))
    sx, sa = GraphSpace().tangent((sx, sa, g[2]))[:2]
    # the score points back towards the data: negative inner product with the displacement
    assert (sx * far[0]).sum() < 0 and (sa * far[1]).sum() < 0


def test_prior_draws_node_counts_from_the_training_histogram(tmp_path):
    bundle = nci(cache_dir=str(tmp_path))
    torch.manual_seed(0)
    x, a, mask = prior(20000, bundle, 1.5)
    freq = torch.bincount(mask.sum(1), minlength=10).double() / 20000
    assert (freq - bundle.extras["node_counts"]).abs().max() < 0.015
    assert torch.allclose(a, a.transpose(1, 2)) and torch.all(x[~mask] == 0)
    assert abs(float(x[mask].std()) - 1.5) < 0.05


def test_graph_space_box_holds_runaway_chains_and_leaves_data_alone():
    space = GraphSpace(margin=6.0)
    x = torch.tensor([[[0.0, 1.0], [7811.0, -300.0]]])
    a = torch.tensor([[[0.0, 22.0], [22.0, 0.0]]])
    mask = torch.tensor([[True, True]])
    px, pa, pm = space.project((x, a, mask))
    assert px.tolist() == [[[0.0, 1.0], [7.0, -6.0]]] and pa.tolist() == [[[0.0, 9.0], [9.0, 0.0]]]
    assert pm is mask
    with pytest.raises(ValueError, match="margin"):
        GraphSpace(margin=0)
