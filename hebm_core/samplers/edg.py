"""EDG as a sampler of a trained model: ``hebm sample --checkpoint … --sampler edg``.

Each :meth:`EDGSampler.run` trains an Energy-based Diffusion Generator (:mod:`hebm_core.edg`) on the
model at the run's noise level (the smallest training σ of a noise-conditional model), draws as many
weighted samples as there are chains and, by default, resamples them by their importance weights
(multinomial), so what it returns are (asymptotically) samples of the model that the rest of the
pipeline scores like any other sampler's. The starting points only give the number of samples, the
dimension and the scale the generator starts at. Amortised: the training is paid once per call; the
weighted expectations, rESS and the log Z bound go into ``last_stats``.

Flat ``[B, d]`` samples only (the generator is a dense network on vectors). The EDG modules are
imported when an instance is made, so importing the samplers does not import the trainer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hebm_core.energy import EnergyFn
from hebm_core.samplers.base import Sampler
from hebm_core.tree import Sample

__all__ = ["EDGSampler"]


class EDGSampler(Sampler):
    """Train an EDG on the energy, then draw importance-weighted samples (resampled unless ``resample`` is off).

    ``edg``, ``weights`` and ``train`` are the ``[edg]`` / ``[weights]`` / trainer options of
    :mod:`hebm_core.edg` (defaults :data:`hebm_core.edg.TRAIN_DEFAULTS`); ``scale`` the generator's starting spread
    (default: the spread of the chain starts). ``seed`` seeds the generator's networks and training.
    """

    name = "edg"

    def __init__(
        self,
        edg: dict[str, Any] | None = None,
        weights: dict[str, Any] | None = None,
        train: dict[str, Any] | None = None,
        resample: bool = True,
        scale: float | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from hebm_core.edg import EDGOptions, WeightOptions, edg_train_config

        self.options = EDGOptions.from_dict(dict(edg or {}))
        self.weight_options = dict(weights or {})
        WeightOptions.from_dict(self.weight_options)  # bad options fail at construction
        self.train = {"seed": int(seed), "progress": False, **(train or {})}
        edg_train_config(self.train)
        self.resample, self.scale = bool(resample), scale

    def run(self, energy: EnergyFn, x0: Sample, sigma: float | Tensor | None = None) -> Sample:
        from hebm_core.edg import WeightOptions, draw_weighted, edg_train_config, train_edg

        if not isinstance(x0, Tensor) or x0.dim() != 2:
            raise ValueError("sampler 'edg' draws flat [B, d] samples; this model's samples are structured")
        n, dim = x0.shape
        level = None if sigma is None else float(sigma if not isinstance(sigma, Tensor) else sigma.flatten()[0])
        scale = self.scale if self.scale is not None else max(float(x0.detach().std()), 1e-3)
        with torch.enable_grad():
            trained = train_edg(energy, dim, self.options, edg_train_config(self.train), scale=scale, sigma=level)
            ws = draw_weighted(trained.model, WeightOptions.from_dict({**self.weight_options, "n_samples": n}))
        x = ws.x.to(x0.device, x0.dtype)
        if self.resample:
            w = ws.weights.double().clamp_min(0)
            x = x[torch.multinomial(w, n, replacement=True).to(x.device)]
        self.last_stats = {
            **{k: float(v) for k, v in ws.summary.items() if isinstance(v, int | float)},
            "train_evals": float(trained.train_evals),
            "sample_evals": float(ws.sample_evals),
            "weight_evals": float(ws.weight_evals),
            "train_seconds": float(trained.summary.get("wall_time_s") or 0.0),
            "final_loss": float(trained.summary.get("final_metrics", {}).get("loss", float("nan"))),
        }
        return x.detach()
