"""The query AST: immutable, hashable nodes built by constructors or Python operators.

``Term(name)`` is a leaf; ``And(*qs)`` and ``Or(*qs)`` are n-ary (at least two
operands, kept in the order given, never flattened by the constructor); ``Not(q)`` is
the complement; ``Project(relation, q)`` follows ``relation`` from every item of ``q``
(a knowledge-graph hop). Names of terms and relations are ``str`` (internal whitespace
collapsed to one space, case kept) or non-negative ``int`` ids.

Every node knows its ``depth``; a node deeper than :data:`MAX_DEPTH` cannot be built,
which bounds the recursion of everything that walks a query. Hashes are computed once
at construction from the children's hashes, so hashing is O(1) and building a tree is
linear in its size.
"""

from __future__ import annotations

import operator
from typing import TypeAlias

from .errors import QueryError

Name: TypeAlias = str | int

#: Deepest query accepted anywhere (AST depth, and parenthesis nesting in text):
#: a leaf has depth 1, each ``Not``/``Project``/``And``/``Or`` above it adds one.
MAX_DEPTH = 200

#: Largest integer id (ids index int64 arrays).
MAX_ID = 2**63 - 1


def normalize_name(name: object, kind: str = "term") -> str | int:
    """``name`` as stored in a node: whitespace-collapsed ``str`` or an ``int`` id in [0, MAX_ID].

    Raises ``TypeError`` for other types (``bool`` included) and :class:`QueryError` for an
    empty string or an id out of range. ``kind`` ("term" or "relation") only words messages.
    """
    if isinstance(name, str):
        text = " ".join(name.split())
        if not text:
            raise QueryError(f"empty {kind} name")
        return text
    if isinstance(name, bool):
        raise TypeError(f"a {kind} name is a str or an int id, not bool")
    try:
        value = operator.index(name)
    except TypeError:
        raise TypeError(f"a {kind} name is a str or an int id, not {type(name).__name__}") from None
    if not 0 <= value <= MAX_ID:
        raise QueryError(f"{kind} id {value} is outside [0, 2**63 - 1]")
    return value


class Query:
    """Base class of every query node. Nodes are immutable and compare by value."""

    __slots__ = ("_hash", "depth", "_text")
    _hash: int
    depth: int
    _text: str | None

    def __init__(self) -> None:
        raise TypeError("Query is abstract: build a Term, And, Or, Not or Project")

    def _init(self, fields: tuple, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise QueryError(f"query is nested {depth} deep, more than MAX_DEPTH = {MAX_DEPTH}")
        object.__setattr__(self, "_hash", hash((type(self).__name__, fields)))
        object.__setattr__(self, "depth", depth)
        object.__setattr__(self, "_text", None)

    @property
    def children(self) -> tuple[Query, ...]:
        """The direct sub-queries, in order."""
        return ()

    def _fields(self) -> tuple:
        """The constructor arguments; they define equality, hashing and pickling."""
        raise NotImplementedError

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Query):
            return NotImplemented
        return type(self) is type(other) and self._hash == other._hash and self._fields() == other._fields()

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self):
        return (type(self), self._fields())

    def __str__(self) -> str:
        """The canonical text form: ``parse(str(q)) == q``."""
        if self._text is None:
            from .syntax import format_query

            object.__setattr__(self, "_text", format_query(self))
        return self._text  # type: ignore[return-value]

    def __and__(self, other: Query) -> And:
        """``a & b``: an ``And`` over the operands of both sides (``And`` operands are spliced)."""
        if not isinstance(other, Query):
            return NotImplemented
        return And(*_spliced(And, self), *_spliced(And, other))

    def __or__(self, other: Query) -> Or:
        """``a | b``: an ``Or`` over the operands of both sides (``Or`` operands are spliced)."""
        if not isinstance(other, Query):
            return NotImplemented
        return Or(*_spliced(Or, self), *_spliced(Or, other))

    def __invert__(self) -> Not:
        """``~a``: ``Not(a)``."""
        return Not(self)


def _spliced(cls: type, query: Query) -> tuple[Query, ...]:
    return query.operands if type(query) is cls else (query,)  # type: ignore[attr-defined]


def _check_query(value: object, where: str) -> Query:
    if not isinstance(value, Query):
        raise TypeError(f"{where} takes queries, not {type(value).__name__}")
    return value


class Term(Query):
    """A leaf: the items that match ``name`` (a word, a phrase, or an entity id)."""

    __slots__ = ("name",)
    name: str | int

    def __init__(self, name: str | int) -> None:
        object.__setattr__(self, "name", normalize_name(name, "term"))
        self._init((self.name,), 1)

    def _fields(self) -> tuple:
        return (self.name,)

    def __repr__(self) -> str:
        return f"Term({self.name!r})"


class Not(Query):
    """The complement of ``operand`` within the item universe."""

    __slots__ = ("operand",)
    operand: Query

    def __init__(self, operand: Query) -> None:
        object.__setattr__(self, "operand", _check_query(operand, "Not"))
        self._init((operand,), operand.depth + 1)

    @property
    def children(self) -> tuple[Query, ...]:
        return (self.operand,)

    def _fields(self) -> tuple:
        return (self.operand,)

    def __repr__(self) -> str:
        return f"Not({self.operand!r})"


class Project(Query):
    """The items reached by one ``relation`` edge from any item of ``operand``."""

    __slots__ = ("relation", "operand")
    relation: str | int
    operand: Query

    def __init__(self, relation: str | int, operand: Query) -> None:
        object.__setattr__(self, "relation", normalize_name(relation, "relation"))
        object.__setattr__(self, "operand", _check_query(operand, "Project"))
        self._init((self.relation, operand), operand.depth + 1)

    @property
    def children(self) -> tuple[Query, ...]:
        return (self.operand,)

    def _fields(self) -> tuple:
        return (self.relation, self.operand)

    def __repr__(self) -> str:
        return f"Project({self.relation!r}, {self.operand!r})"


class _NAry(Query):
    __slots__ = ("operands",)
    operands: tuple[Query, ...]

    def __init__(self, *operands: Query) -> None:
        name = type(self).__name__
        if len(operands) < 2:
            raise QueryError(f"{name} needs at least two operands, got {len(operands)}")
        for operand in operands:
            _check_query(operand, name)
        object.__setattr__(self, "operands", operands)
        self._init(operands, 1 + max(operand.depth for operand in operands))

    @property
    def children(self) -> tuple[Query, ...]:
        return self.operands

    def _fields(self) -> tuple:
        return self.operands

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.operands))})"


class And(_NAry):
    """The intersection of two or more queries."""

    __slots__ = ()


class Or(_NAry):
    """The union of two or more queries."""

    __slots__ = ()
