"""Validity, diversity and valency ΔT of a trained QM9 model as η of the valency statistic varies.

η trades chemistry against diversity: a more negative η removes more over-valent atoms (validity
up, ΔT down) and pulls samples towards sparser, less varied molecules (novelty down, FCD up).
This script samples one trained network at several η with the same seed and sampler (the run's
``[sampler]``), scores each set with the GDSS metrics, and writes a JSON report and a plot, so the
trade-off behind the calibrated η of ``hebm compare`` can be read off.

The network is the checkpoint's (its own η, if any, is replaced); the statistic is the run's
``valency`` if it trained with one, else ``valency`` with the ``excess`` component.

    python plugins/hebm-mol/benchmarks/mol_eta_sweep.py --checkpoint runs/qm9_cpu/hybrid/checkpoint.pt \
        --etas 0 -2 -4 -8 -16 --n 1000 --out benchmarks/results/mol_eta_sweep.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from hebm_mol.evaluation import MoleculeMetrics
from hebm_mol.statistics import Valency

from hebm_core import HybridEnergy
from hebm_core.config import SamplerConfig
from hebm_core.runs import SamplingPlan, environment, load_run, write_json


def plot(rows: list[dict], path: Path) -> Path | None:
    """Validity, novelty and FCD against η, next to ΔT (matplotlib if installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    eta = [r["eta"] for r in rows]

    def col(key: str, scale: float = 1.0) -> list[float]:  # an undefined metric (None) is a gap in the line
        return [scale * r[key] if r.get(key) is not None else float("nan") for r in rows]

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(eta, col("validity", 100), "o-", label="validity")
    axes[0].plot(eta, col("novelty", 100), "s-", label="novelty")
    axes[0].plot(eta, col("uniqueness", 100), "^-", label="uniqueness")
    axes[0].set_ylabel("%")
    axes[0].legend()
    axes[1].plot(eta, [r["delta_t"] for r in rows], "o-")
    axes[1].set_ylabel("valency ΔT (excess)")
    axes[2].plot(eta, col("fcd"), "o-")
    axes[2].set_ylabel("FCD against test")
    for ax in axes:
        ax.set_xlabel("η")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a trained QM9 run (vanilla or hybrid)")
    p.add_argument("--etas", type=float, nargs="+", default=[0.0, -2.0, -4.0, -8.0, -16.0])
    p.add_argument("--n", type=int, default=1000, help="molecules per η")
    p.add_argument("--nspdk", action="store_true", help="also NSPDK MMD against test (slow)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="benchmarks/results/mol_eta_sweep.json")
    args = p.parse_args(argv)

    exp, model = load_run(args.checkpoint, args.device)
    stats = [s for s in getattr(model, "statistics", []) if isinstance(s, Valency)]
    stat = stats[0] if stats else Valency(exp.bundle.extras["spec"])
    if len(stat.component_names) != 1:
        p.error(f"the sweep sets one η; the run's valency has components {list(stat.component_names)}")
    if isinstance(model, HybridEnergy):  # keep how the run's hybrid scales and evaluates its term
        base, sigma_power, sigma_ref = model.base, model.sigma_power, model.sigma_ref
        powers = {stat.name: model.sigma_powers[stat.name]} if stat.name in model.sigma_powers else {}
        denoised = model.denoised
    else:
        base, sigma_power, sigma_ref, powers, denoised = model, 0.0, 1.0, {}, False
    hybrid = HybridEnergy(
        base,
        [stat],
        example=exp.example,
        sigma_power=sigma_power,
        sigma_ref=sigma_ref,
        sigma_powers=powers,
        denoised=denoised,
    )
    # the run's [sampler], without its progress bar
    plan = SamplingPlan.build(exp, SamplerConfig.from_dict({**exp.config.sampler.to_dict(), "progress": False}))
    with torch.no_grad():
        data_t = float(stat(exp.reference).double().mean())
    rows = []
    for eta in args.etas:
        hybrid.load_eta(torch.tensor([eta]))
        t0 = time.perf_counter()
        samples, info = plan.draw(hybrid, exp, n=args.n)
        metric = MoleculeMetrics(exp.bundle, correct=False, nspdk=args.nspdk, fcd=True)
        metric.update(samples)
        scores = metric.compute()
        with torch.no_grad():
            model_t = float(stat(samples).double().mean())
        row = {
            "eta": eta,
            "delta_t": abs(model_t - data_t),
            "model_t": model_t,
            # a metric without enough valid molecules to be defined is left out by the metric: null here
            **dict.fromkeys(("uniqueness", "novelty", "fcd", *(("nspdk_mmd",) if args.nspdk else ()))),
            **{k: v for k, v in scores.items() if not k.startswith("n_")},
            "molecules_per_s": info["samples_per_s"],
            "wall_time_s": round(time.perf_counter() - t0, 2),
        }
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    if rows and rows[0]["eta"] == 0.0 and rows[0]["delta_t"] > 0:
        for r in rows:
            r["delta_t_reduction_pct"] = round(100 * (rows[0]["delta_t"] - r["delta_t"]) / rows[0]["delta_t"], 2)
    out = {
        **environment(),
        "checkpoint": args.checkpoint,
        "statistic": {"name": stat.name, "components": list(stat.component_names)},
        "data_t": data_t,
        "n_molecules": args.n,
        "sampler": plan.config.to_dict(),
        "protocol": MoleculeMetrics.describe()["protocol"],
        "rows": rows,
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    picture = plot(rows, out_path.with_suffix(".png"))
    out["picture"] = str(picture) if picture else None
    write_json(out_path, out)
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
