"""Point-cloud statistics. The Laplacian: how far each point sits from the centroid of its kNN neighbours.

On a smooth, evenly sampled surface a point is close to the mean of its neighbours (the uniform
Laplacian is ~0 on a plane); noise and ragged sampling make it large. One component per
neighbourhood size ``k`` (``ks=[8, 16, 32]`` gives three, each with its own η).

``laplacian_log`` averages ``log(‖x_i − mean_j x_j‖² + ε²)`` instead: its gradient scales like
``1/displacement``, as a score does, so one η acts alike at every noise level (the plain form's
gradient shrinks with the displacement, so at small σ its η-term is negligible next to the score).

``laplacian_scaled`` divides each ``‖L_i‖²`` by the mean squared distance to the same neighbours
(+ ε²): roughness relative to the local spacing. ``laplacian_shape`` divides the plain form by the
cloud's mean squared distance to its centroid (+ ε²): roughness relative to the shape's size. Both
are scale-free, so shrinking a cloud (which lowers the plain form by the scale²) leaves them
unchanged, and their gradient has no component along the cloud's dilation: a hybrid term built
on them smooths without the shrinking that uniform Laplacian smoothing causes.

``d2`` is a shape descriptor rather than a texture one: the distribution of distances between
point pairs (Osada et al.'s D2 shape distribution) as a kernel density at fixed distances, one
component each; matching it tilts the samples' proportions towards the data's.

``inertia`` is the cloud's second-moment tensor about its centroid (six components): its extent
along each axis and their couplings. On aligned data (primitives, ShapeNet) it shows an anisotropy
that every sample shares (too wide along one axis, too thin along another), and tilting by it
corrects that. No default uses it: at ``sigma_power = 2`` its term acts mostly at the last noise
levels, where it stretches shapes that are already formed instead of forming better ones.

Two companions: ``spacing`` (mean log nearest-neighbour distance over the size: how evenly the
points spread; the Laplacian alone rewards clumps) and ``size`` (the mean squared radius: with
``laplacian_shape`` it lets moment matching fix the scale too, and so the plain Laplacian).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from hebm_core.statistics import Statistic
from hebm_pointcloud import _checks as chk
from hebm_pointcloud.geometry import check_clouds, gather_neighbours, knn_indices

__all__ = [
    "LaplacianStatistic",
    "laplacian_statistic",
    "log_laplacian_statistic",
    "scaled_laplacian_statistic",
    "shape_laplacian_statistic",
    "SizeStatistic",
    "InertiaStatistic",
    "SpacingStatistic",
    "D2Statistic",
    "pair_partners",
    "device_constant",
    "RELATIVE",
    "TRANSFORMS",
    "STATISTICS",
]

#: the largest neighbourhood ``k`` / D2 ``partners`` / ``bins`` an option may ask for
MAX_K, MAX_PARTNERS, MAX_BINS = 1024, 4096, 1024


def _ks(k: object, ks: object) -> list[int]:
    """The neighbourhood sizes of a Laplacian factory: ``ks`` (a list) if given, else ``[k]``, checked."""
    if ks is None or (isinstance(ks, list | tuple) and not ks):
        return [chk.integer("k", k, 1, MAX_K)]
    if not isinstance(ks, list | tuple):
        raise ValueError(f"ks must be a list of neighbour counts, got {ks!r} ({type(ks).__name__})")
    if len(ks) > 32:
        raise ValueError(f"ks lists {len(ks)} neighbour counts; at most 32")
    out = [chk.integer("each entry of ks", v, 1, MAX_K) for v in ks]
    if len(set(out)) != len(out):
        raise ValueError(f"ks must be distinct neighbour counts, got {out}")
    return out


def _eps(eps: object) -> float:
    return chk.number("eps", eps, 0.0, 1e3, lo_open=True)


#: per-point transform of ‖L_i‖² (given ε) before averaging over points
TRANSFORMS: dict[str, Callable[[Tensor, float], Tensor]] = {
    "none": lambda sq, eps: sq,
    "log": lambda sq, eps: torch.log(sq + eps * eps),
}


def _spacing(x: Tensor, nb: Tensor) -> Tensor:
    """Each point's mean squared distance to its neighbours ``[B, N]``."""
    return (x.unsqueeze(2) - nb).pow(2).sum(-1).mean(-1)


