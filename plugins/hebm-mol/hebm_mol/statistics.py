"""Chemistry statistics on the continuous relaxation of a molecular graph ``(X, A, mask)``.

While sampling, X is a real-valued relaxation of the one-hot element and A of the bond orders.
The valency statistic reads them as soft quantities: atom i's bond-order sum is
``s_i = Σ_j max(A_ij, 0)`` over real neighbours, its allowed valence ``v_i = Σ_k w_ik val_k`` with
``w_i = relu(X_i) / max(1, Σ_k relu(X_ik))`` (exactly the element's valence on a one-hot row; a row
with little element mass is allowed proportionally less, and the gradient stays bounded). Both are
differentiable almost everywhere, so ``η·∇T`` pushes over-bonded atoms to shed bond order (or to
become an element that can carry it). On discrete graphs the values are exact chemistry counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from rdkit import Chem
from torch import Tensor

from hebm_core.options import ConfigError
from hebm_core.statistics import Statistic
from hebm_mol.checks import check_bool, shown
from hebm_mol.graph import QM9_SPEC, GraphSpec
from hebm_mol.space import pair_mask

__all__ = ["Valency", "valences"]


def valences(spec: GraphSpec, charged_n: bool = True) -> list[float]:
    """Allowed valence per element of ``spec``: RDKit's default valence, N raised to 4 when
    ``charged_n`` (GDSS decodes a 4-bonded N as N⁺, which sanitises)."""
    table = Chem.GetPeriodicTable()
    out = []
    for sym in spec.atoms:
        v = float(table.GetDefaultValence(sym))
        if v < 0:
            raise ValueError(
                f"valency: RDKit has no default valence for {sym} (a metal?); the valency statistic needs one "
                "for every element of atoms"
            )
        if sym == "N" and charged_n:
            v = 4.0
        out.append(v)
    return out


class Valency(Statistic):
    """Valency per molecule, one component each (each gets its own η in a hybrid model):

    - ``excess``: over-valence mass ``Σ_i relu(s_i − v_i)``, zero on every valid molecule;
    - ``hydrogens``: implicit-hydrogen mass ``Σ_i relu(v⁰_i − s_i)`` with the neutral valences v⁰
      (N 3), the molecule's H count;
    - ``bonds``: total bond order ``Σ_{i<j} A_ij``.
    """

    name = "valency"
    COMPONENTS = ("excess", "hydrogens", "bonds")

    def __init__(self, spec: GraphSpec = QM9_SPEC, charged_n: bool = True, components: Sequence[str] = ("excess",)):
        check_bool("valency", "charged_n", charged_n)
        if isinstance(components, str):
            components = (components,)
        allowed = f"a non-empty list of {', '.join(map(repr, self.COMPONENTS))}"
        if not isinstance(components, Sequence) or not components or len(components) > len(self.COMPONENTS):
            raise ValueError(f"valency: components must be {allowed}, got {shown(components)}")
        unknown = [c for c in components if not isinstance(c, str) or c not in self.COMPONENTS]
        if unknown:
            raise ValueError(f"valency: components must be {allowed}, got {shown(list(components))}")
        if len(set(components)) != len(components):
            raise ValueError(f"valency: components lists a component twice: {shown(list(components))}")
        self.spec = spec
        self.charged_n = charged_n
        self.component_names = tuple(components)
        self._val = torch.tensor(valences(spec, charged_n))
        self._neutral = torch.tensor(valences(spec, charged_n=False))

    def parts(self, g: tuple[Tensor, Tensor, Tensor]) -> dict[str, Tensor]:
        """Per-molecule values of every component, keyed by name."""
        x, a, mask = g
        if x.shape[-1] != self.spec.n_types:
            # a configuration problem (the dataset's elements are not the statistic's): one line for the user
            raise ConfigError(
                f"valency: graphs have {x.shape[-1]} element types but the statistic knows {list(self.spec.atoms)}; "
                'give it the dataset\'s elements: statistics = [{name = "valency", atoms = [...]}]'
            )
        m = mask.to(x.dtype)
        bonds = (a.clamp_min(0) * pair_mask(mask, a.dtype)).sum(-1)  # [B, N]
        w = x.clamp_min(0)
        w = w / w.sum(-1, keepdim=True).clamp_min(1.0)
        allowed = w @ self._val.to(x.device, x.dtype)  # [B, N]
        neutral = w @ self._neutral.to(x.device, x.dtype)
        return {
            "excess": (torch.relu(bonds - allowed) * m).sum(-1),
            "hydrogens": (torch.relu(neutral - bonds) * m).sum(-1),
            "bonds": 0.5 * bonds.sum(-1),
        }

    def compute(self, g: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        p = self.parts(g)
        return torch.stack([p[c] for c in self.component_names], -1)
