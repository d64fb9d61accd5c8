"""Fuzz-test cases of bad factory options (data, model, statistics, metrics): each must be refused."""

from __future__ import annotations

from _pcfuzz_cases import Case, argv, good_meshes
from _pcfuzz_writers import MESH_SYN, NPY_SYN, cloud, npy_of

# --------------------------------------------------------------------------- options
#: dataset -> bad ``[data]`` options
DATA_OPTS = {
    "meshes": [
        "n_points=0",
        "n_points=-1",
        "n_points=1",
        "n_points=1099511627776",
        "n_points=64.5",
        'n_points="64"',
        "n_points=true",
        "n_points=nan",
        "n_points=inf",
        "pool_points=0",
        "pool_points=-5",
        "pool_points=1000000000",
        "samples_per_shape=0",
        "samples_per_shape=100000000",
        "test_fraction=-0.1",
        "test_fraction=1",
        "test_fraction=1.5",
        'test_fraction="a"',
        "test_fraction=nan",
        "fold=-1",
        "fold=3",
        "fold=1.5",
        "max_shapes=0",
        "max_shapes=-1",
        "seed=-1",
        "seed=9223372036854775807",
        'normalization="bogus"',
        "normalization=3",
        "category=[]",
        "category=5",
        'category=["table", 3]',
        'category="spaceship"',
        "category={a = 1}",
        'bad_files="maybe"',
        "root=5",
        'root=""',
        "frobnicate=1",
        'layout="pc15k"',
        # many samples of many points: the memory check refuses before loading
        "samples_per_shape=10000",
    ],
    "primitives": [
        "n_train=0",
        "n_train=-1",
        "n_train=1000000000000",
        "n_test=-1",
        "n_points=1",
        "n_points=0",
        "n_points=1000000000",
        "classes=[]",
        'classes=["blob"]',
        "classes=[1]",
        'classes=["box", "box"]',
        "seed=-1",
        'normalization="zscore"',
    ],
}
#: bad ``[model]`` options (lines of one case joined by a newline)
MODEL_OPTS = [
    "hidden=0",
    "hidden=-1",
    "hidden=1000000",
    "hidden=8.5",
    'hidden="8"',
    "depth=-1",
    "depth=1000",
    'pool="median"',
    'block="conv"',
    "k=0",
    "k=1000000",
    "noise_conditional=1",
    # edge blocks need k < the clouds' 64 points
    'block="edge"\nk=100',
    "hidden=4096",  # with depth 1 000 000 would be caught by depth; 4096 x 64 deep: too many weights
]
#: bad ``statistics`` entries
STAT_OPTS = [
    '{name = "laplacian", k = 0}',
    '{name = "laplacian", k = -3}',
    '{name = "laplacian", k = 64}',
    '{name = "laplacian", k = 1000000000}',
    '{name = "laplacian", k = 8.5}',
    '{name = "laplacian", ks = [4, 4]}',
    '{name = "laplacian", ks = "8"}',
    '{name = "laplacian", ks = [0]}',
    '{name = "laplacian_log", eps = 0}',
    '{name = "laplacian_scaled", eps = -1}',
    '{name = "spacing", eps = nan}',
    '{name = "d2", bins = 0}',
    '{name = "d2", bins = 1000000000}',
    '{name = "d2", partners = 0}',
    '{name = "d2", max_distance = 0}',
    '{name = "d2", max_distance = -2}',
    '{name = "d2", bandwidth = 0}',
    '{name = "d2", bandwidth = inf}',
]
#: bad options of the ``pointflow`` metric
METRIC_OPTS = [
    "emd_points = -1",
    "emd_points = 1000000000",
    'emd_points = "a"',
    "emd_check_pairs = -1",
    'use_emd = "no"',
    "max_shapes = 0",
    "seed = -4",
    "frobnicate = 1",
]


def data_case(dataset: str, opt: str):
    def make(tmp, rng):
        root = None
        if dataset == "meshes":
            good_meshes(tmp / "root" / MESH_SYN, rng)
            root = tmp / "root"
        extra = ["--set", f"data.{opt}"]
        if opt == "samples_per_shape=10000":
            extra += ["--set", "data.n_points=1048576", "--set", "data.pool_points=1048576"]
        if opt == "fold=3":
            extra += ["--set", "data.test_fraction=0.5"]
        a = argv(dataset, root, tmp / "out", *extra)  # a later --set wins
        return a

    return make


def model_case(opt: str):
    def make(tmp, rng):
        extra = []
        for part in opt.split("\n"):
            extra += ["--set", f"model.{part}"]
        if opt == "hidden=4096":
            extra += ["--set", "model.depth=64"]
        return argv("primitives", None, tmp / "out", *extra)

    return make


def stat_case(opt: str):
    def make(tmp, rng):
        return argv("primitives", None, tmp / "out", "--set", f"statistics=[{opt}]")

    return make


def metric_case(opt: str):
    def make(tmp, rng):
        a = argv("primitives", None, tmp / "out", command="run")
        i = a.index('evaluate.metrics=[{name = "pointflow", use_emd = false}]')
        a[i] = f'evaluate.metrics=[{{name = "pointflow", {opt}}}]'
        return a

    return make


def big_emd(tmp, rng):  # exact EMD on 4200-point clouds: refused, not hours of work
    for split, n in (("train", 2), ("test", 1)):
        (tmp / "root" / NPY_SYN / split).mkdir(parents=True)
        for i in range(n):
            (tmp / "root" / NPY_SYN / split / f"c{i}.npy").write_bytes(npy_of(cloud(rng, 4200)))
    a = argv("shapenet", tmp / "root", tmp / "out", "--set", "data.n_points=4200", command="run")
    i = a.index('evaluate.metrics=[{name = "pointflow", use_emd = false}]')
    a[i] = 'evaluate.metrics=[{name = "pointflow", emd_points = 0}]'
    return a


def option_cases() -> list[Case]:
    """Bad factory options: each must be refused (exit 2, one line) before training."""
    cases = [
        Case(f"opt-data-{dataset}-{opt}", "custom", "error", data_case(dataset, opt))
        for dataset, opts in DATA_OPTS.items()
        for opt in opts
    ]
    cases += [Case(f"opt-model-{opt.replace(chr(10), ',')}", "custom", "error", model_case(opt)) for opt in MODEL_OPTS]
    cases += [Case(f"opt-statistic-{opt}", "custom", "error", stat_case(opt)) for opt in STAT_OPTS]
    cases += [Case(f"opt-metric-{opt}", "custom", "error", metric_case(opt), command="run") for opt in METRIC_OPTS]
    cases.append(Case("opt-metric-exact_emd_on_4200_points", "custom", "error", big_emd, command="run"))
    return cases
