"""Evaluate queries on embeddings: a batch of mixed queries as a few batched tensor programs.

Each query is brought to DNF (:func:`~boxlib.query.to_dnf`) and grouped by the
:func:`~boxlib.query.structure` of that normal form. A group is compiled once into a
small tree of operations whose every node works on all queries of the group at once:
term and relation names are looked up slot by slot, so a group of 1,000 ``a and b``
queries costs two embedding look-ups, one intersection and one distance kernel.

Semantics (each checked before any work is done):

``And``
    the geometry's exact intersection when it has the ``exact_intersection``
    capability; else the embedder's learned ``intersect`` operator when it has one;
    else set semantics, the maximum of the operands' distances (an item is in the
    intersection when it is in every operand).
``Or``
    the minimum distance over the DNF branches: exact for membership, and every branch
    stays a convex region.
``Not``
    needs the geometry's ``negation`` capability; otherwise a
    :class:`~boxlib.geometry.CapabilityError` naming the geometry.
``Project``
    the embedder's relation operator ``project(relations, regions)``.

Distances stream over chunks of ``chunk_size`` items: each chunk is prepared once
(:meth:`Geometry.prepare_points <boxlib.geometry.Geometry.prepare_points>`) and every
group scores it with :meth:`Geometry.distance_to_region_matrix
<boxlib.geometry.Geometry.distance_to_region_matrix>`, a fused kernel for the built-in
geometries (:mod:`boxlib.scoring`) and a chunked broadcast for any other. Membership
(:meth:`QueryExecutor.contains`) and paired distances broadcast, with chunks that shrink
as a group grows so that one ``group × chunk × dim`` temporary holds about
:data:`CHUNK_ELEMENTS` numbers. :meth:`QueryExecutor.topk` also streams its result, so
ranking needs no ``[B, N]`` matrix at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from boxlib.geometry import Geometry, Region
from boxlib.scoring import PreparedPoints

from .dnf import DEFAULT_MAX_TERMS, from_dnf, to_dnf
from .errors import QueryError
from .nodes import And, Name, Not, Or, Project, Query, Term
from .structure import bindings, structure
from .syntax import parse

__all__ = ["CHUNK_ELEMENTS", "QueryEmbedder", "QueryExecutor", "TableEmbedder"]

#: Target size (in numbers) of one ``group × chunk × dim`` temporary: 1 MiB of float32,
#: small enough for the elementwise chain of a distance kernel to stay in cache.
CHUNK_ELEMENTS = 1 << 18


@runtime_checkable
class QueryEmbedder(Protocol):
    """What the executor needs from a model.

    Required: ``geometry`` and ``embed_terms(names) -> Region`` (batch shape
    ``[len(names)]``). Optional: ``project(relations, regions) -> Region`` for ``Project``
    and ``intersect(regions: Sequence[Region]) -> Region``, a learned intersection used
    when the geometry has no exact one.
    """

    geometry: Geometry

    def embed_terms(self, names: Sequence[Name]) -> Region: ...


class TableEmbedder:
    """Regions looked up by name: precomputed query boxes, tests and examples.

    :param regions: term name → ``Region`` with an empty batch shape.
    :param relations: relation name → ``(shift, grow)``, both ``[dim]``: ``Project``
        moves the center by ``shift`` along the canonical axes (``point_at``) and adds
        ``grow`` to the offset, Query2Box's relation operator with fixed parameters.
    """

    def __init__(
        self,
        geometry: Geometry,
        regions: dict[Name, Region],
        relations: dict[Name, tuple[Tensor, Tensor]] | None = None,
    ):
        self.geometry = geometry
        self.regions = dict(regions)
        self.relations = dict(relations or {})

    def _lookup(self, table: dict, names: Sequence[Name], kind: str):
        missing = sorted({str(n) for n in names if n not in table})
        if missing:
            raise QueryError(f"unknown {kind}(s) {', '.join(map(repr, missing))}; known: {len(table)} {kind}s")
        return [table[n] for n in names]

    def embed_terms(self, names: Sequence[Name]) -> Region:
        found = self._lookup(self.regions, names, "term")
        return Region._trusted(torch.stack([r.center for r in found]), torch.stack([r.offset for r in found]))

    def project(self, relations: Sequence[Name], regions: Region) -> Region:
        found = self._lookup(self.relations, relations, "relation")
        shift = torch.stack([s for s, _ in found]).to(regions.dtype)
        grow = torch.stack([g for _, g in found]).to(regions.dtype)
        center = self.geometry.point_at(regions.center, shift)
        return Region._trusted(center, regions.offset + grow)


@dataclasses.dataclass(frozen=True)
class _Op:
    """One node of a compiled group program; ``slot`` indexes the group's name columns."""

    kind: type
    children: tuple[_Op, ...] = ()
    slot: int = -1


