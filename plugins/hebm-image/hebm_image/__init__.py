"""hebm-image: grey-level images (MNIST, Fashion-MNIST, scikit-learn's 8×8 digits) with a noise-conditional
convolutional energy, border-margin / ink / centre-of-mass statistics, AIS bits/dim and a classifier FID.

Registered through the ``hebm.plugins`` entry point ``image = "hebm_image:plugin"``. Its
``default_config`` (``hebm run --plugin image``) trains a hybrid model on the digits that ship with
scikit-learn, in minutes on a CPU and with no data files; ``configs/mnist_cpu.toml`` and
``configs/fashion_mnist_cpu.toml`` run on the IDX files at a CPU budget, ``configs/mnist_gpu.toml`` at full size.

Every report states the pixel convention (``dataset.pixels``: uniform dequantisation of the grey
levels, scaling to ``[0, 1)``, and the ``+ log₂ L`` bits/dim of the change of variables), margin ΔT
per statistic (``delta_t/margin``) and bits/dim with forward/reverse AIS bounds (``nll/...``).
"""

from __future__ import annotations

from hebm_core.registry import Plugin
from hebm_image.data import DATASETS
from hebm_image.likelihood import METRICS as LIKELIHOOD_METRICS
from hebm_image.metrics import METRICS
from hebm_image.model import MODELS
from hebm_image.render import finalize, prior, write_samples
from hebm_image.sampling import SAMPLERS
from hebm_image.statistics import STATISTICS

__all__ = ["plugin", "DEFAULT_CONFIG"]

__version__ = "0.1.0"

#: ``hebm run --plugin image``: the network trains alone (``eta_lr = 0``: it is the vanilla network
#: of the same seed) and every η (border ink, total ink, the sin_sum control) is then fitted by moment
#: matching; score matching alone would leave η near 0. The statistics' term does not scale with σ
#: (``sigma_power = 0``): for a linear statistic the tilt of a Gaussian's blurred score fades by
#: itself at large σ. The 8×8 digits fill their top and bottom rows but leave the outer columns
#: nearly blank, so the margin is one component per side. bits/dim: forward/reverse AIS of 48 chains
#: over 100 temperatures, reverse chains from the run's own samples re-blurred by σ_min (approximate
#: samples of the model: the upper side is not a guaranteed bound), and the PF-ODE on 16 test images.
DEFAULT_CONFIG = {
    "plugin": "image",
    "statistics": [{"name": "margin", "width": 1, "per_side": True}, "ink", "sin_sum"],
    "data": {"name": "digits", "test_fraction": 0.2, "seed": 0},
    "model": {"name": "conv_energy", "channels": 16, "levels": 2, "blocks": 1},
    "objective": {"name": "dsm", "sigma_min": 0.02, "sigma_max": 1.0, "n_sigmas": 10},
    "hybrid": {"sigma_power": 0.0, "calibrate_rounds": 4, "calibrate_samples": 256},
    "train": {
        "steps": 1500,
        "batch_size": 64,
        "lr": 2e-3,
        "eta_lr": 0.0,
        "ema_decay": 0.995,
        "seed": 0,
        "log_every": 100,
        "checkpoint_every": 500,
    },
    "sampler": {"name": "image_langevin", "n_samples": 500, "steps_per_sigma": 20, "eps": 4e-5},
    "evaluate": {
        "metrics": ["sample_quality", {"name": "bits_per_dim", "n_chains": 48, "n_temps": 100, "pf_ode_images": 16}],
        "statistics": ["centre_of_mass"],
    },
}

plugin = Plugin(
    name="image",
    description="MNIST / Fashion-MNIST (IDX) and sklearn digits; conv energy, margin/ink statistics, AIS bits/dim, FID",
    datasets=dict(DATASETS),
    models=dict(MODELS),
    statistics=dict(STATISTICS),
    metrics={**METRICS, **LIKELIHOOD_METRICS},
    samplers=dict(SAMPLERS),
    prior=prior,
    finalize=finalize,
    write_samples=write_samples,
    default_config=DEFAULT_CONFIG,
)
