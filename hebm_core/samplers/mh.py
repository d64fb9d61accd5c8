"""Metropolis-adjusted samplers: MALA and HMC, with step-size adaptation to a target acceptance rate.

Both are exact for the target (up to the optional projection) and expose a single
:meth:`MetropolisSampler.transition` so annealed importance sampling can reuse them as kernels.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.energy import EnergyFn
from hebm_core.options import check_int, check_number
from hebm_core.samplers.base import ChainState, Sampler, SamplerDivergenceError, SamplerStuckError
from hebm_core.samplers.langevin import MAX_STEPS
from hebm_core.samplers.moves import hmc_move, mala_move
from hebm_core.tree import Sample

__all__ = ["MetropolisSampler", "MALA", "HMC", "DualAveraging", "LOW_ACCEPTANCE"]

#: below this acceptance rate (and above the sampler's ``min_acceptance``) a run warns that its chains barely move
LOW_ACCEPTANCE = 0.05


class DualAveraging:
    """Nesterov dual averaging of log step size (Hoffman & Gelman 2014, Alg. 5)."""

    def __init__(self, step_size: float, target: float, gamma: float = 0.05, t0: float = 10.0, kappa: float = 0.75):
        self.mu = math.log(10 * step_size)
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.h_bar = 0.0
        self.log_eps_bar = math.log(step_size)
        self.t = 0

    def update(self, accept_prob: float) -> float:
        """Feed one mean acceptance probability; returns the next step size."""
        self.t += 1
        w = 1.0 / (self.t + self.t0)
        self.h_bar = (1 - w) * self.h_bar + w * (self.target - accept_prob)
        log_eps = self.mu - math.sqrt(self.t) / self.gamma * self.h_bar
        eta = self.t ** (-self.kappa)
        self.log_eps_bar = eta * log_eps + (1 - eta) * self.log_eps_bar
        return math.exp(log_eps)

    @property
    def final(self) -> float:
        """The averaged step size to keep after adaptation."""
        return math.exp(self.log_eps_bar)


class MetropolisSampler(Sampler):
    """Shared loop: ``adapt_steps`` warm-up steps tune the step size, then it is held fixed.

    The acceptance rate after warm-up goes into :attr:`last_stats` (and so into every sampling
    report); under ``min_acceptance`` the run is a :class:`SamplerStuckError` (its chains did not
    move, so its samples are its starts), under :data:`LOW_ACCEPTANCE` a warning.
    """

    target_accept = 0.65

    def __init__(
        self,
        step_size: float = 0.1,
        n_steps: int = 100,
        adapt_steps: int = 0,
        target_accept: float | None = None,
        min_acceptance: float = 0.01,
        **kw,
    ) -> None:
        super().__init__(**kw)
        owner = type(self).__name__
        self.step_size = check_number(owner, "step_size", step_size, 0, open_low=True)
        self.n_steps = check_int(owner, "n_steps", n_steps, 0, MAX_STEPS)
        self.adapt_steps = check_int(owner, "adapt_steps", adapt_steps, 0, MAX_STEPS)
        self.min_acceptance = check_number(owner, "min_acceptance", min_acceptance, 0, 1)
        if target_accept is not None:
            if not 0 < target_accept < 1:
                raise ValueError("target_accept must lie in (0, 1)")
            self.target_accept = float(target_accept)

    def init_state(self, energy: EnergyFn, x: Sample, sigma: Tensor | None) -> ChainState:
        x = tree.detach(x)
        e, s = self.evaluate(energy, x, sigma)
        if not bool(torch.isfinite(e).all() & tree.per_sample_finite(x).all()):
            raise SamplerDivergenceError(
                type(self).__name__, 0, self.step_size, int((~torch.isfinite(e)).sum()), e.numel()
            )
        return ChainState(x, e, s)

    def propose(self, energy: EnergyFn, state: ChainState, sigma: Tensor | None, step_size: float):
        """Return ``(proposal state, log acceptance ratio [B])``."""
        raise NotImplementedError

    def transition(
        self, energy: EnergyFn, state: ChainState, sigma: Tensor | None, step_size: float
    ) -> tuple[ChainState, Tensor]:
        """One Metropolis-Hastings step; returns the new state and the acceptance probabilities ``[B]``."""
        prop, log_alpha = self.propose(energy, state, sigma, step_size)
        log_alpha = torch.nan_to_num(log_alpha, nan=-math.inf)
        finite = torch.isfinite(prop.energy) & tree.per_sample_finite(prop.x)
        log_alpha = torch.where(finite, log_alpha, torch.full_like(log_alpha, -math.inf))
        accept = torch.rand_like(log_alpha).log() < log_alpha
        x = tree.where(accept, prop.x, state.x)
        e = torch.where(accept, prop.energy, state.energy)
        s = tree.where(accept, prop.score, state.score)
        new = ChainState(x, e, s, {"nonfinite": float((~finite).float().mean())})
        return new, log_alpha.clamp(max=0).exp()

    def run(self, energy: EnergyFn, x0: Sample, sigma: float | Tensor | None = None) -> Sample:
        sig = self.sigma_tensor(sigma, x0)
        state = self.init_state(energy, x0, sig)
        eps, adapter = self.begin_warmup(energy, state, sig)
        acc_sum, acc_n = 0.0, 0
        total = self.adapt_steps + self.n_steps
        rec = self.tracer(self.adapt_steps)
        with self.progress_bar(total, type(self).__name__) as bar:
            for t in range(1, total + 1):
                state, acc = self.transition(energy, state, sig, eps)
                self.check_transition(t, state, acc.numel(), eps, sig)
                if rec is not None:
                    rec.record(t, state.x, state.energy, acc)
                a = float(acc.mean())
                if adapter is not None and t <= self.adapt_steps:
                    eps, adapter = self.warmup_update(t, energy, state, sig, a, adapter)
                else:
                    acc_sum, acc_n = acc_sum + a, acc_n + 1
                    self.observe_sampling(state)
                bar.update()
        self.last_stats = {"acceptance": acc_sum / max(acc_n, 1), "step_size": eps, **self.run_stats(acc_n)}
        self.finish_trace(rec)
        self._judge_acceptance(acc_n, eps)
        return state.x

    # warm-up hooks: subclasses that adapt more than the step size override these --------------
    def begin_warmup(self, energy: EnergyFn, state: ChainState, sig: Tensor | None) -> tuple[float, Any]:
        """The first step size and the warm-up's adapter (``None``: no warm-up)."""
        return self.step_size, DualAveraging(self.step_size, self.target_accept) if self.adapt_steps else None

    def warmup_update(
        self, t: int, energy: EnergyFn, state: ChainState, sig: Tensor | None, accept: float, adapter: Any
    ) -> tuple[float, Any]:
        """The step size after warm-up step ``t`` with mean acceptance ``accept`` (the final
        dual-averaging value at the last warm-up step)."""
        eps = adapter.update(accept)
        return (adapter.final if t == self.adapt_steps else eps), adapter

    def observe_sampling(self, state: ChainState) -> None:
        """Called after every sampling (post-warm-up) step."""

    def run_stats(self, n_sampling: int) -> dict[str, float]:
        """Extra entries of ``last_stats`` at the end of a run."""
        return {}

    def check_transition(self, t: int, state: ChainState, n: int, eps: float, sig: Tensor | None) -> None:
        """Raise :class:`SamplerDivergenceError` when most proposals of step ``t`` were not finite.

        While adapting, non-finite proposals are rejections that shrink the step; after warm-up they
        mean divergence.
        """
        if t > self.adapt_steps and state.stats.get("nonfinite", 0.0) > 0.5:
            sigma = None if sig is None else float(sig[0])
            raise SamplerDivergenceError(type(self).__name__, t, eps, int(state.stats["nonfinite"] * n), n, sigma)

    def _judge_acceptance(self, steps: int, eps: float) -> None:
        rate = self.last_stats["acceptance"]
        if not steps or rate >= LOW_ACCEPTANCE:
            return
        said = f"{type(self).__name__} accepted {100 * rate:.2f}% of proposals with step size {eps:.4g}"
        if rate < self.min_acceptance:
            raise SamplerStuckError(
                f"{said}, under its floor of {100 * self.min_acceptance:g}% (min_acceptance): the chains did not move; "
                "lower step_size or set adapt_steps"
            )
        warnings.warn(
            f"{said}: the chains barely moved; lower the step size or set adapt_steps", RuntimeWarning, stacklevel=3
        )


class MALA(MetropolisSampler):
    """Metropolis-adjusted Langevin: a Langevin proposal ``x + ε s(x) + √(2ε) ξ`` with an MH correction."""

    name = "mala"
    target_accept = 0.574

    def propose(self, energy, state, sigma, step_size):
        return mala_move(self, energy, state, sigma, step_size)


class HMC(MetropolisSampler):
    """Hamiltonian Monte Carlo with ``n_leapfrog`` leapfrog steps and unit mass."""

    name = "hmc"

    def __init__(self, step_size: float = 0.1, n_steps: int = 100, n_leapfrog: int = 10, **kw) -> None:
        super().__init__(step_size=step_size, n_steps=n_steps, **kw)
        self.n_leapfrog = check_int("HMC", "n_leapfrog", n_leapfrog, 1, 10_000)

    def propose(self, energy, state, sigma, step_size):
        return hmc_move(self, energy, state, sigma, step_size, self.n_leapfrog)
