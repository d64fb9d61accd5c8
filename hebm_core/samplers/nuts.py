"""The No-U-Turn Sampler (Hoffman & Gelman 2014), multinomial variant with the generalised U-turn
criterion and the extra checks across merged subtrees (Betancourt 2017; as in Stan).

Vectorised over chains: every chain doubles its own trajectory in its own random direction, and a
chain whose trajectory turned back, or diverged, stops while the others go on. Each doubling runs on
the chains still active only (a gather before and a scatter after), so a finished chain costs no
evaluations at later depths; inside one doubling a chain that stops early is frozen (its rows are
still evaluated, masked, until the doubling ends). The subtree of ``2^j`` leapfrog steps is built
iteratively, with the U-turn checks of every aligned sub-subtree done as soon as it is complete, in
the order of Stan's recursion, and a streaming multinomial choice of its point; the new subtree is
accepted into the trajectory with Stan's biased progressive sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.energy import EnergyFn
from hebm_core.options import check_int, check_number
from hebm_core.samplers.base import ChainState, SamplerDivergenceError
from hebm_core.samplers.moves import hmc_move, mul_minv, rows
from hebm_core.samplers.precond import MetricAdaptiveSampler
from hebm_core.tree import Sample

__all__ = ["NUTS", "MAX_DEPTH"]

#: the deepest tree allowed (2^15 − 1 leapfrog steps per draw)
MAX_DEPTH = 15


@dataclass
class _Point:
    """A phase-space point: position, momentum and the cached score at the position."""

    x: Sample
    p: Sample
    s: Sample


def _put(full: Sample, idx: Tensor, part: Sample) -> Sample:
    """``full`` with rows ``idx`` replaced by ``part`` (a plain tensor of any dtype, or a sample's state leaves)."""
    if isinstance(full, Tensor):
        return full.index_copy(0, idx, part)
    return tree.tree_map(lambda f, u: f.index_copy(0, idx, u), full, part)


class _Rows:
    """Gather the active chains' rows from full-batch values and scatter results back; with ``idx``
    ``None`` (every chain active, the usual case at the first depths) both are free."""

    def __init__(self, idx: Tensor | None) -> None:
        self.idx = idx

    def __call__(self, v: Sample) -> Sample:
        return v if self.idx is None else tree.index(v, self.idx)

    def put(self, full: Sample, part: Sample) -> Sample:
        return part if self.idx is None else _put(full, self.idx, part)

    def point(self, z: _Point) -> _Point:
        return _Point(self(z.x), self(z.p), self(z.s))

    def put_point(self, full: _Point, part: _Point) -> _Point:
        return _Point(self.put(full.x, part.x), self.put(full.p, part.p), self.put(full.s, part.s))


def _sel(mask: Tensor, a: _Point, b: _Point) -> _Point:
    return _Point(tree.where(mask, a.x, b.x), tree.where(mask, a.p, b.p), tree.where(mask, a.s, b.s))


def _add(a: Sample, b: Sample) -> Sample:
    return tree.tree_map(torch.add, a, b)


@dataclass
class _Traj:
    """Per-chain trajectory of one draw: both ends, the chosen point, weights and counters (``[B]``)."""

    minus: _Point
    plus: _Point
    x: Sample
    e: Tensor
    s: Sample
    log_w: Tensor
    rho: Sample
    active: Tensor
    depth: Tensor
    acc: Tensor
    n_lf: Tensor
    div: Tensor
    evals: int = 0


@dataclass
class _Sub:
    """A finished subtree on the active rows: ``valid`` if no U-turn inside and no divergence."""

    valid: Tensor
    end: _Point
    x: Sample
    e: Tensor
    s: Sample
    log_w: Tensor
    rho: Sample
    p_first: Sample
    p_last: Sample
    acc: Tensor
    n_lf: Tensor
    div: Tensor


class NUTS(MetricAdaptiveSampler):
    """NUTS with a diagonal mass matrix: ``n_steps`` draws after ``adapt_steps`` warm-up draws.

    Warm-up follows Stan: dual averaging of the step size towards ``target_accept`` (0.8) on the
    acceptance statistic and, with ``adapt_metric``, the inverse mass from the chains' variance in
    Stan's windows; both are then fixed. A trajectory has at most ``2^max_depth − 1`` leapfrog steps;
    an energy error over ``max_delta_h`` is a divergence (the doubling is discarded and the tree stops).

    ``last_stats`` (means over the sampling draws): ``acceptance`` (the acceptance statistic),
    ``tree_depth``, ``n_leapfrog`` (per chain and draw, as Stan counts them), ``grad_evals_per_draw``
    (model evaluations per chain and draw including the masked rows of stopped chains: the real
    cost), ``divergent`` (fraction of draws), ``step_size`` and the inverse mass range.
    """

    name = "nuts"
    target_accept = 0.8

    def __init__(
        self, step_size: float = 0.1, n_steps: int = 100, max_depth: int = 10, max_delta_h: float = 1000.0, **kw
    ) -> None:
        super().__init__(step_size=step_size, n_steps=n_steps, **kw)
        self.max_depth = check_int("NUTS", "max_depth", max_depth, 1, MAX_DEPTH)
        self.max_delta_h = check_number("NUTS", "max_delta_h", max_delta_h, 0, 1e12, open_low=True)

    def probe(self, energy, state, sigma, step_size):
        _, dh = hmc_move(self, energy, state, sigma, step_size, 1, minv=self.inv_mass)
        return float(torch.nan_to_num(dh, nan=-math.inf).clamp(max=0).exp().mean())

    def _crit(self, p_minus: Sample, p_plus: Sample, rho: Sample) -> Tensor:
        """The generalised no-U-turn criterion: both ends' velocities ``M⁻¹p`` point along ``rho``."""
        a = tree.batch_dot(mul_minv(p_minus, self.inv_mass), rho)
        b = tree.batch_dot(mul_minv(p_plus, self.inv_mass), rho)
        return torch.minimum(a, b) > 0

    def _sq(self, p: Sample) -> Tensor:
        """``pᵀ M⁻¹ p`` (twice the kinetic energy)."""
        return tree.batch_dot(p, mul_minv(p, self.inv_mass))

    def check_transition(self, t, state, n, eps, sig):
        """A draw diverges when its energy error passes ``max_delta_h`` (non-finite energies included);
        after warm-up, divergence in over half of the chains' draws is a :class:`SamplerDivergenceError`."""
        if t > self.adapt_steps and state.stats["divergent"] > 0.5:
            sigma = None if sig is None else float(sig[0])
            raise SamplerDivergenceError("NUTS", t, eps, int(state.stats["divergent"] * n), n, sigma)

    def _leapfrog(self, energy: EnergyFn, sigma: Tensor | None, z: _Point, eps: float) -> tuple[_Point, Tensor]:
        """One leapfrog step of size ``eps`` forwards in time; backward chains carry a negated momentum."""
        ph = tree.tree_map(lambda q, g: torch.add(q, g, alpha=0.5 * eps), z.p, z.s)
        if self.inv_mass is None:
            x = tree.tree_map(lambda a, q: torch.add(a, q, alpha=eps), z.x, ph)
        else:
            x = tree.tree_map(lambda a, q, m: torch.addcmul(a, q, m, value=eps), z.x, ph, self.inv_mass)
        x = self.space.project(x)
        e, s = self.evaluate(energy, x, sigma)
        return _Point(x, tree.tree_map(lambda q, g: torch.add(q, g, alpha=0.5 * eps), ph, s), s), e

    def transition(
        self, energy: EnergyFn, state: ChainState, sigma: Tensor | None, step_size: float
    ) -> tuple[ChainState, Tensor]:
        """One NUTS draw for every chain; returns the new state and the acceptance statistic ``[B]``."""
        noise = self.space.noise_like(state.x)
        minv = self.inv_mass
        p0 = noise if minv is None else tree.tree_map(lambda n, m: n / m.sqrt(), noise, minv)
        h0 = state.energy + 0.5 * self._sq(p0)
        z0 = _Point(state.x, p0, state.score)  # both ends start here
        b, dev = state.energy.shape[0], state.energy.device
        zeros, false = torch.zeros(b, device=dev, dtype=state.energy.dtype), torch.zeros(b, device=dev, dtype=bool)
        tr = _Traj(
            z0,
            _Point(z0.x, z0.p, z0.s),
            state.x,
            state.energy,
            state.score,
            zeros,
            p0,
            ~false,
            zeros,
            zeros,
            zeros,
            false,
        )
        for j in range(self.max_depth):
            idx = tr.active.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            self._extend(energy, sigma, tr, None if idx.numel() == b else idx, j, step_size, h0)
        stats = {
            "divergent": float(tr.div.float().mean()),
            "tree_depth": float(tr.depth.mean()),
            "n_leapfrog": float(tr.n_lf.mean()),
            "grad_evals_per_draw": tr.evals / b,
        }
        return ChainState(tr.x, tr.e, tr.s, stats), tr.acc / tr.n_lf.clamp(min=1)

    def _extend(self, energy, sigma, tr: _Traj, idx: Tensor | None, j: int, eps: float, h0: Tensor) -> None:
        """Double the trajectory of the chains ``idx`` (``None``: all) by ``2^j`` steps in a random direction.

        A backward subtree is integrated forwards from the minus end with its momenta negated; the
        criterion is unchanged by negating every momentum, so only its results are turned back.
        """
        get = _Rows(idx)
        fwd = torch.rand(h0.shape[0] if idx is None else idx.numel(), device=h0.device) < 0.5
        sign = torch.where(fwd, 1.0, -1.0).to(tr.e.dtype)
        minus, plus = get.point(tr.minus), get.point(tr.plus)
        edge = _sel(fwd, plus, minus)
        flip = lambda v: tree.tree_map(lambda q: q * rows(sign, q), v)  # noqa: E731
        sig = None if sigma is None else get(sigma)  # a noise level per chain: the active chains' ones
        sub = self._subtree(energy, sig, _Point(edge.x, flip(edge.p), edge.s), eps, j, get(h0), tr)
        sub.rho, sub.p_first, sub.p_last = flip(sub.rho), flip(sub.p_first), flip(sub.p_last)
        sub.end.p = flip(sub.end.p)
        valid = sub.valid
        old_w = get(tr.log_w)
        take = valid & (torch.rand_like(old_w).log() < sub.log_w - old_w)  # biased progressive sampling
        tr.x = get.put(tr.x, tree.where(take, sub.x, get(tr.x)))
        tr.s = get.put(tr.s, tree.where(take, sub.s, get(tr.s)))
        tr.e = get.put(tr.e, torch.where(take, sub.e, get(tr.e)))
        tr.log_w = get.put(tr.log_w, torch.where(valid, torch.logaddexp(old_w, sub.log_w), old_w))
        rho_old = get(tr.rho)
        rho = _add(rho_old, sub.rho)
        # the merged trajectory in minus-to-plus order: L the part at the minus end, R at the plus end
        p_lm, p_lp = tree.where(fwd, minus.p, sub.p_last), tree.where(fwd, plus.p, sub.p_first)
        p_rm, p_rp = tree.where(fwd, sub.p_first, minus.p), tree.where(fwd, sub.p_last, plus.p)
        rho_l, rho_r = tree.where(fwd, rho_old, sub.rho), tree.where(fwd, sub.rho, rho_old)
        ok = self._crit(p_lm, p_rp, rho)
        ok &= self._crit(p_lm, p_rm, _add(rho_l, p_rm)) & self._crit(p_lp, p_rp, _add(rho_r, p_lp))
        tr.plus, tr.minus = (
            get.put_point(tr.plus, _sel(fwd, sub.end, plus)),
            get.put_point(tr.minus, _sel(fwd, minus, sub.end)),
        )
        tr.rho = get.put(tr.rho, rho)
        tr.depth = get.put(tr.depth, get(tr.depth) + valid.to(tr.depth.dtype))
        tr.acc, tr.n_lf = get.put(tr.acc, get(tr.acc) + sub.acc), get.put(tr.n_lf, get(tr.n_lf) + sub.n_lf)
        tr.div = get.put(tr.div, get(tr.div) | sub.div)
        tr.active = get.put(tr.active, valid & ok)

    def _subtree(self, energy, sigma, z: _Point, eps: float, j: int, h0: Tensor, tr: _Traj) -> _Sub:
        """``2^j`` leapfrog steps from ``z``, each leaf weighed, sampled and its subtrees checked.

        Rows that stopped (U-turn inside, divergence) are frozen by masks; while every row is alive
        (the common case between merge points) the masks are skipped. The acceptance statistic and
        the leapfrog count are summed once at the end from the leaves' log weights.
        """
        b = h0.shape[0]
        alive = torch.ones(b, dtype=torch.bool, device=h0.device)
        full = True
        weights: list[Tensor] = []
        masks: list[Tensor | None] = []
        stack: list[tuple[Sample, Sample, Sample] | None] = [None] * j
        for n in range(2**j):
            if n:
                k = int(alive.sum())
                if k == 0:
                    break
                full = k == b
            new, e = self._leapfrog(energy, sigma, z, eps)
            tr.evals += b
            w = torch.sub(h0 - e, self._sq(new.p), alpha=0.5)  # log weight H₀ − H, NaN and +inf as −inf
            w = torch.nan_to_num(w, nan=-math.inf, posinf=-math.inf)
            weights.append(w)
            masks.append(None if full else alive)
            z = new if full else _sel(alive, new, z)
            if n == 0:
                x_c, e_c, s_c, log_w, rho, p_first, p_last = new.x, e, new.s, w, new.p, new.p, new.p
            else:
                lw = torch.logaddexp(log_w, w)
                take = torch.rand_like(w).log() < w - lw  # streaming multinomial choice in the subtree
                take = take if full else take & alive
                x_c, s_c, e_c = tree.where(take, new.x, x_c), tree.where(take, new.s, s_c), torch.where(take, e, e_c)
                if full:
                    log_w, rho, p_last = lw, _add(rho, new.p), new.p
                else:
                    log_w = torch.where(alive, lw, log_w)
                    rho, p_last = tree.where(alive, _add(rho, new.p), rho), tree.where(alive, new.p, p_last)
            alive = self._merge(stack, (new.p, new.p, new.p), n, alive & (w >= -self.max_delta_h))
        acc, n_lf, div = self._leaf_sums(weights, masks)
        return _Sub(alive, z, x_c, e_c, s_c, log_w, rho, p_first, p_last, acc, n_lf, div)

    def _leaf_sums(self, weights: list[Tensor], masks: list[Tensor | None]) -> tuple[Tensor, Tensor, Tensor]:
        """Per row, over the leaves it built: ``Σ min(1, e^w)``, how many, and whether one diverged."""
        w = torch.stack(weights)
        if all(m is None for m in masks):
            return w.clamp(max=0).exp_().sum(0), torch.full_like(w[0], len(weights)), (w < -self.max_delta_h).any(0)
        m = torch.stack([torch.ones_like(w[0], dtype=torch.bool) if v is None else v for v in masks])
        div = ((w < -self.max_delta_h) & m).any(0)
        m = m.to(w.dtype)
        return (w.clamp(max=0).exp_() * m).sum(0), m.sum(0), div

    def _merge(self, stack: list, cur: tuple[Sample, Sample, Sample], n: int, alive: Tensor) -> Tensor:
        """Merge leaf ``n`` with every left sibling it completes (the trailing one-bits of ``n``),
        checking each merged subtree; ``stack[i]`` holds ``(rho, p_begin, p_end)`` of a pending one."""
        level = 0
        while n & 1:
            l_rho, l_beg, l_end = stack[level]
            c_rho, c_beg, c_end = cur
            rho = _add(l_rho, c_rho)
            ok = self._crit(l_beg, c_end, rho)
            if level:  # two single leaves: the checks across them are the one above
                ok &= self._crit(l_beg, c_beg, _add(l_rho, c_beg)) & self._crit(l_end, c_end, _add(c_rho, l_end))
            alive = alive & ok
            cur = (rho, l_beg, c_end)
            level, n = level + 1, n >> 1
        if level < len(stack):
            stack[level] = cur
        return alive