def _size(x: Tensor) -> Tensor:
    """Each cloud's mean squared distance to its centroid ``[B, 1]``."""
    return (x - x.mean(1, keepdim=True)).pow(2).sum(-1).mean(-1, keepdim=True)


#: what each ``‖L_i‖²`` is measured relative to (divided by, + ε²): ``[B, N]`` or ``[B, 1]``
RELATIVE: dict[str, Callable[[Tensor, Tensor], Tensor] | None] = {
    "none": None,
    "spacing": _spacing,
    "size": lambda x, nb: _size(x),
}


class LaplacianStatistic(Statistic):
    """``T_k(x) = mean_i ‖x_i − mean_{j∈kNN_k(i)} x_j‖²`` per cloud, for each ``k`` in ``ks``: ``[B, len(ks)]``.

    ``relative="spacing"`` divides each point's term by ``mean_{j∈kNN_k(i)} ‖x_i − x_j‖² + ε²``,
    ``relative="size"`` by the cloud's ``mean_i ‖x_i − x̄‖² + ε²`` (both before ``transform``):
    either makes ``T`` invariant to the scale of the cloud.

    The graph is rebuilt from the current points at every call (under ``no_grad``) and held
    fixed for the gradient; the largest ``k`` is searched once and the smaller graphs are its
    prefixes (``topk`` returns neighbours sorted by distance).
    """

    def __init__(
        self,
        ks: Sequence[int] = (8,),
        name: str = "laplacian",
        transform: str = "none",
        eps: float = 1e-2,
        relative: str = "none",
    ) -> None:
        if transform not in TRANSFORMS:
            raise ValueError(f"laplacian: unknown transform {transform!r}; known: {', '.join(TRANSFORMS)}")
        if relative not in RELATIVE:
            raise ValueError(f"laplacian: unknown relative {relative!r}; known: {', '.join(RELATIVE)}")
        if eps <= 0:
            raise ValueError(f"laplacian: eps must be positive, got {eps}")
        self.transform, self.eps, self.relative = transform, float(eps), relative
        ks = [int(k) for k in ks]
        if not ks or any(k < 1 for k in ks) or len(set(ks)) != len(ks):
            raise ValueError(f"laplacian: ks must be distinct positive neighbour counts, got {ks}")
        self.ks = ks
        self.name = name
        self.dim = len(ks)
        self.component_names = [f"k{k}" for k in ks] if len(ks) > 1 else None

    def compute(self, x: Tensor) -> Tensor:
        x = check_clouds(x)
        idx = knn_indices(x, max(self.ks))
        f, rel = TRANSFORMS[self.transform], RELATIVE[self.relative]
        out = []
        for k in self.ks:
            nb = gather_neighbours(x, idx[..., :k])  # once: the Laplacian and a spacing divisor share it
            sq = (x - nb.mean(2)).pow(2).sum(-1)
            if rel is not None:
                sq = sq / (rel(x, nb) + self.eps**2)
            out.append(f(sq, self.eps).mean(-1))
        return torch.stack(out, -1)

    def __repr__(self) -> str:
        rel = f", relative={self.relative!r}" if self.relative != "none" else ""
        return f"LaplacianStatistic(ks={self.ks}, transform={self.transform!r}{rel})"


def laplacian_statistic(k: int = 8, ks: list[int] | None = None) -> LaplacianStatistic:
    """The Laplacian statistic at one neighbourhood size ``k``, or one component per entry of ``ks``."""
    return LaplacianStatistic(_ks(k, ks))


