"""PointFlow metrics: a set against itself, two disjoint families, the EMD subsampling error."""

import pytest
import torch
from hebm_pointcloud.data import primitives
from hebm_pointcloud.geometry import chamfer_matrix
from hebm_pointcloud.metrics import PointFlowMetrics, class_shares, mmd_cov, one_nna, one_nna_sides, pointflow


def _family(n, shift, seed, points=64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, points, 3, generator=g) * 0.5 + shift


def test_set_against_itself():
    x = _family(8, 0.0, 0)
    m = PointFlowMetrics(emd_points=0)
    m.update(x, x)
    out = m.compute()
    assert out["pointflow/mmd_cd"] == pytest.approx(0.0, abs=1e-6)  # float32 GEMM rounding in cdist
    assert out["pointflow/mmd_emd"] == pytest.approx(0.0, abs=1e-12)
    assert out["pointflow/cov_cd_pct"] == 100.0 and out["pointflow/cov_emd_pct"] == 100.0
    assert out["pointflow/emd_subsample_max_rel_error"] == 0.0


def test_disjoint_families_are_told_apart():
    a, b = _family(10, 0.0, 1), _family(10, 5.0, 2)
    m = PointFlowMetrics(emd_points=32, emd_check_pairs=3)
    m.update(a, b)
    out = m.compute()
    assert out["pointflow/1nna_cd_pct"] == 100.0 and out["pointflow/1nna_emd_pct"] == 100.0
    assert out["pointflow/1nna_cd_generated_pct"] == out["pointflow/1nna_emd_reference_pct"] == 100.0
    assert out["pointflow/mmd_cd"] > 50  # ~2·5²·... far apart
    assert out["pointflow/emd_points"] == 32 and out["pointflow/emd_check_pairs"] == 3
    assert 0 <= out["pointflow/emd_subsample_mean_rel_error"] < 0.05  # far-apart clouds: EMD ≈ the shift


def test_same_family_1nna_near_half_and_generated_set_truncated():
    a, b = _family(40, 0.0, 3, points=16), _family(30, 0.0, 4, points=16)
    m = PointFlowMetrics(use_emd=False)
    m.update(a, b)
    out = m.compute()
    assert out["pointflow/n_generated"] == 30 and out["pointflow/n_reference"] == 30
    assert 20 <= out["pointflow/1nna_cd_pct"] <= 80


def test_mmd_cov_and_1nna_by_hand():
    d = torch.tensor([[0.1, 0.5, 0.9], [0.2, 0.4, 0.3]])  # 2 generated x 3 reference
    mmd, cov = mmd_cov(d)
    assert mmd == pytest.approx((0.1 + 0.4 + 0.3) / 3)
    assert cov == pytest.approx(1 / 3)  # both generated pick reference 0
    gg = torch.tensor([[0.0, 9.0], [9.0, 0.0]])
    rr = torch.full((3, 3), 9.0).fill_diagonal_(0)
    # each generated shape's nearest is a reference (wrong), each reference's nearest is generated (wrong)
    assert one_nna(gg, d, rr) == pytest.approx(0.0)
    # generated shapes that resemble each other more than any reference are all caught, while
    # the references (nearest: a generated one) are all missed: 2 of 5 right
    tight = torch.tensor([[0.0, 0.05], [0.05, 0.0]])
    assert one_nna_sides(tight, d, rr) == pytest.approx((1.0, 0.0))
    assert one_nna(tight, d, rr) == pytest.approx(2 / 5)


def test_class_shares_follow_the_nearest_reference_class():
    # reference: 6 clouds near 0 ("near") and 2 near 5 ("far"); generated: 3 near 5, 1 near 0
    ref = torch.cat([_family(6, 0.0, 5), _family(2, 5.0, 6)])
    labels = ["near"] * 6 + ["far"] * 2
    gen = torch.cat([_family(3, 5.0, 7), _family(1, 0.0, 8)])
    assert class_shares(chamfer_matrix(gen, ref), labels) == {"far": (0.75, 0.25), "near": (0.25, 0.75)}
    m = PointFlowMetrics(use_emd=False, labels=labels)
    m.update(gen, ref)
    out = m.compute()  # 4 generated clouds: the reference is cut to its first 4, all "near"
    assert out["pointflow/class_pct/far"] == 0.0 and out["pointflow/class_reference_pct/near"] == 100.0
    m = PointFlowMetrics(use_emd=False, labels=labels)
    m.update(torch.cat([gen, _family(4, 5.0, 9)]), ref)
    out = m.compute()  # 7 of 8 generated clouds are "far", against 2 of 8 reference clouds
    assert out["pointflow/class_pct/far"] == 87.5 and out["pointflow/class_reference_pct/far"] == 25.0
    assert out["pointflow/class_tv_pct"] == pytest.approx(62.5)
    m = PointFlowMetrics(use_emd=False, labels=labels[:-1])
    m.update(gen, ref)
    with pytest.raises(ValueError, match="7 reference labels for 8 reference clouds"):
        m.compute()


def test_primitives_label_their_clouds_and_pointflow_reads_them():
    bundle = primitives(classes=["box", "torus"], n_train=4, n_test=3, n_points=64)
    assert bundle.extras["labels"] == {"train": ["box", "torus"] * 2, "test": ["box", "torus", "box"]}
    m = pointflow([], use_emd=False, bundle=bundle)
    m.update(bundle.test, bundle.test)
    out = m.compute()  # the reference against itself: every class at its own share
    assert out["pointflow/class_pct/box"] == pytest.approx(200 / 3) and out["pointflow/class_tv_pct"] == 0.0
