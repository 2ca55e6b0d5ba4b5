"""The AST: values, operators, depth limit, structure and bindings."""

from __future__ import annotations

import copy
import pickle
import time

import numpy as np
import pytest
from hypothesis import given
from query_helpers import queries

from boxlib.query import (
    MAX_DEPTH,
    And,
    Not,
    Or,
    Project,
    QueryError,
    Term,
    bind,
    bindings,
    structure,
)

a, b, c, d = Term("a"), Term("b"), Term("c"), Term("d")


def test_nodes_compare_and_hash_by_value():
    assert And(a, Not(b)) == And(Term("a"), Not(Term("b")))
    assert hash(And(a, Not(b))) == hash(And(Term("a"), Not(Term("b"))))
    assert And(a, b) != And(b, a)  # operand order is kept
    assert And(a, b) != Or(a, b)
    assert Project("r", a) != Project("s", a)
    assert len({Term("x"), Term("x"), Term("y")}) == 2


def test_term_names_collapse_whitespace_and_keep_case():
    assert Term("  fire \t\n tv ") == Term("fire tv")
    assert Term("fire tv").name == "fire tv"
    assert Term("Fire TV") != Term("fire tv")


def test_int_and_str_names_are_different_terms():
    assert Term(1) != Term("1")
    assert Term(np.int64(7)) == Term(7)
    assert type(Term(np.int64(7)).name) is int


@pytest.mark.parametrize("bad", [True, 1.5, None, b"x", ("a",)])
def test_term_rejects_non_name_types(bad):
    with pytest.raises(TypeError):
        Term(bad)


@pytest.mark.parametrize("bad", ["", "   ", -1, 2**63])
def test_term_rejects_empty_or_out_of_range_names(bad):
    with pytest.raises(QueryError):
        Term(bad)


def test_nary_nodes_need_two_query_operands():
    with pytest.raises(QueryError, match="at least two"):
        And(a)
    with pytest.raises(QueryError, match="at least two"):
        Or()
    with pytest.raises(TypeError):
        And(a, "b")
    with pytest.raises(TypeError):
        Not("a")
    with pytest.raises(TypeError):
        Project("r", "a")


def test_nodes_are_immutable():
    q = And(a, b)
    with pytest.raises(AttributeError):
        q.operands = (c, d)
    with pytest.raises(AttributeError):
        a.name = "z"
    with pytest.raises(AttributeError):
        del a.name


def test_operators_build_flat_nary_nodes_whatever_the_grouping():
    assert a & b == And(a, b)
    assert (a & b) & c == a & (b & c) == And(a, b, c)
    assert (a | b) | (c | d) == Or(a, b, c, d)
    assert ~a == Not(a)
    assert a | b & c == Or(a, And(b, c))  # Python precedence: & before |
    assert (a & b) | c == Or(And(a, b), c)
    with pytest.raises(TypeError):
        a & "b"


def test_depth_counts_nodes_on_the_longest_path():
    assert a.depth == 1
    assert Not(a).depth == 2
    assert And(a, Project("r", Not(b))).depth == 4


def test_depth_limit_is_a_query_error_at_construction():
    q = a
    for _ in range(MAX_DEPTH - 1):
        q = Not(q)
    assert q.depth == MAX_DEPTH
    with pytest.raises(QueryError, match="MAX_DEPTH"):
        Not(q)
    with pytest.raises(QueryError, match="MAX_DEPTH"):
        And(b, Project("r", q))


def test_deepest_query_hashes_compares_pickles_and_prints():
    def chain(leaf):
        q = leaf
        for i in range(MAX_DEPTH - 1):
            q = Project("r", q) if i % 2 else Not(q)
        return q

    q1, q2 = chain(Term("x")), chain(Term("x"))
    assert q1 == q2 and hash(q1) == hash(q2) and q1 is not q2
    assert chain(Term("y")) != q1
    assert pickle.loads(pickle.dumps(q1)) == q1
    assert copy.deepcopy(q1) == q1
    assert str(q1).count("not") == MAX_DEPTH // 2


def test_wide_queries_build_and_hash_in_linear_time():
    leaves = [Term(f"t{i}") for i in range(200_000)]
    start = time.perf_counter()
    q = And(*leaves)
    hash(q)
    assert q == And(*leaves)
    assert time.perf_counter() - start < 5


@given(queries())
def test_pickle_round_trip(q):
    assert pickle.loads(pickle.dumps(q)) == q


def test_structure_abstracts_names():
    q1 = And(Project("born in", Term("Ada")), Not(Project(3, Term(17))))
    q2 = And(Project("lives in", Term("Bob")), Not(Project(4, Term(18))))
    assert structure(q1) == structure(q2) == And(Project("r", Term("e")), Not(Project("r", Term("e"))))
    assert structure(q1) != structure(Or(Project("born in", Term("Ada")), Not(Project(3, Term(17)))))


def test_bindings_are_in_post_order():
    # ((e7 -r0-> -r1->) and (e8 -r2->)): the order of a flattened BetaE 'pi' row.
    q = And(Project(1, Project(0, Term(7))), Project(2, Term(8)))
    assert bindings(q) == ((7, 8), (0, 1, 2))


def test_bind_checks_the_number_of_names():
    shape = And(Project("r", Term("e")), Term("e"))
    assert bind(shape, ["x", "y"], [5]) == And(Project(5, Term("x")), Term("y"))
    with pytest.raises(QueryError, match="too few term"):
        bind(shape, ["x"], [5])
    with pytest.raises(QueryError, match="too many relation"):
        bind(shape, ["x", "y"], [5, 6])


@given(queries())
def test_bind_inverts_structure_and_bindings(q):
    shape = structure(q)
    assert bind(shape, *bindings(q)) == q
    assert structure(shape) == shape
    assert shape.depth == q.depth
