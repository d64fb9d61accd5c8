"""``[edg]`` and ``[weights]``: the options of an Energy-based Diffusion Generator and of its reweighting.

Where the EDG paper (Wang, Guo, Wu & Zhou, arXiv 2401.02080) gives no value, the default here is
our choice; the plugin README (``plugins/hebm-boltzmann/README.md``) lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from hebm_core.options import Options, option

__all__ = ["EDGOptions", "WeightOptions"]


def _positive(v: float) -> bool:
    return v > 0


@dataclass
class EDGOptions(Options):
    """The generator (a GHD decoder) and the encoder (a conditional score on a VP diffusion of the latent)."""

    section = "edg"

    latent_dim: int | None = option(
        None, "an integer in [1, 100000] (or null)", lambda v: 1 <= v <= 100_000, "latent size (null: the target's)"
    )
    ghd_steps: int = option(8, "an integer in [0, 1000]", lambda v: 0 <= v <= 1000, "generalised Hamiltonian steps")
    step_size: float = option(0.1, "a number > 0", _positive, "initial GHD step size ε₀ (trainable, per step and dim)")
    final_std: float = option(
        0.05, "a number > 0", _positive, "initial std of the last (Brownian) step, in units of the target's scale"
    )
    grad_clip: float = option(
        1e3, "a number > 0", _positive, "the decoder's ∇U is softly clipped to this norm per sample"
    )
    hidden: int = option(64, "an integer in [1, 16384]", lambda v: 1 <= v <= 16384, "width of the decoder's networks")
    depth: int = option(2, "an integer in [0, 16]", lambda v: 0 <= v <= 16, "hidden layers of the decoder's networks")
    score_hidden: int = option(128, "an integer in [1, 16384]", lambda v: 1 <= v <= 16384, "width of the score network")
    score_depth: int = option(3, "an integer in [1, 16]", lambda v: 1 <= v <= 16, "hidden layers of the score network")
    posterior_score: bool = option(
        True, None, None, "the score's base term uses ∇ log p_D(x|z) (exact at t = 0); false: only the prior's −z"
    )
    beta_min: float = option(0.1, "a number > 0", _positive, "VP SDE: β(0)")
    beta_max: float = option(20.0, "a number > 0", _positive, "VP SDE: β(T), β linear in t")
    horizon: float = option(1.0, "a number > 0", _positive, "VP SDE: T")
    exact_divergence_dims: int = option(
        16, "an integer in [0, 4096]", lambda v: 0 <= v <= 4096, "the loss's divergence is exact up to this latent size"
    )
    time_floor: float = option(
        0.0,
        "a number >= 0",
        lambda v: v >= 0,
        "0: t ~ U[0, T]; > 0: half the draws from a density ∝ 1/(t + time_floor), importance-weighted",
    )
    time_samples: int = option(
        1, "an integer in [1, 64]", lambda v: 1 <= v <= 64, "diffusion times per latent in the loss"
    )


@dataclass
class WeightOptions(Options):
    """Importance weights from the encoder's probability-flow ODE (solved by ``torchdiffeq``)."""

    section = "weights"

    n_samples: int = option(2000, "an integer in [1, 1e7]", lambda v: 1 <= v <= 10**7, "samples drawn and weighted")
    chunk: int = option(500, "an integer in [1, 1e6]", lambda v: 1 <= v <= 10**6, "samples per ODE solve")
    method: str = option("dopri5", "a torchdiffeq method name", None, "ODE solver (dopri5, rk4, euler, …)")
    rtol: float = option(1e-3, "a number > 0", _positive, "relative tolerance of adaptive solvers")
    atol: float = option(1e-3, "a number > 0", _positive, "absolute tolerance of adaptive solvers")
    ode_steps: int = option(
        100, "an integer in [1, 1e6]", lambda v: 1 <= v <= 10**6, "steps of fixed-step solvers (rk4, euler, midpoint)"
    )
    max_steps: int = option(
        100,
        "an integer in [1, 1e7]",
        lambda v: 1 <= v <= 10**7,
        "adaptive solvers: more steps than this on a chunk (a stiff score; a trained generator needs ~20) "
        "re-solves it with rk4 at ode_steps, counted in the report's fallback_rows",
    )
    exact_divergence: bool = option(
        True, None, None, "exact trace of the Jacobian (one backward pass per latent dim); false: Hutchinson"
    )
    refine_top: int = option(
        0,
        "an integer in [0, 1e6]",
        lambda v: 0 <= v <= 10**6,
        "this many of the largest log weights are re-solved with dopri5 at refine_tol, up to 4 rounds: for "
        "fixed-step solvers, whose overshoot on stiff rows inflates the weights that dominate (slow: those "
        "rows are the stiff ones)",
    )
    refine_tol: float = option(1e-5, "a number > 0", _positive, "rtol = atol of the refining solve")
