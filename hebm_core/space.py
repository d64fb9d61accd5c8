"""Where samples live: how to draw noise in the space, which directions a step may take, and how
to project a point back onto it.

Objectives and samplers never call ``torch.randn_like`` on a sample directly, nor move along a raw
score; they ask the space. The default is plain Euclidean space over every state leaf. A domain
with constraints supplies its own: for graphs, noise and scores symmetric in the adjacency and zero
on padded nodes; for pixels, a box.
"""

from __future__ import annotations

from hebm_core import tree
from hebm_core.tree import Sample


class Space:
    """Euclidean space over all floating-point leaves, optionally clamped to a box."""

    def __init__(self, low: float | None = None, high: float | None = None) -> None:
        if low is not None and high is not None and low >= high:
            raise ValueError(f"Space: low ({low}) must be below high ({high})")
        self.low = low
        self.high = high

    def noise_like(self, x: Sample) -> Sample:
        """Standard normal noise shaped like ``x``, respecting the space's structure."""
        return tree.randn_like(x)

    def tangent(self, v: Sample) -> Sample:
        """Restrict a direction (a score, a momentum) to the moves the space allows (identity here).

        Samplers apply it to every score before a step and score matching to the model's score
        before the loss, so a network need not be symmetric or mask-aware by construction.
        """
        return v

    def project(self, x: Sample) -> Sample:
        """Map ``x`` back onto the space (identity unless a box is set)."""
        if self.low is None and self.high is None:
            return x
        return tree.tree_map(lambda t: t.clamp(self.low, self.high), x)

    def dim(self, x: Sample) -> int:
        """Degrees of freedom per sample (for bits/dim and dimension-scaled step rules)."""
        return sum(leaf[0].numel() for leaf in tree.state_leaves(x))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(low={self.low}, high={self.high})"


EUCLIDEAN = Space()
