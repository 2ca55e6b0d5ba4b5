"""boxlib query algebra: AST, parser, normal forms, symbolic and embedding evaluation.

>>> from boxlib.query import parse, Term
>>> q = parse("fire tv and not kindle")
>>> q == Term("fire tv") & ~Term("kindle")
True
>>> str(q)
'fire tv and not kindle'

See ``docs/queries.md`` for the text grammar, normal forms, exact evaluation and the
knowledge-graph structures.
"""

from .dnf import DEFAULT_MAX_TERMS, DNF, Conjunction, from_dnf, operand_removals, to_dnf
from .errors import DNFTooLarge, QueryError
from .execute import QueryEmbedder, QueryExecutor, TableEmbedder
from .kg import BETAE_STRUCTURES, KGStructure, betae_name, from_betae, query_structures, to_betae
from .nodes import MAX_DEPTH, And, Name, Not, Or, Project, Query, Term
from .structure import RELATION_PLACEHOLDER, TERM_PLACEHOLDER, bind, bindings, structure
from .symbolic import SymbolicIndex
from .syntax import format_name, parse

__all__ = [
    "BETAE_STRUCTURES",
    "DEFAULT_MAX_TERMS",
    "DNF",
    "MAX_DEPTH",
    "RELATION_PLACEHOLDER",
    "TERM_PLACEHOLDER",
    "And",
    "Conjunction",
    "DNFTooLarge",
    "KGStructure",
    "Name",
    "Not",
    "Or",
    "Project",
    "Query",
    "QueryEmbedder",
    "QueryError",
    "QueryExecutor",
    "SymbolicIndex",
    "TableEmbedder",
    "Term",
    "betae_name",
    "bind",
    "bindings",
    "format_name",
    "from_betae",
    "from_dnf",
    "operand_removals",
    "parse",
    "query_structures",
    "structure",
    "to_betae",
    "to_dnf",
]
