"""Poincaré-ball maths as pure functions, curvature ``-c`` (``c > 0``).

The ball is ``{x : c |x|^2 < 1}`` with conformal factor ``λ_x = 2 / (1 - c|x|^2)``.
Canonical coordinates at the origin are orthonormal: ``λ_0 = 2`` times the Euclidean
coordinates of a tangent vector there.

Every formula avoids the cancellations of the textbook forms:

* ``1 + 2c<a,b> + c²|a|²|b|²`` (the Möbius denominator) is evaluated as
  ``(1 - c|a|²)(1 - c|b|²) + c|a + b|²``, a sum of non-negative terms;
* the distance is ``(2/√c) asinh(√c |x - y| / sqrt((1 - c|x|²)(1 - c|y|²)))``, which reads
  the separation from ``x - y`` directly instead of subtracting numbers close to 1;
* the log map at ``p`` followed by transport to the origin has the closed form
  ``2 asinhc(u²) / s · N / sqrt(Q)`` (see :func:`tangent_coords`), smooth at ``x == p``.

With these, float32 stays finite (values and gradients) for norms up to ``1 - 1e-5``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from boxlib import numerics, scoring

__all__ = [
    "box_distance_blocks",
    "conformal_gap",
    "conformal_gap_blocks",
    "distance",
    "expmap0",
    "logmap",
    "logmap0",
    "mobius_add",
    "point_at",
    "project",
    "tangent_coords",
    "tangent_factors",
    "transport0back",
]


def _sq(x: Tensor) -> Tensor:
    return (x * x).sum(dim=-1, keepdim=True)


def conformal_gap(x: Tensor, *, c: Tensor | float) -> Tensor:
    """``1 - c|x|^2`` clamped away from 0, shape ``[..., 1]`` (``2 / λ_x``)."""
    return torch.clamp_min(1 - c * _sq(x), numerics.min_denom(x.dtype))


def project(x: Tensor, *, c: Tensor | float) -> Tensor:
    """Pull points with ``√c |x| > 1 - eps`` back to radius ``(1 - eps) / √c``."""
    eps = numerics.boundary_eps(x.dtype)
    max_norm = (1 - eps) / torch.as_tensor(c, dtype=x.dtype, device=x.device).sqrt()
    norm = numerics.safe_norm(x, keepdim=True)
    return torch.where(norm > max_norm, x / norm * max_norm, x)


def mobius_add(x: Tensor, y: Tensor, *, c: Tensor | float) -> Tensor:
    """``x ⊕_c y`` with numerator and denominator written as sums of non-negative terms."""
    gx = 1 - c * _sq(x)
    # 1 + 2c<x,y> + c|y|² == c|x+y|² + (1 - c|x|²): no cancellation when y ≈ -x.
    s2 = _sq(x + y)
    num = (c * s2 + gx) * x + gx * y
    den = gx * (1 - c * _sq(y)) + c * s2
    return num / torch.clamp_min(den, numerics.min_denom(x.dtype))


def tangent_coords(p: Tensor, x: Tensor, *, c: Tensor | float) -> Tensor:
    """Canonical coordinates of ``x`` seen from ``p``: ``λ_p · log_p(x)`` (the transport
    from ``p`` to the origin only rescales by ``λ_p / λ_0``).

    With ``δ = x - p``, ``a = 1 - c|p|²``, ``b = 1 - c|x|²``, ``s = sqrt(ab)`` and
    ``u² = c|δ|² / (ab)``, the direction of ``(-p) ⊕ x`` is ``N = a δ - c|δ|² p`` and
    ``|N|² = |δ|² Q`` with ``Q = a² - 2ac<δ, p> + c²|δ|²|p|²``. The result
    ``2 asinhc(u²) / s · N / sqrt(Q)`` has norm ``d(p, x)`` and is smooth at ``δ = 0``.
    """
    delta = x - p
    d2 = _sq(delta)
    a = conformal_gap(p, c=c)
    b = conformal_gap(x, c=c)
    ab = a * b
    factor = 2 * numerics.asinhc(c * d2 / ab) / torch.sqrt(ab)
    n = a * delta - c * d2 * p
    q = a * a - 2 * a * c * (delta * p).sum(dim=-1, keepdim=True) + c * c * d2 * _sq(p)
    q = torch.clamp_min(q, numerics.min_denom(x.dtype) ** 2)
    return factor * n / torch.sqrt(q)


def distance(x: Tensor, y: Tensor, *, c: Tensor | float) -> Tensor:
    """Geodesic distance ``(2/√c) asinh(√c |x - y| / sqrt((1 - c|x|²)(1 - c|y|²)))``."""
    d2 = _sq(x - y)
    ab = conformal_gap(x, c=c) * conformal_gap(y, c=c)
    dist = numerics.safe_sqrt(d2) * 2 * numerics.asinhc(c * d2 / ab) / torch.sqrt(ab)
    return dist.squeeze(-1)


def expmap0(v: Tensor, *, c: Tensor | float) -> Tensor:
    """Canonical coordinates at the origin → point: ``tanh(√c|v|/2) / (√c|v|) · v``."""
    x = 0.5 * numerics.tanhc(c * _sq(v) / 4) * v
    return project(x, c=c)


def logmap0(x: Tensor, *, c: Tensor | float) -> Tensor:
    """Point → canonical coordinates at the origin (inverse of :func:`expmap0`)."""
    b = conformal_gap(x, c=c)
    return 2 * numerics.asinhc(c * _sq(x) / b) / torch.sqrt(b) * x


def transport0back(p: Tensor, u: Tensor, *, c: Tensor | float) -> Tensor:
    """Ambient tangent ``u`` at ``p`` → canonical coordinates at the origin: ``λ_p u``."""
    return 2 * u / conformal_gap(p, c=c)


def logmap(p: Tensor, x: Tensor, *, c: Tensor | float) -> Tensor:
    """Ambient (Euclidean-coordinate) tangent vector at ``p`` pointing to ``x``."""
    return tangent_coords(p, x, c=c) * conformal_gap(p, c=c) / 2


def point_at(p: Tensor, t: Tensor, *, c: Tensor | float) -> Tensor:
    """Inverse of :func:`tangent_coords`: ``p ⊕ expmap0(t)`` (left cancellation)."""
    return project(mobius_add(p, expmap0(t, c=c), c=c), c=c)


def conformal_gap_blocks(x_blocks: Tensor, c: Tensor) -> Tensor:
    """:func:`conformal_gap` of item-major blocks ``[blocks, d, block]``, as ``[blocks, block]``
    in their dtype, computed in float64 (``1 − c|x|²`` cancels near the boundary); ``c``
    is a float64 scalar tensor. One fused pass for :meth:`PoincareGeometry.prepare_points`."""
    x = x_blocks.to(torch.float64)
    gap = 1 - c * (x * x).sum(dim=1)
    return torch.clamp_min(gap, numerics.min_denom(x_blocks.dtype)).to(x_blocks.dtype)


def _asinhc(z: Tensor) -> Tensor:
    """``asinh(√z) / √z`` as :func:`boxlib.numerics.asinhc` gives it, in a form that costs
    one ``log1p``: ``asinh(s) = log1p(s + s² / (1 + sqrt(1 + s²)))`` has no cancellation
    for any ``s >= 0``, so no series branch is needed (``s`` is floored at the dtype's
    ``tiny``, where the ratio is 1). For the scoring kernel, whose scalar stage it
    dominates; not for gradients through ``z = 0``."""
    s = torch.sqrt(torch.clamp_min(z, numerics.tiny(z.dtype)))
    return torch.log1p(s + z / (1 + torch.sqrt(1 + z))) / s


def tangent_factors(
    d2: Tensor, dp: Tensor, a: Tensor, b: Tensor, p2: Tensor, *, c: Tensor | float, c_over_a: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The two pair scalars of :func:`tangent_coords`: ``tangent_coords(p, x) = scale · (δ − shift · p)``.

    From ``d2 = |δ|²``, ``dp = <δ, p>`` (``δ = x − p``), ``a = 1 − c|p|²``, ``b = 1 − c|x|²``
    (both as :func:`conformal_gap` clamps them) and ``p2 = |p|²``: with the quantities of
    :func:`tangent_coords`, ``N = a δ − c|δ|² p = a (δ − shift · p)``, so
    ``scale = 2 asinhc(u²) a / (s sqrt(Q))`` and ``shift = c|δ|² / a``. Only these
    scalars depend on the pair as a whole; the rest is one elementwise pass over the axes.
    ``c_over_a`` (``c / a``, precomputed per center) saves a division per pair.
    """
    ab = a * b
    q = torch.clamp_min(a * a - 2 * a * c * dp + c * c * d2 * p2, numerics.min_denom(d2.dtype) ** 2)
    scale = 2 * a * _asinhc(c * d2 / ab) / (torch.sqrt(ab) * torch.sqrt(q))
    shift = c * d2 / a if c_over_a is None else d2 * c_over_a
    return scale, shift


