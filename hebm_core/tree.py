"""Operations on samples that are a tensor or a structure of tensors.

A sample ``x`` is either one tensor with the batch on dimension 0 (images ``[B,C,H,W]``,
point clouds ``[B,N,3]``) or a tuple / named tuple / dict of such tensors (a molecular graph
``(X [B,N,F], A [B,C,N,N], mask [B,N])``). Floating-point leaves are the *state* that samplers
move and scores differentiate; every other leaf (a boolean node mask, integer counts) is
*context*: carried along unchanged, never perturbed, never differentiated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils import _pytree as pytree

Sample = Any  # a Tensor or a pytree of Tensors, batch on dim 0

__all__ = [
    "Sample",
    "batch_size",
    "batch_dot",
    "is_state",
    "randn_like",
    "state_leaves",
    "tree_map",
    "zeros_like",
    "per_sample_finite",
    "all_finite",
    "with_grad",
    "detach",
    "to_device",
    "index",
    "cat",
]


def is_state(leaf: Any) -> bool:
    """True for a floating-point tensor: a leaf samplers move and scores differentiate."""
    return isinstance(leaf, Tensor) and leaf.is_floating_point()


def tree_map(fn: Callable[..., Tensor], x: Sample, *rest: Sample) -> Sample:
    """Apply ``fn`` leaf-wise over the state leaves of ``x`` and ``rest``; context leaves of ``x`` pass through."""
    if isinstance(x, Tensor):  # fast path: a plain tensor sample (the hot loop of most domains)
        return fn(x, *rest) if x.is_floating_point() else x
    leaves, spec = pytree.tree_flatten(x)
    others = [pytree.tree_flatten(r)[0] for r in rest]
    out = []
    for i, leaf in enumerate(leaves):
        if is_state(leaf):
            out.append(fn(leaf, *(o[i] for o in others)))
        else:
            out.append(leaf)
    return pytree.tree_unflatten(out, spec)


def state_leaves(x: Sample) -> list[Tensor]:
    """The floating-point leaves of ``x`` in a fixed order."""
    if isinstance(x, Tensor):
        return [x] if x.is_floating_point() else []
    return [leaf for leaf in pytree.tree_leaves(x) if is_state(leaf)]


def batch_size(x: Sample) -> int:
    """Number of samples in the batch (size of dim 0 of the first leaf)."""
    if isinstance(x, Tensor):
        return x.shape[0]
    return pytree.tree_leaves(x)[0].shape[0]


def randn_like(x: Sample) -> Sample:
    """Standard normal noise with the structure of ``x`` (context leaves copied)."""
    return tree_map(torch.randn_like, x)


def zeros_like(x: Sample) -> Sample:
    return tree_map(torch.zeros_like, x)


def batch_dot(a: Sample, b: Sample) -> Tensor:
    """Per-sample inner product ``<a_i, b_i>`` summed over all state leaves: shape ``[B]``."""
    la, lb = state_leaves(a), state_leaves(b)
    total = None
    for u, v in zip(la, lb, strict=True):
        term = (u * v).flatten(1).sum(1)
        total = term if total is None else total + term
    return total


def all_finite(x: Sample) -> bool:
    """Whether every state entry is finite: one sum per leaf and one host sync.

    A sum is NaN/Inf exactly when some entry is, or when finite entries overflow it, which for a
    sampler's chains means divergence just the same.
    """
    total = sum(leaf.sum(dtype=torch.float64) for leaf in state_leaves(x))
    return math.isfinite(float(total))


def per_sample_finite(x: Sample) -> Tensor:
    """Boolean ``[B]``: every state entry of sample i is finite."""
    ok = None
    for leaf in state_leaves(x):
        f = torch.isfinite(leaf).flatten(1).all(1)
        ok = f if ok is None else ok & f
    return ok


def with_grad(x: Sample) -> Sample:
    """A detached copy of ``x`` whose state leaves require grad."""
    return tree_map(lambda t: t.detach().requires_grad_(True), x)


def detach(x: Sample) -> Sample:
    return tree_map(lambda t: t.detach(), x)


def to_device(x: Sample, device: torch.device | str) -> Sample:
    """Move every tensor leaf (state and context) to ``device``."""
    return pytree.tree_map(lambda t: t.to(device) if isinstance(t, Tensor) else t, x)


def index(x: Sample, idx: Tensor | slice) -> Sample:
    """Select samples ``idx`` along the batch dimension of every tensor leaf."""
    return pytree.tree_map(lambda t: t[idx] if isinstance(t, Tensor) else t, x)


def cat(samples: list[Sample]) -> Sample:
    """Concatenate a list of equally structured samples along the batch dimension."""
    flat = [pytree.tree_flatten(s) for s in samples]
    spec = flat[0][1]
    leaves = [torch.cat([f[0][i] for f in flat], 0) for i in range(len(flat[0][0]))]
    return pytree.tree_unflatten(leaves, spec)


def where(mask: Tensor, a: Sample, b: Sample) -> Sample:
    """Per-sample select: sample i from ``a`` where ``mask[i]`` else from ``b`` (state leaves only)."""

    def pick(u: Tensor, v: Tensor) -> Tensor:
        m = mask.view(-1, *([1] * (u.dim() - 1)))
        return torch.where(m, u, v)

    return tree_map(pick, a, b)
