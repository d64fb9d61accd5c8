"""The toy plugin: seeded 2-D / n-D densities, an MLP energy and a learnable Gaussian.

Registered through the ``hebm.plugins`` entry point ``toy = "hebm_core.toy:plugin"``. Its
``default_config`` is what ``hebm run`` trains with no arguments: a hybrid model on two rings with
the radius statistic, sized to finish in about a minute on two CPU cores.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from hebm_core import statistics as S
from hebm_core.metrics import GaussianMMD, Metric
from hebm_core.models import GaussianEnergy, MLPEnergy
from hebm_core.registry import Plugin
from hebm_core.statistics import Statistic
from hebm_core.toy.datasets import DATASETS
from hebm_core.toy.plot import write_samples

__all__ = ["plugin", "DEFAULT_CONFIG"]


def _flat_dim(example: Tensor) -> int:
    if not isinstance(example, Tensor) or example.dim() != 2:
        raise ValueError("toy models need flat [B, D] tensors")
    return int(example.shape[1])


def mlp(example: Tensor, hidden: int = 128, depth: int = 3, noise_conditional: bool = True) -> MLPEnergy:
    """:class:`~hebm_core.models.MLPEnergy` sized from the example batch."""
    return MLPEnergy(dim=_flat_dim(example), hidden=hidden, depth=depth, noise_conditional=noise_conditional)


def gaussian(example: Tensor) -> GaussianEnergy:
    """Learnable full-covariance Gaussian energy (mean 0, identity precision at start)."""
    return GaussianEnergy(dim=_flat_dim(example), learnable=True)


def _fixed(stat: Statistic) -> Callable[[], Statistic]:
    def factory() -> Statistic:
        return stat

    factory.__doc__ = stat.__doc__
    return factory


def mmd(statistics: list[Statistic], bandwidth: float | None = None, max_points: int = 4000) -> Metric:
    """Gaussian-kernel MMD² between samples and reference data."""
    return GaussianMMD(bandwidth=bandwidth, max_points=max_points)


#: ``hebm run`` with no arguments; sized for ≤ ~60 s on 2 CPU cores
DEFAULT_CONFIG = {
    "plugin": "toy",
    "statistics": ["radius"],
    "data": {"name": "rings", "n": 8000, "n_test": 2000, "seed": 0},
    "model": {"name": "mlp", "hidden": 128, "depth": 3},
    # score matching alone leaves η near 0 (the network absorbs ‖x‖); moment matching fits it
    "hybrid": {"calibrate_rounds": 3, "calibrate_samples": 2000},
    "objective": {"name": "dsm", "sigma_min": 0.02, "sigma_max": 2.0, "n_sigmas": 10},
    "train": {
        "steps": 3000,
        "batch_size": 256,
        "lr": 1e-3,
        "ema_decay": 0.995,
        "seed": 0,
        "log_every": 250,
        "checkpoint_every": 1000,
    },
    "sampler": {"name": "annealed_langevin", "n_samples": 2000, "steps_per_sigma": 100, "eps": 5e-5},
    "evaluate": {"metrics": ["delta_t", "mmd"]},
}

plugin = Plugin(
    name="toy",
    description="Seeded 2-D / n-D toy densities (rings, moons, mixtures, checkerboard, Gaussian)",
    datasets=dict(DATASETS),
    models={"mlp": mlp, "gaussian": gaussian},
    statistics={s.name: _fixed(s) for s in (S.identity, S.square, S.sin_sum, S.radius)},
    metrics={"mmd": mmd},
    write_samples=write_samples,
    default_config=DEFAULT_CONFIG,
)
