"""Sampler base: the loop, progress bar, projection and divergence detection shared by all samplers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from hebm_core import tree
from hebm_core.energy import EnergyFn, energy_and_score
from hebm_core.options import check_int
from hebm_core.space import EUCLIDEAN, Space
from hebm_core.tree import Sample

__all__ = [
    "Sampler",
    "SamplerDivergenceError",
    "SamplerStuckError",
    "ChainState",
    "Trace",
    "TraceRecorder",
    "PROGRESS_MIN_STEPS",
]

#: runs shorter than this many steps get no progress bar unless asked for
PROGRESS_MIN_STEPS = 500


class SamplerDivergenceError(RuntimeError):
    """A chain left the finite numbers: the message says where and what step size to try."""

    def __init__(self, sampler: str, step: int, step_size: float, n_bad: int, n_total: int, sigma: float | None = None):
        self.step, self.step_size, self.sigma, self.n_bad = step, step_size, sigma, n_bad
        self.suggested_step_size = step_size / 4
        where = f"step {step}" + (f" (σ = {sigma:.4g})" if sigma is not None else "")
        super().__init__(
            f"{sampler} diverged at {where}: {n_bad}/{n_total} chains non-finite with step size {step_size:.4g}; "
            f"try a step size of {self.suggested_step_size:.4g} or below"
        )


class SamplerStuckError(RuntimeError):
    """A Metropolis sampler accepted fewer proposals than its floor: its chains did not move; one line."""


@dataclass
class ChainState:
    """Current points with their energies and scores, so no transition evaluates the model twice."""

    x: Sample
    energy: Tensor
    score: Sample
    stats: dict[str, float] = field(default_factory=dict)


@dataclass
class Trace:
    """A thinned record of a run, one row per recorded step, one column per chain.

    ``energy`` is ``[draws, chains]``; ``stats`` ``[draws, chains, k]`` when the sampler was given a
    statistic; ``accept`` ``[draws, chains]`` the acceptance probabilities of Metropolis samplers at
    the recorded steps. ``steps`` are the step numbers (1-based) and the first ``warmup`` steps of the
    run were adaptation, so diagnostics use :meth:`sampling` only. Everything is on the CPU.
    """

    steps: list[int]
    energy: Tensor
    stats: Tensor | None = None
    accept: Tensor | None = None
    warmup: int = 0

    def sampling(self) -> Trace:
        """The draws recorded after warm-up."""
        keep = [i for i, t in enumerate(self.steps) if t > self.warmup]
        idx = torch.tensor(keep, dtype=torch.long)
        pick = (lambda v: None if v is None else v[idx]) if len(keep) < len(self.steps) else (lambda v: v)
        return Trace([self.steps[i] for i in keep], pick(self.energy), pick(self.stats), pick(self.accept), 0)


class TraceRecorder:
    """Keeps every ``every``-th step's per-chain energies (and statistics, acceptance) on the device
    and hands them over as one :class:`Trace` at the end: no host sync while the chains run."""

    def __init__(self, every: int, stat: Callable[[Sample], Tensor] | None, warmup: int) -> None:
        self.every, self.stat, self.warmup = every, stat, warmup
        self.steps: list[int] = []
        self.energy: list[Tensor] = []
        self.stats: list[Tensor] = []
        self.accept: list[Tensor] = []

    def record(self, t: int, x: Sample, energy: Tensor, accept: Tensor | None = None) -> None:
        """Record step ``t`` if it is one of the kept ones."""
        if t % self.every:
            return
        self.steps.append(t)
        self.energy.append(energy.detach().clone())
        if accept is not None:
            self.accept.append(accept.detach().clone())
        if self.stat is not None:
            with torch.no_grad():
                v = self.stat(x).detach()
            self.stats.append(v.reshape(v.shape[0], -1).clone())

    def finish(self) -> Trace:
        def stack(vs: list[Tensor], *shape: int) -> Tensor:
            return torch.stack(vs).cpu() if vs else torch.empty(*shape)

        n = len(self.steps)
        return Trace(
            list(self.steps),
            stack(self.energy, 0, 0),
            stack(self.stats, n, 0, 0) if self.stat is not None else None,
            stack(self.accept, n, 0) if self.accept else None,
            self.warmup,
        )


class Sampler(ABC):
    """A batched sampler: every chain moves at once, one row of the batch per chain.

    ``space`` draws the noise and projects (clamps) proposals; ``progress`` is ``None`` for a bar
    on long runs only; ``check_every`` is how often (in steps) chains are checked for NaN/Inf.

    ``trace_every`` > 0 makes samplers that support it (the Metropolis ones: MALA, HMC,
    preconditioned MALA, NUTS, parallel tempering; and kinetic Langevin) keep every
    ``trace_every``-th step's per-chain energies (and ``trace_stat(x)``, a ``[B]`` or ``[B, k]``
    statistic, when given) in :attr:`last_trace`, a :class:`Trace` for
    :func:`hebm_core.diagnostics.diagnose`; 0 (the default) records nothing and costs nothing. The
    energies are the ones the sampler holds anyway, so a trace costs no model evaluation.
    """

    name = "sampler"

    def __init__(
        self,
        space: Space | None = None,
        progress: bool | None = None,
        check_every: int = 1,
        trace_every: int = 0,
        trace_stat: Callable[[Sample], Tensor] | None = None,
    ) -> None:
        if check_every < 1:
            raise ValueError("check_every must be >= 1")
        check_int(type(self).__name__, "trace_every", trace_every, 0, 10_000_000)
        if trace_stat is not None and not callable(trace_stat):
            raise ValueError(f"{type(self).__name__}: trace_stat must be a callable x -> [B] or [B, k]")
        self.space = space or EUCLIDEAN
        self.progress = progress
        self.check_every = check_every
        self.trace_every, self.trace_stat = trace_every, trace_stat
        self.last_stats: dict[str, float] = {}
        self.last_trace: Trace | None = None

    @abstractmethod
    def run(self, energy: EnergyFn, x0: Sample, sigma: float | Tensor | None = None) -> Sample:
        """Run the chains from ``x0``; returns the final points (detached)."""

    def __call__(self, energy: EnergyFn, x0: Sample, sigma: float | Tensor | None = None) -> Sample:
        return self.run(energy, x0, sigma)

    # helpers for subclasses -------------------------------------------------
    def tracer(self, warmup: int = 0) -> TraceRecorder | None:
        """A recorder for this run when tracing is on, else ``None`` (a run calls ``record`` only if it got one)."""
        self.last_trace = None
        return TraceRecorder(self.trace_every, self.trace_stat, warmup) if self.trace_every else None

    def finish_trace(self, rec: TraceRecorder | None) -> None:
        if rec is not None:
            self.last_trace = rec.finish()

    @staticmethod
    def sigma_tensor(sigma: float | Tensor | None, x: Sample) -> Tensor | None:
        """A noise level as a contiguous ``[B]`` tensor on the sample's device (``None`` stays ``None``).

        Contiguous on purpose: a stride-0 ``expand`` makes every op that reads σ in the network
        slower (measured ~10% of a small MLP's step).
        """
        if sigma is None:
            return None
        leaf = tree.state_leaves(x)[0]
        if isinstance(sigma, Tensor) and sigma.dim() == 1 and sigma.shape[0] == leaf.shape[0]:
            return sigma.to(device=leaf.device, dtype=leaf.dtype)
        return torch.full((leaf.shape[0],), float(sigma), dtype=leaf.dtype, device=leaf.device)

    def evaluate(self, energy: EnergyFn, x: Sample, sigma: Tensor | None) -> tuple[Tensor, Sample]:
        """Energy and score at ``x``, the score restricted to the space's allowed directions."""
        e, s = energy_and_score(energy, x, sigma, create_graph=False)
        return e, self.space.tangent(s)

    @contextmanager
    def progress_bar(self, total: int, desc: str) -> Iterator[tqdm]:
        disable = (not self.progress) if self.progress is not None else (True if total < PROGRESS_MIN_STEPS else None)
        bar = tqdm(total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True)
        try:
            yield bar
        finally:
            bar.close()

    def check(
        self, x: Sample, step: int, step_size: float, sigma: float | None = None, energy: Tensor | None = None
    ) -> None:
        """Raise :class:`SamplerDivergenceError` if any chain holds a NaN/Inf (every ``check_every`` steps)."""
        if step % self.check_every:
            return
        if tree.all_finite(x) and (energy is None or bool(torch.isfinite(energy).all())):
            return
        ok = tree.per_sample_finite(x)
        if energy is not None:
            ok = ok & torch.isfinite(energy)
        if not bool(ok.all()):
            raise SamplerDivergenceError(type(self).__name__, step, step_size, int((~ok).sum()), ok.numel(), sigma)
