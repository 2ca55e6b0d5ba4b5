"""The BetaE / Query2Box release format: read it safely, write it, turn it into a dataset.

A release is a directory as published by snap-stanford/KGReasoning (``FB15k-237-betae``,
``FB15k-betae``, ``NELL-betae``) or written by :func:`write_release`:

=================================  =========================================================
``stats.txt``                      ``numentity: N`` and ``numrelations: M`` (one per line)
``{train,valid,test}-queries.pkl`` structure tuple → set of query tuples (``defaultdict(set)``)
``train-answers.pkl``              query tuple → set of entity ids (answers on the train graph)
``{valid,test}-easy-answers.pkl``  query tuple → answers already reachable on the smaller graph
``{valid,test}-hard-answers.pkl``  query tuple → answers that need a held-out edge
``id2ent.pkl`` / ``ent2id.pkl``    optional: entity id ↔ name (``id2rel`` / ``rel2id`` alike)
``{train,valid,test}.txt``         optional: ``head<TAB>relation<TAB>tail`` id triples
``info.json``                      optional (boxlib's generator): parameters and counts
=================================  =========================================================

Queries use the tuple encoding of :mod:`boxlib.query.kg` (``(anchor, (r1, r2))`` paths,
intersections as tuples of branches, ``(-1,)`` closing a union, ``-2`` a negation).
Relation ids come in inverse pairs: ``2k`` is a relation and ``2k + 1`` its reciprocal
(KGReasoning's indexing), which is how an index of the full graph is built from
triples files that hold one direction only.

Pickles are read with :class:`RestrictedUnpickler`, which builds only the plain
containers these files hold and refuses any other class *before* it is created, so a
malicious file cannot run code. Every problem (missing, truncated or tampered file, wrong
type, unknown structure, id out of range) raises :class:`KGFileError` naming the file.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import io
import json
import os
import pickle
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from boxlib.query.kg import BETAE_STRUCTURES

__all__ = [
    "KG_METRICS",
    "POSITIVE_STRUCTURES",
    "SPLITS",
    "BetaERelease",
    "KGFileError",
    "RestrictedUnpickler",
    "load_dataset",
    "load_pickle",
    "read_release",
    "release_to_dataset",
    "write_release",
]

SPLITS = ("train", "valid", "test")
#: The structures without negation that Query2Box answers (BetaE's evaluation set).
POSITIVE_STRUCTURES = ("1p", "2p", "3p", "2i", "3i", "ip", "pi", "2u", "up")
#: The metrics of the Query2Box / BetaE papers (filtered ranks of the hard answers).
KG_METRICS = ("filtered_mrr", "filtered_hits@1", "filtered_hits@3", "filtered_hits@10")

#: Generator parameters and counts, written next to the release files (plain JSON).
INFO_FILE = "info.json"

#: Structure tuple → name, for every structure a release may hold.
STRUCTURE_NAMES: dict[tuple, str] = {t: name for name, t in BETAE_STRUCTURES.items()}


class KGFileError(ValueError):
    """A knowledge-graph file that cannot be used; the message names the file, the problem and the fix."""


# --- restricted unpickling --------------------------------------------------------------------

#: The only globals a release pickle may name: the containers and scalars it is made of.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("builtins", "dict"): dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "int"): int,
    ("builtins", "str"): str,
    ("collections", "defaultdict"): collections.defaultdict,
    ("collections", "OrderedDict"): collections.OrderedDict,
}
#: Python 2 module names (protocol 0-2 pickles written by Python 2).
_PY2_MODULES = {"__builtin__": "builtins"}


class ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle names a global outside :data:`ALLOWED_GLOBALS`."""

    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS`.

    Every class or function a pickle uses reaches the unpickler through
    :meth:`find_class` (``GLOBAL``, ``STACK_GLOBAL`` and the extension-registry opcodes
    alike), so refusing there stops the file before anything but plain data is built;
    persistent ids are refused by :class:`pickle.Unpickler` already.
    """

    def find_class(self, module: str, name: str) -> Any:
        module = _PY2_MODULES.get(module, module)
        try:
            return ALLOWED_GLOBALS[module, name]
        except KeyError:
            raise ForbiddenGlobal(module, name) from None


def load_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`.

    :raises KGFileError: the file is missing, unreadable, truncated, not a pickle, or
        names a global other than the plain containers of a release (the error names it).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KGFileError(f"{path}: file not found") from None
    except OSError as exc:
        raise KGFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except ForbiddenGlobal as exc:
        allowed = ", ".join(f"{m}.{n}" for m, n in ALLOWED_GLOBALS)
        raise KGFileError(
            f"{path}: refused to unpickle: the file names {exc.module}.{exc.name}, but a knowledge-graph release "
            f"holds only plain data ({allowed}); the file is not a BetaE release file, or it was tampered with"
        ) from None
    except RecursionError:
        raise KGFileError(f"{path}: the pickle is nested too deeply to be a release file") from None
    except Exception as exc:  # truncated or garbled data surfaces as many exception types
        raise KGFileError(
            f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); the file is truncated or corrupt, "
            "download or generate it again"
        ) from None


