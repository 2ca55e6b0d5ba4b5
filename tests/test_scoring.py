"""Fused query × item scoring (``Geometry.distance_to_region_matrix``, :mod:`boxlib.scoring`)
against the broadcast reference path ``distance_to_region``, at random and extreme inputs,
eager and compiled, and through the query executor.

The reference is the existing per-pair path evaluated in float64 on the same (upcast)
inputs: for the hyperbolic geometries it computes different formulas (the closed-form log
map and transport of each pair; the hyperboloid's own separation for Lorentz) from the
kernels (per-pair scalars and one pass over the axes; the Poincaré ball for Lorentz).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from boxlib_plugins.lorentz import math as lorentz_math
from boxlib_plugins.poincare import math as poincare_math
from hypothesis import given, settings
from hypothesis import strategies as st

import boxlib
from boxlib import Region, scoring
from boxlib.query.execute import QueryExecutor, TableEmbedder, _merge_topk
from boxlib.testing import strategies as bst

GEOMETRIES = ["euclidean", "poincare", "lorentz"]
DTYPES = [torch.float32, torch.float64]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def eager(monkeypatch):
    """Kernels run uncompiled (the same functions; compiling is tested separately)."""
    monkeypatch.setenv(scoring.COMPILE_ENV, "0")


def _reference(g, region: Region, items: torch.Tensor, alpha: float) -> torch.Tensor:
    gap = None if region.gap is None else region.gap.double()
    r64 = Region(region.center.double(), region.offset.double(), gap)
    return g.distance_to_region(r64[:, None], items.double()[None], alpha)


def _atol(g, dtype, *points) -> float:
    """Absolute slack on top of ``rtol``: a few ulps of the terms for float32; for float64
    the representation's own limit far out on the hyperboloid, ``eps · x₀`` (see
    docs/architecture.md), which both paths share."""
    if dtype == torch.float32:
        return 2e-6
    if g.name == "lorentz":
        x0 = max(float(p[..., 0].abs().max()) for p in points)
        return 1e-14 * max(1.0, x0)
    return 1e-12


def _matrix(g, region, items, alpha=0.2):
    with torch.no_grad():
        return g.distance_to_region_matrix(region, items, alpha)


# -- equality with the reference path --------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", GEOMETRIES)
@settings(max_examples=25)
@given(data=st.data(), b=st.integers(1, 4), n=st.integers(1, 40), dim=st.integers(1, 5), alpha=st.floats(0, 1))
def test_matrix_equals_the_reference_path(name, dtype, data, b, n, dim, alpha):
    # Fewer items than MIN_COMPILED_ITEMS: the kernel runs eagerly.
    g = boxlib.get_geometry(name, dim)
    region = data.draw(bst.regions(g, (b,), max_abs=3.0, max_offset=2.0, dtype=dtype))
    items = data.draw(bst.points(g, (n,), max_abs=3.0, dtype=dtype))
    got = _matrix(g, region, items, alpha)
    assert got.shape == (b, n) and got.dtype == dtype
    torch.testing.assert_close(
        got.double(),
        _reference(g, region, items, alpha),
        rtol=1e-5,
        atol=_atol(g, dtype, region.center, items),
    )


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["eager", "compiled"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", GEOMETRIES)
def test_extreme_inputs_stay_finite_and_exact(monkeypatch, name, dtype, compiled):
    """Every radius of ``EXTREME_RADII`` (the ball's boundary margin, 80 from the origin on
    the hyperboloid: beyond the ball map's range, so scored by the reference path) as
    centers and items, each item also nudged by a relative 1e-6 (nearby pairs far out),
    with zero and random offsets."""
    monkeypatch.setenv(scoring.COMPILE_ENV, "1" if compiled else "0")
    monkeypatch.setattr(scoring, "MIN_COMPILED_ITEMS", 0)
    g = boxlib.get_geometry(name, 6)
    pts = torch.cat([bst.extreme_points(g, dtype, seed=s) for s in range(2)])
    with torch.no_grad():
        nudged = g.expmap0(g.logmap0(pts.double()) * (1 + 1e-6)).to(dtype)
    items = torch.cat([pts, nudged])
    gen = torch.Generator().manual_seed(0)
    for offset in (torch.zeros(len(pts), 6), torch.rand(len(pts), 6, generator=gen)):
        region = Region(pts, offset.to(dtype))
        got = _matrix(g, region, items)
        assert torch.isfinite(got).all()
        ref = _reference(g, region, items, 0.2)
        torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=_atol(g, dtype, pts, items))
        if name == "poincare" and dtype == torch.float32:
            # Near the boundary the float32 path loses digits in 1 - c|x|²; the kernel
            # reads that gap from float64 and is at least as close to the float64 result.
            same = g.distance_to_region(region[:, None], items[None], 0.2).double()
            assert ((got.double() - ref).abs() <= (same - ref).abs() + 1e-6 + 1e-6 * ref).all()


def test_coincident_points_score_zero_with_zero_offsets(eager):
    for name in GEOMETRIES:
        g = boxlib.get_geometry(name, 4)
        pts = g.expmap0(torch.randn(6, 4, generator=torch.Generator().manual_seed(1)))
        got = _matrix(g, Region(pts, torch.zeros(6, 4)), pts)
        assert torch.isfinite(got).all()
        assert float(got.diagonal().abs().max()) < 1e-5, name


def test_empty_intersections_keep_their_violation(eager):
    g = boxlib.get_geometry("euclidean", 2)
    a = Region(torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]]))
    b = Region(torch.tensor([[4.0, 0.0], [0.5, 0.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]]))
    inter = g.intersect([a, b])  # the first pair misses by 2 on the first axis, the second overlaps
    assert inter.gap is not None and bool(inter.is_empty[0]) and not bool(inter.is_empty[1])
    items = torch.tensor([[2.0, 0.0], [0.75, 0.5], [-3.0, 2.0]])
    got = _matrix(g, inter, items, alpha=0.0)
    # Hand-computed: the empty box's corners are (3, -1) and (1, 1), crossed on the first
    # axis by 2: (2, 0) violates both first-axis constraints by 1 each, at least 2 in all.
    assert float(got[0, 0]) == pytest.approx(2.0)
    torch.testing.assert_close(got.double(), _reference(g, inter, items, 0.0))
    # A region with a gap on a curved geometry (built by hand: no built-in operation makes
    # one there) goes through the same empty-box terms.
    for name in ("poincare", "lorentz"):
        h = boxlib.get_geometry(name, 2)
        gen = torch.Generator().manual_seed(5)
        region = Region(h.expmap0(torch.randn(2, 2, generator=gen)), torch.zeros(2, 2), torch.rand(2, 2, generator=gen))
        pts = h.expmap0(torch.randn(7, 2, generator=gen))
        got = _matrix(h, region, pts).double()
        torch.testing.assert_close(got, _reference(h, region, pts, 0.2), rtol=1e-5, atol=2e-6)


def test_large_inputs_go_through_blocks_and_outliers(eager):
    """More items than a block, a partial last block, and hyperboloid points past the ball
    map's range (outlier rows and columns) in one call."""
    g = boxlib.get_geometry("lorentz", 3)
    gen = torch.Generator().manual_seed(2)
    v = torch.randn(2 * scoring.BLOCK + 37, 3, generator=gen)
    v[::97] *= 20 / v[::97].norm(dim=-1, keepdim=True)  # 20 from the origin: outliers
    items = g.expmap0(v)
    centers = g.expmap0(torch.cat([torch.randn(3, 3, generator=gen), torch.full((1, 3), 12.0)]))
    region = Region(centers, torch.rand(4, 3, generator=gen))
    prepared = g.prepare_points(items)
    assert prepared.outliers is not None and len(prepared.outliers) == len(range(0, len(items), 97))
    got = _matrix(g, region, prepared)
    torch.testing.assert_close(got.double(), _reference(g, region, items, 0.2), rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_per_query_inputs_are_rebuilt_after_an_in_place_change(eager, name):
    """The kernels memoise what depends on the queries on the Region object (the executor
    scores one Region against every chunk); an in-place change must not go stale."""
    g = boxlib.get_geometry(name, 3)
    gen = torch.Generator().manual_seed(6)
    region = Region(g.expmap0(torch.randn(2, 3, generator=gen)), torch.rand(2, 3, generator=gen))
    items = g.expmap0(torch.randn(9, 3, generator=gen))
    before = _matrix(g, region, items)
    with torch.no_grad():
        region.offset.mul_(3.0)
        region.center.copy_(g.expmap0(torch.randn(2, 3, generator=gen)))
    after = _matrix(g, region, items)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after.double(), _reference(g, region, items, 0.2), rtol=1e-5, atol=2e-6)


# -- the pieces of the kernels -------------------------------------------------------------------
@given(data=st.data())
def test_lorentz_tangent_coords_equal_the_balls_on_mapped_points(data):
    lorentz = boxlib.get_geometry("lorentz", 3, c=0.7)
    ball = boxlib.get_geometry("poincare", 3, c=0.7)
    p = data.draw(bst.points(lorentz, (4,), max_abs=4.0))
    x = data.draw(bst.points(lorentz, (4,), max_abs=4.0))
    (yp, _), (yx, gx) = lorentz_math.to_ball(p, c=lorentz.c), lorentz_math.to_ball(x, c=lorentz.c)
    torch.testing.assert_close(gx, 1 - 0.7 * (yx * yx).sum(-1, keepdim=True), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(
        lorentz.tangent_coords(p, x), ball.tangent_coords(yp, yx), rtol=1e-7, atol=1e-9 * float(x[..., 0].max())
    )


@given(data=st.data())
def test_tangent_factors_reproduce_tangent_coords(data):
    g = boxlib.get_geometry("poincare", 4, c=1.3)
    p = data.draw(bst.points(g, (5,), max_abs=3.0))
    x = data.draw(bst.points(g, (5,), max_abs=3.0))
    c = g.c
    delta = x - p
    a = poincare_math.conformal_gap(p, c=c)
    b = poincare_math.conformal_gap(x, c=c)
    d2 = (delta * delta).sum(-1, keepdim=True)
    dp = (delta * p).sum(-1, keepdim=True)
    scale, shift = poincare_math.tangent_factors(d2, dp, a, b, (p * p).sum(-1, keepdim=True), c=c)
    torch.testing.assert_close(scale * (delta - shift * p), g.tangent_coords(p, x), rtol=1e-9, atol=1e-12)


def test_to_blocks_layout():
    x = torch.arange(30.0).reshape(10, 3)
    blocks = scoring.to_blocks(x, block=4)
    assert blocks.shape == (3, 3, 4)
    assert blocks[1, 2, 1].item() == x[5, 2].item() and blocks[2, :, 2:].abs().sum() == 0
    assert scoring.to_blocks(torch.zeros(0, 3), block=4).shape == (1, 3, 4)


# -- compiling ----------------------------------------------------------------------------------
SLOW_COMPILES = [pytest.param(n, marks=pytest.mark.slow) for n in ("euclidean", "lorentz")]


@pytest.mark.parametrize("name", ["poincare", *SLOW_COMPILES])
def test_compiled_kernel_equals_the_reference(monkeypatch, name):
    """The compiled kernel (Inductor's C++) on a call large enough to compile; first
    compile takes seconds (cached on disk for later processes)."""
    monkeypatch.setenv(scoring.COMPILE_ENV, "1")
    g = boxlib.get_geometry(name, 8)
    gen = torch.Generator().manual_seed(3)
    items = g.expmap0(torch.randn(scoring.MIN_COMPILED_ITEMS + 100, 8, generator=gen))
    region = Region(g.expmap0(torch.randn(3, 8, generator=gen)), torch.rand(3, 8, generator=gen))
    assert getattr(scoring.kernel(lambda: None, len(items)), "compiled", False)
    got = _matrix(g, region, items)
    torch.testing.assert_close(got.double(), _reference(g, region, items, 0.2), rtol=1e-5, atol=2e-6)
    one = _matrix(g, region[:1], items)  # a single query runs the same compiled kernel
    torch.testing.assert_close(one, got[:1], rtol=1e-6, atol=1e-6)


def test_compiling_can_be_disabled(monkeypatch):
    def fn():
        return None

    monkeypatch.setenv(scoring.COMPILE_ENV, "0")
    assert scoring.kernel(fn, 10**7) is fn
    monkeypatch.setenv(scoring.COMPILE_ENV, "1")
    assert scoring.kernel(fn, scoring.MIN_COMPILED_ITEMS - 1) is fn


def test_a_failing_compiler_falls_back_to_eager_with_one_warning(monkeypatch):
    monkeypatch.setenv(scoring.COMPILE_ENV, "1")
    monkeypatch.setattr(scoring, "_FAILED", [])

    def broken(fn):
        def call(*args):
            raise RuntimeError("no C++ compiler found")

        return call

    monkeypatch.setattr(scoring, "_compiled", broken)
    g = boxlib.get_geometry("euclidean", 3)
    items = torch.randn(scoring.MIN_COMPILED_ITEMS, 3)
    region = Region(torch.randn(2, 3), torch.rand(2, 3))
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler found.*run eagerly"):
        got = _matrix(g, region, items)
    torch.testing.assert_close(got.double(), _reference(g, region, items, 0.2), rtol=1e-5, atol=2e-6)
    assert not scoring.compile_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _matrix(g, region, items)  # no second warning


def test_a_mistaken_call_raises_instead_of_disabling_compilation(monkeypatch):
    monkeypatch.setenv(scoring.COMPILE_ENV, "1")
    monkeypatch.setattr(scoring, "_FAILED", [])

    def fn(x):
        return x * 2

    run = scoring.kernel(fn, scoring.MIN_COMPILED_ITEMS)
    with pytest.raises(TypeError):
        run(torch.ones(3), torch.ones(3))  # one argument too many: a bug, not a compiler failure
    assert scoring.compile_enabled()


# -- falling back to the differentiable path, errors ------------------------------------------------
def test_gradients_use_the_differentiable_path(eager):
    g = boxlib.get_geometry("poincare", 3)
    center = g.expmap0(torch.randn(2, 3)).requires_grad_(True)
    items = g.expmap0(torch.randn(5, 3))
    got = g.distance_to_region_matrix(Region(center, torch.rand(2, 3)), items)
    assert got.grad_fn is not None
    got.sum().backward()
    assert center.grad is not None and torch.isfinite(center.grad).all()


def test_bad_arguments_are_named(eager):
    g = boxlib.get_geometry("poincare", 3)
    region = Region(g.expmap0(torch.randn(2, 3)), torch.rand(2, 3))
    with pytest.raises(ValueError, match=r"points \[N, 3\]"):
        g.distance_to_region_matrix(region, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="one batch dimension"):
        g.distance_to_region_matrix(region[None], torch.zeros(4, 3))
    with pytest.raises(ValueError, match="alpha"):
        g.distance_to_region_matrix(region, torch.zeros(4, 3), alpha=2.0)
    other = boxlib.get_geometry("poincare", 3, c=2.0)
    with pytest.raises(ValueError, match="prepare_points"):
        g.distance_to_region_matrix(region, other.prepare_points(torch.zeros(4, 3)))
    with pytest.raises(ValueError, match=r"out= must be a torch.float32 tensor of shape \(2, 4\)"):
        g.distance_to_region_matrix(region, torch.zeros(4, 3), out=torch.zeros(4, 2))


@pytest.mark.parametrize("name", [*GEOMETRIES, "reference"])
def test_out_receives_the_matrix_in_a_column_slice(eager, name):
    g = boxlib.get_geometry("poincare" if name == "reference" else name, 3)
    gen = torch.Generator().manual_seed(7)
    region = Region(g.expmap0(torch.randn(2, 3, generator=gen)), torch.rand(2, 3, generator=gen))
    items = g.expmap0(torch.randn(5, 3, generator=gen))
    big = torch.full((2, 9), -1.0)
    method = boxlib.Geometry.distance_to_region_matrix if name == "reference" else type(g).distance_to_region_matrix
    with torch.no_grad():
        returned = method(g, region, items, 0.2, out=big[:, 2:7])
    assert returned.data_ptr() == big[:, 2:7].data_ptr()
    assert (big[:, :2] == -1).all() and (big[:, 7:] == -1).all()
    torch.testing.assert_close(big[:, 2:7].double(), _reference(g, region, items, 0.2), rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_empty_batches_and_tensor_alpha(eager, name):
    g = boxlib.get_geometry(name, 3)
    for b, n in [(0, 5), (2, 0)]:
        region = Region(g.expmap0(torch.zeros(b, 3)), torch.zeros(b, 3))
        assert _matrix(g, region, g.expmap0(torch.zeros(n, 3))).shape == (b, n)
    alpha = torch.tensor(0.3, requires_grad=True)
    region = Region(g.expmap0(torch.randn(2, 3)), torch.rand(2, 3))
    items = g.expmap0(torch.randn(4, 3))
    g.distance_to_region_matrix(region, items, alpha).sum().backward()
    # d/dalpha of outside + alpha * inside is the inside part, summed over the pairs.
    _, inside = g.distance_to_region_parts(region[:, None], items[None])
    assert float(alpha.grad) == pytest.approx(float(inside.sum()), rel=1e-5)


# -- through the executor --------------------------------------------------------------------------
@pytest.mark.parametrize("name", GEOMETRIES)
def test_executor_scores_and_ranks_through_the_kernel(eager, monkeypatch, name):
    g = boxlib.get_geometry(name, 4)
    gen = torch.Generator().manual_seed(4)
    terms = {t: Region(g.expmap0(torch.randn(4, generator=gen) * 0.5), torch.rand(4, generator=gen)) for t in "abc"}
    items = g.expmap0(torch.randn(3000, 4, generator=gen) * 0.7)
    calls = []
    original = type(g).distance_to_region_matrix
    monkeypatch.setattr(type(g), "distance_to_region_matrix", lambda *a, **k: calls.append(1) or original(*a, **k))
    executor = QueryExecutor(TableEmbedder(g, terms), chunk_size=1000)
    queries = ["a", "b or c", "a and b"]
    got = executor.distances(queries, items)
    assert calls
    single = {t: _reference(g, terms[t][None], items, 0.2)[0] for t in "abc"}
    and_ab = g.intersect([terms["a"], terms["b"]]) if g.has("exact_intersection") else None
    expected = torch.stack(
        [
            single["a"],
            torch.minimum(single["b"], single["c"]),
            _reference(g, and_ab[None], items, 0.2)[0] if and_ab else torch.maximum(single["a"], single["b"]),
        ]
    )
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=2e-6)
    top_s, top_i = executor.topk(queries, items, k=7)
    full = torch.sort(-got, dim=1, descending=True, stable=True)
    assert torch.equal(top_i, full.indices[:, :7]) and torch.equal(top_s, full.values[:, :7])


@given(
    scores=st.lists(st.lists(st.integers(0, 3), min_size=12, max_size=12), min_size=2, max_size=3),
    k=st.integers(1, 12),
    split=st.integers(1, 11),
)
def test_streamed_topk_keeps_ties_in_index_order(scores, k, split):
    d = torch.tensor(scores, dtype=torch.float32)
    best = (torch.full((len(d), k), float("inf")), torch.zeros(len(d), k, dtype=torch.long))
    best = _merge_topk(*best, d[:, :split], 0, k)
    best = _merge_topk(*best, d[:, split:], split, k)
    full = torch.sort(d, dim=1, stable=True)
    assert torch.equal(best[1], full.indices[:, :k]) and torch.equal(best[0], full.values[:, :k])


# -- any registered geometry ----------------------------------------------------------------------
def test_a_third_party_geometry_scores_through_the_default_path(toy_env):
    """``scaled_euclidean`` implements only the abstract methods: the executor and the
    benchmark use the base class's chunked default for it."""
    script = textwrap.dedent(
        """
        import torch, boxlib
        from boxlib import Region
        from boxlib.query.execute import QueryExecutor, TableEmbedder
        g = boxlib.get_geometry("scaled_euclidean", 3)
        items = g.expmap0(torch.randn(50, 3))
        region = Region(g.expmap0(torch.randn(2, 3)), torch.rand(2, 3))
        ref = g.distance_to_region(region[:, None], items[None])
        with torch.no_grad():
            got = g.distance_to_region_matrix(region, g.prepare_points(items))
        torch.testing.assert_close(got, ref)
        executor = QueryExecutor(TableEmbedder(g, {"a": region[0], "b": region[1]}), chunk_size=7)
        torch.testing.assert_close(executor.distances(["a", "b"], items), ref)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], env=toy_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    bench = [sys.executable, str(ROOT / "benchmarks" / "perf_scoring.py"), "--items", "300", "--queries", "3"]
    bench += ["--dim", "4", "--straightforward-items", "100", "--repeat", "1", "--no-memory", "--no-rank"]
    env = toy_env | {scoring.COMPILE_ENV: "0"}
    result = subprocess.run(bench, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert {"euclidean", "poincare", "lorentz", "scaled_euclidean"} <= set(rows)


# -- each query against its own candidates (training) --------------------------------------------
@pytest.fixture
def compiled_candidates(monkeypatch):
    """Every candidates call compiles, however small (the threshold is a speed choice)."""
    monkeypatch.setenv(scoring.COMPILE_ENV, "1")
    monkeypatch.setattr(scoring, "MIN_COMPILED_CANDIDATES", 0)


def _candidates_case(g, dtype, seed=0, b=6, m=9):
    """Regions ``[b]`` and candidates ``[b, m]``: ordinary points, points far out (the ball's
    boundary, radius 80 on the hyperboloid) and the region's own center (a zero tangent)."""
    gen = torch.Generator().manual_seed(seed)
    d = g.dim
    center = g.expmap0((torch.randn(b, d, generator=gen, dtype=torch.float64) * 0.7).to(dtype))
    offset = (torch.rand(b, d, generator=gen, dtype=torch.float64) * 1.5).to(dtype)
    offset[0] = 0.0  # a point region
    pts = g.expmap0((torch.randn(b, m, d, generator=gen, dtype=torch.float64) * 1.2).to(dtype))
    far = bst.extreme_points(g, dtype, seed=seed)
    pts[1, : min(m, len(far))] = far[: min(m, len(far))]
    pts[2, 0] = center[2]
    return center, offset, pts


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", GEOMETRIES)
def test_compiled_candidates_equal_the_eager_path_with_gradients(name, dtype, compiled_candidates):
    g = boxlib.get_geometry(name, 5).to(dtype)
    center, offset, pts = _candidates_case(g, dtype)
    results = []
    for compiled in (False, True):
        c, o, x = (t.clone().requires_grad_(True) for t in (center, offset, pts))
        region = Region(c, o)
        if compiled:
            dist = g.distance_to_candidates(region, x, 0.3)
        else:
            dist = g.distance_to_region(region[:, None], x, 0.3)
        weights = torch.linspace(-1, 2, dist.numel(), dtype=dtype).reshape(dist.shape)
        (dist * weights).sum().backward()
        results.append((dist.detach(), c.grad, o.grad, x.grad))
    for want, got, what in zip(results[0], results[1], ("distances", "center grad", "offset grad", "points grad")):
        assert torch.isfinite(got).all(), what
        tol = 2e-5 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(got, want, rtol=tol, atol=tol, msg=lambda m, what=what: f"{name} {what}: {m}")


def test_compiled_candidates_handle_empty_intersections(compiled_candidates):
    # An exact intersection that came out empty carries a gap: its distances must stay the
    # total violation (never 0), compiled or not.
    g = boxlib.get_geometry("euclidean", 3)
    a = Region(torch.zeros(4, 3), torch.ones(4, 3))
    b = Region(torch.full((4, 3), 5.0), torch.ones(4, 3))
    empty = g.intersect([a, b])
    assert empty.gap is not None and bool(empty.is_empty.all())
    pts = torch.randn(4, 7, 3) * 3
    got = g.distance_to_candidates(empty, pts)
    want = g.distance_to_region(empty[:, None], pts)
    torch.testing.assert_close(got, want)
    assert bool((got > 0).all())


def test_candidates_below_the_threshold_run_eagerly(monkeypatch):
    calls = []
    monkeypatch.setattr(scoring, "_compiled_candidates", lambda: calls.append(1))
    g = boxlib.get_geometry("euclidean", 4)
    region = Region(torch.zeros(2, 4), torch.ones(2, 4))
    g.distance_to_candidates(region, torch.randn(2, 3, 4))
    assert not calls


def test_candidates_check_their_arguments():
    g = boxlib.get_geometry("poincare", 3)
    region = Region(torch.zeros(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"candidates \[B=2, M, 3\].*got \(3, 4, 3\)"):
        g.distance_to_candidates(region, torch.zeros(3, 4, 3))
    with pytest.raises(ValueError, match="one batch dimension"):
        g.distance_to_candidates(region[None], torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="alpha"):
        g.distance_to_candidates(region, torch.zeros(2, 4, 3), alpha=2.0)


def test_a_failing_compiler_leaves_training_on_the_eager_path(monkeypatch, compiled_candidates):
    monkeypatch.setattr(scoring, "_FAILED", [])

    def broken():
        def call(*args):
            raise RuntimeError("no C++ compiler found")

        return call

    monkeypatch.setattr(scoring, "_compiled_candidates", broken)
    g = boxlib.get_geometry("euclidean", 3)
    region = Region(torch.randn(2, 3), torch.rand(2, 3))
    pts = torch.randn(2, 5, 3, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler found.*run eagerly"):
        got = g.distance_to_candidates(region, pts)
    got.sum().backward()  # the eager result is differentiable
    torch.testing.assert_close(got, g.distance_to_region(region[:, None], pts))
    assert pts.grad is not None and not scoring.compile_enabled()


# -- block size for wide items ----------------------------------------------------------------------
def test_blocks_shrink_for_wide_items_and_stay_within_the_cache_budget():
    assert scoring.block_items(32) == scoring.BLOCK  # the layout measured in perf_scoring
    for d in (1, 32, 64, 100, 256, 1000, 10_000):
        for size in (4, 8):
            items = scoring.block_items(d, size)
            assert 64 <= items <= scoring.BLOCK and items & (items - 1) == 0
            assert items * d * size <= scoring.BLOCK_BYTES or items == 64
    assert scoring.block_items(256) < scoring.block_items(128) <= scoring.block_items(64)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", GEOMETRIES)
def test_wide_items_in_smaller_blocks_score_like_the_reference(name, dtype, eager):
    # d = 300: blocks of fewer than BLOCK items, several of them and a partial last one.
    g = boxlib.get_geometry(name, 300)
    gen = torch.Generator().manual_seed(3)
    items = g.expmap0((torch.randn(700, 300, generator=gen, dtype=torch.float64) * 0.1).to(dtype))
    centers = g.expmap0((torch.randn(3, 300, generator=gen, dtype=torch.float64) * 0.1).to(dtype))
    region = Region(centers, torch.rand(3, 300, generator=gen, dtype=torch.float64).to(dtype) * 0.3)
    prepared = g.prepare_points(items)
    assert prepared.blocks.shape[-1] < scoring.BLOCK and prepared.blocks.shape[0] > 1
    got = _matrix(g, region, prepared)
    torch.testing.assert_close(
        got.double(), _reference(g, region, items, 0.2), rtol=1e-5, atol=_atol(g, dtype, centers, items)
    )


@pytest.mark.parametrize("name", GEOMETRIES)
def test_wide_items_in_smaller_blocks_score_like_the_reference_compiled(name, monkeypatch):
    monkeypatch.setenv(scoring.COMPILE_ENV, "1")
    g = boxlib.get_geometry(name, 200)
    gen = torch.Generator().manual_seed(4)
    items = g.expmap0(torch.randn(scoring.MIN_COMPILED_ITEMS + 100, 200, generator=gen) * 0.1)
    region = Region(g.expmap0(torch.randn(5, 200, generator=gen) * 0.1), torch.rand(5, 200, generator=gen) * 0.3)
    prepared = g.prepare_points(items)
    assert prepared.blocks.shape[-1] < scoring.BLOCK
    got = _matrix(g, region, prepared)
    torch.testing.assert_close(
        got.double(), _reference(g, region, items, 0.2), rtol=1e-5, atol=_atol(g, torch.float32, items)
    )
