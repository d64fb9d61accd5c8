"""``hebm boltzmann``: sample a registered target energy without data (EDG, HMC or MALA) and compare the
samplers at the same number of energy + gradient evaluations; writes ``report.json`` and, for 2-D
targets, ``samples.png`` (samples over the target's contours, EDG's weight histogram).

Targets come from the plugin registry (``Plugin.targets``; e.g. the ``hebm-boltzmann`` plugin); the core
imports no plugin. Budget: EDG's count (training + drawing + the weights' ODE) is the budget of the
baselines; with ``--sampler hmc|mala`` the budget is ``--budget``. One evaluation is one row of one call
of ``U`` with its gradient (higher derivatives inside EDG's training are not counted extra). MCMC
baselines run one chain per sample (the final states are the samples), the step size adapted by dual
averaging over the first ``adapt_frac`` of their steps.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from hebm_core.cli.printing import fmt, say
from hebm_core.config import ConfigError, get_registry, parse_assignment
from hebm_core.edg import EDGDivergenceError, EDGOptions, WeightOptions, draw_weighted, edg_train_config, train_edg
from hebm_core.edg.metrics import DEFINITIONS, mmd_anice, mmd_median, wasserstein2
from hebm_core.models import GaussianEnergy
from hebm_core.samplers import AIS, HMC, MALA, SamplerDivergenceError, SamplerStuckError
from hebm_core.samplers.bdmc import bdmc
from hebm_core.targets import Target, checkpoint_target

__all__ = ["add_boltzmann_args", "cmd_boltzmann", "find_target"]

SECTIONS = ("edg", "weights", "train", "target", "mcmc")
MCMC_DEFAULTS = {"n_leapfrog": 10, "adapt_frac": 0.3, "step_size": 0.1}


def find_target(name: str, options: dict[str, Any] | None = None) -> Target:
    """The target ``name`` (or ``plugin:name``) from the installed plugins, built with ``options``."""
    reg = get_registry()
    plugin_name, sep, tname = name.rpartition(":")
    plugins = {plugin_name: reg.get(plugin_name)} if sep else reg.plugins
    found = {p: pl.targets[tname] for p, pl in plugins.items() if tname in pl.targets}
    if not found:
        known = sorted({t for pl in plugins.values() for t in pl.targets})
        hint = "" if known else " (install one: bash scripts/setup.sh boltzmann)"
        raise ConfigError(f"unknown target {tname!r}; known: {', '.join(known) or 'none'}{hint}")
    if len(found) > 1:
        raise ConfigError(f"target {tname!r} is in several plugins ({', '.join(sorted(found))}): write PLUGIN:NAME")
    try:
        return next(iter(found.values()))(**(options or {}))
    except TypeError as exc:
        raise ConfigError(f"target {tname!r}: bad --set target.* option: {exc}") from None


class Counted:
    """``U`` that counts rows evaluated (each call gives the energy and, by autograd, its gradient)."""

    def __init__(self, energy) -> None:
        self.energy, self.evals = energy, 0

    def __call__(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        self.evals += x.shape[0]
        return self.energy(x)


def evaluate(target: Target, x: Tensor, w: Tensor | None, ref: Tensor | None) -> dict[str, Any]:
    """Distances to the reference samples and the target's own metrics, for samples ``x`` (weights ``w``)."""
    out: dict[str, Any] = {}
    if not bool(torch.isfinite(x).all()):
        return {"error": "non-finite samples"}
    if ref is not None:
        out["mmd_anice"] = mmd_anice(x, ref, w)
        out["mmd_median"] = mmd_median(x, ref, w)
        out["w2"] = wasserstein2(x, ref, w)
    for name, fn in target.metrics.items():
        out[name] = fn(x, w)
    with torch.no_grad():
        e = target.energy(x.float()).double()
    out["mean_energy"] = float(e.mean()) if w is None else float((w.double() * e).sum())
    return out