# --- the release in memory -------------------------------------------------------------------


@dataclasses.dataclass
class BetaERelease:
    """The content of a release directory, as plain Python data (what the pickles hold).

    :param n_entities: entity ids are ``0 .. n_entities - 1``.
    :param n_relations: relation ids are ``0 .. n_relations - 1`` (inverse pairs ``2k``, ``2k + 1``).
    :param queries: split → structure tuple → set of query tuples.
    :param train_answers: query tuple → its answers on the train graph.
    :param easy_answers: ``"valid"`` / ``"test"`` → query tuple → answers reachable
        without the split's new edges (left out of the ranking at evaluation).
    :param hard_answers: ``"valid"`` / ``"test"`` → query tuple → answers that need them.
    :param entity_names: name per entity id (``id2ent.pkl``), or None.
    :param relation_names: name per relation id (``id2rel.pkl``), or None.
    :param triples: split → ``[m, 3]`` int array of ``(head, relation, tail)``, or None.
    :param info: anything else worth keeping (the generator's parameters and counts).
    """

    n_entities: int
    n_relations: int
    queries: dict[str, dict[tuple, set[tuple]]]
    train_answers: dict[tuple, set[int]]
    easy_answers: dict[str, dict[tuple, set[int]]]
    hard_answers: dict[str, dict[tuple, set[int]]]
    entity_names: list[str] | None = None
    relation_names: list[str] | None = None
    triples: dict[str, np.ndarray] | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        """split → structure name → number of queries."""
        return {
            split: {STRUCTURE_NAMES.get(s, str(s)): len(by[s]) for s in sorted(by, key=_order)}
            for split, by in self.queries.items()
        }


def _order(structure: tuple) -> int:
    """Position of a structure in BetaE's order (1p 2p 3p 2i 3i ip pi 2in ... 2u up)."""
    names = list(BETAE_STRUCTURES)
    name = STRUCTURE_NAMES.get(structure)
    return names.index(name) if name in names else len(names)


# --- writing ---------------------------------------------------------------------------------


