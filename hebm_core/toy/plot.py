"""Samples on disk (``samples.pt``) and a picture (``samples.png``: data | samples, same axes)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor

from hebm_core.data import DataBundle

__all__ = ["write_samples"]


def write_samples(samples: Tensor, out_dir: str | Path, bundle: DataBundle | None = None) -> list[str]:
    """Save ``samples`` as ``samples.pt`` and, if matplotlib is installed, a side-by-side scatter of
    reference data and samples (first two coordinates) as ``samples.png``. Returns the paths written.

    Without matplotlib it warns once and writes no picture; it never fails for want of one.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x = samples.detach().float().cpu()
    pt = out / "samples.pt"
    torch.save(x, pt)
    written = [str(pt)]
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed: no picture written (pip install 'hebm-core[plot]')", stacklevel=2)
        return written

    ref = None
    if bundle is not None:
        ref = bundle.test if bundle.test is not None else bundle.train
        ref = ref.detach().float().cpu()[: max(len(x), 2000)]
    x2, r2 = _two_d(x), None if ref is None else _two_d(ref)
    lim_src = r2 if r2 is not None else x2[torch.isfinite(x2).all(1)]
    lo = torch.quantile(lim_src, 0.001, dim=0)
    hi = torch.quantile(lim_src, 0.999, dim=0)
    pad = 0.15 * (hi - lo).max()
    lo, hi = lo - pad, hi + pad
    side = float((hi - lo).max())
    mid = (hi + lo) / 2
    lims = [(float(mid[i]) - side / 2, float(mid[i]) + side / 2) for i in range(2)]

    panels = ([("data", r2, "#444444")] if r2 is not None else []) + [("samples", x2, "#d62728")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.4), squeeze=False)
    name = (bundle.info.get("name", "") if bundle is not None else "") or "samples"
    for ax, (title, pts, color) in zip(axes[0], panels):
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, color=color, linewidths=0)
        ax.set_xlim(*lims[0])
        ax.set_ylim(*lims[1])
        ax.set_aspect("equal")
        ax.set_title(f"{title} ({len(pts)})")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(name)
    fig.tight_layout()
    png = out / "samples.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    written.append(str(png))
    return written


def _two_d(x: Tensor) -> Tensor:
    """First two coordinates (a 1-D sample gets a zero second coordinate)."""
    x = x.flatten(1)
    if x.shape[1] >= 2:
        return x[:, :2]
    return torch.cat([x, torch.zeros_like(x)], 1)
