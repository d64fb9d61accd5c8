"""Learning-rate schedules: pure functions of the step, so a resumed run continues them exactly."""

from __future__ import annotations

import math

__all__ = ["LR_SCHEDULES", "lr_factor"]


def _cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * progress))


#: learning-rate multipliers by the fraction of the (post-warmup) steps done; no scheduler state
LR_SCHEDULES = {"constant": lambda progress: 1.0, "cosine": _cosine}


def lr_factor(schedule: str, step: int, steps: int, warmup_steps: int = 0) -> float:
    """The multiplier of the configured learning rates for optimizer step ``step`` (0-based).

    A linear warmup over ``warmup_steps`` (from ``1/warmup_steps`` to 1), then ``schedule`` over the rest.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    rest = max(steps - warmup_steps, 1)
    return LR_SCHEDULES[schedule](min((step - warmup_steps) / rest, 1.0))
