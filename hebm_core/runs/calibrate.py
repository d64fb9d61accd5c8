"""The η stage of a hybrid run: moment matching on fresh samples of the trained model.

It connects the self-contained algorithm (:func:`hebm_core.calibration.calibrate`) to a run:
``measure(η)`` draws ``[hybrid] calibrate_samples`` samples with the run's sampling plan at that η
(the model's own η is restored afterwards), and the target is the mean statistic of up to
``max_data`` training samples (a seeded random subset, as for ΔT's training side), moved to a
statistic's ``target`` where one is configured (:mod:`hebm_core.runs.conditioning`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hebm_core.calibration import CalibrationOptions, CalibrationResult, Diverged, calibrate
from hebm_core.hybrid import HybridEnergy
from hebm_core.runs.build import Experiment
from hebm_core.runs.conditioning import shift_to_targets, targets_of
from hebm_core.runs.sampling import RunawayError, SamplingPlan
from hebm_core.samplers import SamplerDivergenceError
from hebm_core.statistics import Statistic
from hebm_core.tree import Sample

__all__ = ["calibrate_eta", "CALIBRATED_ETA"]

#: checkpoint key of η after moment matching (the weights keep the trained η)
CALIBRATED_ETA = "calibrated_eta"


def _stacked(stats: list[Statistic], x: Sample) -> Tensor:
    with torch.no_grad():
        return torch.cat([s(x).double().cpu() for s in stats], 1)


def calibrate_eta(
    model: HybridEnergy,
    exp: Experiment,
    plan: SamplingPlan | None = None,
    options: CalibrationOptions | None = None,
    n: int | None = None,
    max_data: int = 10000,
) -> CalibrationResult:
    """η of ``model`` fitted by moment matching with the network fixed; ``model`` keeps its η.

    ``plan`` (default: the run's ``[sampler]``), ``options`` (default: ``[hybrid]``'s) and ``n``
    samples per round (default: ``calibrate_samples``) can be given to try other settings.
    """
    hyb = exp.config.hybrid
    plan = plan or SamplingPlan.build(exp)
    n = hyb.calibrate_samples if n is None else n
    stats = model.statistics
    target = _stacked(stats, exp.bundle.training_subset(max_data))
    target = shift_to_targets(target, targets_of(exp.config.statistics, stats, exp.example))

    def measure(eta: Tensor) -> Tensor:
        with model.eta_at(eta):
            try:
                samples, _ = plan.draw(model, exp, n=n, diagnose=False)
            except (SamplerDivergenceError, RunawayError) as exc:
                raise Diverged(str(exc), exc) from exc
        return _stacked(stats, samples)

    start = model.eta_vector(hyb.calibrate_start) if hyb.calibrate_start else model.eta_vector()
    return calibrate(measure, target, start, options or hyb.calibration(), model.eta_sizes())
