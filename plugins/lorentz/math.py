"""Lorentz-hyperboloid maths as pure functions, curvature ``-c`` (``c > 0``).

Points satisfy ``<x, x>_L = -k`` with ``k = 1/c`` and ``x_0 > 0``, where
``<x, y>_L = -x_0 y_0 + Σ x_i y_i``. The origin is ``(√k, 0, …, 0)``; tangent vectors
there have a zero time coordinate, which canonical coordinates drop.

Two choices keep this finite in float32:

* coordinates grow like ``exp(distance)``, so Minkowski products of points 50 from the
  origin overflow float32; every function computes in float64 (:func:`boxlib.numerics.compute_dtype`)
  and casts the result back;
* distances and log maps read the separation from ``q = <x - y, x - y>_L`` (which is
  exactly 0 for coincident points) instead of from ``-<x, y>_L / k``, a number close to
  1 whose ``arcosh`` has an infinite slope there.
"""

from __future__ import annotations

import torch
from torch import Tensor

from boxlib import numerics

__all__ = [
    "MAX_ORIGIN_DISTANCE",
    "distance",
    "expmap0",
    "inner",
    "logmap",
    "logmap0",
    "point_at",
    "project",
    "tangent_coords",
    "to_ball",
    "to_ball_blocks",
    "transport0back",
]

#: ``expmap0`` clamps the distance from the origin to this many units of ``√k = 1/√c``,
#: per dtype, so that point coordinates (≈ exp(distance/√k)) and products of three of
#: them stay finite.
MAX_ORIGIN_DISTANCE: dict[torch.dtype, float] = {
    torch.float16: 10.0,
    torch.bfloat16: 80.0,
    torch.float32: 80.0,
    torch.float64: 200.0,
}


def inner(x: Tensor, y: Tensor, keepdim: bool = True) -> Tensor:
    """Minkowski inner product ``-x_0 y_0 + Σ x_i y_i``."""
    prod = x * y
    res = prod[..., 1:].sum(dim=-1, keepdim=True) - prod[..., :1]
    return res if keepdim else res.squeeze(-1)


def _up(*tensors: Tensor) -> tuple[torch.dtype, list[Tensor]]:
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    work = numerics.compute_dtype(dtype)
    return dtype, [t.to(work) for t in tensors]


def _k(c: Tensor | float, like: Tensor) -> Tensor:
    return 1 / torch.as_tensor(c, dtype=like.dtype, device=like.device)


def project(x: Tensor, *, c: Tensor | float) -> Tensor:
    """Recompute the time coordinate from the spatial ones: ``x_0 = sqrt(k + |x_s|²)``."""
    dtype, (x,) = _up(x)
    xs = x[..., 1:]
    x0 = torch.sqrt(_k(c, x) + (xs * xs).sum(dim=-1, keepdim=True))
    return torch.cat([x0, xs], dim=-1).to(dtype)


def _time(xs: Tensor, k: Tensor) -> Tensor:
    """The time coordinate implied by the spatial ones, ``sqrt(k + |x_s|²)``."""
    return torch.sqrt(k + (xs * xs).sum(dim=-1, keepdim=True))


