"""Random state, devices, EMA and weights: what a checkpoint needs to resume exactly."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils import _pytree as pytree

from hebm_core.checkpoint import CheckpointError, nonfinite_entries

__all__ = [
    "seed_everything",
    "resolve_device",
    "rng_state",
    "set_rng_state",
    "ema_with_warmup",
    "to_cpu",
    "load_model_state",
]


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and every CUDA device), numpy's global generator and Python's ``random``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; otherwise a CPU or CUDA device string (``"cuda:1"``)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from e
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device


def rng_state() -> dict[str, Any]:
    """Every global generator as weights_only-loadable values (numpy's state becomes a tensor and ints)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (CUDA generators only when the device count matches)."""
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    npst = state["numpy"]
    keys = npst["keys"].numpy().astype(np.uint32)
    np.random.set_state((npst["kind"], keys, npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def ema_with_warmup(decay: float):
    """``multi_avg_fn`` for ``AveragedModel``: EMA whose decay ramps up as ``min(decay, (1+n)/(10+n))``.

    A fixed decay of 0.999 leaves three quarters of the average on the first weights after 300
    steps; the ramp (as in TensorFlow's ExponentialMovingAverage with num_updates) lets short runs
    average only the recent, trained weights and long runs reach ``decay``.
    """

    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        n = int(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        torch._foreach_lerp_(averaged, current, 1 - d)

    return update


def to_cpu(obj: Any) -> Any:
    """Every tensor in a (nested) state moved to the CPU and detached."""
    return pytree.tree_map(lambda t: t.detach().cpu() if isinstance(t, Tensor) else t, obj)


def load_model_state(model: nn.Module, payload: dict[str, Any], ema: bool = True) -> None:
    """Load a checkpoint's EMA weights (when present and ``ema``) else its raw weights into ``model``.

    A mismatch between the checkpoint and ``model`` is a :class:`CheckpointError` with a one-line message.
    """
    ema_state = payload.get("ema") if ema else None
    if ema_state is not None:
        state = {k[len("module.") :]: v for k, v in ema_state.items() if k.startswith("module.")}
        which = "EMA"
    else:
        state = payload["model"]
        which = "model"
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and isinstance(state[k], Tensor) and state[k].shape != v.shape
    ]
    problems = [
        f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong_shape))
        if keys
    ]
    if problems:
        raise CheckpointError(f"the checkpoint's {which} weights do not fit this model ({'; '.join(problems)})")
    bad = nonfinite_entries(state)
    if bad:
        raise CheckpointError(
            f"the checkpoint's {which} weights are not finite ({', '.join(bad[:3])}): it cannot sample"
        )
    model.load_state_dict(state)
