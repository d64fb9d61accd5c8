"""Annealed importance sampling (Neal 2001) for log Z, hence NLL and bits/dim.

Path: ``E_β = (1-β) E_0 + β E_1`` from a tractable base ``E_0`` (a Gaussian by default, with
known log Z_0) to the model ``E_1``. Each chain accumulates ``log w = -Σ_t (β_t - β_{t-1})
(E_1 - E_0)(x_{t-1})`` and moves with an MH kernel (MALA or HMC) that leaves ``p_β`` invariant.
``log Z_1 = log Z_0 + log mean exp(log w)``. The spread across chains is reported: the standard
deviation of log w, the effective sample size, and a bootstrap standard error of the estimate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.energy import EnergyFn, EnergyModel, energy_and_score
from hebm_core.models import GaussianEnergy
from hebm_core.samplers.mh import MALA, MetropolisSampler
from hebm_core.tree import Sample

__all__ = ["AIS", "AISResult", "nll_from_log_z", "sigmoid_schedule"]


@dataclass
class AISResult:
    log_z: float
    log_z_stderr: float  # bootstrap over chains
    log_w_std: float
    ess: float  # effective sample size of the final weights
    n_chains: int
    n_temps: int
    acceptance: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def sigmoid_schedule(n: int, rad: float = 4.0) -> Tensor:
    """β from 0 to 1 in ``n`` steps, dense at both ends (Grosse et al. 2013)."""
    t = torch.linspace(-rad, rad, n, dtype=torch.float64)
    s = torch.sigmoid(t)
    return (s - s[0]) / (s[-1] - s[0])


class _PathEnergy(EnergyModel):
    """``(1-β) E_0 + β E_1`` with scores combined from each end (closed forms where they exist)."""

    def __init__(self, e0: EnergyModel, e1: EnergyFn, sigma: Tensor | None) -> None:
        super().__init__()
        self.e0, self.e1, self.sigma, self.beta = e0, e1, sigma, 0.0

    def parts(self, x):
        a = self.e0.energy_and_score(x)
        b = energy_and_score(self.e1, x, self.sigma)
        return a, b

    def energy(self, x, sigma=None):
        a, b = self.parts(x)
        return (1 - self.beta) * a[0] + self.beta * b[0]

    def energy_and_score(self, x, sigma=None, create_graph=False):
        (e0, s0), (e1, s1) = self.parts(x)
        bt = self.beta
        return (1 - bt) * e0 + bt * e1, (1 - bt) * s0 + bt * s1


class AIS:
    """Estimate log Z of an energy with ``n_chains`` independent AIS runs over ``n_temps`` temperatures.

    ``kernel`` is a :class:`MALA` or :class:`HMC` instance (its ``step_size`` is used at every
    temperature, adapted towards its target acceptance unless ``adapt=False``).
    """

    def __init__(
        self,
        n_temps: int = 1000,
        n_chains: int = 256,
        kernel: MetropolisSampler | None = None,
        steps_per_temp: int = 1,
        adapt: bool = True,
        bootstrap: int = 200,
    ) -> None:
        if n_temps < 2:
            raise ValueError("AIS needs at least two temperatures")
        self.n_temps, self.n_chains, self.steps_per_temp = int(n_temps), int(n_chains), int(steps_per_temp)
        self.kernel = kernel or MALA(step_size=0.05)
        self.adapt, self.bootstrap = adapt, int(bootstrap)

    def estimate(
        self,
        energy: EnergyFn,
        base: GaussianEnergy,
        sigma: float | None = None,
        generator: torch.Generator | None = None,
    ) -> AISResult:
        """Run AIS from ``base`` (which must have ``sample`` and ``log_partition``) to ``energy``."""
        x: Sample = base.sample(self.n_chains, generator=generator)
        sig = self.kernel.sigma_tensor(sigma, x)
        path = _PathEnergy(base, energy, sig)
        betas = sigmoid_schedule(self.n_temps).tolist()
        log_w = torch.zeros(self.n_chains, dtype=torch.float64, device=x.device)
        eps = self.kernel.step_size
        target = self.kernel.target_accept
        acc_hist: list[float] = []
        state = self.kernel.init_state(path, x, None)
        parts = path.parts(state.x)
        with self.kernel.progress_bar(self.n_temps - 1, "AIS") as bar:
            for t in range(1, self.n_temps):
                (e0, s0), (e1, s1) = parts
                log_w -= (betas[t] - betas[t - 1]) * (e1 - e0).double()
                path.beta = b = betas[t]
                state.energy, state.score = (1 - b) * e0 + b * e1, (1 - b) * s0 + b * s1
                for _ in range(self.steps_per_temp):
                    state, acc = self.kernel.transition(path, state, None, eps)
                    a = float(acc.mean())
                    acc_hist.append(a)
                    if self.adapt:
                        eps *= math.exp(0.1 * (a - target))
                self.kernel.check(state.x, t, eps)
                parts = path.parts(state.x)
                bar.update()
        log_z0 = float(base.log_partition())
        log_z = log_z0 + _log_mean_exp(log_w)
        return AISResult(
            log_z=log_z,
            log_z_stderr=_bootstrap_stderr(log_w, self.bootstrap, generator),
            log_w_std=float(log_w.std()),
            ess=float(torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))),
            n_chains=self.n_chains,
            n_temps=self.n_temps,
            acceptance=sum(acc_hist) / len(acc_hist),
        )


def _log_mean_exp(v: Tensor) -> float:
    return float(torch.logsumexp(v, 0) - math.log(v.numel()))


def _bootstrap_stderr(log_w: Tensor, n: int, generator: torch.Generator | None) -> float:
    if n < 2:
        return float("nan")
    if generator is not None and generator.device.type != "cpu":
        generator = None  # the resampling indices are drawn on the CPU
    idx = torch.randint(0, log_w.numel(), (n, log_w.numel()), generator=generator).to(log_w.device)
    est = torch.logsumexp(log_w[idx], 1) - math.log(log_w.numel())
    return float(est.std())


def nll_from_log_z(energy: EnergyFn, data: Sample, log_z: float, sigma: float | None = None) -> dict[str, float]:
    """Mean negative log-likelihood ``E[E(x)] + log Z`` in nats and in bits per dimension."""
    with torch.no_grad():
        sig = MALA.sigma_tensor(sigma, data)
        e = energy(data, sig) if sig is not None else energy(data)
    dim = sum(leaf[0].numel() for leaf in tree.state_leaves(data))
    nll = float(e.double().mean()) + log_z
    return {"nll_nats": nll, "bits_per_dim": nll / (dim * math.log(2)), "dim": dim}
