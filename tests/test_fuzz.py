"""Hostile inputs through the real CLI: config files, ``--set`` values, options, output folders and
damaged checkpoints. Every case must end in exit 0 or one ``hebm: error:`` line (exit 2), in time,
with only finite numbers in what it wrote (:func:`hebm_core.testing.run_cli` judges). Seeded
generators, one pytest item per case; controls prove the tiny setting really trains."""

from __future__ import annotations

import math
import pickle
import random
import zipfile
from pathlib import Path

import pytest

from hebm_core.config.reference import reference_rows
from hebm_core.testing import run_cli

TINY = {
    "train.steps": 2,
    "data.n": 64,
    "data.n_test": 16,
    "model.hidden": 8,
    "model.depth": 1,
    "train.batch_size": 16,
    "train.tensorboard": False,
    "sampler.n_samples": 8,
    "sampler.steps_per_sigma": 2,
    "hybrid.calibrate_rounds": 0,
}
#: the tiny config as TOML sections (values are TOML literals)
TINY_TABLES = {
    "": {"plugin": '"toy"', "statistics": '["radius"]'},
    "data": {"name": '"rings"', "n": "64", "n_test": "16"},
    "model": {"name": '"mlp"', "hidden": "8", "depth": "1"},
    "train": {"steps": "2", "batch_size": "16", "tensorboard": "false"},
    "sampler": {"name": '"annealed_langevin"', "n_samples": "8", "steps_per_sigma": "2"},
}


