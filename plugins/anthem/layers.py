"""Layers shared by the models of this plugin."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from boxlib.geometry import Geometry, Region

__all__ = ["AttentionIntersection"]


class AttentionIntersection(nn.Module):
    """A learned intersection of ``n`` regions (Query2Box's operator, on any geometry).

    The center is an attention-weighted mean of the operands' centers in the tangent
    space at the origin (a first-order Fréchet mean); the offset is the operands'
    minimum, shrunk by a learned gate in ``(0, 1)``, so the result is never larger than
    any operand along any canonical axis.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(2 * dim, 1)
        self.gate = nn.Linear(2 * dim, dim)

    def forward(self, geometry: Geometry, regions: Sequence[Region]) -> Region:
        centers = torch.stack([geometry.logmap0(r.center) for r in regions], 1)
        offsets = torch.stack([r.offset for r in regions], 1)
        weights = torch.softmax(self.score(torch.cat([centers, offsets], -1)), dim=1)
        center = (weights * centers).sum(1)
        summary = torch.cat([centers.mean(1), offsets.mean(1)], -1)
        return Region._trusted(geometry.expmap0(center), offsets.amin(1) * torch.sigmoid(self.gate(summary)))


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over axis 1 of ``x [B, T, d]`` where ``mask [B, T]`` is True."""
    return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
