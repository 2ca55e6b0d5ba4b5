"""Hypothesis strategies and brute-force references shared by the query tests.

The references here are deliberately naive (Python booleans and sets, one node at a
time) so that they share no code or idea with the implementation under test.
"""

from __future__ import annotations

from hypothesis import strategies as st

from boxlib.query import And, Not, Or, Project, Query, Term

# Names chosen to stress printing and parsing: operator words in any case, characters
# with syntactic meaning, things that look like ids, odd whitespace.
TRICKY_NAMES = [
    "fire tv",
    "and",
    "OR",
    "Not",
    "#12",
    "#0",
    "a#1",
    "@home",
    "x@y",
    "(",
    ")",
    'say "hi"',
    "back\\slash",
    "tab\there",
    "&",
    "|",
    "~",
    "é ñ 中文",
    "a  b",
    "\\",
]

text_names = st.one_of(
    st.sampled_from(TRICKY_NAMES),
    st.text(min_size=1, max_size=8),
).filter(lambda s: s.split() != [])

names = st.one_of(text_names, st.integers(0, 2**63 - 1))


def queries(
    term_names: st.SearchStrategy = names,
    relation_names: st.SearchStrategy | None = names,
    max_leaves: int = 10,
    negation: bool = True,
) -> st.SearchStrategy[Query]:
    """Random ASTs over the given names (no projection when ``relation_names`` is None)."""

    def extend(children: st.SearchStrategy[Query]) -> st.SearchStrategy[Query]:
        options = [
            st.lists(children, min_size=2, max_size=3).map(lambda qs: And(*qs)),
            st.lists(children, min_size=2, max_size=3).map(lambda qs: Or(*qs)),
        ]
        if negation:
            options.append(children.map(Not))
        if relation_names is not None:
            options.append(st.builds(Project, relation_names, children))
        return st.one_of(options)

    return st.recursive(term_names.map(Term), extend, max_leaves=max_leaves)


def truth(query: Query, true_terms: set) -> bool:
    """Boolean value of a projection-free query when exactly ``true_terms`` hold."""
    if isinstance(query, Term):
        return query.name in true_terms
    if isinstance(query, Not):
        return not truth(query.operand, true_terms)
    if isinstance(query, And):
        return all(truth(q, true_terms) for q in query.operands)
    if isinstance(query, Or):
        return any(truth(q, true_terms) for q in query.operands)
    raise AssertionError(f"unexpected node {query!r}")


def brute_force(query: Query, n_items: int, terms: dict, edges: dict) -> set[int]:
    """Answer set of ``query`` with Python sets: ``edges[r]`` is a set of (head, tail)."""
    if isinstance(query, Term):
        return set(terms[query.name])
    if isinstance(query, Not):
        return set(range(n_items)) - brute_force(query.operand, n_items, terms, edges)
    if isinstance(query, And):
        result = brute_force(query.operands[0], n_items, terms, edges)
        for operand in query.operands[1:]:
            result &= brute_force(operand, n_items, terms, edges)
        return result
    if isinstance(query, Or):
        result = set()
        for operand in query.operands:
            result |= brute_force(operand, n_items, terms, edges)
        return result
    if isinstance(query, Project):
        sources = brute_force(query.operand, n_items, terms, edges)
        return {tail for head, tail in edges[query.relation] if head in sources}
    raise AssertionError(f"unexpected node {query!r}")


@st.composite
def small_indexes(draw: st.DrawFn) -> tuple[int, dict, dict]:
    """``(n_items, terms, edges)``: terms 'a', 'b', 'c' and relations 'r', 's' over few items."""
    n_items = draw(st.integers(1, 12))
    item = st.integers(0, n_items - 1)
    terms = {name: draw(st.sets(item, max_size=n_items)) for name in ("a", "b", "c")}
    edges = {name: draw(st.sets(st.tuples(item, item), max_size=2 * n_items)) for name in ("r", "s")}
    return n_items, terms, edges
