"""The run workflow: build, train, (calibrate η), sample, evaluate, write — the only place where
training and sampling meet."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hebm_core.checkpoint import CheckpointError, load_checkpoint
from hebm_core.config import RunConfig
from hebm_core.energy import EnergyModel
from hebm_core.registry import PluginRegistry
from hebm_core.runs.build import Experiment, build
from hebm_core.runs.calibrate import CALIBRATED_ETA, calibrate_eta
from hebm_core.runs.evaluation import build_metrics, evaluate
from hebm_core.runs.outputs import Staging, prepare_out_dir
from hebm_core.runs.report import report, write_json, write_outputs
from hebm_core.runs.sampling import SamplingPlan
from hebm_core.training import Trainer

__all__ = ["train", "run", "adopt_network"]


def adopt_network(trainer: Trainer, path: str | Path) -> None:
    """Give a hybrid trainer (η frozen at zero) the whole training state of a run of its base network
    alone, which it would only reproduce (same seed, data order and noise); η keeps its value.

    The checkpoint's weights and EMA go under the hybrid's ``base.`` prefix; its optimizer, data
    order, random state and step are taken as they are. The hybrid's checkpoint is written at once.
    """
    if not getattr(trainer.model, "trains_as_base", False):
        raise ValueError(
            "a hybrid run can take its network from a vanilla run only with η frozen at zero (train.eta_lr = 0)"
        )
    payload = dict(load_checkpoint(path, map_location="cpu"))
    if not isinstance(payload.get("model"), dict):
        raise CheckpointError(f"checkpoint '{path}' has no model weights")
    own = trainer.state_payload()
    payload["model"] = {**own["model"], **{"base." + k: v for k, v in payload["model"].items()}}
    if own["ema"] is not None and payload.get("ema") is not None:
        moved = {
            k.replace("module.", "module.base.", 1) if k.startswith("module.") else k: v
            for k, v in payload["ema"].items()
        }
        payload["ema"] = {**own["ema"], **moved}
    trainer.restore(payload, path)
    trainer.save_checkpoint(elapsed_s=payload.get("elapsed_s"))


def train(
    exp: Experiment, out_dir: str | Path, resume: bool | str | Path = False, network_from: str | Path | None = None
) -> tuple[Trainer, dict[str, Any]]:
    """Fit ``exp.model`` (``checkpoint.pt``, ``metrics.csv`` go to ``out_dir``); returns ``(trainer, summary)``.

    ``network_from``: the checkpoint of a vanilla run whose network a hybrid with η frozen at zero
    takes (:func:`adopt_network`) instead of training the same one again (on one process); its
    ``metrics.csv`` is taken too.
    """
    trainer = Trainer(exp.model, exp.objective, exp.bundle.train, exp.config.train, out_dir, spec=exp.config.to_dict())
    if network_from is not None and trainer.world_size == 1 and not (resume and trainer.checkpoint_path.exists()):
        log = Path(network_from).with_name(trainer.metrics_path.name)
        adopt_network(trainer, network_from)
        if log.exists():
            shutil.copyfile(log, trainer.metrics_path)
        summary = trainer.fit()
        summary["network_from"] = str(network_from)
    else:
        summary = trainer.fit(resume=resume)
    return trainer, summary


def _calibrate(trainer: Trainer, model: EnergyModel, exp: Experiment, plan: SamplingPlan, summary: dict) -> None:
    """Moment matching for η; the checkpoint keeps the trained η in its weights and the calibrated
    one under :data:`CALIBRATED_ETA` (a resumed run calibrates again from the trained η, with the
    same result), then the sampling model takes the calibrated η."""
    t0 = time.perf_counter()
    result = calibrate_eta(model, exp, plan)
    summary["eta_calibration"] = result.history
    summary["eta_calibration_time_s"] = round(time.perf_counter() - t0, 3)
    trainer.save_checkpoint(
        elapsed_s=summary.get("total_train_time_s"), extra={CALIBRATED_ETA: model.eta_state(result.eta)}
    )
    model.load_eta(result.eta)


def run(
    config: RunConfig | Mapping[str, Any],
    out_dir: str | Path,
    resume: bool | str | Path = False,
    registry: PluginRegistry | None = None,
    train_only: bool = False,
    network_from: str | Path | None = None,
) -> dict[str, Any]:
    """Train, sample, evaluate; write ``report.json`` and the plugin's samples + picture to ``out_dir``.

    ``report.json`` holds the resolved config, dataset info, η per statistic, the training summary,
    sampling wall time and samples/s, the metrics (ΔT per statistic among them), the device, torch
    and hebm versions and a timestamp. Under ``torchrun`` only rank 0 samples and writes.
    ``network_from``: see :func:`train`.
    """
    out = prepare_out_dir(out_dir)
    exp = build(config, registry)
    plan = metrics = None
    if not train_only:  # a bad sampler or metric option fails now, not after training
        plan, metrics = SamplingPlan.build(exp), build_metrics(exp)
    trainer, summary = train(exp, out, resume, network_from)
    model = trainer.sampling_model()
    if not trainer.is_main:  # under torchrun: rank 0 samples and writes
        return {"training": summary, "rank": trainer.rank}
    if train_only:
        rep = report(exp, model, summary)
        rep["files"].append(str(out / "report.json"))
        write_json(out / "report.json", rep)
        return rep
    if exp.statistics and exp.config.hybrid.calibrate_rounds > 0:
        _calibrate(trainer, model, exp, plan, summary)
    samples, sampling = plan.draw(model, exp)
    return _write_run(out, exp, model, samples, summary, sampling, evaluate(samples, exp, metrics))


def _write_run(out: Path, exp: Experiment, model: EnergyModel, samples, summary, sampling, values) -> dict[str, Any]:
    """Samples, picture and report as one unit: staged, then moved in with the report last."""
    stage = Staging(out)
    try:
        files, notes = write_outputs(samples, exp, stage.dir)
        rep = report(exp, model, summary, sampling, values, [stage.final(f) for f in files], notes)
        rep["files"].append(str(out / "report.json"))
        stage.commit(rep)
    except BaseException:
        stage.discard()
        raise
    return rep
