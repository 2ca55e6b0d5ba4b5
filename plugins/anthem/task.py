"""The trainer contract (see :mod:`boxlib.train`) for retrieval models, written once.

A model mixes in :class:`RankingTask` and provides ``scores(queries, candidate_ids)``
(``[B, M]``, differentiable) and ``all_scores(queries)`` (``[B, N]`` against every
item). The mixin supplies ``training_examples``, ``collate`` (one positive and
``negatives`` sampled negatives per query, plus in-batch negatives when asked),
``training_loss`` (softmax ranking cross-entropy) and ``evaluate`` (ranking metrics on a
split, with realistic tie handling; an example's ``filtered`` items are left out of its
ranking).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from boxlib.data import QueryExample, RetrievalDataset

from .objective import in_batch_candidates, sample_candidates, softmax_ranking_loss

__all__ = ["EVAL_METRICS", "RankingTask", "exclude_filtered", "resolve_items"]


def resolve_items(model: str, items: Sequence[str] | None, dataset: RetrievalDataset | None) -> list[str]:
    """The item titles from exactly one of ``items`` and ``dataset``."""
    if (items is None) == (dataset is None):
        raise ValueError(f"{model} needs exactly one of items= (titles) and dataset= (a RetrievalDataset)")
    titles = list(dataset.items if dataset is not None else items)
    if not titles:
        raise ValueError(f"{model} needs at least one item title")
    return titles


#: What ``evaluate`` reports (names understood by :func:`boxlib.metrics.evaluate`).
EVAL_METRICS = ("ndcg@3", "ndcg@5", "ndcg@10", "map", "mrr", "hits@1", "hits@10")


class RankingTask:
    """Mixin: training and evaluation on a :class:`~boxlib.data.RetrievalDataset`."""

    dataset: RetrievalDataset | None
    negatives: int
    in_batch_negatives: bool
    eval_batch_size: int = 256

    def _setup_task(self, dataset: RetrievalDataset | None, negatives: int, in_batch_negatives: bool) -> None:
        if negatives < 1:
            raise ValueError(f"negatives must be at least 1, got {negatives}")
        self.dataset = dataset
        self.negatives = negatives
        self.in_batch_negatives = in_batch_negatives

    def _require_dataset(self) -> RetrievalDataset:
        if self.dataset is None:
            raise RuntimeError(
                f"{type(self).__name__} was built from items only; pass dataset= to train or evaluate it"
            )
        return self.dataset

    def training_examples(self) -> Sequence[QueryExample]:
        examples = self._require_dataset().splits["train"]
        if not examples:
            raise RuntimeError(f"dataset '{self.dataset.name}' has no training queries")
        return examples

    def collate(self, examples: list[QueryExample]) -> dict[str, Any]:
        candidates = sample_candidates(examples, len(self._require_dataset().items), self.negatives, None)
        valid = None
        if self.in_batch_negatives:
            candidates, valid = in_batch_candidates(examples, candidates)
        return {"queries": [e.query for e in examples], "candidates": candidates, "valid": valid}

    def training_loss(self, batch: dict[str, Any]) -> Tensor:
        return softmax_ranking_loss(self.scores(batch["queries"], batch["candidates"]), batch["valid"])

    def evaluate(
        self,
        split: str,
        metrics: Sequence[str] | None = None,
        by_kind: bool | Callable[[QueryExample], str] = False,
    ) -> dict[str, float]:
        """Mean ranking metrics over the queries of ``split`` against every item.

        :param metrics: names understood by :func:`boxlib.metrics.evaluate`; by default the
            dataset's ``metadata["eval_metrics"]`` when it names some, else :data:`EVAL_METRICS`.
        :param by_kind: also report ``"<kind>/<metric>"`` per query structure: ``True``
            groups by :attr:`QueryExample.kind` (single, and, or, nested), a function maps
            each example to its group (e.g. the BetaE structure name of a KG query).

        Items in an example's ``filtered`` set are left out of its ranking (scored below
        every other item), so filtered metrics rank each answer among the non-answers only.
        """
        from boxlib.metrics import evaluate as rank_metrics

        dataset = self._require_dataset()
        if split not in dataset.splits:
            raise KeyError(f"dataset '{dataset.name}' has no split {split!r}; it has {sorted(dataset.splits)}")
        if metrics is None:
            metrics = tuple(dataset.metadata.get("eval_metrics") or EVAL_METRICS)
        examples = dataset.splits[split]
        if not examples:
            return {}
        with torch.no_grad():
            scores = torch.cat(
                [
                    self.all_scores([e.query for e in examples[i : i + self.eval_batch_size]]).float().cpu()
                    for i in range(0, len(examples), self.eval_batch_size)
                ]
            )
        scores = exclude_filtered(scores, examples)
        relevance = [e.relevant for e in examples]
        result = rank_metrics(scores, relevance, metrics)
        if by_kind:
            group = (lambda e: e.kind) if by_kind is True else by_kind
            kinds: dict[str, list[int]] = {}
            for i, e in enumerate(examples):
                kinds.setdefault(group(e), []).append(i)
            for kind, rows in sorted(kinds.items()):
                part = rank_metrics(scores[rows], [relevance[i] for i in rows], metrics)
                result.update({f"{kind}/{name}": value for name, value in part.items()})
        return result


def exclude_filtered(scores: Tensor, examples: Sequence[QueryExample]) -> Tensor:
    """``scores`` ``[B, N]`` with each example's ``filtered`` items set to ``-inf``, below
    every other item (whose scores are first clamped to finite values, so an item scored
    ``-inf`` by the model still ranks above the filtered ones). Unchanged when no example
    has filtered items."""
    rows = [i for i, e in enumerate(examples) for _ in e.filtered]
    if not rows:
        return scores
    cols = [item for e in examples for item in e.filtered]
    out = scores.clamp_min(torch.finfo(scores.dtype).min)  # a copy; NaN stays NaN (and is reported)
    out[torch.as_tensor(rows), torch.as_tensor(cols)] = float("-inf")
    return out
