"""The structure of a query: its shape with names abstracted away, for batching.

``structure(q)`` replaces every term name by :data:`TERM_PLACEHOLDER` and every
relation by :data:`RELATION_PLACEHOLDER`. The result is an ordinary query (hashable,
printable), so queries group by ``structure`` and a group runs as one batched
program. ``bindings(q)`` lists the names that ``structure`` abstracted away, and
``bind`` puts them back::

    bind(structure(q), *bindings(q)) == q

Names are listed in *post-order*: children before their parent, operands left to
right. For knowledge-graph queries this is the order of the flattened BetaE id rows
(anchor, then the relations of its path, innermost first).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .errors import QueryError
from .nodes import And, Name, Not, Or, Project, Query, Term

#: The name every term gets in a structure (BetaE writes anchors as 'e').
TERM_PLACEHOLDER = "e"
#: The name every relation gets in a structure (BetaE writes relations as 'r').
RELATION_PLACEHOLDER = "r"

_TERM_SHAPE = Term(TERM_PLACEHOLDER)


def structure(query: Query) -> Query:
    """``query`` with term names set to ``'e'`` and relations to ``'r'``.

    Two queries have equal structures exactly when they differ only in names.
    ``structure(structure(q)) == structure(q)``.
    """
    if isinstance(query, Term):
        return _TERM_SHAPE
    if isinstance(query, Project):
        return Project(RELATION_PLACEHOLDER, structure(query.operand))
    if isinstance(query, Not):
        return Not(structure(query.operand))
    if isinstance(query, (And, Or)):
        return type(query)(*map(structure, query.operands))
    raise TypeError(f"not a query: {query!r}")


def bindings(query: Query) -> tuple[tuple[Name, ...], tuple[Name, ...]]:
    """``(terms, relations)``: the names in ``query``, each in post-order.

    >>> bindings(Project(1, Project(0, Term(7))) & Project(2, Term(8)))
    ((7, 8), (0, 1, 2))
    """
    terms: list[Name] = []
    relations: list[Name] = []

    def visit(node: Query) -> None:
        if isinstance(node, Term):
            terms.append(node.name)
            return
        for child in node.children:
            visit(child)
        if isinstance(node, Project):
            relations.append(node.relation)

    visit(query)
    return tuple(terms), tuple(relations)


def bind(shape: Query, terms: Iterable[Name], relations: Iterable[Name] = ()) -> Query:
    """``shape`` with its term and relation names replaced, in :func:`bindings` order.

    Raises :class:`QueryError` when the number of names does not match the shape.
    """
    term_names = iter(terms)
    relation_names = iter(relations)

    def mismatch(kind: str, what: str) -> QueryError:
        expected = len(bindings(shape)[kind == "relation"])
        return QueryError(f"too {what} {kind} names: the shape {shape} has {expected}")

    def take(names: Iterator[Name], kind: str) -> Name:
        try:
            return next(names)
        except StopIteration:
            raise mismatch(kind, "few") from None

    def rebuild(node: Query) -> Query:
        if isinstance(node, Term):
            return Term(take(term_names, "term"))
        if isinstance(node, Project):
            operand = rebuild(node.operand)
            return Project(take(relation_names, "relation"), operand)
        if isinstance(node, Not):
            return Not(rebuild(node.operand))
        return type(node)(*map(rebuild, node.children))

    result = rebuild(shape)
    for names, kind in ((term_names, "term"), (relation_names, "relation")):
        if next(names, None) is not None:
            raise mismatch(kind, "many")
    return result
