"""Evaluation stage: the configured metrics (ΔT per statistic always among them) and the test NLL by AIS."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from hebm_core import tree
from hebm_core.config import ConfigError, Entry
from hebm_core.energy import EnergyModel
from hebm_core.metrics import Metric
from hebm_core.models import GaussianEnergy
from hebm_core.registry import lookup
from hebm_core.runs.build import Experiment, accepts, call_factory
from hebm_core.samplers.ais import AIS, nll_from_log_z
from hebm_core.samplers.bdmc import bdmc
from hebm_core.samplers.mh import HMC
from hebm_core.tree import Sample

__all__ = ["build_metrics", "evaluate", "log_likelihood", "delta_t_of"]


def build_metrics(exp: Experiment, metrics: list[Entry] | None = None) -> list[Metric]:
    """The metrics named in ``[evaluate] metrics`` (the plugin's and the core's), with the core's
    ``delta_t`` first when they do not name it: ΔT per statistic is always computed, against the
    training data too when a test split exists."""
    items = list(exp.config.evaluate.metrics if metrics is None else metrics)
    if not any(m.name == "delta_t" for m in items):
        items.insert(0, Entry("delta_t"))
    table = exp.plugin.all_metrics()
    built: list[Metric] = []
    for item in items:
        factory = lookup(table, item.name, "metric", exp.plugin.name)
        opts = {**item.options, "bundle": exp.bundle} if accepts(factory, "bundle") else dict(item.options)
        built.append(
            call_factory("metric", item.name, factory, exp.eval_statistics, internal=("statistics", "bundle"), **opts)
        )
    return built


def evaluate(samples: Sample, exp: Experiment, metrics: list[Metric] | None = None) -> dict[str, float]:
    """Every metric of ``metrics`` (default: :func:`build_metrics`) on ``samples`` against the reference data.

    ΔT covers the trained statistics, ``[evaluate] statistics`` and the plugin's default
    statistics, so a vanilla model reports ΔT for the statistics a hybrid model would use.
    """
    built = build_metrics(exp) if metrics is None else metrics
    samples = tree.to_device(samples, "cpu")
    reference = tree.to_device(exp.reference, "cpu")
    out: dict[str, float] = {}
    with warnings.catch_warnings(record=True) as caught:  # a metric's warnings become the report's notes
        warnings.simplefilter("always")
        for m in built:
            try:
                m.update(samples, reference)
                out.update(m.compute())
            except (ValueError, RuntimeError) as exc:  # e.g. an MMD of one sample
                name = getattr(m, "name", type(m).__name__)
                raise ConfigError(f"metric {name!r} cannot be computed: {exc}") from None
    exp.notes.extend(n for n in dict.fromkeys(str(w.message) for w in caught) if n not in exp.notes)
    return out


def delta_t_of(metrics: Mapping[str, float]) -> dict[str, float]:
    """``{statistic: ΔT}`` from a metrics dict."""
    return {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("delta_t/")}


#: how :func:`log_likelihood` may start its reverse AIS chains
REVERSE_STARTS = ("auto", "exact", "data", "forward", "none")

#: what the NLL bounds mean, carried in every report
NLL_DIRECTIONS = (
    "NLL = E_test[E(x)] + log Z. nll_lower uses forward AIS's log Z, a stochastic lower bound on log Z, so it is "
    "a lower bound on the NLL: optimistic, the true NLL is at least this in expectation. nll_upper uses reverse "
    "AIS's log Z, an upper bound on the NLL (pessimistic) only when upper_bound_valid is true. nll_nats and "
    "bits_per_dim are the lower (optimistic) values. *_interval widens both ends by z bootstrap standard errors."
)


def _reverse_start(model: EnergyModel, reverse: str, sigma: float | None) -> str:
    if reverse not in REVERSE_STARTS:
        raise ConfigError(f"log_likelihood: reverse must be one of {', '.join(REVERSE_STARTS)}, got {reverse!r}")
    exact_ok = callable(getattr(model, "sample", None)) and sigma is None
    if reverse == "exact" and not exact_ok:
        why = "its density is blurred by a noise level" if sigma is not None else "it has no sample method"
        raise ConfigError(f"log_likelihood: reverse='exact' needs exact samples of the model, but {why}")
    if reverse == "auto":
        return "exact" if exact_ok else "data"
    return reverse


def _data_starts(train: Tensor, n: int, sigma: float | None, seed: int, device: torch.device) -> Tensor:
    """``n`` training rows (flat, float32), blurred by ``sigma`` when the model is a density of blurred data."""
    g = torch.Generator().manual_seed(seed + 1)
    rows = train.flatten(1)
    rows = rows[torch.randperm(rows.shape[0], generator=g)[:n]].float()
    if sigma is not None:
        rows = rows + sigma * torch.randn(rows.shape, generator=g)
    return rows.to(device)


def log_likelihood(
    model: EnergyModel,
    exp: Experiment,
    n_chains: int = 256,
    n_temps: int = 1000,
    seed: int = 0,
    reverse: str = "auto",
    steps_per_temp: int = 1,
    schedule: str = "sigmoid",
    burn_in: int = 0,
    gap_tol: float = 0.5,
    z: float = 2.0,
) -> dict[str, Any]:
    """Test-set NLL (nats, bits/dim) of a model on flat-able tensor data, bracketed by forward and reverse AIS.

    AIS runs HMC from a diagonal Gaussian fitted to the training data (std widened 1.5×) to the
    model; a noise-conditional model is evaluated at the smallest training σ, i.e. as the density of
    data blurred by that σ. Forward AIS bounds log Z, hence the NLL, from below (``nll_lower``:
    optimistic); reverse AIS (:func:`~hebm_core.samplers.bdmc.bdmc`) along the same path gives
    ``nll_upper``, an upper bound only when its chains start from exact samples of the model
    (``upper_bound_valid``). ``reverse`` picks those starts: ``"exact"`` (the model's own ``sample``
    method, which is taken to draw exact samples, as the analytic energies do), ``"data"`` (training
    rows, blurred by σ for a noise-conditional model: approximate, flagged as such; ``burn_in`` MH steps
    at the model first), ``"forward"`` (the forward run's final samples: no bound, and blind to modes
    the forward run missed), ``"none"`` (forward AIS only), or ``"auto"``: exact samples when the model
    has them, else data. The report carries each side's spread (bootstrap standard error, ESS), the
    gap, how the reverse chains started and a ``warning`` when the gap exceeds ``gap_tol`` nats or the
    upper bound does not hold; ``nll_nats``/``bits_per_dim`` are the lower (optimistic) values.
    """
    train, ref = exp.bundle.train, exp.reference
    if not isinstance(train, Tensor):
        raise ConfigError("log-likelihood by AIS needs tensor samples; this dataset's samples are structured")
    device = next(model.parameters(), torch.empty(0)).device
    shape = train.shape[1:]
    flat = train.flatten(1).double()
    std = (flat.std(0) * 1.5).clamp_min(1e-3)
    base = GaussianEnergy(flat.mean(0), torch.diag(std.pow(-2))).to(device).float()
    sigmas = exp.training_sigmas
    sigma = float(sigmas[-1]) if sigmas is not None and getattr(model, "noise_conditional", False) else None
    how = _reverse_start(model, reverse, sigma)

    def energy(x: Tensor, sig: Tensor | None = None) -> Tensor:
        return model(x.view(-1, *shape), sig)

    gen = torch.Generator(device=device).manual_seed(seed)
    ais = AIS(
        n_temps=n_temps,
        n_chains=n_chains,
        kernel=HMC(step_size=0.1, n_leapfrog=5),
        steps_per_temp=steps_per_temp,
        schedule=schedule,
    )
    test = ref.flatten(1).to(device)
    mean_energy = nll_from_log_z(energy, test, 0.0, sigma)
    dim, e_test = mean_energy["dim"], mean_energy["nll_nats"]

    def nll(log_z: float | None) -> float | None:
        return None if log_z is None else e_test + log_z

    def bpd(v: float | None) -> float | None:
        return None if v is None else v / (dim * math.log(2))

    if how == "none":
        fwd = ais.estimate(energy, base, sigma=sigma, generator=gen)
        lo, hi, gap, interval, valid = fwd.log_z, None, None, None, False
        note = "no reverse AIS was run: there is no upper bound on log Z or the NLL"
        warning, reverse_dict = note, None
    else:
        kw: dict[str, Any] = {}
        if how == "exact":
            kw["exact"] = lambda n, g: model.sample(n, generator=g).reshape(n, -1)
        elif how == "data":
            kw["approximate"] = _data_starts(train, n_chains, sigma, seed, device)
            kw["approximate_label"] = "training data" + (f" blurred by sigma={sigma:.4g}" if sigma is not None else "")
        res = bdmc(energy, base, ais, sigma=sigma, generator=gen, burn_in=burn_in, gap_tol=gap_tol, z=z, **kw)
        fwd = res.forward
        lo, hi, gap, interval = res.log_z_lower, res.log_z_upper, res.gap, res.log_z_interval
        valid = res.upper_bound_valid
        note, warning, reverse_dict = res.reverse_start_note, res.warning, res.reverse.to_dict()
    nll_lo, nll_hi = nll(lo), nll(hi)
    nll_int = None if interval is None else [nll(interval[0]), nll(interval[1])]
    return {
        "nll_nats": nll_lo,
        "bits_per_dim": bpd(nll_lo),
        "dim": dim,
        "nll_lower": nll_lo,
        "nll_upper": nll_hi,
        "bits_per_dim_lower": bpd(nll_lo),
        "bits_per_dim_upper": bpd(nll_hi),
        "nll_interval": nll_int,
        "bits_per_dim_interval": None if nll_int is None else [bpd(v) for v in nll_int],
        "log_z_lower": lo,
        "log_z_upper": hi,
        "log_z_gap": gap,
        "log_z_interval": None if interval is None else list(interval),
        "upper_bound_valid": valid,
        "reverse_start": how,
        "reverse_start_note": note,
        "nll_directions": NLL_DIRECTIONS,
        "warning": warning,
        "ais": fwd.to_dict(),
        "ais_reverse": reverse_dict,
        "sigma": sigma,
        "base": "diagonal Gaussian fitted to train data, std x1.5",
    }
