"""The Laplacian statistic: ~0 on a plane, grows with noise, exact gradient, several scales."""

import pytest
import torch
from hebm_pointcloud.geometry import knn_indices, laplacian
from hebm_pointcloud.statistics import LaplacianStatistic, laplacian_statistic


def _grid(n=24, h=0.1):
    u = torch.arange(n, dtype=torch.float64) * h
    xx, yy = torch.meshgrid(u, u, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten(), torch.zeros(n * n, dtype=torch.float64)], -1).unsqueeze(0)


def test_plane_is_flat_and_noise_raises_it():
    x = _grid()
    g = torch.Generator().manual_seed(0)
    normal = torch.zeros_like(x)
    normal[..., 2] = torch.randn(x.shape[1], generator=g, dtype=torch.float64)
    stat = laplacian_statistic(k=8)
    flat = stat(x).item()
    # only the boundary of the grid has a lopsided neighbourhood: ≪ the spacing² (0.01)
    assert flat < 0.1 * 0.1**2
    # the component normal to the plane is exactly zero
    idx = knn_indices(x, 8)
    lap_normal = (x - x[0, idx[0]].mean(1))[..., 2]
    assert lap_normal.abs().max().item() == 0.0
    values = [stat(x + s * normal).item() for s in (0.01, 0.03, 0.1)]
    assert flat < values[0] < values[1] < values[2]
    # normal noise of std s ≪ spacing (graph unchanged) adds ≈ s²(1 + 1/k) per point
    assert values[1] - flat == pytest.approx(0.03**2 * (1 + 1 / 8), rel=0.2)


