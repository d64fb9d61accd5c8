"""Fuzz-test case table: the layouts the hostile files are placed in, folder and split-file cases, and controls."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _pcfuzz_clouds import n_npy, n_npz
from _pcfuzz_meshes import MESH_KINDS
from _pcfuzz_writers import (
    FORMATS,
    MESH_SYN,
    NPY_SYN,
    NPZ_SYN,
    RUN_TINY,
    TINY,
    WRITERS,
    Hostile,
    box,
    cloud,
    gz,
    npy,
    npy_of,
    npz_of,
    prism,
    tris,
    w_obj,
    w_off,
)


# --------------------------------------------------------------------------- case table
@dataclass
class Case:
    id: str
    layout: str  # mesh | npy | npz | primitives | custom
    expect: str  # ok | skip | error | any
    make: Callable[[Path, random.Random], list[str]]  # writes files, returns the argv
    seed: int = 0
    command: str = "train"
    marks: tuple = ()


def good_meshes(folder: Path, rng: random.Random, n: int = 3) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        v, f = box(rng)
        (folder / f"good{i}.off").write_bytes(w_off(v, f))


def good_npy(root: Path, rng: random.Random, n_train: int = 2) -> None:
    for split, n in (("train", n_train), ("test", 1)):
        (root / NPY_SYN / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / NPY_SYN / split / f"good{i}.npy").write_bytes(npy_of(cloud(rng)))


def good_npz(root: Path, rng: random.Random, n: int = 3) -> None:
    for i in range(n):
        (root / NPZ_SYN / f"good{i}").mkdir(parents=True, exist_ok=True)
        (root / NPZ_SYN / f"good{i}" / "pointcloud.npz").write_bytes(npz_of(points=cloud(rng), normals=cloud(rng)))


def argv(dataset: str, root: Path | None, out: Path, *extra: str, command: str = "train") -> list[str]:
    base = [command, "--plugin", "pointcloud", "--set", f'data.name="{dataset}"']
    if root is not None:
        base += ["--set", f'data.root="{root}"']
    if dataset in ("meshes", "shapenet") and root is not None:
        base += ["--set", "data.pool_points=64", "--set", "data.test_fraction=0"]
    if dataset == "primitives":
        base += ["--set", "data.n_train=4", "--set", "data.n_test=2", "--set", 'data.classes=["box", "sphere"]']
    run = RUN_TINY if command == "run" else []
    return [*base, *TINY, *run, *extra, "--out", str(out)]


def place(h: Hostile, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if h.data is None:
        (folder / h.name).mkdir()
    else:
        (folder / h.name).write_bytes(h.data)


def mesh_case(gen: Callable, mode: str) -> Callable[[Path, random.Random], list[str]]:
    def make(tmp: Path, rng: random.Random) -> list[str]:
        h, _ = gen(rng)
        root = tmp / "root"
        if mode == "mixed":
            good_meshes(root / MESH_SYN, rng)
        place(h, root / MESH_SYN)
        return argv("meshes", root, tmp / "out")

    return make


def npy_case(gen: Callable, mode: str) -> Callable[[Path, random.Random], list[str]]:
    def make(tmp: Path, rng: random.Random) -> list[str]:
        h, _ = gen(rng)
        root = tmp / "root"
        if mode == "mixed":
            good_npy(root, rng)
        else:
            (root / NPY_SYN / "test").mkdir(parents=True)
        place(h, root / NPY_SYN / "train")
        return argv("shapenet", root, tmp / "out", "--set", 'data.layout="pc15k"')

    return make


def npz_case(gen: Callable, mode: str) -> Callable[[Path, random.Random], list[str]]:
    def make(tmp: Path, rng: random.Random) -> list[str]:
        h, _ = gen(rng)
        root = tmp / "root"
        if mode == "mixed":
            good_npz(root, rng)
        place(h, root / NPZ_SYN / "hostile")
        return argv("shapenet", root, tmp / "out", "--set", 'data.layout="onet"', "--set", "data.test_fraction=0")

    return make


def _expectation(gen: Callable, seed: int, mode: str) -> tuple[str, str]:
    """What the generated file is (for the id) and the outcome the case must have."""
    h, what = gen(random.Random(seed))
    if h.expect == "skip" and mode == "alone":
        return what, "error"
    if mode == "alone" and (h.data is None or h.name.endswith(".txt.gz")):
        return what, "error"  # nothing but a folder / a non-mesh file: no shapes at all
    if h.name == "good0.obj" and mode == "alone":
        return what, "ok"  # the duplicate of a file that is not there: just a mesh
    return what, h.expect


def file_cases() -> list[Case]:
    cases = []
    plans = [
        ("mesh", MESH_KINDS, mesh_case, 5),
        ("npy", {"npy": n_npy}, npy_case, 48),
        ("npz", {"npz": n_npz}, npz_case, 36),
    ]
    for layout, kinds, make_case, per_kind in plans:
        for kind, gen in kinds.items():
            for j in range(per_kind):
                seed = 1000 * len(cases) + j
                mode = "alone" if j % 4 == 3 else "mixed"
                what, expect = _expectation(gen, seed, mode)
                cases.append(Case(f"{layout}-{kind}-{what}-{mode}-s{seed}", layout, expect, make_case(gen, mode), seed))
    return cases


# --------------------------------------------------------------------------- folders and split files
def empty_root(tmp, rng):
    (tmp / "root").mkdir()
    return argv("meshes", tmp / "root", tmp / "out")


def empty_synset(tmp, rng):
    (tmp / "root" / MESH_SYN).mkdir(parents=True)
    return argv("meshes", tmp / "root", tmp / "out")


def missing_root(tmp, rng):
    return argv("meshes", tmp / "nowhere", tmp / "out")


def root_is_file(tmp, rng):
    (tmp / "root").write_text("not a folder")
    return argv("meshes", tmp / "root", tmp / "out")


def auto_empty(tmp, rng):
    (tmp / "root" / "notes").mkdir(parents=True)
    return argv("shapenet", tmp / "root", tmp / "out")


def non_digit_only(tmp, rng):
    good_meshes(tmp / "root" / "tables", rng)
    return argv("meshes", tmp / "root", tmp / "out")


def unknown_category(tmp, rng):
    good_meshes(tmp / "root" / MESH_SYN, rng)
    return argv("meshes", tmp / "root", tmp / "out", "--set", 'data.category="chair"')


def wrong_layout(tmp, rng):
    good_meshes(tmp / "root" / MESH_SYN, rng)
    return argv("shapenet", tmp / "root", tmp / "out", "--set", 'data.layout="onet"')


def lst(train: str | bytes | None, test: str | bytes | None):
    def make(tmp, rng):
        folder = tmp / "root" / MESH_SYN
        good_meshes(folder, rng, 4)
        for name, body in (("train.lst", train), ("test.lst", test)):
            if body is not None:
                (folder / name).write_bytes(body if isinstance(body, bytes) else body.encode())
        return argv("meshes", tmp / "root", tmp / "out")

    return make


def all_held_out(tmp, rng):
    good_meshes(tmp / "root" / MESH_SYN, rng, 1)
    return argv("meshes", tmp / "root", tmp / "out", "--set", "data.test_fraction=0.5")


def pc15k_no_test(tmp, rng):
    (tmp / "root" / NPY_SYN / "train").mkdir(parents=True)
    (tmp / "root" / NPY_SYN / "train" / "a.npy").write_bytes(npy_of(cloud(rng)))
    return argv("shapenet", tmp / "root", tmp / "out")


def pc15k_empty_train(tmp, rng):
    good_npy(tmp / "root", rng)
    for p in (tmp / "root" / NPY_SYN / "train").iterdir():
        p.unlink()
    return argv("shapenet", tmp / "root", tmp / "out", "--set", 'data.layout="pc15k"')


def onet_dir_named_npz(tmp, rng):
    good_npz(tmp / "root", rng)
    (tmp / "root" / NPZ_SYN / "odd" / "pointcloud.npz").mkdir(parents=True)
    return argv("shapenet", tmp / "root", tmp / "out", "--set", "data.test_fraction=0")


def shapenet_model_normalized(tmp, rng):
    for i in range(3):
        v, f = box(rng)
        p = tmp / "root" / MESH_SYN / f"shape{i}" / "models"
        p.mkdir(parents=True)
        (p / "model_normalized.obj").write_bytes(w_obj(v, f))
    return argv("meshes", tmp / "root", tmp / "out")


def folder_cases() -> list[Case]:
    """Bad dataset folders and split files (and the valid ones beside them)."""
    return [
        Case("folder-empty_root", "custom", "error", empty_root),
        Case("folder-empty_synset", "custom", "error", empty_synset),
        Case("folder-missing_root", "custom", "error", missing_root),
        Case("folder-root_is_file", "custom", "error", root_is_file),
        Case("folder-auto_no_layout", "custom", "error", auto_empty),
        Case("folder-non_digit_folders_only", "custom", "error", non_digit_only),
        Case("folder-unknown_category", "custom", "error", unknown_category),
        Case("folder-wrong_layout", "custom", "error", wrong_layout),
        Case("folder-all_shapes_held_out", "custom", "error", all_held_out),
        Case("folder-pc15k_no_test_folder", "custom", "ok", pc15k_no_test),
        Case("folder-pc15k_empty_train", "custom", "error", pc15k_empty_train),
        Case("folder-onet_dir_named_pointcloud_npz", "custom", "ok", onet_dir_named_npz),
        Case("folder-shapenetcore_model_normalized", "custom", "ok", shapenet_model_normalized),
        Case("lst-both_ok", "custom", "ok", lst("good0\ngood1\ngood2\n", "good3\n")),
        Case("lst-train_only", "custom", "error", lst("good0\ngood1\n", None)),
        Case("lst-test_only", "custom", "error", lst(None, "good0\n")),
        Case("lst-overlap", "custom", "error", lst("good0\ngood1\n", "good1\n")),
        Case("lst-missing_names", "custom", "skip", lst("good0\ngood1\nghost\n", "good3\n")),
        Case("lst-duplicates", "custom", "skip", lst("good0\ngood0\ngood1\n", "good3\n")),
        Case("lst-binary", "custom", "error", lst(b"\x00\xff\x00garbage", "good3\n")),
        Case("lst-not_utf8", "custom", "error", lst(b"good0\n\xff\xfe\n", "good3\n")),
        Case("lst-empty_train", "custom", "error", lst("", "good3\n")),
        Case("lst-crlf_and_blanks", "custom", "ok", lst("good0\r\n\r\n  good1  \r\n", "good3\r\n")),
    ]


# --------------------------------------------------------------------------- controls
def meshes_of(fmt: str, gzipped: bool = False, polygons: bool = False):
    def make(tmp, rng):
        folder = tmp / "root" / MESH_SYN
        folder.mkdir(parents=True)
        suffix, writer = WRITERS[fmt]
        for i in range(3):
            v, f = prism(rng) if polygons else box(rng)
            if fmt.startswith("stl") or not polygons and rng.random() < 0.5:
                f = tris(f)
            data = writer(v, f)
            (folder / f"m{i}{suffix}{'.gz' if gzipped else ''}").write_bytes(gz(data) if gzipped else data)
        return argv("meshes", tmp / "root", tmp / "out")

    return make


def pc15k(tmp, rng):
    good_npy(tmp / "root", rng, 3)
    return argv("shapenet", tmp / "root", tmp / "out")


def onet(tmp, rng):
    good_npz(tmp / "root", rng, 4)
    return argv("shapenet", tmp / "root", tmp / "out")


def onet_split(tmp, rng):  # with a held-out test split and the unit-sphere normalisation
    good_npz(tmp / "root", rng, 4)
    return argv(
        "shapenet",
        tmp / "root",
        tmp / "out",
        "--set",
        'data.normalization="unit_sphere"',
        "--set",
        "data.test_fraction=0.25",
    )


def prims(tmp, rng):
    return argv("primitives", None, tmp / "out")


def edge_model(tmp, rng):
    return argv("primitives", None, tmp / "out", "--set", 'model.block="edge"', "--set", "model.k=8")


def run_meshes(tmp, rng):
    meshes_of("obj", polygons=True)(tmp, rng)
    return argv("meshes", tmp / "root", tmp / "out", command="run")


def run_pc15k_with_skip(tmp, rng):
    good_npy(tmp / "root", rng, 3)
    (tmp / "root" / NPY_SYN / "train" / "bad.npy").write_bytes(npy("<f4", (2**40 // 12, 3), b""))
    return argv("shapenet", tmp / "root", tmp / "out", command="run")


def run_prims(tmp, rng):
    return argv("primitives", None, tmp / "out", command="run")


def run_onet_bbox(tmp, rng):
    good_npz(tmp / "root", rng, 4)
    extra = ["--set", 'data.normalization="bbox"', "--set", "data.test_fraction=0.25"]
    return argv("shapenet", tmp / "root", tmp / "out", *extra, command="run")


def control_cases() -> list[Case]:
    """Valid data in every layout and format, and `hebm run`: all must train."""
    cases = [Case(f"control-meshes-{fmt}", "custom", "ok", meshes_of(fmt)) for fmt in FORMATS]
    cases += [
        Case("control-meshes-obj-polygons", "custom", "ok", meshes_of("obj", polygons=True)),
        Case("control-meshes-ply_le-polygons", "custom", "ok", meshes_of("ply_le", polygons=True)),
        Case("control-meshes-off-gz", "custom", "ok", meshes_of("off", gzipped=True)),
        Case("control-meshes-stl_bin-gz", "custom", "ok", meshes_of("stl_bin", gzipped=True)),
        Case("control-pc15k", "custom", "ok", pc15k),
        Case("control-onet", "custom", "ok", onet),
        Case("control-onet-test_split-unit_sphere", "custom", "ok", onet_split),
        Case("control-primitives", "custom", "ok", prims),
        Case("control-primitives-edge_model", "custom", "ok", edge_model),
        Case("control-run-meshes-polygons", "custom", "ok", run_meshes, command="run"),
        Case("control-run-pc15k-one_skipped", "custom", "skip", run_pc15k_with_skip, command="run"),
        Case("control-run-primitives", "custom", "ok", run_prims, command="run"),
        Case("control-run-onet-bbox", "custom", "ok", run_onet_bbox, command="run"),
    ]
    return cases
