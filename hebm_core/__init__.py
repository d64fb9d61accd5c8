"""hebm-core: hybrid energy-based models.

Four nouns (energy, statistic, objective, sampler) plus a trainer and a plugin registry.
``log p(x) = F_θ(x) + η·T(x) − log Z`` with ``F_θ = −E_θ``: see :class:`HybridEnergy`.
"""

from hebm_core.energy import EnergyModel, SumEnergy, TemperedEnergy, energy_and_score
from hebm_core.hybrid import HybridEnergy
from hebm_core.models import GaussianEnergy, GaussianMixtureEnergy, MLPEnergy
from hebm_core.space import Space
from hebm_core.statistics import FunctionStatistic, Statistic, statistic

__version__ = "0.1.0"

__all__ = [
    "EnergyModel",
    "FunctionStatistic",
    "GaussianEnergy",
    "GaussianMixtureEnergy",
    "HybridEnergy",
    "MLPEnergy",
    "Space",
    "Statistic",
    "SumEnergy",
    "TemperedEnergy",
    "energy_and_score",
    "statistic",
    "__version__",
]
