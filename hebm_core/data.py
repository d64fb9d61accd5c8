"""In-memory datasets as samples (tensors or pytrees of tensors) and a resumable batch iterator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from hebm_core import tree
from hebm_core.space import EUCLIDEAN, Space
from hebm_core.tree import Sample

__all__ = ["DataBundle", "BatchIterator"]


@dataclass
class DataBundle:
    """What a plugin's dataset factory returns.

    ``train``/``test`` hold every sample with the batch on dim 0 (a tensor, or a tuple/dict of
    tensors for structured samples); ``space`` says how to draw noise in it; ``info`` is recorded
    in every report (source, sha256, normalisation, counts of skipped rows, ...); ``extras`` holds
    domain objects the plugin's prior, metrics and writers need but reports do not (SMILES lists,
    node-count histograms, element tables).
    """

    train: Sample
    test: Sample | None = None
    space: Space = EUCLIDEAN
    info: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if tree.batch_size(self.train) == 0:
            raise ValueError(f"dataset {self.info.get('name', '?')!r} has no training samples")

    @property
    def reference(self) -> Sample:
        """Data that metrics compare samples with: the test split if there is one."""
        return self.test if self.test is not None else self.train

    def training_subset(self, max_n: int = 10000) -> Sample:
        """Up to ``max_n`` training samples: a seeded random subset (datasets may be sorted, as QM9
        is by size). η's calibration targets their mean statistic; ΔT's training side uses the same."""
        pick = torch.randperm(tree.batch_size(self.train), generator=torch.Generator().manual_seed(0))
        return tree.index(self.train, pick[:max_n])


class BatchIterator:
    """Shuffled mini-batches without replacement, epoch after epoch, from a seeded generator.

    Its whole state is the generator state plus the position in the current permutation, so a
    resumed run draws exactly the batches the uninterrupted run would have drawn.
    """

    def __init__(self, data: Sample, batch_size: int, seed: int = 0, drop_last: bool = True) -> None:
        self.data = data
        self.n = tree.batch_size(data)
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = min(batch_size, self.n)
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> Sample:
        end = self.pos + self.batch_size
        if self.perm is None or end > self.n and self.drop_last or self.pos >= self.n:
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.pos, end = 0, self.batch_size
        idx = self.perm[self.pos : end]
        self.pos = end
        return tree.index(self.data, idx)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.pos = state["perm"], int(state["pos"])
