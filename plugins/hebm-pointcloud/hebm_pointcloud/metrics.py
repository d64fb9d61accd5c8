"""The PointFlow evaluation protocol: MMD, COV and 1-NNA under Chamfer and EMD.

Conventions (stated in every report through ``DataBundle.info['protocol']`` and the metric keys):

- CD(A, B) = mean_a min_b ‖a−b‖² + mean_b min_a ‖a−b‖²  (:func:`hebm_pointcloud.geometry.chamfer`)
- EMD(A, B) = min over bijections π of mean_i ‖a_i − b_π(i)‖: exact, through POT's network simplex
  (``ot.emd2`` with uniform weights) for equal-size clouds. Exact EMD on 2,048 points costs ~0.6 s
  per pair, so by default it runs on ``emd_points`` random points per cloud; the relative error of
  that against exact EMD on the full clouds is measured on ``emd_check_pairs`` pairs and reported.
- MMD: mean over reference shapes of the distance to the closest generated shape.
- COV: share of reference shapes that are the closest reference of at least one generated shape.
- 1-NNA: accuracy of the leave-one-out 1-nearest-neighbour classifier on generated ∪ reference.
- Class shares (when the reference clouds' classes are known): each generated cloud takes the class
  of its Chamfer-nearest reference cloud.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import ot
import torch
from torch import Tensor

from hebm_core.data import DataBundle
from hebm_core.metrics import Metric
from hebm_core.statistics import Statistic
from hebm_pointcloud import _checks as chk
from hebm_pointcloud.geometry import chamfer_matrix, check_clouds

__all__ = [
    "emd",
    "emd_matrix",
    "mmd_cov",
    "one_nna",
    "one_nna_sides",
    "one_nna_hits",
    "nearest_classes",
    "class_shares",
    "reference_labels",
    "PointFlowMetrics",
    "METRICS",
    "MAX_EMD_POINTS",
]

#: the most points per cloud exact EMD is solved on (~0.5 s a pair at 2,048; its cost grows ~n³)
MAX_EMD_POINTS = 4096


def emd(a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> float:
    """Exact EMD between two clouds (mean matched Euclidean distance per point, uniform weights)."""
    a = np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=np.float64)
    b = np.asarray(b.detach().cpu() if isinstance(b, Tensor) else b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != 3 or b.shape[1] != 3:
        raise ValueError(f"emd needs two [N, 3] clouds, got {a.shape} and {b.shape}")
    cost = ot.dist(a, b, metric="euclidean")
    return float(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost, numItermax=10_000_000))


def emd_matrix(a: Tensor, b: Tensor | None = None, workers: int | None = None) -> Tensor:
    """All-pairs exact EMD ``[len(a), len(b)]``; ``b=None``: the symmetric matrix of ``a`` (upper triangle solved).

    Rows are solved by ``workers`` threads (default: ``torch.get_num_threads()``, so
    ``OMP_NUM_THREADS`` sets it): POT's network simplex releases the GIL, and on 2,048 points one
    pair costs ~0.5 s, and a PointFlow evaluation of 256 shapes solves 1.3·10⁵ pairs.
    """
    a = check_clouds(a).detach().cpu().double().numpy()
    sym = b is None
    bb = a if sym else check_clouds(b).detach().cpu().double().numpy()
    out = np.zeros((len(a), len(bb)))

    def row(i: int) -> None:
        for j in range(i + 1 if sym else 0, len(bb)):
            out[i, j] = emd(a[i], bb[j])

    workers = max(1, workers or torch.get_num_threads())
    if workers == 1 or len(a) < 2:
        for i in range(len(a)):
            row(i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(row, range(len(a))))
    return torch.from_numpy(out + out.T if sym else out)  # symmetric: only the upper triangle was solved


def mmd_cov(d_gen_ref: Tensor) -> tuple[float, float]:
    """MMD (mean over references of the min distance to a sample) and COV (fraction) from ``[n_gen, n_ref]``."""
    mmd = d_gen_ref.min(0).values.mean()
    cov = d_gen_ref.argmin(1).unique().numel() / d_gen_ref.shape[1]
    return float(mmd), float(cov)


def one_nna_hits(d_gg: Tensor, d_gr: Tensor, d_rr: Tensor) -> Tensor:
    """Per shape (generated first, then reference): is its leave-one-out nearest neighbour of its own set?"""
    ng, nr = d_gr.shape
    full = torch.cat([torch.cat([d_gg, d_gr], 1), torch.cat([d_gr.T, d_rr], 1)], 0).clone()
    full.fill_diagonal_(float("inf"))
    label = torch.cat([torch.ones(ng), torch.zeros(nr)])
    return label[full.argmin(1)] == label


def one_nna_sides(d_gg: Tensor, d_gr: Tensor, d_rr: Tensor) -> tuple[float, float]:
    """Leave-one-out 1-NN accuracy (fractions) on the generated shapes and on the reference shapes.

    Reported apart because they answer different questions: a generated shape is "caught" when
    its nearest neighbour is another generated one (the samples resemble each other more than the
    data), a reference shape when its nearest is another reference (the samples miss it).
    """
    right = one_nna_hits(d_gg, d_gr, d_rr)
    ng = d_gr.shape[0]
    return float(right[:ng].double().mean()), float(right[ng:].double().mean())


def one_nna(d_gg: Tensor, d_gr: Tensor, d_rr: Tensor) -> float:
    """Leave-one-out 1-NN accuracy (fraction) of telling generated from reference shapes."""
    ng, nr = d_gr.shape
    gen, ref = one_nna_sides(d_gg, d_gr, d_rr)
    return (ng * gen + nr * ref) / (ng + nr)


def nearest_classes(d_gen_ref: Tensor, ref_labels: Sequence[str]) -> list[str]:
    """Each generated cloud's class: that of its nearest reference cloud (rows of ``d_gen_ref``)."""
    if d_gen_ref.shape[1] != len(ref_labels):
        raise ValueError(f"{len(ref_labels)} reference labels for {d_gen_ref.shape[1]} reference clouds")
    return [ref_labels[j] for j in d_gen_ref.argmin(1).tolist()]