def log_laplacian_statistic(k: int = 8, ks: list[int] | None = None, eps: float = 1e-2) -> LaplacianStatistic:
    """``mean_i log(‖x_i − mean_{kNN} x_j‖² + ε²)``: the Laplacian with a score-like, scale-free gradient."""
    return LaplacianStatistic(_ks(k, ks), name="laplacian_log", transform="log", eps=_eps(eps))


def scaled_laplacian_statistic(k: int = 8, ks: list[int] | None = None, eps: float = 1e-3) -> LaplacianStatistic:
    """``mean_i ‖x_i − mean_{kNN} x_j‖² / (mean_{kNN} ‖x_i − x_j‖² + ε²)``: the Laplacian relative to the spacing."""
    return LaplacianStatistic(_ks(k, ks), name="laplacian_scaled", eps=_eps(eps), relative="spacing")


def shape_laplacian_statistic(k: int = 8, ks: list[int] | None = None, eps: float = 1e-3) -> LaplacianStatistic:
    """``mean_i ‖x_i − mean_{kNN} x_j‖² / (mean_i ‖x_i − x̄‖² + ε²)``: the Laplacian relative to the shape's size."""
    return LaplacianStatistic(_ks(k, ks), name="laplacian_shape", eps=_eps(eps), relative="size")


class SpacingStatistic(Statistic):
    """``T(x) = mean_i log(d_i² / s² + ε²)``: how evenly the points spread over the shape.

    ``d_i`` is the distance from point ``i`` to its nearest other point and ``s²`` the cloud's mean
    squared distance to its centroid, so ``T`` is scale-free. Up to constants it is the
    Kozachenko–Leonenko estimate of the entropy of the points on the surface: clumps lower it, an
    even (blue-noise, Poisson-disk) spread raises it. The Laplacian rewards clumping (a cluster of
    ``k + 1`` coincident points has zero Laplacian), so a hybrid term on the Laplacian alone
    tightens points into clumps; this component, with its own η, holds the spread at the data's.
    The nearest-neighbour graph is rebuilt at every call and held fixed for the gradient.
    """

    def __init__(self, name: str = "spacing", eps: float = 1e-3) -> None:
        if eps <= 0:
            raise ValueError(f"spacing: eps must be positive, got {eps}")
        self.name, self.eps, self.dim = name, float(eps), 1

    def compute(self, x: Tensor) -> Tensor:
        x = check_clouds(x)
        nearest = gather_neighbours(x, knn_indices(x, 1))[:, :, 0]
        d2 = (x - nearest).pow(2).sum(-1)
        return torch.log(d2 / _size(x) + self.eps**2).mean(-1, keepdim=True)

    def __repr__(self) -> str:
        return f"SpacingStatistic(eps={self.eps})"


def spacing_statistic(eps: float = 1e-3) -> SpacingStatistic:
    """``mean_i log(d_i² / s² + ε²)``: nearest-neighbour spread relative to the shape's size."""
    return SpacingStatistic(eps=_eps(eps))


class SizeStatistic(Statistic):
    """``T(x) = mean_i ‖x_i − x̄‖²``: the cloud's mean squared radius.

    Paired with a size-relative statistic (``laplacian_shape``, ``spacing``), whose gradients have
    no dilation component, it lets moment matching set the samples' scale too: the product of
    the two then matches the plain, size-dependent statistic.
    """

    name, dim = "size", 1

    def compute(self, x: Tensor) -> Tensor:
        return _size(check_clouds(x))

    def __repr__(self) -> str:
        return "SizeStatistic()"


def size_statistic() -> SizeStatistic:
    """``mean_i ‖x_i − x̄‖²``: the mean squared distance to the centroid."""
    return SizeStatistic()


