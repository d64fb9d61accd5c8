"""Statistics: named, parameter-free, differentiable maps ``x -> [B, k]``.

A statistic encodes domain knowledge (valency, blank margins, surface smoothness). It has no
parameters of its own; the hybrid energy learns one weight η per component. Write one by
subclassing :class:`Statistic` or by decorating a plain function with :func:`statistic`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from hebm_core.tree import Sample

__all__ = ["Statistic", "FunctionStatistic", "Moments", "statistic", "identity", "square", "sin_sum", "radius"]


class Statistic:
    """Base class. Subclasses set :attr:`name` and implement :meth:`compute` returning ``[B, k]``."""

    name: str = "statistic"
    #: optional names of the k components (defaults to ``name[i]``)
    component_names: Sequence[str] | None = None

    def compute(self, x: Sample) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Sample) -> Tensor:
        t = self.compute(x)
        if t.dim() == 1:
            t = t.unsqueeze(-1)
        if t.dim() != 2:
            raise ValueError(f"statistic {self.name!r} must return [B] or [B, k], got shape {tuple(t.shape)}")
        return t

    def names(self, k: int) -> list[str]:
        """Names of the ``k`` components, for reports."""
        if self.component_names is not None:
            if len(self.component_names) != k:
                raise ValueError(
                    f"statistic {self.name!r} declares {len(self.component_names)} names for {k} components"
                )
            return [f"{self.name}.{c}" for c in self.component_names]
        return [self.name] if k == 1 else [f"{self.name}[{i}]" for i in range(k)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class FunctionStatistic(Statistic):
    """A statistic made from a plain function (see :func:`statistic`)."""

    def __init__(self, fn: Callable[[Sample], Tensor], name: str, component_names: Sequence[str] | None = None) -> None:
        self.fn = fn
        self.name = name
        self.component_names = component_names
        self.__doc__ = fn.__doc__

    def compute(self, x: Sample) -> Tensor:
        return self.fn(x)


class Components(Statistic):
    """Some named components of a statistic, in the order given: ``components = ["C", "N"]`` on any
    statistic entry whose factory does not take that option itself (the name stays the base's)."""

    def __init__(self, base: Statistic, names: Sequence[str]) -> None:
        known = list(base.component_names or [])
        if isinstance(names, str) or not names or [n for n in names if n not in known]:
            raise ValueError(
                f"components must be a non-empty list of {base.name!r}'s components {known}, got {names!r}"
            )
        self.base, self.name = base, base.name
        self.index = [known.index(n) for n in names]
        self.component_names = tuple(names)
        self.dim = len(self.index)

    def compute(self, x: Sample) -> Tensor:
        return self.base(x)[:, self.index]

    def __repr__(self) -> str:
        return f"Components({self.base!r}, {list(self.component_names)!r})"


class Moments(Statistic):
    """``[T, T², …, T^m]`` of a statistic ``T``: its components and their powers up to ``orders``.

    Moment matching on ``T`` alone fits one η that shifts every sample's ``T`` towards the data's
    mean, and a strong tilt also narrows the spread of ``T`` (on point clouds it halves the spread
    of the Laplacian over shapes, so samples grow alike). Matching ``E[T²]`` too fits the data's
    variance of ``T`` as well: the maximum-entropy tilt with the data's first ``m`` moments.
    In a config: any statistic entry with ``moments = m`` (named ``<name>_m<m>``).
    """

    def __init__(self, base: Statistic, orders: int = 2) -> None:
        if orders < 1:
            raise ValueError(f"moments: orders must be >= 1, got {orders}")
        self.base, self.orders = base, int(orders)
        self.name = f"{base.name}_m{self.orders}"
        dim = getattr(base, "dim", None)
        if dim is not None:
            self.dim = int(dim) * self.orders
        powers = range(1, self.orders + 1)
        if base.component_names:
            self.component_names = [f"{c}^{p}" for p in powers for c in base.component_names]
        elif dim == 1:
            self.component_names = [f"p{p}" for p in powers]

    def compute(self, x: Sample) -> Tensor:
        t = self.base(x)
        return torch.cat([t.pow(p) for p in range(1, self.orders + 1)], -1)

    def __repr__(self) -> str:
        return f"Moments({self.base!r}, orders={self.orders})"


def statistic(
    fn: Callable[[Sample], Tensor] | None = None,
    *,
    name: str | None = None,
    component_names: Sequence[str] | None = None,
):
    """Decorator turning ``def f(x) -> Tensor[B] | Tensor[B,k]`` into a :class:`Statistic`.

    Use bare (``@statistic``) or with options (``@statistic(name="margin")``).
    """

    def wrap(f: Callable[[Sample], Tensor]) -> FunctionStatistic:
        return FunctionStatistic(f, name or f.__name__, component_names)

    return wrap(fn) if fn is not None else wrap


@statistic
def identity(x: Tensor) -> Tensor:
    """``T(x) = x`` (flattened): matching it matches the mean."""
    return x.flatten(1)


@statistic
def square(x: Tensor) -> Tensor:
    """``T(x) = x²`` element-wise (flattened): matching it matches second moments."""
    return x.flatten(1).pow(2)


@statistic
def sin_sum(x: Tensor) -> Tensor:
    """``T(x) = sin(1ᵀx)``: the paper's uninformative control; its η should stay near 0."""
    return torch.sin(x.flatten(1).sum(1))


@statistic
def radius(x: Tensor) -> Tensor:
    """``T(x) = ‖x‖``: informative for ring-shaped data."""
    return x.flatten(1).norm(dim=1)
