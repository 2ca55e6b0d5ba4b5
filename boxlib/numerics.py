"""Numerical guards shared by every geometry: per-dtype margins and safe special functions.

One table per kind of margin, keyed by dtype, replaces magic numbers scattered through
the maths (see geoopt's ``stereographic/math.py``). Every function here is finite, with
finite gradients, for every finite input, including 0 where the textbook formula has a
removable singularity (``asinh(x)/x``, ``sinh(x)/x``, ``sqrt`` at 0).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "BOUNDARY_EPS",
    "MIN_DENOM",
    "TINY",
    "TOLERANCE",
    "arcoshc1",
    "asinhc",
    "boundary_eps",
    "compute_dtype",
    "coshsqrt",
    "min_denom",
    "safe_norm",
    "safe_sqrt",
    "sinhc",
    "tanhc",
    "tiny",
    "tolerance",
]

#: Floor for a radicand under ``safe_sqrt``: its square root is negligible next to any
#: distance of interest (1e-15 in float32), so ``d(x, x)`` comes out as 0 within tolerance.
TINY: dict[torch.dtype, float] = {
    torch.float16: 1e-7,
    torch.bfloat16: 1e-30,
    torch.float32: 1e-30,
    torch.float64: 1e-200,
}

#: Floor for a clamped denominator (e.g. the Poincaré ball's ``1 - c|x|^2``). Its
#: reciprocal squared stays finite, so products of two such factors do not underflow.
MIN_DENOM: dict[torch.dtype, float] = {
    torch.float16: 1e-3,
    torch.bfloat16: 1e-6,
    torch.float32: 1e-12,
    torch.float64: 1e-100,
}

#: Relative margin kept from a manifold's boundary (e.g. the Poincaré ball's unit
#: sphere) by ``project``. Points closer than this are pulled in.
BOUNDARY_EPS: dict[torch.dtype, float] = {
    torch.float16: 1e-2,
    torch.bfloat16: 1e-2,
    torch.float32: 1e-5,
    torch.float64: 1e-12,
}

#: Absolute tolerance for comparisons such as ``contains`` and ``check_point``.
TOLERANCE: dict[torch.dtype, float] = {
    torch.float16: 1e-2,
    torch.bfloat16: 1e-2,
    torch.float32: 1e-4,
    torch.float64: 1e-9,
}


def _lookup(table: dict[torch.dtype, float], dtype: torch.dtype) -> float:
    try:
        return table[dtype]
    except KeyError:
        raise TypeError(
            f"boxlib geometry maths needs a floating-point tensor, got dtype {dtype}; "
            "convert with .float() or .double()"
        ) from None


def tiny(dtype: torch.dtype) -> float:
    """The clamp floor for denominators and radicands in ``dtype``."""
    return _lookup(TINY, dtype)


def min_denom(dtype: torch.dtype) -> float:
    """The clamp floor for denominators in ``dtype``."""
    return _lookup(MIN_DENOM, dtype)


def boundary_eps(dtype: torch.dtype) -> float:
    """The relative margin ``project`` keeps from a boundary in ``dtype``."""
    return _lookup(BOUNDARY_EPS, dtype)


def tolerance(dtype: torch.dtype) -> float:
    """The default absolute tolerance for comparisons in ``dtype``."""
    return _lookup(TOLERANCE, dtype)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype to do hyperbolic maths in: float64 for anything narrower.

    Coordinates of points far out on the hyperboloid grow like ``exp(distance)``; their
    Minkowski products overflow float32 at a distance of about 44 from the origin.
    """
    return torch.float64 if dtype in (torch.float16, torch.bfloat16, torch.float32) else dtype


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(max(x, tiny))``: finite value and gradient at and below 0."""
    return torch.sqrt(torch.clamp_min(x, tiny(x.dtype)))


def safe_norm(x: Tensor, dim: int = -1, keepdim: bool = False) -> Tensor:
    """Euclidean norm whose gradient is 0 (not NaN) at the zero vector."""
    return safe_sqrt((x * x).sum(dim=dim, keepdim=keepdim))


def _even_series(x2: Tensor, small: float, series, exact) -> Tensor:
    # Evaluate an even function f(x) given x², with a Taylor series near 0 and the exact
    # formula elsewhere. Both branches get inputs that are safe for them, so neither
    # produces NaN gradients that `torch.where` would otherwise propagate.
    near = x2 < small
    x2_series = torch.where(near, x2, torch.zeros_like(x2))
    x2_exact = torch.where(near, torch.full_like(x2, small), x2)
    return torch.where(near, series(x2_series), exact(x2_exact))


def asinhc(x2: Tensor) -> Tensor:
    """``asinh(x) / x`` as a function of ``x2 = x²`` (smooth, equal to 1 at 0)."""
    return _even_series(
        x2,
        1e-4,
        lambda s: 1 - s / 6 + 3 * s * s / 40 - 5 * s * s * s / 112,
        lambda s: torch.asinh(torch.sqrt(s)) / torch.sqrt(s),
    )


def sinhc(x2: Tensor) -> Tensor:
    """``sinh(x) / x`` as a function of ``x2 = x²`` (smooth, equal to 1 at 0)."""
    return _even_series(
        x2,
        1e-4,
        lambda s: 1 + s / 6 + s * s / 120 + s * s * s / 5040,
        lambda s: torch.sinh(torch.sqrt(s)) / torch.sqrt(s),
    )


def tanhc(x2: Tensor) -> Tensor:
    """``tanh(x) / x`` as a function of ``x2 = x²`` (smooth, equal to 1 at 0)."""
    return _even_series(
        x2,
        1e-4,
        lambda s: 1 - s / 3 + 2 * s * s / 15 - 17 * s * s * s / 315,
        lambda s: torch.tanh(torch.sqrt(s)) / torch.sqrt(s),
    )


def coshsqrt(x2: Tensor) -> Tensor:
    """``cosh(x)`` as a function of ``x2 = x²`` (smooth at 0, unlike ``cosh(sqrt(x2))``)."""
    return _even_series(
        x2,
        1e-4,
        lambda s: 1 + s / 2 + s * s / 24 + s * s * s / 720,
        lambda s: torch.cosh(torch.sqrt(s)),
    )


def arcoshc1(z: Tensor) -> Tensor:
    """``arcosh(1 + z) / sqrt(z (z + 2))`` for ``z >= 0`` (smooth, equal to 1 at 0).

    The ratio of the distance to the norm of the unnormalised log-map direction in the
    hyperboloid model; writing it as one function keeps the log map smooth at
    coincident points.
    """
    z = torch.clamp_min(z, 0)
    return _even_series(
        z,
        1e-4,
        lambda s: 1 - s / 3 + 2 * s * s / 15,
        # sqrt(s) sqrt(s + 2): s (s + 2) overflows float64 past s = 1e154.
        lambda s: torch.log1p(s + torch.sqrt(s) * torch.sqrt(s + 2)) / (torch.sqrt(s) * torch.sqrt(s + 2)),
    )
