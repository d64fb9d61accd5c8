"""Run stages: build an experiment, train, sample, evaluate, report; ``run`` and ``compare`` join them.

- :mod:`~hebm_core.runs.build`: :class:`Experiment` from a :class:`~hebm_core.config.RunConfig`
- :mod:`~hebm_core.runs.sampling`: :class:`SamplingPlan`, built once per run
- :mod:`~hebm_core.runs.evaluation`: metrics (ΔT always) and the AIS likelihood
- :mod:`~hebm_core.runs.calibrate`: the η stage (moment matching on fresh samples)
- :mod:`~hebm_core.runs.report`: report dicts and atomic JSON
- :mod:`~hebm_core.runs.workflow`: ``train``, ``run``
- :mod:`~hebm_core.runs.comparison`: vanilla against hybrid, over seeds and folds
- :mod:`~hebm_core.runs.checkpoints`: load a run, sample or evaluate from its checkpoint
"""

from hebm_core.runs.build import EXAMPLE_SIZE, Experiment, build
from hebm_core.runs.calibrate import CALIBRATED_ETA, calibrate_eta
from hebm_core.runs.checkpoints import evaluate_checkpoint, load_run, sample_from_checkpoint
from hebm_core.runs.comparison import compare, compare_seeds, summarise
from hebm_core.runs.evaluation import build_metrics, evaluate, log_likelihood
from hebm_core.runs.report import environment, write_json, write_outputs
from hebm_core.runs.sampling import SamplingPlan
from hebm_core.runs.workflow import run, train

__all__ = [
    "CALIBRATED_ETA",
    "EXAMPLE_SIZE",
    "Experiment",
    "SamplingPlan",
    "build",
    "build_metrics",
    "calibrate_eta",
    "compare",
    "compare_seeds",
    "environment",
    "evaluate",
    "evaluate_checkpoint",
    "load_run",
    "log_likelihood",
    "run",
    "sample_from_checkpoint",
    "summarise",
    "train",
    "write_json",
    "write_outputs",
]
