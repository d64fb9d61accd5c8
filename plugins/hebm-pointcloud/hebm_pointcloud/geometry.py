"""Point-cloud geometry in plain torch (no pytorch3d): kNN graphs, Chamfer distances, Laplacians.

Everything is batched over clouds ``[B, N, 3]``, device-agnostic, and chunked so that the
``[chunk, N, M]`` distance blocks stay within ``max_elements`` numbers: small blocks that stay in
cache on CPU, large ones on CUDA.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_clouds", "knn_indices", "laplacian", "laplacian_vectors", "chamfer", "chamfer_matrix"]

#: distance-block budget (numbers) per chunk: 2**25 floats = 128 MiB
MAX_ELEMENTS = 2**25
#: the budget on CPU: 2**18 floats = 1 MiB, so the top-k and min passes read their block from
#: cache (timed against 128 MiB blocks by benchmarks/statistic_speed.py)
CPU_ELEMENTS = 2**18


def check_clouds(x: Tensor, what: str = "point clouds") -> Tensor:
    """``x`` as ``[B, N, 3]`` (a single ``[N, 3]`` cloud gets a batch dim); anything else is a ValueError."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{what} must be a torch.Tensor [B, N, 3], got {type(x).__name__}")
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3 or x.shape[-1] != 3:
        raise ValueError(f"{what} must have shape [B, N, 3] (or [N, 3]), got {tuple(x.shape)}")
    return x


def _chunk(n_rows: int, per_row: int, max_elements: int | None, device: torch.device) -> int:
    if max_elements is None:
        max_elements = CPU_ELEMENTS if device.type == "cpu" else MAX_ELEMENTS
    return max(1, min(n_rows, max_elements // max(per_row, 1)))


def _sq_distances(a: Tensor, b: Tensor, row_norms: bool = True) -> Tensor:
    """Squared distances ``[B, N, M]`` between ``a`` ``[B, N, 3]`` and ``b`` ``[B, M, 3]`` as
    ``‖a‖² + ‖b‖² − 2·a·b`` (one batched product, no square roots), after moving each pair by
    ``a``'s centroid so that an offset costs no precision.
    ``row_norms=False`` leaves out ``‖a_i‖²``, constant along a row, for callers that only rank
    a row's entries."""
    o = a.mean(-2, keepdim=True)
    a, b = a - o, b - o
    base = b.pow(2).sum(-1).unsqueeze(-2).expand(*a.shape[:-1], b.shape[-2])
    if row_norms:
        base = base + a.pow(2).sum(-1).unsqueeze(-1)
    d = torch.baddbmm(base, a, b.transpose(-1, -2), alpha=-2)
    return d.clamp_min_(0) if row_norms else d


@torch.no_grad()
def knn_indices(x: Tensor, k: int, max_elements: int | None = None) -> Tensor:
    """Indices ``[B, N, k]`` of each point's ``k`` nearest other points (itself excluded), sorted
    nearest first.

    Computed without gradient: callers hold the graph fixed and differentiate through the gathered
    coordinates only. Ranks by squared distances from one batched product of the centred clouds
    rather than by ``cdist``, which also takes square roots and, uncentred, loses the neighbours
    of a cloud far from the origin. Blocks hold at most ``max_elements`` numbers (default:
    :data:`CPU_ELEMENTS` on CPU, which keeps the top-k pass in cache, :data:`MAX_ELEMENTS` elsewhere).
    """
    x = check_clouds(x)
    b, n, _ = x.shape
    if not 1 <= k < n:
        raise ValueError(f"kNN needs 1 <= k < number of points, got k={k} for {n} points")
    out = torch.empty(b, n, k, dtype=torch.long, device=x.device)
    step = _chunk(b, n * n, max_elements, x.device)
    for s in range(0, b, step):
        xb = x[s : s + step].detach()
        d = _sq_distances(xb, xb, row_norms=False)
        d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
        out[s : s + step] = d.topk(k, dim=-1, largest=False).indices
    return out


def gather_neighbours(x: Tensor, idx: Tensor) -> Tensor:
    """``x[b, idx[b, i, j]]``: ``[B, N, k, 3]`` (differentiable in ``x``)."""
    b, n, k = idx.shape
    flat = idx.reshape(b, n * k, 1).expand(-1, -1, x.shape[-1])
    return torch.gather(x, 1, flat).reshape(b, n, k, x.shape[-1])


def laplacian_vectors(x: Tensor, idx: Tensor) -> Tensor:
    """``x_i − mean_{j∈idx(i)} x_j`` per point, ``[B, N, 3]``: the uniform (umbrella) Laplacian."""
    return x - gather_neighbours(x, idx).mean(2)


def laplacian(x: Tensor, k: int = 8, idx: Tensor | None = None) -> Tensor:
    """Uniform graph Laplacian energy per cloud: ``mean_i ‖x_i − mean_{j∈kNN(i)} x_j‖²``, shape ``[B]``.

    The kNN graph is rebuilt from ``x`` (or taken from ``idx``) without gradient and held fixed, so
    the gradient is that of a fixed quadratic form: ``∇ = (2/N) Lᵀ L x`` with ``L = I − W``.
    """
    x = check_clouds(x)
    if idx is None:
        idx = knn_indices(x, k)
    return laplacian_vectors(x, idx).pow(2).sum(-1).mean(-1)


def _nn_sq(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Squared nearest-neighbour distances a→b ``[..., N]`` and b→a ``[..., M]`` for paired batches."""
    d = _sq_distances(a, b)
    return d.min(-1).values, d.min(-2).values


def chamfer(a: Tensor, b: Tensor, max_elements: int | None = None) -> Tensor:
    """Chamfer distance of paired clouds ``a[i]``, ``b[i]`` (PointFlow convention), shape ``[B]``.

    ``CD(A, B) = mean_{a∈A} min_b ‖a−b‖² + mean_{b∈B} min_a ‖a−b‖²`` (squared Euclidean, each
    direction averaged over its points, the two directions summed).
    """
    a, b = check_clouds(a), check_clouds(b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"chamfer pairs clouds: batch sizes {a.shape[0]} and {b.shape[0]} differ")
    out = []
    step = _chunk(a.shape[0], a.shape[1] * b.shape[1], max_elements, a.device)
    for s in range(0, a.shape[0], step):
        da, db = _nn_sq(a[s : s + step], b[s : s + step])
        out.append(da.mean(-1) + db.mean(-1))
    return torch.cat(out)


@torch.no_grad()
def chamfer_matrix(a: Tensor, b: Tensor, max_elements: int | None = None) -> Tensor:
    """All-pairs Chamfer distances ``[len(a), len(b)]`` (see :func:`chamfer`), computed in blocks."""
    a, b = check_clouds(a), check_clouds(b)
    na, nb = a.shape[0], b.shape[0]
    out = torch.empty(na, nb, dtype=torch.float64, device=a.device)
    per_pair = a.shape[1] * b.shape[1]
    cols = _chunk(nb, per_pair, max_elements, a.device)
    for i in range(na):
        for s in range(0, nb, cols):
            bb = b[s : s + cols]
            aa = a[i].unsqueeze(0).expand(bb.shape[0], -1, -1)
            da, db = _nn_sq(aa, bb)
            out[i, s : s + cols] = (da.mean(-1) + db.mean(-1)).double()
    return out
