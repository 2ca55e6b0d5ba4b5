"""The one abstraction: a box on a manifold.

A :class:`Region` is ``(center, offset)``: ``center`` a point on the manifold and
``offset`` a non-negative vector of half-widths in the *canonical tangent coordinates*
at the center. A point ``x`` lies in the region when the tangent vector from the center
to ``x`` (log map at the center, parallel-transported to the origin, expressed in an
orthonormal basis there) is within ``offset`` on every axis. In Euclidean space this is
an axis-aligned box (Query2Box); in hyperbolic space it is ANTHEM's hyperboloid.

Canonical coordinates are orthonormal, so ``‖tangent_coords(center, x)‖₂`` is the
geodesic distance from the center to ``x`` in every geometry.

:class:`Geometry` is the abstract interface. A plugin implements six small methods
(``origin``, ``project``, ``_check_point``, ``expmap0``, ``logmap0``, ``logmap`` and
``transport0back``); everything else has a default here, written once in terms of
those, and a plugin overrides what it can do faster or exactly.
"""

from __future__ import annotations

import abc
import dataclasses
import types
from collections.abc import Callable, Sequence
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor

from boxlib import numerics, scoring

__all__ = [
    "CAPABILITIES",
    "CapabilityError",
    "CurvedGeometry",
    "Geometry",
    "PointCheck",
    "Region",
]

#: Capability flags a geometry may declare. Code checks these before it builds a batch
#: instead of discovering a missing operation halfway through.
CAPABILITIES: dict[str, str] = {
    "exact_intersection": "intersect() returns the exact intersection of boxes",
    "volume": "log_volume() is defined",
    "negation": "complements of regions can be represented",
    "learnable_curvature": "the curvature is a trainable parameter",
    "isometries": "sample_isometry() returns distance-preserving maps (used by the conformance kit)",
}


class CapabilityError(NotImplementedError):
    """An operation the geometry does not support was requested."""


class PointCheck(NamedTuple):
    """Result of :meth:`Geometry.check_point` with ``explain=True``."""

    ok: bool
    reason: str | None

    def __bool__(self) -> bool:  # a PointCheck can be used like the plain boolean
        return self.ok


def _describe(t: Tensor) -> str:
    return f"shape {tuple(t.shape)}, dtype {t.dtype}"


