"""Overhead of hebm's annealed-Langevin sampler against a hand-written loop on the same network.

Both run K steps on the same batch, same noise schedule and step rule: the sampler through
``AnnealedLangevin.run`` (pytree handling, space, divergence check every step, progress bar
machinery), the bare loop as one would write it inline: forward, ``autograd.grad``, update.
Runs alternate in ABBA order (bare, sampler, sampler, bare, ...) so drift in machine load hits
both alike; the report holds every repeat and the median of the paired ratios sampler/bare per
network. Target: ratio <= 1.10.

    python benchmarks/sampler_overhead.py --out benchmarks/results/sampler_overhead.json
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
from pathlib import Path

import torch

from hebm_core.models import MLPEnergy
from hebm_core.samplers import AnnealedLangevin, geometric_sigmas

#: networks measured: name -> (data dim, hidden width, depth, batch)
CASES = {
    "toy-2d-mlp128": (2, 128, 3, 1024),
    "mlp-784-512": (784, 512, 3, 256),
}


def bare_loop(net: torch.nn.Module, x: torch.Tensor, sigmas: list[float], steps: int, eps: float) -> torch.Tensor:
    """The loop a user would write: the same maths with no library in between."""
    s_last = sigmas[-1]
    for s in sigmas:
        sig = torch.full((x.shape[0],), s, device=x.device)
        alpha = eps * (s / s_last) ** 2
        c = math.sqrt(2 * alpha)
        for _ in range(steps):
            x = x.detach().requires_grad_(True)
            g = torch.autograd.grad(net(x, sig).sum(), x)[0]
            x = x - alpha * g + c * torch.randn_like(x)
    return x.detach()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(name: str, device: torch.device, k: int, repeats: int) -> dict:
    dim, hidden, depth, batch = CASES[name]
    torch.manual_seed(0)
    net = MLPEnergy(dim=dim, hidden=hidden, depth=depth, noise_conditional=True).to(device)
    n_sigmas = 10
    per_sigma = max(1, k // n_sigmas)
    sigmas = geometric_sigmas(1.0, 0.01, n_sigmas).tolist()
    eps = 2e-5
    sampler = AnnealedLangevin(sigmas, steps_per_sigma=per_sigma, eps=eps, denoise=False, progress=False)
    x0 = torch.randn(batch, dim, device=device)

    def run_bare() -> None:
        bare_loop(net, x0, sigmas, per_sigma, eps)

    def run_sampler() -> None:
        sampler.run(net, x0)

    for fn in (run_bare, run_sampler):  # warm-up: allocator, kernels, autograd caches
        fn()
    times = {"bare": [], "sampler": []}
    pair = (("bare", run_bare), ("sampler", run_sampler))
    for r in range(repeats):
        for label, fn in pair if r % 2 == 0 else pair[::-1]:  # ABBA order: drift in machine load cancels
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            times[label].append(time.perf_counter() - t)
    ratios = [s / b for s, b in zip(times["sampler"], times["bare"])]
    steps = per_sigma * n_sigmas
    return {
        "network": {
            "dim": dim,
            "hidden": hidden,
            "depth": depth,
            "parameters": sum(p.numel() for p in net.parameters()),
        },
        "batch": batch,
        "steps": steps,
        "bare_s": times["bare"],
        "sampler_s": times["sampler"],
        "median_bare_s": statistics.median(times["bare"]),
        "median_sampler_s": statistics.median(times["sampler"]),
        "ratio_median": statistics.median(ratios),
        "ratio_of_medians": statistics.median(times["sampler"]) / statistics.median(times["bare"]),
        "sampler_steps_per_s": steps / statistics.median(times["sampler"]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=500, help="annealed-Langevin steps K per run (10 noise levels)")
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--target", type=float, default=1.10)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/sampler_overhead.json"))
    args = p.parse_args(argv)
    device = torch.device(args.device)
    results = {name: measure(name, device, args.steps, args.repeats) for name in args.cases}
    report = {
        "benchmark": "sampler_overhead",
        "what": "AnnealedLangevin.run vs a bare forward+autograd.grad+update loop, same network, batch, schedule",
        "target_ratio": args.target,
        "meets_target": all(r["ratio_median"] <= args.target for r in results.values()),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out.parent, delete=False, suffix=".tmp") as f:
        json.dump(report, f, indent=2)
    os.replace(f.name, args.out)
    for name, r in results.items():
        print(
            f"{name:>16}: bare {r['median_bare_s']:.3f}s  sampler {r['median_sampler_s']:.3f}s  "
            f"ratio {r['ratio_median']:.3f}  ({r['steps']} steps, batch {r['batch']})"
        )
    print(f"target <= {args.target}: {'met' if report['meets_target'] else 'NOT met'}; report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
