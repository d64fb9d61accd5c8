"""Trainer and checkpoints: exact resume, atomic saves, clear errors, metrics file, η learning rate, divergence."""

from __future__ import annotations

import csv
import math
import os
import random
import warnings
from pathlib import Path

import pytest
import torch
from _util import assert_state_equal

from hebm_core.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, save_checkpoint
from hebm_core.hybrid import HybridEnergy
from hebm_core.models import MLPEnergy
from hebm_core.objectives import DenoisingScoreMatching, ObjectiveOutput, PersistentContrastiveDivergence
from hebm_core.statistics import identity
from hebm_core.training import (
    TrainConfig,
    Trainer,
    TrainingDivergedError,
    ema_with_warmup,
    load_model_state,
    lr_factor,
)

DATA = torch.randn(256, 2, generator=torch.Generator().manual_seed(0)) * 0.5 + torch.tensor([1.0, -1.0])


def make_model(seed: int = 123, noise_conditional: bool = True) -> HybridEnergy:
    torch.manual_seed(seed)
    base = MLPEnergy(dim=2, hidden=16, depth=2, noise_conditional=noise_conditional)
    return HybridEnergy(base, [identity], example=DATA[:4])


OBJECTIVES = {
    "dsm": (lambda: DenoisingScoreMatching(sigma_min=0.05, sigma_max=1.0, n_sigmas=3), True),
    "pcd": (lambda: PersistentContrastiveDivergence(buffer_size=64, k=3, step_size=0.05, reinit_prob=0.2), False),
}


def make_config(**kw) -> TrainConfig:
    opts = dict(
        steps=40,
        batch_size=32,
        lr=1e-2,
        ema_decay=0.9,
        log_every=5,
        checkpoint_every=20,
        progress=False,
        tensorboard=False,
        device="cpu",
    )
    opts.update(kw)
    return TrainConfig(**opts)


class Interrupted(Exception):
    pass


def interrupt_at(objective, call: int, action: str = "raise"):
    """Make the objective's ``call``-th forward raise (a crash) or return a NaN loss."""
    original = objective.forward
    count = {"n": 0}

    def forward(model, x):
        count["n"] += 1
        out = original(model, x)
        if count["n"] == call:
            if action == "raise":
                raise Interrupted(f"interrupted at call {call}")
            return ObjectiveOutput(out.loss * float("nan"), out.metrics)
        return out

    objective.forward = forward
    return objective


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------- resume


@pytest.mark.parametrize("mode", ["crash", "stop"])
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_resume_is_bit_identical(tmp_path, objective, mode):
    make_objective, nc = OBJECTIVES[objective]
    straight = Trainer(make_model(noise_conditional=nc), make_objective(), DATA, make_config(), out_dir=tmp_path / "a")
    straight.fit()

    run_b = tmp_path / "b"
    if mode == "crash":  # dies at step 27: checkpoint at 20, metrics rows up to 25 already written
        obj = interrupt_at(make_objective(), 27)
        with pytest.raises(Interrupted):
            Trainer(make_model(noise_conditional=nc), obj, DATA, make_config(), out_dir=run_b).fit()
        assert [int(r["step"]) for r in read_rows(run_b / "metrics.csv")][-1] == 25
    else:  # a finished 20-step run, continued to 40
        Trainer(make_model(noise_conditional=nc), make_objective(), DATA, make_config(steps=20), out_dir=run_b).fit()
    assert load_checkpoint(run_b / "checkpoint.pt")["step"] == 20

    # other initial weights: everything must come from the checkpoint
    resumed = Trainer(make_model(seed=7, noise_conditional=nc), make_objective(), DATA, make_config(), out_dir=run_b)
    result = resumed.fit(resume=True)
    assert result["steps"] == 40 and resumed.step == 40

    assert not torch.equal(straight.model.base.net[0].weight, make_model(noise_conditional=nc).base.net[0].weight)
    assert_state_equal(straight.model.state_dict(), resumed.model.state_dict(), "model")
    assert_state_equal(straight.ema.state_dict(), resumed.ema.state_dict(), "ema")
    assert int(resumed.ema.n_averaged) == 40
    assert_state_equal(straight.optimizer.state_dict(), resumed.optimizer.state_dict(), "optimizer")
    assert_state_equal(straight.objective.state_dict(), resumed.objective.state_dict(), "objective")
    assert_state_equal(
        load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model"], load_checkpoint(run_b / "checkpoint.pt")["model"]
    )

    # the metrics file: one row per logged step, nothing duplicated or lost, same values as the straight run
    rows_a, rows_b = read_rows(tmp_path / "a" / "metrics.csv"), read_rows(run_b / "metrics.csv")
    assert [int(r["step"]) for r in rows_b] == list(range(5, 41, 5))
    for ra, rb in zip(rows_a, rows_b, strict=True):
        ra.pop("elapsed_s"), rb.pop("elapsed_s")
        assert ra == rb


