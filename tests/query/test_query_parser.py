"""Parsing and printing query text."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from query_helpers import queries

from boxlib.query import MAX_DEPTH, And, Not, Or, Project, QueryError, Term, parse

a, b, c, d = Term("a"), Term("b"), Term("c"), Term("d")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a", a),
        ("fire tv", Term("fire tv")),
        ("  fire \t tv  ", Term("fire tv")),
        ("a and b", And(a, b)),
        ("a or b", Or(a, b)),
        ("not a", Not(a)),
        ("a & b | ~c", Or(And(a, b), Not(c))),
        ("a AND b Or NOT c", Or(And(a, b), Not(c))),
        # precedence: not > and > or
        ("a or b and not c", Or(a, And(b, Not(c)))),
        ("not a and b", And(Not(a), b)),
        ("not (a and b)", Not(And(a, b))),
        ("not not a", Not(Not(a))),
        # chains are n-ary; parentheses keep their nesting
        ("a and b and c", And(a, b, c)),
        ("(a and b) and c", And(And(a, b), c)),
        ("a and (b and c)", And(a, And(b, c))),
        ("((a))", a),
        ("a or b or c and d", Or(a, b, And(c, d))),
        # multi-word terms and quoted phrases
        ("fire tv and alexa", And(Term("fire tv"), Term("alexa"))),
        ('"fire and ice"', Term("fire and ice")),
        ('fire "and" ice', Term("fire and ice")),
        ('"say \\"hi\\""', Term('say "hi"')),
        ('"back\\\\slash"', Term("back\\slash")),
        ('"  spaced   out "', Term("spaced out")),
        ("men's t-shirt", Term("men's t-shirt")),
        ("user@example.com", Term("user@example.com")),
        ("c# or c++", Or(Term("c#"), Term("c++"))),
        # integer ids
        ("#17", Term(17)),
        ("#007", Term(7)),
        ('"#17"', Term("#17")),
        ("#17 tv", Term("#17 tv")),
        ("17", Term("17")),
        # projections
        ("@hypernym(dog)", Project("hypernym", Term("dog"))),
        ("@hypernym (dog)", Project("hypernym", Term("dog"))),
        ("@#3(#17)", Project(3, Term(17))),
        ('@"born in"(ada lovelace)', Project("born in", Term("ada lovelace"))),
        ("@and(x)", Project("and", Term("x"))),
        ("@r(@s(a) and not b) or c", Or(Project("r", And(Project("s", a), Not(b))), c)),
        ("not @r(a or b)", Not(Project("r", Or(a, b)))),
    ],
)
def test_parse(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "query, text",
    [
        (Term("fire tv"), "fire tv"),
        (Or(a, And(b, Not(c))), "a or b and not c"),
        (And(Or(a, b), c), "(a or b) and c"),
        (And(And(a, b), c), "(a and b) and c"),
        (Or(Or(a, b), c), "(a or b) or c"),
        (Not(And(a, b)), "not (a and b)"),
        (Not(Not(a)), "not not a"),
        (Term("and"), '"and"'),
        (Term("fire AND ice"), '"fire AND ice"'),
        (Term('say "hi"'), '"say \\"hi\\""'),
        (Term("#12"), '"#12"'),
        (Term(12), "#12"),
        (Term("12"), "12"),
        (Term("a(b)"), '"a(b)"'),
        (Term("@home"), '"@home"'),
        (Project("born in", Term(5)), '@"born in"(#5)'),
        (Project("#3", Term(5)), '@"#3"(#5)'),
        (Project(3, Or(a, b)), "@#3(a or b)"),
    ],
)
def test_canonical_text(query, text):
    assert str(query) == text


@pytest.mark.parametrize(
    "text, column, message",
    [
        ("", 1, "empty query"),
        ("   ", 1, "empty query"),
        ("fire tv and", 9, "'and' has no right operand"),
        ("and fire", 1, "'and' has no left operand"),
        ("a or or b", 6, "unexpected 'or' after 'or'"),
        ("a and (or b)", 8, "'or' has no left operand"),
        ("a and not", 7, "'not' has no operand"),
        ("(a or b", 1, "unclosed '('"),
        ("x and @r(a", 7, "unclosed '@r('"),
        ("fire tv)", 8, "unexpected ')'"),
        ("a and ()", 7, "empty parentheses"),
        ("fire tv (x)", 9, "unexpected '('"),
        ("a not b", 3, "did you mean 'and not'"),
        ("@r(a) b", 7, "unexpected term 'b'"),
        ("@r a", 4, "expected '(' after '@r'"),
        ("a and @ (b)", 8, "expected a relation name"),
        ('a and "fire', 7, "unterminated quoted phrase"),
        ('a or ""', 6, "empty term name"),
        ("#99999999999999999999", 1, "larger than 2**63 - 1"),
    ],
)
def test_errors_name_the_column(text, column, message):
    with pytest.raises(QueryError, match=re.escape(message)) as info:
        parse(text)
    assert info.value.column == column
    assert info.value.text == text


def test_error_shows_a_caret_under_the_column():
    with pytest.raises(QueryError) as info:
        parse("fire tv)")
    assert str(info.value) == "unexpected ')': no '(' to close at column 8\n  fire tv)\n         ^"


def test_error_display_of_long_text_is_a_window_around_the_column():
    text = "a and " * 10_000 + "b)"
    with pytest.raises(QueryError) as info:
        parse(text)
    assert info.value.column == len(text)
    first, shown, caret = str(info.value).split("\n")
    assert len(shown) < 100 and shown.startswith("  …") and shown.endswith(")")
    assert caret.index("^") == shown.index(")")


def test_unknown_relation_is_an_error_when_relations_are_given():
    known = {"hypernym", "meronym", 7}
    assert parse("@hypernym(dog) and @#7(x)", relations=known) == And(
        Project("hypernym", Term("dog")), Project(7, Term("x"))
    )
    with pytest.raises(QueryError, match="unknown relation 'hypernim'; did you mean 'hypernym'") as info:
        parse("cat and @hypernim(dog)", relations=known)
    assert info.value.column == 10  # the name, after '@'
    with pytest.raises(QueryError, match="unknown relation '#8'"):
        parse("@#8(x)", relations=known)
    assert parse("@anything(x)") == Project("anything", Term("x"))


def test_parse_rejects_non_text():
    with pytest.raises(TypeError):
        parse(b"a and b")


@pytest.mark.parametrize("opener", ["(", "not ", "~", "@r(", "(not "])
def test_deep_nesting_is_a_query_error_not_a_recursion_error(opener):
    text = opener * 100_000 + "a" + ")" * (100_000 * opener.count("("))
    with pytest.raises(QueryError, match="MAX_DEPTH"):
        parse(text)


def test_nesting_up_to_the_limit_parses():
    assert parse("not " * (MAX_DEPTH - 1) + "a").depth == MAX_DEPTH
    assert parse("(" * (MAX_DEPTH - 1) + "a" + ")" * (MAX_DEPTH - 1)) == a
    nested = "@r(" * (MAX_DEPTH - 1) + "a" + ")" * (MAX_DEPTH - 1)
    assert parse(nested).depth == MAX_DEPTH


def _best_time(function, repeat=2):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("unit", ["a or (b and not c) or ", "@r(fire tv) and ", '"quoted phrase" or '])
def test_megabyte_queries_parse_in_linear_time(unit):
    def text(size):
        return unit * (size // len(unit)) + "z"

    quarter, full = text(250_000), text(1_000_000)
    t_quarter = _best_time(lambda: parse(quarter))
    t_full = _best_time(lambda: parse(full))
    assert t_full < 10
    assert t_full < 8 * t_quarter, (t_quarter, t_full)  # linear: 4x; quadratic: 16x


def test_megabyte_quoted_phrase_and_bad_tails_fail_fast():
    start = time.perf_counter()
    with pytest.raises(QueryError, match="unterminated"):
        parse('"' + "x" * 1_000_000)
    with pytest.raises(QueryError, match="unterminated"):
        parse('"' + "\\x" * 500_000)
    with pytest.raises(QueryError, match="no right operand"):
        parse("a and " * 170_000)
    assert time.perf_counter() - start < 10


@given(queries())
def test_str_parse_round_trip(q):
    assert parse(str(q)) == q


@given(st.text())
def test_arbitrary_text_parses_or_raises_query_error(text):
    try:
        q = parse(text)
    except QueryError as error:
        assert error.column is not None and 1 <= error.column <= len(text) + 1
        str(error)  # renders
    else:
        assert parse(str(q)) == q


TOKENS = [
    "a",
    "b c",
    "and",
    "OR",
    "not",
    "&",
    "|",
    "~",
    "(",
    ")",
    "@r(",
    "@s (",
    "@",
    "@(",
    '"x y"',
    '"',
    "#1",
    "#",
    "\\",
    " ",
    '@"r"(',
    "#99999999999999999999",
]


@given(st.lists(st.sampled_from(TOKENS), max_size=25).map(" ".join), st.booleans())
def test_token_soup_parses_or_raises_query_error(text, with_relations):
    try:
        q = parse(text, relations={"r"} if with_relations else None)
    except QueryError as error:
        assert error.column is not None and 1 <= error.column <= len(text) + 1
    else:
        assert parse(str(q)) == q
