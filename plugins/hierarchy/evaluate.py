"""Reconstruction of a hierarchy from scores: mean rank and MAP (Nickel & Kiela 2017).

The protocol of ``eval_reconstruction`` in facebookresearch/poincare-embeddings
(``hype/graph.py``), with ties handled explicitly:

* every node ``u`` with at least one ancestor is a *source*; it scores every other node
  ``v`` with ``s(u, v)`` (higher: more likely that ``u`` is-a ``v``); ``u`` itself is not
  a candidate;
* **rank** of an observed pair ``(u, v)``: ``1 +`` the number of *non-ancestors* of ``u``
  scored above ``v`` (other ancestors never push ``v`` down; the code computes exactly this
  as "positions minus ``N(N-1)/2``"); **mean rank** is the mean over all pairs;
* **AP** of ``u``: average precision of its ancestors in the ranking of all candidates;
  **MAP** is the mean over sources (not over pairs).

Ties count half: the rank and the AP are their expectations under a uniformly random order
of tied candidates (the ``"realistic"`` rule of :mod:`boxlib.metrics`, whose
``filtered_ranks`` and ``average_precision`` the tests check this module against); without
ties they are the reference code's values exactly.

Speed: a source's few ancestors are sorted, and every candidate's score is located among
them with a binary search (``searchsorted``) and counted into the gaps between them
(``scatter_add``), so a source costs ``O(n log k)`` for ``k`` ancestors instead of a full
sort of ``n`` scores. The work is chunked over sources, so memory stays at a few
``[chunk, n_nodes]`` matrices for any hierarchy size.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import torch
from torch import Tensor

from .data import HierarchyDataset

__all__ = ["Reconstruction", "reconstruction", "sample_sources"]

#: Numbers per ``[chunk, n_nodes]`` score matrix handed to the metrics.
CHUNK_ELEMENTS = 1 << 22


@dataclasses.dataclass(frozen=True)
class Reconstruction:
    """Result of :func:`reconstruction`."""

    mean_rank: float
    map: float
    pairs: int  # observed pairs ranked
    sources: int  # source nodes evaluated
    seconds: float

    def metrics(self) -> dict[str, float]:
        """``{"mean_rank": ..., "map": ...}``, what a model's ``evaluate`` reports."""
        return {"mean_rank": self.mean_rank, "map": self.map}


def sample_sources(dataset: HierarchyDataset, count: int | None, seed: int = 0) -> Tensor:
    """``count`` source nodes drawn without replacement (all of them when ``count`` is None
    or not smaller), increasing; the draw uses its own generator, not the global one."""
    sources = dataset.sources
    if count is None or count >= len(sources):
        return sources
    if count < 1:
        raise ValueError(f"the number of sources to evaluate must be at least 1, got {count}")
    pick = torch.randperm(len(sources), generator=torch.Generator().manual_seed(seed))[:count]
    return sources[torch.sort(pick).values]