def test_cosine_schedule_with_warmup_is_logged_and_resumes_exactly(tmp_path):
    cfg = dict(lr_schedule="cosine", warmup_steps=10)
    straight = Trainer(make_model(), OBJECTIVES["dsm"][0](), DATA, make_config(**cfg), out_dir=tmp_path / "a")
    straight.fit()
    # the logged lr is the one of the step just taken: warmup to 1e-2 by step 10, then half a cosine to 0
    rows = read_rows(tmp_path / "a" / "metrics.csv")
    expected = {
        5: 1e-2 * 5 / 10,
        10: 1e-2,
        25: 1e-2 * 0.5 * (1 + math.cos(math.pi * 14 / 30)),
        40: 1e-2 * 0.5 * (1 + math.cos(math.pi * 29 / 30)),
    }
    for r in rows:
        if int(r["step"]) in expected:
            assert float(r["lr"]) == pytest.approx(expected[int(r["step"])], rel=1e-6)
    assert lr_factor("cosine", 40, 40, 10) == 0.0 and lr_factor("constant", 39, 40, 10) == 1.0

    run_b = tmp_path / "b"
    with pytest.raises(Interrupted):
        Trainer(make_model(), interrupt_at(OBJECTIVES["dsm"][0](), 27), DATA, make_config(**cfg), out_dir=run_b).fit()
    resumed = Trainer(make_model(seed=7), OBJECTIVES["dsm"][0](), DATA, make_config(**cfg), out_dir=run_b)
    resumed.fit(resume=True)
    assert_state_equal(straight.model.state_dict(), resumed.model.state_dict(), "model")
    assert_state_equal(straight.optimizer.state_dict(), resumed.optimizer.state_dict(), "optimizer")
    # the schedule spans `steps`: continuing a finished run to more steps is not the straight run
    with pytest.warns(UserWarning, match="lr schedule spans steps"):
        Trainer(make_model(), OBJECTIVES["dsm"][0](), DATA, make_config(steps=50, **cfg), out_dir=run_b).fit(
            resume=True
        )
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, cosine"):
        make_config(lr_schedule="linear")


def test_resume_flag_without_checkpoint_starts_fresh_and_finished_run_is_a_no_op(tmp_path):
    t = Trainer(make_model(), OBJECTIVES["dsm"][0](), DATA, make_config(steps=10), out_dir=tmp_path)
    assert t.fit(resume=True)["steps"] == 10
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t2 = Trainer(make_model(seed=5), OBJECTIVES["dsm"][0](), DATA, make_config(steps=10), out_dir=tmp_path)
    result = t2.fit(resume=True)
    assert result["steps"] == 10 and result["final_metrics"]["loss"] == t.last_metrics["loss"]
    assert_state_equal(before, t2.model.state_dict())
    assert len(read_rows(tmp_path / "metrics.csv")) == 2


