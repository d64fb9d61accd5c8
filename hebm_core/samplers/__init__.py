"""Samplers: Langevin, annealed Langevin, MALA, HMC, and AIS for log Z."""

from hebm_core.samplers.ais import AIS, AISResult, nll_from_log_z, sigmoid_schedule
from hebm_core.samplers.base import ChainState, Sampler, SamplerDivergenceError, SamplerStuckError
from hebm_core.samplers.langevin import AnnealedLangevin, Langevin, geometric_sigmas
from hebm_core.samplers.mh import HMC, MALA, DualAveraging, MetropolisSampler

#: samplers by the name used in configs and on the command line
SAMPLERS: dict[str, type[Sampler]] = {
    "langevin": Langevin,
    "annealed_langevin": AnnealedLangevin,
    "mala": MALA,
    "hmc": HMC,
}

__all__ = [
    "AIS",
    "AISResult",
    "AnnealedLangevin",
    "ChainState",
    "DualAveraging",
    "HMC",
    "Langevin",
    "MALA",
    "MetropolisSampler",
    "SAMPLERS",
    "Sampler",
    "SamplerDivergenceError",
    "SamplerStuckError",
    "geometric_sigmas",
    "nll_from_log_z",
    "sigmoid_schedule",
]