def _separation(p: Tensor, x: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
    """``(x - p, z)`` with ``z = <x - p, x - p>_L / (2k) = cosh(d/√k) - 1 >= 0``.

    Time coordinates are treated as derived from the spatial ones, and the separation
    ``q = <x - p, x - p>_L`` is read without subtracting numbers of size ``x_0²``:

    * nearby points: with ``δ = x_s - p_s``, ``σ = x_s + p_s`` and ``S = x_0 + p_0``,
      ``x_0 - p_0 = <δ, σ>/S`` and ``S² - |σ|² = 4k + q`` give
      ``q = (|δ⊥|² + 4k r) / (1 - r)`` where ``r = <δ, σ>² / (|σ|² S²)`` and ``δ⊥`` is
      ``δ`` without its component along ``σ``. Every term is non-negative, so the error
      is that of the coordinates themselves rather than ``eps · x_0²``.
    * far-apart points (``r > 1/2``): ``q = 2 (x_0 p_0 - <x_s, p_s> - k)``, where
      nothing cancels because ``q`` is of the size of the terms.

    The returned ``x - p`` uses ``x_0 - p_0 = <δ, σ>/S`` for its time coordinate.
    """
    ps, xs = p[..., 1:], x[..., 1:]
    p0, x0 = _time(ps, k), _time(xs, k)
    ds, sg = xs - ps, xs + ps
    total = p0 + x0
    along = (ds * sg).sum(dim=-1, keepdim=True)
    sg2 = torch.clamp_min((sg * sg).sum(dim=-1, keepdim=True), numerics.tiny(sg.dtype))
    perp = ds - along / sg2 * sg
    r = along * along / sg2 / (total * total)
    near = ((perp * perp).sum(dim=-1, keepdim=True) + 4 * k * r) / torch.clamp_min(1 - r, 0.5)
    far = 2 * (x0 * p0 - (xs * ps).sum(dim=-1, keepdim=True) - k)
    q = torch.where(r > 0.5, far, near)
    delta = torch.cat([along / total, ds], dim=-1)
    return delta, torch.clamp_min(q, 0) / (2 * k)


def tangent_coords(p: Tensor, x: Tensor, *, c: Tensor | float) -> Tensor:
    """Canonical coordinates of ``x`` seen from ``p`` (log map at ``p``, transported to
    the origin, time coordinate dropped).

    With ``z = cosh(d/√k) - 1``, the log map is ``g(z) u`` where ``u = (x - p) - z p``
    and ``g(z) = arcosh(1 + z) / sqrt(z (z + 2))`` is smooth with ``g(0) = 1``; transport
    to the origin maps ``u`` to ``u_s - u_0 / (√k + p_0) p_s``.
    """
    dtype, (p, x) = _up(p, x)
    k = _k(c, x)
    delta, z = _separation(p, x, k)
    ps = p[..., 1:]
    p0 = _time(ps, k)
    # u = (x - p) - z p; its transport to the origin is u_s - u_0 / (√k + p_0) p_s.
    u0 = delta[..., :1] - z * p0
    moved = delta[..., 1:] - z * ps - u0 / (torch.sqrt(k) + p0) * ps
    t = numerics.arcoshc1(z) * moved
    # Far from the origin the transport cancels terms of size |p_s| ≈ sinh(r) down to
    # the distance, so |t| drifts from d = √k arcosh(1 + z), which `z` gives accurately.
    # Rescale to the exact norm (a no-op up to rounding near the origin); the direction
    # keeps the representation's own uncertainty of about eps · sinh(r).
    norm = numerics.safe_norm(t, keepdim=True)
    dist = torch.sqrt(k) * torch.log1p(z + numerics.safe_sqrt(z) * torch.sqrt(z + 2))
    scale = torch.where(
        norm > numerics.tiny(t.dtype) ** 0.25, dist / torch.clamp_min(norm, numerics.tiny(t.dtype) ** 0.25), 1.0
    )
    return (t * scale).to(dtype)


def distance(x: Tensor, y: Tensor, *, c: Tensor | float) -> Tensor:
    """Geodesic distance ``√k arcosh(1 + z)``, with a finite gradient at ``x == y``."""
    dtype, (x, y) = _up(x, y)
    k = _k(c, x)
    _, z = _separation(x, y, k)
    # sqrt(z) sqrt(z + 2) rather than sqrt(z (z + 2)), which overflows float64 past z = 1e154.
    dist = torch.sqrt(k) * torch.log1p(z + numerics.safe_sqrt(z) * torch.sqrt(z + 2))
    return dist.squeeze(-1).to(dtype)


def expmap0(v: Tensor, *, c: Tensor | float) -> Tensor:
    """Canonical coordinates at the origin → point ``(√k cosh(|v|/√k), √k sinh(|v|/√k) v/|v|)``.

    ``|v|`` is clamped to :data:`MAX_ORIGIN_DISTANCE` for the input dtype.
    """
    limit = MAX_ORIGIN_DISTANCE.get(v.dtype, 80.0)
    dtype, (v,) = _up(v)
    k = _k(c, v)
    # Coordinates grow like cosh(|v| / √k): the cap is in units of √k.
    limit = limit * torch.sqrt(k)
    norm = numerics.safe_norm(v, keepdim=True)
    v = v * torch.clamp_max(limit / norm, 1.0)
    xs = numerics.sinhc((v * v).sum(dim=-1, keepdim=True) / k) * v
    x0 = torch.sqrt(k + (xs * xs).sum(dim=-1, keepdim=True))
    return torch.cat([x0, xs], dim=-1).to(dtype)


def logmap0(x: Tensor, *, c: Tensor | float) -> Tensor:
    """Point → canonical coordinates at the origin: ``asinhc(|x_s|² / k) x_s``."""
    dtype, (x,) = _up(x)
    xs = x[..., 1:]
    return (numerics.asinhc((xs * xs).sum(dim=-1, keepdim=True) / _k(c, x)) * xs).to(dtype)


def logmap(p: Tensor, x: Tensor, *, c: Tensor | float) -> Tensor:
    """Ambient tangent vector at ``p`` pointing to ``x``: ``g(z) ((x - p) - z p)``."""
    dtype, (p, x) = _up(p, x)
    k = _k(c, x)
    delta, z = _separation(p, x, k)
    p = torch.cat([_time(p[..., 1:], k), p[..., 1:]], dim=-1)
    return (numerics.arcoshc1(z) * (delta - z * p)).to(dtype)


def transport0back(p: Tensor, u: Tensor, *, c: Tensor | float) -> Tensor:
    """Ambient tangent ``u`` at ``p`` → canonical coordinates at the origin."""
    dtype, (p, u) = _up(p, u)
    k = _k(c, p)
    return (u[..., 1:] - u[..., :1] / (torch.sqrt(k) + p[..., :1]) * p[..., 1:]).to(dtype)


def point_at(p: Tensor, t: Tensor, *, c: Tensor | float) -> Tensor:
    """Inverse of :func:`tangent_coords`: transport ``(0, t)`` from the origin to ``p``,
    then the exponential map ``cosh(n/√k) p + sinhc(n²/k) u`` with ``n = |t|``."""
    dtype, (p, t) = _up(p, t)
    k = _k(c, p)
    ps = p[..., 1:]
    coef = (ps * t).sum(dim=-1, keepdim=True) / (k + torch.sqrt(k) * p[..., :1])
    u0 = coef * (torch.sqrt(k) + p[..., :1])
    us = t + coef * ps
    u = torch.cat([u0, us], dim=-1)
    n2 = (t * t).sum(dim=-1, keepdim=True)
    x = numerics.coshsqrt(n2 / k) * p + numerics.sinhc(n2 / k) * u
    return project(x, c=c).to(dtype)


def to_ball(x: Tensor, *, c: Tensor | float) -> tuple[Tensor, Tensor]:
    """The isometry onto the Poincaré ball of the same curvature: ``(y, 1 − c|y|²)``.

    ``y = √k x_s / (√k + x_0)`` (stereographic projection from ``(−√k, 0)``), with the
    conformal gap computed as ``2√k / (√k + x_0)`` instead of from ``|y|²``, which would
    cancel to nothing for distant points. The map fixes the origin and its differential
    there is ``1/2`` (the ball's ``λ_0 = 2``), so canonical coordinates agree:
    ``tangent_coords(p, x)`` here equals the ball's ``tangent_coords(y(p), y(x))``. Both
    results are in the compute dtype (float64 for float32 input); the gap has shape
    ``[..., 1]``.
    """
    _, (x,) = _up(x)
    k = _k(c, x)
    root = torch.sqrt(k)
    den = root + _time(x[..., 1:], k)
    return root / den * x[..., 1:], 2 * root / den


def to_ball_blocks(x_blocks: Tensor, k: Tensor) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
    """:func:`to_ball` on item-major blocks ``[blocks, d + 1, block]`` (the scoring layout,
    :func:`boxlib.scoring.to_blocks`), fused into one pass for
    :meth:`LorentzGeometry.prepare_points`; ``k = 1/c`` is a float64 scalar tensor.

    Returns ``(hi, lo, gap, scale)``: the ball coordinates ``[blocks, d, block]`` as a
    double-float pair in the input dtype (``hi + lo`` carries the float64 value
    ``scale · x_s``; ``lo`` is None for float64 input), the conformal gap
    ``2√k / (√k + x_0) = 2 · scale`` in the input dtype, clamped like the ball's, and the
    float64 ``scale = √k / (√k + x_0)``, all per point ``[blocks, block]``. Centers go
    through the same function, so that equal points get bitwise equal coordinates.
    """
    xs = x_blocks[:, 1:].to(torch.float64)
    root = torch.sqrt(k)
    scale = root / (root + torch.sqrt(k + (xs * xs).sum(dim=1)))
    y = scale[:, None] * xs
    hi = y.to(x_blocks.dtype)
    lo = None if x_blocks.dtype == torch.float64 else (y - hi.to(torch.float64)).to(x_blocks.dtype)
    gap = torch.clamp_min(2 * scale, numerics.min_denom(x_blocks.dtype)).to(x_blocks.dtype)
    return hi, lo, gap, scale