def toml_text(tables: dict[str, dict[str, str]]) -> str:
    lines = [f"{k} = {v}" for k, v in tables.get("", {}).items()]
    for name, table in tables.items():
        if name:
            lines += [f"[{name}]", *(f"{k} = {v}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


TINY_TOML = toml_text(TINY_TABLES)
VALUES = [
    "-1", "0", "1", "2", "0.5", "-0.0", "9223372036854775808", "18446744073709551616", "1e30", "-1e300", "1e300",
    "nan", "inf", "-inf", '"x"', '""', '"1e-3"', "true", "false", "[]", "[1]", "[-1.0, 2.0]", '["a"]', "{}",
    "{a = 1}", "[[]]", "1979-05-27", "07:32:00", '"' + "a" * 5000 + '"', "[" * 40 + "]" * 40, "0x10", "1_000",
]  # fmt: skip
KEYS = [k for k, _, _ in reference_rows() if not k.endswith("*")] + [
    "data.radii", "data.std", "data.seed", "data.k", "data.dim", "objective.sigma_min", "objective.sigma_max",
    "objective.n_sigmas", "objective.sigmas", "sampler.eps", "sampler.denoise", "sampler.sigmas",
    "model.noise_conditional", "evaluate.metrics", "statistics", "plugin", "sampler.progress", "sampler.check_every",
]  # fmt: skip
BAD_ASSIGNMENTS = ["train.lr", "=3", "..x=1", "train..lr=1", "train.lr=[", "a.b.c.d.e=1", "train=3", "data=[1]", "x=1"]


def _tiny_sets() -> list[str]:
    return [a for k, v in TINY.items() for a in ("--set", f"{k}={str(v).lower()}")]


def _set_cases(n: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(1)
    cases = [(f"set-{a}", ["--set", a]) for a in BAD_ASSIGNMENTS]
    while len(cases) < n:
        key, value = rng.choice(KEYS), rng.choice(VALUES)
        command = rng.choice(["train", "train", "run"])
        cases.append((f"{command}-{key}={value[:12]}", [command, "--set", f"{key}={value}"]))
    return [(i, argv if argv[0] in ("train", "run") else ["train", *argv]) for i, argv in cases]


def _toml_mutation(rng: random.Random) -> bytes:
    """The tiny config with one hostile change: a value, a structure, or the bytes themselves."""
    kind = rng.randrange(8)
    if kind < 4:
        key, value = rng.choice(KEYS), rng.choice(VALUES)
        section, _, leaf = key.rpartition(".")
        tables = {name: dict(t) for name, t in TINY_TABLES.items()}
        tables.setdefault(section, {})[leaf] = value
        return toml_text(tables).encode()
    text = TINY_TOML.encode()
    if kind == 4:  # bytes: invalid UTF-8, a BOM, NULs, CRLF, truncation
        junk = bytes(rng.randrange(256) for _ in range(300))
        return rng.choice([b"\xff\xfe" + text, b"\xef\xbb\xbf" + text, text.replace(b"\n", b"\r\n"),
                           text[: rng.randrange(len(text))], text + b"\0\0", junk])  # fmt: skip
    if kind == 5:  # structure: sections of the wrong kind, unknown keys, repeated tables
        return rng.choice([b"[[train]]\nsteps = 2\n", b"train = [1, 2]\n", text + b"[train]\nsteps = 3\n",
                           text + b"unknown = 1\n", b"[data]\nname = 3\n", b"statistics = [{}]\n",
                           b"[hybrid.x]\ny = 1\n"])  # fmt: skip
    if kind == 6:
        depth = rng.choice([50, 500, 5000])
        return b"a = " + b"[" * depth + b"]" * depth + b"\n"
    return text + b"# " + b"x" * rng.choice([10, 2_000_000]) + b"\n"


def _toml_cases(n: int) -> list[tuple[str, int]]:
    return [(f"toml-{i}", i) for i in range(n)]


OPTION_CASES = [
    ["--seed", "-1"], ["--seed", "18446744073709551616"], ["--steps", "-5"], ["--steps", "10000000000"],
    ["--device", "meta"], ["--device", "tpu"], ["--device", "cuda:99"], ["--device", ""], ["--plugin", "nope"],
    ["--dataset", "nope"], ["--model", "nope"], ["--objective", "nope"], ["--statistic", "nope"],
    ["--statistic", "radius", "--statistic", "radius"], ["--config", "/nonexistent.toml"], ["--config", "/"],
    ["--config", "/dev/null"], ["--objective", "esm"], ["--objective", "cd"], ["--objective", "nce"],
    ["--objective", "pcd"], ["--objective", "ssm"], ["--no-statistics"], ["--set", "train.eta_lr=0"],
    ["--set", "hybrid.calibrate_rounds=1", "--set", "hybrid.calibrate_samples=4"],
    ["--set", "hybrid.denoised=true"], ["--set", "hybrid.calibrate_max_kl=inf"],
]  # fmt: skip
SAMPLE_OPTIONS = [
    ["--n", "0"], ["--n", "-1"], ["--n", "1"], ["--n", "100000000"], ["--sampler", "nope"], ["--sampler", "mala"],
    ["--sampler", "hmc", "--set", "sampler.n_steps=3"], ["--sampler", "langevin", "--set", "sampler.step_size=-1"],
    ["--set", "sampler.eps=1e10"], ["--set", "sampler.eps=nan"], ["--set", "sampler.init_sigma=0"],
    ["--set", "sampler.batch_size=3"], ["--set", "sampler.runaway_factor=-1"], ["--set", "sampler.strict=1"],
]  # fmt: skip


def judge(argv: list[str], timeout: float = 60) -> None:
    res = run_cli(argv, timeout=timeout)
    assert not res.problems(), (res.problems(), argv[:8], res.stderr[-2000:])


@pytest.mark.parametrize("case, argv", _set_cases(120), ids=lambda v: v if isinstance(v, str) else "")
def test_set_values(case, argv, tmp_path):
    judge([argv[0], *_tiny_sets(), *argv[1:], "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("case, seed", _toml_cases(90), ids=lambda v: v if isinstance(v, str) else "")
def test_config_files(case, seed, tmp_path):
    path = tmp_path / "run.toml"
    path.write_bytes(_toml_mutation(random.Random(seed)))
    judge(["train", "--config", str(path), "--out", str(tmp_path / "o")])


@pytest.mark.parametrize("argv", OPTION_CASES, ids=" ".join)
def test_options(argv, tmp_path):
    judge(["train", *_tiny_sets(), *argv, "--out", str(tmp_path / "o")])


def _out_cases(tmp: Path) -> list[Path]:
    afile = tmp / "file"
    afile.write_text("x")
    (tmp / "ro").mkdir()
    return [
        afile,
        afile / "under",
        Path("/proc/hebm"),
        Path("/dev/full/x"),
        Path("/sys/hebm"),
        tmp / "ro" / "deep" / "er",
    ]


@pytest.mark.parametrize("which", range(6))
def test_output_folders(which, tmp_path):
    judge(["train", *_tiny_sets(), "--out", str(_out_cases(tmp_path)[which])])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    res = run_cli(["train", *_tiny_sets(), "--steps", "3", "--out", str(out)])
    assert res.rc == 0, res.stderr
    return out / "checkpoint.pt"


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def _damaged(good: bytes, seed: int, where: Path) -> Path:
    rng = random.Random(seed)
    path = where / "damaged.pt"
    kind = seed % 6
    data = bytearray(good)
    if kind == 0:
        data = data[: rng.randrange(len(data))]
    elif kind == 1:
        for _ in range(rng.choice([1, 1, 4, 64])):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 2:
        start = rng.randrange(len(data))
        data[start : start + rng.randrange(1, 4096)] = b"\0" * min(4096, len(data) - start)
    elif kind == 3:
        data += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 512)))
    elif kind == 4:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps(rng.choice([{"a": 1}, [1, 2], _Evil(), "text"])))
        return path
    else:
        data = rng.choice([b"", b"PK\x03\x04", b"not a checkpoint", bytes(range(256)) * 10])
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("seed", range(36))
def test_damaged_checkpoints(seed, checkpoint, tmp_path, capsys):
    path = _damaged(checkpoint.read_bytes(), seed, tmp_path)
    judge(["sample", "--checkpoint", str(path), "--n", "4", "--out", str(tmp_path / "s")])
    assert "pwned" not in capsys.readouterr().out


@pytest.mark.parametrize("argv", SAMPLE_OPTIONS, ids=" ".join)
def test_sample_options(argv, checkpoint, tmp_path):
    judge(["sample", "--checkpoint", str(checkpoint), *argv, "--out", str(tmp_path / "s")])


@pytest.mark.parametrize("command", ["train", "run"])
def test_controls_really_train(command, tmp_path):
    """The tiny setting works: the suite cannot pass by refusing everything."""
    res = run_cli([command, *_tiny_sets(), "--out", str(tmp_path / "o")])
    assert res.rc == 0 and not res.problems(), res.stderr
    assert math.isfinite(float(res.stdout.split("steps in ")[1].split()[0]))