def test_fitting_the_same_trainer_again_continues_its_run_and_keeps_its_metrics(tmp_path):
    """fit to 10, raise steps, fit to 20: rows 1-10 and their time stay; the state equals a straight 20-step run."""
    t = Trainer(make_model(), OBJECTIVES["dsm"][0](), DATA, make_config(steps=10, log_every=1), out_dir=tmp_path / "a")
    first = t.fit()
    t.config.steps = 20
    second = t.fit()
    assert second["steps"] == 20
    assert second["total_train_time_s"] == pytest.approx(first["wall_time_s"] + second["wall_time_s"])
    assert [int(r["step"]) for r in read_rows(tmp_path / "a" / "metrics.csv")] == list(range(1, 21))
    straight = Trainer(make_model(), OBJECTIVES["dsm"][0](), DATA, make_config(steps=20, log_every=1), tmp_path / "b")
    straight.fit()
    assert_state_equal(straight.model.state_dict(), t.model.state_dict())


def test_resuming_with_changed_options_warns_only_when_they_matter(tmp_path):
    Trainer(make_model(), OBJECTIVES["dsm"][0](), DATA, make_config(steps=10), out_dir=tmp_path).fit()
    with pytest.warns(UserWarning, match=r"changed train options \(eta_lr None -> 0.5\)"):
        Trainer(make_model(), OBJECTIVES["dsm"][0](), DATA, make_config(steps=12, eta_lr=0.5), out_dir=tmp_path).fit(
            resume=True
        )
    torch.manual_seed(0)
    vanilla = MLPEnergy(dim=2, hidden=16, depth=2)
    Trainer(vanilla, OBJECTIVES["dsm"][0](), DATA, make_config(steps=10), out_dir=tmp_path / "v").fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a model without η: eta_lr changes nothing, so no warning
        t = Trainer(vanilla, OBJECTIVES["dsm"][0](), DATA, make_config(steps=10, eta_lr=0.5), out_dir=tmp_path / "v")
        assert t.fit(resume=True)["total_train_time_s"] > 0


# ---------------------------------------------------------------------------------------- checkpoint files


def _payload(step: int) -> dict:
    return {"format_version": FORMAT_VERSION, "step": step, "model": {"w": torch.full((3,), float(step))}, "config": {}}


def test_failed_save_keeps_previous_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, _payload(1))
    real_save = torch.save

    def save_then_fail(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04" + b"partial" * 1000)  # some bytes reach the file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", save_then_fail)
    with pytest.raises(CheckpointError) as err:
        save_checkpoint(path, _payload(2))
    msg = str(err.value)
    assert str(path) in msg and "No space left on device" in msg and "\n" not in msg
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt"]
    monkeypatch.setattr(torch, "save", real_save)
    assert load_checkpoint(path)["step"] == 1