def test_gradient_matches_finite_differences():
    x = torch.rand(2, 30, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    idx = knn_indices(x, 6)
    assert torch.autograd.gradcheck(lambda y: laplacian(y, idx=idx), (x.clone().requires_grad_(True),))
    # the statistic rebuilds the same graph for tiny perturbations, so it passes too
    stat = LaplacianStatistic([4, 8])
    assert torch.autograd.gradcheck(lambda y: stat(y), (x.clone().requires_grad_(True),), eps=1e-7)


def test_gradient_is_the_fixed_graph_quadratic_form():
    x = torch.rand(1, 20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    idx = knn_indices(x, 5)
    (grad,) = torch.autograd.grad(laplacian(x, idx=idx).sum(), x)
    w = torch.zeros(20, 20, dtype=torch.float64)
    w[torch.arange(20).repeat_interleave(5), idx[0].flatten()] = 1 / 5
    lap = torch.eye(20, dtype=torch.float64) - w
    assert torch.allclose(grad[0], 2 / 20 * lap.T @ lap @ x[0].detach())


def test_multiscale_components():
    stat = laplacian_statistic(ks=[4, 8, 16])
    x = torch.rand(3, 40, 3)
    t = stat(x)
    assert t.shape == (3, 3) and stat.names(3) == ["laplacian.k4", "laplacian.k8", "laplacian.k16"]
    assert torch.allclose(t[:, 1], laplacian(x, k=8))
    with pytest.raises(ValueError, match="distinct positive"):
        LaplacianStatistic([4, 4])


def test_log_laplacian_gradient_scales_like_a_score():
    from hebm_pointcloud.statistics import log_laplacian_statistic

    n = 12
    x = _grid(n)
    ij = torch.arange(n * n)
    inner = ((ij // n - (n - 1) / 2).abs() < 3) & ((ij % n - (n - 1) / 2).abs() < 3)  # away from the border
    g = torch.Generator().manual_seed(3)
    bump = torch.zeros_like(x)
    bump[..., 2] = torch.randn(x.shape[1], generator=g, dtype=torch.float64)
    stat = log_laplacian_statistic(k=8, eps=1e-8)
    assert stat.name == "laplacian_log"
    grads = []
    for s in (1e-3, 1e-2):  # displacements far above eps, far below the spacing (graph unchanged)
        y = (x + s * bump).requires_grad_(True)
        (grad,) = torch.autograd.grad(stat(y).sum(), y)
        grads.append(grad[0, inner, 2].norm().item())
    # the normal gradient of log‖L‖² is ∝ 1/displacement: ten times the noise, a tenth of the pull
    assert grads[0] / grads[1] == pytest.approx(10, rel=0.1)
    y = (x + 1e-2 * bump).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: stat(z), (y,), eps=1e-7, atol=1e-5)


def _tetrahedron_and_centre() -> torch.Tensor:
    """A regular tetrahedron with unit vertices and its centre, ``[1, 5, 3]``."""
    v = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64) / 3**0.5
    return torch.cat([torch.zeros(1, 3, dtype=torch.float64), v]).unsqueeze(0)


def test_scaled_laplacian_known_value_and_scale_free():
    from hebm_pointcloud.statistics import STATISTICS, scaled_laplacian_statistic

    # a regular tetrahedron (unit vertices) and its centre; with k = 4 every point sees all others.
    # Centre: L = 0. Vertex v: L = v − (−v + 0)/4 = 1.25 v, ‖L‖² = 25/16; mean squared distance to
    # the others = (1 + 3·8/3)/4 = 9/4, so the ratio is 25/36 and T = 4·(25/36)/5 = 5/9.
    x = _tetrahedron_and_centre()
    stat = scaled_laplacian_statistic(k=4, eps=1e-9)
    assert stat.name == "laplacian_scaled" and STATISTICS["laplacian_scaled"] is scaled_laplacian_statistic
    assert stat(x).item() == pytest.approx(5 / 9, rel=1e-9)
    assert laplacian_statistic(k=4)(x).item() == pytest.approx(4 * 25 / 16 / 5, rel=1e-9)
    # shrinking the cloud (or a clump) divides the plain Laplacian by the scale², not this one
    y = torch.rand(2, 50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(stat(0.01 * y), stat(y), rtol=1e-5)
    assert "relative='spacing'" in repr(stat)
    assert torch.autograd.gradcheck(lambda z: stat(z), (y.clone().requires_grad_(True),), eps=1e-7)


def test_shape_laplacian_known_value_scale_free_and_no_dilation():
    from hebm_pointcloud.statistics import STATISTICS, shape_laplacian_statistic

    # the tetrahedron and its centre again: plain T = 5/4 (see above); the centroid is the origin
    # and the mean squared radius (0 + 4·1)/5 = 4/5, so T = (5/4)/(4/5) = 25/16
    x = _tetrahedron_and_centre()
    stat = shape_laplacian_statistic(k=4, eps=1e-9)
    assert stat.name == "laplacian_shape" and STATISTICS["laplacian_shape"] is shape_laplacian_statistic
    assert stat(x).item() == pytest.approx(25 / 16, rel=1e-9)
    y = torch.rand(2, 60, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(stat(0.01 * y + 3.0), stat(y), rtol=1e-5)
    # degree-0 homogeneous and translation-invariant: the gradient is orthogonal to the dilation
    # x − x̄, so following it cannot shrink the cloud (the plain Laplacian's gradient can and does)
    y.requires_grad_(True)
    (g,) = torch.autograd.grad(stat(y).sum(), y)
    dil = (y - y.mean(1, keepdim=True)).detach()
    cos = (g * dil).sum((1, 2)) / (g.norm(dim=(1, 2)) * dil.norm(dim=(1, 2)))
    assert cos.abs().max() < 1e-6
    (g0,) = torch.autograd.grad(laplacian_statistic(k=4)(y).sum(), y)
    cos0 = (g0 * dil).sum((1, 2)) / (g0.norm(dim=(1, 2)) * dil.norm(dim=(1, 2)))
    assert cos0.min() > 0.05  # the plain form's gradient has a dilation component (descent shrinks)
    assert torch.autograd.gradcheck(lambda z: stat(z), (y,), eps=1e-7)


def test_spacing_known_value_scale_free_and_clumps_lower_it():
    from hebm_pointcloud.statistics import STATISTICS, spacing_statistic

    # tetrahedron + centre: every point's nearest other point is at distance 1 (vertex–vertex is
    # √(8/3)); mean squared radius 4/5, so T = log(1 / (4/5)) = log(5/4)
    x = _tetrahedron_and_centre()
    stat = spacing_statistic(eps=1e-9)
    assert stat.name == "spacing" and STATISTICS["spacing"] is spacing_statistic and stat.dim == 1
    assert stat(x).item() == pytest.approx(torch.log(torch.tensor(1.25)).item(), rel=1e-7)
    # an even grid against the same grid with every other point pulled onto its neighbour
    g = _grid(12)
    clumped = g.clone()
    clumped[:, 1::2, 1] -= 0.09  # odd j onto its even neighbour j − 1
    assert stat(g).item() > stat(clumped).item() + 1.0
    y = torch.rand(2, 60, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    assert torch.allclose(stat(0.01 * y - 2.0), stat(y), rtol=1e-5)
    # degree-0 homogeneous: the gradient has no dilation component
    y.requires_grad_(True)
    (grad,) = torch.autograd.grad(stat(y).sum(), y)
    dil = (y - y.mean(1, keepdim=True)).detach()
    cos = (grad * dil).sum((1, 2)) / (grad.norm(dim=(1, 2)) * dil.norm(dim=(1, 2)))
    assert cos.abs().max() < 1e-6
    assert torch.autograd.gradcheck(lambda z: stat(z), (y,), eps=1e-7)
    with pytest.raises(ValueError, match=r"eps must be a finite number in \(0, 1000\], got 0"):
        spacing_statistic(eps=0)


def test_size_is_the_mean_squared_radius():
    from hebm_pointcloud.statistics import STATISTICS, size_statistic

    x = _tetrahedron_and_centre()  # centroid at the origin, squared radii 0 and four 1s
    stat = size_statistic()
    assert STATISTICS["size"] is size_statistic and stat.dim == 1
    assert stat(x + 2.0).item() == pytest.approx(4 / 5, rel=1e-12)  # translation-invariant
    assert stat(3 * x).item() == pytest.approx(9 * 4 / 5, rel=1e-12)


def test_inertia_known_value_axes_translation_and_size():
    """The 8 corners of an a × b × c box: second moments a²/4, b²/4, c²/4 and no coupling; a quarter
    turn about z swaps xx and yy and flips xy's sign on a sheared cloud; moving the cloud changes
    nothing; the trace is ``size``; the gradient is the linear one autograd gives (gradcheck)."""
    from hebm_pointcloud.statistics import STATISTICS, inertia_statistic, size_statistic

    stat = inertia_statistic()
    assert STATISTICS["inertia"] is inertia_statistic and stat.dim == 6
    assert stat.names(6) == ["inertia.xx", "inertia.xy", "inertia.xz", "inertia.yy", "inertia.yz", "inertia.zz"]
    a, b, c = 2.0, 1.0, 0.5
    corners = torch.tensor(
        [[sx * a / 2, sy * b / 2, sz * c / 2] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)],
        dtype=torch.float64,
    )
    t = stat(corners[None])[0]
    assert torch.allclose(t, torch.tensor([a * a / 4, 0, 0, b * b / 4, 0, c * c / 4], dtype=torch.float64))
    sheared = corners @ torch.tensor([[1.0, 0.3, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    turn = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    s0, s1 = stat(sheared[None])[0], stat((sheared @ turn)[None])[0]
    assert s0[1] != 0 and torch.allclose(s1[[0, 1, 3]], torch.stack([s0[3], -s0[1], s0[0]]))
    x = torch.randn(3, 50, 3, dtype=torch.float64)
    assert torch.allclose(stat(x + torch.tensor([5.0, -2.0, 1.0], dtype=torch.float64)), stat(x))
    assert torch.allclose(stat(x)[:, [0, 3, 5]].sum(1, keepdim=True), size_statistic()(x))
    assert torch.autograd.gradcheck(lambda y: stat(y), (x[:1, :10].clone().requires_grad_(),))


def test_d2_known_values_all_pairs_and_gradient():
    import math

    from hebm_pointcloud.statistics import STATISTICS, d2_statistic, pair_partners

    stat = d2_statistic(bins=4, max_distance=2.0)  # centres 0.25, 0.75, 1.25, 1.75; bandwidth 0.5
    assert STATISTICS["d2"] is d2_statistic and stat.dim == 4 and stat.centres == [0.25, 0.75, 1.25, 1.75]
    # a regular tetrahedron with edge 1: all six pairs at distance 1
    tet = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64) / math.sqrt(8)
    expected = torch.tensor([math.exp(-((1 - c) ** 2) / (2 * 0.25)) for c in stat.centres], dtype=torch.float64)
    assert torch.allclose(stat(tet.unsqueeze(0))[0], expected, rtol=1e-9)
    # with as many partners as other points it is the mean over all pairs i < j
    y = torch.rand(3, 40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    i, j = torch.triu_indices(40, 40, 1)
    d = (y[:, i] - y[:, j]).norm(dim=-1)
    brute = torch.stack([torch.exp(-((d - c) ** 2) / (2 * 0.25)).mean(-1) for c in stat.centres], -1)
    assert torch.allclose(d2_statistic(bins=4, partners=39)(y), brute, rtol=1e-9)
    # with fewer partners it estimates that mean; a stretched shape moves mass to the far centres
    assert (stat(y) - brute).abs().max() < 0.05
    far = stat(y * torch.tensor([3.0, 1, 1], dtype=torch.float64))
    assert far[:, 2:].sum() > stat(y)[:, 2:].sum()
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: stat(z), (y[:1],), eps=1e-7)
    # its hand-written backward is differentiable again (score matching differentiates the score)
    small = d2_statistic(bins=3, max_distance=2.0, partners=4)
    assert torch.autograd.gradgradcheck(lambda z: small(z), (y[:2, :9].detach().clone().requires_grad_(),))
    # and the gradient of a weighted sum is that of the plain formula (what autograd alone gives)
    w = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    part = d2_statistic(bins=4, partners=7)
    dist = ((y[:, :, None] - y[:, pair_partners(40, 7, y.device)]).pow(2).sum(-1) + 1e-12).sqrt()
    plain = torch.stack([torch.exp(-((dist - c) ** 2) / (2 * 0.25)).mean((1, 2)) for c in stat.centres], -1)
    g_plain = torch.autograd.grad((plain @ w).sum(), y)[0]
    g_fused = torch.autograd.grad((part(y) @ w).sum(), y)[0]
    assert torch.allclose(g_fused, g_plain, rtol=1e-10, atol=1e-14)
    with pytest.raises(ValueError, match=r"bins must be an integer in \[1, 1024\], got 0"):
        d2_statistic(bins=0)