def _compile(shape: Query, counters: list[int]) -> _Op:
    # Slots are numbered in the post-order of `bindings`: children first, then the node.
    if isinstance(shape, Term):
        counters[0] += 1
        return _Op(Term, slot=counters[0] - 1)
    if isinstance(shape, Project):
        body = _compile(shape.operand, counters)
        counters[1] += 1
        return _Op(Project, (body,), counters[1] - 1)
    if isinstance(shape, (And, Or, Not)):
        return _Op(type(shape), tuple(_compile(c, counters) for c in shape.children))
    raise TypeError(f"not a query: {shape!r}")


@dataclasses.dataclass
class _Group:
    shape: Query
    program: _Op
    indices: list[int]
    terms: list[tuple[Name, ...]]  # one column of names per term slot
    relations: list[tuple[Name, ...]]


class QueryExecutor:
    """Score, test membership of and rank items for batches of queries on one embedder.

    :param embedder: a :class:`QueryEmbedder` (a model, or a :class:`TableEmbedder`).
    :param alpha: weight of the inside distance (``outside + alpha * inside``).
    :param chunk_size: items per chunk of :meth:`distances` and :meth:`topk` (each chunk is
        prepared once for all queries); :meth:`contains` uses smaller chunks for groups of
        several queries, so that a ``group × chunk × dim`` temporary holds about
        :data:`CHUNK_ELEMENTS`.
    :param max_dnf_terms: bound on DNF size per query (see :func:`~boxlib.query.to_dnf`).
    :param tol: membership tolerance for :meth:`contains` (default: the dtype's, see
        :meth:`Geometry.contains <boxlib.geometry.Geometry.contains>`).
    """

    def __init__(
        self,
        embedder: QueryEmbedder,
        *,
        alpha: float = 0.2,
        chunk_size: int = 65_536,
        max_dnf_terms: int = DEFAULT_MAX_TERMS,
        tol: float | None = None,
    ):
        if not isinstance(embedder, QueryEmbedder):
            raise TypeError("embedder needs a `geometry` attribute and an `embed_terms(names)` method")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        self.embedder = embedder
        self.geometry = embedder.geometry
        self.alpha = alpha
        self.chunk_size = chunk_size
        self.max_dnf_terms = max_dnf_terms
        self.tol = tol

    # -- planning ----------------------------------------------------------------------
    def plan(self, queries: Iterable[Query | str]) -> list[_Group]:
        """Normalise queries to DNF and group them by structure; checks capabilities."""
        groups: dict[Query, _Group] = {}
        for i, query in enumerate(queries):
            q = parse(query) if isinstance(query, str) else query
            if not isinstance(q, Query):
                raise TypeError(f"query {i} is a {type(q).__name__}, not a query or a string")
            normal = from_dnf(to_dnf(q, max_terms=self.max_dnf_terms))
            shape = structure(normal)
            terms, relations = bindings(normal)
            group = groups.get(shape)
            if group is None:
                group = groups[shape] = _Group(shape, _compile(shape, [0, 0]), [], [], [])
                self._check(group.program)
            group.indices.append(i)
            group.terms.append(terms)
            group.relations.append(relations)
        for group in groups.values():  # rows per query → columns per slot
            group.terms = list(zip(*group.terms))
            group.relations = list(zip(*group.relations))
        return list(groups.values())

    def _check(self, op: _Op) -> None:
        if op.kind is Not:
            self.geometry.require("negation", "a query with 'not'")
        if op.kind is Project and not callable(getattr(self.embedder, "project", None)):
            raise QueryError(
                f"{type(self.embedder).__name__} has no relation operator `project(relations, regions)`, "
                "so it cannot evaluate projection (path) queries"
            )
        if op.kind is Project and self._region_program(op.children[0]) is None:
            raise QueryError(
                f"projecting an intersection needs a region for it, but geometry '{self.geometry.name}' has no exact "
                f"intersection and {type(self.embedder).__name__} no learned `intersect`"
            )
        for child in op.children:
            self._check(child)

    def _intersector(self) -> Callable[[Sequence[Region]], Region] | None:
        if self.geometry.has("exact_intersection"):
            return self.geometry.intersect
        learned = getattr(self.embedder, "intersect", None)
        return learned if callable(learned) else None

    def _region_program(self, op: _Op) -> _Op | None:
        """``op`` if it evaluates to one region per query, else None (set semantics)."""
        if op.kind in (Term, Project):
            return op
        if op.kind is And and self._intersector() is not None:
            return op if all(self._region_program(c) is not None for c in op.children) else None
        return None

    # -- evaluation ----------------------------------------------------------------------
    def _regions(self, group: _Group, op: _Op, cache: dict[int, Region]) -> Region:
        key = id(op)
        if key not in cache:
            if op.kind is Term:
                region = self.embedder.embed_terms(list(group.terms[op.slot]))
            elif op.kind is Project:
                body = self._regions(group, op.children[0], cache)
                region = self.embedder.project(list(group.relations[op.slot]), body)
            else:  # And with an intersection operator
                region = self._intersector()([self._regions(group, c, cache) for c in op.children])
            cache[key] = region
        return cache[key]

    def _evaluate(
        self,
        group: _Group,
        op: _Op,
        items: Tensor | PreparedPoints,
        cache: dict[int, Region],
        membership: bool,
        out: Tensor | None = None,
    ) -> Tensor:
        # `items` is [1, C, D] (every query against the same chunk), [G, M, D] (each
        # query of the group against its own candidates) or a prepared chunk (distances
        # of every query to every item through the geometry's fused kernel, written into
        # `out` when that is given and the group is one region per query).
        if self._region_program(op) is not None:
            region = self._regions(group, op, cache)
            if isinstance(items, PreparedPoints):
                return self.geometry.distance_to_region_matrix(region, items, self.alpha, out=out)
            if membership:
                return self.geometry.contains(region[:, None], items, self.tol)
            if items.shape[0] == region.batch_shape[0]:  # each query its own candidates
                return self.geometry.distance_to_candidates(region, items, self.alpha)
            return self.geometry.distance_to_region(region[:, None], items, self.alpha)
        parts = torch.stack([self._evaluate(group, c, items, cache, membership) for c in op.children])
        if op.kind is And:
            return parts.all(0) if membership else parts.amax(0)
        return parts.any(0) if membership else parts.amin(0)

    def _chunk(self, group_size: int) -> int:
        return max(64, min(self.chunk_size, CHUNK_ELEMENTS // max(1, group_size * self.geometry.ambient_dim)))

    def _run(self, queries, items: Tensor, membership: bool) -> Tensor:
        queries = list(queries)
        self._check_items(items)
        dtype = torch.bool if membership else items.dtype
        out = torch.empty(len(queries), items.shape[0], dtype=dtype, device=items.device)
        if not membership:
            # Distances: each chunk of items is prepared once for the geometry's kernel
            # and scored by every group (the same chunks as topk, so the same values).
            plan = self.plan(queries)
            caches: list[dict[int, Region]] = [{} for _ in plan]
            for start, prepared in self._prepared_chunks(items):
                for group, cache in zip(plan, caches):
                    self._score_into(out[:, start : start + prepared.size], group, prepared, cache)
            return out
        for group in self.plan(queries):
            cache: dict[int, Region] = {}
            rows = torch.as_tensor(group.indices, device=items.device)
            step = self._chunk(len(group.indices))
            for start in range(0, items.shape[0], step):
                chunk = items[start : start + step]
                out[rows, start : start + chunk.shape[0]] = self._evaluate(
                    group, group.program, chunk[None], cache, membership
                )
        return out

    def _score_into(self, target: Tensor, group: _Group, prepared: PreparedPoints, cache: dict[int, Region]) -> None:
        """The group's distances to a prepared chunk, into its rows of ``target`` (directly,
        without a copy, when those rows are consecutive)."""
        first, count = group.indices[0], len(group.indices)
        if group.indices == list(range(first, first + count)):
            rows = target[first : first + count]
            result = self._evaluate(group, group.program, prepared, cache, False, out=rows)
            if result is not rows:
                rows.copy_(result)
        else:
            index = torch.as_tensor(group.indices, device=target.device)
            target[index] = self._evaluate(group, group.program, prepared, cache, False)

    def _prepared_chunks(self, items: Tensor):
        """``(start, prepared chunk)`` over ``items`` in chunks of ``chunk_size``."""
        for start in range(0, items.shape[0], self.chunk_size):
            yield start, self.geometry.prepare_points(items[start : start + self.chunk_size])

    def _check_items(self, items: Tensor) -> None:
        if not isinstance(items, Tensor) or items.dim() != 2 or items.shape[-1] != self.geometry.ambient_dim:
            shape = tuple(items.shape) if isinstance(items, Tensor) else type(items).__name__
            raise ValueError(
                f"items must be a tensor of points [N, {self.geometry.ambient_dim}] for {self.geometry!r}, got {shape}"
            )

    def distances_paired(self, queries: Iterable[Query | str], candidates: Tensor) -> Tensor:
        """``[B, M]`` distances of each query to its own candidate points ``[B, M, D]``
        (training: a positive and sampled negatives per query). Differentiable."""
        queries = list(queries)
        if candidates.dim() != 3 or candidates.shape[0] != len(queries):
            raise ValueError(
                f"candidates must be [B, M, {self.geometry.ambient_dim}] with B = {len(queries)} queries, "
                f"got {tuple(candidates.shape)}"
            )
        device = candidates.device
        plan = self.plan(queries)
        single, several = [], []  # one region per query, or unions / set semantics
        for group in plan:
            (single if self._region_program(group.program) is not None else several).append(group)
        parts, order = [], []
        if single:
            # Every query that is one region: the groups' regions are scored in one call of
            # the geometry's candidate kernel (one compiled graph for all structures), on
            # the candidates in place when every query is one region.
            rows = torch.as_tensor([i for g in single for i in g.indices], device=device)
            region = Region.cat([self._regions(g, g.program, {}) for g in single], dim=0)
            if len(rows) == len(queries):
                return self.geometry.distance_to_candidates(region[_inverse(rows)], candidates, self.alpha)
            parts.append(self.geometry.distance_to_candidates(region, candidates.index_select(0, rows), self.alpha))
            order.append(rows)
        for group in several:
            rows = torch.as_tensor(group.indices, device=device)
            parts.append(self._evaluate(group, group.program, candidates.index_select(0, rows), {}, False))
            order.append(rows)
        return torch.cat(parts)[_inverse(torch.cat(order))]

    def regions(self, queries: Iterable[Query | str]) -> Region:
        """One region per query, ``[B]``, for queries whose DNF is a single conjunction
        the embedder can express as a region (terms, projections, intersections)."""
        queries = list(queries)
        parts, order = [], []
        for group in self.plan(queries):
            if self._region_program(group.program) is None:
                raise QueryError(
                    f"'{group.shape}' is not a single region on geometry '{self.geometry.name}' (a union, or an "
                    "intersection without an intersection operator); score it with distances() instead"
                )
            parts.append(self._regions(group, group.program, {}))
            order.append(torch.as_tensor(group.indices))
        region = Region.cat(parts, dim=0)
        return region[_inverse(torch.cat(order)).to(region.device)]

    def distances(self, queries: Iterable[Query | str], items: Tensor) -> Tensor:
        """``[B, N]`` distances (lower is better) of every item to every query."""
        return self._run(queries, items, membership=False)

    def scores(self, queries: Iterable[Query | str], items: Tensor) -> Tensor:
        """``[B, N]`` scores, ``-distances`` (higher is better)."""
        return -self.distances(queries, items)

    def contains(self, queries: Iterable[Query | str], items: Tensor) -> Tensor:
        """``[B, N]`` exact membership of every item in every query's answer region."""
        return self._run(queries, items, membership=True)

    def topk(self, queries: Iterable[Query | str], items: Tensor, k: int = 10) -> tuple[Tensor, Tensor]:
        """The ``k`` best ``(scores, indices)`` per query, ``[B, k]`` each, streamed over
        item chunks so memory stays at ``B × (k + chunk)``. Ties keep the lower index."""
        queries = list(queries)
        self._check_items(items)
        k = min(k, items.shape[0])
        # The k smallest distances (scores are their negatives).
        best_d = torch.full((len(queries), k), float("inf"), dtype=items.dtype, device=items.device)
        best_i = torch.zeros((len(queries), k), dtype=torch.long, device=items.device)
        plan = self.plan(queries)
        caches: list[dict[int, Region]] = [{} for _ in plan]
        chunk_d = None
        for start, prepared in self._prepared_chunks(items):
            if chunk_d is None or chunk_d.shape[1] != prepared.size:
                chunk_d = torch.empty(len(queries), prepared.size, dtype=items.dtype, device=items.device)
            for group, cache in zip(plan, caches):
                self._score_into(chunk_d, group, prepared, cache)
            best_d, best_i = _merge_topk(best_d, best_i, chunk_d, start, k)
        return -best_d, best_i


def _merge_topk(best_d: Tensor, best_i: Tensor, dist: Tensor, start: int, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` smallest of the running ``(best_d, best_i)`` and a chunk of distances
    ``dist`` whose items start at index ``start``; sorted by distance, then index.

    ``torch.topk`` preselects ``k + 1`` candidates per row in linear time; a row whose
    ``k``-th and ``(k + 1)``-th distances are equal (a tie at the cut, which topk breaks
    arbitrarily) takes the exact path, a stable sort of the whole row.
    """
    n = dist.shape[1]
    if k < n:
        top = torch.topk(dist, k + 1, dim=1, largest=False)
        tied = top.values[:, k] == top.values[:, k - 1]
        cand_d, cand_i = top.values[:, :k], top.indices[:, :k]
        if bool(tied.any()):
            rows = torch.nonzero(tied).squeeze(-1)
            exact = torch.sort(dist[rows], dim=1, stable=True)
            cand_d, cand_i = cand_d.clone(), cand_i.clone()
            cand_d[rows], cand_i[rows] = exact.values[:, :k], exact.indices[:, :k]
        # Index order among equal candidates, so that the stable sort below keeps it.
        order = torch.argsort(cand_i, dim=1)
        cand_d, cand_i = cand_d.gather(1, order), cand_i.gather(1, order)
    else:
        cand_d, cand_i = dist, torch.arange(n, device=dist.device).expand(dist.shape[0], -1)
    merged_d = torch.cat([best_d, cand_d], dim=1)
    merged_i = torch.cat([best_i, cand_i + start], dim=1)
    # Stable sort by distance: earlier items first among equal distances.
    order = torch.sort(merged_d, dim=1, stable=True).indices[:, :k]
    return merged_d.gather(1, order), merged_i.gather(1, order)


def _inverse(order: Tensor) -> Tensor:
    """The inverse of the permutation ``order`` (``result[order[i]] == i``)."""
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)
    return inverse
