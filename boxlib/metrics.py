"""Ranking metrics with explicit tie handling, and TREC run / qrels writers.

Every metric takes the full score matrix (``[B, N]``: B queries, N items, higher is
better; a ``[N]`` vector is one query), never a ranking, so it can see ties. Relevance
is a dense ``[B, N]`` grade matrix (``0`` = not relevant) or a sequence of B mappings
``item id -> grade`` (a set or list of ids means grade 1 each). Scores and grades may
be numpy arrays or torch tensors on any device; the work runs in torch on the scores'
device, in chunks of queries so temporaries stay small, and results come back as
numpy ``float64`` arrays with one value per query (``NaN`` for a query with no
relevant item, where the metric is undefined; :func:`evaluate` skips those queries,
as ``trec_eval`` does).

Ties (``ties=``) among equal scores are broken

* ``"optimistic"``: relevant (higher-grade) items first;
* ``"pessimistic"``: relevant (higher-grade) items last;
* ``"realistic"`` (default): uniformly at random; the value is the *exact expectation*
  of the metric over that random order, computed in closed form (no sampling).

Without ties the three agree and equal the standard definitions (``trec_eval``:
``ndcg_cut``, ``map``, ``recip_rank``). See ``docs/datasets.md`` for the formulas.

KG-style filtered ranking (:func:`filtered_ranks`, :func:`filtered_mrr`,
:func:`filtered_hits_at_k`) ranks each answer only against the non-answers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Literal

import numpy as np
import torch

__all__ = [
    "Ties",
    "average_precision",
    "evaluate",
    "filtered_hits_at_k",
    "filtered_mrr",
    "filtered_ranks",
    "hits_at_k",
    "ndcg",
    "reciprocal_rank",
    "trec_qrels",
    "trec_run",
]

Ties = Literal["optimistic", "pessimistic", "realistic"]
Gains = Literal["linear", "exponential"]
ArrayLike = np.ndarray | torch.Tensor
Relevance = ArrayLike | Sequence[Mapping[int, float] | Collection[int]]

_TIES = ("optimistic", "pessimistic", "realistic")
#: Elements per chunk of queries (a chunk holds a few float64 temporaries of this size).
_CHUNK_ELEMENTS = 1 << 22


# --- public metrics ----------------------------------------------------------------------


def ndcg(
    scores: ArrayLike,
    relevance: Relevance,
    k: int | None = None,
    *,
    ties: Ties = "realistic",
    gains: Gains = "linear",
) -> np.ndarray:
    """NDCG@k per query: ``DCG@k / IDCG@k`` with ``DCG@k = sum_{rank <= k} gain / log2(rank + 1)``.

    :param k: cutoff; ``None`` ranks all items.
    :param gains: ``"linear"`` (gain = grade, as ``trec_eval`` and ranx's ``ndcg``) or
        ``"exponential"`` (``2**grade - 1``, Burges et al.; ranx's ``ndcg_burges``).
    :param ties: see the module docstring. ``"realistic"`` is exact: an item of a tied
        group occupying ranks ``s+1 .. s+g`` is equally likely at each, so the expected
        gain at each of those ranks is the group's mean gain.

    IDCG@k is the DCG@k of all relevant items sorted by grade.
    """
    kernel = _ndcg_kernel(_cutoff(k), gains)
    return _finish([kernel(chunk) for chunk in _chunks(scores, relevance, ties)])


def average_precision(scores: ArrayLike, relevance: Relevance, *, ties: Ties = "realistic") -> np.ndarray:
    """Average precision per query over *all* its relevant items (grade > 0), as
    ``trec_eval``'s ``map``: ``(1/R) * sum over relevant items of precision at its rank``.

    ``"realistic"`` is the exact expectation over random orders of tied items: in a
    tied group at ranks ``s+1 .. s+g`` holding ``r`` relevant items, with ``c``
    relevant items ranked above it, rank ``q`` holds a relevant item with probability
    ``r/g`` and then has ``c + 1 + (q-s-1)(r-1)/(g-1)`` relevant items at or above it
    in expectation, so its expected contribution is
    ``(r/g) * (c + 1 + (q-s-1)(r-1)/(g-1)) / q`` (AP is a sum of such products, so the
    sum of their expectations is its expectation).
    """
    return _finish([_ap_kernel(chunk) for chunk in _chunks(scores, relevance, ties)])


def reciprocal_rank(scores: ArrayLike, relevance: Relevance, *, ties: Ties = "realistic") -> np.ndarray:
    """Reciprocal rank of the first relevant item per query (mean it for MRR).

    ``"realistic"`` is the exact ``E[1/rank]``: if the first tied group holding relevant
    items starts after rank ``s``, has ``g`` items and ``r`` of them relevant, the first
    relevant one is at group position ``p`` with probability ``C(g-p, r-1) / C(g, r)``.
    (pykeen's "realistic" MRR is ``1 / E[rank]`` instead, which is smaller under ties;
    :func:`filtered_ranks` gives ``E[rank]`` for that.)
    """
    return _finish([_rr_kernel(chunk) for chunk in _chunks(scores, relevance, ties)])


def hits_at_k(scores: ArrayLike, relevance: Relevance, k: int, *, ties: Ties = "realistic") -> np.ndarray:
    """1 if any relevant item is in the top ``k`` (success@k), per query.

    ``"realistic"``: the probability of that. With the first tied group holding relevant
    items at ranks ``s+1 .. s+g`` (``r`` relevant) and ``m = k - s`` of its ranks
    within the top ``k``, it is ``1 - C(g-r, m) / C(g, m)``.
    """
    kernel = _hits_kernel(_cutoff(k, required=True))
    return _finish([kernel(chunk) for chunk in _chunks(scores, relevance, ties)])


def _ndcg_kernel(k: int | None, gains: str) -> Callable[[_Chunk], torch.Tensor]:
    if gains not in ("linear", "exponential"):
        raise ValueError(f"gains must be 'linear' or 'exponential', got {gains!r}")

    def kernel(chunk: _Chunk) -> torch.Tensor:
        gain = chunk.grades if gains == "linear" else torch.exp2(chunk.grades) - 1
        n = gain.shape[1]
        kk = n if k is None else min(k, n)
        discount = 1.0 / torch.log2(torch.arange(2, kk + 2, dtype=torch.float64, device=gain.device))
        ordered = chunk.in_order(gain)
        if chunk.ties == "realistic":
            ordered = chunk.group_mean(ordered)  # the expected gain at each rank
        dcg = (ordered[:, :kk] * discount).sum(dim=1)
        ideal = torch.topk(gain, kk, dim=1).values if kk < n else torch.sort(gain, dim=1, descending=True).values
        idcg = (ideal * discount).sum(dim=1)
        return _undefined_where(dcg / idcg.clamp_min(1e-300), chunk.n_relevant)

    return kernel


def _ap_kernel(chunk: _Chunk) -> torch.Tensor:
    ordered = chunk.in_order((chunk.grades > 0).to(torch.float64))
    rank = torch.arange(1, ordered.shape[1] + 1, dtype=torch.float64, device=ordered.device)
    if chunk.ties == "realistic":
        start, size, _ = chunk.groups()
        group_rel = chunk.group_sum(ordered)  # r at every rank of the group
        rows, cols = torch.nonzero(group_rel > 0, as_tuple=True)  # only groups with relevant items add
        r, g, s = group_rel[rows, cols], size[rows, cols], start[rows, cols]
        c = (torch.cumsum(ordered, dim=1) - ordered)[rows, s]  # relevant items above the group
        q = rank[cols]
        share = torch.where(g > 1, (r - 1) / (g - 1).clamp_min(1), torch.zeros_like(g))
        contribution = (r / g) * (c + 1 + (q - 1 - s) * share) / q
        total = torch.zeros(ordered.shape[0], dtype=torch.float64, device=ordered.device).index_add_(
            0, rows, contribution
        )
    else:
        total = (ordered * torch.cumsum(ordered, dim=1) / rank).sum(dim=1)
    return _undefined_where(total / chunk.n_relevant.clamp_min(1), chunk.n_relevant)


def _rr_kernel(chunk: _Chunk) -> torch.Tensor:
    rel = chunk.in_order((chunk.grades > 0).to(torch.float64))
    if chunk.ties == "realistic":
        s, g, r = chunk.first_relevant_group(rel)
        width = int((g - r + 1).max()) if rel.shape[0] else 1  # the first relevant lies this deep at most
        p = torch.arange(1, width + 1, dtype=torch.float64, device=rel.device)[None, :]  # 1-based in the group
        valid = p <= (g - r + 1)[:, None]
        log_prob = _log_comb(g[:, None] - p, r[:, None] - 1) - _log_comb(g, r)[:, None]
        value = torch.where(valid, torch.exp(log_prob) / (s[:, None] + p), torch.zeros_like(log_prob)).sum(dim=1)
    else:
        value = 1.0 / (torch.argmax(rel, dim=1).to(torch.float64) + 1)
    return _undefined_where(value, chunk.n_relevant)


def _hits_kernel(k: int) -> Callable[[_Chunk], torch.Tensor]:
    def kernel(chunk: _Chunk) -> torch.Tensor:
        rel = chunk.in_order((chunk.grades > 0).to(torch.float64))
        if chunk.ties == "realistic":
            s, g, r = chunk.first_relevant_group(rel)
            m = (k - s).clamp(0, None).minimum(g)
            miss = torch.where(m <= g - r, torch.exp(_log_comb(g - r, m) - _log_comb(g, m)), torch.zeros_like(m))
            value = 1.0 - miss
        else:
            value = (rel[:, : min(k, rel.shape[1])].sum(dim=1) > 0).to(torch.float64)
        return _undefined_where(value, chunk.n_relevant)

    return kernel


def filtered_ranks(scores: ArrayLike, answers: Relevance, *, ties: Ties = "realistic") -> list[np.ndarray]:
    """The filtered rank of every answer: 1 + the number of *non-answers* scored above it.

    Other answers never push an answer down (the "filtered" setting of knowledge-graph
    query answering). Per query, an array over its answers in increasing item id:

    * optimistic: ``1 + #{non-answers with a higher score}``;
    * pessimistic: ``1 + #{non-answers with a higher or equal score}``;
    * realistic: their mean, the expected rank under random tie-breaking (pykeen's
      realistic rank).

    A constant scorer over ``n`` candidates (one answer, ``n - 1`` non-answers) gives
    ``1``, ``n`` and ``(n + 1) / 2``.
    """
    _check_ties(ties)
    out: list[np.ndarray] = []
    for optimistic, pessimistic in _filtered(scores, answers):
        if ties == "optimistic":
            out.extend(optimistic)
        elif ties == "pessimistic":
            out.extend(pessimistic)
        else:
            out.extend((lo + hi) / 2 for lo, hi in zip(optimistic, pessimistic))
    return out


def filtered_mrr(scores: ArrayLike, answers: Relevance, *, ties: Ties = "realistic") -> np.ndarray:
    """Mean over each query's answers of ``1 / filtered rank``, per query.

    ``"realistic"`` is the exact ``E[1/rank]`` for a rank uniform on
    ``optimistic .. pessimistic``: ``(H(pessimistic) - H(optimistic - 1)) / (pessimistic
    - optimistic + 1)`` with harmonic numbers ``H``.
    """
    _check_ties(ties)
    per_rank = {
        "optimistic": lambda lo, hi: 1.0 / lo,
        "pessimistic": lambda lo, hi: 1.0 / hi,
        "realistic": _mean_reciprocal,
    }
    return _per_answer_mean(scores, answers, per_rank[ties])


def filtered_hits_at_k(scores: ArrayLike, answers: Relevance, k: int, *, ties: Ties = "realistic") -> np.ndarray:
    """Fraction of each query's answers whose filtered rank is at most ``k``.

    ``"realistic"``: the expected fraction, ``P(rank <= k)`` for a rank uniform on
    ``optimistic .. pessimistic``.
    """
    _check_ties(ties)
    k = _cutoff(k, required=True)
    per_rank = {
        "optimistic": lambda lo, hi: (lo <= k).astype(np.float64),
        "pessimistic": lambda lo, hi: (hi <= k).astype(np.float64),
        "realistic": lambda lo, hi: np.clip((k - lo + 1) / (hi - lo + 1), 0.0, 1.0),
    }
    return _per_answer_mean(scores, answers, per_rank[ties])


def _per_answer_mean(
    scores: ArrayLike, answers: Relevance, value: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Per query, the mean of ``value(optimistic, pessimistic)`` over its answers'
    filtered ranks (NaN for a query without answers)."""
    out = []
    for optimistic, pessimistic in _filtered(scores, answers):
        for lo, hi in zip(optimistic, pessimistic):
            out.append(float(value(lo, hi).mean()) if lo.size else math.nan)
    return np.asarray(out, dtype=np.float64)


def evaluate(
    scores: ArrayLike,
    relevance: Relevance,
    metrics: Sequence[str] = ("ndcg@10", "map", "mrr", "hits@10"),
    *,
    ties: Ties = "realistic",
) -> dict[str, float]:
    """Means over the queries that have a relevant item, by metric name, in one pass
    over the scores (each chunk of queries is sorted once for all metrics).

    Names: ``ndcg``, ``ndcg@K``, ``ndcg_exp``/``ndcg_exp@K`` (exponential gains),
    ``map``, ``mrr``, ``hits@K``, ``filtered_mrr``, ``filtered_hits@K``.
    """
    _check_ties(ties)
    matrix = _scores(scores)
    grades = _relevance(relevance, matrix.shape[0], matrix.shape[1], matrix.device)
    kernels: dict[str, Callable[[_Chunk], torch.Tensor]] = {}
    filtered: dict[str, np.ndarray] = {}
    for name in metrics:
        base, _, cutoff = name.partition("@")
        try:
            k = _cutoff(int(cutoff), required=True) if cutoff else None
        except ValueError:
            k, base = None, "?"
        if base in ("ndcg", "ndcg_exp"):
            kernels[name] = _ndcg_kernel(k, "linear" if base == "ndcg" else "exponential")
        elif base == "map" and k is None:
            kernels[name] = _ap_kernel
        elif base == "mrr" and k is None:
            kernels[name] = _rr_kernel
        elif base == "hits" and k is not None:
            kernels[name] = _hits_kernel(k)
        elif base == "filtered_mrr" and k is None:
            filtered[name] = filtered_mrr(matrix, grades, ties=ties)
        elif base == "filtered_hits" and k is not None:
            filtered[name] = filtered_hits_at_k(matrix, grades, k, ties=ties)
        else:
            raise ValueError(
                f"unknown metric {name!r}; use ndcg, ndcg@K, ndcg_exp@K, map, mrr, hits@K, filtered_mrr, "
                "filtered_hits@K"
            )
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in kernels}
    for chunk in _chunks(matrix, grades, ties):
        for name, kernel in kernels.items():
            parts[name].append(kernel(chunk))
    values = {**{name: _finish(p) for name, p in parts.items()}, **filtered}
    results: dict[str, float] = {}
    for name in metrics:
        defined = values[name][~np.isnan(values[name])]
        results[name] = float(defined.mean()) if defined.size else math.nan
    return results


# --- TREC files --------------------------------------------------------------------------


def trec_run(
    path: str | os.PathLike[str],
    scores: ArrayLike,
    query_ids: Sequence[str | int],
    item_ids: Sequence[str | int],
    k: int = 1000,
    *,
    tag: str = "boxlib",
) -> None:
    """Write the top ``k`` items of every query as a TREC run: ``qid Q0 docid rank score tag``.

    Ranks follow descending score, ties by increasing item position. Scores are written
    with full precision (``repr`` of the float64 value) so distinct scores stay
    distinct. Note that ``trec_eval`` ignores the rank column and breaks score ties by
    docid, so use this module's ``ties=`` metrics for tie-aware numbers.
    """
    matrix = _scores(scores)
    if len(query_ids) != matrix.shape[0] or len(item_ids) != matrix.shape[1]:
        raise ValueError(
            f"scores have shape {tuple(matrix.shape)} but there are {len(query_ids)} query ids and "
            f"{len(item_ids)} item ids"
        )
    k = min(_cutoff(k, required=True), matrix.shape[1])
    _check_ids(query_ids, "query id")
    _check_ids(item_ids, "item id")
    _check_ids([tag], "tag")
    items = [str(i) for i in item_ids]
    with open(path, "w", encoding="utf-8") as out:
        for start in range(0, matrix.shape[0], _rows_per_chunk(matrix.shape[1])):
            block = matrix[start : start + _rows_per_chunk(matrix.shape[1])]
            values, order = torch.sort(block, dim=1, descending=True, stable=True)
            values, order = values[:, :k].double().cpu().tolist(), order[:, :k].cpu().tolist()
            for row, (top_values, top_items) in enumerate(zip(values, order)):
                qid = query_ids[start + row]
                out.writelines(
                    f"{qid} Q0 {items[i]} {rank} {value!r} {tag}\n"
                    for rank, (i, value) in enumerate(zip(top_items, top_values), 1)
                )


def trec_qrels(
    path: str | os.PathLike[str],
    relevance: Relevance,
    query_ids: Sequence[str | int],
    item_ids: Sequence[str | int],
) -> None:
    """Write relevance judgements as TREC qrels: ``qid 0 docid grade``, one line per
    relevant item (grade > 0; unlisted items count as not relevant in ``trec_eval``).
    Grades must be whole numbers."""
    _check_ids(query_ids, "query id")
    _check_ids(item_ids, "item id")
    grades = _relevance(relevance, len(query_ids), len(item_ids), torch.device("cpu")).numpy()
    if not np.array_equal(grades, np.round(grades)):
        raise ValueError("TREC qrels need whole-number grades")
    with open(path, "w", encoding="utf-8") as out:
        for row, qid in enumerate(query_ids):
            for item in np.flatnonzero(grades[row] > 0):
                out.write(f"{qid} 0 {item_ids[item]} {int(grades[row, item])}\n")


# --- machinery ---------------------------------------------------------------------------


class _Chunk:
    """A block of queries: scores, grades, and the score order under the tie rule."""

    def __init__(self, scores: torch.Tensor, grades: torch.Tensor, ties: Ties):
        self.scores = scores
        self.grades = grades
        self.ties = ties
        self.n_relevant = (grades > 0).sum(dim=1).to(torch.float64)
        # Stable sorts: by grade first (descending: relevant first = optimistic), then by
        # score, so equal scores keep the grade order. "realistic" needs only the groups.
        if ties == "realistic":
            self.order = torch.sort(scores, dim=1, descending=True, stable=True).indices
        else:
            by_grade = torch.sort(grades, dim=1, descending=(ties == "optimistic"), stable=True).indices
            by_score = torch.sort(scores.gather(1, by_grade), dim=1, descending=True, stable=True).indices
            self.order = by_grade.gather(1, by_score)
        self._groups: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def in_order(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (``[b, N]``, by item) rearranged by rank."""
        return values.gather(1, self.order)

    def groups(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per rank position: the 0-based start of its tie group (long), the group size
        (float64), and the group index (long)."""
        if self._groups is None:
            ordered = self.in_order(self.scores)
            b, n = ordered.shape
            new = torch.ones_like(ordered, dtype=torch.bool)
            new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
            index = torch.cumsum(new.to(torch.long), dim=1) - 1
            positions = torch.arange(n, device=ordered.device).expand(b, n)
            start = torch.cummax(torch.where(new, positions, torch.zeros_like(positions)), dim=1).values
            size = torch.zeros((b, n), dtype=torch.float64, device=ordered.device)
            size.scatter_add_(1, index, torch.ones_like(size))
            self._groups = (start, size.gather(1, index), index)
        return self._groups

    def group_sum(self, ordered: torch.Tensor) -> torch.Tensor:
        """Per rank position, the sum of ``ordered`` over its tie group."""
        _, _, index = self.groups()
        total = torch.zeros_like(ordered).scatter_add_(1, index, ordered)
        return total.gather(1, index)

    def group_mean(self, ordered: torch.Tensor) -> torch.Tensor:
        _, size, _ = self.groups()
        return self.group_sum(ordered) / size

    def first_relevant_group(self, rel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(s, g, r)`` per query, float64: ranks before the first tie group holding a
        relevant item, its size, and its number of relevant items."""
        start, size, _ = self.groups()
        first = torch.argmax(rel, dim=1, keepdim=True)
        r = self.group_sum(rel).gather(1, first)[:, 0]
        return start.gather(1, first)[:, 0].to(torch.float64), size.gather(1, first)[:, 0], r


def _chunks(scores: ArrayLike, relevance: Relevance, ties: Ties) -> Iterator[_Chunk]:
    _check_ties(ties)
    matrix = _scores(scores)
    grades = _relevance(relevance, matrix.shape[0], matrix.shape[1], matrix.device)
    step = _rows_per_chunk(matrix.shape[1])
    for start in range(0, matrix.shape[0], step):
        yield _Chunk(matrix[start : start + step], grades[start : start + step], ties)


def _filtered(scores: ArrayLike, answers: Relevance) -> Iterator[tuple[list[np.ndarray], list[np.ndarray]]]:
    """Per chunk: optimistic and pessimistic filtered ranks, a list with one array per query."""
    matrix = _scores(scores)
    grades = _relevance(answers, matrix.shape[0], matrix.shape[1], matrix.device)
    step = _rows_per_chunk(matrix.shape[1])
    for start in range(0, matrix.shape[0], step):
        block, is_answer = matrix[start : start + step], grades[start : start + step] > 0
        b, n = block.shape
        ascending = torch.sort(block, dim=1).values
        counts = is_answer.sum(dim=1)
        width = max(int(counts.max()) if b else 0, 1)
        # Each query's answer scores, padded at the end with +inf to a common width.
        order = torch.sort((~is_answer).to(torch.int8), dim=1, stable=True).indices[:, :width]
        answer_scores = block.gather(1, order)
        pad = torch.arange(width, device=block.device)[None, :] >= counts[:, None]
        answer_scores = answer_scores.masked_fill(pad, math.inf)
        answer_sorted = torch.sort(answer_scores, dim=1).values
        n_pad = (width - counts)[:, None]
        # Everything scored above (or at least as high as) each answer, minus the answers.
        above_all = n - torch.searchsorted(ascending, answer_scores.contiguous(), right=True)
        at_least_all = n - torch.searchsorted(ascending, answer_scores.contiguous(), right=False)
        above_answers = (
            width - torch.searchsorted(answer_sorted, answer_scores.contiguous(), right=True) - n_pad
        ).clamp_min(0)
        at_least_answers = width - torch.searchsorted(answer_sorted, answer_scores.contiguous(), right=False) - n_pad
        optimistic = (1 + above_all - above_answers).cpu().numpy().astype(np.float64)
        pessimistic = (1 + at_least_all - at_least_answers).cpu().numpy().astype(np.float64)
        ids = order.cpu().numpy()
        lo, hi = [], []
        for row, count in enumerate(counts.cpu().tolist()):
            by_id = np.argsort(ids[row, :count], kind="stable")
            lo.append(optimistic[row, :count][by_id])
            hi.append(pessimistic[row, :count][by_id])
        yield lo, hi


def _mean_reciprocal(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``E[1/R]`` for ``R`` uniform on the integers ``lo .. hi``."""
    width = hi - lo + 1
    spread = (torch.digamma(torch.from_numpy(hi + 1)) - torch.digamma(torch.from_numpy(lo))).numpy()
    return np.where(width > 1, spread / width, 1.0 / lo)


def _log_comb(n: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``log C(n, k)`` for float tensors with ``0 <= k <= n`` (garbage elsewhere; mask it)."""
    n = n.to(torch.float64)
    k = k.to(torch.float64)
    safe_k = k.clamp(0, None)
    safe_n = torch.maximum(n, safe_k)
    return torch.lgamma(safe_n + 1) - torch.lgamma(safe_k + 1) - torch.lgamma(safe_n - safe_k + 1)


def _scores(scores: ArrayLike) -> torch.Tensor:
    matrix = torch.as_tensor(scores)
    if matrix.dim() == 1:
        matrix = matrix[None, :]
    if matrix.dim() != 2:
        raise ValueError(f"scores must be [queries, items] or [items], got shape {tuple(matrix.shape)}")
    if matrix.dtype == torch.bool or matrix.is_complex():
        raise TypeError(f"scores must be real numbers, got {matrix.dtype}")
    if not matrix.is_floating_point():
        matrix = matrix.to(torch.float64)  # exact for ints up to 2**53
    elif matrix.dtype in (torch.float16, torch.bfloat16):
        matrix = matrix.to(torch.float32)  # exact; sorting kernels want float32+
    if torch.isnan(matrix).any():
        row, col = (int(v) for v in torch.nonzero(torch.isnan(matrix))[0])
        raise ValueError(f"scores contain NaN (first at query {row}, item {col})")
    return matrix


def _relevance(relevance: Relevance, n_queries: int, n_items: int, device: torch.device) -> torch.Tensor:
    """Relevance as a dense ``[B, N]`` float64 grade tensor on ``device``."""
    if isinstance(relevance, (np.ndarray, torch.Tensor)):
        grades = torch.as_tensor(relevance, device=device).to(torch.float64)
        if grades.dim() == 1:
            grades = grades[None, :]
        if tuple(grades.shape) != (n_queries, n_items):
            raise ValueError(f"relevance has shape {tuple(grades.shape)}, scores have ({n_queries}, {n_items})")
    else:
        if len(relevance) != n_queries:
            raise ValueError(f"{len(relevance)} relevance entries for {n_queries} queries")
        rows: list[int] = []
        cols: list[int] = []
        values: list[float] = []
        for row, entry in enumerate(relevance):
            if isinstance(entry, Mapping):
                rows.extend([row] * len(entry))
                cols.extend(int(i) for i in entry.keys())
                values.extend(float(v) for v in entry.values())
            else:
                ids = [int(i) for i in entry]
                rows.extend([row] * len(ids))
                cols.extend(ids)
                values.extend([1.0] * len(ids))
        cols_array = np.asarray(cols, dtype=np.int64)
        if cols_array.size and (cols_array.min() < 0 or cols_array.max() >= n_items):
            bad = cols_array[(cols_array < 0) | (cols_array >= n_items)][0]
            raise ValueError(f"relevance names item {bad}, outside 0..{n_items - 1}")
        grades = torch.zeros((n_queries, n_items), dtype=torch.float64)
        grades[torch.as_tensor(rows, dtype=torch.long), torch.from_numpy(cols_array)] = torch.as_tensor(
            values, dtype=torch.float64
        )
        grades = grades.to(device)
    if torch.isnan(grades).any() or (grades < 0).any():
        raise ValueError("relevance grades must be non-negative numbers")
    return grades


def _rows_per_chunk(n_items: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(n_items, 1))


def _cutoff(k: int | None, *, required: bool = False) -> int | None:
    if k is None and not required:
        return None
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return int(k)


def _check_ties(ties: str) -> None:
    if ties not in _TIES:
        raise ValueError(f"ties must be one of {', '.join(map(repr, _TIES))}, got {ties!r}")


def _check_ids(ids: Sequence[str | int], what: str) -> None:
    for value in ids:
        text = str(value)
        if not text or any(c.isspace() for c in text):
            raise ValueError(f"{what} {text!r} is empty or contains whitespace, which TREC files cannot hold")


def _undefined_where(values: torch.Tensor, n_relevant: torch.Tensor) -> torch.Tensor:
    return torch.where(n_relevant > 0, values, torch.full_like(values, math.nan))


def _finish(parts: list[torch.Tensor]) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=np.float64)
    return torch.cat(parts).to(torch.float64).cpu().numpy()
