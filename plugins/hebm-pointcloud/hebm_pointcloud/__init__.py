"""hebm-pointcloud: ShapeNet point clouds, a set energy network, the kNN-Laplacian statistic and
PointFlow's MMD/COV/1-NNA.

Registered through the ``hebm.plugins`` entry point ``pointcloud = "hebm_pointcloud:plugin"``.
Its ``default_config`` (``hebm run --plugin pointcloud``) trains a hybrid model with the
Laplacian statistic on the embedded primitives (tables and chairs made of Open3D boxes), sized
for a few CPU minutes; ``configs/shapenet.toml`` runs on ShapeNet and ``configs/gpu.toml`` scales up.
:func:`open3d` returns the Open3D module, imported lazily (after libusb) on first use.
"""

from __future__ import annotations

from hebm_core.registry import Plugin
from hebm_pointcloud._open3d import open3d
from hebm_pointcloud.data import DATASETS
from hebm_pointcloud.metrics import METRICS
from hebm_pointcloud.model import MODELS
from hebm_pointcloud.render import write_samples
from hebm_pointcloud.statistics import STATISTICS

__all__ = ["plugin", "DEFAULT_CONFIG", "open3d"]

__version__ = "0.1.0"

#: ``hebm run --plugin pointcloud``; sized for a few minutes on two CPU cores. The hybrid is the
#: trained network tilted by the size-relative Laplacian, the size and the D2 shape distribution:
#: the network trains alone (``eta_lr = 0``, so it is the vanilla network of the same seed) and
#: every η is then fitted by moment matching. The size-relative Laplacian smooths without
#: shrinking; matching the size as well then matches the plain Laplacian (its product with the
#: size); D2 (pairwise distances, up to 2 on the unit sphere) tilts the shapes' proportions. Trained
#: jointly, η acts as a strong denoiser and the co-trained network samples worse shapes (RESULTS.md).
DEFAULT_CONFIG = {
    "plugin": "pointcloud",
    "statistics": [{"name": "laplacian_shape", "k": 8}, "size", "d2"],
    "data": {
        "name": "primitives",
        "n_train": 256,
        "n_test": 32,
        "n_points": 256,
        "normalization": "unit_sphere",
        "seed": 0,
    },
    "model": {"name": "set_energy", "hidden": 64, "depth": 2},
    "objective": {"name": "dsm", "sigma_min": 0.01, "sigma_max": 1.0, "n_sigmas": 10},
    # η·T·(σ_min/σ)²: the Laplacian's pull grows like a Gaussian score as σ falls (η: its weight at
    # σ_min); η from 6 rounds of moment matching on 64 samples each
    "hybrid": {"sigma_power": 2, "calibrate_rounds": 6, "calibrate_samples": 64, "calibrate_lr": 4.0},
    "train": {
        "steps": 1000,
        "batch_size": 32,
        "lr": 1e-3,
        "eta_lr": 0.0,
        "ema_decay": 0.99,
        "seed": 0,
        "log_every": 100,
        "checkpoint_every": 500,
    },
    "sampler": {"name": "annealed_langevin", "n_samples": 32, "steps_per_sigma": 30, "eps": 1e-4},
    # ΔT is reported for the trained statistic and for the plain uniform Laplacian
    "evaluate": {"metrics": [{"name": "pointflow", "emd_points": 256}], "statistics": [{"name": "laplacian", "k": 8}]},
}

plugin = Plugin(
    name="pointcloud",
    description="ShapeNet point clouds (PC15k/ONet/meshes) and primitives; set energy, Laplacian, MMD/COV/1-NNA",
    datasets=dict(DATASETS),
    models=dict(MODELS),
    statistics=dict(STATISTICS),
    metrics=dict(METRICS),
    write_samples=write_samples,
    default_config=DEFAULT_CONFIG,
)
