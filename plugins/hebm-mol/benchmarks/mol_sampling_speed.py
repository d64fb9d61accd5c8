"""Molecules per second of hebm-mol's sampler at GDSS's network size and step count.

GDSS's public QM9 model has 32,389 parameters and samples with 1000 predictor-corrector steps
(../shared/REFERENCE.md: 3.58 molecules/s on these 2-core machines, 8,000 molecules in one batch).
This script runs hebm-mol's EDP-GNN energy (≈ 29k parameters by default) through the same
``SamplingPlan.draw`` path ``hebm run`` uses, with annealed Langevin at ``--steps`` total steps
(``n_sigmas × steps_per_sigma``), chains in chunks of ``--batch``, and writes a JSON report.

Given ``--checkpoint`` (a trained QM9 run) it samples that model and also reports validity without
correction (fraction of all generated graphs RDKit sanitises), so speed and quality are read
together; without one it times an untrained model of the same size (speed only).

    python plugins/hebm-mol/benchmarks/mol_sampling_speed.py --checkpoint runs/qm9_cpu/hybrid/checkpoint.pt \
        --n 2000 --steps 1000 --out benchmarks/results/mol_sampling_speed.json
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys

import torch
from hebm_mol import DEFAULT_CONFIG
from hebm_mol.graph import graphs_to_mols
from hebm_mol.metrics import is_valid

from hebm_core.config import ConfigError, SamplerConfig
from hebm_core.runs import SamplingPlan, build, environment, load_run, write_json
from hebm_core.training import resolve_device

GDSS_REFERENCE = {
    "molecules_per_s": 3.58,
    "validity_wo_correction": 0.9518,
    "parameters": 32389,
    "steps": 1000,
    "source": "../shared/REFERENCE.md (GDSS public QM9 model, 2 CPU cores, 8,000 molecules in one batch)",
}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="trained run to sample (default: untrained model, speed only)")
    p.add_argument("--n", type=int, default=2000, help="molecules to draw")
    p.add_argument("--steps", type=int, default=1000, help="total Langevin steps")
    p.add_argument("--n-sigmas", type=int, default=20)
    p.add_argument("--batch", type=int, default=500, help="chains per chunk")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--hidden", type=int, help="untrained model only: node width (default: the plugin's)")
    p.add_argument("--edge-hidden", type=int, help="untrained model only: edge-network width")
    p.add_argument("--out", default="benchmarks/results/mol_sampling_speed.json")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps % args.n_sigmas:
        p.error("--steps must be a multiple of --n-sigmas")

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        p.error(str(exc))
    if args.checkpoint:
        exp, model = load_run(args.checkpoint, args.device)
    else:
        cfg = copy.deepcopy(DEFAULT_CONFIG)
        if args.hidden:
            cfg["model"]["hidden"] = args.hidden
        if args.edge_hidden:
            cfg["model"]["edge_hidden"] = args.edge_hidden
        exp = build(cfg)
        model = exp.model.to(device)
    sampler = exp.config.sampler.to_dict()
    if sampler["name"] != "annealed_langevin":
        p.error(f"the run samples with {sampler['name']!r}; this benchmark times annealed_langevin")
    sampler.update(n_samples=args.n, batch_size=args.batch, steps_per_sigma=args.steps // args.n_sigmas)
    sigmas = exp.training_sigmas
    if sigmas is not None and len(sigmas) != args.n_sigmas:
        hi, lo = float(sigmas[0]), float(sigmas[-1])
        sampler["sigmas"] = torch.logspace(
            torch.log10(torch.tensor(hi)), torch.log10(torch.tensor(lo)), args.n_sigmas
        ).tolist()
    try:
        plan = SamplingPlan.build(exp, SamplerConfig.from_dict(sampler))
    except ConfigError as exc:
        p.error(str(exc))
    samples, info = plan.draw(model, exp)
    params = sum(q.numel() for q in model.parameters())
    mol_s = info["samples_per_s"]
    out = {
        **environment(),
        "device": info["device"],
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "checkpoint": args.checkpoint,
        "dataset": exp.bundle.info.get("name"),
        "parameters": params,
        "n_molecules": args.n,
        "steps": args.steps,
        "chunk": args.batch,
        "wall_time_s": info["wall_time_s"],
        "seconds_per_step": round(info["wall_time_s"] / args.steps, 4),
        "molecules_per_s": mol_s,
        "speedup_vs_gdss": round(mol_s / GDSS_REFERENCE["molecules_per_s"], 2) if mol_s else None,
        "gdss_reference": GDSS_REFERENCE,
    }
    if args.checkpoint:
        mols = graphs_to_mols(samples, exp.bundle.extras["spec"])
        out["validity_wo_correction"] = sum(is_valid(m) for m in mols) / len(mols)
    write_json(args.out, out)
    print(json.dumps({k: out[k] for k in ("parameters", "steps", "molecules_per_s", "speedup_vs_gdss")}))
    if "validity_wo_correction" in out:
        print(f"validity without correction: {out['validity_wo_correction']:.4f}")
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
