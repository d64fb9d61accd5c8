"""Cost of one hybrid score evaluation on point clouds: the plugin's kernels against plain torch.

A sampling or calibration step of a point-cloud hybrid evaluates the set network and every
statistic, forward and backward. This times each part on the shipped configs' batches, in one
run, side by side with the plain formulas the plugin used before (``cdist`` + ``topk`` for the
kNN graph, autograd through the Gaussian kernels for D2, ``cdist`` in 128 MiB blocks for the
Chamfer matrix, exact EMD matrices (POT) on one thread rather than ``torch.get_num_threads()``),
and checks that both give the same values and gradients. Runs alternate in ABBA order so that
drift in machine load hits both alike; the report keeps every repeat and the medians.

    python plugins/hebm-pointcloud/benchmarks/statistic_speed.py --out benchmarks/results/statistic_speed.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hebm_pointcloud.geometry import MAX_ELEMENTS, chamfer_matrix, gather_neighbours, knn_indices
from hebm_pointcloud.metrics import emd_matrix
from hebm_pointcloud.model import SetEnergy
from hebm_pointcloud.statistics import (
    d2_statistic,
    device_constant,
    pair_partners,
    shape_laplacian_statistic,
    size_statistic,
)
from torch import Tensor

from hebm_core import HybridEnergy
from hebm_core.runs import environment, write_json

#: batches measured: name -> (clouds, points, hidden, depth); the configs' calibration batches
CASES = {
    "primitives": (64, 256, 64, 2),
    "shapenet": (64, 512, 64, 2),
    "gpu": (128, 2048, 256, 4),
}


def plain_knn(x: Tensor, k: int) -> Tensor:
    """The kNN as the plugin computed it before: ``cdist`` and ``topk`` over 128 MiB blocks."""
    out = torch.empty(*x.shape[:2], k, dtype=torch.long, device=x.device)
    step = max(1, MAX_ELEMENTS // x.shape[1] ** 2)
    for s in range(0, x.shape[0], step):
        d = torch.cdist(x[s : s + step], x[s : s + step])
        d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
        out[s : s + step] = d.topk(k, dim=-1, largest=False).indices
    return out


def plain_laplacian_shape(x: Tensor, k: int = 8, eps: float = 1e-3) -> Tensor:
    """``laplacian_shape`` with :func:`plain_knn`."""
    with torch.no_grad():
        idx = plain_knn(x.detach(), k)
    sq = (x - gather_neighbours(x, idx).mean(2)).pow(2).sum(-1)
    size = (x - x.mean(1, keepdim=True)).pow(2).sum(-1).mean(-1, keepdim=True)
    return (sq / (size + eps**2)).mean(-1, keepdim=True)


def plain_d2(x: Tensor, stat) -> Tensor:
    """D2 with autograd through every step of the kernel."""
    partner = pair_partners(x.shape[1], stat.partners, x.device)
    d = ((x.unsqueeze(2) - x[:, partner]).pow(2).sum(-1) + 1e-12).sqrt()
    c = device_constant(tuple(stat.centres), x.dtype, x.device)
    return torch.exp(-(d.unsqueeze(-1) - c).pow(2) / (2 * stat.bandwidth**2)).mean((1, 2))


def plain_chamfer_matrix(a: Tensor, b: Tensor) -> Tensor:
    """All-pairs Chamfer with ``cdist`` over 128 MiB blocks."""
    out = torch.empty(len(a), len(b), dtype=torch.float64, device=a.device)
    cols = max(1, MAX_ELEMENTS // (a.shape[1] * b.shape[1]))
    for i in range(len(a)):
        for s in range(0, len(b), cols):
            d = torch.cdist(a[i].expand(len(b[s : s + cols]), -1, -1), b[s : s + cols]).pow(2)
            out[i, s : s + cols] = (d.min(-1).values.mean(-1) + d.min(-2).values.mean(-1)).double()
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _score(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """``fn(x)`` and the gradient of its sum (a statistic's or energy's part of the score)."""
    x = x.detach().requires_grad_(True)
    value = fn(x)
    return value.detach(), torch.autograd.grad(value.sum(), x)[0]


def paired_times(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Each function ``repeats`` times, in ABBA order after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns.items())
    for r in range(repeats):
        for name, fn in order if r % 2 == 0 else order[::-1]:
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t)
    return times


def timed(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict:
    """:func:`paired_times` as a report row: every time, the medians and plain/plugin."""
    times = paired_times(fns, repeats, device)
    row: dict = {f"{k}_s": v for k, v in times.items()}
    row |= {f"median_{k}_s": statistics.median(v) for k, v in times.items()}
    if "plain" in times:
        row["speedup"] = row["median_plain_s"] / row["median_plugin_s"]
    return row


def _measure_geometry(x: Tensor, repeats: int, device: torch.device) -> dict[str, dict]:
    """The kNN graph, the metrics' Chamfer matrix and exact EMD on the clouds ``x``, plugin against plain."""
    b = len(x)
    out: dict[str, dict] = {}
    # the kNN graph alone; the same clouds far from the origin show what centring keeps
    ref = plain_knn(x, 8).sort(-1).values
    far = x + torch.tensor([1000.0, -1000.0, 500.0], device=device)

    def same(idx: Tensor) -> float:
        return (idx.sort(-1).values == ref).float().mean().item()

    out["knn_k8"] = timed({"plugin": lambda: knn_indices(x, 8), "plain": lambda: plain_knn(x, 8)}, repeats, device) | {
        "same_neighbour_fraction": same(knn_indices(x, 8)),
        "far_from_origin_same_fraction_plugin": same(knn_indices(far, 8)),
        "far_from_origin_same_fraction_plain": same(plain_knn(far, 8)),
    }
    # the metrics' Chamfer matrix: 32 x 64 clouds of this case's size (PointFlow's MMD/COV/1-NNA)
    a, c = x[:32].contiguous(), x[: min(64, b)].flip(1).contiguous()
    diff = (chamfer_matrix(a, c) - plain_chamfer_matrix(a, c)).abs().max().item()
    fns = {"plugin": lambda: chamfer_matrix(a, c), "plain": lambda: plain_chamfer_matrix(a, c)}
    out["chamfer_matrix_32x64"] = timed(fns, 2, device) | {"max_abs_value_diff": diff}
    # exact EMD (POT) on 12 x 12 clouds of this case's size: torch's thread count against one thread
    e1, e2 = x[:12].cpu(), x[12:24].cpu()
    fns = {"plugin": lambda: emd_matrix(e1, e2), "plain": lambda: emd_matrix(e1, e2, workers=1)}
    out["emd_matrix_12x12"] = timed(fns, 2, torch.device("cpu")) | {
        "threads": torch.get_num_threads(),
        "identical": bool(torch.equal(emd_matrix(e1, e2), emd_matrix(e1, e2, workers=1))),
    }
    return out