@dataclasses.dataclass(frozen=True, eq=False)
class Region:
    """A batch of boxes: ``center [..., ambient_dim]`` and ``offset [..., dim] >= 0``.

    ``gap`` is only set by an exact intersection that came out empty: per axis, half of
    how far the lower corner passed the upper one (0 on non-empty axes). An empty
    region has ``offset == 0`` on those axes and contains no point; its distance to any
    point is the total violation of the operands' constraints, never 0.

    The constructor validates its arguments (shape, dtype, finiteness, sign) and raises
    ``ValueError`` naming the argument and the fix. Regions are values: operations return
    new regions and never modify the tensors they were given.
    """

    center: Tensor
    offset: Tensor
    gap: Tensor | None = None

    def __post_init__(self) -> None:
        self._validate()

    # -- construction --------------------------------------------------------------
    @classmethod
    def _trusted(cls, center: Tensor, offset: Tensor, gap: Tensor | None = None) -> Region:
        """Build without validation: for results of operations on valid regions.

        Validation reads tensor values, which forces a device synchronisation; the
        library's own operations know their outputs are valid and skip it.
        """
        obj = object.__new__(cls)
        object.__setattr__(obj, "center", center)
        object.__setattr__(obj, "offset", offset)
        object.__setattr__(obj, "gap", gap)
        return obj

    def _validate(self) -> None:
        for name in ("center", "offset") + (("gap",) if self.gap is not None else ()):
            value = getattr(self, name)
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"Region {name} must be a torch.Tensor, got {type(value).__name__}; "
                    f"wrap it with torch.as_tensor(...)"
                )
            if not value.is_floating_point():
                raise TypeError(
                    f"Region {name} must be floating point, got {_describe(value)}; convert with .float() or .double()"
                )
            if value.dim() == 0:
                raise ValueError(f"Region {name} needs a last axis of coordinates, got a scalar; use shape [..., dim]")
            if not bool(torch.isfinite(value).all()):
                bad = int((~torch.isfinite(value)).sum())
                raise ValueError(
                    f"Region {name} has {bad} non-finite entries (NaN or inf) in a tensor of "
                    f"{_describe(value)}; check the computation that produced it"
                )
        c, o = self.center, self.offset
        if c.dtype != o.dtype:
            raise TypeError(
                f"Region center and offset must share a dtype, got {c.dtype} and {o.dtype}; convert one of them"
            )
        if c.shape[:-1] != o.shape[:-1]:
            raise ValueError(
                f"Region center and offset must have the same batch shape, got center "
                f"{tuple(c.shape)} and offset {tuple(o.shape)}; broadcast them explicitly "
                "(e.g. offset.expand(*center.shape[:-1], -1))"
            )
        if bool((o < 0).any()):
            worst = float(o.min())
            raise ValueError(
                f"Region offset must be >= 0 on every axis, found {worst:.6g}; offsets are "
                "half-widths: parameterise them through softplus/exp/abs"
            )
        if self.gap is not None:
            if self.gap.shape != o.shape:
                raise ValueError(
                    f"Region gap must have the offset's shape {tuple(o.shape)}, got {tuple(self.gap.shape)}"
                )
            if bool((self.gap < 0).any()):
                raise ValueError("Region gap must be >= 0 on every axis")

    # -- shape helpers -------------------------------------------------------------
    @property
    def batch_shape(self) -> torch.Size:
        return self.center.shape[:-1]

    @property
    def dim(self) -> int:
        """Intrinsic dimension d: the number of offset coordinates."""
        return self.offset.shape[-1]

    @property
    def dtype(self) -> torch.dtype:
        return self.center.dtype

    @property
    def device(self) -> torch.device:
        return self.center.device

    @property
    def is_empty(self) -> Tensor:
        """Boolean tensor of ``batch_shape``: True where the region contains no point."""
        if self.gap is None:
            return torch.zeros(self.batch_shape, dtype=torch.bool, device=self.device)
        return (self.gap > 0).any(dim=-1)

    def __getitem__(self, key) -> Region:
        """Index the batch dimensions (``region[:, None]``, ``region[mask]``, ...)."""
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            full = (*key, slice(None))
        else:
            full = (*key, Ellipsis, slice(None))
        gap = None if self.gap is None else self.gap[full]
        return Region._trusted(self.center[full], self.offset[full], gap)

    def to(self, *args, **kwargs) -> Region:
        """Move or cast all fields like :meth:`torch.Tensor.to`."""
        gap = None if self.gap is None else self.gap.to(*args, **kwargs)
        return Region._trusted(self.center.to(*args, **kwargs), self.offset.to(*args, **kwargs), gap)

    def detach(self) -> Region:
        gap = None if self.gap is None else self.gap.detach()
        return Region._trusted(self.center.detach(), self.offset.detach(), gap)

    @staticmethod
    def cat(regions: Sequence[Region], dim: int = 0) -> Region:
        """Concatenate regions along a batch dimension."""
        if not regions:
            raise ValueError("Region.cat needs at least one region")
        nb = len(regions[0].batch_shape)
        if not -nb <= dim < nb:
            raise ValueError(f"Region.cat dim must index a batch dimension (-{nb} <= dim < {nb}), got {dim}")
        dims = {r.dim for r in regions}
        if len(dims) > 1:
            raise ValueError(f"Region.cat needs regions of one dimension, got dims {sorted(dims)}")
        if dim < 0:
            dim -= 1  # count batch dims from the end, skipping the coordinate axis
        gaps = [r.gap for r in regions]
        if all(g is None for g in gaps):
            gap = None
        else:
            gap = torch.cat([torch.zeros_like(r.offset) if r.gap is None else r.gap for r in regions], dim)
        return Region._trusted(
            torch.cat([r.center for r in regions], dim), torch.cat([r.offset for r in regions], dim), gap
        )

    def __repr__(self) -> str:
        empty = "" if self.gap is None else f", empty={int(self.is_empty.sum())}"
        return f"Region(batch_shape={tuple(self.batch_shape)}, dim={self.dim}, dtype={self.dtype}{empty})"


