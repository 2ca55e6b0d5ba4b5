"""The Poincaré ball with configurable, optionally learnable, curvature."""

from __future__ import annotations

import math as _math
from collections.abc import Callable

import torch
from torch import Tensor

from boxlib.geometry import CurvedGeometry

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
