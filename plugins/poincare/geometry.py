"""The Poincaré ball with configurable, optionally learnable, curvature."""

from __future__ import annotations

import math as _math
from collections.abc import Callable

import torch
from torch import Tensor

from boxlib import numerics, scoring
from boxlib.geometry import CurvedGeometry, Region

from . import math

__all__ = ["PoincareGeometry"]


class PoincareGeometry(CurvedGeometry):
    """Poincaré ball of curvature ``-c``; regions are boxes in canonical tangent coordinates.

    :param dim: intrinsic dimension d (points have d coordinates).
    :param c: curvature magnitude, ``c > 0``; the ball has radius ``1/√c``.
    :param learnable: train ``c`` (parameterised as ``log c``, so it stays positive).
    """

    name = "poincare"
    capabilities = frozenset({"isometries"})
    maths = math
    _float64_state = ("log_c",)

    def __init__(self, dim: int, c: float = 1.0, learnable: bool = False):
        super().__init__(dim)
        if not isinstance(c, (int, float)) or isinstance(c, bool) or not _math.isfinite(c) or c <= 0:
            raise ValueError(f"PoincareGeometry curvature c must be a finite number > 0, got {c!r}")
        log_c = torch.tensor(_math.log(c), dtype=torch.float64)
        if learnable:
            self.log_c = torch.nn.Parameter(log_c)
        else:
            self.register_buffer("log_c", log_c)
        self.learnable = learnable
        if learnable:
            self.capabilities = type(self).capabilities | {"learnable_curvature"}

    @property
    def c(self) -> Tensor:
        """The curvature magnitude as a float64 scalar tensor."""
        return self.log_c.exp()

    def _c(self, x: Tensor) -> Tensor:
        return self.c.to(dtype=x.dtype, device=x.device)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, c={float(self.c.detach()):.4g}, learnable={self.learnable}"

    def origin(self, *, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        return torch.zeros(self.dim, dtype=dtype, device=device)

    def _check_point(self, x: Tensor, atol: float) -> tuple[bool, str | None]:
        c = float(self.c.detach())
        sq = (x.double() ** 2).sum(dim=-1) * c
        if bool((sq < 1).all()):
            return True, None
        worst = float(sq.max().sqrt()) / _math.sqrt(c)
        return False, (
            f"a point has norm {worst:.9g}, on or outside the ball's boundary at radius "
            f"1/sqrt(c) = {1 / _math.sqrt(c):.9g}"
        )

    # -- fast scoring ------------------------------------------------------------------------
    def _scoring_key(self) -> tuple:
        return (float(self.c.detach()),)

    def prepare_points(self, points: Tensor) -> scoring.PreparedPoints:
        """Points as item-major blocks with their conformal gaps ``1 − c|x|²``
        (:func:`math.conformal_gap_blocks`, computed in float64: no cancellation near the
        boundary), for :func:`math.box_distance_blocks`."""
        if not scoring.kernel_ready(points):
            return scoring.PreparedPoints(points)
        blocks = scoring.to_blocks(points.detach())
        if points.dtype == torch.float64:
            # Within 1e-12 of the boundary an ulp of |x|² moves the gap by 1e-4: sum the
            # squares in the order the reference path does.
            gap = scoring.gap_blocks(self._gap(points), blocks.shape[-1])
        else:
            gap = scoring.kernel(math.conformal_gap_blocks, points.shape[0])(blocks, self.c.detach())
        return scoring.PreparedPoints(points, "poincare", self._scoring_key(), blocks=blocks, gap=gap)

    def _gap(self, x: Tensor) -> Tensor:
        """``1 − c|x|²`` per point, ``[...]``, computed in float64 (clamped like :func:`math.conformal_gap`)."""
        x64 = x.detach().to(torch.float64)
        gap = 1 - self.c.detach() * (x64 * x64).sum(dim=-1)
        return torch.clamp_min(gap, numerics.min_denom(x.dtype)).to(x.dtype)

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
            center = region.center.detach().to(dtype).contiguous()
            a = self._gap(center)
            p2 = (center.double() ** 2).sum(-1).to(dtype)
            o, go, g2 = scoring.query_gap_terms(region, dtype)
            c = self.c.detach().to(dtype)
            return center, None, a, c / a, p2, o, go, g2, c

        def score(region: Region, prepared: scoring.PreparedPoints, alpha: Tensor, out: Tensor | None) -> Tensor:
            dtype = prepared.points.dtype
            key = ("poincare", self._scoring_key(), dtype)
            fields = scoring.query_fields(region, key, lambda: queries(region, dtype))
            items = [prepared.blocks, None, prepared.gap]
            return scoring.run_blocks(math.box_distance_blocks, items, [*fields, alpha], prepared.size, out)

        return scoring.kernel_matrix(self, region, points, alpha, "poincare", self._scoring_key(), score, out)

    def sample_isometry(self, generator: torch.Generator, dtype: torch.dtype) -> Callable[[Tensor], Tensor]:
        c = self.c.to(dtype)
        shift = self.expmap0(torch.randn(self.dim, generator=generator, dtype=dtype))
        rotation, _ = torch.linalg.qr(torch.randn(self.dim, self.dim, generator=generator, dtype=dtype))
        return lambda x: math.mobius_add(shift, x @ rotation.T, c=c)

    def reference_distance(self, x: Tensor, y: Tensor) -> Tensor:
        from geoopt.manifolds.stereographic import math as ref

        return ref.dist(x, y, k=-self._c(x))

    def reference_tangent_coords(self, p: Tensor, x: Tensor) -> Tensor:
        """geoopt's log map at ``p``, transported to the origin, times ``λ_0 = 2``."""
        from geoopt.manifolds.stereographic import math as ref

        k = -self._c(x)
        u = ref.logmap(p, x, k=k)
        return 2 * ref.parallel_transport(p, torch.zeros_like(p), u, k=k)