def write_release(release: BetaERelease, directory: str | os.PathLike[str]) -> Path:
    """Write ``release`` as a release directory that KGReasoning's ``main.py`` reads too.

    Pickles hold ``defaultdict(set)`` like KGReasoning's own files (protocol 4, so the
    bytes do not depend on the Python version). Returns the directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "stats.txt").write_text(
        f"numentity: {release.n_entities}\nnumrelations: {release.n_relations}\n", encoding="utf-8"
    )
    for split in SPLITS:
        _dump(directory / f"{split}-queries.pkl", _default_set(release.queries.get(split, {})))
    _dump(directory / "train-answers.pkl", _default_set(release.train_answers, ids=True))
    for split in ("valid", "test"):
        _dump(directory / f"{split}-easy-answers.pkl", _default_set(release.easy_answers.get(split, {}), ids=True))
        _dump(directory / f"{split}-hard-answers.pkl", _default_set(release.hard_answers.get(split, {}), ids=True))
    if release.entity_names is not None:
        _dump(directory / "id2ent.pkl", dict(enumerate(release.entity_names)))
        _dump(directory / "ent2id.pkl", {name: i for i, name in enumerate(release.entity_names)})
    if release.relation_names is not None:
        _dump(directory / "id2rel.pkl", dict(enumerate(release.relation_names)))
        _dump(directory / "rel2id.pkl", {name: i for i, name in enumerate(release.relation_names)})
    for split, triples in (release.triples or {}).items():
        lines = "".join(f"{h}\t{r}\t{t}\n" for h, r, t in np.asarray(triples, dtype=np.int64).tolist())
        (directory / f"{split}.txt").write_text(lines, encoding="utf-8")
    if release.info:
        (directory / INFO_FILE).write_text(json.dumps(release.info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return directory


def _default_set(mapping: Mapping, *, ids: bool = False) -> collections.defaultdict:
    """``mapping`` as ``defaultdict(set)``; with ``ids``, the values as Python ints (numpy
    ints would pickle as numpy objects, which the restricted reader refuses)."""
    out: collections.defaultdict = collections.defaultdict(set)
    for key, values in mapping.items():
        out[key] = set(map(int, values)) if ids else set(values)
    return out


def _dump(path: Path, value: Any) -> None:
    with path.open("wb") as f:
        pickle.dump(value, f, protocol=4)


# --- reading ---------------------------------------------------------------------------------


def read_release(
    directory: str | os.PathLike[str],
    *,
    structures: Iterable[str] | None = None,
    splits: Iterable[str] = SPLITS,
) -> BetaERelease:
    """Read and check a release directory.

    :param structures: structure names to keep (e.g. :data:`POSITIVE_STRUCTURES`);
        default all. A structure the files hold that is not standard is an error either
        way; a name that is not standard is too.
    :param splits: the splits to read (their files must exist).
    :raises KGFileError: naming the file and the problem.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise KGFileError(f"{directory}: not a directory (expected a BetaE / Query2Box release directory)")
    keep = _structure_filter(structures)
    n_entities, n_relations = _read_stats(directory / "stats.txt")
    checker = _Checker(n_entities, n_relations)
    splits = tuple(splits)
    queries: dict[str, dict[tuple, set[tuple]]] = {}
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; a release has {', '.join(SPLITS)}")
        queries[split] = _read_queries(directory / f"{split}-queries.pkl", checker, keep)
    train_answers: dict[tuple, set[int]] = {}
    if "train" in splits:
        train_answers = _read_answers(directory / "train-answers.pkl", checker, queries["train"], required=True)
    easy: dict[str, dict[tuple, set[int]]] = {}
    hard: dict[str, dict[tuple, set[int]]] = {}
    for split in ("valid", "test"):
        if split in splits:
            hard[split] = _read_answers(directory / f"{split}-hard-answers.pkl", checker, queries[split], required=True)
            easy[split] = _read_answers(
                directory / f"{split}-easy-answers.pkl", checker, queries[split], required=False
            )
    return BetaERelease(
        n_entities=n_entities,
        n_relations=n_relations,
        queries=queries,
        train_answers=train_answers,
        easy_answers=easy,
        hard_answers=hard,
        entity_names=_read_names(directory, "ent", n_entities),
        relation_names=_read_names(directory, "rel", n_relations),
        triples=_read_triples(directory, n_entities, n_relations),
        info=_read_info(directory / INFO_FILE),
    )