def measure(case: str, device: torch.device, repeats: int) -> dict:
    b, n, hidden, depth = CASES[case]
    g = torch.Generator().manual_seed(0)
    # a noisy sphere-ish cloud at roughly the data's scale: timings do not depend on the shape
    x = (torch.randn(b, n, 3, generator=g) * torch.tensor([0.6, 0.4, 0.5])).to(device)
    sigma = torch.full((b,), 0.05, device=device)
    net = SetEnergy(hidden=hidden, depth=depth, data_std=0.5).to(device)
    lap, size, d2 = shape_laplacian_statistic(8), size_statistic(), d2_statistic(max_distance=6.0)
    w = torch.linspace(-1.0, 1.0, 8, device=device)  # a weighted sum, as η·T, so every bin's gradient counts

    def hybrid(z: Tensor, lap_fn, d2_fn) -> Tensor:
        return net.energy(z, sigma) - 1e3 * lap_fn(z).sum(-1) - size(z).sum(-1) - d2_fn(z) @ w

    parts = {
        "network": (lambda z: net.energy(z, sigma), None),
        "laplacian_shape": (lap, plain_laplacian_shape),
        "d2": (lambda z: d2(z) @ w, lambda z: plain_d2(z, d2) @ w),
        "hybrid_energy": (
            lambda z: hybrid(z, lap, d2),
            lambda z: hybrid(z, plain_laplacian_shape, lambda y: plain_d2(y, d2)),
        ),
    }
    out: dict[str, dict] = {}
    for name, (fast, plain) in parts.items():
        if plain is None:
            out[name] = timed({"plugin": lambda f=fast: _score(f, x)}, repeats, device)
            continue
        (v1, g1), (v0, g0) = _score(fast, x), _score(plain, x)
        fns = {"plugin": lambda f=fast: _score(f, x), "plain": lambda f=plain: _score(f, x)}
        out[name] = timed(fns, repeats, device) | {
            "max_abs_value_diff": (v1 - v0).abs().max().item(),
            "max_rel_gradient_diff": (g1 - g0).abs().max().item() / (g0.abs().max().item() or 1.0),
        }
    # the whole hybrid score with its statistics at x and at the network's x̂ = x + σ² s ([hybrid] denoised)
    models = {}
    for key in ("at_x", "at_denoised_x"):
        models[key] = m = HybridEnergy(net, [lap, size, d2], example=x[:2], denoised=key == "at_denoised_x").eval()
        with torch.no_grad():
            m.eta["laplacian_shape"].fill_(-1e3)
            m.eta["size"].fill_(-1.0)
            m.eta["d2"].copy_(w)
    row = timed({k: lambda m=m: m.score(x, sigma) for k, m in models.items()}, repeats, device)
    s_x, s_hat = (m.score(x, sigma) for m in models.values())
    out["hybrid_score_denoised"] = row | {
        "cost_ratio": row["median_at_denoised_x_s"] / row["median_at_x_s"],
        "max_rel_score_diff": (s_hat - s_x).abs().max().item() / (s_x.abs().max().item() or 1.0),
    }
    out |= _measure_geometry(x, repeats, device)
    return {"clouds": b, "points": n, "hidden": hidden, "depth": depth, "parts": out}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="*", default=None, choices=list(CASES), help="default: all but gpu on CPU")
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/statistic_speed.json"))
    args = p.parse_args(argv)
    device = torch.device(args.device)
    cases = args.cases or [c for c in CASES if device.type == "cuda" or c != "gpu"]
    results = {}
    for case in cases:
        results[case] = r = measure(case, device, args.repeats)
        for name, row in r["parts"].items():
            medians = "  ".join(f"{k[7:-2]} {v * 1e3:8.1f} ms" for k, v in row.items() if k.startswith("median_"))
            ratio = f"  ×{row['speedup']:.2f}" if "speedup" in row else ""
            print(f"{case:>10} {name:>22}: {medians}{ratio}", flush=True)
    report = {
        "benchmark": "statistic_speed",
        "what": "forward + backward of a point-cloud hybrid's parts, plugin kernels vs the plain torch formulas",
        **environment(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "results": results,
    }
    write_json(args.out, report)
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
