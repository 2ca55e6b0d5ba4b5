"""Accuracy of the hyperbolic formulas against arbitrary-precision references (mpmath).

The reference treats the stored coordinates as exact: for the hyperboloid the time
coordinate is derived from the spatial ones, for the ball the point is used as is. Errors
are then those of our arithmetic, not of the representation.
"""

from __future__ import annotations

import mpmath
import pytest
import torch

import boxlib

mpmath.mp.dps = 60


def _lorentz_exact(a: torch.Tensor, b: torch.Tensor) -> float:
    xs = [mpmath.mpf(float(v)) for v in a[1:]]
    ys = [mpmath.mpf(float(v)) for v in b[1:]]
    x0 = mpmath.sqrt(1 + sum(v * v for v in xs))
    y0 = mpmath.sqrt(1 + sum(v * v for v in ys))
    return float(mpmath.acosh(x0 * y0 - sum(u * v for u, v in zip(xs, ys))))


def _poincare_exact(a: torch.Tensor, b: torch.Tensor) -> float:
    xs = [mpmath.mpf(float(v)) for v in a]
    ys = [mpmath.mpf(float(v)) for v in b]
    diff = sum((u - v) ** 2 for u, v in zip(xs, ys))
    return float(mpmath.acosh(1 + 2 * diff / ((1 - sum(u * u for u in xs)) * (1 - sum(v * v for v in ys)))))


def _pairs(geometry, radius: float, separation: float, n: int = 20):
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(n, geometry.dim, generator=gen, dtype=torch.float64)
    center = geometry.expmap0(radius * v / v.norm(dim=-1, keepdim=True))
    t = torch.randn(n, geometry.dim, generator=gen, dtype=torch.float64)
    return center, geometry.point_at(center, separation * t / t.norm(dim=-1, keepdim=True))


@pytest.mark.parametrize("radius", [1.0, 10.0, 20.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_lorentz_distance_far_from_the_origin(radius, dtype):
    g = boxlib.get_geometry("lorentz", 3)
    c, x = (p.to(dtype) for p in _pairs(g, radius, 0.5))
    got = g.distance(c, x).double()
    ref = torch.tensor([_lorentz_exact(a.double(), b.double()) for a, b in zip(c, x)], dtype=torch.float64)
    # float32 inputs are computed in float64; float64 arithmetic itself loses about
    # eps * sinh(radius) far out.
    bound = 1e-6 if dtype == torch.float32 else 1e-15 * torch.sinh(torch.tensor(radius)).item() + 1e-14
    assert float((got - ref).abs().max()) <= bound
    assert float((g.tangent_coords(c, x).norm(dim=-1).double() - got).abs().max()) <= 1e-5


@pytest.mark.parametrize("gap", [1e-2, 1e-4, 1e-5])
def test_poincare_distance_near_the_boundary_in_float32(gap):
    g = boxlib.get_geometry("poincare", 3)
    gen = torch.Generator().manual_seed(1)
    u = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    w = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    x = ((1 - gap) * u / u.norm(dim=-1, keepdim=True)).float()
    y = ((1 - gap) * w / w.norm(dim=-1, keepdim=True)).float()
    got = g.distance(x, y).double()
    ref = torch.tensor([_poincare_exact(a, b) for a, b in zip(x, y)], dtype=torch.float64)
    # 1 - |x|² is known to about 1e-7 / gap relative in float32.
    assert float(((got - ref) / ref).abs().max()) <= 5e-7 / gap
