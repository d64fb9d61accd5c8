"""Samples on disk: ``samples.npz`` (the images, their grey levels and the pixel convention) and
``samples.png``, a grid of test images next to a grid of samples at the same scale."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from hebm_core.data import DataBundle

__all__ = ["write_samples", "finalize", "prior", "grid"]


def finalize(samples: Tensor, bundle: DataBundle) -> Tensor:
    """The sampler's output (after its denoising step) clipped to the data's range ``[0, 1]``."""
    return samples.clamp(0.0, 1.0)


def prior(n: int, bundle: DataBundle, sigma: float) -> Tensor:
    """Chain starts: the training mean image plus ``sigma`` × standard normal noise."""
    mean = bundle.extras.get("mean_image")
    if mean is None:
        mean = bundle.train[:1024].mean(0)
    return mean.unsqueeze(0) + sigma * torch.randn(n, *mean.shape)


def grid(images: Tensor, cols: int = 10) -> np.ndarray:
    """``[N, C, H, W]`` images in ``[0, 1]`` tiled into one ``[rows·(H+1), cols·(W+1)]`` grey picture."""
    x = images[:, 0].clamp(0, 1).cpu().numpy()
    n, h, w = x.shape
    rows = max(1, -(-n // cols))
    out = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = x[i]
    return out


def write_samples(samples: Tensor, out_dir: str | Path, bundle: DataBundle) -> list[str]:
    """``samples.npz`` (``images`` float32 ``[N, C, H, W]``, ``levels`` uint8 ``floor(x·L)``, ``n_levels``)
    and ``samples.png`` (100 test images left, the first 100 samples right); a picture that cannot be
    drawn is a warning (it ends up in the report's notes), never a failed run."""
    out = Path(out_dir)
    x = samples.detach().float().cpu()
    levels = int(bundle.extras.get("levels", 256))
    k = (x.clamp(0, 1) * levels).floor().clamp_max(levels - 1).to(torch.uint8)
    npz = out / "samples.npz"
    np.savez_compressed(npz, images=x.numpy(), levels=k.numpy(), n_levels=levels)
    paths = [str(npz)]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ref = bundle.reference[:100]
        fig, axes = plt.subplots(1, 2, figsize=(10, 5.4))
        for ax, imgs, title in ((axes[0], ref, "data (test)"), (axes[1], x[:100], f"samples ({len(x)} drawn)")):
            ax.imshow(grid(imgs), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(title)
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(out / "samples.png", dpi=100)
        plt.close(fig)
        paths.append(str(out / "samples.png"))
    except Exception as exc:  # a picture is a convenience: say why it is missing, keep the run
        warnings.warn(f"samples.png not written: {type(exc).__name__}: {exc}", stacklevel=2)
    return paths
