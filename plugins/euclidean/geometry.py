"""Euclidean space with axis-aligned boxes and their exact intersection."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from boxlib import scoring
from boxlib.geometry import Geometry, Region

from . import math

__all__ = ["EuclideanGeometry"]


class EuclideanGeometry(Geometry):
    """Euclidean space ℝ^d; regions are axis-aligned boxes (Query2Box)."""

    name = "euclidean"
    capabilities = frozenset({"exact_intersection", "volume", "isometries"})

    def origin(self, *, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        return torch.zeros(self.dim, dtype=dtype, device=device)

    def project(self, x: Tensor) -> Tensor:
        return x.clone()

    def _check_point(self, x: Tensor, atol: float) -> tuple[bool, str | None]:
        return True, None  # every finite vector is a point

    def expmap0(self, v: Tensor) -> Tensor:
        return v.clone()

    def logmap0(self, x: Tensor) -> Tensor:
        return x.clone()

    def logmap(self, x: Tensor, y: Tensor) -> Tensor:
        return math.tangent_coords(x, y)

    def transport0back(self, x: Tensor, u: Tensor) -> Tensor:
        return u.expand(torch.broadcast_shapes(x.shape, u.shape)).clone()

    def tangent_coords(self, region: Region | Tensor, x: Tensor) -> Tensor:
        center = region.center if isinstance(region, Region) else region
        return math.tangent_coords(center, x)

    def point_at(self, region: Region | Tensor, t: Tensor) -> Tensor:
        center = region.center if isinstance(region, Region) else region
        return center + t

    def distance(self, x: Tensor, y: Tensor) -> Tensor:
        return math.distance(x, y)

    def prepare_points(self, points: Tensor) -> scoring.PreparedPoints:
        """Points as item-major blocks for :func:`math.box_distance_blocks`."""
        if not scoring.kernel_ready(points):
            return scoring.PreparedPoints(points)
        return scoring.PreparedPoints(points, "euclidean", (), blocks=scoring.to_blocks(points))

    def distance_to_region_matrix(
        self,
        region: Region,
        points: Tensor | scoring.PreparedPoints,
        alpha: float = 0.2,
        *,
        out: Tensor | None = None,
    ) -> Tensor:
        """``[B, N]`` distances through the fused kernel :func:`math.box_distance_blocks`
        (see :meth:`Geometry.distance_to_region_matrix <boxlib.geometry.Geometry.distance_to_region_matrix>`)."""

        def queries(region: Region, dtype: torch.dtype) -> tuple:
            return region.center.detach().to(dtype).contiguous(), *scoring.query_gap_terms(region, dtype)

        def score(region: Region, prepared: scoring.PreparedPoints, alpha: Tensor, out: Tensor | None) -> Tensor:
            dtype = prepared.points.dtype
            fields = scoring.query_fields(region, ("euclidean", dtype), lambda: queries(region, dtype))
            return scoring.run_blocks(math.box_distance_blocks, [prepared.blocks], [*fields, alpha], prepared.size, out)

        return scoring.kernel_matrix(self, region, points, alpha, "euclidean", (), score, out)

    def intersect(self, regions: Sequence[Region]) -> Region:
        if not regions:
            raise ValueError("intersect() needs at least one region")
        center, offset, gap = math.intersect([(r.center, r.offset, r.gap) for r in regions])
        return Region._trusted(center, offset, gap)

    def log_volume(self, region: Region) -> Tensor:
        return math.log_volume(region.offset, region.gap)

    def sample_isometry(self, generator: torch.Generator, dtype: torch.dtype) -> Callable[[Tensor], Tensor]:
        shift = torch.randn(self.dim, generator=generator, dtype=dtype) * 3
        rotation, _ = torch.linalg.qr(torch.randn(self.dim, self.dim, generator=generator, dtype=dtype))
        return lambda x: x @ rotation.T + shift

    def reference_distance(self, x: Tensor, y: Tensor) -> Tensor:
        import geoopt

        return geoopt.Euclidean(ndim=1).dist(x, y)
