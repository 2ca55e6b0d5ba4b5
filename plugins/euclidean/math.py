"""Euclidean box maths as pure functions (Query2Box boxes).

Canonical tangent coordinates are plain differences, so a region is an axis-aligned box
with corners ``center ± offset``. An exact intersection that comes out empty keeps
``offset = 0`` and records ``gap`` > 0 on the axes where the corners crossed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from boxlib import numerics, scoring

__all__ = [
    "box_distance_blocks",
    "corners",
    "distance",
    "from_corners",
    "intersect",
    "log_volume",
    "tangent_coords",
]


def tangent_coords(center: Tensor, x: Tensor) -> Tensor:
    """``x - center``."""
    return x - center


def distance(x: Tensor, y: Tensor) -> Tensor:
    """Euclidean distance with a finite gradient at ``x == y``."""
    return numerics.safe_norm(x - y)


def corners(center: Tensor, offset: Tensor, gap: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Lower and upper corners; for an empty region the lower corner lies above the upper."""
    half = offset if gap is None else offset - gap
    return center - half, center + half


def from_corners(lower: Tensor, upper: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(center, offset, gap)`` of the box ``[lower, upper]``; ``gap > 0`` where ``lower > upper``."""
    center = (lower + upper) / 2
    half = (upper - lower) / 2
    # Halving a subnormal difference can round to 0, which would lose the emptiness of
    # two boxes that miss by one ulp: an empty box keeps at least the smallest gap.
    tiny = torch.finfo(half.dtype).smallest_normal
    gap = torch.where(lower > upper, torch.clamp_min(-half, tiny), torch.zeros_like(half))
    return center, torch.relu(half), gap


def intersect(parts: Sequence[tuple[Tensor, Tensor, Tensor | None]]) -> tuple[Tensor, Tensor, Tensor]:
    """Exact intersection of broadcastable boxes given as ``(center, offset, gap)``.

    The lower corner is the maximum of the lower corners, the upper the minimum of the
    upper corners. Associative and commutative up to floating-point rounding.
    """
    lowers, uppers = zip(*(corners(*p) for p in parts))
    lower = torch.stack(torch.broadcast_tensors(*lowers)).amax(dim=0)
    upper = torch.stack(torch.broadcast_tensors(*uppers)).amin(dim=0)
    return from_corners(lower, upper)


def log_volume(offset: Tensor, gap: Tensor | None = None) -> Tensor:
    """``sum(log(2 * offset))``: -inf for an empty or degenerate box.

    Volumes are only given in log scale so that high dimensions do not underflow.
    """
    logs = torch.log(2 * offset).sum(dim=-1)
    if gap is not None:
        logs = torch.where((gap > 0).any(dim=-1), torch.full_like(logs, float("-inf")), logs)
    return logs


def box_distance_blocks(
    x: Tensor,
    p: Tensor,
    offset: Tensor,
    gap_minus_offset: Tensor | None,
    twice_gap: Tensor | None,
    alpha: Tensor,
) -> Tensor:
    """The fused scoring kernel: ``distance_to_region`` of every item block against every box.

    ``x`` holds item-major blocks ``[blocks, d, block]`` (:func:`boxlib.scoring.to_blocks`),
    ``p`` the centers ``[B, d]``; the offsets and the empty-box terms (None for boxes
    without ``gap``) come from :func:`boxlib.scoring.query_gap_terms`. Returns
    ``[blocks, B, block]``. Written for TorchInductor, which turns it into one vectorised
    loop over items with the axes summed in registers.
    """
    t = (x[:, None] - p[None, :, :, None]).abs()
    gaps = [None if g is None else g[None, :, :, None] for g in (gap_minus_offset, twice_gap)]
    return scoring.box_terms(t, offset[None, :, :, None], alpha, *gaps).sum(dim=2)