def test_failed_save_during_training_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = make_config(steps=20, checkpoint_every=10)
    Trainer(make_model(), OBJECTIVES["dsm"][0](), DATA, cfg, out_dir=tmp_path).fit()
    good = load_checkpoint(tmp_path / "checkpoint.pt")

    def broken(obj, f, *args, **kwargs):
        f.write(b"x" * 100)
        raise RuntimeError("simulated crash while writing")

    monkeypatch.setattr(torch, "save", broken)
    t = Trainer(
        make_model(), OBJECTIVES["dsm"][0](), DATA, make_config(steps=40, checkpoint_every=10), out_dir=tmp_path
    )
    with pytest.raises(CheckpointError, match="simulated crash"):
        t.fit(resume=True)
    monkeypatch.undo()
    after = load_checkpoint(tmp_path / "checkpoint.pt")
    assert after["step"] == 20
    assert_state_equal(good["model"], after["model"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.csv"]


@pytest.fixture
def trained_checkpoint(tmp_path) -> Path:
    spec = {"plugin": "toy", "model": {"name": "mlp", "hidden": 16}, "train": {"steps": 6}}
    t = Trainer(make_model(), OBJECTIVES["dsm"][0](), DATA, make_config(steps=6), out_dir=tmp_path / "run", spec=spec)
    t.fit()
    return t.checkpoint_path


def _assert_one_line_error(path: Path, *phrases: str) -> None:
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert "\n" not in msg and f"'{path}'" in msg, msg
    for p in phrases:
        assert p in msg, msg


def test_truncated_garbage_missing_and_foreign_checkpoints_give_one_line_errors(trained_checkpoint, tmp_path):
    blob = trained_checkpoint.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(blob[: len(blob) // 2])
    _assert_one_line_error(truncated, "truncated or corrupted")

    garbage = tmp_path / "garbage.pt"
    for junk in (b"this is not a checkpoint\n" * 40, b"garbage" * 10, random.Random(0).randbytes(4096)):
        garbage.write_bytes(junk)
        _assert_one_line_error(garbage, "truncated or corrupted")

    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _assert_one_line_error(empty, "truncated or corrupted")

    _assert_one_line_error(tmp_path / "nope.pt", "not found")

    foreign = tmp_path / "state_dict.pt"
    torch.save({"weight": torch.ones(2)}, foreign)
    _assert_one_line_error(foreign, "not a hebm checkpoint", "missing keys: format_version, step, model, config")

    newer = tmp_path / "newer.pt"
    torch.save({**_payload(1), "format_version": FORMAT_VERSION + 1}, newer)
    _assert_one_line_error(newer, "newer")

    unsafe = tmp_path / "unsafe.pt"
    torch.save({**_payload(1), "extra": Interrupted("x")}, unsafe)  # a custom class: refused by weights_only
    _assert_one_line_error(unsafe, "weights_only=True refuses", "Interrupted")

    # the trainer reports the same error when told to resume from a broken file
    t = Trainer(make_model(), OBJECTIVES["dsm"][0](), DATA, make_config(steps=6))
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        t.fit(resume=truncated)


def test_checkpoint_loads_with_weights_only_and_restores_ema_weights(trained_checkpoint):
    payload = torch.load(trained_checkpoint, weights_only=True)
    expected = {"format_version", "step", "model", "objective", "optimizer", "ema", "rng", "data_iter", "config"}
    assert expected | {"spec", "model_info"} <= set(payload)
    assert payload["format_version"] == FORMAT_VERSION and payload["step"] == 6
    assert set(payload["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert isinstance(payload["rng"]["numpy"]["keys"], torch.Tensor)
    assert payload["spec"]["model"] == {"name": "mlp", "hidden": 16}
    assert payload["config"]["steps"] == 6 and payload["config"]["ema_decay"] == 0.9
    assert set(payload["model_info"]["eta"]) == {"identity"}

    ema_model, raw_model = make_model(seed=99), make_model(seed=98)
    load_model_state(ema_model, payload)  # EMA weights by default
    load_model_state(raw_model, payload, ema=False)
    assert_state_equal(raw_model.state_dict(), payload["model"])
    ema_state = {k.removeprefix("module."): v for k, v in payload["ema"].items() if k.startswith("module.")}
    assert_state_equal(ema_model.state_dict(), ema_state)
    assert not torch.equal(ema_model.eta["identity"], raw_model.eta["identity"])  # decay 0.9 over 6 steps lags

    with pytest.raises(CheckpointError, match="do not fit this model"):
        load_model_state(MLPEnergy(dim=2, hidden=8, depth=1), payload)


# ---------------------------------------------------------------------------------------- optimisation


def test_eta_has_its_own_learning_rate_and_no_weight_decay():
    model = make_model()
    eta0 = model.eta["identity"].detach().clone()
    net0 = [p.detach().clone() for p in model.base.parameters()]
    cfg = make_config(steps=1, lr=1e-4, eta_lr=0.05, weight_decay=0.1, ema_decay=None, grad_clip=None)
    t = Trainer(model, OBJECTIVES["dsm"][0](), DATA, cfg)
    t.fit()

    eta_group = next(g for g in t.optimizer.param_groups if any(p is model.eta["identity"] for p in g["params"]))
    assert eta_group["lr"] == 0.05 and eta_group["weight_decay"] == 0.0
    assert len(eta_group["params"]) == 1
    net_group = next(g for g in t.optimizer.param_groups if any(p is model.base.net[0].weight for p in g["params"]))
    assert net_group["lr"] == 1e-4 and net_group["weight_decay"] == 0.1

    # Adam's first step moves every coordinate by about its group's learning rate
    step_eta = (model.eta["identity"].detach() - eta0).abs()
    assert torch.allclose(step_eta, torch.full_like(step_eta, 0.05), rtol=1e-3), step_eta
    step_net = max(float((p.detach() - p0).abs().max()) for p, p0 in zip(model.base.parameters(), net0))
    assert 0 < step_net <= 1e-4 * 1.001


def test_default_eta_lr_is_lr_and_grad_norm_is_logged_before_clipping(tmp_path):
    cfg = make_config(steps=5, log_every=1, grad_clip=1e-6)
    t = Trainer(make_model(), OBJECTIVES["dsm"][0](), DATA, cfg, out_dir=tmp_path)
    t.fit()
    assert all(g["lr"] == cfg.lr for g in t.optimizer.param_groups)
    rows = read_rows(tmp_path / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert list(rows[0]) == [
        "step",
        "loss",
        "dsm",
        "grad_norm",
        "lr",
        "eta/identity[0]",
        "eta/identity[1]",
        "elapsed_s",
    ]
    assert all(float(r["grad_norm"]) > 1e-3 for r in rows)  # the pre-clip norm, far above grad_clip
    assert float(rows[-1]["eta/identity[0]"]) == pytest.approx(t.model.eta_report()["identity"][0])


def test_nan_loss_raises_a_clear_error_without_corrupting_the_weights():
    cfg = make_config(steps=10)
    t = Trainer(make_model(), interrupt_at(OBJECTIVES["dsm"][0](), 3, action="nan"), DATA, cfg)
    with pytest.raises(TrainingDivergedError) as err:
        t.fit()
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError) and "\n" not in msg
    assert "step 3" in msg and "nan" in msg and "lr=0.01" in msg and "lower learning rate" in msg
    assert t.step == 2
    assert all(torch.isfinite(p).all() for p in t.model.parameters())
    assert all(torch.isfinite(p).all() for p in t.sampling_model().parameters())


def test_config_from_dict():
    """One rule for Python and config files: types exact (an int is a number), ranges checked, one line each."""
    cfg = TrainConfig.from_dict({"steps": 10, "lr": 1, "eta_lr": None, "progress": False})
    assert cfg.steps == 10 and cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.progress is False
    with pytest.raises(ValueError, match=r"\[train\] unknown key 'lrate'; known: steps, batch_size"):
        TrainConfig.from_dict({"lrate": 1, "bogus": 2})
    with pytest.raises(ValueError, match=r"\[train\] steps must be an integer in \[0, 1e9\], got float 1.5"):
        TrainConfig.from_dict({"steps": 1.5})
    with pytest.raises(ValueError, match=r"\[train\] lr must be a number in \(0, 1000\], got str '1e-3'"):
        TrainConfig.from_dict({"lr": "1e-3"})
    with pytest.raises(ValueError, match=r"ema_decay must be a number in \[0, 1\)"):
        TrainConfig.from_dict({"ema_decay": 1.0})
    with pytest.raises(ValueError, match=r"lr must be a number in \(0, 1000\], got float nan"):
        TrainConfig(lr=float("nan"))
    assert math.isclose(TrainConfig().lr, 1e-3)


def test_ema_decay_ramps_up_then_holds():
    """EMA weight on the newest parameters is 1 - min(decay, (1+n)/(10+n)): large early, 1 - decay later."""
    update = ema_with_warmup(0.99)
    avg, new = [torch.zeros(1)], [torch.ones(1)]
    update(avg, new, torch.tensor(1))
    assert torch.allclose(avg[0], torch.tensor([1 - 2 / 11]))
    avg = [torch.zeros(1)]
    update(avg, new, torch.tensor(10_000))
    assert torch.allclose(avg[0], torch.tensor([0.01]))
