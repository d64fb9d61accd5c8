"""Blow-up detection: a finite loss that grows by orders of magnitude is divergence in slow motion."""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

__all__ = ["LossWatch"]


class LossWatch:
    """Flags the first step whose ``|loss|`` is over ``factor`` times the lowest running median of
    the last ``window`` losses seen so far and over ``floor`` (a loss that starts near 0, as
    contrastive divergence's does, is not a blow-up at 0.01), e.g. a learning rate of 1 that takes a
    denoising loss from 1 to 3e7 in one step; NaN and inf are the trainer's own, stricter check."""

    def __init__(self, factor: float = 1e3, window: int = 100, warmup: int = 1, floor: float = 1.0) -> None:
        self.factor, self.warmup, self.floor = float(factor), int(warmup), float(floor)
        self.recent: deque[float] = deque(maxlen=int(window))
        self.best = math.inf
        self.flag: dict[str, Any] | None = None

    def update(self, step: int, loss: float) -> str | None:
        """Feed one step's loss; returns a one-line message the first time the loss blows up."""
        size = abs(loss)
        message = None
        if len(self.recent) >= self.warmup:
            self.best = min(self.best, statistics.median(self.recent))
            if self.flag is None and size > max(self.factor * self.best, self.floor):
                self.flag = {"step": step, "loss": loss, "running_median": self.best}
                message = (
                    f"training loss {loss:.4g} at step {step} is over {self.factor:g}× its running median "
                    f"{self.best:.3g}: training is blowing up"
                )
        self.recent.append(size)
        return message
