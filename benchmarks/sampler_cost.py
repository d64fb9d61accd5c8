"""Per-step cost of every core sampler against a bare loop doing the same gradient evaluations.

For each sampler and network, a counting pass first records how many model evaluations the
sampler makes and on how many rows in all (MALA and HMC reuse the cached score: one evaluation per
new point; parallel tempering evaluates all replicas in one batch; NUTS evaluates only the chains
still building their trees). The bare loop then does exactly that many ``forward + autograd.grad``
calls, each on the sampler's mean rows per call, with a Langevin update in between: the cost of the
gradients alone, as one would write them inline. Runs alternate in ABBA order (bare, sampler,
sampler, bare, ...) so drift in machine load hits both alike; the report holds every repeat and the
median of the paired ratios sampler/bare. Target: ratio <= 1.10 for every sampler.

    python benchmarks/sampler_cost.py --out benchmarks/results/sampler_cost.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from hebm_core.models import MLPEnergy
from hebm_core.samplers import (
    HMC,
    MALA,
    NUTS,
    AnnealedLangevin,
    Langevin,
    ParallelTempering,
    PrecondMALA,
    Sampler,
    UnderdampedLangevin,
    geometric_sigmas,
)

#: networks measured: name -> (data dim, hidden width, depth, batch, gradient evaluations per run)
CASES = {
    "toy-2d-mlp128": (2, 128, 3, 1024, 200),
    "mlp-784-512": (784, 512, 3, 256, 45),
}

SIGMA = 0.1  # the noise level the noise-conditional network is evaluated at


def make_samplers(k: int) -> dict[str, Sampler]:
    """Every core sampler, configured to make about ``k`` model evaluations per chain, fixed step sizes."""
    common = {"progress": False}
    return {
        "langevin": Langevin(step_size=1e-4, n_steps=k, **common),
        "annealed_langevin": AnnealedLangevin(
            geometric_sigmas(1.0, 0.01, 10).tolist(), steps_per_sigma=max(1, k // 10), eps=2e-5, denoise=False, **common
        ),
        "mala": MALA(step_size=1e-4, n_steps=k, min_acceptance=0, **common),
        "hmc": HMC(step_size=1e-3, n_leapfrog=5, n_steps=max(1, k // 5), min_acceptance=0, **common),
        "underdamped_langevin": UnderdampedLangevin(step_size=1e-2, n_steps=k, **common),
        "precond_mala": PrecondMALA(step_size=1e-4, n_steps=k, min_acceptance=0, **common),
        "parallel_tempering": ParallelTempering(
            step_size=1e-4, n_steps=max(1, k // 4), n_replicas=4, beta_min=0.1, min_acceptance=0, **common
        ),
        "nuts": NUTS(step_size=1e-2, n_steps=max(1, k // 15), max_depth=4, min_acceptance=0, **common),
    }


class _Counting(torch.nn.Module):
    """The network with a count of its calls and of the rows it evaluated (for the counting pass only)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.calls, self.rows = net, 0, 0

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        self.rows += x.shape[0]
        return self.net(x, sigma)


