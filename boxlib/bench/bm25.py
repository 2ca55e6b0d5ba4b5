"""The lexical baseline of the catalog benchmark: BM25 over item titles (the ``bm25s`` library).

Two ways to score a boolean query:

* ``"bag"``: the query's words as one bag of words, operators dropped — what a search
  box without boolean support does;
* ``"boolean"``: BM25 of each term's words, combined by the query's structure with the
  usual fuzzy-logic reading: ``and`` → minimum, ``or`` → maximum, ``not`` → negation.

Tokenisation is bm25s's: lower-case words of two or more letters, English stop words
removed, no stemming (so ``knives`` does not match ``knife``). BM25 parameters are
Lucene's defaults (k1 = 1.5, b = 0.75).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from boxlib_plugins.anthem.task import RankingTask
from torch import Tensor

from boxlib.data import RetrievalDataset
from boxlib.query import And, Not, Or, Project, Query, Term, parse

__all__ = ["BM25Baseline"]


class BM25Baseline(RankingTask):
    """Scores every item of ``dataset`` for a query by BM25 over the item titles.

    Has the evaluation half of the model contract (``all_scores``, and ``evaluate`` from
    :class:`~boxlib_plugins.anthem.task.RankingTask`), so the benchmark evaluates it
    exactly like a trained model. Nothing is trained.
    """

    def __init__(
        self,
        dataset: RetrievalDataset,
        mode: Literal["bag", "boolean"] = "boolean",
        *,
        k1: float = 1.5,
        b: float = 0.75,
    ) -> None:
        import bm25s

        if mode not in ("bag", "boolean"):
            raise ValueError(f"BM25 mode must be 'bag' or 'boolean', got {mode!r}")
        self.dataset = dataset
        self.mode = mode
        self._bm25s = bm25s
        self._retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        corpus = bm25s.tokenize(list(dataset.items), stopwords="en", show_progress=False)
        self._retriever.index(corpus, show_progress=False)
        self._vocab = corpus.vocab
        self._cache: dict[str, np.ndarray] = {}

    def _words(self, text: str) -> list[str]:
        tokens = self._bm25s.tokenize([text], stopwords="en", show_progress=False, return_ids=False)[0]
        return [t for t in tokens if t in self._vocab]

    def _text_scores(self, text: str) -> np.ndarray:
        scores = self._cache.get(text)
        if scores is None:
            words = self._words(text)
            scores = (
                self._retriever.get_scores(words).astype(np.float32)
                if words
                else np.zeros(len(self.dataset.items), dtype=np.float32)
            )
            self._cache[text] = scores
        return scores

    def _boolean(self, query: Query) -> np.ndarray:
        if isinstance(query, Term):
            return self._text_scores(str(query.name))
        if isinstance(query, And):
            return np.minimum.reduce([self._boolean(q) for q in query.operands])
        if isinstance(query, Or):
            return np.maximum.reduce([self._boolean(q) for q in query.operands])
        if isinstance(query, Not):
            return -self._boolean(query.operand)
        if isinstance(query, Project):
            raise ValueError(f"BM25 cannot follow relations (query {query}); it scores catalog queries only")
        raise TypeError(f"not a query: {query!r}")

    @staticmethod
    def _terms(query: Query) -> list[str]:
        if isinstance(query, Term):
            return [str(query.name)]
        if isinstance(query, (And, Or)):
            return [t for q in query.operands for t in BM25Baseline._terms(q)]
        if isinstance(query, Not):
            return []  # a bag of words cannot exclude
        if isinstance(query, Project):
            raise ValueError(f"BM25 cannot follow relations (query {query}); it scores catalog queries only")
        raise TypeError(f"not a query: {query!r}")

    def all_scores(self, queries: Sequence[Query | str]) -> Tensor:
        """``[B, N]`` scores of every item for each query."""
        rows = []
        for q in queries:
            q = parse(q) if isinstance(q, str) else q
            rows.append(self._boolean(q) if self.mode == "boolean" else self._text_scores(" ".join(self._terms(q))))
        return torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, len(self.dataset.items))
