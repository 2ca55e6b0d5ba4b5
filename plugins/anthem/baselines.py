"""Models that share ANTHEM's trainer: a vector dual encoder and a Query2Box-style model.

* :class:`VectorModel` is the dot-product dual encoder ANTHEM is compared against: the
  query is one vector (the mean of its terms' token embeddings through a query tower),
  an item is one vector (its title's tokens through an item tower), relevance is their
  dot product. It has no regions, so boolean structure is lost: the query's terms are
  pooled as a bag (which is exactly what the comparison is meant to show).
* :class:`Query2BoxModel` answers knowledge-graph path queries over entities: an anchor
  entity is a point region (zero offset), a relation moves a region's center along the
  canonical axes (``point_at``) and grows its offset, intersections are the geometry's
  exact one or an attention intersection, unions are minima over DNF branches. It is
  geometry-agnostic: Query2Box itself is the Euclidean case. A geometry without
  ``point_at`` (it is optional) moves the center in the tangent coordinates at the
  origin instead: ``expmap0(logmap0(center) + shift)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import boxlib
from boxlib.data import RetrievalDataset
from boxlib.geometry import Geometry, Region
from boxlib.query import Query, QueryExecutor, bindings, parse

from .layers import AttentionIntersection, masked_mean
from .task import RankingTask, resolve_items
from .tokenize import Tokenizer

__all__ = ["Query2BoxModel", "VectorModel"]


class VectorModel(RankingTask, nn.Module):
    """Dot-product dual encoder over hashed trigram tokens.

    :param items: item titles.
    :param dim: embedding size.
    """

    name = "vector"
    boxlib_kind = "model"

    def __init__(
        self,
        items: Sequence[str] | None = None,
        *,
        dataset: RetrievalDataset | None = None,
        negatives: int = 4,
        in_batch_negatives: bool = False,
        dim: int = 32,
        vocab_size: int = 1 << 15,
        tokenizer: str = "trigram",
        max_query_tokens: int = 32,
        max_title_tokens: int = 48,
    ):
        super().__init__()
        items = resolve_items(type(self).__name__, items, dataset)
        self._setup_task(dataset, negatives, in_batch_negatives)
        self.tokenizer = Tokenizer(vocab_size, tokenizer)
        self.max_query_tokens = max_query_tokens
        self.items = list(items)
        self.query_token = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.item_token = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.query_tower = nn.Linear(dim, dim)
        self.item_tower = nn.Linear(dim, dim)
        title_ids, title_mask = self.tokenizer.batch(self.items, max_title_tokens)
        self.register_buffer("title_ids", title_ids, persistent=False)
        self.register_buffer("title_mask", title_mask, persistent=False)

    def embed_queries(self, queries: Sequence[Query | str]) -> Tensor:
        """``[B, dim]``: the bag of the query's term tokens."""
        texts = []
        for q in queries:
            q = parse(q) if isinstance(q, str) else q
            texts.append(" ".join(str(t) for t in bindings(q)[0]))
        ids, mask = self.tokenizer.batch(texts, self.max_query_tokens)
        ids, mask = ids.to(self.title_ids.device), mask.to(self.title_ids.device)
        return self.query_tower(masked_mean(self.query_token(ids), mask))

    def embed_items(self, item_ids: Tensor | None = None) -> Tensor:
        if item_ids is None:
            item_ids = torch.arange(len(self.items), device=self.title_ids.device)
        flat = item_ids.reshape(-1)
        vectors = self.item_tower(masked_mean(self.item_token(self.title_ids[flat]), self.title_mask[flat]))
        return vectors.reshape(*item_ids.shape, -1)

    def forward(self, queries: Sequence[Query | str], candidate_ids: Tensor) -> Tensor:
        """Training entry point (what DDP wraps): :meth:`scores`."""
        return self.scores(queries, candidate_ids)

    def scores(self, queries: Sequence[Query | str], candidate_ids: Tensor) -> Tensor:
        """``[B, M]`` dot products of each query with its candidates."""
        return torch.einsum("bd,bmd->bm", self.embed_queries(queries), self.embed_items(candidate_ids))

    def all_scores(self, queries: Sequence[Query | str]) -> Tensor:
        """``[B, N]`` scores against every catalogue item."""
        return self.embed_queries(queries) @ self.embed_items().T