def run_mcmc(target: Target, kind: str, budget: int, n: int, seed: int, opts: dict[str, Any]) -> dict[str, Any]:
    """``n`` chains of HMC or MALA using at most ``budget`` evaluations in all; final states as samples."""
    o = {**MCMC_DEFAULTS, **opts}
    per_step = int(o["n_leapfrog"]) if kind == "hmc" else 1
    steps = max(2, (budget // n - 1) // per_step)
    adapt = max(1, int(o["adapt_frac"] * steps))
    counted = Counted(target.energy)
    torch.manual_seed(seed)
    x0 = target.start(n, torch.Generator().manual_seed(seed))
    common = dict(step_size=float(o["step_size"]), n_steps=steps - adapt, adapt_steps=adapt, progress=False)
    sampler = HMC(n_leapfrog=int(o["n_leapfrog"]), **common) if kind == "hmc" else MALA(**common)
    t0 = time.perf_counter()
    x = sampler.run(counted, x0)
    return {
        "x": x,
        "evals": counted.evals,
        "seconds": time.perf_counter() - t0,
        "steps": steps,
        "adapt_steps": adapt,
        **{k: float(v) for k, v in sampler.last_stats.items()},
    }


def run_ais(target: Target, budget: int, n: int, seed: int, opts: dict[str, Any]) -> dict[str, Any]:
    """Forward AIS (HMC kernel, adapted per temperature) from ``scale``·N(0, I) to the target with ``n``
    chains and as many temperatures as ``budget`` allows, plus reverse AIS from exact samples when the
    target has them (BDMC: then log Z is bracketed); final states weighted by the forward weights."""
    o = {**MCMC_DEFAULTS, **opts}
    base = GaussianEnergy(mean=torch.zeros(target.dim), precision=torch.eye(target.dim) / target.scale**2)

    def make(n_temps: int, chains: int) -> AIS:
        kernel = HMC(step_size=float(o["step_size"]), n_leapfrog=int(o["n_leapfrog"]))
        return AIS(n_temps=n_temps, n_chains=chains, kernel=kernel)

    # evaluations per chain = fixed + per_temp * n_temps, counted on two chains at 2 and 4 temperatures
    costs = [_ais_evals(target, base, make(k, 2), seed) / 2 for k in (2, 4)]
    per_temp = max((costs[1] - costs[0]) / 2, 1.0)
    n_temps = max(2, int((budget / n - (costs[0] - 2 * per_temp)) // per_temp))
    counted = Counted(target.energy)
    ais = make(n_temps, n)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    exact = target.sample
    res = bdmc(counted, base, ais, exact=exact, generator=g) if exact is not None else None
    fwd = res.forward if res is not None else ais.estimate(counted, base, generator=g)
    row: dict[str, Any] = {"x": fwd.samples, "w": torch.softmax(fwd.log_w.double(), 0), "log_w": fwd.log_w}
    row.update(evals=counted.evals, seconds=time.perf_counter() - t0, n_temps=n_temps)
    row["ais"] = res.to_dict() if res is not None else {"forward": fwd.to_dict(), "reverse": None}
    row["log_z"] = fwd.log_z
    if res is not None:
        row["log_z_upper"] = res.log_z_upper
    if target.log_z is not None:
        row["log_z_error"] = fwd.log_z - target.log_z
    return row


def _ais_evals(target: Target, base: GaussianEnergy, ais: AIS, seed: int) -> int:
    """Evaluations one (BDMC when the target has exact samples) run of ``ais`` costs."""
    counted, g = Counted(target.energy), torch.Generator().manual_seed(seed)
    if target.sample is not None:
        bdmc(counted, base, ais, exact=target.sample, generator=g)
    else:
        ais.estimate(counted, base, generator=g)
    return counted.evals


def run_edg(target: Target, sections: dict[str, dict], args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Train an EDG (checkpoints in ``out/edg``, resumable), then draw weighted samples."""
    train = {"seed": args.seed, **sections["train"], **({"steps": args.steps} if args.steps is not None else {})}
    weights = {"n_samples": args.n, **sections["weights"]}
    t0 = time.perf_counter()
    options, config = EDGOptions.from_dict(sections["edg"]), edg_train_config(train)
    loc, scale = None, target.scale
    if target.init is not None:  # the generator starts where the chains do (LJ-13: around a lattice)
        starts = target.init(256, torch.Generator().manual_seed(args.seed))
        loc, scale = starts.mean(0), min(scale, max(float(starts.std(0).mean()), 1e-3))
    trained = train_edg(target.energy, target.dim, options, config, out / "edg", scale=scale, loc=loc)
    torch.manual_seed(args.seed + 1)
    ws = draw_weighted(trained.model, WeightOptions.from_dict(weights), log_z=target.log_z)
    return {
        "x": ws.x,
        "w": ws.weights,
        "log_w": ws.log_w,
        "evals": trained.train_evals + ws.sample_evals + ws.weight_evals,
        "train_evals": trained.train_evals,
        "sample_evals": ws.sample_evals,
        "weight_evals": ws.weight_evals,
        "seconds": time.perf_counter() - t0,
        "train_seconds": trained.summary.get("wall_time_s"),
        "final_loss": trained.summary.get("final_metrics", {}).get("loss"),
        "weights": ws.summary,
        **({"warning": warning} if (warning := _weights_warning(ws.summary)) else {}),
        "options": {"edg": options.to_dict(), "train": config.to_dict(), "weights": weights},
    }


def _weights_warning(summary: dict[str, Any]) -> str | None:
    """Why EDG's weights should not be trusted, if they should not: stiff ODE rows, or a collapsed rESS."""
    notes = []
    if summary.get("fallback_rows"):
        notes.append(
            f"{summary['fallback_rows']} of {summary['n']} weights come from the fixed-step fallback after the "
            "adaptive solver's step limit (a stiff encoder score: undertrained), so they may be far off"
        )
    if summary.get("ress", 1.0) < 0.01:
        notes.append(f"rESS {summary['ress']:.2g}: a few weights dominate, reweighted figures are unreliable")
    return "; ".join(notes) or None


def _sections(assignments: list[str] | None) -> dict[str, dict]:
    out: dict[str, dict] = {s: {} for s in SECTIONS}
    for a in assignments or []:
        d = parse_assignment(a)
        (section, value), *_ = d.items()
        if section not in SECTIONS or not isinstance(value, dict):
            raise ConfigError(f"--set takes {', '.join(s + '.KEY' for s in SECTIONS)}=VALUE, got {a!r}")
        out[section].update(value)
    return out


def _row(target: Target, res: dict[str, Any], ref: Tensor | None, weighted: bool) -> dict[str, Any]:
    row = {k: v for k, v in res.items() if k not in ("x", "w", "log_w")}
    row["metrics"] = evaluate(target, res["x"], None, ref)
    if weighted:
        row["metrics_reweighted"] = evaluate(target, res["x"], res["w"], ref)
    return row


def _reference(target: Target, n: int, seed: int) -> tuple[Tensor | None, str]:
    g = torch.Generator().manual_seed(seed + 10_000)
    if target.sample is not None:
        return target.sample(n, g), "exact samples"
    if target.reference is not None:
        return target.reference(n, g), "reference samples (the target's long MCMC)"
    return None, "none"


def cmd_boltzmann(args: argparse.Namespace) -> int:
    """Sample a target energy without data; EDG and the MCMC baselines at equal evaluations; report.json."""
    try:
        return _boltzmann(args)
    except (EDGDivergenceError, SamplerDivergenceError, SamplerStuckError) as exc:
        print(f"hebm: error: {' '.join(str(exc).split())}", file=sys.stderr, flush=True)
        return 2


def _boltzmann(args: argparse.Namespace) -> int:
    if args.n < 2:
        raise ConfigError(f"--n must be at least 2, got {args.n}")
    sections = _sections(args.set)
    if (args.target is None) == (args.checkpoint is None):
        raise ConfigError("give one of --target NAME or --checkpoint PATH")
    if args.checkpoint is not None:
        target = checkpoint_target(args.checkpoint)
    else:
        target = find_target(args.target, sections["target"])
    out = Path(args.out or f"runs/boltzmann-{target.name}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    results: dict[str, dict[str, Any]] = {}
    if args.sampler == "edg":
        results["edg"] = run_edg(target, sections, args, out)
        budget = int(results["edg"]["evals"])
    else:
        budget = int(args.budget)
    kinds = [k for k in ("hmc", "mala") if k != args.sampler or args.sampler == "edg"]
    mcmc = [args.sampler] if args.sampler != "edg" else []
    mcmc += [] if args.no_baselines else [k for k in kinds if k not in mcmc]
    for kind in mcmc:
        results[kind] = run_mcmc(target, kind, budget, args.n, args.seed, sections["mcmc"])
    if not args.no_baselines:
        results["ais"] = run_ais(target, budget, args.n, args.seed, sections["mcmc"])
    ref, ref_kind = _reference(target, args.n, args.seed)
    for name, res in results.items():
        rows[name] = _row(target, res, ref, weighted="w" in res)
    report = _report(target, args, budget, ref_kind, rows, time.perf_counter() - t0)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
    if target.dim == 2 and not args.no_plot:
        _picture(target, results, out / "samples.png")
    _print(report, out)
    return 0


def _report(target, args, budget, ref_kind, rows, wall) -> dict[str, Any]:
    return {
        "target": target.name,
        "dim": target.dim,
        "log_z_true": target.log_z,
        "info": target.info,
        "primary_sampler": args.sampler,
        "budget_evals": budget,
        "n_samples": args.n,
        "reference": {"kind": ref_kind, "n": args.n},
        "seed": args.seed,
        "wall_time_s": wall,
        "definitions": {
            **DEFINITIONS,
            "evals": "rows of U evaluated, each with its gradient; EDG: training + drawing + the weights' ODE",
            "mode_weight_error": "total variation 1/2 sum_k |share of samples nearest mode k - weight of mode k|",
            "ress": "(sum w)^2 / (n sum w^2) of EDG's importance weights",
            "log_z": "log mean w (EDG), a stochastic lower bound; log_z_lower = mean log w, a lower bound",
            "metrics_reweighted": "the same metrics with the row's self-normalised importance weights (EDG, AIS)",
            "ais": "forward AIS (HMC kernel, step adapted per temperature) from scale*N(0, I), one chain per sample; "
            "with exact samples also reverse AIS (BDMC): log_z (lower) and log_z_upper bracket log Z; half the "
            "budget each way",
        },
        "samplers": rows,
    }


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return str(obj)


def _print(report: dict[str, Any], out: Path) -> None:
    say(f"target {report['target']} (d = {report['dim']}), budget {report['budget_evals']} evaluations")
    for name, row in report["samplers"].items():
        m = row["metrics"]
        extra = ""
        if "weights" in row:
            wsum = row["weights"]
            extra = f", rESS {fmt(wsum['ress'])}, log Z {fmt(wsum['log_z'])} (bound {fmt(wsum['log_z_lower'])})"
        elif "log_z" in row:
            upper = (
                f", upper {fmt(row['log_z_upper'])}" if "log_z_upper" in row else " (no upper bound: no exact samples)"
            )
            extra = f", log Z {fmt(row['log_z'])}{upper}"
        mmd = fmt(m["mmd_anice"]) if "mmd_anice" in m else "-"
        say(f"  {name:5s} evals {row['evals']:>10d}  {fmt(row['seconds'])} s  MMD(A-NICE-MC) {mmd}{extra}")
        if "warning" in row:
            say(f"        warning: {row['warning']}")
    say(f"wrote {out / 'report.json'}")


def _picture(target: Target, results: dict[str, dict[str, Any]], path: Path) -> None:
    """Samples of each sampler over the target's density contours (EDG: also its log-weight histogram)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = torch.cat([r["x"] for r in results.values()])
    lo, hi = torch.quantile(xs.float(), 0.005, 0), torch.quantile(xs.float(), 0.995, 0)
    pad = 0.1 * (hi - lo) + 1e-3
    g0, g1 = torch.linspace(lo[0] - pad[0], hi[0] + pad[0], 200), torch.linspace(lo[1] - pad[1], hi[1] + pad[1], 200)
    grid = torch.cartesian_prod(g0, g1)
    with torch.no_grad():
        u = target.energy(grid).reshape(200, 200)
    panels = len(results) + int("edg" in results)
    fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 4), squeeze=False)
    for ax, (name, res) in zip(axes[0], results.items()):
        ax.contour(g0.numpy(), g1.numpy(), torch.exp(-(u - u.min())).T.numpy(), levels=8, cmap="Greys")
        x = res["x"].numpy()
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4)
        ax.set_title(f"{name} ({res['evals']} evals)")
    if "edg" in results:
        lw = results["edg"]["log_w"].double()
        finite = lw[torch.isfinite(lw)]
        axes[0][-1].hist(finite.numpy(), bins=50)
        dropped = lw.numel() - finite.numel()
        axes[0][-1].set_title("EDG log weights" + (f" ({dropped} not finite, left out)" if dropped else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_boltzmann_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", help="a registered target (hebm plugins lists them), or PLUGIN:NAME")
    p.add_argument(
        "--checkpoint", metavar="PATH", help="instead of --target: a trained run's model at its smallest noise level"
    )
    p.add_argument("--sampler", choices=("edg", "hmc", "mala"), default="edg", help="primary sampler (default edg)")
    p.add_argument("--steps", type=int, help="EDG training steps (default 2000)")
    p.add_argument("--n", type=int, default=2000, metavar="N", help="samples per sampler (and reference samples)")
    p.add_argument("--budget", type=int, default=2_000_000, help="evaluations for --sampler hmc|mala")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/boltzmann-TARGET)")
    p.add_argument("--no-baselines", action="store_true", help="only the primary sampler")
    p.add_argument("--no-plot", action="store_true", help="no samples.png")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="edg.*, weights.*, train.*, target.* (e.g. target.data_dir=...), mcmc.* (n_leapfrog, step_size, "
        "adapt_frac); repeatable",
    )