class InertiaStatistic(Statistic):
    """``T(x) = mean_i (x_i − x̄)(x_i − x̄)ᵀ``, upper triangle ``[B, 6]`` (xx, xy, xz, yy, yz, zz).

    The cloud's second moments about its centroid: its squared extent along each axis and how they
    couple. Their trace is ``size``, so use one or the other. A linear tilt by them is a Gaussian
    potential on the centred points, which stretches or squeezes shapes along axes: it fixes an
    anisotropy that every sample shares (samples too wide in x, too thin in y), which ``size``
    (the trace) and the rotation-invariant ``d2`` cannot see.
    """

    name, dim = "inertia", 6
    component_names = ["xx", "xy", "xz", "yy", "yz", "zz"]

    def compute(self, x: Tensor) -> Tensor:
        c = check_clouds(x) - x.mean(1, keepdim=True)
        m = torch.einsum("bni,bnj->bij", c, c) / x.shape[1]
        i, j = _UPPER
        return m[:, i, j]

    def __repr__(self) -> str:
        return "InertiaStatistic()"


_UPPER = ((0, 0, 0, 1, 1, 2), (0, 1, 2, 1, 2, 2))


def inertia_statistic() -> InertiaStatistic:
    """``mean_i (x_i − x̄)(x_i − x̄)ᵀ``: the six second moments about the centroid."""
    return InertiaStatistic()


