"""Lennard-Jones clusters without periodic boundary (LJ-13: 13 particles in 3-D, d = 39).

As in iDEM / the EDG paper's LJ-13: ``U(x) = Σ_{i<j} [(r_m/r_ij)¹² − 2 (r_m/r_ij)⁶] + ½ c Σ_i ‖x_i − x̄‖²``
with ε = r_m = 1, c = 1 (the harmonic term keeps the cluster together; temperature 1). No exact
samples or log Z: ``reference`` runs long MALA chains from a perturbed lattice on demand. Metric:
the Wasserstein-2 distance between the energy histograms of the samples and of a reference set
(1-D W2 from sorted values, weights by quantile matching).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hebm_core.targets import Target

__all__ = ["LJ", "LJ_TARGETS", "energy_w2"]


def energy_w2(a: Tensor, b: Tensor, wa: Tensor | None = None, n_q: int = 1000) -> float:
    """1-D Wasserstein-2 between the (weighted) empirical law of ``a`` and that of ``b`` (quantile grid)."""
    q = (torch.arange(n_q, dtype=torch.float64) + 0.5) / n_q

    def quantiles(v: Tensor, w: Tensor | None) -> Tensor:
        v = v.double()
        order = v.argsort()
        v = v[order]
        ww = torch.full_like(v, 1.0 / len(v)) if w is None else w.double()[order]
        cdf = ww.cumsum(0) - 0.5 * ww
        idx = torch.searchsorted(cdf.contiguous(), q).clamp(max=len(v) - 1)
        return v[idx]

    return float((quantiles(a, wa) - quantiles(b, None)).pow(2).mean().sqrt())


class LJ:
    """``n`` particles in ``spatial`` dimensions."""

    def __init__(self, n: int = 13, spatial: int = 3, oscillator: float = 1.0) -> None:
        self.n, self.spatial, self.c = n, spatial, oscillator
        self.dim = n * spatial
        self._reference: Tensor | None = None

    def energy(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        p = x.reshape(x.shape[0], self.n, self.spatial)
        i, j = torch.triu_indices(self.n, self.n, 1)
        r2 = (p[:, i] - p[:, j]).pow(2).sum(-1).clamp_min(1e-6)
        inv6 = r2.pow(-3)
        lj = (inv6.pow(2) - 2 * inv6).sum(-1)
        com = p - p.mean(1, keepdim=True)
        return lj + 0.5 * self.c * com.pow(2).sum((-1, -2))

    def init(self, n: int, generator: torch.Generator) -> Tensor:
        """A cubic lattice of spacing 1.1 (the first ``n`` sites, centred) plus 0.05 noise."""
        side = 1
        while side**self.spatial < self.n:
            side += 1
        grids = torch.meshgrid(*[torch.arange(side, dtype=torch.float32)] * self.spatial, indexing="ij")
        sites = torch.stack([g.reshape(-1) for g in grids], 1)[: self.n] * 1.1
        sites = sites - sites.mean(0)
        return sites.reshape(1, -1) + 0.05 * torch.randn(n, self.dim, generator=generator)

    def reference(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` draws from MALA chains (1000 adaptation + 5000 steps) from the lattice."""
        from hebm_core.samplers import MALA

        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
        mala = MALA(step_size=1e-3, n_steps=5000, adapt_steps=1000, progress=False)
        return mala.run(self.energy, self.init(n, generator))

    def energy_w2(self, x: Tensor, w: Tensor | None = None) -> float:
        if self._reference is None:
            self._reference = self.reference(1000, torch.Generator().manual_seed(12345))
        with torch.no_grad():
            return energy_w2(self.energy(x.float()), self.energy(self._reference), w)

    def target(self, name: str) -> Target:
        return Target(
            name,
            self.energy,
            self.dim,
            reference=self.reference,
            scale=1.0,
            init=self.init,
            metrics={"energy_w2": self.energy_w2},
            info={"particles": self.n, "spatial": self.spatial, "oscillator": self.c},
        )


def lj13() -> Target:
    """LJ-13 (d = 39)."""
    return LJ(13, 3).target("lj13")


LJ_TARGETS = {"lj13": lj13}
