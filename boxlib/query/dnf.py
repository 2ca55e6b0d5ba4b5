"""Disjunctive normal form: any query as a union of conjunctions of literals.

A *literal* is ``Term``, ``Project(r, body)``, or the ``Not`` of either. Negation is
pushed to the literals with De Morgan's laws and double negations cancel. Projection
distributes over union, ``Project(r, a | b) == Project(r, a) | Project(r, b)``, so the
body of a projection literal is itself one conjunction (a literal, or an ``And`` of
literals); it does not distribute over intersection, and a negation cannot pass
through it, so ``Not(Project(...))`` is a literal. This is the rewriting that turns the
knowledge-graph ``up`` query into two ``2p`` branches.

Simplification: nested ``And``/``Or`` are flattened, duplicate literals and duplicate
conjunctions removed, and a conjunction that contains another is absorbed
(``a | (a & b) == a``). Contradictions (``a & ~a``) and tautologies (``a | ~a``) are
kept: dropping them would need constants for the empty set and the universe, which
have no region.

The result is canonical: literals inside a conjunction, and the conjunctions, are
sorted (by length, then text), so queries equal up to associativity, commutativity,
idempotence and absorption of their operators have equal DNFs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import groupby
from typing import TypeAlias

from .errors import DNFTooLarge, QueryError
from .nodes import And, Not, Or, Project, Query, Term

Conjunction: TypeAlias = tuple[Query, ...]
DNF: TypeAlias = tuple[Conjunction, ...]

#: Default bound on the number of conjunctions while expanding.
DEFAULT_MAX_TERMS = 10_000

_Clause = frozenset  # a conjunction while expanding: a set of literals


def to_dnf(query: Query, *, max_terms: int = DEFAULT_MAX_TERMS) -> DNF:
    """``query`` as a tuple of conjunctions, each a tuple of literals.

    Expansion is exponential in the worst case (``(a1 | b1) & ... & (an | bn)`` has
    2**n conjunctions); when any intermediate result would exceed ``max_terms``
    conjunctions this raises :class:`DNFTooLarge` instead of exhausting memory.
    """
    if max_terms < 1:
        raise ValueError(f"max_terms must be at least 1, got {max_terms}")
    clauses = _Expander(max_terms).expand(query)
    ordered = [tuple(sorted(clause, key=str)) for clause in clauses]
    ordered.sort(key=lambda conjunction: (len(conjunction), [str(lit) for lit in conjunction]))
    return tuple(ordered)


def from_dnf(dnf: DNF) -> Query:
    """The query ``Or(And(*c1), And(*c2), ...)``, without one-operand ``And``/``Or``."""
    if not dnf or not all(dnf):
        raise QueryError("a DNF needs at least one conjunction, each of at least one literal")
    branches = [_conjunction_query(conjunction) for conjunction in dnf]
    return branches[0] if len(branches) == 1 else Or(*branches)


def _conjunction_query(literals: tuple[Query, ...]) -> Query:
    return literals[0] if len(literals) == 1 else And(*literals)


def _negate(literal: Query) -> Query:
    return literal.operand if isinstance(literal, Not) else Not(literal)


class _Expander:
    """One DNF expansion; sub-queries that repeat are expanded once."""

    def __init__(self, max_terms: int) -> None:
        self.max_terms = max_terms
        self.memo: dict[Query, list[_Clause]] = {}

    def expand(self, query: Query) -> list[_Clause]:
        clauses = self.memo.get(query)
        if clauses is None:
            clauses = self._expand(query)
            self.memo[query] = clauses
        return clauses

    def _expand(self, query: Query) -> list[_Clause]:
        if isinstance(query, Term):
            return [_Clause((query,))]
        if isinstance(query, Project):
            return [
                _Clause((Project(query.relation, _conjunction_query(tuple(sorted(clause, key=str)))),))
                for clause in self.expand(query.operand)
            ]
        if isinstance(query, Or):
            clauses = [clause for operand in query.operands for clause in self.expand(operand)]
            self.check(len(clauses), query)
            return _absorb(clauses)
        if isinstance(query, And):
            clauses = [_Clause()]
            for operand in query.operands:
                clauses = self.product(clauses, self.expand(operand), query)
            return clauses
        if isinstance(query, Not):
            # not (C1 or ... or Cn) == (not C1) and ... and (not Cn), and
            # not (l1 and ... and lk) == (not l1) or ... or (not lk).
            clauses = [_Clause()]
            for clause in self.expand(query.operand):
                clauses = self.product(clauses, [_Clause((_negate(lit),)) for lit in clause], query)
            return clauses
        raise TypeError(f"not a query: {query!r}")

    def product(self, left: list[_Clause], right: list[_Clause], where: Query) -> list[_Clause]:
        """All unions of a clause from ``left`` with one from ``right``, absorbed."""
        self.check(len(left) * len(right), where)
        return _absorb([a | b for a in left for b in right])

    def check(self, size: int, where: Query) -> None:
        if size > self.max_terms:
            text = str(where)
            if len(text) > 80:
                text = text[:77] + "..."
            raise DNFTooLarge(
                f"disjunctive normal form needs {size} conjunctions at {text!r}, "
                f"more than max_terms = {self.max_terms}; raise max_terms or simplify the query",
                max_terms=self.max_terms,
                size=size,
            )


def _absorb(clauses: list[_Clause]) -> list[_Clause]:
    """Drop duplicate clauses and every clause that contains another one.

    Only a strictly smaller clause can absorb, so clauses are taken in groups of
    equal size, smallest first, and checked against the kept clauses of the smaller
    sizes only: clauses of one size (a product of disjoint choices) cost no subset
    tests at all. Kept clauses are indexed under their rarest literal, and D can absorb
    C only if D's index literal is in C, which keeps the candidate lists short.
    """
    unique = list(dict.fromkeys(clauses))
    if len(unique) < 2:
        return unique
    frequency = Counter(literal for clause in unique for literal in clause)
    index: defaultdict[Query, list[_Clause]] = defaultdict(list)
    kept: list[_Clause] = []
    unique.sort(key=len)
    for _, group in groupby(unique, key=len):
        survivors = [
            clause
            for clause in group
            if not any(other <= clause for literal in clause for other in index.get(literal, ()))
        ]
        for clause in survivors:
            index[min(clause, key=frequency.__getitem__)].append(clause)
        kept.extend(survivors)
    return kept


def operand_removals(query: Query) -> Iterator[Query]:
    """Every query obtained by deleting one operand of one ``And`` / ``Or`` somewhere in
    ``query`` (an n-ary node left with one operand becomes that operand).

    A query is *irredundant* over an index when none of these has its answer set: the
    dataset builders use it to keep only queries whose every operand matters.
    """
    if isinstance(query, (And, Or)):
        operands = query.operands
        for i, operand in enumerate(operands):
            rest = operands[:i] + operands[i + 1 :]
            yield rest[0] if len(rest) == 1 else type(query)(*rest)
            for smaller in operand_removals(operand):
                yield type(query)(*operands[:i], smaller, *operands[i + 1 :])
    elif isinstance(query, Not):
        for smaller in operand_removals(query.operand):
            yield Not(smaller)
    elif isinstance(query, Project):
        for smaller in operand_removals(query.operand):
            yield Project(query.relation, smaller)
