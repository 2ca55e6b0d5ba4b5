"""Exact symbolic evaluation against hand-derived answers and a brute-force evaluator."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given
from hypothesis import strategies as st
from query_helpers import brute_force, queries, small_indexes

from boxlib.query import Not, Project, QueryError, SymbolicIndex, Term, parse

# Ten products; 'r' links accessories (heads) to devices (tails).
TERMS = {
    "fire tv": [0, 1, 2],
    "alexa": [1, 2, 3, 4],
    "echo": [4, 5],
    "kindle": [6, 7],
    "Kindle Paperwhite": [7],
}
RELATIONS = {"fits": ([8, 8, 9], [0, 6, 7]), "bundled with": ([0, 4], [4, 0])}


@pytest.fixture(scope="module")
def index():
    return SymbolicIndex(10, TERMS, RELATIONS)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("fire tv", [0, 1, 2]),
        ("fire tv and alexa", [1, 2]),
        ("fire tv or echo", [0, 1, 2, 4, 5]),
        ("alexa and not fire tv", [3, 4]),
        ("not alexa", [0, 5, 6, 7, 8, 9]),
        ("not (fire tv or alexa or echo or kindle)", [8, 9]),
        ("Kindle Paperwhite", [7]),
    ],
)
def test_hand_derived_answers(index, text, expected):
    assert index.evaluate(parse(text)).tolist() == expected


@pytest.mark.parametrize(
    "query, expected",
    [
        (Project("fits", Term("fire tv") | Term("kindle") | Term("echo")), []),
        (Project("bundled with", Term("fire tv")), [4]),
        (Project("bundled with", Project("bundled with", Term("echo"))), [4]),
        (Project("bundled with", Not(Term("alexa"))), [4]),
        (Not(Project("bundled with", Term("alexa"))), [1, 2, 3, 4, 5, 6, 7, 8, 9]),
        (Project("fits", Not(Term("alexa") | Term("fire tv") | Term("echo") | Term("kindle"))), [0, 6, 7]),
    ],
)
def test_projection_answers(index, query, expected):
    assert index.evaluate(query).tolist() == expected


def test_answers_are_sorted_int64_arrays(index):
    answer = index.evaluate(parse("echo or fire tv"))
    assert answer.dtype == np.int64 and answer.tolist() == [0, 1, 2, 4, 5]


def test_names_are_normalised_like_terms():
    index = SymbolicIndex(3, {"  fire \t tv ": [1]}, {"born  in": ([0], [2])})
    assert index.evaluate(Term("fire tv")).tolist() == [1]
    assert index.evaluate(Project("born in", Term("fire tv"))).tolist() == []
    assert index.term_names == {"fire tv"} and index.relation_names == {"born in"}


def test_unknown_names_raise_with_suggestions_or_are_empty(index):
    with pytest.raises(QueryError, match="unknown term 'alexia'; did you mean 'alexa'"):
        index.evaluate(parse("echo and alexia"))
    with pytest.raises(QueryError, match="unknown relation 'fit'; did you mean 'fits'"):
        index.evaluate(parse("@fit(echo)"))
    assert index.evaluate(parse("echo or alexia"), unknown="empty").tolist() == [4, 5]
    assert index.evaluate(parse("not @fit(echo)"), unknown="empty").tolist() == list(range(10))
    with pytest.raises(ValueError):
        index.evaluate(Term("echo"), unknown="ignore")


def test_terms_are_case_sensitive(index):
    with pytest.raises(QueryError, match="unknown term 'Alexa'"):
        index.evaluate(Term("Alexa"))


def test_sparse_matrix_relations_equal_edge_lists():
    heads, tails = [0, 0, 3, 2], [1, 2, 1, 0]
    matrix = scipy.sparse.coo_matrix((np.ones(4), (heads, tails)), shape=(4, 4))
    with_zero = scipy.sparse.csr_matrix(([1.0, 0.0], ([1, 3], [3, 3])), shape=(4, 4))  # explicit zero: no edge
    index = SymbolicIndex(4, {"x": [0, 3]}, {"pairs": (heads, tails), "matrix": matrix.tocsr(), "zero": with_zero})
    assert index.evaluate(Project("matrix", Term("x"))).tolist() == [1, 2]
    assert index.evaluate(Project("pairs", Term("x"))).tolist() == [1, 2]
    assert index.evaluate(Project("zero", Not(Term("x")))).tolist() == [3]
    assert index.evaluate(Project("zero", Term("x"))).tolist() == []


def test_knowledge_graph_from_triples():
    # 0 -0-> 1, 0 -0-> 2, 1 -1-> 3, 2 -1-> 3, 2 -1-> 4, 5 -0-> 4
    triples = [(0, 0, 1), (0, 0, 2), (1, 1, 3), (2, 1, 3), (2, 1, 4), (5, 0, 4)]
    kg = SymbolicIndex.from_triples(6, triples)
    assert kg.evaluate(Project(0, Term(0))).tolist() == [1, 2]
    assert kg.evaluate(Project(1, Project(0, Term(0)))).tolist() == [3, 4]  # 2p
    assert kg.evaluate(Project(1, Term(1)) & Project(1, Term(2))).tolist() == [3]  # 2i
    assert kg.evaluate(Project(1, Term(2)) & Not(Project(1, Term(1)))).tolist() == [4]  # 2in
    assert kg.evaluate(Project(0, Term(0)) | Project(0, Term(5))).tolist() == [1, 2, 4]  # 2u
    with pytest.raises(QueryError, match="not an item id"):
        kg.evaluate(Term(6))
    with pytest.raises(QueryError, match="unknown relation '#2'"):
        kg.evaluate(Project(2, Term(0)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"terms": {"a": [0, 5]}}, "outside"),
        ({"terms": {"a": [-1]}}, "outside"),
        ({"terms": {"a": [[0, 1]]}}, "1-d"),
        ({"terms": {"a": [0.5]}}, "int"),
        ({"terms": {"a": [0], " a ": [1]}}, "twice"),
        ({"terms": {"": [0]}}, "empty"),
        ({"relations": {"r": ([0, 1], [1])}}, "heads"),
        ({"relations": {"r": ([0], [7])}}, "outside"),
        ({"relations": {"r": scipy.sparse.eye(4)}}, "shape"),
        ({"relations": {"r": [0, 1, 2]}}, "pair"),
        ({"terms": {3: [0]}, "entity_anchors": True}, "entity_anchors"),
    ],
)
def test_invalid_index_data_is_a_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SymbolicIndex(5, **kwargs)


def test_empty_universe():
    index = SymbolicIndex(0, {"a": []})
    assert index.evaluate(Not(Term("a"))).tolist() == []


@given(queries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["r", "s"]), max_leaves=10), small_indexes())
def test_evaluation_agrees_with_brute_force(query, data):
    n_items, terms, edges = data
    index = SymbolicIndex(n_items, terms, {name: tuple(zip(*pairs)) or ([], []) for name, pairs in edges.items()})
    assert index.evaluate(query).tolist() == sorted(brute_force(query, n_items, terms, edges))


@given(
    st.lists(queries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["r", "s"]), max_leaves=6), max_size=6),
    small_indexes(),
)
def test_batches_with_shared_subqueries_agree_with_brute_force(batch, data):
    n_items, terms, edges = data
    index = SymbolicIndex(n_items, terms, {name: tuple(zip(*pairs)) or ([], []) for name, pairs in edges.items()})
    batch = batch + batch[::-1] + [q.children[0] for q in batch if q.children]  # repeats and shared parts
    answers = index.evaluate_many(batch)
    assert [a.tolist() for a in answers] == [sorted(brute_force(q, n_items, terms, edges)) for q in batch]


def test_large_batch_runs_in_seconds():
    rng = np.random.default_rng(0)
    n_items, n_terms = 100_000, 500
    terms = {f"t{i}": rng.choice(n_items, size=int(rng.integers(10, 5_000)), replace=False) for i in range(n_terms)}
    relations = {"r": (rng.integers(0, n_items, 200_000), rng.integers(0, n_items, 200_000))}
    index = SymbolicIndex(n_items, terms, relations)
    texts = ["t{} and not t{}", "(t{} or t{}) and t{}", "@r(t{}) or t{}", "t{}"]
    batch = [parse(texts[i % 4].format(*rng.integers(0, n_terms, 3))) for i in range(2_000)]
    start = time.perf_counter()
    answers = index.evaluate_many(batch)
    assert time.perf_counter() - start < 10  # about 0.5 s on one core; the benchmark measures it properly
    term_sets = {name: set(ids.tolist()) for name, ids in terms.items()}
    edges = {"r": set(zip(*(ids.tolist() for ids in relations["r"])))}
    for query, answer in list(zip(batch, answers))[:40]:
        assert answer.tolist() == sorted(brute_force(query, n_items, term_sets, edges))