def reconstruction(
    score_rows: Callable[[Tensor], Tensor],
    dataset: HierarchyDataset,
    *,
    sources: Tensor | None = None,
    rows_per_chunk: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Reconstruction:
    """Mean rank and MAP of reconstructing ``dataset``'s closure from ``score_rows``.

    :param score_rows: ``u [b] -> scores [b, n_nodes]`` of every node as an ancestor of
        each ``u`` (any device; read without gradients).
    :param sources: the source node ids to evaluate (default: every node with an ancestor;
        see :func:`sample_sources`). Sources without ancestors are skipped.
    :param rows_per_chunk: sources scored at once (default: about ``2**22 / n_nodes``).
    :param progress: called as ``progress(done, total)`` after each chunk.
    """
    start = time.perf_counter()
    n = dataset.n_nodes
    sources = dataset.sources if sources is None else torch.as_tensor(sources, dtype=torch.int64).reshape(-1)
    indptr = dataset.indptr
    if sources.numel():
        if int(sources.min()) < 0 or int(sources.max()) >= n:
            raise ValueError(f"sources name node ids outside 0..{n - 1} of {dataset.name}")
        sources = sources[indptr[sources + 1] > indptr[sources]]
    step = rows_per_chunk or max(1, CHUNK_ELEMENTS // max(n, 1))
    rank_sum = ap_sum = 0.0
    pairs = 0
    total = len(sources)
    for begin in range(0, total, step):
        u = sources[begin : begin + step]
        with torch.no_grad():
            scores = score_rows(u)
        if tuple(scores.shape) != (len(u), n):
            raise ValueError(f"score_rows returned shape {tuple(scores.shape)}, expected ({len(u)}, {n})")
        scores = scores.detach().to("cpu")
        if not scores.is_floating_point():
            scores = scores.to(torch.float64)
        if bool(torch.isnan(scores).any()):
            raise ValueError(f"score_rows returned NaN scores for sources {u[torch.isnan(scores).any(1)][:5].tolist()}")
        ranks, ap = _chunk_metrics(scores, u, dataset)
        rank_sum += float(ranks.sum())
        pairs += ranks.numel()
        ap_sum += float(ap.sum())
        if progress is not None:
            progress(min(begin + step, total), total)
    if not total:
        return Reconstruction(math.nan, math.nan, 0, 0, time.perf_counter() - start)
    return Reconstruction(rank_sum / pairs, ap_sum / total, pairs, total, time.perf_counter() - start)


def _chunk_metrics(scores: Tensor, u: Tensor, dataset: HierarchyDataset) -> tuple[Tensor, Tensor]:
    """Realistic ranks of every ``(u, ancestor)`` pair (flat) and AP of every ``u`` (``[b]``)."""
    b, n = scores.shape
    indptr = dataset.indptr
    counts = indptr[u + 1] - indptr[u]  # k_u >= 1 ancestors per source
    width = int(counts.max())
    slot = torch.arange(width)
    valid = slot[None, :] < counts[:, None]  # [b, w]
    at = (indptr[u][:, None] + slot[None, :]).clamp_max(dataset.n_edges - 1)
    ancestor = torch.where(valid, dataset.edges[at, 1], u[:, None])  # padding points at u itself
    positive = scores.gather(1, ancestor).masked_fill(~valid, math.inf)
    q = torch.sort(positive, dim=1).values  # ancestors' scores ascending, +inf padding last

    # Negatives: neither an ancestor nor u itself.
    is_negative = torch.ones(b, n, dtype=torch.bool)
    rows = torch.arange(b)[:, None].expand(b, width)
    is_negative[rows[valid], ancestor[valid]] = False
    is_negative[torch.arange(b), u] = False
    weight = is_negative.to(torch.float64)
    # A negative x is above the j-th smallest ancestor score q_j iff #{q < x} > j (ties: #{q <= x} > j).
    q = q.contiguous()
    below = torch.searchsorted(q, scores.contiguous(), right=False)  # #{q < x}
    below_or_at = torch.searchsorted(q, scores.contiguous(), right=True)  # #{q <= x}
    neg_gt = _count_above(below, weight, width)  # [b, w]: negatives scored > q_j
    neg_ge = _count_above(below_or_at, weight, width)  # negatives scored >= q_j

    k = counts[:, None].to(torch.float64)
    pos_le = torch.searchsorted(q, q, right=True).to(torch.float64)
    pos_lt = torch.searchsorted(q, q, right=False).to(torch.float64)
    c = k - pos_le  # ancestors scored above q_j
    r = pos_le - pos_lt  # ancestors tied with q_j (itself included)
    s = c + neg_gt  # candidates strictly above the tie group
    g = r + neg_ge - neg_gt  # size of the tie group
    harmonic = torch.digamma(s + g + 1) - torch.digamma(s + 1)  # sum of 1/q over ranks s+1 .. s+g
    share = torch.where(g > 1, (r - 1) / (g - 1).clamp_min(1), torch.zeros_like(g))
    group = (r / g) * ((c + 1) * harmonic + share * (g - (s + 1) * harmonic))  # the group's expected AP sum
    ap = torch.where(valid, group / r, torch.zeros_like(group)).sum(dim=1) / k[:, 0]
    ranks = (1 + neg_gt + (neg_ge - neg_gt) / 2)[valid]
    return ranks, ap


def _count_above(index: Tensor, weight: Tensor, width: int) -> Tensor:
    """``out[i, j] = sum of weight[i, x] over x with index[i, x] > j``, for ``j < width``."""
    bins = torch.zeros(index.shape[0], width + 1, dtype=weight.dtype).scatter_add_(1, index, weight)
    suffix = torch.flip(torch.cumsum(torch.flip(bins, [1]), 1), [1])  # suffix[j] = sum of bins >= j
    return suffix[:, 1:]
