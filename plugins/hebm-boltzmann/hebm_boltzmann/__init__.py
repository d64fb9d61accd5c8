"""hebm-boltzmann: targets for data-free Boltzmann sampling (``p ∝ exp(−U)``, no samples).

Registered through the ``hebm.plugins`` entry point ``boltzmann = "hebm_boltzmann:plugin"``; its
``targets`` are what ``hebm boltzmann --target NAME`` samples:

- 2-D: ``mog2``, ``mog2_unequal``, ``mog6``, ``mog9``, ``gmm40`` (FAB), ``ring``, ``ring5`` (A-NICE-MC),
  all with exact samples and exact log Z;
- ``manywell`` (32-D, exact samples, log Z by 1-D quadrature);
- ``blr_australian``, ``blr_german``, ``blr_heart`` (reference by long HMC; test accuracy / AUC);
- ``lj13`` (reference by long MALA; energy-histogram W2).
"""

from __future__ import annotations

from hebm_boltzmann.blr import BLR_TARGETS
from hebm_boltzmann.lj import LJ_TARGETS
from hebm_boltzmann.manywell import MANYWELL
from hebm_boltzmann.mixtures import MIXTURES
from hebm_boltzmann.rings import RINGS
from hebm_core.registry import Plugin

__all__ = ["plugin", "TARGETS"]

__version__ = "0.1.0"

TARGETS = {**MIXTURES, **RINGS, **MANYWELL, **BLR_TARGETS, **LJ_TARGETS}

plugin = Plugin(
    name="boltzmann",
    description="data-free Boltzmann sampling targets: 2-D mixtures and rings, Many-Well, BLR, LJ-13",
    targets=TARGETS,
)
