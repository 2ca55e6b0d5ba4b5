"""Knowledge-graph query structures and the BetaE / Query2Box tuple encoding.

The standard complex-query benchmarks (Query2Box, BetaE: FB15k, FB15k-237, NELL995)
name fourteen structures: paths ``1p 2p 3p``, intersections ``2i 3i``, their mixes
``ip pi``, unions ``2u up`` and negations ``2in 3in inp pin pni``. Each is a
:class:`KGStructure` in :data:`query_structures`, callable with the entity and relation
ids of one query.

Their released files (``*-queries.pkl``) key queries by a nested-tuple *structure*
and store each query as the same tuple with ids in place of the letters:

- ``(anchor, (r1, r2, ...))`` is a path: start at the anchor (an entity, or an
  intersection / union tuple) and follow the relations in order; ``'n'`` (``-2`` in
  a concrete query) in the relation tuple negates what has been built so far.
- ``(branch1, branch2, ...)`` is the intersection of the branches.
- ``(branch1, branch2, ..., ('u',))`` is their union (``(-1,)`` in a concrete query).

:func:`from_betae` reads that encoding into a :class:`Query` and :func:`to_betae` writes
it back, so ``to_betae(from_betae(t)) == t`` for every structure and query in those
files. KGReasoning's ``'2u-DNF'`` and ``'up-DNF'`` are ``'2u'`` and ``'up'`` here; its
De Morgan encodings ``'2u-DM'`` and ``'up-DM'`` are included under those names.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

from .errors import QueryError
from .nodes import MAX_DEPTH, And, Name, Not, Or, Project, Query, Term
from .structure import RELATION_PLACEHOLDER, TERM_PLACEHOLDER, bind, bindings
from .structure import structure as _shape_of

#: The BetaE structure tuple of every named structure (KGReasoning ``query_name_dict``).
BETAE_STRUCTURES: dict[str, tuple] = {
    "1p": ("e", ("r",)),
    "2p": ("e", ("r", "r")),
    "3p": ("e", ("r", "r", "r")),
    "2i": (("e", ("r",)), ("e", ("r",))),
    "3i": (("e", ("r",)), ("e", ("r",)), ("e", ("r",))),
    "ip": ((("e", ("r",)), ("e", ("r",))), ("r",)),
    "pi": (("e", ("r", "r")), ("e", ("r",))),
    "2in": (("e", ("r",)), ("e", ("r", "n"))),
    "3in": (("e", ("r",)), ("e", ("r",)), ("e", ("r", "n"))),
    "inp": ((("e", ("r",)), ("e", ("r", "n"))), ("r",)),
    "pin": (("e", ("r", "r")), ("e", ("r", "n"))),
    "pni": (("e", ("r", "r", "n")), ("e", ("r",))),
    "2u": (("e", ("r",)), ("e", ("r",)), ("u",)),
    "up": ((("e", ("r",)), ("e", ("r",)), ("u",)), ("r",)),
    "2u-DM": ((("e", ("r", "n")), ("e", ("r", "n"))), ("n",)),
    "up-DM": ((("e", ("r", "n")), ("e", ("r", "n"))), ("n", "r")),
}

# Markers in concrete BetaE queries (KGReasoning models.py: "remove union -1", "== -2").
_UNION, _NEGATION = -1, -2


@dataclass(frozen=True)
class KGStructure:
    """A named query structure; calling it with ids builds one query.

    Arguments come in the order of the flattened BetaE row without markers: each
    anchor followed by the relations of its path, e.g. ``query_structures["pni"](e1,
    r1, r2, e2, r3)`` is ``(('e', ('r', 'r', 'n')), ('e', ('r',)))`` filled in.
    """

    name: str
    betae: tuple
    shape: Query = field(init=False, repr=False)
    parameters: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", from_betae(self.betae))
        kinds = _flat_kinds(self.betae)
        numbered = [f"{kind}{kinds[: i + 1].count(kind)}" for i, kind in enumerate(kinds)]
        object.__setattr__(self, "parameters", tuple(numbered))

    def __call__(self, *ids: Name) -> Query:
        if len(ids) != len(self.parameters):
            raise TypeError(
                f"{self.name} takes {len(self.parameters)} ids ({', '.join(self.parameters)}), got {len(ids)}"
            )
        entities = [i for i, p in zip(ids, self.parameters) if p[0] == "e"]
        relations = [i for i, p in zip(ids, self.parameters) if p[0] == "r"]
        return bind(self.shape, entities, relations)


def _flat_kinds(template: object) -> list[str]:
    """'e' and 'r' of a BetaE structure in flattened order, markers left out."""
    if isinstance(template, tuple):
        return [kind for item in template for kind in _flat_kinds(item)]
    return [template] if template in ("e", "r") else []


def from_betae(query: tuple, structure: tuple | None = None) -> Query:
    """Read a BetaE / Query2Box tuple: a structure (``('e', ('r',))``) or a concrete query.

    In a structure, anchors read as ``Term('e')`` and relations as ``'r'``; in a concrete
    query (``(3, (5,))``) the ids become int names. When ``structure`` is given, the
    query must have that structure. Malformed tuples raise :class:`QueryError`.
    """
    result = _read(query, 1)
    if structure is not None and _shape_of(result) != _shape_of(_read(structure, 1)):
        raise QueryError(f"{query!r} does not have the structure {structure!r}")
    return result


def _read(node: object, depth: int) -> Query:
    if depth > MAX_DEPTH:
        raise QueryError(f"BetaE tuple nested deeper than MAX_DEPTH = {MAX_DEPTH}")
    if not isinstance(node, (tuple, list)) or len(node) < 2:
        raise QueryError(f"not a BetaE query: {node!r} (expected a path, intersection or union tuple)")
    last = node[-1]
    if _is_union_marker(last):
        return Or(*(_read(branch, depth + 1) for branch in node[:-1]))
    if _is_chain(last):
        if len(node) != 2:
            raise QueryError(f"a BetaE path is (anchor, relations), got {node!r}")
        anchor = node[0]
        entity = _entity(anchor)
        if entity is not None:
            query: Query = Term(entity)
        elif isinstance(anchor, (tuple, list)) and len(anchor) >= 2 and not _is_chain(anchor[-1]):
            query = _read(anchor, depth + 1)
        else:
            raise QueryError(f"a BetaE path starts at an entity, an intersection or a union, not {anchor!r}")
        for step in last:
            query = Not(query) if _is_marker(step, "n", _NEGATION) else Project(_relation(step), query)
        return query
    return And(*(_read(branch, depth + 1) for branch in node))


def _as_int(value: object) -> int | None:
    if isinstance(value, (bool, str)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _is_marker(value: object, letter: str, number: int) -> bool:
    return value == letter if isinstance(value, str) else _as_int(value) == number


def _is_union_marker(value: object) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 1 and _is_marker(value[0], "u", _UNION)


def _is_chain(value: object) -> bool:
    """A relation tuple: relations ('r' or ids >= 0) and negations ('n' or -2)."""
    return (
        isinstance(value, (tuple, list))
        and len(value) > 0
        and all(_relation(step) is not None or _is_marker(step, "n", _NEGATION) for step in value)
    )


def _entity(value: object) -> Name | None:
    if isinstance(value, str):
        return TERM_PLACEHOLDER if value == "e" else None
    number = _as_int(value)
    return number if number is not None and number >= 0 else None


def _relation(value: object) -> Name | None:
    if isinstance(value, str):
        return RELATION_PLACEHOLDER if value == "r" else None
    number = _as_int(value)
    return number if number is not None and number >= 0 else None


def to_betae(query: Query) -> tuple:
    """Write ``query`` in the BetaE tuple encoding.

    A query whose names are all ints gives a concrete query (markers ``-1``, ``-2``);
    a structure, whose names are all the placeholders ``'e'``/``'r'``, gives a structure
    tuple (markers ``'u'``, ``'n'``). Raises :class:`QueryError` for other names and for
    queries outside the encoding (a term must start a path: ``Term`` alone or directly
    inside ``And``/``Or`` has no tuple form).
    """
    terms, relations = bindings(query)
    names = terms + relations
    if all(isinstance(name, int) for name in names):
        markers: tuple[object, object] = (_UNION, _NEGATION)
    elif all(name == TERM_PLACEHOLDER for name in terms) and all(name == RELATION_PLACEHOLDER for name in relations):
        markers = ("u", "n")
    else:
        raise QueryError(
            f"the BetaE encoding needs int ids (or only the placeholders 'e' and 'r'), got names in {query}"
        )
    return _write(query, *markers)


def _write(query: Query, union: object, negation: object) -> tuple:
    if isinstance(query, (Project, Not)):
        steps = []
        node = query
        while isinstance(node, (Project, Not)):
            steps.append(node.relation if isinstance(node, Project) else negation)
            node = node.operand
        anchor = node.name if isinstance(node, Term) else _write(node, union, negation)
        return (anchor, tuple(reversed(steps)))
    if isinstance(query, And):
        return tuple(_write(operand, union, negation) for operand in query.operands)
    if isinstance(query, Or):
        return (*(_write(operand, union, negation) for operand in query.operands), (union,))
    raise QueryError(f"{query} has no BetaE encoding: a term must start a path (be followed by a relation or 'not')")


#: The standard structures by name (see :data:`BETAE_STRUCTURES`).
query_structures: dict[str, KGStructure] = {name: KGStructure(name, t) for name, t in BETAE_STRUCTURES.items()}

_NAMES: dict[Query, str] = {s.shape: name for name, s in query_structures.items()}


def betae_name(query: Query) -> str | None:
    """The name of ``query``'s structure ('2in', 'up', ...), or None if it is not a standard one."""
    return _NAMES.get(_shape_of(query))
