"""Reports: the JSON every run writes (atomically), its environment block, and the samples on disk."""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import hebm_core
from hebm_core import tree
from hebm_core.energy import EnergyModel
from hebm_core.runs.build import Experiment
from hebm_core.runs.evaluation import delta_t_of
from hebm_core.tree import Sample

__all__ = ["environment", "jsonable", "report", "write_json", "write_outputs"]


def jsonable(obj: Any) -> Any:
    """``obj`` with tensors, paths and devices as plain values and non-finite floats as ``None``."""
    if isinstance(obj, Tensor):
        return jsonable(obj.item() if obj.numel() == 1 else obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # strict JSON has no NaN/inf; reports say which values were not finite
    if isinstance(obj, (Path, torch.device, torch.dtype)):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


def write_json(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write JSON atomically (temporary file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(jsonable(data), f, indent=2, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def environment() -> dict[str, Any]:
    """Versions and time for reports."""
    return {
        "hebm_version": hebm_core.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _dataset_info(exp: Experiment) -> dict[str, Any]:
    info = dict(exp.bundle.info)
    info.setdefault("n_train", tree.batch_size(exp.bundle.train))
    if exp.bundle.test is not None:
        info.setdefault("n_test", tree.batch_size(exp.bundle.test))
    info["space"] = repr(exp.bundle.space)
    return info


def write_outputs(samples: Sample, exp: Experiment, out_dir: str | Path) -> tuple[list[str], list[str]]:
    """``plugin.write_samples`` (else ``samples.pt``); returns ``(paths, notes)`` with its warnings as notes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if exp.plugin.write_samples is not None:
            paths = [str(p) for p in exp.plugin.write_samples(samples, out, exp.bundle)]
        else:
            torch.save(samples, out / "samples.pt")
            paths = [str(out / "samples.pt")]
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    return paths, notes


def report(
    exp: Experiment,
    model: EnergyModel,
    summary: Mapping[str, Any] | None = None,
    sampling: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    files: list[str] | None = None,
    notes: list[str] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """The report dict: environment, config, dataset, statistics, the model's description (η),
    and whichever of training summary, sampling, metrics (ΔT per statistic) were given."""
    out: dict[str, Any] = {
        **environment(),
        "device": device or (summary or {}).get("device"),
        "config": exp.config.to_dict(),
        "dataset": _dataset_info(exp),
        "statistics": {
            "trained": [s.name for s in exp.statistics],
            "evaluated": [s.name for s in exp.eval_statistics],
        },
        "eta": model.describe().get("eta", {}),
    }
    if summary is not None:
        out["training"] = dict(summary)
    if sampling is not None:
        out["sampling"] = dict(sampling)
    flags = _flags(summary, sampling)
    if metrics is not None:
        out["metrics"], unfinished = _finite(metrics)
        out["delta_t"] = delta_t_of(out["metrics"])
        if unfinished:
            flags.append(f"not finite, reported as null: {', '.join(unfinished)}")
    out["files"] = list(files or [])
    out["notes"] = list(dict.fromkeys([*exp.notes, *flags, *(notes or [])]))
    return out


def _finite(metrics: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Metrics with NaN/inf values replaced by ``None``, and the keys that were."""
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    return {k: (None if k in bad else v) for k, v in metrics.items()}, bad


def _flags(summary: Mapping[str, Any] | None, sampling: Mapping[str, Any] | None) -> list[str]:
    """What a person must see on the terminal: a loss that blew up, chains that ran off."""
    out = []
    blowup = (summary or {}).get("loss_blowup")
    if blowup:
        out.append(
            f"training loss {blowup['loss']:.4g} at step {blowup['step']} was over 1000× its running median "
            f"{blowup['running_median']:.3g}: training blew up (train.strict = true makes this an error)"
        )
    if (sampling or {}).get("note"):
        out.append(sampling["note"])
    return out
