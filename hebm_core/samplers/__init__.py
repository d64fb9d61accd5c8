"""Samplers: Langevin, annealed Langevin, MALA, HMC, kinetic Langevin, NUTS, preconditioned MALA,
parallel tempering, EDG (a trained generator, reweighted), and AIS for log Z."""

from hebm_core.samplers.ais import AIS, AISResult, nll_from_log_z, sigmoid_schedule
from hebm_core.samplers.base import ChainState, Sampler, SamplerDivergenceError, SamplerStuckError, Trace
from hebm_core.samplers.edg import EDGSampler
from hebm_core.samplers.kinetic import UnderdampedLangevin
from hebm_core.samplers.langevin import AnnealedLangevin, Langevin, geometric_sigmas
from hebm_core.samplers.mh import HMC, MALA, DualAveraging, MetropolisSampler
from hebm_core.samplers.nuts import NUTS
from hebm_core.samplers.precond import MetricAdaptiveSampler, PrecondMALA, metric_windows
from hebm_core.samplers.tempering import ParallelTempering, geometric_betas

#: samplers by the name used in configs and on the command line
SAMPLERS: dict[str, type[Sampler]] = {
    "langevin": Langevin,
    "annealed_langevin": AnnealedLangevin,
    "mala": MALA,
    "hmc": HMC,
    "underdamped_langevin": UnderdampedLangevin,
    "nuts": NUTS,
    "precond_mala": PrecondMALA,
    "parallel_tempering": ParallelTempering,
    "edg": EDGSampler,
}

__all__ = [
    "AIS",
    "AISResult",
    "AnnealedLangevin",
    "ChainState",
    "DualAveraging",
    "EDGSampler",
    "HMC",
    "Langevin",
    "MALA",
    "MetricAdaptiveSampler",
    "MetropolisSampler",
    "NUTS",
    "ParallelTempering",
    "PrecondMALA",
    "SAMPLERS",
    "Sampler",
    "SamplerDivergenceError",
    "SamplerStuckError",
    "Trace",
    "UnderdampedLangevin",
    "geometric_betas",
    "geometric_sigmas",
    "metric_windows",
    "nll_from_log_z",
    "sigmoid_schedule",
]
