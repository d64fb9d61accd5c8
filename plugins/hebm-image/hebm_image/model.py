"""A noise-conditional convolutional energy: one scalar per image from a small U-Net.

``E(x, σ) = ½ ‖r(x, σ)‖²`` with the residual of an EDM-preconditioned denoiser (Karras et al. 2022),
``D(x, σ) = c_skip·x + c_out·F(c_in·x, σ)``, divided by σ: ``r = (x − D(x, σ)) / σ``, where
``c_skip = σ_d²/(σ²+σ_d²)``, ``c_out = σ·σ_d/√(σ²+σ_d²)``, ``c_in = 1/√(σ²+σ_d²)``. At initialisation
(F = 0: the last convolution starts at zero) ``E = ½‖x‖²·σ²/(σ²+σ_d²)²``, a centred Gaussian; a trained network's score
``−∇E`` has the 1/σ scale of an NCSN score at every noise level, because the residual is a noise
estimate in units of σ. ``F`` is bounded (``bound·tanh(·/bound)``), so ``E`` grows quadratically far from
the data and ``exp(−E)`` is normalisable at every σ, which the likelihood (log Z by AIS) needs. Without
``noise_conditional`` the network ignores σ and runs at the fixed ``sigma`` given.

The U-Net: a 3×3 stem to ``channels`` (with ``stride`` > 1 it works at 1/stride of the resolution
and its output is upsampled, nearest, before the last 3×3 convolution: the cost falls by stride²),
``levels`` stride-2 downsamplings (channels doubling, capped at 4×), ``blocks`` residual blocks per
resolution on each side with skip connections, GroupNorm and SiLU (smooth, so that score matching's
second derivatives exist), and the noise level fed to every block as a per-channel scale and shift
from sinusoidal features of log σ.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from hebm_core.energy import EnergyModel
from hebm_core.options import check_int, check_number

__all__ = ["MODELS", "ConvEnergy", "conv_energy"]

#: the most parameters a configured network may have (a typo must not fill the memory)
MAX_PARAMETERS = 200_000_000


def _groups(c: int) -> int:
    return math.gcd(c, 8)


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(emb, 2 * c_out)
        self.norm2, self.conv2 = nn.GroupNorm(_groups(c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, 1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(nn.functional.silu(h))


class ConvEnergy(EnergyModel):
    """``E(x, σ) = ½‖(x − D(x, σ))/σ‖²`` with an EDM-preconditioned U-Net denoiser ``D`` (module docstring)."""

    def __init__(
        self,
        in_channels: int = 1,
        size: tuple[int, int] = (28, 28),
        channels: int = 16,
        levels: int = 2,
        blocks: int = 1,
        sigma_data: float = 0.3,
        bound: float = 5.0,
        noise_conditional: bool = True,
        sigma: float = 0.01,
        stride: int = 1,
    ) -> None:
        super().__init__()
        self.noise_conditional = bool(noise_conditional)
        self.sigma_data, self.bound, self.fixed_sigma = float(sigma_data), float(bound), float(sigma)
        h, w = size
        if h % (stride * 2**levels) or w % (stride * 2**levels):
            raise ValueError(
                f"conv_energy: {h}x{w} images cannot be divided by stride {stride} and halved {levels} times (levels)"
            )
        self.stride = stride
        emb = 4 * channels
        self.register_buffer("freqs", torch.arange(1, 9, dtype=torch.float32))
        self.embed = nn.Sequential(nn.Linear(16, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.stem = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1)
        widths = [channels * min(2**i, 4) for i in range(levels + 1)]
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        for i in range(levels + 1):
            self.down.append(nn.ModuleList(_Block(widths[i], widths[i], emb) for _ in range(blocks)))
            if i < levels:
                self.downsample.append(nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1))
        self.mid = _Block(widths[-1], widths[-1], emb)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(levels + 1)):
            self.up.append(nn.ModuleList(_Block(2 * widths[i] if j == 0 else widths[i], widths[i], emb)
                                         for j in range(blocks)))  # fmt: skip
            if i > 0:
                self.upsample.append(nn.Conv2d(widths[i], widths[i - 1], 3, padding=1))
        self.out_norm = nn.GroupNorm(_groups(channels), channels)
        self.out = nn.Conv2d(channels, in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def _sigma(self, x: Tensor, sigma: Tensor | None) -> Tensor:
        if not self.noise_conditional or sigma is None:
            if self.noise_conditional:
                raise ValueError("this conv_energy is noise-conditional: pass sigma (the smallest training σ)")
            return torch.full((x.shape[0],), self.fixed_sigma, device=x.device, dtype=x.dtype)
        return sigma.reshape(-1).to(x.dtype).expand(x.shape[0])

    def network(self, x: Tensor, sigma: Tensor) -> Tensor:
        """``F(c_in·x, σ)``: the bounded U-Net output, shaped like ``x``."""
        sd2 = self.sigma_data**2
        c_in = (sigma**2 + sd2).rsqrt()[:, None, None, None]
        t = sigma.log()[:, None] * self.freqs
        emb = self.embed(torch.cat([t.sin(), t.cos()], 1))
        h = self.stem(x * c_in)
        skips = []
        for i, blocks in enumerate(self.down):
            for b in blocks:
                h = b(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, emb)
        for i, blocks in enumerate(self.up):
            h = torch.cat([h, skips.pop()], 1)
            for b in blocks:
                h = b(h, emb)
            if i < len(self.upsample):
                h = self.upsample[i](nn.functional.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = nn.functional.silu(self.out_norm(h))
        if self.stride > 1:
            h = nn.functional.interpolate(h, scale_factor=float(self.stride), mode="nearest")
        raw = self.out(h)
        return self.bound * torch.tanh(raw / self.bound)

    def residual(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        """``(x − D(x, σ))/σ``: the network's estimate of the noise in ``x``, in units of σ."""
        s = self._sigma(x, sigma)
        sd2 = self.sigma_data**2
        var = s**2 + sd2
        a = (s / var)[:, None, None, None]  # (1 - c_skip) / σ
        b = (self.sigma_data * var.rsqrt())[:, None, None, None]  # c_out / σ
        return a * x - b * self.network(x, s)

    def denoise(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        """The denoiser ``D(x, σ) = x − σ·residual``."""
        s = self._sigma(x, sigma)
        return x - s[:, None, None, None] * self.residual(x, sigma)

    def energy(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        return 0.5 * self.residual(x, sigma).flatten(1).pow(2).sum(1)


def conv_energy(
    example: Tensor,
    channels: int = 16,
    levels: int = 2,
    blocks: int = 1,
    sigma_data: float = 0.3,
    bound: float = 5.0,
    noise_conditional: bool = True,
    stride: int = 1,
) -> ConvEnergy:
    """:class:`ConvEnergy` sized from the example batch ``[B, C, H, W]``; options checked in one line each."""
    if not isinstance(example, Tensor) or example.dim() != 4:
        raise ValueError("conv_energy needs image batches [B, C, H, W]")
    check_int("conv_energy", "channels", channels, 1, 1024)
    check_int("conv_energy", "levels", levels, 0, 6)
    check_int("conv_energy", "blocks", blocks, 1, 16)
    check_int("conv_energy", "stride", stride, 1, 8)
    check_number("conv_energy", "sigma_data", sigma_data, 0, 100, open_low=True)
    check_number("conv_energy", "bound", bound, 0, 1000, open_low=True)
    if not isinstance(noise_conditional, bool):
        raise ValueError(f"conv_energy: noise_conditional must be true or false, got {noise_conditional!r}")
    c, h, w = example.shape[1:]
    # count before building: 9·c² per conv, dominated by the widest level
    widest = channels * min(2**levels, 4)
    estimate = 9 * widest * widest * 4 * blocks * (levels + 1) * 3
    if estimate > MAX_PARAMETERS:
        raise ValueError(f"conv_energy: about {estimate:.3g} parameters, over {MAX_PARAMETERS:.3g}")
    return ConvEnergy(c, (h, w), channels, levels, blocks, sigma_data, bound, noise_conditional, stride=stride)


MODELS = {"conv_energy": conv_energy}
