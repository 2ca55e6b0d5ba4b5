"""The Lorentz hyperboloid with configurable curvature."""

from __future__ import annotations

import math as _math
from collections.abc import Callable

import torch
from torch import Tensor

from boxlib import numerics, scoring
from boxlib.geometry import CurvedGeometry, Region

from ..poincare import math as ball_math
from . import math

__all__ = ["LorentzGeometry"]

#: Points whose image in the ball has a conformal gap below this (farther than about
#: ``ln(2^20) ≈ 14.6`` units of ``1/√c`` from the origin) are scored by the reference path:
#: beyond it the ball's coordinates, even as double-float numbers, resolve the point less
#: finely than the hyperboloid's float64 arithmetic does.
BALL_MIN_GAP = 2.0**-19


class LorentzGeometry(CurvedGeometry):
    """Lorentz hyperboloid of curvature ``-c``; points have ``dim + 1`` coordinates.

    :param dim: intrinsic dimension d.
    :param c: curvature magnitude, ``c > 0`` (the hyperboloid ``<x, x>_L = -1/c``).
    """

    name = "lorentz"
    capabilities = frozenset({"isometries"})
    maths = math
    _float64_state = ("c",)

    def __init__(self, dim: int, c: float = 1.0):
        super().__init__(dim)
        if not isinstance(c, (int, float)) or isinstance(c, bool) or not _math.isfinite(c) or c <= 0:
            raise ValueError(f"LorentzGeometry curvature c must be a finite number > 0, got {c!r}")
        self.register_buffer("c", torch.tensor(float(c), dtype=torch.float64))

    @property
    def ambient_dim(self) -> int:
        return self.dim + 1

    def _c(self, x: Tensor) -> Tensor:
        return self.c.to(dtype=numerics.compute_dtype(x.dtype), device=x.device)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, c={float(self.c):.4g}"

    def origin(self, *, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        o = torch.zeros(self.ambient_dim, dtype=dtype, device=device)
        o[0] = 1 / _math.sqrt(float(self.c))
        return o

    def _check_point(self, x: Tensor, atol: float) -> tuple[bool, str | None]:
        x64 = x.double()
        k = 1 / float(self.c)
        if bool((x64[..., 0] <= 0).any()):
            return False, "a point has time coordinate x_0 <= 0 (lower sheet or not on the hyperboloid)"
        # The constraint's residual scales with x_0², the size of the terms it subtracts.
        residual = (math.inner(x64, x64, keepdim=False) + k).abs()
        scale = torch.clamp_min(x64[..., 0] ** 2, k)
        rel = residual / scale
        rtol = max(atol, float(torch.finfo(x.dtype).eps) * 8)
        if bool((rel <= rtol).all()):
            return True, None
        i = int(rel.flatten().argmax())
        return False, (
            f"a point violates <x, x>_L = -1/c = {-k:.6g} by {float(residual.flatten()[i]):.3g} "
            f"(relative {float(rel.flatten()[i]):.3g} > {rtol:.3g})"
        )

    # -- fast scoring ------------------------------------------------------------------------
    def _scoring_key(self) -> tuple:
        return (float(self.c),)

    def _ball_blocks(self, points: Tensor, mode_items: int) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
        """:func:`math.to_ball_blocks` of ``points``, compiled or not as a kernel call over
        ``mode_items`` items is: items and centers take the same path, so that equal points
        map to bitwise equal coordinates. At least two blocks, as
        :func:`boxlib.scoring.run_blocks` passes them."""
        # float32 points become double-float ball coordinates: 8 bytes per axis.
        bytes_per_axis = 8 if points.dtype == torch.float32 else points.element_size()
        blocks = scoring.to_blocks(points.detach(), scoring.block_items(points.shape[-1], bytes_per_axis))
        if blocks.shape[0] == 1:
            blocks = torch.cat([blocks, torch.zeros_like(blocks)])
        return scoring.kernel(math.to_ball_blocks, mode_items)(blocks, 1 / self.c)

    def prepare_points(self, points: Tensor) -> scoring.PreparedPoints:
        """Points mapped to the Poincaré ball (:func:`math.to_ball_blocks`) as item-major
        blocks of double-float coordinates, with their conformal gaps, for the ball's
        kernel :func:`boxlib_plugins.poincare.math.box_distance_blocks`. Points beyond
        :data:`BALL_MIN_GAP` are marked as outliers for the reference path."""
        if not scoring.kernel_ready(points):
            return scoring.PreparedPoints(points)
        n = points.shape[0]
        hi, lo, gap, scale = self._ball_blocks(points, n)
        nb = max(1, -(-n // hi.shape[-1]))
        return scoring.PreparedPoints(
            points,
            "lorentz",
            self._scoring_key(),
            blocks=hi[:nb],
            blocks_lo=None if lo is None else lo[:nb],
            gap=gap[:nb],
            outliers=torch.nonzero(scale.reshape(-1)[:n] < BALL_MIN_GAP / 2).squeeze(-1),
        )

    def distance_to_region_matrix(
        self,
        region: Region,
        points: Tensor | scoring.PreparedPoints,
        alpha: float = 0.2,
        *,
        out: Tensor | None = None,
    ) -> Tensor:
        """``[B, N]`` distances through the Poincaré ball's fused kernel on the images of
        the points under the isometry :func:`math.to_ball` (see
        :meth:`Geometry.distance_to_region_matrix <boxlib.geometry.Geometry.distance_to_region_matrix>`)."""

        def queries(region: Region, dtype: torch.dtype, items: int) -> tuple:
            b, d = region.batch_shape[0], self.dim

            def rows(t: Tensor) -> Tensor:  # blocks [nb, d, block] → [b, d]; [nb, block] → [b]
                return (t.transpose(1, 2).reshape(-1, d) if t.dim() == 3 else t.reshape(-1))[:b].contiguous()

            hi, lo, a, scale = self._ball_blocks(region.center, items)
            p_hi, p_lo, a, scale = rows(hi), None if lo is None else rows(lo), rows(a), rows(scale)
            y = p_hi.double() if p_lo is None else p_hi.double() + p_lo.double()
            p2 = (y * y).sum(-1).to(dtype)
            c = self.c.to(dtype)
            far = torch.nonzero(scale < BALL_MIN_GAP / 2).squeeze(-1)
            return (p_hi, p_lo, a, c / a, p2, *scoring.query_gap_terms(region, dtype), c), far

        def score(region: Region, prepared: scoring.PreparedPoints, alpha: Tensor, out: Tensor | None) -> Tensor:
            dtype, n = prepared.points.dtype, prepared.size
            # Centers take the items' path (compiled or not), so that equal points agree bitwise.
            key = ("lorentz", self._scoring_key(), dtype, scoring.compiles(n))
            fields, far = scoring.query_fields(region, key, lambda: queries(region, dtype, n))
            items = [prepared.blocks, prepared.blocks_lo, prepared.gap]
            out = scoring.run_blocks(ball_math.box_distance_blocks, items, [*fields, alpha], n, out)
            return scoring.patch_outliers(self, out, region, prepared.points, float(alpha), far, prepared.outliers)

        return scoring.kernel_matrix(self, region, points, alpha, "lorentz", self._scoring_key(), score, out)

    def sample_isometry(self, generator: torch.Generator, dtype: torch.dtype) -> Callable[[Tensor], Tensor]:
        """A spatial rotation followed by a boost of random rapidity along a random axis."""
        d = self.dim
        rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=dtype))
        axis = torch.randn(d, generator=generator, dtype=dtype)
        axis = axis / axis.norm()
        rapidity = float(torch.rand((), generator=generator, dtype=dtype)) * 3
        ch, sh = _math.cosh(rapidity), _math.sinh(rapidity)
        boost = torch.eye(d + 1, dtype=dtype)
        boost[0, 0] = ch
        boost[0, 1:] = sh * axis
        boost[1:, 0] = sh * axis
        boost[1:, 1:] += (ch - 1) * torch.outer(axis, axis)
        full = torch.eye(d + 1, dtype=dtype)
        full[1:, 1:] = rotation
        matrix = boost @ full
        return lambda x: x @ matrix.T.to(x.dtype)

    def reference_distance(self, x: Tensor, y: Tensor) -> Tensor:
        from geoopt.manifolds.lorentz import math as ref

        return ref.dist(x, y, k=1 / self._c(x))

    def reference_tangent_coords(self, p: Tensor, x: Tensor) -> Tensor:
        """geoopt's log map at ``p``, transported to the origin, time coordinate dropped."""
        from geoopt.manifolds.lorentz import math as ref

        k = 1 / self._c(x)
        u = ref.logmap(p, x, k=k)
        origin = torch.zeros_like(p)
        origin[..., 0] = torch.sqrt(k)
        return ref.parallel_transport(p, origin, u, k=k)[..., 1:]
