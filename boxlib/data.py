"""Retrieval datasets: items with titles, queries with graded answers, splits.

Every dataset plugin (``boxlib_add_datasets``) produces a :class:`RetrievalDataset`; the
trainer, the metrics and the benchmarks only read this type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from boxlib.query import Query, SymbolicIndex, parse

__all__ = ["QueryExample", "RetrievalDataset", "query_kind"]

#: Split names every dataset provides (a split may be empty).
SPLITS = ("train", "valid", "test")


def query_kind(query: Query) -> str:
    """Coarse query structure for per-structure reporting: ``single``, ``and``, ``or``,
    ``not``, ``path`` or ``nested``."""
    from boxlib.query import And, Not, Or, Project, Term

    if isinstance(query, Term):
        return "single"
    if isinstance(query, Project):
        return "path"
    if isinstance(query, Not):
        return "not" if isinstance(query.operand, Term) else "nested"
    if isinstance(query, (And, Or)):
        flat = all(isinstance(c, Term) for c in query.children)
        if flat:
            return "and" if isinstance(query, And) else "or"
        return "nested"
    raise TypeError(f"not a query: {query!r}")


@dataclasses.dataclass(frozen=True)
class QueryExample:
    """One query and its answers.

    :param query: the query AST.
    :param relevant: item id → relevance grade (>= 1); items not listed are irrelevant.
    :param filtered: item ids left out of the ranking at evaluation time, disjoint from
        ``relevant``: answers the query is known to have that are not being tested, such
        as a knowledge-graph query's *easy* answers (reachable on the training graph),
        so a model is neither rewarded nor punished for where it ranks them (the
        "filtered" setting of Query2Box / BetaE). Empty for ordinary retrieval queries.
    """

    query: Query
    relevant: Mapping[int, int]
    filtered: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.filtered, frozenset):
            object.__setattr__(self, "filtered", frozenset(int(i) for i in self.filtered))

    @property
    def text(self) -> str:
        return str(self.query)

    @property
    def kind(self) -> str:
        return query_kind(self.query)

    @classmethod
    def from_text(cls, text: str, relevant: Mapping[int, int] | Sequence[int]) -> QueryExample:
        grades = dict(relevant) if isinstance(relevant, Mapping) else {int(i): 1 for i in relevant}
        return cls(parse(text), grades)


@dataclasses.dataclass
class RetrievalDataset:
    """Items (points to embed) and queries (regions to embed) with exact answers.

    :param name: registry name of the dataset.
    :param items: item titles; the item id is the position.
    :param item_keys: a stable external key per item (e.g. a WordNet synset name).
    :param splits: ``"train"``, ``"valid"``, ``"test"`` → examples.
    :param index: the ground-truth :class:`~boxlib.query.SymbolicIndex` the answers
        come from, when the dataset has one (new boolean queries can then be answered).
    :param metadata: source, licence, grading scheme, build parameters. A dataset may
        name the metrics it is evaluated with under ``"eval_metrics"`` (names understood
        by :func:`boxlib.metrics.evaluate`, e.g. ``filtered_mrr`` for knowledge graphs);
        ranking models use them when ``evaluate`` is called without metrics.
    """

    name: str
    items: list[str]
    item_keys: list[str]
    splits: dict[str, list[QueryExample]]
    index: SymbolicIndex | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.items) != len(self.item_keys):
            raise ValueError(f"dataset {self.name}: {len(self.items)} items but {len(self.item_keys)} item keys")
        for split in SPLITS:
            self.splits.setdefault(split, [])
        n = len(self.items)
        for split, examples in self.splits.items():
            for ex in examples:
                bad = [i for i in ex.relevant if not 0 <= i < n]
                if ex.filtered:
                    bad += [i for i in ex.filtered if not 0 <= i < n]
                if bad:
                    raise ValueError(
                        f"dataset {self.name}, split {split}: query '{ex.text}' names item ids {bad[:5]} "
                        f"outside 0..{n - 1}"
                    )
                if ex.filtered and not ex.filtered.isdisjoint(ex.relevant):
                    both = sorted(ex.filtered.intersection(ex.relevant))[:5]
                    raise ValueError(
                        f"dataset {self.name}, split {split}: query '{ex.text}' lists items {both} both as relevant "
                        "and as filtered out of the ranking"
                    )

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return f"RetrievalDataset({self.name!r}, items={len(self.items)}, {sizes})"
