"""From a checkpoint: rebuild its run, then sample or evaluate with its (or another) sampler."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hebm_core.checkpoint import CheckpointError, load_checkpoint
from hebm_core.config import ConfigError, SamplerConfig
from hebm_core.energy import EnergyModel
from hebm_core.registry import PluginRegistry
from hebm_core.runs.build import Experiment, build
from hebm_core.runs.calibrate import CALIBRATED_ETA
from hebm_core.runs.evaluation import evaluate, log_likelihood
from hebm_core.runs.outputs import prepare_out_dir, replace_folder
from hebm_core.runs.report import report, write_json, write_outputs
from hebm_core.runs.sampling import SamplingPlan
from hebm_core.training import load_model_state, resolve_device
from hebm_core.tree import Sample

__all__ = ["with_data", "load_run", "sample_from_checkpoint", "evaluate_checkpoint", "sampler_config"]


def with_data(spec: Mapping[str, Any], data: Mapping[str, Any] | None) -> dict[str, Any]:
    """``spec`` with its ``[data]`` table updated by ``data``; naming another dataset starts a new table."""
    if not data:
        return dict(spec)
    old = dict(spec.get("data") or {})
    table = dict(data) if "name" in data and data["name"] != old.get("name") else {**old, **data}
    return {**spec, "data": table}


def load_run(
    checkpoint: str | Path,
    device: str = "auto",
    registry: PluginRegistry | None = None,
    ema: bool = True,
    data: Mapping[str, Any] | None = None,
) -> tuple[Experiment, EnergyModel]:
    """Rebuild the experiment from the checkpoint's spec (``data`` over its ``[data]``, e.g. the
    user's copy of the dataset for a shipped model) and load its (EMA) weights onto ``device``;
    a hybrid takes the checkpoint's calibrated η when it has one."""
    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    payload = load_checkpoint(path, map_location="cpu")
    spec = payload.get("spec")
    if not isinstance(spec, Mapping):
        raise CheckpointError(f"{path}: checkpoint holds no run spec; it was not written by the hebm trainer")
    exp = build(with_data(spec, data), registry)
    load_model_state(exp.model, payload, ema=ema)
    calibrated = payload.get(CALIBRATED_ETA)
    if isinstance(calibrated, Mapping) and exp.statistics:
        try:
            exp.model.load_eta(calibrated)
        except ValueError as exc:
            raise CheckpointError(f"{path}: calibrated {exc}") from None
    if isinstance(payload.get("objective"), Mapping):
        # shape-dependent state (PCD's buffer, NCE's fitted noise) exists only after setup()
        exp.objective.setup(exp.example)
        try:
            exp.objective.load_state_dict(payload["objective"])
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{path}: objective state does not fit the configured objective ({exc})") from None
    try:
        target = resolve_device(device)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return exp, exp.model.to(target).eval()


def sampler_config(exp: Experiment, name: str | None, options: Mapping[str, Any] | None) -> SamplerConfig:
    """The run's ``[sampler]``, or a fresh one for another sampler (keeping ``n_samples``), with ``options`` over it."""
    base = exp.config.sampler.to_dict()
    if name is not None and name != base["name"]:
        base = {"name": name, "n_samples": base["n_samples"]}
    return SamplerConfig.from_dict({**base, **(options or {})})


def _draw(
    checkpoint: str | Path,
    n: int | None,
    sampler: str | None,
    sampler_options: Mapping[str, Any] | None,
    device: str,
    registry: PluginRegistry | None,
    data: Mapping[str, Any] | None,
) -> tuple[Experiment, EnergyModel, Sample, dict[str, Any]]:
    exp, model = load_run(checkpoint, device, registry, data=data)
    options = {**(sampler_options or {}), **({"n_samples": n} if n is not None else {})}
    plan = SamplingPlan.build(exp, sampler_config(exp, sampler, options))
    samples, info = plan.draw(model, exp)
    return exp, model, samples, info


def sample_from_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    n: int | None = None,
    sampler: str | None = None,
    sampler_options: Mapping[str, Any] | None = None,
    device: str = "auto",
    registry: PluginRegistry | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Samples (and the picture) from a checkpoint into ``out_dir``, with ``sample_report.json``; the
    folder is replaced as a whole (a killed command leaves the old outputs or the new, never a mix).
    ``data`` goes over the checkpoint's ``[data]`` (see :func:`load_run`)."""
    out = prepare_out_dir(out_dir)
    exp, model, samples, info = _draw(checkpoint, n, sampler, sampler_options, device, registry, data)

    def write(stage: Path) -> dict[str, Any]:
        files, notes = write_outputs(samples, exp, stage)
        moved = [str(out / Path(f).relative_to(stage)) if Path(f).is_relative_to(stage) else f for f in files]
        rep = report(exp, model, sampling=info, files=moved, notes=notes, device=info["device"])
        rep["checkpoint"] = str(checkpoint)
        rep["files"].append(str(out / "sample_report.json"))
        return rep

    return replace_folder(out, "sample_report.json", write)


def evaluate_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    n: int | None = None,
    sampler: str | None = None,
    sampler_options: Mapping[str, Any] | None = None,
    device: str = "auto",
    registry: PluginRegistry | None = None,
    nll: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Sample from a checkpoint and compute the metrics (ΔT per statistic included); writes ``metrics.json``.

    ``nll`` (options of :func:`~hebm_core.runs.evaluation.log_likelihood`, ``{}`` for its defaults)
    adds the test NLL by AIS; ``data`` goes over the checkpoint's ``[data]`` (see :func:`load_run`).
    """
    out = prepare_out_dir(out_dir)
    exp, model, samples, info = _draw(checkpoint, n, sampler, sampler_options, device, registry, data)
    rep = report(exp, model, sampling=info, metrics=evaluate(samples, exp), device=info["device"])
    if nll is not None:
        rep["log_likelihood"] = log_likelihood(model, exp, **nll)
    rep["checkpoint"] = str(checkpoint)
    rep["files"].append(str(out / "metrics.json"))
    write_json(out / "metrics.json", rep)
    return rep
