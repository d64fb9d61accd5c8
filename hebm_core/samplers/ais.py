"""Annealed importance sampling (Neal 2001) for log Z, forward and reverse, hence NLL and bits/dim.

Path: ``E_β = (1-β) E_0 + β E_1`` from a tractable base ``E_0`` (a Gaussian by default, with known
log Z_0) to the model ``E_1``, over a schedule ``0 = β_0 ≤ … ≤ β_{T-1} = 1``. Between temperatures
each chain accumulates ``log w += -(β_t - β_{t-1}) (E_1 - E_0)(x)`` and then moves with an MH kernel
(MALA or HMC, ``steps_per_temp`` transitions) that leaves ``p_{β_t}`` invariant.

- **Forward** (:meth:`AIS.estimate`): chains start from exact base samples and anneal 0 → 1;
  ``E[w] = Z_1/Z_0``, so ``log Z_0 + log mean w`` is unbiased for Z and, by Jensen, a *stochastic lower
  bound* on log Z: ``E[log Ẑ] ≤ log Z``. Its failure mode is silent: a mode the chains never reach
  contributes nothing, the weights look healthy and the bootstrap error is small.
- **Reverse** (:meth:`AIS.reverse`): chains start from samples of the *target* and anneal 1 → 0 with
  the same kernels; ``E[w] = Z_0/Z_1``, so ``log Z_0 - log mean w`` is a stochastic *upper* bound on
  log Z, but only when the starts are exact samples of the target. Reverse chains start in every
  mode in proportion to its mass, so a mode the forward run missed pushes the two estimates apart.
  :func:`hebm_core.samplers.bdmc.bdmc` runs both (bidirectional Monte Carlo, Grosse et al. 2015).

The spread of each run is reported: the standard deviation of log w, the effective sample size of
the weights and a bootstrap standard error over chains. Step sizes adapt *between* temperatures
from the previous temperature's mean acceptance (never from the current accept decisions), and the
reverse run replays the forward run's step sizes so both directions use the same kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.energy import EnergyFn, EnergyModel, energy_and_score
from hebm_core.models import GaussianEnergy
from hebm_core.samplers.base import ChainState
from hebm_core.samplers.mh import MALA, DualAveraging, MetropolisSampler
from hebm_core.samplers.schedules import (
    SCHEDULES,
    ScheduleSpec,
    geometric_schedule,
    linear_schedule,
    make_schedule,
    sigmoid_schedule,
)
from hebm_core.tree import Sample

__all__ = [
    "AIS",
    "AISResult",
    "SCHEDULES",
    "geometric_schedule",
    "linear_schedule",
    "make_schedule",
    "nll_from_log_z",
    "sigmoid_schedule",
]


@dataclass
class AISResult:
    """One AIS run. ``log_z`` is the run's estimate (forward: lower bound, reverse: upper bound, both
    in expectation); ``log_z_stderr`` a bootstrap over chains; ``ess`` the effective sample size of the
    final weights; ``acceptance`` the mean MH acceptance over all annealing transitions.

    The tensors (per-chain log weights, final samples, per-temperature step sizes and acceptance)
    stay out of :meth:`to_dict`, which is what reports serialise.
    """

    log_z: float
    log_z_stderr: float  # bootstrap over chains
    log_w_std: float
    ess: float  # effective sample size of the final weights
    n_chains: int
    n_temps: int
    acceptance: float
    direction: str = "forward"
    schedule: str = "sigmoid"
    steps_per_temp: int = 1
    step_size: float = math.nan  # the step size at the end of the run
    log_w: Tensor | None = field(default=None, repr=False)
    samples: Sample | None = field(default=None, repr=False)
    step_sizes: Tensor | None = field(default=None, repr=False)  # [n_temps], indexed along the forward schedule
    accept_rates: Tensor | None = field(default=None, repr=False)  # [n_temps], NaN where no transition ran

    _TENSORS = ("log_w", "samples", "step_sizes", "accept_rates")

    def to_dict(self) -> dict[str, float | int | str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self._TENSORS}


# the path --------------------------------------------------------------------------------------
class _PathEnergy(EnergyModel):
    """``(1-β) E_0 + β E_1`` with scores combined from each end (closed forms where they exist).

    Every evaluation keeps its two ends in :attr:`last`, so after an MH transition the ends at the
    accepted points are known without evaluating the model again.
    """

    def __init__(self, e0: EnergyFn, e1: EnergyFn, sigma: Tensor | None) -> None:
        super().__init__()
        self.e0, self.e1, self.sigma, self.beta = e0, e1, sigma, 0.0
        self.last: tuple[Sample, tuple[Tensor, Sample], tuple[Tensor, Sample]] | None = None

    def parts(self, x):
        a = energy_and_score(self.e0, x)
        b = energy_and_score(self.e1, x, self.sigma)
        self.last = (x, a, b)
        return a, b

    def combine(self, parts):
        (e0, s0), (e1, s1) = parts
        b = self.beta
        return (1 - b) * e0 + b * e1, tree.tree_map(lambda u, v: (1 - b) * u + b * v, s0, s1)

    def energy(self, x, sigma=None):
        return self.combine(self.parts(x))[0]

    def energy_and_score(self, x, sigma=None, create_graph=False):
        return self.combine(self.parts(x))


def _rows_equal(a: Sample, b: Sample) -> Tensor:
    ok = None
    for u, v in zip(tree.state_leaves(a), tree.state_leaves(b)):
        f = (u == v).flatten(1).all(1)
        ok = f if ok is None else ok & f
    return ok


def _select(mask: Tensor, a, b):
    (ea, sa), (eb, sb) = a, b
    return torch.where(mask, ea, eb), tree.where(mask, sa, sb)


class AIS:
    """Estimate log Z of an energy with ``n_chains`` independent AIS runs over ``n_temps`` temperatures.

    ``kernel`` is a :class:`MALA` or :class:`HMC` instance whose :meth:`~MetropolisSampler.transition`
    moves the chains; ``steps_per_temp`` transitions run at every intermediate temperature.
    ``schedule`` is ``"sigmoid"`` (the default), ``"linear"``, ``"geometric"``, explicit βs (which set
    ``n_temps``) or a function ``n -> βs``.

    With ``adapt`` the step size starts at the kernel's and follows ``target_accept`` (default: the
    one set on the kernel instance, else :attr:`TARGET_ACCEPT`, higher than a sampler's usual target
    because in AIS a rejected move is a chain left behind the moving distribution): after each
    temperature ``log ε += adapt_rate · (ā - target)`` with ``ā`` that temperature's mean acceptance,
    so the kernel used at a temperature depends only on earlier temperatures. ``warmup_steps``
    dual-averaging steps at the starting temperature (where the chains are exact samples, which
    MH steps keep exact) set the first step size.

    ``jitter`` scales the step size of every transition by a factor drawn uniformly from
    ``[1 - jitter, 1 + jitter]``, independently of the chains (so each transition still leaves
    ``p_β`` invariant). A fixed HMC trajectory rotates some directions of an anisotropic target by
    nearly a multiple of π, which leaves their squared coordinates, and so the energy, unmixed; the
    random length breaks that resonance.
    """

    #: acceptance the step size follows unless the kernel instance or ``target_accept`` says otherwise
    TARGET_ACCEPT = 0.8

    def __init__(
        self,
        n_temps: int = 1000,
        n_chains: int = 256,
        kernel: MetropolisSampler | None = None,
        steps_per_temp: int = 1,
        adapt: bool = True,
        bootstrap: int = 200,
        schedule: ScheduleSpec = "sigmoid",
        adapt_rate: float = 0.3,
        warmup_steps: int = 25,
        jitter: float = 0.5,
        target_accept: float | None = None,
    ) -> None:
        if not isinstance(schedule, str) and not callable(schedule):
            n_temps = len(torch.as_tensor(schedule).flatten())
        if n_temps < 2:
            raise ValueError("AIS needs at least two temperatures")
        if steps_per_temp < 1:
            raise ValueError("steps_per_temp must be >= 1")
        if n_chains < 1:
            raise ValueError("n_chains must be >= 1")
        if not adapt_rate >= 0 or warmup_steps < 0:
            raise ValueError("adapt_rate and warmup_steps must be >= 0")
        self.n_temps, self.n_chains, self.steps_per_temp = int(n_temps), int(n_chains), int(steps_per_temp)
        self.kernel = kernel or MALA(step_size=0.05)
        self.adapt, self.bootstrap = adapt, int(bootstrap)
        self.schedule, self.adapt_rate, self.warmup_steps = schedule, float(adapt_rate), int(warmup_steps)
        self.betas = make_schedule(schedule, self.n_temps)
        if not 0 <= jitter < 1:
            raise ValueError("jitter must lie in [0, 1)")
        self.jitter = float(jitter)
        if target_accept is None:  # a target set on the kernel instance wins over AIS's default
            target_accept = vars(self.kernel).get("target_accept", self.TARGET_ACCEPT)
        if not 0 < target_accept < 1:
            raise ValueError("target_accept must lie in (0, 1)")
        self.target_accept = float(target_accept)

    @property
    def schedule_name(self) -> str:
        return self.schedule if isinstance(self.schedule, str) else "custom"

    # public runs -----------------------------------------------------------------------------
    def estimate(
        self,
        energy: EnergyFn,
        base: GaussianEnergy,
        sigma: float | None = None,
        generator: torch.Generator | None = None,
    ) -> AISResult:
        """Forward AIS from ``base`` (which must have ``sample`` and ``log_partition``) to ``energy``.

        Returns a stochastic lower bound on log Z (``E[log Ẑ] ≤ log Z``) with its spread; the final
        samples, per-chain log weights and per-temperature step sizes ride along on the result.
        """
        x: Sample = base.sample(self.n_chains, generator=generator)
        betas = self.betas.tolist()
        log_w, x, eps, acc = self._anneal(energy, base, x, betas, sigma, None, self.warmup_steps, "AIS")
        return self._result(log_w, float(base.log_partition()), +1, x, eps, acc, generator, "forward")

    def reverse(
        self,
        energy: EnergyFn,
        base: GaussianEnergy,
        start: Sample,
        sigma: float | None = None,
        generator: torch.Generator | None = None,
        step_sizes: Tensor | Sequence[float] | None = None,
        burn_in: int = 0,
    ) -> AISResult:
        """Reverse AIS: anneal ``start`` (one chain per row, ideally exact samples of ``energy``) back to ``base``.

        ``log Z_0 - log mean w`` is a stochastic upper bound on log Z when ``start`` holds exact samples
        of the target, and no bound otherwise. ``step_sizes`` (a forward result's, indexed along the
        forward schedule) are replayed so the reverse run uses the forward run's kernels; without them
        the step size adapts as in :meth:`estimate`. ``burn_in`` MH steps at β = 1 first move
        approximate starts (e.g. data) towards the model; they cannot make them exact.
        """
        betas = self.betas.flip(0).tolist()
        eps = None
        if step_sizes is not None:
            eps = torch.as_tensor(step_sizes, dtype=torch.float64).flatten()
            if eps.numel() != self.n_temps:
                raise ValueError(f"step_sizes must have one entry per temperature ({self.n_temps}), got {eps.numel()}")
            eps = eps.flip(0).tolist()
        warm = burn_in if eps is not None else max(burn_in, self.warmup_steps)
        log_w, x, used, acc = self._anneal(energy, base, start, betas, sigma, eps, warm, "reverse AIS")
        res = self._result(log_w, float(base.log_partition()), -1, x, used.flip(0), acc.flip(0), generator, "reverse")
        return res

    # the loop --------------------------------------------------------------------------------
    def _anneal(self, energy, base, x, betas, sigma, step_sizes, warmup, desc):
        """Anneal the chains ``x`` along ``betas`` (either direction); returns the log weights
        (``E[w] = Z_{β_end}/Z_{β_start}``), the final points and the step size and mean acceptance at
        each temperature (in the order of ``betas``)."""
        kernel = self.kernel
        n = len(betas)
        sig = kernel.sigma_tensor(sigma, x)
        path = _PathEnergy(base, energy, sig)
        path.beta = betas[0]
        state = kernel.init_state(path, x, None)
        cur = path.last[1], path.last[2]
        log_w = torch.zeros(tree.batch_size(x), dtype=torch.float64, device=state.energy.device)
        eps_used = torch.full((n,), math.nan, dtype=torch.float64)
        acc_at = torch.full((n,), math.nan, dtype=torch.float64)
        adapt = step_sizes is None and self.adapt
        eps = kernel.step_size if step_sizes is None else step_sizes[0]
        target = self.target_accept

        def move(state, cur, eps):
            return self._move(path, state, cur, eps)

        if warmup:
            adapter = DualAveraging(eps, target) if adapt else None
            for _ in range(warmup):
                state, cur, a = move(state, cur, eps)
                if adapter is not None:
                    eps = adapter.update(a)
            if adapter is not None:
                eps = adapter.final
            kernel.check(state.x, 0, eps)
        eps_used[0] = eps
        acc_sum, acc_n = 0.0, 0
        with kernel.progress_bar(n - 1, desc) as bar:
            for t in range(1, n):
                (e0, _), (e1, _) = cur
                log_w -= (betas[t] - betas[t - 1]) * (e1.double() - e0.double())
                path.beta = betas[t]
                e, s = path.combine(cur)
                state = ChainState(state.x, e, kernel.space.tangent(s))
                if step_sizes is not None:
                    eps = step_sizes[t]
                eps_used[t] = eps
                if t < n - 1:  # no move at the last temperature: its weight is already final
                    a_t = 0.0
                    for _ in range(self.steps_per_temp):
                        state, cur, a = move(state, cur, eps)
                        a_t += a
                    a_t /= self.steps_per_temp
                    acc_at[t] = a_t
                    acc_sum, acc_n = acc_sum + a_t, acc_n + 1
                    kernel.check(state.x, t, eps)
                    if adapt:
                        eps *= math.exp(self.adapt_rate * (a_t - target))
                bar.update()
        return log_w, state.x, eps_used, acc_at

    def _move(self, path: _PathEnergy, state: ChainState, cur, eps: float):
        """One MH transition at the path's current β; the ends of the path at the new points come
        from the kernel's last evaluation when every chain's new point is its proposal or its old one."""
        kernel = self.kernel
        if self.jitter:  # drawn independently of the chains, so every step still leaves p_β invariant
            eps = eps * (1.0 + self.jitter * (2.0 * float(torch.rand(())) - 1.0))
        new, acc = kernel.transition(path, state, None, eps)
        x_prop, *prop = path.last
        from_prop, from_old = _rows_equal(new.x, x_prop), _rows_equal(new.x, state.x)
        if bool((from_prop | from_old).all()):
            cur = (_select(from_prop, prop[0], cur[0]), _select(from_prop, prop[1], cur[1]))
        else:  # a kernel whose last evaluation was not its proposal: evaluate the ends again
            cur = path.parts(new.x)
        return new, cur, float(acc.mean())

    def _result(self, log_w, log_z0, sign, x, eps, acc, generator, direction) -> AISResult:
        finite = acc[torch.isfinite(acc)]
        return AISResult(
            log_z=log_z0 + sign * _log_mean_exp(log_w),
            log_z_stderr=_bootstrap_stderr(log_w, self.bootstrap, generator),
            log_w_std=float(log_w.std()) if log_w.numel() > 1 else math.nan,
            ess=ess(log_w),
            n_chains=int(log_w.numel()),
            n_temps=self.n_temps,
            acceptance=float(finite.mean()) if finite.numel() else math.nan,
            direction=direction,
            schedule=self.schedule_name,
            steps_per_temp=self.steps_per_temp,
            step_size=float(eps[-1] if direction == "forward" else eps[0]),
            log_w=log_w,
            samples=x,
            step_sizes=eps,
            accept_rates=acc,
        )


def ess(log_w: Tensor) -> float:
    """Effective sample size ``(Σw)² / Σw²`` of importance weights given as logs."""
    return float(torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0)))


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
