"""Parallel tempering (replica exchange) for multimodal targets.

Every chain carries ``K`` replicas at inverse temperatures ``1 = β_0 > β_1 > … > β_{K-1}``, each
moving under ``β_k·E`` with a MALA or HMC step. Hot replicas cross energy barriers; swaps between
neighbouring temperatures, accepted with the exact MH rule ``min(1, exp((β_k − β_{k+1})(E_k − E_{k+1})))``,
carry what they found down to ``β = 1``. The ``K·B`` replicas are one batch: one model evaluation per
step (per leapfrog step for HMC) moves all of them. Energies and scores are cached untempered, so a
swap costs no evaluation, and it exchanges the two rows' temperatures rather than their states, so
it copies nothing either; each row keeps its chain, and the ``β = 1`` rows are gathered at the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.energy import EnergyFn
from hebm_core.options import check_int, check_number
from hebm_core.samplers.base import ChainState
from hebm_core.samplers.mh import DualAveraging, MetropolisSampler
from hebm_core.samplers.moves import hmc_move, mala_move
from hebm_core.tree import Sample

__all__ = ["ParallelTempering", "geometric_betas", "MAX_REPLICAS"]

#: the most replicas per chain (each multiplies the batch the model sees)
MAX_REPLICAS = 1024


def geometric_betas(n: int, beta_min: float) -> Tensor:
    """``n`` inverse temperatures from 1 down to ``beta_min``, equally spaced in log (1 alone for ``n = 1``)."""
    check_int("ParallelTempering", "n_replicas", n, 1, MAX_REPLICAS)
    check_number("ParallelTempering", "beta_min", beta_min, 0, 1, open_low=True)
    if n == 1:
        return torch.ones(1, dtype=torch.float64)
    return torch.exp(torch.linspace(0.0, math.log(beta_min), n, dtype=torch.float64))


def _ladder(betas: Sequence[float] | Tensor | None, n: int, beta_min: float) -> list[float]:
    if betas is None:
        return geometric_betas(n, beta_min).tolist()
    b = torch.as_tensor(betas, dtype=torch.float64).flatten()
    if not 1 <= b.numel() <= MAX_REPLICAS or not bool(torch.isfinite(b).all()):
        raise ValueError(f"ParallelTempering: betas must be 1 to {MAX_REPLICAS} finite numbers")
    if b[0] != 1 or bool((b <= 0).any()) or bool((b[1:] >= b[:-1]).any()):
        raise ValueError("ParallelTempering: betas must start at 1 and decrease strictly, all > 0")
    return b.tolist()


class _Ladder:
    """Which row holds which temperature: ``row_of[k, b]`` is the row of chain ``b``'s replica at
    ``β_k``. A swap exchanges two rows' temperatures, not their states, so no point, energy or score
    is copied; values per temperature (β, step sizes) are spread to the rows by :meth:`per_row`."""

    def __init__(self, betas: list[float], n: int, dtype: torch.dtype, device: torch.device) -> None:
        self.k, self.n = len(betas), n
        self.betas = torch.tensor(betas, dtype=dtype, device=device)
        self.row_of = torch.arange(self.k * n, device=device).view(self.k, n)
        self.level = torch.arange(self.k, device=device).repeat_interleave(n)
        self._levels = self.level.clone()

    def per_row(self, values: list[float] | Tensor) -> Tensor:
        v = torch.as_tensor(values, dtype=self.betas.dtype, device=self.betas.device)
        return v[self.level]

    def swap(self, energy: Tensor, parity: int) -> tuple[Tensor, Tensor]:
        """One round over the pairs ``(k, k+1)``, ``k ≡ parity (mod 2)``, each accepted with probability
        ``min(1, exp((β_k − β_{k+1})(E_k − E_{k+1})))``; returns the pairs and the probabilities ``[pairs, B]``."""
        lo = torch.arange(parity, self.k - 1, 2, device=energy.device)
        if lo.numel() == 0:
            return lo, energy.new_zeros(0, self.n)
        a, b = self.row_of[lo], self.row_of[lo + 1]
        log_r = (self.betas[lo] - self.betas[lo + 1])[:, None] * (energy[a] - energy[b])
        log_r = torch.nan_to_num(log_r, nan=-math.inf)
        accept = torch.rand_like(log_r).log() < log_r
        self.row_of[lo], self.row_of[lo + 1] = torch.where(accept, b, a), torch.where(accept, a, b)
        self.level = torch.empty_like(self.level).index_copy_(0, self.row_of.flatten(), self._levels)
        return lo, log_r.clamp(max=0).exp()


class ParallelTempering(MetropolisSampler):
    """Replica exchange: ``n_steps`` local moves (after ``adapt_steps`` warm-up) per replica, a swap
    round every ``swap_every`` steps; returns the ``β = 1`` replicas.

    The ladder is ``betas`` (starting at 1, decreasing) or ``n_replicas`` geometric levels down to
    ``beta_min``. ``kernel`` is ``"mala"`` or ``"hmc"`` (with ``n_leapfrog``). Replica ``k`` starts
    with step ``step_size / β_k`` (MALA) or ``step_size / √β_k`` (HMC), the scaling of a Gaussian's
    width with temperature, and during warm-up each replica's step is tuned by its own dual averaging.
    Swap rounds alternate between the even and the odd neighbour pairs (the non-reversible DEO
    scheme, which moves states along the ladder faster than random pairs).

    ``last_stats``: ``acceptance`` (β = 1 replicas, after warm-up), ``acceptance_per_replica``,
    ``swap_acceptance`` (mean swap probability per neighbour pair, after warm-up), ``step_sizes``,
    ``betas`` and ``grad_evals_per_chain`` (model evaluations over all replicas of one chain).
    """

    name = "parallel_tempering"

    def __init__(
        self,
        step_size: float = 0.1,
        n_steps: int = 100,
        n_replicas: int = 8,
        beta_min: float = 0.05,
        betas: Sequence[float] | None = None,
        kernel: str = "mala",
        n_leapfrog: int = 5,
        swap_every: int = 1,
        **kw,
    ) -> None:
        super().__init__(step_size=step_size, n_steps=n_steps, **kw)
        if kernel not in ("mala", "hmc"):
            raise ValueError(f"ParallelTempering: kernel must be 'mala' or 'hmc', got {kernel!r}")
        self.kernel = kernel
        self.betas = _ladder(betas, n_replicas, beta_min)
        self.n_leapfrog = check_int("ParallelTempering", "n_leapfrog", n_leapfrog, 1, 10_000)
        self.swap_every = check_int("ParallelTempering", "swap_every", swap_every, 1, 10_000_000)
        if "target_accept" not in kw or kw["target_accept"] is None:
            self.target_accept = 0.574 if kernel == "mala" else 0.65
        self._beta_rows: Tensor | None = None

    @property
    def n_replicas(self) -> int:
        return len(self.betas)

    def propose(self, energy, state, sigma, step_size):
        """A local move of every replica under its own ``β_k·E``; ``step_size`` is a per-row ``[K·B]`` tensor."""
        if self.kernel == "mala":
            return mala_move(self, energy, state, sigma, step_size, beta=self._beta_rows)
        return hmc_move(self, energy, state, sigma, step_size, self.n_leapfrog, beta=self._beta_rows)

    def _start(self, energy: EnergyFn, x0: Sample, sig: Tensor | None) -> tuple[ChainState, Tensor | None, int]:
        n = tree.batch_size(x0)
        k = self.n_replicas
        xs = tree.cat([tree.detach(x0)] * k)
        sig_rows = None if sig is None else sig.repeat(k)  # a row stays with its chain: swaps move temperatures
        return self.init_state(energy, xs, sig_rows), sig_rows, n

    def run(self, energy: EnergyFn, x0: Sample, sigma: float | Tensor | None = None) -> Sample:
        sig = self.sigma_tensor(sigma, x0)
        state, sig_rows, n = self._start(energy, x0, sig)
        k, dev, dt = self.n_replicas, state.energy.device, state.energy.dtype
        ladder = _Ladder(self.betas, n, dt, dev)
        power = 1.0 if self.kernel == "mala" else 0.5
        eps = [self.step_size / b**power for b in self.betas]
        adapters = [DualAveraging(e, self.target_accept) for e in eps] if self.adapt_steps else None
        acc_sum, acc_n = torch.zeros(k, device=dev), 0
        swap_sum, swap_cnt = torch.zeros(max(k - 1, 0), device=dev), torch.zeros(max(k - 1, 0), device=dev)
        rec = self.tracer(self.adapt_steps)
        total, rounds = self.adapt_steps + self.n_steps, 0
        with self.progress_bar(total, "parallel tempering") as bar:
            for t in range(1, total + 1):
                self._beta_rows = ladder.per_row(ladder.betas)
                state, acc = self.transition(energy, state, sig_rows, ladder.per_row(eps))
                self.check_transition(t, state, acc.numel(), eps[0], sig)
                per = acc[ladder.row_of].mean(1)  # per temperature
                if adapters is not None and t <= self.adapt_steps:
                    eps = [a.update(v) for a, v in zip(adapters, per.tolist())]
                    if t == self.adapt_steps:
                        eps = [a.final for a in adapters]
                else:
                    acc_sum, acc_n = acc_sum + per, acc_n + 1
                if t % self.swap_every == 0 and k > 1:
                    pairs, p = ladder.swap(state.energy, rounds % 2)
                    if t > self.adapt_steps and p.numel():
                        swap_sum[pairs] += p.mean(1)
                        swap_cnt[pairs] += 1
                    rounds += 1
                if rec is not None:
                    cold = ladder.row_of[0]
                    rec.record(t, tree.index(state.x, cold), state.energy[cold], acc[cold])
                bar.update()
        self._finish(acc_sum / max(acc_n, 1), swap_sum / swap_cnt.clamp(min=1), eps, total)
        self.finish_trace(rec)
        self._judge_acceptance(acc_n, eps[0])
        return tree.index(state.x, ladder.row_of[0])

    def _finish(self, acc: Tensor, swap: Tensor, eps: list[float], total: int) -> None:
        evals = 1 + total * (self.n_leapfrog if self.kernel == "hmc" else 1)
        per = acc.tolist()
        self.last_stats = {
            "acceptance": per[0],
            "step_size": eps[0],
            "acceptance_per_replica": per,
            "swap_acceptance": swap.tolist(),
            "step_sizes": list(eps),
            "betas": list(self.betas),
            "grad_evals_per_chain": float(evals * self.n_replicas),
        }
