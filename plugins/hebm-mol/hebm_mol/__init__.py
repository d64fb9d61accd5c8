"""hebm-mol: QM9-like molecular graphs with an EDP-GNN energy and a differentiable valency statistic.

A molecule is a dense graph ``(X [B, N, F] element one-hots, A [B, N, N] bond orders, mask [B, N])``
(see :mod:`hebm_mol.graph`). Registered as the ``mol`` plugin through the ``hebm.plugins`` entry
point; ``hebm run --plugin mol`` trains on the embedded RDKit NCI sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from hebm_core.data import DataBundle
from hebm_core.metrics import Metric
from hebm_core.pretrained import Pretrained
from hebm_core.registry import Plugin
from hebm_core.statistics import Statistic
from hebm_mol.bank import BANK
from hebm_mol.checks import check_bool, check_elements, check_optional_dir
from hebm_mol.datasets import DATASETS
from hebm_mol.graph import QM9_SPEC, GraphSpec, quantize
from hebm_mol.io import write_samples
from hebm_mol.models import EDPGNNEnergy
from hebm_mol.space import GraphSpace
from hebm_mol.statistics import Valency

__version__ = "0.1.0"
__all__ = [
    "plugin",
    "DEFAULT_CONFIG",
    "PRETRAINED",
    "prior",
    "finalize",
    "GraphSpec",
    "GraphSpace",
    "EDPGNNEnergy",
    "Valency",
]


def valency(
    atoms: Sequence[str] = QM9_SPEC.atoms, charged_n: bool = True, components: Sequence[str] = ("excess",)
) -> Statistic:
    """Valency violation mass (and optionally implicit-H mass, bond mass), one η per component.

    ``atoms`` must be the dataset's elements, in its order (a mismatch is reported at first use)."""
    spec = GraphSpec(check_elements("valency", "atoms", atoms), QM9_SPEC.max_atoms)
    return Valency(spec, charged_n=charged_n, components=components)


def prior(n: int, bundle: DataBundle, sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Chain starts: node counts drawn from the training histogram, X and A as σ × noise in the space."""
    spec: GraphSpec = bundle.extras.get("spec", QM9_SPEC)
    counts = torch.multinomial(bundle.extras["node_counts"].float(), n, replacement=True)
    mask = torch.arange(spec.max_atoms)[None, :] < counts[:, None]
    x = torch.zeros(n, spec.max_atoms, spec.n_types)
    a = torch.zeros(n, spec.max_atoms, spec.max_atoms)
    zx, za, _ = bundle.space.noise_like((x, a, mask))
    return zx * sigma, za * sigma, mask


def finalize(samples, bundle: DataBundle):
    """GDSS quantisation: bond orders by thresholds 0.5 / 1.5 / 2.5, elements by argmax."""
    return quantize(*samples)


def molecules(
    statistics: list[Statistic],
    bundle: DataBundle,
    correct: bool = True,
    nspdk: bool = True,
    fcd: bool = True,
    cache_dir: str | None = None,
) -> Metric:
    """GDSS-protocol metrics (validity w/o correction, uniqueness, novelty, NSPDK, FCD; ``corrected/``)."""
    from hebm_mol.evaluation import MoleculeMetrics
    from hebm_mol.metrics import PROTOCOL

    for name, value in (("correct", correct), ("nspdk", nspdk), ("fcd", fcd)):
        check_bool("molecules", name, value)
    cache_dir = check_optional_dir("molecules", "cache_dir", cache_dir)
    bundle.info["metrics_protocol"] = PROTOCOL
    return MoleculeMetrics(bundle, correct=correct, nspdk=nspdk, fcd=fcd, cache_dir=cache_dir)


#: ``hebm run --plugin mol``: the embedded NCI sample, sized for a few CPU minutes
DEFAULT_CONFIG = {
    "plugin": "mol",
    "statistics": ["valency"],
    "hybrid": {"sigma_power": 0, "calibrate_rounds": 3, "calibrate_samples": 200, "calibrate_lr": 1.0},
    "data": {"name": "nci"},
    "model": {"name": "edp_gnn", "hidden": 32, "depth": 3},
    "objective": {"name": "dsm", "sigma_min": 0.05, "sigma_max": 1.5, "n_sigmas": 20},
    "train": {
        "steps": 2000,
        "batch_size": 128,
        "lr": 2e-3,
        "ema_decay": 0.999,
        "seed": 0,
        "log_every": 200,
        "checkpoint_every": 1000,
    },
    "sampler": {
        "name": "annealed_langevin",
        "n_samples": 500,
        "steps_per_sigma": 20,
        "eps": 2e-4,
        "denoise": True,
        "batch_size": 500,
        "progress": True,
    },
    "evaluate": {"metrics": ["delta_t", {"name": "molecules", "nspdk": True, "fcd": True}]},
}

_PRETRAINED = Path(__file__).parent / "pretrained"

#: ``hebm sample --pretrained qm9``: the model card is ``pretrained/qm9.md``
PRETRAINED = {
    "qm9": Pretrained(
        _PRETRAINED / "qm9.pt",
        sha256="072eb61ff30b97964d7ccf763b8a5ee3214bc0d320f904e6faf90c73f60acfb2",
        card=_PRETRAINED / "qm9.md",
        summary="QM9 (GDSS split), EDP-GNN energy, CPU-trained; samples offline on the embedded NCI data",
    )
}

plugin = Plugin(
    name="mol",
    description="Molecular graphs (QM9, SMILES files, RDKit NCI sample): EDP-GNN energy, valency and a statistic bank",
    datasets=dict(DATASETS),
    models={"edp_gnn": EDPGNNEnergy},
    statistics={"valency": valency, **BANK},
    metrics={"molecules": molecules},
    prior=prior,
    finalize=finalize,
    write_samples=write_samples,
    default_config=DEFAULT_CONFIG,
    pretrained=PRETRAINED,
)