class Geometry(torch.nn.Module, abc.ABC):
    """A manifold on which regions are boxes in canonical tangent coordinates.

    Subclasses set :attr:`name` and :attr:`capabilities` and implement the abstract
    methods. All methods broadcast over leading (batch) dimensions like PyTorch
    operators and never modify their inputs in place.

    A geometry is a ``torch.nn.Module`` so that parameters such as a learnable curvature
    train, move between devices and checkpoint with the model that owns it.
    """

    #: Registry name, e.g. ``"poincare"``.
    name: ClassVar[str] = "geometry"
    #: Capability flags, a subset of :data:`CAPABILITIES`.
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, dim: int):
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"{type(self).__name__} dim must be a positive integer, got {dim!r}")
        super().__init__()
        self.dim = dim

    # -- description -----------------------------------------------------------------
    @property
    def ambient_dim(self) -> int:
        """Number of coordinates of a stored point (``dim``, or ``dim + 1`` for the hyperboloid)."""
        return self.dim

    def has(self, capability: str) -> bool:
        """Whether the geometry declares ``capability``."""
        return capability in self.capabilities

    def require(self, capability: str, operation: str) -> None:
        """Raise :class:`CapabilityError` naming the geometry when it lacks ``capability``."""
        if capability not in self.capabilities:
            have = ", ".join(sorted(self.capabilities)) or "none"
            raise CapabilityError(
                f"{operation} needs the '{capability}' capability, which geometry '{self.name}' "
                f"does not have (it has: {have})"
            )

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    #: Names of parameters/buffers kept in float64 whatever dtype the module is cast to
    #: (``model.half()`` must not quantise a curvature used for float32/float64 maths).
    _float64_state: ClassVar[tuple[str, ...]] = ()

    def _apply(self, fn, recurse=True):
        saved = {n: getattr(self, n).detach().clone() for n in self._float64_state}
        result = super()._apply(fn, recurse)
        for name, value in saved.items():
            tensor = getattr(self, name)
            if tensor.dtype != torch.float64:
                tensor.data = value.to(device=tensor.device)
        return result

    # -- the part a plugin implements ------------------------------------------------
    @abc.abstractmethod
    def origin(self, *, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
        """The origin point, shape ``[ambient_dim]``."""

    @abc.abstractmethod
    def project(self, x: Tensor) -> Tensor:
        """The nearest valid point (e.g. pull inside the ball, onto the hyperboloid)."""

    @abc.abstractmethod
    def _check_point(self, x: Tensor, atol: float) -> tuple[bool, str | None]:
        """Check values of a tensor whose last axis has ``ambient_dim`` entries."""

    @abc.abstractmethod
    def expmap0(self, v: Tensor) -> Tensor:
        """Canonical coordinates ``[..., dim]`` at the origin → points ``[..., ambient_dim]``."""

    @abc.abstractmethod
    def logmap0(self, x: Tensor) -> Tensor:
        """Points → canonical coordinates at the origin (inverse of :meth:`expmap0`)."""

    @abc.abstractmethod
    def logmap(self, x: Tensor, y: Tensor) -> Tensor:
        """Tangent vector at ``x`` pointing to ``y``, in ambient coordinates."""

    @abc.abstractmethod
    def transport0back(self, x: Tensor, u: Tensor) -> Tensor:
        """Parallel-transport ambient tangent ``u`` at ``x`` to the origin, as canonical coordinates."""

    # -- validation --------------------------------------------------------------------
    def check_point(self, x: Tensor, *, explain: bool = False, atol: float | None = None):
        """Whether every point in ``x`` is valid; with ``explain=True`` a :class:`PointCheck`."""
        result = self._check_point_explained(x, atol)
        return result if explain else result.ok

    def _check_point_explained(self, x: Tensor, atol: float | None) -> PointCheck:
        if not isinstance(x, Tensor):
            return PointCheck(False, f"expected a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            return PointCheck(False, f"expected a floating-point tensor, got {_describe(x)}")
        if x.dim() == 0 or x.shape[-1] != self.ambient_dim:
            return PointCheck(
                False,
                f"expected points with last axis {self.ambient_dim} ({self.name}, dim={self.dim}), got {_describe(x)}",
            )
        if not bool(torch.isfinite(x).all()):
            return PointCheck(False, "contains NaN or inf")
        ok, reason = self._check_point(x, numerics.tolerance(x.dtype) if atol is None else atol)
        return PointCheck(bool(ok), reason)

    def assert_point(self, x: Tensor, name: str = "x") -> None:
        """Raise ``ValueError`` with the reason when ``x`` holds an invalid point."""
        ok, reason = self._check_point_explained(x, None)
        if not ok:
            raise ValueError(
                f"{name} is not a valid point of {self!r}: {reason}; "
                f"use geometry.project({name}) or geometry.expmap0(v) to make valid points"
            )

    def region(self, center: Tensor, offset: Tensor) -> Region:
        """A validated region of this geometry: checks shapes and that the center is on the manifold."""
        region = Region(center, offset)
        if region.offset.shape[-1] != self.dim:
            raise ValueError(
                f"offset must have {self.dim} coordinates for {self!r}, got {_describe(offset)}; "
                "offsets live in the d intrinsic tangent coordinates"
            )
        self.assert_point(center, "center")
        return region

    # -- defaults written once in terms of the abstract part --------------------------
    def tangent_coords(self, region: Region | Tensor, x: Tensor) -> Tensor:
        """Canonical coordinates of ``x`` seen from the region's center, ``[..., dim]``."""
        center = region.center if isinstance(region, Region) else region
        return self.transport0back(center, self.logmap(center, x))

    def point_at(self, region: Region | Tensor, t: Tensor) -> Tensor:
        """The point whose canonical coordinates seen from the center are ``t``.

        The inverse of :meth:`tangent_coords`; used to sample points inside regions.
        Optional: the conformance kit skips the laws that need it when a plugin does
        not provide it.
        """
        raise NotImplementedError(f"geometry '{self.name}' does not implement point_at()")

    def distance(self, x: Tensor, y: Tensor) -> Tensor:
        """Geodesic distance, broadcasting over batch dimensions."""
        return numerics.safe_norm(self.tangent_coords(x, y))

    def distance_to_region(self, region: Region, x: Tensor, alpha: float = 0.2) -> Tensor:
        """``outside + alpha * inside`` (the Query2Box form), L1 over canonical axes.

        ``outside`` is how far ``x`` lies outside the box, summed over axes; it is 0
        exactly when :meth:`contains` holds. ``inside`` is how far the box-clipped
        point lies from the center. ``alpha`` in ``[0, 1]`` weighs depth inside the box
        (with ``alpha <= 1`` growing a box never increases the distance).
        """
        scoring.check_alpha(alpha)
        outside, inside = self.distance_to_region_parts(region, x)
        return outside + alpha * inside

    def distance_to_region_parts(self, region: Region, x: Tensor) -> tuple[Tensor, Tensor]:
        """The ``(outside, inside)`` parts of :meth:`distance_to_region`."""
        t = self.tangent_coords(region, x).abs()
        return _box_parts(t, region.offset, region.gap)

    def prepare_points(self, points: Tensor) -> scoring.PreparedPoints:
        """Item points ``[N, ambient_dim]`` in the layout :meth:`distance_to_region_matrix`
        reads: prepare once, score many batches of regions against them.

        The default keeps the points as they are; a geometry with a fused kernel stores
        what depends on items only (a transposed block layout, per-item factors of the log
        map) so that each scoring pass touches only the query × item pairs.
        """
        return scoring.PreparedPoints(points)

    def distance_to_region_matrix(
        self,
        region: Region,
        points: Tensor | scoring.PreparedPoints,
        alpha: float = 0.2,
        *,
        out: Tensor | None = None,
    ) -> Tensor:
        """Distances ``[B, N]`` of every point to every region: ``region`` has batch shape
        ``[B]``, ``points`` is ``[N, ambient_dim]`` or the result of :meth:`prepare_points`.

        Equal to ``distance_to_region(region[:, None], points[None], alpha)`` up to
        rounding, without its ``B × N × dim`` temporaries; written into ``out`` (a
        ``[B, N]`` tensor or view, e.g. a column slice of a larger matrix) when given.
        This default streams the broadcast path over chunks of points (differentiable
        without ``out``); the built-in geometries override it with fused kernels
        (:mod:`boxlib.scoring`), which fall back to this path when gradients are needed.
        """
        scoring.check_matrix_args(self, region, points, alpha, out)
        raw = points.points if isinstance(points, scoring.PreparedPoints) else points
        return scoring.chunked_matrix(self, region, raw, alpha, out)

    def distance_to_candidates(self, region: Region, points: Tensor, alpha: float = 0.2) -> Tensor:
        """Distances ``[B, M]`` of each region of ``region`` (batch shape ``[B]``) to its
        own candidate points ``[B, M, ambient_dim]``: the training shape, a positive and
        sampled negatives per query. Differentiable.

        Equal to ``distance_to_region(region[:, None], points, alpha)`` up to rounding;
        large calls run that same method compiled into fused forward and backward loops
        (:func:`boxlib.scoring.candidate_distances`), so a plugin gets the speed-up
        without writing a kernel. Override only to supply a hand-written one.
        """
        return scoring.candidate_distances(self, region, points, alpha)

    def contains(self, region: Region, x: Tensor, tol: float | None = None) -> Tensor:
        """Exact membership: ``|tangent_coords| <= offset + tol`` on every axis."""
        tol = numerics.tolerance(x.dtype) if tol is None else tol
        t = self.tangent_coords(region, x).abs()
        inside = (t <= region.offset + tol).all(dim=-1)
        if region.gap is not None:
            inside = inside & ~region.is_empty
        return inside

    def intersect(self, regions: Sequence[Region]) -> Region:
        """The exact intersection of broadcastable regions (capability ``exact_intersection``)."""
        self.require("exact_intersection", "intersect()")
        raise NotImplementedError  # pragma: no cover - a geometry with the capability overrides this

    def log_volume(self, region: Region) -> Tensor:
        """Log of the region's volume (capability ``volume``)."""
        self.require("volume", "log_volume()")
        raise NotImplementedError  # pragma: no cover

    def sample_isometry(self, generator: torch.Generator, dtype: torch.dtype) -> Callable[[Tensor], Tensor]:
        """A random distance-preserving map of the manifold (capability ``isometries``)."""
        self.require("isometries", "sample_isometry()")
        raise NotImplementedError  # pragma: no cover

    def reference_distance(self, x: Tensor, y: Tensor) -> Tensor | None:
        """The distance from an independent reference (geoopt), or None if there is none.

        The conformance kit checks :meth:`distance` against it in float64.
        """
        return None


class CurvedGeometry(Geometry):
    """A geometry whose maths are pure functions of tensors and a curvature ``c``.

    Subclasses set :attr:`maths` to a module with ``project``, ``expmap0``, ``logmap0``,
    ``logmap``, ``transport0back``, ``tangent_coords``, ``point_at`` and ``distance``,
    each taking ``c=`` as a keyword, and implement :meth:`_c` to give the curvature in
    the dtype the module computes in. This class only forwards, so the class cannot
    drift from the functions the tests exercise (geoopt's ``math.py`` pattern).
    """

    maths: ClassVar[types.ModuleType]

    def _c(self, like: Tensor) -> Tensor:
        raise NotImplementedError

    def _center(self, region: Region | Tensor) -> Tensor:
        return region.center if isinstance(region, Region) else region

    def project(self, x: Tensor) -> Tensor:
        return self.maths.project(x, c=self._c(x))

    def expmap0(self, v: Tensor) -> Tensor:
        return self.maths.expmap0(v, c=self._c(v))

    def logmap0(self, x: Tensor) -> Tensor:
        return self.maths.logmap0(x, c=self._c(x))

    def logmap(self, x: Tensor, y: Tensor) -> Tensor:
        return self.maths.logmap(x, y, c=self._c(x))

    def transport0back(self, x: Tensor, u: Tensor) -> Tensor:
        return self.maths.transport0back(x, u, c=self._c(x))

    def tangent_coords(self, region: Region | Tensor, x: Tensor) -> Tensor:
        return self.maths.tangent_coords(self._center(region), x, c=self._c(x))

    def point_at(self, region: Region | Tensor, t: Tensor) -> Tensor:
        return self.maths.point_at(self._center(region), t, c=self._c(t))

    def distance(self, x: Tensor, y: Tensor) -> Tensor:
        return self.maths.distance(x, y, c=self._c(x))


def _box_parts(t_abs: Tensor, offset: Tensor, gap: Tensor | None) -> tuple[Tensor, Tensor]:
    """Outside/inside L1 parts from absolute canonical coordinates."""
    over = torch.relu(t_abs - offset)
    if gap is not None:
        # An empty axis: the lower corner lies 2*gap above the upper one. The least total
        # violation of both constraints is max(|t| + gap, 2 * gap), never 0.
        over = torch.maximum(over + gap, 2 * gap)
    inside = torch.minimum(t_abs, offset)
    return over.sum(dim=-1), inside.sum(dim=-1)
