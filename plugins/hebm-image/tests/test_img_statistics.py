"""Image statistics on hand-made images with known answers, and their gradients against finite differences."""

import math

import pytest
import torch
from hebm_image import plugin
from hebm_image.statistics import CentreOfMass, Ink, Margin, frame_masks


def _blank(n=2, side=8):
    return torch.zeros(n, 1, side, side, dtype=torch.float64)


def test_blank_border_gives_zero_margin_whatever_the_interior_holds():
    x = _blank()
    x[:, :, 2:6, 2:6] = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    for width in (1, 2):
        assert Margin(width=width)(x).tolist() == [[0.0], [0.0]]
        assert Margin(width=width, per_side=True)(x).abs().sum() == 0


def test_ink_placed_in_the_frame_gives_the_exact_value_on_the_right_side():
    x = _blank(1)
    x[0, 0, 0, 3] = 0.5  # top row
    x[0, 0, 7, 7] = 0.25  # bottom-right corner: counts for the bottom
    x[0, 0, 4, 0] = 1.0  # left column
    x[0, 0, 3, 6] = 0.125  # right, second column from the edge: inside a width-2 frame only
    x[0, 0, 4, 4] = 3.0  # interior
    assert Margin(width=1)(x).item() == pytest.approx(1.75)
    assert Margin(width=2)(x).item() == pytest.approx(1.875)
    sides = Margin(width=2, per_side=True)(x)[0].tolist()
    assert sides == pytest.approx([0.5, 0.25, 1.0, 0.125])
    assert Margin(width=2, per_side=True).names(4) == ["margin.top", "margin.bottom", "margin.left", "margin.right"]


def test_frame_masks_partition_the_frame():
    m = frame_masks(8, 6, 2)
    assert m.sum(0).max() == 1  # disjoint
    frame = torch.ones(8, 6)
    frame[2:6, 2:4] = 0
    assert torch.equal(m.sum(0), frame)
    with pytest.raises(ValueError, match="no interior"):
        Margin(width=4)(torch.zeros(1, 1, 8, 8))


def _finite_difference(stat, x, h=1e-6):
    flat = x.flatten()
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        e = torch.zeros_like(flat)
        e[i] = h
        up, down = stat((flat + e).view_as(x)).sum(), stat((flat - e).view_as(x)).sum()
        grad[i] = (up - down) / (2 * h)
    return grad.view_as(x)


@pytest.mark.parametrize("stat", [Margin(width=1), Margin(width=2, per_side=True), Ink(), CentreOfMass()])
def test_autograd_gradient_matches_finite_differences(stat):
    x = torch.rand(2, 1, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) + 0.1
    x.requires_grad_(True)
    g = torch.autograd.grad(stat(x).sum(), x)[0]
    assert torch.allclose(g, _finite_difference(stat, x.detach()), atol=1e-6)


def test_margin_gradient_is_the_frame_mask():
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    g = torch.autograd.grad(Margin(width=2)(x).sum(), x)[0][0, 0]
    assert torch.equal(g, frame_masks(8, 8, 2).sum(0).double())


def test_ink_is_the_total_intensity_and_sin_sum_is_the_sine_of_it():
    x = _blank(3)
    x[0, 0, 1, 1] = 2.0
    x[1] = 0.25  # 64 pixels
    x[2, 0, 3, :] = math.pi / 16  # 8 pixels: total pi/2
    assert Ink()(x).flatten().tolist() == pytest.approx([2.0, 16.0, math.pi / 2])
    sin_sum = plugin.statistics["sin_sum"]()
    assert sin_sum(x).flatten().tolist() == pytest.approx([math.sin(2.0), math.sin(16.0), 1.0])


def test_centre_of_mass_of_a_single_pixel():
    x = _blank(1)
    x[0, 0, 0, 7] = 1.0  # top-right corner of an 8x8 image: (-3.5, +3.5) from the centre
    assert CentreOfMass()(x)[0].tolist() == pytest.approx([-3.5, 3.5], rel=1e-3)


def test_bad_input_and_options_are_one_line_errors():
    with pytest.raises(ValueError, match="needs images"):
        Margin()(torch.zeros(3, 64))
    with pytest.raises(ValueError, match="width"):
        Margin(width=0)
    with pytest.raises(ValueError, match="per_side"):
        Margin(per_side="yes")
