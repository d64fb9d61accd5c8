"""Chamfer and EMD on hand-made clouds with known answers."""

import math

import pytest
import torch
from hebm_pointcloud.geometry import chamfer, chamfer_matrix, knn_indices
from hebm_pointcloud.metrics import emd, emd_matrix


def test_chamfer_known_answers():
    a = torch.tensor([[[0.0, 0, 0]]])
    b = torch.tensor([[[1.0, 0, 0]]])
    assert chamfer(a, b).item() == pytest.approx(2.0)  # 1² one way + 1² the other
    a2 = torch.tensor([[[0.0, 0, 0], [2.0, 0, 0]]])
    # a2 -> b: distances² 1 and 1 (mean 1); b -> a2: 1 -> total 2
    assert chamfer(a2, b).item() == pytest.approx(2.0)
    c = torch.tensor([[[0.0, 0, 0], [3.0, 0, 0]]])
    d = torch.tensor([[[0.0, 0, 0]]])
    # c -> d: 0 and 9 (mean 4.5); d -> c: 0 -> 4.5
    assert chamfer(c, d).item() == pytest.approx(4.5)


def test_chamfer_identity_permutation_and_matrix():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 50, 3, generator=g)
    perm = torch.randperm(50, generator=g)
    assert torch.allclose(chamfer(x, x[:, perm]), torch.zeros(3), atol=1e-6)  # cdist uses GEMM: float32 rounding
    y = torch.rand(4, 40, 3, generator=g)
    m = chamfer_matrix(x, y, max_elements=1000)  # forces chunking
    for i in range(3):
        for j in range(4):
            assert m[i, j].item() == pytest.approx(chamfer(x[i : i + 1], y[j : j + 1]).item(), rel=1e-5)


def test_emd_known_answers():
    a = torch.tensor([[0.0, 0, 0], [1.0, 0, 0]])
    assert emd(a, a + torch.tensor([0.0, 0, 1])) == pytest.approx(1.0)  # a translation costs its length
    assert emd(a, a.flip(0)) == pytest.approx(0.0, abs=1e-12)  # a permutation costs nothing
    # the square's corners to the centre-shifted ones: each point moves by sqrt(2)/2 ... matched optimally
    sq = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0.0, 1, 0], [1.0, 1, 0]])
    shifted = sq + torch.tensor([0.5, 0.5, 0.0])
    assert emd(sq, shifted) == pytest.approx(math.sqrt(0.5))
    # crossing assignment: the optimum swaps partners (sum 2 instead of 2·sqrt(5))
    p = torch.tensor([[0.0, 0, 0], [2.0, 0, 0]])
    q = torch.tensor([[0.0, 1, 0], [2.0, 1, 0]])
    assert emd(p, q.flip(0)) == pytest.approx(1.0)


def test_emd_matrix_symmetric_and_zero_diagonal():
    x = torch.rand(4, 20, 3, generator=torch.Generator().manual_seed(1))
    m = emd_matrix(x)
    assert torch.allclose(m, m.T) and torch.all(m.diagonal() == 0)
    assert m[0, 1].item() == pytest.approx(emd(x[0], x[1]))


def test_emd_matrix_threads_give_the_serial_answer():
    g = torch.Generator().manual_seed(4)
    x, y = torch.rand(7, 16, 3, generator=g), torch.rand(5, 16, 3, generator=g)
    serial, cross = emd_matrix(x, workers=1), emd_matrix(x, y, workers=1)
    assert serial[2, 5].item() == pytest.approx(emd(x[2], x[5]))
    assert cross[6, 4].item() == pytest.approx(emd(x[6], y[4]))
    assert torch.equal(emd_matrix(x, workers=3), serial) and torch.equal(emd_matrix(x, y, workers=3), cross)


def test_knn_excludes_self_and_is_sorted():
    x = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0], [6.0, 0, 0]]])
    idx = knn_indices(x, 2)
    assert idx[0, 0].tolist() == [1, 2] and idx[0, 3].tolist() == [2, 1]
    with pytest.raises(ValueError, match="k=4"):
        knn_indices(x, 4)


def test_knn_matches_brute_force_far_from_the_origin_and_in_any_block_size():
    """The product-form ranking equals sorting all distances, whatever the blocks; it centres each
    cloud first, so a cloud at 1000 units from the origin (float32) keeps its neighbours, which an
    uncentred cdist loses."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(5, 64, 3, generator=g)
    d = torch.cdist(x.double(), x.double())
    d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    brute = d.argsort(-1)[..., :6]
    assert torch.equal(knn_indices(x, 6), brute)
    assert torch.equal(knn_indices(x, 6, max_elements=1), brute)  # one cloud per block
    assert torch.equal(knn_indices(x, 6, max_elements=10**9), brute)  # every cloud in one block
    far = x + torch.tensor([1000.0, -1000.0, 500.0])
    # float32 at 1000 keeps ~6e-5 of each coordinate: compare the neighbour sets, allowing near-ties
    same = (knn_indices(far, 6).sort(-1).values == brute.sort(-1).values).float().mean().item()
    assert same > 0.99
