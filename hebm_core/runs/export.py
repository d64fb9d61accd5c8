"""A finished run as a slim, shippable checkpoint: what sampling needs and nothing else.

Keeps the run spec (optionally with another ``[data]`` table, e.g. an embedded dataset so that the
file samples without the training data on disk), the EMA weights as the model's weights, the
calibrated η and the training metrics; drops the optimiser, RNG and data-iterator state that only
resuming needs. The result loads with :func:`hebm_core.runs.checkpoints.load_run` like any other
checkpoint (and is rebuilt once here to prove it); its sha256 goes into the plugin's
:class:`~hebm_core.pretrained.Pretrained` entry and the model card.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hebm_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from hebm_core.pretrained import file_sha256
from hebm_core.registry import PluginRegistry
from hebm_core.runs.calibrate import CALIBRATED_ETA
from hebm_core.runs.checkpoints import load_run, with_data

__all__ = ["export_checkpoint"]

_KEPT = ("format_version", "hebm_version", "step", "config", "model_info", "metrics", "elapsed_s", CALIBRATED_ETA)


def export_checkpoint(
    src: str | Path,
    dst: str | Path,
    data: Mapping[str, Any] | None = None,
    registry: PluginRegistry | None = None,
) -> dict[str, Any]:
    """Write the slim checkpoint of ``src`` to ``dst`` (atomically); ``data`` goes over the spec's
    ``[data]`` table (a new ``name`` starts a new table). Returns ``{"file", "sha256", "parameters", "spec"}``."""
    payload = load_checkpoint(src)
    spec = payload.get("spec")
    if not isinstance(spec, Mapping):
        raise CheckpointError(f"{src}: checkpoint holds no run spec; it was not written by the hebm trainer")
    ema = payload.get("ema")
    if isinstance(ema, Mapping):
        weights = {k[len("module.") :]: v for k, v in ema.items() if k.startswith("module.")}
    else:
        weights = payload["model"]
    slim = {k: payload[k] for k in _KEPT if k in payload}
    slim.update(model=weights, spec=with_data(spec, data))
    slim["exported_from"] = {"sha256": file_sha256(src), "step": payload.get("step")}
    save_checkpoint(dst, slim)
    os.chmod(dst, 0o644)  # a file to ship and share, not a private run checkpoint (written 0600)
    load_run(dst, "cpu", registry)  # it must rebuild and load, or it is no use to anyone
    return {
        "file": str(dst),
        "sha256": file_sha256(dst),
        "parameters": sum(int(v.numel()) for v in weights.values()),
        "spec": slim["spec"],
    }
