"""Query text: the parser and the canonical printer.

Grammar (``not`` binds tighter than ``and``, which binds tighter than ``or``)::

    query    := and_expr ( ("or" | "|") and_expr )*
    and_expr := not_expr ( ("and" | "&") not_expr )*
    not_expr := ("not" | "~") not_expr | atom
    atom     := "(" query ")" | "@" name "(" query ")" | term
    term     := ( word | quoted )+          adjacent words form one multi-word term
    name     := word | quoted               a relation name; "#" digits is an int id

A *word* is a run of characters other than whitespace, ``( ) & | ~ "``, and not
starting with ``@``. ``and``/``or``/``not`` are operators in any case, unless quoted. A
*quoted* phrase is ``"..."`` with ``\\"`` and ``\\\\`` as escapes. A term that is a single
unquoted word ``#`` + digits (``#17``) is the integer id 17; anything else is text, its
whitespace collapsed to one space. ``@hypernym(dog)`` is ``Project("hypernym",
Term("dog"))``.

The parser is iterative (an explicit stack of open groups), so nesting costs no
recursion: groups nested deeper than ``MAX_DEPTH`` are a :class:`QueryError`, and a
query of any length parses in time linear in its length.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator
from typing import NamedTuple

from .errors import QueryError
from .nodes import MAX_DEPTH, MAX_ID, And, Name, Not, Or, Project, Query, Term, normalize_name

_WORD_PATTERN = r'[^\s()&|~"@][^\s()&|~"]*'
_QUOTED_PATTERN = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
_WORD = re.compile(_WORD_PATTERN)
_ID = re.compile(r"#([0-9]+)")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
# One token after optional whitespace; every position matches exactly one alternative.
_TOKEN = re.compile(
    rf"""\s*(?:
        (?P<op>[()&|~])
      | (?P<word>{_WORD_PATTERN})
      | {_QUOTED_PATTERN.replace("(", "(?P<quoted>", 1)}
      | @(?:{_QUOTED_PATTERN.replace("(", "(?P<relquoted>", 1)}|(?P<relword>{_WORD_PATTERN}))
      | (?P<bad>["@])
      | (?P<end>\Z)
    )""",
    re.VERBOSE | re.DOTALL,
)
_OPERATOR_WORDS = {"and": "and", "or": "or", "not": "not"}
_OPERATOR_CHARS = {"&": "and", "|": "or", "~": "not", "(": "(", ")": ")"}


class _Token(NamedTuple):
    kind: str  # "word" | "quoted" | "rel" | "and" | "or" | "not" | "(" | ")" | "end"
    value: object  # the word, the unescaped phrase, or the relation name
    start: int  # 0-based offset of the token in the text
    name_start: int  # for "rel": offset of the name after "@"; else unused


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "end of query"
    if token.kind == "rel":
        return f"'@{format_name(token.value, 'relation')}'"  # type: ignore[arg-type]
    if token.kind in ("word", "quoted"):
        return f"term {token.value!r}"
    return f"'{token.kind}'"


def _tokens(text: str) -> Iterator[_Token]:
    for match in _TOKEN.finditer(text):
        group = match.lastgroup
        if group == "word":
            word = match.group(group)
            yield _Token(_OPERATOR_WORDS.get(word.lower(), "word"), word, match.start(group), 0)
        elif group == "op":
            char = match.group(group)
            yield _Token(_OPERATOR_CHARS[char], char, match.start(group), 0)
        elif group == "quoted":
            start = match.start(group) - 1
            yield _Token("quoted", _unescape(match.group(group)), start, 0)
        elif group == "relword":
            start = match.start(group)
            yield _Token("rel", _word_name(match.group(group), "relation", text, start), start - 1, start)
        elif group == "relquoted":
            start = match.start(group) - 1
            name = _name(_unescape(match.group(group)), "relation", text, start)
            yield _Token("rel", name, start - 1, start)
        elif group == "bad":
            start = match.start(group)
            if match.group(group) == "@" and not text.startswith('"', start + 1):
                raise QueryError("expected a relation name after '@'", text, start + 2)
            quote = start + (match.group(group) == "@")
            raise QueryError("unterminated quoted phrase: no closing '\"'", text, quote + 1)
        else:
            yield _Token("end", None, len(text), 0)
            return


def _unescape(phrase: str) -> str:
    return _ESCAPE.sub(lambda m: m.group(1), phrase) if "\\" in phrase else phrase


def _name(value: str, kind: str, text: str, pos: int) -> str:
    try:
        return normalize_name(value, kind)  # type: ignore[return-value]
    except QueryError as error:
        raise QueryError(error.message, text, pos + 1) from None


def _word_name(word: str, kind: str, text: str, pos: int) -> Name:
    """A single unquoted word as a name: ``#123`` is an int id, anything else text."""
    match = _ID.fullmatch(word)
    if match is None:
        return word
    digits = match.group(1)
    if len(digits) > 19 or int(digits) > MAX_ID:
        raise QueryError(f"{kind} id {word} is larger than 2**63 - 1", text, pos + 1)
    return int(digits)


class _Group:
    """An open group: the top level, ``( ... )`` or ``@relation( ... )``."""

    __slots__ = ("opener", "disjuncts", "conjuncts", "negations")

    def __init__(self, opener: _Token | None) -> None:
        self.opener = opener
        self.disjuncts: list[Query] = []  # finished and-expressions of this group
        self.conjuncts: list[Query] = []  # finished operands of the current and-expression
        self.negations: list[_Token] = []  # pending 'not's for the next operand


def parse(text: str, *, relations: Collection[Name] | None = None) -> Query:
    """Parse query text into a :class:`Query`.

    ``relations``, when given, is the set of known relation names; any other
    ``@name(...)`` is a :class:`QueryError` naming the closest known ones. Every
    malformed input raises :class:`QueryError` with the column of the problem.

    >>> parse("fire tv and (alexa or echo)")
    And(Term('fire tv'), Or(Term('alexa'), Term('echo')))
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() takes a str, not {type(text).__name__}")
    known = None if relations is None else {normalize_name(r, "relation") for r in relations}
    return _Parser(text, known).run()


class _Parser:
    def __init__(self, text: str, known_relations: set[Name] | None) -> None:
        self.text = text
        self.known = known_relations
        self.tokens = _tokens(text)
        self.groups = [_Group(None)]

    def error(self, message: str, offset: int) -> QueryError:
        return QueryError(message, self.text, offset + 1)

    def build(self, token: _Token, factory: type[Query], *args: object) -> Query:
        """Build a node; a construction error (nesting too deep) points at ``token``."""
        try:
            return factory(*args)  # type: ignore[call-arg]
        except QueryError as error:
            raise self.error(error.message, token.start) from None

    def run(self) -> Query:
        expect_operand = True
        pending: _Token | None = None  # the binary operator still waiting for its right side
        token = next(self.tokens)
        while True:
            group = self.groups[-1]
            kind = token.kind
            if expect_operand:
                if kind in ("word", "quoted"):
                    token = self.term(token)
                    pending, expect_operand = None, False
                    continue
                if kind == "not":
                    if len(self.groups) + len(group.negations) >= MAX_DEPTH:
                        raise self.error(f"nesting deeper than MAX_DEPTH = {MAX_DEPTH}", token.start)
                    group.negations.append(token)
                elif kind in ("(", "rel"):
                    self.open(token)
                    pending = None
                else:
                    raise self.missing_operand(token, group, pending)
            elif kind == "and":
                pending, expect_operand = token, True
            elif kind == "or":
                group.disjuncts.append(self.conjunction(group, token))
                pending, expect_operand = token, True
            elif kind == ")":
                if group.opener is None:
                    raise self.error("unexpected ')': no '(' to close", token.start)
                self.groups.pop()
                query = self.close(group, token)
                if group.opener.kind == "rel":
                    query = self.build(token, Project, group.opener.value, query)
                self.operand(query)
            elif kind == "end":
                if group.opener is not None:
                    raise self.unclosed(group.opener)
                return self.close(group, token)
            else:
                raise self.missing_operator(token, group)
            token = next(self.tokens)

    def term(self, first: _Token) -> _Token:
        """Read the words and phrases of one term; return the token after it."""
        parts = [first]
        token = next(self.tokens)
        while token.kind in ("word", "quoted"):
            parts.append(token)
            token = next(self.tokens)
        if len(parts) == 1 and first.kind == "word":
            name = _word_name(first.value, "term", self.text, first.start)  # type: ignore[arg-type]
        else:
            name = _name(" ".join(p.value for p in parts), "term", self.text, first.start)  # type: ignore[misc]
        self.operand(Term(name))
        return token

    def open(self, token: _Token) -> None:
        """Open a group at ``(`` or ``@relation(``."""
        if token.kind == "rel":
            if self.known is not None and token.value not in self.known:
                raise self.error(self.unknown_relation(token.value), token.name_start)  # type: ignore[arg-type]
            paren = next(self.tokens)
            if paren.kind != "(":
                raise self.error(f"expected '(' after {_describe(token)}", paren.start)
        if len(self.groups) >= MAX_DEPTH:
            raise self.error(f"parentheses nested deeper than MAX_DEPTH = {MAX_DEPTH}", token.start)
        self.groups.append(_Group(token))

    def operand(self, query: Query) -> None:
        """Add a finished operand to the current group, under its pending 'not's."""
        group = self.groups[-1]
        for negation in reversed(group.negations):
            query = self.build(negation, Not, query)
        group.negations.clear()
        group.conjuncts.append(query)

    def conjunction(self, group: _Group, token: _Token) -> Query:
        conjuncts, group.conjuncts = group.conjuncts, []
        return conjuncts[0] if len(conjuncts) == 1 else self.build(token, And, *conjuncts)

    def close(self, group: _Group, token: _Token) -> Query:
        group.disjuncts.append(self.conjunction(group, token))
        disjuncts = group.disjuncts
        return disjuncts[0] if len(disjuncts) == 1 else self.build(token, Or, *disjuncts)

    def missing_operator(self, token: _Token, group: _Group) -> QueryError:
        """The error for ``token`` where 'and', 'or' or ')' was expected."""
        expected = "'and' or 'or'" if group.opener is None else "'and', 'or' or ')'"
        hint = " (did you mean 'and not'?)" if token.kind == "not" else ""
        return self.error(f"unexpected {_describe(token)}: expected {expected}{hint}", token.start)

    def missing_operand(self, token: _Token, group: _Group, pending: _Token | None) -> QueryError:
        """The error for ``token`` where an operand was expected."""
        if group.negations:
            return self.error("'not' has no operand", group.negations[-1].start)
        if pending is not None:
            if token.kind in ("end", ")"):
                return self.error(f"'{pending.kind}' has no right operand", pending.start)
            return self.error(f"unexpected {_describe(token)} after '{pending.kind}'", token.start)
        if token.kind in ("and", "or"):
            return self.error(f"'{token.kind}' has no left operand", token.start)
        if group.opener is None:
            if token.kind == ")":
                return self.error("unexpected ')': no '(' to close", token.start)
            return self.error("empty query", 0)
        if token.kind == ")":
            return self.error("empty parentheses", group.opener.start)
        return self.unclosed(group.opener)

    def unclosed(self, opener: _Token) -> QueryError:
        opened = "'('" if opener.kind == "(" else f"{_describe(opener)[:-1]}('"
        return self.error(f"unclosed {opened}: no ')' to close it", opener.start)

    def unknown_relation(self, name: Name) -> str:
        message = f"unknown relation {format_name(name, 'relation')!r}"
        candidates = {str(r): r for r in self.known or ()}
        close = difflib.get_close_matches(str(name), candidates, n=3)
        if close:
            suggestions = (repr(format_name(candidates[c], "relation")) for c in close)
            message += "; did you mean " + " or ".join(suggestions) + "?"
        return message


# --- printing ---------------------------------------------------------------------


def format_name(name: Name, kind: str = "term") -> str:
    """A name as query text: ``#17`` for an id, else bare words, or a quoted phrase where needed.

    A relation name (``kind="relation"``) is bare only when it is a single word.
    """
    if isinstance(name, int):
        return f"#{name}"
    words = name.split(" ")
    if (
        _ID.fullmatch(name) is None
        and (kind == "term" or len(words) == 1)
        and all(_WORD.fullmatch(word) and word.lower() not in _OPERATOR_WORDS for word in words)
    ):
        return name
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def format_query(query: Query) -> str:
    """The canonical text of ``query``: lower-case operators, minimal parentheses.

    Parentheses appear only where precedence needs them and around an ``And`` directly
    inside an ``And`` (or ``Or`` inside ``Or``), so the nesting survives a round trip.
    """
    out: list[str] = []
    _emit(query, out)
    return "".join(out)


def _emit(query: Query, out: list[str]) -> None:
    if isinstance(query, Term):
        out.append(format_name(query.name))
    elif isinstance(query, Project):
        out.append(f"@{format_name(query.relation, 'relation')}(")
        _emit(query.operand, out)
        out.append(")")
    elif isinstance(query, Not):
        out.append("not ")
        _emit_operand(query.operand, out, parenthesize=(And, Or))
    elif isinstance(query, And):
        for i, operand in enumerate(query.operands):
            if i:
                out.append(" and ")
            _emit_operand(operand, out, parenthesize=(And, Or))
    elif isinstance(query, Or):
        for i, operand in enumerate(query.operands):
            if i:
                out.append(" or ")
            _emit_operand(operand, out, parenthesize=(Or,))
    else:
        raise TypeError(f"not a query: {query!r}")


def _emit_operand(query: Query, out: list[str], parenthesize: tuple[type, ...]) -> None:
    if isinstance(query, parenthesize):
        out.append("(")
        _emit(query, out)
        out.append(")")
    else:
        _emit(query, out)
