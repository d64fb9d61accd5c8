"""The hybrid energy: a neural energy plus learned multiples of hand-crafted statistics.

Sign convention (as in the paper): ``log p(x) = F_θ(x) + η·T(x) − log Z`` where ``F_θ = −E_θ``.
As an energy: ``E_hybrid(x) = E_θ(x) − η·T(x)``; the score is ``−∇E_θ + η·∇T``. A positive η
favours large T, a negative η small T (e.g. valency violation ends with η < 0). Every η starts
at 0, so an untrained hybrid model is the vanilla model, and a statistic that carries no
information should stay near 0.

By default η multiplies ``T(x)`` at every noise level: the statistic is a property of the clean
data and its gradient is the same field at every σ. A noise-conditional network's score grows
like 1/σ as σ falls, so a fixed η·∇T fades next to it exactly where samples take their final
shape, and score matching sets η mostly from the large noise levels. ``sigma_power = p`` scales
the term as ``η·T(x)·(σ_ref/σ)^p`` instead (σ_ref: the smallest training σ, so η is the weight at
the end of sampling): p = 2 lets one η give a quadratic statistic the σ-dependence of a
Gaussian's score, p = 1 the 1/σ of an NCSN-style network. ``sigma_powers`` gives single
statistics their own p (e.g. a shape statistic that should act while shapes form, at p = 0 or 1,
next to a texture statistic at p = 2); the rest take ``sigma_power``.

``denoised = True`` evaluates the statistics at the base network's Tweedie estimate of the clean
sample, ``x̂ = x + σ² s_θ(x, σ)``, instead of at the noisy ``x``:
``E_hybrid(x, σ) = E_θ(x, σ) − η·T(x̂(x, σ))``. Noisy samples have the statistic of noise, so at
large σ a term on ``x`` pushes on texture that the next steps wash out; on ``x̂`` it sees the shape
that the chain is heading for and can steer which mode it reaches. Its gradient is the first-order
approximation of the tilted model's noisy marginal score, ``∇ log E[exp(η·T(x₀)) | x]``: the
Jacobian ``∂x̂/∂x = Cov[x₀ | x]/σ²`` is ``I`` at small σ and fades at large σ by itself, so
``sigma_power = 0`` suits it only where the network's score is accurate at large σ; where it is
not, x̂ is a poor estimate at large σ and an unbounded statistic at full weight there can drive
chains off (the point-cloud configs keep p = 2). It costs a second-order pass through the
network (``plugins/hebm-pointcloud/benchmarks/statistic_speed.py`` times it against the plain
hybrid score), and needs a noise-conditional base.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from hebm_core import tree
from hebm_core.energy import EnergyModel, ParameterGroup
from hebm_core.statistics import Statistic
from hebm_core.tree import Sample

__all__ = ["HybridEnergy"]


class HybridEnergy(EnergyModel):
    """``E_θ(x, σ) − Σ_s η_s · T_s(x)`` with one learnable weight per statistic component.

    ``example`` (one batch of data) tells the number of components of each statistic; a
    statistic may instead declare an integer attribute ``dim``.
    """

    def __init__(
        self,
        base: EnergyModel,
        statistics: Sequence[Statistic] | Mapping[str, Statistic],
        example: Sample | None = None,
        sigma_power: float = 0.0,
        sigma_ref: float = 1.0,
        sigma_powers: Mapping[str, float] | None = None,
        denoised: bool = False,
    ) -> None:
        super().__init__()
        powers = dict(sigma_powers or {})
        if sigma_power < 0 or sigma_ref <= 0 or any(p < 0 for p in powers.values()):
            raise ValueError(
                f"HybridEnergy: need sigma_power >= 0 and sigma_ref > 0, got {sigma_power}, {sigma_ref}"
                + (f", sigma_powers {powers}" if powers else "")
            )
        self.sigma_power, self.sigma_ref = float(sigma_power), float(sigma_ref)
        self.base = base
        self.noise_conditional = base.noise_conditional
        if denoised and not base.noise_conditional:
            raise ValueError("HybridEnergy(denoised=True) needs a noise-conditional base: x̂ = x + σ² s_θ(x, σ)")
        self.denoised = bool(denoised)
        stats = list(statistics.values()) if isinstance(statistics, Mapping) else list(statistics)
        names = [s.name for s in stats]
        if len({self._key(n) for n in names}) != len(names):
            raise ValueError(f"statistic names must be unique (after '.' -> '_'), got {names}")
        self.statistics = stats
        unknown = sorted(set(powers) - set(names))
        if unknown:
            raise ValueError(f"sigma_powers names {unknown}, not statistics of this model ({names})")
        self.sigma_powers = {n: float(p) for n, p in powers.items() if float(p) != self.sigma_power}
        self._skip_in_training = False  # set by freeze_eta
        self.eta = nn.ParameterDict()
        for s in stats:
            k = getattr(s, "dim", None)
            if k is None:
                if example is None:
                    raise ValueError(f"statistic {s.name!r} declares no dim: pass an example batch to HybridEnergy")
                with torch.no_grad():
                    k = s(example).shape[1]
            self.eta[self._key(s.name)] = nn.Parameter(torch.zeros(int(k)))

    @staticmethod
    def _key(name: str) -> str:
        return name.replace(".", "_")

    def statistic_values(self, x: Sample) -> dict[str, Tensor]:
        """Every statistic evaluated on ``x``: name -> ``[B, k]``."""
        return {s.name: s(x) for s in self.statistics}

    def hybrid_term(self, x: Sample, sigma: Tensor | None = None) -> Tensor:
        """``Σ_s η_s · T_s(x)``, shape ``[B]``; with ``sigma``, each term scaled by ``(σ_ref/σ)^p_s``."""
        total = None
        for s in self.statistics:
            eta = self.eta[self._key(s.name)]
            term = s(x).to(eta.dtype) @ eta
            p = self.sigma_powers.get(s.name, self.sigma_power)
            if p and sigma is not None:
                term = term * (self.sigma_ref / sigma.to(term.dtype)).pow(p).expand_as(term)
            total = term if total is None else total + term
        return total

    def freeze_eta(self) -> None:
        """Stop training η (``train.eta_lr = 0``).

        If η is all zero the term is identically 0, so from now on :meth:`energy` in training mode
        skips the statistics: the network costs what the vanilla one does and trains exactly as it
        does. Decided here, once, so the training loop never reads η back from the device; sampling
        (eval mode) always evaluates the term, so a calibrated η is always seen there.
        """
        self.eta.requires_grad_(False)
        self._skip_in_training = not any(bool(p.any()) for p in self.eta.values())

    @property
    def trains_as_base(self) -> bool:
        """Whether training is exactly that of :attr:`base` alone (η frozen at zero)."""
        return self._skip_in_training

    def energy(self, x: Sample, sigma: Tensor | None = None) -> Tensor:
        if not self.statistics or (self.training and self._skip_in_training):
            return self.base.energy(x, sigma)
        if self.denoised and sigma is not None:
            e, x = self._denoised(x, sigma)  # the statistics see x̂
        else:
            e = self.base.energy(x, sigma)
        return e - self.hybrid_term(x, sigma)

    def _denoised(self, x: Sample, sigma: Tensor) -> tuple[Tensor, Sample]:
        """The base energy and ``x̂ = x + σ² s_θ(x, σ)``, both differentiable in ``x`` and θ."""
        e, score = self.base.energy_and_score(x, sigma, create_graph=True)
        var = sigma.to(e.dtype) ** 2
        return e, tree.tree_map(lambda a, s: a + var.view(-1, *([1] * (a.dim() - 1))) * s, x, score)

    def parameter_groups(self) -> list[ParameterGroup]:
        """The network at ``lr``; η at ``eta_lr`` without weight decay (``eta_lr = 0`` freezes it)."""
        return [
            ParameterGroup("network", list(self.base.parameters())),
            ParameterGroup("eta", list(self.eta.parameters()), lr_option="eta_lr", weight_decay=False),
        ]

    def freeze(self, group: str) -> None:
        if group == "eta":
            self.freeze_eta()
        else:
            super().freeze(group)

    def log_values(self) -> dict[str, float]:
        """``eta/<component>`` for every component of every statistic."""
        report, cols = self.eta_report(), {}
        for s in self.statistics:
            v = report[s.name]
            vals = v if isinstance(v, list) else [v]
            cols.update({f"eta/{c}": float(x) for c, x in zip(s.names(len(vals)), vals)})
        return cols

    def describe(self) -> dict[str, Any]:
        return {"eta": self.eta_report()}

    def eta_vector(self, table: Mapping[str, float | list[float]] | None = None) -> Tensor:
        """Every component of η in statistic order, as one CPU vector (in η's own dtype); with
        ``table`` (``{statistic: value or [values]}``, as :meth:`eta_report` writes it), those values
        instead of the model's for the statistics it names (a ``ValueError`` for a misfit)."""
        table = dict(table or {})
        unknown = sorted(set(table) - {s.name for s in self.statistics})
        if unknown:
            raise ValueError(f"names {unknown}; the hybrid's statistics: {[s.name for s in self.statistics]}")
        parts = []
        for s in self.statistics:
            current = self.eta[self._key(s.name)].detach().cpu()
            value = table.get(s.name)
            v = current if value is None else torch.tensor(value, dtype=current.dtype).reshape(-1)
            if v.numel() != current.numel():
                raise ValueError(f"{s.name!r}: {v.numel()} values for {current.numel()} components")
            parts.append(v)
        return torch.cat(parts)

    def eta_sizes(self) -> dict[str, int]:
        """Components per statistic, in order (the layout of :meth:`eta_vector`)."""
        return {s.name: self.eta[self._key(s.name)].numel() for s in self.statistics}

    def load_eta(self, eta: Tensor | Mapping[str, Tensor]) -> None:
        """Set η from a vector in :meth:`eta_vector`'s layout or a ``{key: tensor}`` state
        (a checkpoint's ``calibrated_eta``); a mismatch is a ``ValueError``."""
        if isinstance(eta, Mapping):
            for k, v in eta.items():
                if k not in self.eta or self.eta[k].shape != v.shape:
                    raise ValueError(f"η {k!r} does not fit the model's statistics")
            parts = [(self.eta[k], v) for k, v in eta.items()]
        else:
            sizes = self.eta_sizes()
            parts = list(zip((self.eta[self._key(n)] for n in sizes), eta.split(list(sizes.values()))))
        with torch.no_grad():
            for param, value in parts:
                param.copy_(value.to(param))

    @contextlib.contextmanager
    def eta_at(self, eta: Tensor) -> Iterator[HybridEnergy]:
        """Temporarily set η (a vector in :meth:`eta_vector`'s layout); restored on exit."""
        before = self.eta_vector()
        self.load_eta(eta)
        try:
            yield self
        finally:
            self.load_eta(before)

    def eta_state(self, eta: Tensor | None = None) -> dict[str, Tensor]:
        """η (or the vector ``eta`` in :meth:`eta_vector`'s layout) as ``{key: tensor}`` on the CPU,
        what a checkpoint stores as ``calibrated_eta``."""
        if eta is None:
            return {k: v.detach().clone().cpu() for k, v in self.eta.items()}
        sizes = self.eta_sizes()
        parts = eta.detach().cpu().split(list(sizes.values()))
        return {self._key(n): p.to(self.eta[self._key(n)].dtype).clone() for n, p in zip(sizes, parts)}

    def eta_report(self) -> dict[str, float | list[float]]:
        """η per statistic by name (a float for one component, a list otherwise)."""
        out: dict[str, float | list[float]] = {}
        for s in self.statistics:
            v = self.eta[self._key(s.name)].detach().cpu().tolist()
            out[s.name] = v[0] if len(v) == 1 else v
        return out

    def extra_repr(self) -> str:
        scale = ""
        if self.sigma_power or self.sigma_powers:
            scale = f", sigma_power={self.sigma_power}, sigma_ref={self.sigma_ref:.4g}"
        if self.sigma_powers:
            scale += f", sigma_powers={self.sigma_powers}"
        if self.denoised:
            scale += ", denoised=True"
        return f"statistics={[s.name for s in self.statistics]}{scale}"