def box_distance_blocks(
    x: Tensor,
    x_lo: Tensor | None,
    b: Tensor,
    p: Tensor,
    p_lo: Tensor | None,
    a: Tensor,
    c_over_a: Tensor,
    p2: Tensor,
    offset: Tensor,
    gap_minus_offset: Tensor | None,
    twice_gap: Tensor | None,
    c: Tensor,
    alpha: Tensor,
) -> Tensor:
    """The fused scoring kernel: ``distance_to_region`` of every item block against every box.

    ``x`` holds item-major blocks ``[blocks, d, block]`` of ball points and ``b`` their
    conformal gaps ``[blocks, block]``; ``p`` the centers ``[B, d]``, ``a`` their gaps,
    ``c_over_a`` the curvature over them and ``p2`` their squared norms ``[B]``. ``x_lo``
    / ``p_lo`` (or None) are the rounding errors of ``x`` / ``p`` when the points are
    double-float numbers (hyperboloid points mapped to the ball), so that ``δ = x − p``
    keeps full precision for nearby points.
    Per pair: ``|δ|²`` and ``<δ, p>`` (one pass over the axes), :func:`tangent_factors`,
    then the box terms (:func:`boxlib.scoring.box_terms`) of ``|scale · (δ − shift · p)|``
    (a second pass). Returns ``[blocks, B, block]``.
    """
    pe = p[None, :, :, None]
    delta = x[:, None] - pe
    if x_lo is not None and p_lo is not None:
        delta = delta + (x_lo[:, None] - p_lo[None, :, :, None])
    d2 = (delta * delta).sum(dim=2)
    dp = (delta * pe).sum(dim=2)
    a_ = a[None, :, None]
    scale, shift = tangent_factors(d2, dp, a_, b[:, None], p2[None, :, None], c=c, c_over_a=c_over_a[None, :, None])
    t = (scale[:, :, None] * (delta - shift[:, :, None] * pe)).abs()
    gaps = [None if g is None else g[None, :, :, None] for g in (gap_minus_offset, twice_gap)]
    return scoring.box_terms(t, offset[None, :, :, None], alpha, *gaps).sum(dim=2)