class Query2BoxModel(RankingTask, nn.Module):
    """Query2Box on any geometry, for knowledge-graph queries over entity ids.

    :param n_entities: number of entities (items and anchors); default: the dataset's
        number of items.
    :param n_relations: number of relations (ids ``0 .. n_relations - 1``); default: the
        dataset's ``metadata["n_relations"]``, else one more than the largest int relation
        of its index.
    :param geometry: registry name of the geometry.
    :param dim: intrinsic dimension.
    :param alpha: weight of the inside distance.
    """

    name = "query2box"
    boxlib_kind = "model"

    def __init__(
        self,
        n_entities: int | None = None,
        n_relations: int | None = None,
        *,
        dataset: RetrievalDataset | None = None,
        negatives: int = 128,
        in_batch_negatives: bool = False,
        geometry: str = "euclidean",
        geometry_kwargs: dict | None = None,
        dim: int = 32,
        alpha: float = 0.2,
        init_radius: float = 0.5,
    ):
        super().__init__()
        self._setup_task(dataset, negatives, in_batch_negatives)
        n_entities, n_relations = _kg_sizes(n_entities, n_relations, dataset)
        self.geometry = boxlib.get_geometry(geometry, dim, **(geometry_kwargs or {}))
        # point_at is optional in the Geometry interface; without it a relation moves the
        # center in the tangent coordinates at the origin (exact in flat space).
        self._has_point_at = type(self.geometry).point_at is not Geometry.point_at
        self.entity = nn.Parameter(torch.randn(n_entities, dim) * init_radius)
        self.relation_shift = nn.Parameter(torch.randn(n_relations, dim) * init_radius)
        self.relation_offset = nn.Parameter(torch.full((n_relations, dim), -1.0))
        self.operand_intersection = AttentionIntersection(dim)
        self.n_entities = n_entities
        self._executor = QueryExecutor(self, alpha=alpha)

    def _ids(self, names: Sequence, limit: int, kind: str) -> Tensor:
        try:
            ids = torch.tensor([int(n) for n in names], dtype=torch.long, device=self.entity.device)
        except (TypeError, ValueError):
            raise ValueError(f"Query2BoxModel {kind}s are integer ids, got {list(names)[:5]}") from None
        if bool(((ids < 0) | (ids >= limit)).any()):
            raise ValueError(f"{kind} id out of range 0..{limit - 1}: {ids[(ids < 0) | (ids >= limit)][:5].tolist()}")
        return ids

    def embed_terms(self, names: Sequence) -> Region:
        ids = self._ids(names, self.n_entities, "entity")
        center = self.geometry.expmap0(self.entity[ids])
        return Region._trusted(center, torch.zeros_like(self.entity[ids]))

    def project(self, relations: Sequence, regions: Region) -> Region:
        ids = self._ids(relations, self.relation_shift.shape[0], "relation")
        shift = self.relation_shift[ids].to(regions.dtype)
        if self._has_point_at:
            center = self.geometry.point_at(regions.center, shift)
        else:
            center = self.geometry.expmap0(self.geometry.logmap0(regions.center) + shift)
        return Region._trusted(center, regions.offset + F.softplus(self.relation_offset[ids]))

    def intersect(self, regions: Sequence[Region]) -> Region:
        return self.operand_intersection(self.geometry, regions)

    def embed_items(self, item_ids: Tensor | None = None) -> Tensor:
        if item_ids is None:
            return self.geometry.expmap0(self.entity)
        # A batch names the same entities many times: map each one once, then gather
        # (an embedding lookup, whose backward is a dense scatter-add).
        unique, inverse = torch.unique(item_ids, return_inverse=True)
        return F.embedding(inverse, self.geometry.expmap0(F.embedding(unique, self.entity)))

    def forward(self, queries: Sequence[Query | str], candidate_ids: Tensor) -> Tensor:
        """Training entry point (what DDP wraps): :meth:`scores`."""
        return self.scores(queries, candidate_ids)

    def scores(self, queries: Sequence[Query | str], candidate_ids: Tensor) -> Tensor:
        return -self._executor.distances_paired(queries, self.embed_items(candidate_ids))

    def all_scores(self, queries: Sequence[Query | str]) -> Tensor:
        return self._executor.scores(queries, self.embed_items())


def _kg_sizes(n_entities: int | None, n_relations: int | None, dataset: RetrievalDataset | None) -> tuple[int, int]:
    """Entity and relation counts: given, or read from the dataset."""
    if n_entities is None:
        if dataset is None:
            raise ValueError("Query2BoxModel needs n_entities= (or dataset=, whose items are the entities)")
        n_entities = len(dataset.items)
    if n_relations is None:
        if dataset is not None and dataset.metadata.get("n_relations") is not None:
            n_relations = int(dataset.metadata["n_relations"])
        elif dataset is not None and dataset.index is not None:
            ids = [r for r in dataset.index.relation_names if isinstance(r, int)]
            n_relations = max(ids) + 1 if ids else 0
        else:
            raise ValueError(
                "Query2BoxModel needs n_relations= (or a dataset with metadata['n_relations'] or a relation index)"
            )
    if n_entities < 1 or n_relations < 1:
        raise ValueError(f"Query2BoxModel needs at least one entity and one relation, got {n_entities}, {n_relations}")
    return n_entities, n_relations
