"""Accuracy of log Z by forward AIS and by BDMC (forward + reverse AIS) on targets with a known log Z.

Two targets, both annealed from the broad base N(0, 3² I):

- ``gaussian50``: a 50-D rotated anisotropic Gaussian (standard deviations 0.5 to 2, a seeded random
  rotation, mean spread over [-1, 1]; the test-suite's ``anisotropic_gaussian(50)``);
- ``mixture10``: a 10-D mixture of two isotropic Gaussians 6 apart, a heavy narrow mode (weight 0.8,
  std 0.35) and a light broad one (weight 0.2, std 1). At intermediate temperatures the broad mode
  holds almost all the mass, so forward chains settle there and forward AIS misses the heavy mode:
  its estimate is low by about log(1/0.2) = 1.6 nats with a small error bar.

For each target, number of temperatures and seed, one :func:`~hebm_core.samplers.bdmc.bdmc` run
(HMC kernel, reverse chains from exact samples) records the error of each bound, the gap, each
side's bootstrap standard error and ESS, whether ``[lower, upper]`` (raw) and ``log_z_interval``
(widened by ``z`` standard errors) contain the true log Z, and whether a forward estimate that is
low by more than ``gap_tol`` came with a gap above ``gap_tol`` (and so a warning). The summary holds
per-cell coverage, errors and gaps, and the checks against the targets: coverage ≥ 95 %, the gap
closing as temperatures grow, every missed mode flagged, and |error| ≤ 0.1 nats on the Gaussian at
4,000 temperatures. Results are written after every run, so an interrupted run keeps what it did.

    OMP_NUM_THREADS=1 python benchmarks/ais_accuracy.py                      # default sizes
    OMP_NUM_THREADS=1 python benchmarks/ais_accuracy.py --temps 1000 --seeds 20 --out /tmp/quick.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from hebm_core.models import GaussianEnergy, GaussianMixtureEnergy
from hebm_core.samplers.ais import AIS
from hebm_core.samplers.bdmc import bdmc
from hebm_core.samplers.mh import HMC

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "ais_accuracy.json"


class ScoredMixture(GaussianMixtureEnergy):
    """The core mixture with its score in closed form: ``Σ_k r_k(x) (μ_k - x) / s_k²``."""

    def energy_and_score(self, x, sigma=None, create_graph=False):
        if create_graph:
            return super().energy_and_score(x, sigma, create_graph)
        with torch.no_grad():
            lp = self.component_log_prob(x)
            r = torch.softmax(lp, -1) / self.stds.pow(2)
            return -torch.logsumexp(lp, -1), r @ self.means - x * r.sum(-1, keepdim=True)


def anisotropic_gaussian(dim: int, seed: int = 0) -> GaussianEnergy:
    """Rotated Gaussian with stds log-spaced from 0.5 to 2 (as ``tests/_util.anisotropic_gaussian``)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
    stds = torch.logspace(-0.301, 0.301, dim)
    cov = q @ torch.diag(stds**2) @ q.T
    return GaussianEnergy(torch.linspace(-1, 1, dim), torch.linalg.inv(cov))


def unequal_mixture(dim: int = 10, sep: float = 6.0, heavy_std: float = 0.35, light_std: float = 1.0) -> ScoredMixture:
    means = torch.zeros(2, dim)
    means[0, 0], means[1, 0] = sep / 2, -sep / 2
    return ScoredMixture(means, torch.tensor([heavy_std, light_std]), torch.tensor([0.8, 0.2]))


def targets() -> dict[str, dict]:
    return {
        "gaussian50": {
            "energy": anisotropic_gaussian(50),
            "base": GaussianEnergy(torch.zeros(50), torch.eye(50) / 9.0),
            "about": "50-D rotated Gaussian, stds 0.5..2, mean linspace(-1, 1); base N(0, 9 I)",
        },
        "mixture10": {
            "energy": unequal_mixture(),
            "base": GaussianEnergy(torch.zeros(10), torch.eye(10) / 9.0),
            "about": "10-D 2-mode mixture: weight 0.8 std 0.35 at +3 e1, weight 0.2 std 1 at -3 e1; base N(0, 9 I)",
        },
    }


