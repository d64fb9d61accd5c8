"""Datasets: the shared ShapeNet (ONet layout), a PC15k folder, a mesh folder, the primitives."""

import numpy as np
import pytest
import torch
from _pcutil import ONET
from hebm_pointcloud import open3d
from hebm_pointcloud.data import primitives, resolve_categories, shapenet


def test_onet_layout_by_name_and_id_with_global_normalisation():
    b = shapenet(str(ONET), category="bench", n_points=256)
    assert b.info["layout"] == "onet" and b.info["categories"] == {"02828884": "bench"}
    assert b.train.shape == (15, 256, 3) and b.test.shape == (5, 256, 3)  # 20 shapes, ceil(0.25·20) held out
    both = shapenet(str(ONET), category=["02828884", "table"], n_points=128, samples_per_shape=2)
    assert both.train.shape == (60, 128, 3) and both.info["n_shapes_test"] == 10
    norm = both.info["normalization"]
    assert norm["name"] == "global" and len(norm["mean"]) == 3 and norm["std"] > 0
    assert both.train.reshape(-1, 3).mean(0).abs().max() < 0.05 and abs(both.train.std().item() - 1) < 0.05
    assert len(both.info["files_sha256"]) == 64 and "protocol" in both.info
    assert set(both.info["test_ids"]).isdisjoint({"x"}) and len(both.info["test_ids"]) == 10
    # each cloud's class, in order: a training shape's copies follow it
    labels = both.extras["labels"]
    assert labels["train"] == ["bench"] * 30 + ["table"] * 30 and labels["test"] == ["bench"] * 5 + ["table"] * 5
    assert [p.split("/")[0] for p in both.info["test_ids"]] == ["02828884"] * 5 + ["04379243"] * 5


@pytest.mark.parametrize(("name", "check"), [("unit_sphere", "radius"), ("bbox", "box")])
def test_per_shape_normalisations(name, check):
    b = shapenet(str(ONET), category="table", n_points=512, normalization=name, max_shapes=4)
    x = b.train
    if check == "radius":
        assert x.norm(dim=-1).amax(1).max() <= 1.0 + 1e-5
    else:
        assert x.abs().amax((1, 2)).max() <= 1.0 + 1e-5 and x.abs().amax((1, 2)).min() > 0.9
    assert b.info["normalization"]["name"] == name


def test_errors_are_one_clear_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="ShapeNet root not found"):
        shapenet(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="unknown ShapeNet category 'spaceship'"):
        shapenet(str(ONET), category="spaceship")
    with pytest.raises(ValueError, match="unknown normalization"):
        shapenet(str(ONET), category="bench", normalization="zscore")
    with pytest.raises(ValueError, match="no known ShapeNet layout"):
        shapenet(str(tmp_path))
    assert resolve_categories(["chair", "03001627", "airplane"]) == ["03001627", "02691156"]


def test_folds_hold_every_shape_out_once():
    """Folds 0…3 of the hash split partition the 40 shared shapes; fold 0 is the default split."""
    both = ["bench", "table"]
    tests = [set(shapenet(str(ONET), category=both, n_points=32, fold=f).info["test_ids"]) for f in range(4)]
    assert [len(t) for t in tests] == [10] * 4 and len(set.union(*tests)) == 40
    assert tests[0] == set(shapenet(str(ONET), category=both, n_points=32).info["test_ids"])
    b = shapenet(str(ONET), category="bench", n_points=32, fold=2)
    assert b.info["fold"] == 2 and "fold 2" in b.info["split"]
    assert b.train.shape == (15, 32, 3) and not set(b.info["test_ids"]) & tests[0]
    with pytest.raises(ValueError, match="fold 4 has no test shapes: 20 shapes in blocks of 5 give folds 0…3"):
        shapenet(str(ONET), category="bench", fold=4)
    with pytest.raises(ValueError, match=r"fold must be an integer in \[0, "):
        shapenet(str(ONET), category="bench", fold=-1)


def test_folds_need_the_hash_split(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (tmp_path / "03001627" / split).mkdir(parents=True)
        np.save(tmp_path / "03001627" / split / "s.npy", rng.random((300, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="fold = 1 needs the hash split.*PC15k"):
        shapenet(str(tmp_path), category="chair", n_points=100, fold=1)


def test_pc15k_layout(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2), ("val", 1)):
        (tmp_path / "03001627" / split).mkdir(parents=True)
        for i in range(n):
            np.save(tmp_path / "03001627" / split / f"s{i}.npy", rng.random((300, 3)).astype(np.float32))
    b = shapenet(str(tmp_path), category="chair", n_points=100)
    assert b.info["layout"] == "pc15k" and b.train.shape == (3, 100, 3) and b.test.shape == (2, 100, 3)


def test_mesh_layout(tmp_path):
    o3d = open3d()
    (tmp_path / "04379243").mkdir()
    for i, mesh in enumerate([o3d.geometry.TriangleMesh.create_box(), o3d.geometry.TriangleMesh.create_sphere()]):
        o3d.io.write_triangle_mesh(str(tmp_path / "04379243" / f"m{i}.off"), mesh)
    b = shapenet(str(tmp_path), category="table", n_points=64, pool_points=128, test_fraction=0.5)
    assert b.info["layout"] == "mesh" and b.train.shape == (1, 64, 3) and b.test.shape == (1, 64, 3)


def test_primitives_are_seeded_and_balanced():
    a = primitives(classes=["box", "torus"], n_train=4, n_test=2, n_points=64, seed=3)
    b = primitives(classes=["box", "torus"], n_train=4, n_test=2, n_points=64, seed=3)
    assert torch.equal(a.train, b.train) and a.train.shape == (4, 64, 3) and a.test.shape == (2, 64, 3)
    assert a.info["class_counts"] == {"box": 2, "torus": 2}
    assert a.train.norm(dim=-1).amax(1).max() <= 1 + 1e-5  # unit_sphere by default
    with pytest.raises(ValueError, match="unknown primitive shape 'blob'"):
        primitives(classes=["blob"], n_train=1)
