"""Energy models: one scalar energy per sample, scores by autograd or in closed form.

Convention: ``p(x) ∝ exp(-E(x))``, so the score is ``∇ log p = -∇E``. A model may be
noise-conditional: ``energy(x, sigma)`` with ``sigma`` a ``[B]`` tensor of noise levels (or
``None`` for the clean density).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hebm_core import tree
from hebm_core.tree import Sample

EnergyFn = Callable[..., Tensor]

__all__ = [
    "EnergyModel",
    "ParameterGroup",
    "SumEnergy",
    "TemperedEnergy",
    "energy_and_score",
    "autograd_energy_and_score",
]


def autograd_energy_and_score(
    fn: EnergyFn, x: Sample, sigma: Tensor | None = None, create_graph: bool = False
) -> tuple[Tensor, Sample]:
    """Energy ``fn(x, sigma)`` and score ``-∇_x fn`` by autograd.

    With ``create_graph=False`` (sampling) the outputs are detached; with ``True`` (training
    objectives) they stay differentiable with respect to the parameters.
    """
    with torch.enable_grad():
        xg = x if create_graph and _all_require_grad(x) else tree.with_grad(x)
        e = fn(xg, sigma)
        leaves = tree.state_leaves(xg)
        # differentiate -ΣE: the scores come out directly, with no extra negation per leaf
        grads = torch.autograd.grad(-e.sum(), leaves, create_graph=create_graph)
    if isinstance(xg, Tensor):
        score = grads[0]
    else:
        it = iter(grads)
        score = tree.tree_map(lambda _: next(it), xg)
    if not create_graph:
        e = e.detach()
    return e, score


def _all_require_grad(x: Sample) -> bool:
    return all(leaf.requires_grad for leaf in tree.state_leaves(x))


def energy_and_score(
    model: EnergyFn, x: Sample, sigma: Tensor | None = None, create_graph: bool = False
) -> tuple[Tensor, Sample]:
    """Dispatch to a model's own (possibly closed-form) score, else autograd through ``model(x, sigma)``.

    ``model`` may be any callable ``(x, sigma) -> [B]``: an ``EnergyModel``, a closure, an AIS path.
    """
    if isinstance(model, EnergyModel):
        return model.energy_and_score(x, sigma, create_graph=create_graph)
    return autograd_energy_and_score(model, x, sigma, create_graph)


@dataclass
class ParameterGroup:
    """Parameters a trainer optimises together: ``lr_option`` names the train option that sets
    their learning rate (``None``: ``lr``; a rate of 0 freezes the group), ``weight_decay`` whether
    the configured weight decay applies."""

    name: str
    params: list[nn.Parameter]
    lr_option: str | None = None
    weight_decay: bool = True


class EnergyModel(nn.Module, ABC):
    """Base class: implement :meth:`energy`; override :meth:`energy_and_score` for a closed form.

    What a trainer needs beyond the energy comes from four methods with generic defaults, so the
    training loop never asks which subclass it holds: :meth:`parameter_groups`, :meth:`freeze`,
    :meth:`log_values` (extra columns of ``metrics.csv``) and :meth:`describe` (what reports and
    summaries record about the model, e.g. a hybrid's η).
    """

    #: whether :meth:`energy` uses ``sigma``; objectives pass noise levels only to such models
    noise_conditional: bool = False

    @abstractmethod
    def energy(self, x: Sample, sigma: Tensor | None = None) -> Tensor:
        """Energy of each sample, shape ``[B]``."""

    def forward(self, x: Sample, sigma: Tensor | None = None) -> Tensor:
        return self.energy(x, sigma)

    def energy_and_score(
        self, x: Sample, sigma: Tensor | None = None, create_graph: bool = False
    ) -> tuple[Tensor, Sample]:
        """Energy ``[B]`` and score ``-∇_x E`` (same structure as ``x``)."""
        return autograd_energy_and_score(self.energy, x, sigma, create_graph)

    def score(self, x: Sample, sigma: Tensor | None = None, create_graph: bool = False) -> Sample:
        return self.energy_and_score(x, sigma, create_graph)[1]

    def log_prob_unnormalized(self, x: Sample, sigma: Tensor | None = None) -> Tensor:
        return -self.energy(x, sigma)

    def parameter_groups(self) -> list[ParameterGroup]:
        """How a trainer groups the parameters (default: all of them, at the network's ``lr``)."""
        return [ParameterGroup("network", list(self.parameters()))]

    def freeze(self, group: str) -> None:
        """Stop training the parameters of ``group`` (its learning rate is 0)."""
        for g in self.parameter_groups():
            if g.name == group:
                for p in g.params:
                    p.requires_grad_(False)

    def log_values(self) -> dict[str, float]:
        """Extra values logged next to the loss at every logged step (default: none)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What summaries and reports record about this model (default: nothing)."""
        return {}

    def __add__(self, other: EnergyModel) -> SumEnergy:
        return SumEnergy([self, other])

    def tempered(self, temperature: float) -> TemperedEnergy:
        return TemperedEnergy(self, temperature)


class SumEnergy(EnergyModel):
    """Product of experts: ``E = Σ_i E_i`` (each expert's closed-form score is used when it has one)."""

    def __init__(self, experts: Sequence[EnergyModel]) -> None:
        super().__init__()
        if not experts:
            raise ValueError("SumEnergy needs at least one expert")
        self.experts = nn.ModuleList(experts)
        self.noise_conditional = any(e.noise_conditional for e in experts)

    def energy(self, x: Sample, sigma: Tensor | None = None) -> Tensor:
        return sum(e.energy(x, sigma) for e in self.experts)

    def energy_and_score(self, x, sigma=None, create_graph=False):
        parts = [e.energy_and_score(x, sigma, create_graph) for e in self.experts]
        energy = sum(p[0] for p in parts)
        score = parts[0][1]
        for p in parts[1:]:
            score = tree.tree_map(torch.add, score, p[1])
        return energy, score


class TemperedEnergy(EnergyModel):
    """``E(x) / T``: T > 1 flattens the density, T < 1 sharpens it."""

    def __init__(self, base: EnergyModel, temperature: float) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.base = base
        self.temperature = float(temperature)
        self.noise_conditional = base.noise_conditional

    def energy(self, x: Sample, sigma: Tensor | None = None) -> Tensor:
        return self.base.energy(x, sigma) / self.temperature

    def energy_and_score(self, x, sigma=None, create_graph=False):
        e, s = self.base.energy_and_score(x, sigma, create_graph)
        t = self.temperature
        return e / t, tree.tree_map(lambda v: v / t, s)