def class_shares(
    d_gen_ref: Tensor, ref_labels: Sequence[str], classes: Sequence[str] = ()
) -> dict[str, tuple[float, float]]:
    """Class -> (share of generated clouds, share of reference clouds) over ``ref_labels``' classes and
    ``classes``; generated clouds are classed by :func:`nearest_classes`."""
    gen = Counter(nearest_classes(d_gen_ref, ref_labels))
    ref = Counter(ref_labels)
    n = d_gen_ref.shape[0]
    return {c: (gen[c] / n, ref[c] / len(ref_labels)) for c in sorted({*ref, *classes})}


class PointFlowMetrics(Metric):
    """MMD/COV/1-NNA under CD and EMD between generated clouds and the reference (test) clouds.

    ``emd_points``: points per cloud for EMD (0: all points, exact); ``emd_check_pairs``: pairs on
    which the subsampled EMD is compared with exact full-cloud EMD; ``use_emd``: skip EMD entirely;
    ``max_shapes``: cap on each set. Keys are ``pointflow/<metric>`` (MMD raw, COV and 1-NNA in %;
    1-NNA also per side, ``1nna_<cd|emd>_generated_pct`` and ``_reference_pct``). With
    ``labels`` (the reference clouds' classes) each generated cloud takes the class of its
    Chamfer-nearest reference cloud: ``class_pct/<name>`` and ``class_reference_pct/<name>`` are
    the two sets' class shares and ``class_tv_pct`` their total-variation distance. A model
    whose samples miss a class's share shows it there, where 1-NNA only rises.
    """

    name = "pointflow"

    def __init__(
        self,
        emd_points: int = 512,
        emd_check_pairs: int = 4,
        use_emd: bool = True,
        max_shapes: int | None = None,
        seed: int = 0,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.emd_points, self.emd_check_pairs, self.use_emd = int(emd_points), int(emd_check_pairs), bool(use_emd)
        self.max_shapes, self.seed = max_shapes, int(seed)
        self.labels = list(labels) if labels is not None else None
        self._gen: list[Tensor] = []
        self._ref: list[Tensor] = []

    def reset(self) -> None:
        self.__init__(self.emd_points, self.emd_check_pairs, self.use_emd, self.max_shapes, self.seed, self.labels)

    def update(self, samples: Tensor, reference: Tensor | None = None) -> None:
        self._gen.append(check_clouds(samples, "generated clouds").detach().float().cpu())
        if reference is not None:
            self._ref.append(check_clouds(reference, "reference clouds").detach().float().cpu())

    def _subsample(self, x: Tensor, g: torch.Generator) -> Tensor:
        if self.emd_points <= 0 or self.emd_points >= x.shape[1]:
            return x
        idx = torch.stack([torch.randperm(x.shape[1], generator=g)[: self.emd_points] for _ in range(x.shape[0])])
        return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, 3))

    def compute(self) -> dict[str, float]:
        if not self._gen or not self._ref:
            raise RuntimeError("PointFlowMetrics needs both generated samples and reference clouds")
        ref = torch.cat(self._ref)
        gen = torch.cat(self._gen)
        if self.labels is not None and len(self.labels) != len(ref):
            raise ValueError(f"{len(self.labels)} reference labels for {len(ref)} reference clouds")
        n = min(len(gen), len(ref), self.max_shapes or len(ref))
        gen, ref = gen[:n], ref[:n]
        if not torch.isfinite(gen).all():
            raise ValueError("generated clouds hold non-finite values; metrics are undefined")
        out: dict[str, float] = {"pointflow/n_generated": float(n), "pointflow/n_reference": float(n)}
        t0 = time.perf_counter()
        dists = {"cd": (chamfer_matrix(gen, ref), chamfer_matrix(gen, gen), chamfer_matrix(ref, ref))}
        out["pointflow/cd_time_s"] = round(time.perf_counter() - t0, 3)
        if self.use_emd:
            t0 = time.perf_counter()
            g = torch.Generator().manual_seed(self.seed)
            gs, rs = self._subsample(gen, g), self._subsample(ref, g)
            dists["emd"] = (emd_matrix(gs, rs), emd_matrix(gs), emd_matrix(rs))
            out["pointflow/emd_points"] = float(gs.shape[1])
            out["pointflow/emd_time_s"] = round(time.perf_counter() - t0, 3)
            out.update(self._emd_error(gen, ref, gs, rs, dists["emd"][0]))
        for kind, (gr, gg, rr) in dists.items():
            mmd, cov = mmd_cov(gr)
            out[f"pointflow/mmd_{kind}"] = mmd
            out[f"pointflow/cov_{kind}_pct"] = 100 * cov
            gen_side, ref_side = one_nna_sides(gg, gr, rr)
            out[f"pointflow/1nna_{kind}_pct"] = 100 * (gen_side + ref_side) / 2  # both sets hold n shapes
            out[f"pointflow/1nna_{kind}_generated_pct"] = 100 * gen_side
            out[f"pointflow/1nna_{kind}_reference_pct"] = 100 * ref_side
        if self.labels is not None:
            shares = class_shares(dists["cd"][0], self.labels[:n], self.labels)
            for c, (g_share, r_share) in shares.items():
                out[f"pointflow/class_pct/{c}"] = 100 * g_share
                out[f"pointflow/class_reference_pct/{c}"] = 100 * r_share
            out["pointflow/class_tv_pct"] = 50 * sum(abs(g - r) for g, r in shares.values())
        return out

    def _emd_error(self, gen: Tensor, ref: Tensor, gs: Tensor, rs: Tensor, sub: Tensor) -> dict[str, float]:
        """Relative error of the subsampled EMD against exact EMD on the full clouds (0 when not subsampled)."""
        if gs.shape[1] == gen.shape[1]:
            return {"pointflow/emd_subsample_mean_rel_error": 0.0, "pointflow/emd_subsample_max_rel_error": 0.0}
        pairs = [(i, i % len(ref)) for i in range(min(self.emd_check_pairs, len(gen)))]
        errs = []
        for i, j in pairs:
            exact = emd(gen[i], ref[j])
            errs.append(abs(float(sub[i, j]) - exact) / max(exact, 1e-12))
        if not errs:
            return {}
        return {
            "pointflow/emd_subsample_mean_rel_error": float(np.mean(errs)),
            "pointflow/emd_subsample_max_rel_error": float(np.max(errs)),
            "pointflow/emd_check_pairs": float(len(errs)),
        }


