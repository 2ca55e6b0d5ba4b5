"""Disjunctive normal form."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from query_helpers import brute_force, queries, small_indexes, truth

from boxlib.query import DNFTooLarge, Not, Or, Project, QueryError, Term, from_dnf, parse, to_dnf

a, b, c, d = Term("a"), Term("b"), Term("c"), Term("d")
VARIABLES = ["a", "b", "c", "d", "e"]


def as_sets(dnf):
    return {frozenset(conjunction) for conjunction in dnf}


def P(relation, query):
    return Project(relation, query)


@pytest.mark.parametrize(
    "query, expected",
    [
        (a, [[a]]),
        (a & (b | c), [[a, b], [a, c]]),
        ((a | b) & (c | d), [[a, c], [a, d], [b, c], [b, d]]),
        (~(a & b), [[~a], [~b]]),  # De Morgan
        (~(a | b), [[~a, ~b]]),
        (~~a, [[a]]),  # double negation
        (~(a & ~(b | ~c)), [[~a], [b], [~c]]),
        (a | (a & b), [[a]]),  # absorption
        ((a & b & c) | (b & a), [[a, b]]),
        (a & a, [[a]]),  # duplicates
        ((a & b) | (b & a), [[a, b]]),
        (a & ~a, [[a, ~a]]),  # contradictions are kept
        (a | ~a, [[a], [~a]]),  # and so are tautologies
        # projection distributes over union, not over intersection
        (P("r", a | b), [[P("r", a)], [P("r", b)]]),
        (P("r", a & b), [[P("r", a & b)]]),
        (P("r", (a | b) & c), [[P("r", a & c)], [P("r", b & c)]]),
        (~P("r", a | b), [[~P("r", a), ~P("r", b)]]),
        (~P("r", a & b), [[~P("r", a & b)]]),
        (P("r", ~~(b & a)), [[P("r", a & b)]]),
        (P("s", P("r", a | b) & c), [[P("s", P("r", a) & c)], [P("s", P("r", b) & c)]]),
        (P("r", a | b) | P("r", b | a), [[P("r", a)], [P("r", b)]]),
    ],
)
def test_dnf(query, expected):
    assert as_sets(to_dnf(query)) == {frozenset(conjunction) for conjunction in expected}


def test_dnf_is_canonical():
    assert to_dnf(b | a) == to_dnf(a | b)
    assert to_dnf(a & (b | c)) == to_dnf((c & a) | (b & a))
    assert to_dnf(P("r", b & a)) == to_dnf(P("r", a & b))
    assert to_dnf(parse("x or y and z")) == ((Term("x"),), (Term("y"), Term("z")))


def test_blowup_is_a_clear_error_not_memory_exhaustion():
    pairs = Term("a0") | Term("b0")
    for i in range(1, 30):  # 2**30 conjunctions
        pairs = pairs & (Term(f"a{i}") | Term(f"b{i}"))
    start = time.perf_counter()
    with pytest.raises(DNFTooLarge, match="max_terms = 10000") as info:
        to_dnf(pairs)
    assert time.perf_counter() - start < 5
    assert info.value.max_terms == 10_000 and info.value.size > 10_000
    assert isinstance(info.value, QueryError)


def test_max_terms_is_the_bound_on_conjunctions():
    query = (a | b) & (c | d)
    assert len(to_dnf(query, max_terms=4)) == 4
    with pytest.raises(DNFTooLarge):
        to_dnf(query, max_terms=3)
    # negation of a DNF is a product too: not (ab or cd) has four conjunctions
    with pytest.raises(DNFTooLarge):
        to_dnf(~((a & b) | (c & d)), max_terms=3)
    with pytest.raises(ValueError):
        to_dnf(a, max_terms=0)


def test_from_dnf():
    assert from_dnf(((a,),)) == a
    assert from_dnf(((a, b), (c,))) == Or(a & b, c)
    with pytest.raises(QueryError):
        from_dnf(())
    with pytest.raises(QueryError):
        from_dnf(((),))


def _check_normal(dnf, literal_types):
    sets = [frozenset(conjunction) for conjunction in dnf]
    assert all(len(s) == len(conjunction) for s, conjunction in zip(sets, dnf)), "duplicate literal"
    for i, j in itertools.permutations(range(len(sets)), 2):
        assert not sets[i] <= sets[j], "a conjunction is absorbed by another"
    for conjunction in dnf:
        for literal in conjunction:
            atom = literal.operand if isinstance(literal, Not) else literal
            assert isinstance(atom, literal_types), literal
            if isinstance(atom, Project):  # a projection's body is one conjunction
                body = to_dnf(atom.operand)
                assert len(body) == 1 and from_dnf(body) == atom.operand


@given(queries(st.sampled_from(VARIABLES), relation_names=None))
def test_dnf_preserves_the_truth_table(query):
    dnf = to_dnf(query)
    _check_normal(dnf, Term)
    for values in itertools.product([False, True], repeat=len(VARIABLES)):
        true_terms = {name for name, value in zip(VARIABLES, values) if value}
        expected = truth(query, true_terms)
        holds = any(all(truth(literal, true_terms) for literal in conjunction) for conjunction in dnf)
        assert holds == expected, (true_terms, dnf)


@given(queries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["r", "s"]), max_leaves=8), small_indexes())
def test_dnf_preserves_answers_with_projections(query, index):
    dnf = to_dnf(query)
    _check_normal(dnf, (Term, Project))
    assert brute_force(from_dnf(dnf), *index) == brute_force(query, *index)


@given(queries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["r", "s"]), max_leaves=8))
def test_dnf_is_idempotent(query):
    dnf = to_dnf(query)
    assert to_dnf(from_dnf(dnf)) == dnf


def test_operand_removals_delete_exactly_one_operand_anywhere():
    from boxlib.query import operand_removals, parse

    got = {str(q) for q in operand_removals(parse("(a or b) and c"))}
    assert got == {"c", "a or b", "a and c", "b and c"}
    assert {str(q) for q in operand_removals(parse("not (a and b)"))} == {"not a", "not b"}
    assert {str(q) for q in operand_removals(parse("a and b and c"))} == {"a and b", "a and c", "b and c"}
    assert list(operand_removals(parse("a"))) == []
