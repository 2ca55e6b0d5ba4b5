"""Load the committed ``wordnet_artifacts`` files into a :class:`~boxlib.data.RetrievalDataset`.

The files (``data/``, built by ``scripts/build_wordnet_artifacts.py``):

* ``metadata.json``: source, counts, grading, build parameters, and the sha256 and line
  count of each data file's *uncompressed* text.
* ``items.jsonl.gz``: one item per line, in item-id order:
  ``{"key": "knife.n.01", "offset": "03623556", "title": "...", "parents": [ids]}``.
* ``terms.jsonl.gz``: one category per line:
  ``{"term": "knife", "key": "knife.n.01", "item": id, "ids": [...], "grades": [...]}``.
* ``queries.jsonl.gz``: ``{"split": "train", "query": "knife or fork", "answers": n,
  "grade_sum": s}``; the graded answers are recomputed from the terms (``and`` = minimum
  grade, ``or`` = maximum) and checked against ``answers`` and ``grade_sum``.

Every problem with a file (missing, truncated, not gzip, not JSON, a wrong field, a
checksum that does not match) raises :class:`DatasetFileError` naming the file.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import gzip
import hashlib
import importlib.resources
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from boxlib.data import SPLITS, QueryExample, RetrievalDataset
from boxlib.query import And, Or, Query, QueryError, SymbolicIndex, Term, parse

__all__ = ["DATASET_NAME", "DatasetFileError", "default_data_dir", "load_wordnet_artifacts"]

DATASET_NAME = "wordnet_artifacts"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
ITEMS_FILE = "items.jsonl.gz"
TERMS_FILE = "terms.jsonl.gz"
QUERIES_FILE = "queries.jsonl.gz"
DATA_FILES = (ITEMS_FILE, TERMS_FILE, QUERIES_FILE)
LICENSE_FILE = "LICENSE-WordNet.txt"

_HINT = (
    "Reinstall boxlib, or rebuild the files with `python scripts/build_wordnet_artifacts.py` "
    "(needs the Debian package wordnet-base)."
)


class DatasetFileError(ValueError):
    """A data file of a dataset is missing, truncated or malformed.

    :ivar path: the file.
    :ivar problem: what is wrong with it.
    """

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{DATASET_NAME}: {self.path}: {problem}. {_HINT}")


def default_data_dir() -> Path:
    """The directory of the files shipped inside the package."""
    return Path(str(importlib.resources.files(__package__).joinpath("data")))


def load_wordnet_artifacts(data_dir: str | os.PathLike[str] | None = None) -> RetrievalDataset:
    """The WordNet artifact catalog: 10,698 synsets as items, category names and their
    boolean combinations as queries, graded answers, train/valid/test splits.

    :param data_dir: a directory holding the data files; default: the files shipped
        inside the package.
    :raises DatasetFileError: a file is missing, truncated, malformed or does not match
        ``metadata.json``.

    The parsed files are cached per process (keyed by directory and the files' sizes
    and modification times). Every call returns new lists, dicts, examples and index,
    so changing the returned dataset never changes what a later call returns.
    """
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    loaded = _load_cached(str(directory.resolve()), _fingerprint(directory))
    splits = {
        split: [QueryExample(query, dict(zip(ids.tolist(), grades.tolist()))) for query, ids, grades in rows]
        for split, rows in loaded.splits.items()
    }
    index = SymbolicIndex(len(loaded.items), dict(zip(loaded.term_names, loaded.term_ids)))
    metadata = copy.deepcopy(loaded.metadata)
    metadata["data_dir"] = str(directory)
    return RetrievalDataset(DATASET_NAME, list(loaded.items), list(loaded.keys), splits, index, metadata)


# --- parsing, cached ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Loaded:
    items: tuple[str, ...]
    keys: tuple[str, ...]
    term_names: tuple[str, ...]
    term_ids: tuple[np.ndarray, ...]  # read-only
    splits: dict[str, tuple[tuple[Query, np.ndarray, np.ndarray], ...]]  # read-only arrays
    metadata: dict[str, Any]


def _fingerprint(directory: Path) -> tuple:
    """Sizes and modification times of the files, so the cache notices a rebuild."""
    stamps = []
    for name in (METADATA_FILE, *DATA_FILES):
        try:
            stat = (directory / name).stat()
            stamps.append((name, stat.st_size, stat.st_mtime_ns))
        except OSError:
            stamps.append((name, None, None))
    return tuple(stamps)


@functools.lru_cache(maxsize=4)
def _load_cached(directory: str, fingerprint: tuple) -> _Loaded:
    del fingerprint  # part of the cache key only
    return _parse(Path(directory))


def _parse(directory: Path) -> _Loaded:
    metadata = _read_metadata(directory / METADATA_FILE)
    files = metadata["files"]

    items_path = directory / ITEMS_FILE
    keys: list[str] = []
    titles: list[str] = []

    def item(row: dict[str, Any]) -> None:
        keys.append(_field(row, "key", str))
        titles.append(_field(row, "title", str))

    _each(items_path, _read_jsonl(items_path, files), item)
    n_items = len(titles)
    if n_items != metadata["counts"].get("items"):
        raise DatasetFileError(items_path, f"{n_items} items, but metadata.json says {metadata['counts'].get('items')}")

    terms_path = directory / TERMS_FILE
    term_rows = _read_jsonl(terms_path, files)
    term_names: list[str] = []
    term_ids: list[np.ndarray] = []
    grades = np.zeros((len(term_rows), n_items), dtype=np.uint8)

    def term(row: dict[str, Any]) -> None:
        name = _field(row, "term", str)
        ids = np.asarray(_field(row, "ids", list), dtype=np.int64)
        values = np.asarray(_field(row, "grades", list), dtype=np.int64)
        if ids.ndim != 1 or ids.shape != values.shape or ids.size == 0:
            raise ValueError("'ids' and 'grades' must be non-empty lists of ints of equal length")
        if ids.min() < 0 or ids.max() >= n_items or values.min() < 1 or values.max() > 255:
            raise ValueError(f"an item id outside 0..{n_items - 1} or a grade outside 1..255")
        grades[len(term_names), ids] = values
        ids.setflags(write=False)
        term_names.append(name)
        term_ids.append(ids)

    _each(terms_path, term_rows, term)
    rows_of_term = {name: i for i, name in enumerate(term_names)}
    if len(rows_of_term) != len(term_names):
        raise DatasetFileError(terms_path, "a term name occurs twice")

    queries_path = directory / QUERIES_FILE
    splits: dict[str, list[tuple[Query, np.ndarray, np.ndarray]]] = {split: [] for split in SPLITS}

    def example(row: dict[str, Any]) -> None:
        split = _field(row, "split", str)
        if split not in splits:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        text = _field(row, "query", str)
        try:
            query = parse(text)
            dense = _dense_grades(query, grades, rows_of_term)
        except QueryError as error:
            raise ValueError(f"query {text!r}: {error.message}") from None
        ids = np.flatnonzero(dense)
        values = dense[ids]
        answers, grade_sum = _field(row, "answers", int), _field(row, "grade_sum", int)
        if ids.size != answers or int(values.sum(dtype=np.int64)) != grade_sum:
            raise ValueError(
                f"query {text!r} has {ids.size} answers with grade sum {int(values.sum(dtype=np.int64))} "
                f"by the terms file, but the line says {answers} and {grade_sum}"
            )
        ids.setflags(write=False)
        values.setflags(write=False)
        splits[split].append((query, ids, values))

    _each(queries_path, _read_jsonl(queries_path, files), example)
    return _Loaded(
        items=tuple(titles),
        keys=tuple(keys),
        term_names=tuple(term_names),
        term_ids=tuple(term_ids),
        splits={split: tuple(rows) for split, rows in splits.items()},
        metadata=metadata,
    )


def _dense_grades(query: Query, grades: np.ndarray, rows: dict) -> np.ndarray:
    """Grades of every item for ``query``: ``and`` = minimum, ``or`` = maximum, 0 = no answer."""
    if isinstance(query, Term):
        row = rows.get(query.name)
        if row is None:
            raise QueryError(f"unknown term {query.name!r}")
        return grades[row]
    if isinstance(query, (And, Or)):
        parts = [_dense_grades(operand, grades, rows) for operand in query.operands]
        return (np.minimum if isinstance(query, And) else np.maximum).reduce(parts)
    raise QueryError(f"unsupported query node {type(query).__name__} in {query}")


# --- file access with clear errors -------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DatasetFileError(path, "the file is missing") from None
    except OSError as error:
        raise DatasetFileError(path, f"cannot be read ({error.strerror or error})") from None


def _read_metadata(path: Path) -> dict[str, Any]:
    try:
        metadata = json.loads(_read_bytes(path).decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DatasetFileError(path, f"not UTF-8 text (bad byte at offset {error.start})") from None
    except json.JSONDecodeError as error:
        raise DatasetFileError(
            path, f"malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    if not isinstance(metadata, dict):
        raise DatasetFileError(path, "expected a JSON object")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetFileError(path, f"format version {version!r}; this boxlib reads version {FORMAT_VERSION}")
    files = metadata.get("files")
    if not isinstance(files, dict) or not isinstance(metadata.get("counts"), dict):
        raise DatasetFileError(path, "expected objects 'files' and 'counts'")
    for name in DATA_FILES:
        entry = files.get(name)
        if not (
            isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("lines"), int)
        ):
            raise DatasetFileError(path, f"'files' has no sha256 and line count for {name}")
    return metadata


def _read_jsonl(path: Path, files: dict[str, Any]) -> list[Any]:
    """The JSON values of a gzip JSON-lines file, after checking it against metadata.json."""
    raw = _read_bytes(path)
    if not raw:
        raise DatasetFileError(path, "the file is empty")
    try:
        text = gzip.decompress(raw)
    except EOFError:
        raise DatasetFileError(path, "truncated: the gzip stream ends early") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as error:
        raise DatasetFileError(path, f"not a valid gzip file ({error})") from None
    expected = files[path.name]
    if hashlib.sha256(text).hexdigest() != expected["sha256"]:
        lines = text.count(b"\n")
        detail = f"; {lines} lines, expected {expected['lines']}" if lines != expected["lines"] else ""
        raise DatasetFileError(
            path, f"the content does not match the sha256 in {METADATA_FILE} (edited or corrupted{detail})"
        )
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetFileError(path, f"not UTF-8 text (bad byte at offset {error.start})") from None
    lines = decoded.splitlines()
    try:
        return json.loads("[" + ",".join(lines) + "]")  # one call: fast
    except json.JSONDecodeError:
        pass
    for number, line in enumerate(lines, 1):  # find the bad line
        try:
            json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetFileError(
                path, f"line {number}: malformed JSON ({error.msg} at column {error.colno})"
            ) from None
    raise DatasetFileError(path, "malformed JSON lines")


def _each(path: Path, rows: list[Any], handle: Callable[[dict[str, Any]], None]) -> None:
    """``handle(row)`` for every row; a ``KeyError``, ``TypeError`` or ``ValueError`` it
    raises becomes a :class:`DatasetFileError` naming the file and line."""
    for number, row in enumerate(rows, 1):
        try:
            if not isinstance(row, dict):
                raise ValueError(f"expected a JSON object, got {type(row).__name__}")
            handle(row)
        except (KeyError, TypeError, ValueError) as error:
            message = f"missing field {error}" if isinstance(error, KeyError) else str(error)
            raise DatasetFileError(path, f"line {number}: {message}") from None


def _field(row: dict[str, Any], name: str, kind: type | Callable) -> Any:
    value = row[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"field {name!r} should be {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value
