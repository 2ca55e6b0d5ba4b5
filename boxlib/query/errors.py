"""Errors raised by the query algebra."""

from __future__ import annotations

# Characters of query text shown on each side of the caret; a 1 MB query is cut to this.
_CONTEXT = 40


class QueryError(ValueError):
    """A query that cannot be parsed, built, normalised or evaluated.

    When the problem sits in query text, ``text`` is that text and ``column`` the
    1-based position of the offending character in it (every character counts one
    column, newlines included). ``str(error)`` then shows the message, the text and a
    caret under the column::

        unexpected ')': no '(' to close at column 8
          fire tv)
                 ^
    """

    def __init__(self, message: str, text: str | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.text = text
        self.column = column

    def __str__(self) -> str:
        if self.text is None or self.column is None:
            return self.message
        return f"{self.message} at column {self.column}\n{_caret_lines(self.text, self.column)}"

    def __reduce__(self):  # keep text and column through pickling (multiprocessing workers)
        return (type(self), (self.message, self.text, self.column))


class DNFTooLarge(QueryError):
    """Expanding a query to disjunctive normal form would exceed ``max_terms`` conjunctions."""

    def __init__(self, message: str, max_terms: int, size: int) -> None:
        super().__init__(message)
        self.max_terms = max_terms
        self.size = size

    def __reduce__(self):
        return (type(self), (self.message, self.max_terms, self.size))


def _caret_lines(text: str, column: int) -> str:
    """Two lines: ``text`` around ``column`` (1-based) and a caret under that column.

    Whitespace (tabs, newlines) is shown as one space so the caret stays aligned, and a
    long text is cut to a window around the column, marked with ``…``.
    """
    index = min(max(column - 1, 0), len(text))
    start = max(index - _CONTEXT, 0)
    end = min(index + _CONTEXT, len(text))
    shown = "".join(" " if c.isspace() else c for c in text[start:end])
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    return f"  {prefix}{shown}{suffix}\n  {' ' * (len(prefix) + index - start)}^"
