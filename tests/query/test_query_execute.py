"""Executing queries on embeddings against exact symbolic answers and per-query runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import boxlib
from boxlib import CapabilityError, Region
from boxlib.query import And, Not, Or, Project, QueryError, SymbolicIndex, Term, parse, to_dnf
from boxlib.query.execute import QueryExecutor, TableEmbedder
from boxlib.testing import strategies as bst

TERMS = ["a", "b", "c", "d", "e"]


def _boolean_queries(max_leaves: int = 6):
    leaves = st.sampled_from(TERMS).map(Term)
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(lambda qs: And(*qs)),
            st.lists(inner, min_size=2, max_size=3).map(lambda qs: Or(*qs)),
        ),
        max_leaves=max_leaves,
    )


def _table(geometry, data, n_terms=5):
    regions = data.draw(bst.regions(geometry, (n_terms,), max_abs=1.0, max_offset=1.5))
    return TableEmbedder(geometry, {name: regions[i] for i, name in enumerate(TERMS[:n_terms])})


EUCLID = boxlib.get_geometry("euclidean", 2)
BALL = boxlib.get_geometry("poincare", 2)


@given(data=st.data(), queries=st.lists(_boolean_queries(), min_size=1, max_size=6))
def test_euclidean_membership_equals_the_symbolic_answer(data, queries):
    embedder = _table(EUCLID, data)
    items = data.draw(bst.points(EUCLID, (40,), max_abs=2.5))
    # The ground-truth index holds each term's items as decided by its atomic box; the
    # executor must then reproduce the symbolic answer of every boolean combination
    # through exact intersections and unions of regions.
    atoms = EUCLID.contains(embedder.embed_terms(TERMS)[:, None], items[None], tol=0.0)
    index = SymbolicIndex(len(items), {t: np.flatnonzero(atoms[i].numpy()) for i, t in enumerate(TERMS)})
    got = QueryExecutor(embedder, chunk_size=16, tol=0.0).contains(queries, items)
    for row, query in zip(got, queries):
        assert set(np.flatnonzero(row.numpy())) == set(index.evaluate(query).tolist()), str(query)


@given(data=st.data(), queries=st.lists(_boolean_queries(), min_size=2, max_size=8))
@pytest.mark.parametrize("geometry", [EUCLID, BALL], ids=["euclidean", "poincare"])
def test_grouped_batch_equals_one_query_at_a_time(geometry, data, queries):
    embedder = _table(geometry, data)
    items = data.draw(bst.points(geometry, (23,)))
    executor = QueryExecutor(embedder, chunk_size=7)
    batched = executor.distances(queries, items)
    single = torch.cat([executor.distances([q], items) for q in queries])
    torch.testing.assert_close(batched, single, rtol=0, atol=0)
    assert torch.equal(executor.contains(queries, items), torch.cat([executor.contains([q], items) for q in queries]))


@given(data=st.data(), queries=st.lists(_boolean_queries(), min_size=1, max_size=8), m=st.integers(1, 6))
@pytest.mark.parametrize("geometry", [EUCLID, BALL], ids=["euclidean", "poincare"])
def test_paired_distances_are_each_querys_own_columns(geometry, data, queries, m):
    # Training scores each query against its own candidates: the same numbers as the full
    # matrix at those columns, whatever mix of single regions and unions the batch holds
    # (single regions are scored together, unions group by group).
    embedder = _table(geometry, data)
    items = data.draw(bst.points(geometry, (17,)))
    executor = QueryExecutor(embedder)
    ids = torch.as_tensor(
        data.draw(
            st.lists(st.lists(st.integers(0, 16), min_size=m, max_size=m), min_size=len(queries), max_size=len(queries))
        )
    )
    got = executor.distances_paired(queries, items[ids])
    want = executor.distances(queries, items).gather(1, ids)
    assert got.shape == (len(queries), m)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_paired_distances_check_the_candidates_shape():
    executor = QueryExecutor(TableEmbedder(EUCLID, {"a": Region(torch.zeros(2), torch.ones(2))}))
    with pytest.raises(ValueError, match=r"candidates must be \[B, M, 2\] with B = 2 queries"):
        executor.distances_paired(["a", "a"], torch.zeros(3, 4, 2))


@given(data=st.data(), left=_boolean_queries(3), right=_boolean_queries(3))
@pytest.mark.parametrize("geometry", [EUCLID, BALL], ids=["euclidean", "poincare"])
def test_union_scores_are_the_minimum_over_branches(geometry, data, left, right):
    executor = QueryExecutor(_table(geometry, data))
    items = data.draw(bst.points(geometry, (11,)))
    union = left | right
    # The branches are those of the union's DNF: simplification may absorb an operand
    # (b | (a & b) is b), which keeps membership but changes inside distances.
    branches = [And(*c) if len(c) > 1 else c[0] for c in to_dnf(union)]
    got = executor.distances([union], items)[0]
    torch.testing.assert_close(got, executor.distances(branches, items).amin(0))
    if not set(to_dnf(left)) & set(to_dnf(right)) and len(to_dnf(union)) == len(to_dnf(left)) + len(to_dnf(right)):
        torch.testing.assert_close(got, executor.distances([left, right], items).amin(0))


@given(data=st.data())
def test_without_exact_intersection_and_is_the_maximum_distance(data):
    executor = QueryExecutor(_table(BALL, data))
    items = data.draw(bst.points(BALL, (9,)))
    d = executor.distances(["a", "b", "a and b"], items)
    torch.testing.assert_close(d[2], torch.maximum(d[0], d[1]))
    m = executor.contains(["a", "b", "a and b"], items)
    assert torch.equal(m[2], m[0] & m[1])


def test_exact_intersection_is_used_when_the_geometry_has_one():
    boxes = {
        "a": Region(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0])),
        "b": Region(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])),
    }
    executor = QueryExecutor(TableEmbedder(EUCLID, boxes), alpha=0.0)
    # The intersection is [0, 1] x [-1, 1]: (2, 0) is 1 outside it, though only 1 outside
    # a and inside b, so max-of-distances would also give 1; (0.5, 3) separates them:
    # 2 outside the intersection, and max(2, 2) = 2 too; (-0.5, 0) is inside a, 0.5
    # outside b and 0.5 outside the intersection. (3, 0) is 2 outside the intersection
    # but max(2, 1) = 2 ... pick a point where the two semantics differ: (0.5, 0) vs an
    # empty intersection below.
    items = torch.tensor([[2.0, 0.0], [-0.5, 0.0], [0.5, 0.0]])
    d = executor.distances(["a and b"], items)[0]
    torch.testing.assert_close(d, torch.tensor([1.0, 0.5, 0.0]))
    apart = {"a": boxes["a"], "b": Region(torch.tensor([4.0, 0.0]), torch.tensor([1.0, 1.0]))}
    executor = QueryExecutor(TableEmbedder(EUCLID, apart), alpha=0.0)
    # Corners cross by 2 on the first axis: every point violates by at least 2 there,
    # while the larger of the two box distances at (2, 0) is only 1.
    d = executor.distances(["a and b", "a", "b"], torch.tensor([[2.0, 0.0]]))[:, 0]
    assert float(d[0]) == pytest.approx(2.0) and float(torch.maximum(d[1], d[2])) == pytest.approx(1.0)
    assert not bool(executor.contains(["a and b"], torch.tensor([[2.0, 0.0]])).any())


def test_learned_intersection_is_used_when_the_geometry_has_none():
    calls = []

    class Learned(TableEmbedder):
        def intersect(self, regions):
            calls.append(len(regions))
            return regions[0]  # a deliberately simple operator: keep the first operand

    r = {t: Region(BALL.expmap0(torch.randn(2) * 0.3), torch.full((2,), 0.2)) for t in "ab"}
    executor = QueryExecutor(Learned(BALL, r))
    items = BALL.expmap0(torch.randn(5, 2))
    d = executor.distances(["a and b", "a"], items)
    assert calls == [2] and torch.equal(d[0], d[1])


def test_not_needs_the_negation_capability_and_names_the_geometry():
    executor = QueryExecutor(TableEmbedder(EUCLID, {"a": Region(torch.zeros(2), torch.ones(2))}))
    with pytest.raises(CapabilityError, match="'negation'.*'euclidean'"):
        executor.distances(["not a"], torch.zeros(1, 2))
    with pytest.raises(CapabilityError):
        executor.contains([Term("a") & Not(Term("a"))], torch.zeros(1, 2))


def test_projection_uses_the_relation_operator():
    boxes = {"a": Region(torch.zeros(2), torch.full((2,), 0.5))}
    relations = {"r": (torch.tensor([3.0, 0.0]), torch.tensor([0.5, 0.0]))}
    executor = QueryExecutor(TableEmbedder(EUCLID, boxes, relations), alpha=0.0)
    items = torch.tensor([[3.9, 0.0], [0.0, 0.0], [4.5, 0.0]])
    # r(a) is centered at (3, 0) with offset (1, 0.5): contains the first, not the others.
    assert executor.contains([Project("r", Term("a"))], items).tolist() == [[True, False, False]]
    torch.testing.assert_close(executor.distances([Project("r", Term("a"))], items)[0], torch.tensor([0.0, 2.0, 0.5]))
    with pytest.raises(QueryError, match="unknown relation"):
        executor.distances([Project("s", Term("a"))], items)


def test_projection_needs_a_relation_operator():
    class NoRelations:
        geometry = EUCLID

        def embed_terms(self, names):
            return Region(torch.zeros(len(names), 2), torch.ones(len(names), 2))

    with pytest.raises(QueryError, match="no relation operator"):
        QueryExecutor(NoRelations()).distances([Project("r", Term("a"))], torch.zeros(1, 2))


@given(data=st.data(), k=st.integers(1, 12), chunk=st.integers(1, 9))
def test_topk_streams_to_the_same_result_as_a_full_sort(data, k, chunk):
    embedder = _table(EUCLID, data)
    items = data.draw(bst.points(EUCLID, (17,)))
    queries = ["a", "b or c", "a and d", "(a or b) and e"]
    executor = QueryExecutor(embedder, chunk_size=chunk)
    scores = executor.scores(queries, items)
    top_s, top_i = executor.topk(queries, items, k=k)
    expected = torch.sort(scores, dim=1, descending=True, stable=True)
    kk = min(k, len(items))
    assert torch.equal(top_i, expected.indices[:, :kk]) and torch.equal(top_s, expected.values[:, :kk])


def test_strings_and_bad_items_are_handled_clearly():
    executor = QueryExecutor(TableEmbedder(EUCLID, {"fire tv": Region(torch.zeros(2), torch.ones(2))}))
    assert executor.contains(["fire tv"], torch.zeros(1, 2)).tolist() == [[True]]
    with pytest.raises(ValueError, match=r"items must be a tensor of points \[N, 2\]"):
        executor.scores(["fire tv"], torch.zeros(3))
    with pytest.raises(QueryError, match="unknown term"):
        executor.scores([parse("alexa")], torch.zeros(1, 2))