def pointflow(
    statistics: list[Statistic],
    emd_points: int = 512,
    emd_check_pairs: int = 4,
    use_emd: bool = True,
    max_shapes: int | None = None,
    seed: int = 0,
    bundle: DataBundle | None = None,
) -> PointFlowMetrics:
    """MMD/COV/1-NNA (CD and EMD), PointFlow's protocol; class shares where ``bundle`` labels its clouds.

    Options are checked first: ``emd_points`` in [0, 4096] (0: all points), ``emd_check_pairs`` in
    [0, 1000], and, with the bundle's clouds known, exact EMD on more than :data:`MAX_EMD_POINTS`
    points per cloud (``emd_points = 0``, or ``emd_check_pairs`` on large clouds) is refused: its
    network simplex would take hours.
    """
    emd_points = chk.integer("emd_points", emd_points, 0, MAX_EMD_POINTS)
    emd_check_pairs = chk.integer("emd_check_pairs", emd_check_pairs, 0, 1000)
    use_emd = chk.flag("use_emd", use_emd)
    max_shapes = chk.optional_integer("max_shapes", max_shapes, 1, 10_000_000)
    seed = chk.integer("seed", seed, 0, 2**32 - 1)
    n = _cloud_points(bundle)
    if use_emd and n is not None and n > MAX_EMD_POINTS:
        if emd_points == 0:
            raise ValueError(
                f"emd_points = 0 asks for exact EMD on all {n} points per cloud; at most {MAX_EMD_POINTS} "
                "(set emd_points, or use_emd = false)"
            )
        if emd_check_pairs:
            raise ValueError(
                f"emd_check_pairs compares with exact EMD on the full {n}-point clouds; at most {MAX_EMD_POINTS} "
                "points (set emd_check_pairs = 0, or use_emd = false)"
            )
    labels = reference_labels(bundle) if bundle is not None else None
    return PointFlowMetrics(emd_points, emd_check_pairs, use_emd, max_shapes, seed, labels)


def _cloud_points(bundle: DataBundle | None) -> int | None:
    x = getattr(bundle, "train", None)
    return int(x.shape[1]) if isinstance(x, Tensor) and x.dim() == 3 else None


def reference_labels(bundle: DataBundle) -> list[str] | None:
    """The classes of the clouds samples are compared with (the test split if there is one, as
    ``Components.reference``), or ``None`` when the dataset does not label its clouds."""
    labels = (bundle.extras.get("labels") or {}).get("test" if bundle.test is not None else "train")
    return list(labels) if labels else None


METRICS = {"pointflow": pointflow}
