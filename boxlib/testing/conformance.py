"""The geometry conformance kit: one battery of laws for every geometry.

A plugin author subclasses :class:`GeometryConformance` in a test module and sets the
geometry name (and constructor keyword arguments)::

    from boxlib.testing import GeometryConformance

    class TestMyGeometry(GeometryConformance):
        geometry_name = "my_geometry"
        geometry_kwargs = {"c": 0.5}

pytest then runs every law below against it. Laws that need an optional capability
(``exact_intersection``, ``isometries``, a geoopt reference, ``point_at``) are skipped
with a reason when the geometry lacks it. Each law is a separate test so a failure names
the broken law.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boxlib.geometry import Geometry, Region

from . import strategies as bst

__all__ = ["GeometryConformance"]

_DTYPES = (torch.float32, torch.float64)

#: Applied to every law on top of the active profile: torch's first call of a kernel can
#: take far longer than the rest, so wall-clock deadlines only produce flaky failures.
_law = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])


class GeometryConformance:
    """Subclass and set :attr:`geometry_name` (or override :meth:`make_geometry`)."""

    #: Registry name of the geometry under test.
    geometry_name: ClassVar[str | None] = None
    #: Keyword arguments for its constructor (besides ``dim``).
    geometry_kwargs: ClassVar[dict[str, Any]] = {}
    #: Intrinsic dimension used by the laws.
    dim: ClassVar[int] = 3
    #: Canonical-coordinate range of generated points (distance from the origin is at
    #: most ``max_abs * sqrt(dim)``); kept moderate so float64 laws test the maths, not
    #: the conditioning of points far out.
    max_abs: ClassVar[float] = 1.5
    #: Relative and absolute tolerance of float64 comparisons.
    rtol: ClassVar[float] = 1e-7
    atol: ClassVar[float] = 1e-8

    # -- fixtures ---------------------------------------------------------------------
    def make_geometry(self) -> Geometry:
        """The geometry under test; the default looks :attr:`geometry_name` up in the registry."""
        if self.geometry_name is None:
            raise TypeError(f"{type(self).__name__} must set geometry_name or override make_geometry()")
        from boxlib.plugins import host

        return host().registries["geometry"].create(self.geometry_name, self.dim, **self.geometry_kwargs)

    @property
    def geometry(self) -> Geometry:
        cached = self.__dict__.get("_geometry")
        if cached is None:
            cached = self.make_geometry()
            self.__dict__["_geometry"] = cached
        return cached

    def _points(self, batch_shape: tuple[int, ...] = (), **kwargs) -> st.SearchStrategy[torch.Tensor]:
        return bst.points(self.geometry, batch_shape, max_abs=kwargs.pop("max_abs", self.max_abs), **kwargs)

    def _regions(self, batch_shape: tuple[int, ...] = (), **kwargs) -> st.SearchStrategy[Region]:
        return bst.regions(self.geometry, batch_shape, max_abs=kwargs.pop("max_abs", self.max_abs), **kwargs)

    def _close(self, actual: torch.Tensor, expected: torch.Tensor, what: str, *, rtol=None, atol=None) -> None:
        torch.testing.assert_close(
            actual,
            expected,
            rtol=self.rtol if rtol is None else rtol,
            atol=self.atol if atol is None else atol,
            msg=lambda m: f"{self.geometry!r}: {what}\n{m}",
        )

    def _require(self, capability: str) -> None:
        if not self.geometry.has(capability):
            pytest.skip(f"{self.geometry.name} has no '{capability}' capability")

    def _point_at(self, center: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        try:
            return self.geometry.point_at(center, t)
        except NotImplementedError as exc:
            pytest.skip(str(exc))

    # -- points and distances -----------------------------------------------------------
    @_law
    @given(data=st.data())
    def test_project_yields_valid_points(self, data):
        g = self.geometry
        raw = data.draw(bst.canonical_vectors(g.ambient_dim, (4,), max_abs=10.0))
        for dtype in _DTYPES:
            x = g.project(raw.to(dtype))
            check = g.check_point(x, explain=True)
            assert check.ok, f"project() gave an invalid {dtype} point: {check.reason}"
            self._close(g.project(x).double(), x.double(), "project() is idempotent", rtol=1e-5, atol=1e-6)

    @_law
    @given(data=st.data())
    def test_expmap0_points_are_valid_and_logmap0_inverts_it(self, data):
        g = self.geometry
        v = data.draw(bst.canonical_vectors(g.dim, (4,), max_abs=self.max_abs))
        x = g.expmap0(v)
        check = g.check_point(x, explain=True)
        assert check.ok, check.reason
        self._close(g.logmap0(x), v, "logmap0(expmap0(v)) == v", rtol=1e-6, atol=1e-7)

    @_law
    @given(data=st.data())
    def test_distance_is_symmetric(self, data):
        x, y = data.draw(self._points((5,))), data.draw(self._points((5,)))
        self._close(self.geometry.distance(x, y), self.geometry.distance(y, x), "d(x, y) == d(y, x)")

    @_law
    @given(data=st.data())
    def test_distance_is_non_negative(self, data):
        x, y = data.draw(self._points((5,))), data.draw(self._points((5,)))
        d = self.geometry.distance(x, y)
        assert bool((d >= 0).all()), f"negative distance {float(d.min())}"

    @_law
    @given(data=st.data())
    def test_distance_is_zero_on_a_point_and_itself(self, data):
        x = data.draw(self._points((5,)))
        d = self.geometry.distance(x, x)
        self._close(d, torch.zeros_like(d), "d(x, x) == 0")

    @_law
    @given(data=st.data())
    def test_triangle_inequality(self, data):
        x, y, z = (data.draw(self._points((5,))) for _ in range(3))
        g = self.geometry
        slack = g.distance(x, y) + g.distance(y, z) - g.distance(x, z)
        assert bool((slack >= -1e-7 * (1 + g.distance(x, z))).all()), (
            f"triangle inequality violated by {float(slack.min())}"
        )

    @_law
    @given(data=st.data())
    def test_tangent_coords_norm_is_the_distance(self, data):
        x, y = data.draw(self._points((5,))), data.draw(self._points((5,)))
        g = self.geometry
        t = g.tangent_coords(x, y)
        assert t.shape[-1] == g.dim, f"tangent_coords must have dim={g.dim} entries, got shape {tuple(t.shape)}"
        self._close(t.norm(dim=-1), g.distance(x, y), "|tangent_coords(x, y)| == d(x, y)")

    @_law
    @given(data=st.data())
    def test_point_at_inverts_tangent_coords(self, data):
        g = self.geometry
        c = data.draw(self._points((4,)))
        t = data.draw(bst.canonical_vectors(g.dim, (4,), max_abs=self.max_abs))
        x = self._point_at(c, t)
        check = g.check_point(x, explain=True)
        assert check.ok, check.reason
        self._close(g.tangent_coords(c, x), t, "tangent_coords(c, point_at(c, t)) == t", rtol=1e-6, atol=1e-7)

    @_law
    @given(data=st.data())
    def test_isometries_preserve_distances(self, data):
        self._require("isometries")
        g = self.geometry
        seed = data.draw(st.integers(0, 2**31 - 1))
        f = g.sample_isometry(torch.Generator().manual_seed(seed), torch.float64)
        x, y = data.draw(self._points((5,))), data.draw(self._points((5,)))
        fx, fy = f(x), f(y)
        assert g.check_point(fx), "an isometry must map points to points"
        self._close(g.distance(fx, fy), g.distance(x, y), "d(f(x), f(y)) == d(x, y)", rtol=1e-6, atol=1e-7)

    @_law
    @given(data=st.data())
    def test_distance_agrees_with_reference(self, data):
        g = self.geometry
        x, y = data.draw(self._points((5,))), data.draw(self._points((5,)))
        ref = g.reference_distance(x, y)
        if ref is None:
            pytest.skip(f"{g.name} has no reference distance")
        self._close(g.distance(x, y), ref, "distance agrees with the reference implementation", rtol=1e-6, atol=1e-6)

    @_law
    @given(data=st.data())
    def test_tangent_coords_agree_with_reference(self, data):
        g = self.geometry
        reference = getattr(g, "reference_tangent_coords", None)
        if reference is None:
            pytest.skip(f"{g.name} has no reference log map and transport")
        x, y = data.draw(self._points((5,))), data.draw(self._points((5,)))
        # geoopt clamps the norm of the log-map direction, so below a separation of about
        # 1e-4 its hyperboloid log map is not accurate enough to serve as a reference;
        # the exact behaviour there is covered by the point_at and norm laws.
        apart = g.distance(x, y) > 1e-3
        self._close(
            g.tangent_coords(x, y)[apart],
            reference(x, y)[apart],
            "tangent_coords agree with the reference",
            rtol=1e-6,
            atol=1e-6,
        )

    # -- regions ---------------------------------------------------------------------------
    @_law
    @given(data=st.data())
    def test_center_is_contained(self, data):
        r = data.draw(self._regions((5,)))
        assert bool(self.geometry.contains(r, r.center).all())

    @_law
    @given(data=st.data())
    def test_contains_iff_outside_distance_is_zero(self, data):
        g = self.geometry
        r = data.draw(self._regions((6,)))
        x = data.draw(self._points((6,)))
        # Mix in points near or on the box's faces: scale random canonical coordinates
        # so some land exactly inside, some just outside.
        t = data.draw(bst.canonical_vectors(g.dim, (6,), max_abs=1.0))
        near = self._point_at(r.center, t.sign() * r.offset * (0.5 + t.abs()))
        for pts in (x, near):
            inside = g.contains(r, pts)
            outside, _ = g.distance_to_region_parts(r, pts)
            tol = 1e-6
            assert bool((outside[inside] <= tol * g.dim).all()), "contained points must have zero outside distance"
            assert bool(inside[outside == 0].all()), "points with zero outside distance must be contained"
            clearly_out = outside > tol * g.dim
            assert not bool(inside[clearly_out].any()), "points clearly outside must not be contained"

    @_law
    @given(data=st.data(), alpha=st.floats(0.0, 1.0))
    def test_growing_offset_never_increases_distance(self, data, alpha):
        g = self.geometry
        r = data.draw(self._regions((5,)))
        grow = data.draw(bst.offsets(g.dim, (5,), max_offset=1.0))
        x = data.draw(self._points((5,)))
        before = g.distance_to_region(r, x, alpha)
        after = g.distance_to_region(Region(r.center, r.offset + grow), x, alpha)
        assert bool((after <= before + 1e-9 * (1 + before)).all()), (
            f"growth increased distance by {float((after - before).max())}"
        )

    @_law
    @given(data=st.data(), alpha=st.floats(0.0, 1.0))
    def test_zero_offset_region_behaves_as_its_center(self, data, alpha):
        g = self.geometry
        c, x = data.draw(self._points((5,))), data.draw(self._points((5,)))
        r = Region(c, torch.zeros(5, g.dim, dtype=c.dtype))
        outside, inside = g.distance_to_region_parts(r, x)
        d = g.distance(c, x)
        assert bool((inside == 0).all()), "a point region has no inside part"
        # The outside part is the L1 norm of the canonical coordinates: between the
        # geodesic distance (their L2 norm) and sqrt(d) times it.
        assert bool((outside >= d - 1e-9).all()) and bool((outside <= math.sqrt(g.dim) * d + 1e-9).all())
        self._close(g.distance_to_region(r, x, alpha), outside, "alpha has no effect on a point region")
        assert bool(g.contains(r, c).all()), "a point region contains its center"
        far = d > 1e-3
        assert not bool(g.contains(r, x)[far].any()), "a point region contains nothing away from its center"

    # -- intersection ---------------------------------------------------------------------
    def _intersect(self, *regions: Region) -> Region:
        return self.geometry.intersect(list(regions))

    def _margin(self, r: Region, x: torch.Tensor) -> torch.Tensor:
        """Smallest distance of ``x`` to any face of ``r`` in canonical coordinates."""
        return (self.geometry.tangent_coords(r, x).abs() - r.offset).abs().amin(dim=-1)

    @_law
    @given(data=st.data())
    def test_intersection_membership_is_membership_in_every_operand(self, data):
        self._require("exact_intersection")
        g = self.geometry
        a, b, c = (data.draw(self._regions((8,))) for _ in range(3))
        x = data.draw(self._points((8,)))
        inter = self._intersect(a, b, c)
        every = g.contains(a, x, tol=0.0) & g.contains(b, x, tol=0.0) & g.contains(c, x, tol=0.0)
        clear = torch.stack([self._margin(r, x) for r in (a, b, c)]).amin(dim=0) > 1e-9
        assert torch.equal(g.contains(inter, x, tol=0.0)[clear], every[clear])
        # Centers of non-empty intersections lie in every operand.
        full = ~inter.is_empty
        for r in (a, b, c):
            assert bool(g.contains(r[full], inter.center[full]).all()), "intersection not contained in an operand"

    def _assert_same_region(self, p: Region, q: Region, what: str) -> None:
        self._close(p.center, q.center, f"{what}: centers")
        self._close(p.offset, q.offset, f"{what}: offsets")
        gp = p.gap if p.gap is not None else torch.zeros_like(p.offset)
        gq = q.gap if q.gap is not None else torch.zeros_like(q.offset)
        self._close(gp, gq, f"{what}: gaps")

    @_law
    @given(data=st.data())
    def test_intersection_is_commutative(self, data):
        self._require("exact_intersection")
        a, b = data.draw(self._regions((6,))), data.draw(self._regions((6,)))
        self._assert_same_region(self._intersect(a, b), self._intersect(b, a), "a ∩ b == b ∩ a")

    @_law
    @given(data=st.data())
    def test_intersection_is_associative(self, data):
        self._require("exact_intersection")
        a, b, c = (data.draw(self._regions((6,))) for _ in range(3))
        left = self._intersect(self._intersect(a, b), c)
        right = self._intersect(a, self._intersect(b, c))
        self._assert_same_region(left, right, "(a ∩ b) ∩ c == a ∩ (b ∩ c)")

    @_law
    @given(data=st.data())
    def test_intersection_is_idempotent(self, data):
        self._require("exact_intersection")
        a = data.draw(self._regions((6,)))
        self._assert_same_region(self._intersect(a, a), a, "a ∩ a == a")

    @_law
    @given(data=st.data())
    def test_empty_intersection_is_detected_and_contains_nothing(self, data):
        self._require("exact_intersection")
        g = self.geometry
        a = data.draw(self._regions((6,)))
        # Move a copy of each box beyond its own extent along a canonical axis: the two
        # are disjoint, so their intersection must be flagged empty, contain nothing and
        # keep every distance positive.
        shift = torch.zeros_like(a.offset)
        shift[..., 0] = 2 * a.offset[..., 0] + 0.5
        b = Region(self._point_at(a.center, shift), a.offset)
        inter = self._intersect(a, b)
        assert bool(inter.is_empty.all()), "disjoint boxes must give an empty intersection"
        assert bool((inter.offset >= 0).all()), "an empty intersection must not have a negative offset"
        x = data.draw(self._points((6,)))
        for pts in (x, inter.center, a.center):
            assert not bool(g.contains(inter, pts).any())
            outside, _ = g.distance_to_region_parts(inter, pts)
            assert bool((outside > 0).all()), "distance to an empty region is never 0"

    # -- batching and purity -------------------------------------------------------------
    @_law
    @given(data=st.data(), alpha=st.floats(0.0, 1.0))
    def test_batched_call_equals_per_element_calls(self, data, alpha):
        g = self.geometry
        r = data.draw(self._regions((3,)))
        x = data.draw(self._points((4,)))
        grid = g.distance_to_region(r[:, None], x[None, :], alpha)
        dist = g.distance(r.center[:, None], x[None, :])
        assert grid.shape == (3, 4) and dist.shape == (3, 4)
        for i in range(3):
            for j in range(4):
                self._close(grid[i, j], g.distance_to_region(r[i], x[j], alpha), "broadcast distance_to_region")
                self._close(dist[i, j], g.distance(r.center[i], x[j]), "broadcast distance")
                self._close(
                    g.tangent_coords(r.center[:, None], x[None, :])[i, j],
                    g.tangent_coords(r.center[i], x[j]),
                    "broadcast tangent_coords",
                )

    @_law
    @given(data=st.data())
    def test_inputs_are_not_modified_in_place(self, data):
        g = self.geometry
        r = data.draw(self._regions((3,)))
        s = data.draw(self._regions((3,)))
        x = data.draw(self._points((3,)))
        v = data.draw(bst.canonical_vectors(g.dim, (3,)))
        saved = [t.clone() for t in (r.center, r.offset, s.center, s.offset, x, v)]
        g.distance(r.center, x)
        g.tangent_coords(r, x)
        g.distance_to_region(r, x)
        g.contains(r, x)
        g.expmap0(v)
        g.logmap0(x)
        g.project(x)
        g.logmap(r.center, x)
        if g.has("exact_intersection"):
            g.intersect([r, s])
        for before, after in zip(saved, (r.center, r.offset, s.center, s.offset, x, v)):
            assert torch.equal(before, after), "an input tensor was modified in place"

    # -- numerics at extreme inputs -------------------------------------------------------
    @pytest.mark.parametrize("dtype", _DTYPES, ids=["float32", "float64"])
    def test_values_and_gradients_are_finite_at_extreme_inputs(self, dtype):
        g = self.geometry
        base = bst.extreme_points(g, dtype)
        n = base.shape[0]
        others = torch.roll(base, 1, dims=0)
        cases = {
            "distinct": others,
            "coincident": base.clone(),
            "nearly coincident": g.project(base + torch.finfo(dtype).eps * base.abs().clamp_min(1)),
        }
        offsets = {
            "zero": torch.zeros(n, g.dim, dtype=dtype),
            "small": torch.full((n, g.dim), 1e-6, dtype=dtype),
            "large": torch.full((n, g.dim), 10.0, dtype=dtype),
        }
        for case, y in cases.items():
            for offset_name, off in offsets.items():
                x = base.clone().requires_grad_(True)
                y = y.detach().clone().requires_grad_(True)
                o = off.clone().requires_grad_(True)
                outputs = {
                    "distance": g.distance(x, y),
                    "tangent_coords": g.tangent_coords(x, y),
                    "distance_to_region": g.distance_to_region(Region(x, o), y),
                    "logmap0": g.logmap0(y),
                    "expmap0": g.expmap0(g.logmap0(y)),
                }
                for name, out in outputs.items():
                    where = f"{name} ({case} points, {offset_name} offsets, {dtype})"
                    assert bool(torch.isfinite(out).all()), f"non-finite value in {where}"
                    inputs = [x, y, o, *[p for p in g.parameters() if p.requires_grad]]
                    grads = torch.autograd.grad(out.sum(), inputs, allow_unused=True, retain_graph=True)
                    for grad in grads:
                        assert grad is None or bool(torch.isfinite(grad).all()), f"non-finite gradient of {where}"

    # -- validation -------------------------------------------------------------------------
    def test_check_point_explains_invalid_points(self):
        g = self.geometry
        bad_shape = torch.zeros(2, g.ambient_dim + 1)
        ok, reason = g.check_point(bad_shape, explain=True)
        assert not ok and str(g.ambient_dim) in reason
        nan = g.origin(dtype=torch.float64).clone()
        nan[0] = float("nan")
        ok, reason = g.check_point(nan, explain=True)
        assert not ok and "NaN" in reason
        assert g.check_point(g.origin(dtype=torch.float64)) is True
        with pytest.raises(ValueError, match="center"):
            g.region(nan, torch.zeros(g.dim, dtype=torch.float64))