def _read_info(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KGFileError(f"{path}: not readable JSON ({exc}); delete it or generate the release again") from None
    if not isinstance(info, dict):
        raise KGFileError(f"{path}: expected a JSON object, got {type(info).__name__}")
    return info


def _structure_filter(structures: Iterable[str] | None) -> set[tuple] | None:
    if structures is None:
        return None
    if isinstance(structures, str):
        structures = [structures]
    keep = set()
    for name in structures:
        if name not in BETAE_STRUCTURES:
            raise ValueError(f"unknown query structure {name!r}; the standard ones are {', '.join(BETAE_STRUCTURES)}")
        keep.add(BETAE_STRUCTURES[name])
    return keep


def _read_stats(path: Path) -> tuple[int, int]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KGFileError(f"{path}: file not found (a release has stats.txt with numentity and numrelations)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KGFileError(f"{path}: cannot read: {exc}") from None
    values: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        try:
            values[key.strip()] = int(value.strip())
        except ValueError:
            raise KGFileError(f"{path}:{number}: expected 'numentity: N' or 'numrelations: M', got {line!r}") from None
        if not sep:
            raise KGFileError(f"{path}:{number}: expected 'numentity: N' or 'numrelations: M', got {line!r}")
    for key in ("numentity", "numrelations"):
        if key not in values:
            raise KGFileError(f"{path}: no '{key}: ...' line")
        if values[key] < 1:
            raise KGFileError(f"{path}: {key} must be positive, got {values[key]}")
    return values["numentity"], values["numrelations"]


class _Checker:
    """Checks query tuples against their structure and the id ranges, without building ASTs."""

    def __init__(self, n_entities: int, n_relations: int):
        self.n_entities, self.n_relations = n_entities, n_relations

    def matches(self, query: object, template: object) -> bool:
        if isinstance(template, tuple):
            return (
                type(query) is tuple
                and len(query) == len(template)
                and all(self.matches(q, t) for q, t in zip(query, template))
            )
        if type(query) is not int:
            return False
        if template == "e":
            return 0 <= query < self.n_entities
        if template == "r":
            return 0 <= query < self.n_relations
        return query == (-1 if template == "u" else -2)

    def where_wrong(self, query: object, template: object) -> str:
        """Why ``query`` does not match ``template`` (for the error message)."""
        ids = _flat(query)
        if any(type(i) is not int for i in ids):
            return "it holds values that are not ints"
        if len(ids) != len(_flat(template)) or not _same_nesting(query, template):
            return "its nesting differs from the structure"
        for value, kind in zip(ids, _flat(template)):
            if kind == "e" and not 0 <= value < self.n_entities:
                return f"entity id {value} is outside 0..{self.n_entities - 1} (stats.txt numentity)"
            if kind == "r" and not 0 <= value < self.n_relations:
                return f"relation id {value} is outside 0..{self.n_relations - 1} (stats.txt numrelations)"
        return "a union / negation marker is wrong (-1 closes a union, -2 negates)"

    def answers(self, values: object) -> bool:
        return all(type(a) is int and 0 <= a < self.n_entities for a in values)  # type: ignore[union-attr]


def _flat(value: object) -> list:
    return [x for item in value for x in _flat(item)] if isinstance(value, tuple) else [value]


def _same_nesting(a: object, b: object) -> bool:
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and all(map(_same_nesting, a, b))
    return True


def _read_queries(path: Path, checker: _Checker, keep: set[tuple] | None) -> dict[tuple, set[tuple]]:
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise KGFileError(f"{path}: expected a dict of structure tuple → set of queries, got {type(data).__name__}")
    out: dict[tuple, set[tuple]] = {}
    for structure, group in data.items():
        name = STRUCTURE_NAMES.get(structure) if isinstance(structure, tuple) else None
        if name is None:
            raise KGFileError(
                f"{path}: unknown query structure {structure!r}; the standard ones are {', '.join(BETAE_STRUCTURES)} "
                "(see boxlib.query.kg.BETAE_STRUCTURES)"
            )
        if not isinstance(group, (set, frozenset, list, tuple)):
            raise KGFileError(f"{path}: structure {name}: expected a set of query tuples, got {type(group).__name__}")
        if keep is not None and structure not in keep:
            continue
        for query in group:
            if not checker.matches(query, structure):
                raise KGFileError(
                    f"{path}: structure {name}: query {query!r} does not fit {structure!r}: "
                    f"{checker.where_wrong(query, structure)}"
                )
        out[structure] = set(group)
    return out


def _read_answers(
    path: Path, checker: _Checker, queries: Mapping[tuple, set[tuple]], *, required: bool
) -> dict[tuple, set[int]]:
    """The answers of the kept queries (other entries of the file are not checked)."""
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise KGFileError(f"{path}: expected a dict of query tuple → set of entity ids, got {type(data).__name__}")
    out: dict[tuple, set[int]] = {}
    for group in queries.values():
        for query in group:
            answers = data.get(query)
            if answers is None:
                if required:
                    raise KGFileError(f"{path}: no answers for query {query!r} (listed in the queries file)")
                answers = set()
            if not isinstance(answers, (set, frozenset, list, tuple)):
                raise KGFileError(
                    f"{path}: query {query!r}: expected a set of entity ids, got {type(answers).__name__}"
                )
            if not checker.answers(answers):
                bad = next(a for a in answers if type(a) is not int or not 0 <= a < checker.n_entities)
                raise KGFileError(
                    f"{path}: query {query!r}: answer {bad!r} is not an entity id in 0..{checker.n_entities - 1}"
                )
            out[query] = set(answers)
    return out


def _read_names(directory: Path, kind: str, count: int) -> list[str] | None:
    """Names by id from ``id2{kind}.pkl`` (or the inverse of ``{kind}2id.pkl``), if present."""
    forward, inverse = directory / f"id2{kind}.pkl", directory / f"{kind}2id.pkl"
    if forward.exists():
        path, data = forward, load_pickle(forward)
        pairs = data.items() if isinstance(data, dict) else None
    elif inverse.exists():
        path, data = inverse, load_pickle(inverse)
        pairs = ((i, name) for name, i in data.items()) if isinstance(data, dict) else None
    else:
        return None
    if pairs is None:
        raise KGFileError(f"{path}: expected a dict between ids and names, got {type(data).__name__}")
    names: list[str | None] = [None] * count
    for i, name in pairs:
        if type(i) is not int or not 0 <= i < count:
            raise KGFileError(f"{path}: id {i!r} is outside 0..{count - 1} (stats.txt)")
        names[i] = str(name)
    missing = [i for i, n in enumerate(names) if n is None]
    if missing:
        raise KGFileError(f"{path}: names {count - len(missing)} of {count} ids; id {missing[0]} has no name")
    return names  # type: ignore[return-value]


def _read_triples(directory: Path, n_entities: int, n_relations: int) -> dict[str, np.ndarray] | None:
    """The optional ``{split}.txt`` id triples."""
    found = {split: directory / f"{split}.txt" for split in SPLITS if (directory / f"{split}.txt").exists()}
    if not found:
        return None
    out = {}
    for split, path in found.items():
        try:
            array = np.loadtxt(path, dtype=np.int64, delimiter="\t", ndmin=2)
        except (ValueError, OSError) as exc:
            raise KGFileError(f"{path}: expected head<TAB>relation<TAB>tail id triples: {exc}") from None
        if array.size == 0:
            array = np.zeros((0, 3), dtype=np.int64)
        if array.shape[1] != 3:
            raise KGFileError(f"{path}: expected 3 columns (head, relation, tail), got {array.shape[1]}")
        for column, limit, what in ((0, n_entities, "entity"), (1, n_relations, "relation"), (2, n_entities, "entity")):
            bad = (array[:, column] < 0) | (array[:, column] >= limit)
            if bad.any():
                line = int(np.flatnonzero(bad)[0]) + 1
                raise KGFileError(f"{path}:{line}: {what} id {array[line - 1, column]} is outside 0..{limit - 1}")
        out[split] = array
    return out


# --- into a dataset --------------------------------------------------------------------------


def release_to_dataset(
    release: BetaERelease,
    name: str,
    *,
    max_queries: int | Mapping[str, int] | None = None,
    source: str | None = None,
):
    """A :class:`~boxlib.data.RetrievalDataset` whose items are the entities.

    Queries become :class:`~boxlib.query.Query` ASTs with int entity and relation ids
    (``Project(r, Term(e))``), the form :class:`~boxlib_plugins.anthem.Query2BoxModel`
    takes. Train examples are relevant to their train answers; a valid / test example
    is relevant to its *hard* answers and carries its easy answers in
    ``QueryExample.filtered``, so evaluation ranks each hard answer among the
    non-answers only (BetaE's filtered MRR / Hits@k, ``metadata["eval_metrics"]``).
    Valid / test queries without a hard answer are left out (counted in metadata).

    :param max_queries: keep at most this many queries per structure (per split when a
        mapping ``split → n``), the first in sorted tuple order, for quick runs.
    :param source: where the release came from (metadata).

    When the release has triples, ``dataset.index`` is the exact index of the full graph
    (all splits, reciprocal edges added), so any new query can be answered exactly.
    """
    from boxlib.data import QueryExample, RetrievalDataset
    from boxlib.query import SymbolicIndex, from_betae

    splits: dict[str, list] = {}
    skipped: dict[str, int] = {}
    counts: dict[str, dict[str, int]] = {}
    for split, by_structure in release.queries.items():
        limit = max_queries.get(split) if isinstance(max_queries, Mapping) else max_queries
        examples = []
        counts[split] = {}
        for structure in sorted(by_structure, key=_order):
            chosen = sorted(by_structure[structure])
            if limit is not None:
                chosen = chosen[:limit]
            kept = 0
            for query in chosen:
                if split == "train":
                    relevant, filtered = release.train_answers[query], frozenset()
                else:
                    relevant = release.hard_answers[split][query]
                    filtered = frozenset(release.easy_answers[split].get(query, ())) - relevant
                if not relevant:
                    skipped[split] = skipped.get(split, 0) + 1
                    continue
                grades = types.MappingProxyType(dict.fromkeys(sorted(relevant), 1))
                examples.append(QueryExample(from_betae(query), grades, filtered))
                kept += 1
            counts[split][STRUCTURE_NAMES[structure]] = kept
        splits[split] = examples
    names = release.entity_names or [str(i) for i in range(release.n_entities)]
    index = None
    if release.triples:
        edges = np.concatenate([np.asarray(t, dtype=np.int64).reshape(-1, 3) for t in release.triples.values()])
        reverse = np.stack([edges[:, 2], edges[:, 1] ^ 1, edges[:, 0]], axis=1)
        everything = np.concatenate([edges, reverse[reverse[:, 1] < release.n_relations]])
        index = SymbolicIndex.from_triples(release.n_entities, np.unique(everything, axis=0))
    metadata = {
        "format": "betae",
        "source": source,
        "n_entities": release.n_entities,
        "n_relations": release.n_relations,
        "relation_names": release.relation_names,
        "queries": counts,
        "skipped_without_hard_answers": skipped,
        "eval_metrics": list(KG_METRICS),
        "triples": {s: int(len(t)) for s, t in (release.triples or {}).items()},
        "generation": dict(release.info),  # info.json of a generated release: parameters, counts, time
    }
    return RetrievalDataset(name, list(names), list(names), splits, index=index, metadata=metadata)


#: Datasets built in this process (at most ``_LOADED_MAX``, least recently used dropped first).
_LOADED: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
_LOADED_MAX = 4


def load_dataset(
    directory: str | os.PathLike[str],
    *,
    name: str = "betae",
    structures: Iterable[str] | None = None,
    max_queries: int | Mapping[str, int] | None = None,
):
    """:func:`read_release` then :func:`release_to_dataset`, cached in this process.

    The cache is keyed by the directory, the size and modification time of its files
    and the arguments, so a changed file is read again. Examples are immutable (their
    answers are read-only mappings), and every call returns new split lists, metadata
    and dataset object, so changing one returned dataset never changes another.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise KGFileError(f"{directory}: not a directory (expected a BetaE / Query2Box release directory)")
    files = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.iterdir()) if p.is_file())
    limit = tuple(sorted(max_queries.items())) if isinstance(max_queries, Mapping) else max_queries
    chosen = (
        None if structures is None else tuple(sorted(set([structures] if isinstance(structures, str) else structures)))
    )
    key = (str(directory.resolve()), files, name, chosen, limit)
    dataset = _LOADED.get(key)
    if dataset is None:
        release = read_release(directory, structures=chosen)
        dataset = release_to_dataset(release, name, max_queries=max_queries, source=str(directory))
        _LOADED[key] = dataset
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)
    _LOADED.move_to_end(key)
    fresh = copy.copy(dataset)  # not dataclasses.replace: the examples were validated once already
    fresh.items, fresh.item_keys = list(dataset.items), list(dataset.item_keys)
    fresh.splits = {split: list(examples) for split, examples in dataset.splits.items()}
    fresh.metadata = copy.deepcopy(dataset.metadata)
    return fresh