def one_run(name: str, t: dict, n_temps: int, seed: int, args: argparse.Namespace) -> dict:
    torch.manual_seed(10_000 * seed + n_temps)
    energy, base = t["energy"], t["base"]
    exact = float(energy.log_partition())
    ais = AIS(
        n_temps=n_temps,
        n_chains=args.chains,
        kernel=HMC(step_size=0.1, n_leapfrog=args.leapfrog),
        steps_per_temp=args.steps_per_temp,
        schedule=args.schedule,
    )
    t0 = time.perf_counter()
    res = bdmc(
        energy,
        base,
        ais,
        exact=energy.sample,
        generator=torch.Generator().manual_seed(seed),
        gap_tol=args.gap_tol,
        z=args.z,
    )
    wall = time.perf_counter() - t0
    lo, hi = res.log_z_interval
    err_lo, err_hi = res.log_z_lower - exact, res.log_z_upper - exact
    missed = err_lo < -args.gap_tol
    row = {
        "target": name,
        "n_temps": n_temps,
        "seed": seed,
        "log_z_true": exact,
        "log_z_lower": res.log_z_lower,
        "log_z_upper": res.log_z_upper,
        "err_lower": err_lo,
        "err_upper": err_hi,
        "gap": res.gap,
        "lower_stderr": res.log_z_lower_stderr,
        "upper_stderr": res.log_z_upper_stderr,
        "lower_ess": res.lower_ess,
        "upper_ess": res.upper_ess,
        "interval": [lo, hi],
        "covered_raw": res.log_z_lower <= exact <= res.log_z_upper,
        "covered_interval": lo <= exact <= hi,
        "forward_missed": missed,
        "miss_flagged": (res.gap > args.gap_tol and res.warning is not None) if missed else None,
        "warning": res.warning,
        "acceptance_forward": res.forward.acceptance,
        "wall_s": wall,
    }
    if isinstance(energy, GaussianMixtureEnergy):
        row["forward_chains_in_heavy_mode"] = int((energy.assign(res.forward.samples) == 0).sum())
    return row


#: widths (in standard errors) at which the summary also reports coverage
COVERAGE_Z = (0.0, 1.0, 2.0, 2.5, 3.0)


def _coverage(rows: list[dict], z: float) -> float:
    hit = [
        r["log_z_lower"] - z * r["lower_stderr"] <= r["log_z_true"] <= r["log_z_upper"] + z * r["upper_stderr"]
        for r in rows
    ]
    return sum(hit) / len(hit)


