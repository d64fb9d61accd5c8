"""Bits/dim of the grey levels with forward/reverse AIS bounds on log Z, inside every run.

The change of variables to the grey levels is ``bits/dim(levels) = bits/dim(x) + log₂ L`` for
``x = (k + u)/L`` (``L = 256`` for MNIST; ``dataset.pixels`` in every report states it).

The ``bits_per_dim`` metric brackets the test NLL inside ``hebm run`` / ``hebm compare``, on the
model that drew the run's samples (recorded by the ``image_langevin`` sampler in the
:class:`~hebm_image.sampling.ImageSpace`), with the toolbox's BDMC (:func:`hebm_core.samplers.bdmc.bdmc`):
HMC-AIS from a diagonal Gaussian fitted to the training images (std ×1.5, at least 2σ_min) to
``exp(−E(x, σ_min))``.
Its reverse chains start from the run's own samples (annealed Langevin, denoised, clipped to
``[0, 1]``), blurred again by σ_min since the model at σ_min is a density of blurred images, and moved
by ``burn_in`` MH steps at the model: samples of the model itself, but approximate ones, so the upper
side is a diagnostic (``nll/upper_bound_valid = 0``) and the upper bound holds only to the extent the
sampler is exact. With ``pf_ode_images`` > 0 the probability-flow ODE likelihood
(:func:`hebm_core.likelihood.pf_ode_likelihood`, from σ_min to the sampler's largest σ, Hutchinson
divergence, fixed-step RK4) of that many test images is the cross-check (``nll/pf_ode_*``); its prior
``N(0, σ_max² I)`` is exact only when σ_max is large against the data, so it is biased at the CPU
configs' σ_max = 1. A forward-AIS underestimate of log Z makes the NLL look better than it is: quote
``nll/bits_per_dim_levels_lower`` as optimistic. Figures go to the report's ``metrics`` under ``nll/``,
what they mean to its ``notes``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor

from hebm_core.data import DataBundle
from hebm_core.energy import EnergyModel
from hebm_core.metrics import Metric
from hebm_core.models import GaussianEnergy
from hebm_core.options import check_int, check_number
from hebm_core.samplers.ais import AIS, nll_from_log_z
from hebm_core.samplers.bdmc import BDMCResult, bdmc
from hebm_core.samplers.mh import HMC
from hebm_core.statistics import Statistic
from hebm_image.sampling import ImageSpace

__all__ = ["DIRECTIONS", "bracket_nll", "BitsPerDim", "bits_per_dim", "METRICS"]


#: what the ``nll/`` figures mean, in every report's notes
DIRECTIONS = (
    "bits_per_dim: NLL = E_test[E(x, sigma_min)] + log Z of the model at its smallest noise level. *_lower use "
    "forward AIS's log Z, a stochastic lower bound, so they are optimistic (the true NLL is at least this in "
    "expectation); *_upper use reverse AIS started from the run's own samples re-blurred by sigma_min: an upper "
    "bound only if those were exact samples of the model, which annealed Langevin does not guarantee "
    "(nll/upper_bound_valid = 0). *_levels_* add log2(L) per pixel, the change of variables from x = (k + u)/L "
    "to the L grey levels; *_interval_* widen both ends by z bootstrap standard errors."
)


def _base(train: Tensor, floor: float, device: torch.device) -> tuple[GaussianEnergy, float]:
    """The AIS base: a diagonal Gaussian fitted to the training images, std ×1.5 and at least ``floor``
    (MNIST's blank border pixels vary only by the dequantisation noise, std ≈ 1/(256·√12), far narrower than
    the model at σ_min); returns it with its smallest std, which sets the first HMC step size."""
    flat = train.flatten(1).double()
    std = (flat.std(0) * 1.5).clamp_min(floor)
    return GaussianEnergy(flat.mean(0), torch.diag(std.pow(-2))).to(device).float(), float(std.min())


def bracket_nll(
    model: EnergyModel,
    train: Tensor,
    test: Tensor,
    starts: Tensor,
    sigma: float | None,
    ais_options: dict[str, int],
    seed: int = 0,
    **bdmc_options: Any,
) -> tuple[BDMCResult, float, int]:
    """BDMC on ``exp(−E(x, σ))`` of image batches (HMC-AIS with ``ais_options``: ``n_temps``, ``n_chains``,
    ``steps_per_temp``), reverse chains from ``starts`` (approximate model samples, blurred by σ here);
    returns the result, the mean test energy and the dimension."""
    device = next(model.parameters(), torch.empty(0)).device
    shape = train.shape[1:]
    base, narrowest = _base(train, 2 * sigma if sigma is not None else 1e-3, device)
    ais = AIS(kernel=HMC(step_size=min(0.1, 0.5 * narrowest), n_leapfrog=5), **ais_options)

    def energy(x: Tensor, sig: Tensor | None = None) -> Tensor:
        return model(x.view(-1, *shape), sig)

    g = torch.Generator().manual_seed(seed + 1)
    rows = starts.flatten(1).float()
    rows = rows[torch.randperm(len(rows), generator=g)[: ais.n_chains]]
    if sigma is not None:
        rows = rows + sigma * torch.randn(rows.shape, generator=g)
    gen = torch.Generator(device=device).manual_seed(seed)
    label = "the run's own samples" + (f" blurred by sigma={sigma:.4g}" if sigma is not None else "")
    res = bdmc(energy, base, ais, approximate=rows.to(device), approximate_label=label,
               sigma=sigma, generator=gen, **bdmc_options)  # fmt: skip
    mean = nll_from_log_z(energy, test.flatten(1).to(device), 0.0, sigma)
    return res, mean["nll_nats"], mean["dim"]


class BitsPerDim(Metric):
    """Test NLL in bits/dim of the run's sampling model with forward/reverse AIS bounds (module docstring).

    Keys: ``nll/bits_per_dim_{lower,upper}`` (continuous ``x``), ``nll/bits_per_dim_levels_{lower,upper}``
    (the grey levels, the papers' figure) and their ``*_interval_{lo,hi}``, ``nll/log_z_{lower,upper,gap}``,
    ``nll/upper_bound_valid`` (1 or 0), ``nll/sigma`` (the noise level the density is of) and the AIS
    effective sample sizes. The meaning of the bounds and any warning go to the report's notes.
    """

    name = "bits_per_dim"

    def __init__(
        self,
        bundle: DataBundle,
        max_test: int,
        ais: dict[str, int],
        seed: int,
        pf_ode: tuple[int, int],
        **bdmc_options: Any,
    ) -> None:
        self.bundle, self.max_test, self.ais, self.seed, self.bdmc_options = bundle, max_test, ais, seed, bdmc_options
        self.pf_ode = pf_ode
        self._x: list[Tensor] = []

    def update(self, samples: Tensor, reference: Tensor | None = None) -> None:
        self._x.append(samples.detach().float().cpu())

    def compute(self) -> dict[str, float]:
        draw = getattr(self.bundle.space, "last_draw", None)
        if draw is None:
            raise ValueError(
                "bits_per_dim needs the model that drew the samples: use [sampler] name = 'image_langevin'"
            )
        test = self.bundle.reference
        if len(test) > self.max_test:
            test = test[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[: self.max_test]]
        model = draw.energy
        sigma = draw.sigma_min if getattr(model, "noise_conditional", False) else None
        res, e_test, dim = bracket_nll(model, self.bundle.train, test, torch.cat(self._x), sigma, self.ais,
                                       self.seed, **self.bdmc_options)  # fmt: skip
        off = float((self.bundle.info.get("pixels") or {}).get("bits_per_dim_offset", 8.0))
        per_dim = dim * math.log(2)
        lo, hi = res.log_z_interval
        out = {
            "nll/nll_lower_nats": e_test + res.log_z_lower,
            "nll/nll_upper_nats": e_test + res.log_z_upper,
            "nll/bits_per_dim_lower": (e_test + res.log_z_lower) / per_dim,
            "nll/bits_per_dim_upper": (e_test + res.log_z_upper) / per_dim,
            "nll/bits_per_dim_interval_lo": (e_test + lo) / per_dim,
            "nll/bits_per_dim_interval_hi": (e_test + hi) / per_dim,
        }
        for k in list(out):
            if k.startswith("nll/bits_per_dim"):
                out[k.replace("bits_per_dim", "bits_per_dim_levels")] = out[k] + off
        out.update({
            "nll/log_z_lower": res.log_z_lower, "nll/log_z_upper": res.log_z_upper, "nll/log_z_gap": res.gap,
            "nll/upper_bound_valid": float(res.upper_bound_valid), "nll/sigma": float(sigma or 0.0),
            "nll/levels_offset_bits": off, "nll/forward_ess": res.lower_ess, "nll/reverse_ess": res.upper_ess,
            "nll/n_temps": float(res.n_temps), "nll/n_chains": float(res.n_chains), "nll/n_test": float(len(test)),
        })  # fmt: skip
        if self.pf_ode[0] and sigma is not None and draw.sigma_max:
            out.update(_pf_ode(model, test[: self.pf_ode[0]], sigma, draw.sigma_max, self.pf_ode[1], off, self.seed))
        warnings.warn(f"{DIRECTIONS} Reverse starts: {res.reverse_start_note}.", stacklevel=2)
        if res.warning:
            warnings.warn(f"bits_per_dim: {res.warning}", stacklevel=2)
        return {k: float(v) for k, v in out.items()}

    def reset(self) -> None:
        self._x = []


def _pf_ode(model: EnergyModel, x: Tensor, lo: float, hi: float, steps: int, off: float, seed: int) -> dict:
    """Probability-flow ODE bits/dim of the grey levels for images ``x`` (mean and standard error)."""
    from hebm_core.likelihood import pf_ode_likelihood

    device = next(model.parameters(), torch.empty(0)).device
    step = math.log(hi / lo) / steps
    gen = torch.Generator(device=device).manual_seed(seed)
    res = pf_ode_likelihood(model, x.to(device), sigma_min=lo, sigma_max=hi, method="rk4", step_size=step,
                            divergence="hutchinson", bpd_offset=off, generator=gen)  # fmt: skip
    se = float(res.bpd.std() / math.sqrt(len(x))) if len(x) > 1 else float("nan")
    return {"nll/pf_ode_bits_per_dim_levels": float(res.bits_per_dim), "nll/pf_ode_bits_per_dim_levels_se": se,
            "nll/pf_ode_images": float(len(x)), "nll/pf_ode_sigma_max": hi}  # fmt: skip


def bits_per_dim(
    statistics: list[Statistic],
    bundle: DataBundle,
    n_chains: int = 64,
    n_temps: int = 200,
    steps_per_temp: int = 1,
    burn_in: int = 10,
    max_test: int = 1000,
    gap_tol: float = 0.5,
    z: float = 2.0,
    seed: int = 0,
    pf_ode_images: int = 0,
    pf_ode_steps: int = 40,
) -> Metric:
    """Bits/dim with forward/reverse AIS bounds on log Z (:class:`BitsPerDim`): ``n_chains`` chains each way
    over ``n_temps`` temperatures (HMC, ``steps_per_temp`` moves each), ``burn_in`` MH steps for the
    reverse starts, ``max_test`` test images (a seeded subset) for the mean energy; the PF-ODE cross-check
    on ``pf_ode_images`` test images with ``pf_ode_steps`` RK4 steps (0 images: none)."""
    check_int("bits_per_dim", "n_chains", n_chains, 2, 1_000_000)
    check_int("bits_per_dim", "n_temps", n_temps, 2, 1_000_000)
    check_int("bits_per_dim", "steps_per_temp", steps_per_temp, 1, 1000)
    check_int("bits_per_dim", "burn_in", burn_in, 0, 100_000)
    check_int("bits_per_dim", "max_test", max_test, 1, 10_000_000)
    check_int("bits_per_dim", "seed", seed, 0, 2**31 - 1)
    check_number("bits_per_dim", "gap_tol", gap_tol, 0, open_low=True)
    check_number("bits_per_dim", "z", z, 0)
    check_int("bits_per_dim", "pf_ode_images", pf_ode_images, 0, 100_000)
    check_int("bits_per_dim", "pf_ode_steps", pf_ode_steps, 1, 100_000)
    if not isinstance(bundle.space, ImageSpace):
        raise ValueError("bits_per_dim needs an image dataset of this plugin (its ImageSpace records the model)")
    ais = {"n_temps": n_temps, "n_chains": n_chains, "steps_per_temp": steps_per_temp}
    return BitsPerDim(bundle, max_test, ais, seed, (pf_ode_images, pf_ode_steps), burn_in=burn_in, gap_tol=gap_tol, z=z)


METRICS = {"bits_per_dim": bits_per_dim}
