"""Importance weights of EDG samples, and what they give: consistent expectations, rESS, log Z.

For a draw ``z₀ ~ N(0, I)``, ``x ~ p_D(x | z₀)``:

    log w = −U(x) + log p_E(z₀ | x) − log N(z₀) − log p_D(x | z₀)

so ``E[w] = Z`` for any normalised encoder density. ``log p_E(z₀ | x)`` is the density of the
encoder's probability-flow ODE ``dz/dt = F = −½β(t)(z + s(z, x, t))`` (the pushforward of
``N(0, I)`` at ``t = T`` back to ``t = 0``): integrating from ``z₀`` forward,

    log p_E(z₀ | x) = log N(z_T; 0, I) + ∫₀ᵀ ∇_z·F(z_t, t) dt

solved by ``torchdiffeq.odeint`` with the exact divergence (the Jacobian's rows in one vmapped
backward pass) by default. Then ``log mean w`` estimates log Z (a stochastic lower bound, by
Jensen) and ``mean log w`` is a lower bound on it in expectation (the ELBO with the exact encoder
density).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from hebm_core.edg.config import WeightOptions
from hebm_core.edg.loss import divergence
from hebm_core.edg.model import EDG

__all__ = ["EDGDivergenceError", "WeightedSamples", "draw_weighted", "encoder_log_density", "summarise_log_weights"]

FIXED_STEP = ("euler", "midpoint", "rk4", "explicit_adams", "implicit_adams", "heun3")


class EDGDivergenceError(RuntimeError):
    """EDG produced non-finite samples or weights; ``str()`` is one line with a remedy."""


def _odeint():
    try:
        from torchdiffeq import odeint
    except ImportError:  # pragma: no cover - a dependency of the plugin and of hebm-core[edg]
        raise EDGDivergenceError(
            "EDG importance weights need torchdiffeq: pip install torchdiffeq (it is pure Python)"
        ) from None
    return odeint


def _max_norm(v: Tensor | tuple[Tensor, ...]) -> Tensor:
    """The largest absolute entry (of every tensor of a tuple state)."""
    if isinstance(v, tuple):
        return torch.stack([t.abs().max() for t in v]).max()
    return v.abs().max()


def encoder_log_density(
    model: EDG, z0: Tensor, x: Tensor, options: WeightOptions | None = None, stats: dict[str, int] | None = None
) -> Tensor:
    """``log p_E(z₀ | x)`` per row from the probability-flow ODE (no gradient flows out); ``stats`` counts
    ``fallback_rows``, rows of a chunk whose adaptive solve exceeded ``max_steps`` (solved again with rk4)."""
    o = options or WeightOptions()
    sched = model.schedule

    def drift(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        z = state[0]
        tt = t.expand(z.shape[0]).to(z.dtype)
        with torch.enable_grad():
            zg = z.detach().requires_grad_(True)
            s = model.latent_score(zg, x, tt)
            div_s = divergence(s, zg, o.exact_divergence)
        b = 0.5 * sched.beta(tt)
        f = -b[:, None] * (z + s.detach())
        return f, -b * (model.latent_dim + div_s.detach())

    fixed = {"options": {"step_size": sched.horizon / o.ode_steps}}
    if o.method in FIXED_STEP:
        kw: dict[str, Any] = {"method": o.method, **fixed}
    else:  # the max norm: torchdiffeq's default RMS over the batch would let a few stiff rows' errors pass
        kw = {"method": o.method, "rtol": o.rtol, "atol": o.atol}
        kw["options"] = {"norm": _max_norm, "max_num_steps": o.max_steps}
    times = torch.tensor([0.0, sched.horizon], dtype=z0.dtype, device=z0.device)
    start = (z0, torch.zeros(z0.shape[0], dtype=z0.dtype, device=z0.device))
    with torch.no_grad():
        try:
            zs, divs = _odeint()(drift, start, times, **kw)
        except AssertionError as exc:  # torchdiffeq's step limit: a score too stiff for the tolerance
            if "max_num_steps" not in str(exc):
                raise
            if stats is not None:
                stats["fallback_rows"] = stats.get("fallback_rows", 0) + z0.shape[0]
            zs, divs = _odeint()(drift, start, times, method="rk4", **fixed)
    return model.log_prior(zs[-1]) + divs[-1]


@dataclass
class WeightedSamples:
    """Samples ``x`` ``[n, dim]`` with their log weights ``[n]`` and latents, plus the evaluation counts
    (``sample_evals`` for drawing, ``weight_evals`` for the weights) and seconds."""

    x: Tensor
    log_w: Tensor
    z: Tensor
    sample_evals: int
    weight_evals: int
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def weights(self) -> Tensor:
        """Self-normalised weights (sum 1)."""
        return torch.softmax(self.log_w.double(), 0)

    def expectation(self, f) -> Tensor:
        """Self-normalised importance estimate of ``E_π[f(x)]`` (``f`` maps ``[n, dim]`` to ``[n]`` or ``[n, k]``)."""
        v = f(self.x).double()
        w = self.weights
        return (w[:, None] * v.reshape(len(w), -1)).sum(0).reshape(v.shape[1:])


def summarise_log_weights(log_w: Tensor, log_z: float | None = None, bootstrap: int = 200) -> dict[str, float]:
    """rESS ``(Σw)² / (n Σw²)``, ``log_z`` = log mean w (with a bootstrap standard error), ``log_z_lower``
    = mean log w, and their errors when the true ``log_z`` is known."""
    lw = log_w.double()
    n = lw.numel()
    log_mean = float(torch.logsumexp(lw, 0) - math.log(n))
    ress = float(torch.exp(2 * torch.logsumexp(lw, 0) - torch.logsumexp(2 * lw, 0)) / n)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, n, (bootstrap, n), generator=g)
    boot = torch.logsumexp(lw[idx], 1) - math.log(n)
    out = {
        "ress": ress,
        "log_z": log_mean,
        "log_z_stderr": float(boot.std()),
        "log_z_lower": float(lw.mean()),
        "log_w_std": float(lw.std()),
        "n": n,
    }
    if log_z is not None:
        out["log_z_error"] = abs(log_mean - log_z)
        out["log_z_lower_gap"] = log_z - float(lw.mean())
    return out


def draw_weighted(model: EDG, options: WeightOptions | None = None, log_z: float | None = None) -> WeightedSamples:
    """``options.n_samples`` draws of the (trained) model with their importance weights, in chunks."""
    import time

    o = options or WeightOptions()
    model.eval()
    t0 = time.perf_counter()
    xs, zs, lws, bases = [], [], [], []
    sample_evals = weight_evals = 0
    fallback: dict[str, int] = {}
    model.counter.take()
    for start in range(0, o.n_samples, o.chunk):
        n = min(o.chunk, o.n_samples - start)
        with torch.no_grad():
            z0, x, log_pd = model.generate(n)
            u = model.target_energy(x)
        sample_evals += model.counter.take()
        log_pe = encoder_log_density(model, z0, x, o, fallback)
        weight_evals += model.counter.take()
        lws.append(-u - model.log_prior(z0) - log_pd + log_pe)
        bases.append(-u - model.log_prior(z0) - log_pd)
        xs.append(x)
        zs.append(z0)
    x, z, log_w, base = torch.cat(xs), torch.cat(zs), torch.cat(lws), torch.cat(bases)
    refined, change = _refine(model, x, z, log_w, base, o)
    weight_evals += model.counter.take()
    _check_finite(x, log_w)
    ws = WeightedSamples(x, log_w, z, sample_evals, weight_evals, time.perf_counter() - t0)
    ws.summary = {**summarise_log_weights(log_w, log_z), "refined": refined, "refine_max_change": change}
    # rows whose adaptive solve hit weights.max_steps, solved again with rk4 at weights.ode_steps
    ws.summary["fallback_rows"] = fallback.get("fallback_rows", 0)
    return ws


def _refine(model: EDG, x: Tensor, z: Tensor, log_w: Tensor, base: Tensor, o: WeightOptions) -> tuple[int, float]:
    """Re-solve the ODE of the largest (and the non-finite) log weights with a tight adaptive solver, in
    place: a fixed-step solver that overshoots on a few stiff rows inflates exactly the weights that
    dominate the estimates (non-finite rows are left to the finiteness check). Returns the rows refined
    and the largest change (nats)."""
    if not o.refine_top or (o.method == "dopri5" and o.rtol <= o.refine_tol and o.atol <= o.refine_tol):
        return 0, 0.0
    tight = WeightOptions(method="dopri5", rtol=o.refine_tol, atol=o.refine_tol, exact_divergence=o.exact_divergence)
    done = torch.zeros(len(log_w), dtype=torch.bool)
    change = 0.0
    for _ in range(4):
        key = torch.where(torch.isfinite(log_w), log_w, torch.full_like(log_w, -math.inf))
        top = key.topk(min(o.refine_top, len(key))).indices
        idx = top[~done[top] & torch.isfinite(key[top])]
        if not len(idx):
            break
        stats: dict[str, int] = {}
        try:
            new = base[idx] + encoder_log_density(model, z[idx], x[idx], tight, stats)
        except AssertionError:  # torchdiffeq's step-size underflow: keep the first solve's values
            break
        if stats:  # the tight solve hit its step limit: the first solve's values stand
            break
        diff = (new - log_w[idx]).abs()
        change = max(change, float(torch.nan_to_num(diff, nan=math.inf).max()))
        log_w[idx] = new
        done[idx] = True
    return int(done.sum()), change


def _check_finite(x: Tensor, log_w: Tensor) -> None:
    bad_x = int((~torch.isfinite(x).all(1)).sum())
    if bad_x:
        raise EDGDivergenceError(
            f"EDG diverged: {bad_x}/{x.shape[0]} samples are not finite; retrain with a smaller edg.step_size "
            "or edg.grad_clip, or a lower train.lr"
        )
    bad_w = int((~torch.isfinite(log_w)).sum())
    if bad_w > 0.5 * log_w.numel():
        raise EDGDivergenceError(
            f"EDG weights diverged: {bad_w}/{log_w.numel()} log weights are not finite; try weights.method = 'rk4' "
            "with more weights.ode_steps, or train longer"
        )
    if bad_w:
        log_w.nan_to_num_(nan=-math.inf, posinf=-math.inf)