def summarise(rows: list[dict], gap_tol: float) -> dict:
    out: dict = {}
    for name in sorted({r["target"] for r in rows}):
        cells = {}
        mine = [r for r in rows if r["target"] == name]
        for n_temps in sorted({r["n_temps"] for r in mine}):
            rs = [r for r in mine if r["n_temps"] == n_temps]
            misses = [r for r in rs if r["forward_missed"]]
            cells[str(n_temps)] = {
                "runs": len(rs),
                "coverage_raw": sum(r["covered_raw"] for r in rs) / len(rs),
                "coverage_interval": sum(r["covered_interval"] for r in rs) / len(rs),
                "coverage_by_z": {str(z): _coverage(rs, z) for z in COVERAGE_Z},
                "err_lower_mean": statistics.fmean(r["err_lower"] for r in rs),
                "err_upper_mean": statistics.fmean(r["err_upper"] for r in rs),
                "abs_err_lower_max": max(abs(r["err_lower"]) for r in rs),
                "abs_err_upper_max": max(abs(r["err_upper"]) for r in rs),
                "gap_mean": statistics.fmean(r["gap"] for r in rs),
                "gap_median": statistics.median(r["gap"] for r in rs),
                "lower_stderr_mean": statistics.fmean(r["lower_stderr"] for r in rs),
                "upper_stderr_mean": statistics.fmean(r["upper_stderr"] for r in rs),
                "forward_misses": len(misses),
                "misses_flagged": sum(bool(r["miss_flagged"]) for r in misses),
                "warnings": sum(r["warning"] is not None for r in rs),
                "wall_s_mean": statistics.fmean(r["wall_s"] for r in rs),
            }
        gaps = [cells[k]["gap_mean"] for k in cells]
        all_rs = len(mine)
        misses = [r for r in mine if r["forward_missed"]]
        checks = {
            "coverage_by_z_all_temperatures": {str(z): _coverage(mine, z) for z in COVERAGE_Z},
            "coverage_interval_ge_95pct": sum(r["covered_interval"] for r in mine) / all_rs >= 0.95,
            "coverage_raw_ge_95pct": sum(r["covered_raw"] for r in mine) / all_rs >= 0.95,
            "gap_closes_with_temperatures": all(a > b for a, b in zip(gaps, gaps[1:])) and gaps[-1] <= gap_tol,
            "every_missed_mode_flagged": all(r["miss_flagged"] for r in misses),
        }
        if name == "gaussian50" and "4000" in cells:
            c = cells["4000"]
            checks["abs_err_le_0.1_at_4000"] = max(c["abs_err_lower_max"], c["abs_err_upper_max"]) <= 0.1
        out[name] = {"by_temperatures": cells, "checks": checks}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--targets", default="gaussian50,mixture10")
    p.add_argument("--temps", default="1000,4000,16000", help="comma-separated numbers of temperatures")
    p.add_argument("--seeds", default="10,10,4", help="seeds per number of temperatures (one value: all)")
    p.add_argument("--chains", type=int, default=256)
    p.add_argument("--leapfrog", type=int, default=5)
    p.add_argument("--steps-per-temp", type=int, default=1)
    p.add_argument("--schedule", default="sigmoid")
    p.add_argument("--gap-tol", type=float, default=0.5)
    p.add_argument("--z", type=float, default=2.0)
    args = p.parse_args(argv)
    temps = [int(v) for v in args.temps.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    if len(seeds) == 1:
        seeds *= len(temps)
    if len(seeds) != len(temps):
        p.error("--seeds takes one value or one per --temps entry")
    table = targets()
    names = args.targets.split(",")
    unknown = set(names) - set(table)
    if unknown:
        p.error(f"unknown targets {sorted(unknown)}; choose from {sorted(table)}")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    meta = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "kernel": f"HMC, {args.leapfrog} leapfrog steps, AIS defaults (step size adapted between temperatures "
        "towards acceptance 0.8, jittered +-50 %, reverse replays the forward step sizes)",
        "targets": {n: {"about": table[n]["about"], "log_z": float(table[n]["energy"].log_partition())} for n in names},
        "machine": {"python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform()},
        "threads": torch.get_num_threads(),
    }
    rows: list[dict] = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    for n_temps, n_seeds in zip(temps, seeds):
        for seed in range(n_seeds):
            for name in names:
                row = one_run(name, table[name], n_temps, seed, args)
                rows.append(row)
                print(
                    f"{name:10s} T={n_temps:6d} seed={seed:2d}: "
                    f"lower {row['err_lower']:+.3f} ± {row['lower_stderr']:.3f}"
                    f"  upper {row['err_upper']:+.3f} ± {row['upper_stderr']:.3f}  gap {row['gap']:+.3f}"
                    f"  covered raw/interval {row['covered_raw']:d}/{row['covered_interval']:d}  {row['wall_s']:.1f}s",
                    flush=True,
                )
                report = {**meta, "wall_s": time.perf_counter() - t_all, "summary": summarise(rows, args.gap_tol)}
                report["runs"] = rows
                tmp = args.out.with_suffix(".tmp")
                tmp.write_text(json.dumps(report, indent=1, default=float))
                tmp.replace(args.out)
    for name, s in report["summary"].items():
        print(name, json.dumps(s["checks"]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
