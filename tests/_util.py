"""Shared test helpers: a plain Adam loop (independent of the Trainer) and known targets."""

from __future__ import annotations

import torch


def fit(model, objective, data, steps, lr=1e-2, eta_lr=None, batch_size=512, seed=0, cosine=True):
    """Minimise ``objective`` on random mini-batches of ``data``; η gets ``eta_lr`` if given."""
    g = torch.Generator().manual_seed(seed)
    objective.setup(data[:batch_size])
    eta = [p for n, p in model.named_parameters() if n.startswith("eta.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("eta.")] + list(objective.parameters())
    groups = [{"params": rest, "lr": lr}]
    if eta:
        groups.append({"params": eta, "lr": eta_lr or lr})
    opt = torch.optim.Adam(groups)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cosine else None
    for _ in range(steps):
        idx = torch.randint(0, data.shape[0], (batch_size,), generator=g)
        out = objective(model, data[idx])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return model


def anisotropic_gaussian(dim=10, seed=0):
    """Mean and a rotated anisotropic precision (stds from 0.5 to 2) with a known log Z."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
    stds = torch.logspace(-0.301, 0.301, dim)
    cov = q @ torch.diag(stds**2) @ q.T
    mean = torch.linspace(-1, 1, dim)
    return mean, torch.linalg.inv(cov), cov


def assert_state_equal(a, b, where: str = "") -> None:
    """Recursive ``torch.equal`` over (nested) state dicts, lists and scalars."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), f"tensors differ at {where}"
    elif isinstance(a, dict):
        assert set(a) == set(b), f"keys differ at {where}: {set(a) ^ set(b)}"
        for k in a:
            assert_state_equal(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"lengths differ at {where}"
        for i, (u, v) in enumerate(zip(a, b)):
            assert_state_equal(u, v, f"{where}[{i}]")
    else:
        assert a == b, f"{a!r} != {b!r} at {where}"
