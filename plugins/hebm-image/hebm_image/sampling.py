"""Where image samples live and how they are drawn.

:class:`ImageSpace` is Euclidean pixel space (no clamping while the chains move: a box would bias
Langevin dynamics; samples are clipped to ``[0, 1]`` once, by the plugin's ``finalize``). It also
keeps the model and noise levels of the latest draw made in it, because the bits/dim metric must
bound the likelihood of the very model that made the samples, and the core hands metrics the
samples only (the core change that would remove this: pass the sampling model to metric factories
that name a ``model`` keyword).

:class:`ImageLangevin` is the core's annealed Langevin sampler (the hybrid score
``−∇E_θ(x, σ) − η·∇T(x)`` at every level, then Tweedie's denoising step ``x + σ_L² s(x, σ_L)``)
that records its draw in that space.
"""

from __future__ import annotations

from dataclasses import dataclass

from hebm_core.energy import EnergyFn
from hebm_core.samplers.langevin import AnnealedLangevin
from hebm_core.space import Space
from hebm_core.tree import Sample

__all__ = ["ImageSpace", "ImageLangevin", "LastDraw", "SAMPLERS"]


@dataclass
class LastDraw:
    """The energy a sampler last drew from and its smallest and largest noise levels."""

    energy: EnergyFn
    sigma_min: float | None
    sigma_max: float | None = None


class ImageSpace(Space):
    """Unbounded pixel space that remembers the latest draw made in it (module docstring)."""

    def __init__(self) -> None:
        super().__init__(None, None)
        self.last_draw: LastDraw | None = None

    def __repr__(self) -> str:
        return "ImageSpace(unbounded while sampling; samples clipped to [0, 1] after the final denoising step)"


class ImageLangevin(AnnealedLangevin):
    """Annealed Langevin with a final denoising step (:class:`~hebm_core.samplers.langevin.AnnealedLangevin`)
    whose draws are recorded in an :class:`ImageSpace`, for the ``bits_per_dim`` metric."""

    name = "image_langevin"

    def run(self, energy: EnergyFn, x0: Sample, sigma: float | None = None) -> Sample:
        if isinstance(self.space, ImageSpace):
            self.space.last_draw = LastDraw(energy, float(self.sigmas[-1]), float(self.sigmas[0]))
        return super().run(energy, x0, sigma)


SAMPLERS = {"image_langevin": ImageLangevin}
