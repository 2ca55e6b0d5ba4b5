"""Hypothesis strategies that build valid points and regions for any geometry.

Everything is built by construction from the geometry's own maps, so a strategy never
needs to know which geometry it serves: points are ``expmap0`` of bounded canonical
vectors, regions are such a point plus a non-negative offset. Coordinates are drawn as
floats by hypothesis (not from a seeded RNG), so failures shrink to small examples.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from boxlib.geometry import Geometry, Region

__all__ = ["EXTREME_RADII", "canonical_vectors", "extreme_points", "offsets", "points", "regions"]

#: Distances from the origin used for extreme inputs: from 0 through the log-uniform
#: small scale to far out (the Poincaré ball saturates at its boundary margin, i.e. a
#: norm of 1 - 1e-5 in float32; the hyperboloid reaches 80 from the origin).
EXTREME_RADII = (0.0, 1e-15, 1e-10, 1e-5, 1e-2, 1.0, 5.0, 13.0, 50.0, 80.0)


def _to_torch(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(array, dtype=torch.float64).to(dtype)


def canonical_vectors(
    dim: int, batch_shape: tuple[int, ...] = (), *, max_abs: float = 2.0, dtype: torch.dtype = torch.float64
) -> st.SearchStrategy[torch.Tensor]:
    """Tangent vectors in canonical coordinates with entries in ``[-max_abs, max_abs]``."""
    elements = st.floats(-max_abs, max_abs, allow_nan=False, allow_infinity=False, width=64)
    return hnp.arrays(np.float64, (*batch_shape, dim), elements=elements).map(lambda a: _to_torch(a, dtype))


def points(
    geometry: Geometry,
    batch_shape: tuple[int, ...] = (),
    *,
    max_abs: float = 2.0,
    dtype: torch.dtype = torch.float64,
) -> st.SearchStrategy[torch.Tensor]:
    """Valid points: ``expmap0`` of canonical vectors with entries in ``[-max_abs, max_abs]``."""

    def build(v: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return geometry.expmap0(v).to(dtype)

    return canonical_vectors(geometry.dim, batch_shape, max_abs=max_abs, dtype=dtype).map(build)


def offsets(
    dim: int, batch_shape: tuple[int, ...] = (), *, max_offset: float = 2.0, dtype: torch.dtype = torch.float64
) -> st.SearchStrategy[torch.Tensor]:
    """Non-negative offsets, zeros included."""
    elements = st.one_of(st.just(0.0), st.floats(0.0, max_offset, allow_nan=False, width=64))
    return hnp.arrays(np.float64, (*batch_shape, dim), elements=elements).map(lambda a: _to_torch(a, dtype))


@st.composite
def regions(
    draw,
    geometry: Geometry,
    batch_shape: tuple[int, ...] = (),
    *,
    max_abs: float = 2.0,
    max_offset: float = 2.0,
    dtype: torch.dtype = torch.float64,
) -> Region:
    """Valid regions: a point from :func:`points` and an offset from :func:`offsets`."""
    center = draw(points(geometry, batch_shape, max_abs=max_abs, dtype=dtype))
    offset = draw(offsets(geometry.dim, batch_shape, max_offset=max_offset, dtype=dtype))
    return Region(center, offset)


def extreme_points(geometry: Geometry, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Points at every radius of :data:`EXTREME_RADII` in random directions, ``[R, ambient_dim]``.

    Euclidean-like geometries see the large radii as plain large coordinates; the
    Poincaré ball sees them saturate at its boundary margin; the hyperboloid sees them
    as points far out.
    """
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(len(EXTREME_RADII), geometry.dim, generator=generator, dtype=torch.float64)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    radii = torch.tensor(EXTREME_RADII, dtype=torch.float64)[:, None]
    with torch.no_grad():
        pts = geometry.expmap0((directions * radii).to(dtype))
    if not math.isfinite(float(pts.abs().max())):
        raise AssertionError(f"{geometry!r}.expmap0 produced non-finite points for radii {EXTREME_RADII}")
    return pts