def bare_loop(net: torch.nn.Module, x: torch.Tensor, calls: int, eps: float = 1e-4) -> torch.Tensor:
    """``calls`` gradient evaluations on the batch ``x`` with a Langevin update between them."""
    sig = torch.full((x.shape[0],), SIGMA, device=x.device)
    c = math.sqrt(2 * eps)
    for _ in range(calls):
        x = x.detach().requires_grad_(True)
        g = torch.autograd.grad(net(x, sig).sum(), x)[0]
        x = x - eps * g + c * torch.randn_like(x)
    return x.detach()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _abba(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Wall-clock and CPU seconds of each function over ``repeats`` ABBA-ordered rounds (``<label>`` and
    ``<label>_cpu`` lists)."""
    for fn in fns.values():  # warm-up: allocator, kernels, autograd caches
        fn()
    times: dict[str, list[float]] = {k: [] for label in fns for k in (label, f"{label}_cpu")}
    pair = list(fns.items())
    for r in range(repeats):
        for label, fn in pair if r % 2 == 0 else pair[::-1]:  # ABBA order: drift in machine load cancels
            _sync(device)
            t, c = time.perf_counter(), time.process_time()
            fn()
            _sync(device)
            times[label].append(time.perf_counter() - t)
            times[f"{label}_cpu"].append(time.process_time() - c)
    return times


def measure(case: str, name: str, sampler: Sampler, device: torch.device, repeats: int) -> dict:
    dim, hidden, depth, batch, _ = CASES[case]
    torch.manual_seed(0)
    net = MLPEnergy(dim=dim, hidden=hidden, depth=depth, noise_conditional=True).to(device)
    x0 = torch.randn(batch, dim, device=device)
    sigma = None if isinstance(sampler, AnnealedLangevin) else SIGMA
    counting = _Counting(net)
    torch.manual_seed(1)
    sampler.run(counting, x0, sigma)
    calls, rows = counting.calls, counting.rows
    xb = torch.randn(max(1, round(rows / calls)), dim, device=device)

    def run_sampler() -> None:
        torch.manual_seed(1)  # the same trajectories (and NUTS trees) as in the counting pass
        sampler.run(net, x0, sigma)

    times = _abba({"bare": lambda: bare_loop(net, xb, calls), "sampler": run_sampler}, repeats, device)
    wall = statistics.median([s / b for s, b in zip(times["sampler"], times["bare"])])
    cpu = statistics.median([s / b for s, b in zip(times["sampler_cpu"], times["bare_cpu"])])
    steps = getattr(sampler, "n_steps", None) or len(sampler.sigmas) * sampler.steps_per_sigma
    med = statistics.median(times["sampler"])
    return {
        "steps": steps,
        "model_calls": calls,
        "rows_per_call": rows / calls,
        "grad_evals_per_chain_step": rows / batch / steps,
        **{f"{k}_s": v for k, v in times.items()},
        "median_bare_s": statistics.median(times["bare"]),
        "median_sampler_s": med,
        "sampler_ms_per_step": 1e3 * med / steps,
        "ratio_median": cpu if device.type == "cpu" else wall,
        "ratio_median_wall": wall,
        "ratio_median_cpu": cpu,
        "stats": {k: v for k, v in sampler.last_stats.items() if isinstance(v, (int, float))},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    p.add_argument("--samplers", nargs="*", default=None, help="default: all")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--target", type=float, default=1.10)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/sampler_cost.json"))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results: dict[str, dict] = {}
    for case in args.cases:
        samplers = make_samplers(CASES[case][4])
        names = args.samplers or list(samplers)
        results[case] = {}
        for name in names:
            r = results[case][name] = measure(case, name, samplers[name], device, args.repeats)
            print(
                f"{case:>14} {name:>20}: bare {r['median_bare_s']:.3f}s  sampler {r['median_sampler_s']:.3f}s  "
                f"ratio {r['ratio_median']:.3f} (wall {r['ratio_median_wall']:.3f})  "
                f"({r['steps']} steps, {r['grad_evals_per_chain_step']:.2f} grads/step)",
                flush=True,
            )
    dim_info = {c: dict(zip(("dim", "hidden", "depth", "batch", "grad_evals"), CASES[c])) for c in args.cases}
    report = {
        "benchmark": "sampler_cost",
        "what": (
            "each sampler run vs a bare forward+autograd.grad+update loop, same model calls and rows (CPU: CPU time)"
        ),
        "target_ratio": args.target,
        "meets_target": all(r["ratio_median"] <= args.target for rs in results.values() for r in rs.values()),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "cases": dim_info,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out.parent, delete=False, suffix=".tmp") as f:
        json.dump(report, f, indent=2)
    os.replace(f.name, args.out)
    print(f"target <= {args.target}: {'met' if report['meets_target'] else 'NOT met'}; report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
