"""Region validation, bad input, and Euclidean box semantics against brute force."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import boxlib
from boxlib import Region
from boxlib.testing import strategies as bst


def test_negative_offset_names_argument_value_and_fix():
    with pytest.raises(ValueError, match=r"offset must be >= 0.*-0\.5.*softplus"):
        Region(torch.zeros(2, 3), torch.tensor([[0.1, -0.5, 0.2], [0.0, 0.0, 0.0]]))


def test_mismatched_shapes_name_both_shapes():
    with pytest.raises(ValueError, match=r"center \(4, 3\) and offset \(5, 3\)"):
        Region(torch.zeros(4, 3), torch.ones(5, 3))


@pytest.mark.parametrize("field", ["center", "offset"])
def test_non_finite_values_are_refused(field):
    args = {"center": torch.zeros(2, 3), "offset": torch.ones(2, 3)}
    args[field][1, 2] = float("nan")
    with pytest.raises(ValueError, match=rf"{field} has 1 non-finite"):
        Region(**args)


def test_wrong_types_are_refused():
    with pytest.raises(TypeError, match="center must be a torch.Tensor"):
        Region([0.0, 1.0], torch.ones(2))
    with pytest.raises(TypeError, match="floating point"):
        Region(torch.zeros(3, dtype=torch.long), torch.ones(3))
    with pytest.raises(TypeError, match="share a dtype"):
        Region(torch.zeros(3, dtype=torch.float64), torch.ones(3))


def test_region_is_immutable():
    r = Region(torch.zeros(3), torch.ones(3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.offset = torch.zeros(3)


def test_geometry_region_checks_center_and_offset_size():
    ball = boxlib.get_geometry("poincare", 3)
    with pytest.raises(ValueError, match=r"center is not a valid point.*norm 2.*boundary.*project"):
        ball.region(torch.tensor([2.0, 0.0, 0.0]), torch.ones(3))
    with pytest.raises(ValueError, match="offset must have 3 coordinates"):
        ball.region(torch.zeros(3), torch.ones(4))
    hyperboloid = boxlib.get_geometry("lorentz", 3)
    with pytest.raises(ValueError, match="last axis 4"):
        hyperboloid.region(torch.zeros(3), torch.ones(3))


def test_check_point_explains_why():
    hyperboloid = boxlib.get_geometry("lorentz", 2)
    check = hyperboloid.check_point(torch.tensor([1.0, 1.0, 1.0]), explain=True)
    assert not check.ok and "<x, x>_L" in check.reason
    check = hyperboloid.check_point(torch.tensor([-1.0, 0.0, 0.0]), explain=True)
    assert not check.ok and "lower sheet" in check.reason
    assert hyperboloid.check_point(hyperboloid.project(torch.tensor([5.0, 1.0, 1.0])))


def test_indexing_and_concatenation_keep_fields_aligned():
    center, offset = torch.randn(4, 5, 3), torch.rand(4, 5, 3)
    r = Region(center, offset)
    assert torch.equal(r[:, None].center, center[:, None]) and r[:, None].batch_shape == (4, 1, 5)
    assert torch.equal(r[2].offset, offset[2]) and r[..., 1].batch_shape == (4,)
    both = Region.cat([r, r[:1]], dim=0)
    assert both.batch_shape == (5, 5) and torch.equal(both.center[4], center[0])


def test_capability_error_names_the_geometry():
    with pytest.raises(boxlib.CapabilityError, match=r"'exact_intersection'.*'lorentz'"):
        boxlib.get_geometry("lorentz", 2).intersect([])


# -- Euclidean boxes against independent formulas ----------------------------------------
EUCLID = boxlib.get_geometry("euclidean", 3)


def _violation(lower: torch.Tensor, upper: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (torch.relu(lower - x) + torch.relu(x - upper)).sum(-1)


def test_distance_to_region_on_a_hand_computed_example():
    box = Region(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    x = torch.tensor([3.0, 0.5], dtype=torch.float64)
    e2 = boxlib.get_geometry("euclidean", 2)
    # outside: 3 - 1 = 2 on the first axis; inside: clipped point (1, 0.5) is 1.5 from the center.
    assert float(e2.distance_to_region(box, x, alpha=0.2)) == pytest.approx(2 + 0.2 * 1.5)


@given(st.data())
def test_euclidean_contains_and_outside_distance_match_corners(data):
    r = data.draw(bst.regions(EUCLID, (6,)))
    x = data.draw(bst.points(EUCLID, (6,), max_abs=4.0))
    lower, upper = r.center - r.offset, r.center + r.offset
    brute = ((x >= lower) & (x <= upper)).all(-1)
    # Away from the faces: exactly on one, |x - c| <= o and lower <= x round differently.
    clear = torch.minimum((x - lower).abs(), (x - upper).abs()).amin(-1) > 1e-9
    assert torch.equal(EUCLID.contains(r, x, tol=0.0)[clear], brute[clear])
    outside, _ = EUCLID.distance_to_region_parts(r, x)
    torch.testing.assert_close(outside, _violation(lower, upper, x))


def test_boxes_that_miss_by_one_subnormal_ulp_intersect_to_an_empty_box():
    # Found by hypothesis in CI: (0 - 5e-324) / 2 rounds to 0, which lost the emptiness.
    for dtype in (torch.float32, torch.float64):
        step = torch.finfo(dtype).smallest_normal * torch.finfo(dtype).eps  # a subnormal
        a = Region(torch.zeros(3, dtype=dtype), torch.zeros(3, dtype=dtype))
        b = Region(torch.full((3,), step, dtype=dtype), torch.zeros(3, dtype=dtype))
        inter = EUCLID.intersect([a, b])
        assert bool(inter.is_empty)
        assert not bool(EUCLID.contains(inter, torch.zeros(3, dtype=dtype)))


@given(st.data())
def test_euclidean_intersection_distance_is_total_violation_of_all_operands(data):
    a, b = data.draw(bst.regions(EUCLID, (6,))), data.draw(bst.regions(EUCLID, (6,)))
    x = data.draw(bst.points(EUCLID, (6,), max_abs=4.0))
    inter = EUCLID.intersect([a, b])
    lower = torch.maximum(a.center - a.offset, b.center - b.offset)
    upper = torch.minimum(a.center + a.offset, b.center + b.offset)
    assert torch.equal(inter.is_empty, (lower > upper).any(-1))
    outside, _ = EUCLID.distance_to_region_parts(inter, x)
    torch.testing.assert_close(outside, _violation(lower, upper, x))


@given(st.data())
def test_euclidean_log_volume_is_log_of_side_product(data):
    center = data.draw(bst.points(EUCLID, (5,)))
    # Offsets away from the subnormal range, where the product itself underflows (which
    # is why log_volume sums logs instead).
    r = Region(center, 1e-3 + data.draw(bst.offsets(3, (5,))))
    expected = torch.log(torch.prod(2 * r.offset, dim=-1))
    torch.testing.assert_close(EUCLID.log_volume(r), expected)


def test_empty_intersection_has_no_volume():
    a = Region(torch.zeros(3), torch.ones(3))
    b = Region(torch.full((3,), 5.0), torch.ones(3))
    inter = EUCLID.intersect([a, b])
    assert bool(inter.is_empty) and float(EUCLID.log_volume(inter)) == float("-inf")
    assert "empty=1" in repr(inter)


# -- regressions from review ----------------------------------------------------------------
def test_region_cat_refuses_the_coordinate_axis_and_mixed_dims():
    r = Region(torch.zeros(2, 3, 4), torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="batch dimension"):
        Region.cat([r, r], dim=2)
    with pytest.raises(ValueError, match="one dimension"):
        Region.cat([r, Region(torch.zeros(2, 3, 5), torch.ones(2, 3, 5))], dim=0)


@pytest.mark.parametrize("name", ["poincare", "lorentz"])
def test_casting_a_geometry_keeps_its_curvature_exact(name):
    g = boxlib.get_geometry(name, 3, c=0.7).to(torch.bfloat16)
    assert g.c.dtype == torch.float64 and float(g.c) == pytest.approx(0.7, abs=1e-12)


@pytest.mark.parametrize("name", ["euclidean", "poincare", "lorentz"])
def test_point_at_has_finite_gradients_at_the_center(name):
    g = boxlib.get_geometry(name, 2)
    p = g.expmap0(torch.tensor([[0.3, 0.2]])).requires_grad_()
    t = torch.zeros(1, 2, requires_grad=True)
    g.point_at(p, t).sum().backward()
    assert torch.isfinite(t.grad).all() and torch.isfinite(p.grad).all()


def test_lorentz_cap_scales_with_curvature():
    g = boxlib.get_geometry("lorentz", 2, c=4.0)
    x = g.expmap0(torch.tensor([[200.0, 0.0]]))
    assert torch.isfinite(x).all() and g.check_point(x)
    assert torch.isfinite(g.distance(x, g.origin())).all()


def test_poincare_point_at_is_accurate_near_the_boundary():
    g = boxlib.get_geometry("poincare", 2)
    r = 1 - 1e-5
    x = torch.tensor([[r, 0.0]], dtype=torch.float64)
    y = torch.tensor([[-r * 0.6, r * 0.8]], dtype=torch.float64)
    torch.testing.assert_close(g.point_at(x, g.tangent_coords(x, y)), y, rtol=0, atol=1e-4)


def test_alpha_outside_the_unit_interval_is_refused():
    with pytest.raises(ValueError, match=r"alpha .* \[0, 1\]"):
        EUCLID.distance_to_region(Region(torch.zeros(3), torch.ones(3)), torch.zeros(3), alpha=5)