@functools.lru_cache(maxsize=32)
def pair_partners(n: int, partners: int, device: torch.device) -> Tensor:
    """``[n, m]`` partner indices, ``m = min(partners, n − 1)``: point i's are i + o (mod n) for m
    offsets o spread over 1..n−1. Every point is in 2m pairs, and as clouds are in random order
    these are random pairs (all pairs when m = n − 1). Cached: a sampler calls this every step."""
    m = min(partners, n - 1)
    offsets = torch.tensor([1 + (k * (n - 1)) // m for k in range(m)], device=device)
    return (torch.arange(n, device=device).unsqueeze(1) + offsets) % n


@functools.lru_cache(maxsize=32)
def device_constant(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """``values`` as a tensor on ``device``, made once (no host-to-device copy per sampling step)."""
    return torch.tensor(values, dtype=dtype, device=device)


def _gaussian_bins(d: Tensor, centres: Tensor, bandwidth: float) -> Tensor:
    """``exp(−(d − c_b)² / 2w²)`` for distances ``[B, n, m]``: ``[B, n·m, bins]``."""
    z = d.unsqueeze(-1) - centres
    if torch.is_grad_enabled():  # part of a graph: no in-place steps
        return z.square().mul(-0.5 / bandwidth**2).exp().flatten(1, 2)
    return z.square_().mul_(-0.5 / bandwidth**2).exp_().flatten(1, 2)


class _GaussianBins(torch.autograd.Function):
    """``mean over pairs of exp(−(d − c_b)² / 2w²)`` for distances ``d`` ``[B, n, m]``: ``[B, bins]``.

    Autograd would keep four ``[B, n, m, bins]`` intermediates and walk back through each; this
    keeps the kernel values only, and its backward is one batched product with them, since
    ``∂/∂d Σ_b g_b k_b = (Σ_b g_b c_b k_b − d Σ_b g_b k_b) / w²``. When the backward itself is
    differentiated (``create_graph``: score-matching losses, Hessian products) it recomputes the
    kernel from ``d`` so that second derivatives are exact. Checked by gradcheck and gradgradcheck.
    """

    @staticmethod
    def forward(ctx, d: Tensor, centres: Tensor, bandwidth: float) -> Tensor:
        k = _gaussian_bins(d, centres, bandwidth)
        ctx.save_for_backward(d, centres, k)
        ctx.bandwidth = bandwidth
        return k.mean(1)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        d, centres, k = ctx.saved_tensors
        if torch.is_grad_enabled():  # differentiated again: k must depend on d in the graph
            k = _gaussian_bins(d, centres, ctx.bandwidth)
        b, n, m = d.shape
        kg = torch.bmm(k, torch.stack([grad, grad * centres], -1))  # [B, n·m, 2]: Σ_b g_b k_b, Σ_b g_b c_b k_b
        gd = (kg[..., 1] - d.reshape(b, -1) * kg[..., 0]) / (ctx.bandwidth**2 * n * m)
        return gd.view(b, n, m), None, None


class D2Statistic(Statistic):
    """``T_b(x) = mean_{i<j} exp(−(‖x_i − x_j‖ − c_b)² / 2w²)``: the D2 shape distribution, ``[B, bins]``.

    The distribution of distances between two random points of a shape (Osada, Funkhouser,
    Chazelle & Dobkin 2002) is a classic parameter-free shape signature: it tells proportions
    (a flat table top, a thin leg) apart where the Laplacian only sees surface roughness. As a
    statistic it is a Gaussian kernel density at ``bins`` centres ``c_b = (b + ½)·max_distance/bins``
    with bandwidth ``w`` (default: the centres' spacing), so it is smooth in the points. The mean
    runs over ``partners`` fixed partners per point (all pairs when the cloud has fewer points):
    the cost is linear in the points, every point feels the gradient and ``T`` is deterministic. The
    components of an in-range distance sum to about a constant, so they are nearly collinear
    along one direction: the calibration's pseudo-inverse steps over that one.
    """

    def __init__(
        self,
        bins: int = 8,
        max_distance: float = 2.0,
        bandwidth: float | None = None,
        partners: int = 32,
        name: str = "d2",
    ) -> None:
        if bins < 1 or max_distance <= 0 or partners < 1 or (bandwidth is not None and bandwidth <= 0):
            raise ValueError(
                f"d2: need bins >= 1, max_distance > 0, partners >= 1 and bandwidth > 0, got "
                f"{bins}, {max_distance}, {partners}, {bandwidth}"
            )
        step = float(max_distance) / bins
        self.centres = [(b + 0.5) * step for b in range(bins)]
        self.bandwidth = float(bandwidth) if bandwidth is not None else step
        self.partners, self.name, self.dim = int(partners), name, int(bins)
        self.component_names = [f"d{c:.3g}" for c in self.centres] if bins > 1 else None

    def compute(self, x: Tensor) -> Tensor:
        x = check_clouds(x)
        partner = pair_partners(x.shape[1], self.partners, x.device)
        d = ((x.unsqueeze(2) - x[:, partner]).pow(2).sum(-1) + 1e-12).sqrt()  # [B, n, m]
        return _GaussianBins.apply(d, device_constant(tuple(self.centres), x.dtype, x.device), self.bandwidth)

    def __repr__(self) -> str:
        return (
            f"D2Statistic(bins={self.dim}, max_distance={self.centres[-1] + self.centres[0]:.4g}, "
            f"bandwidth={self.bandwidth:.4g}, partners={self.partners})"
        )


def d2_statistic(
    bins: int = 8, max_distance: float = 2.0, bandwidth: float | None = None, partners: int = 32
) -> D2Statistic:
    """Kernel density of pairwise point distances at ``bins`` centres up to ``max_distance``."""
    return D2Statistic(
        chk.integer("bins", bins, 1, MAX_BINS),
        chk.number("max_distance", max_distance, 0.0, 1e6, lo_open=True),
        chk.optional_number("bandwidth", bandwidth, 0.0, 1e6, lo_open=True),
        chk.integer("partners", partners, 1, MAX_PARTNERS),
    )


#: name -> factory, as the plugin registers them
STATISTICS = {
    "laplacian": laplacian_statistic,
    "laplacian_log": log_laplacian_statistic,
    "laplacian_scaled": scaled_laplacian_statistic,
    "laplacian_shape": shape_laplacian_statistic,
    "spacing": spacing_statistic,
    "size": size_statistic,
    "inertia": inertia_statistic,
    "d2": d2_statistic,
}
