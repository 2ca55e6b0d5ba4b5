#!/usr/bin/env python
"""Build the ``wordnet_artifacts`` dataset shipped in ``plugins/wordnet/data``.

Source
------
The WordNet 3.0 noun database as packaged by Debian (``wordnet-base``, version
``1:3.0-37`` when the committed files were built): ``data.noun`` and ``index.noun`` in
``/usr/share/wordnet``, licence in ``/usr/share/doc/wordnet-base/copyright``. Get them
with ``apt-get install wordnet-base``; upstream is https://wordnet.princeton.edu. The
files are parsed directly (format: ``wndb(5WN)``), no NLTK involved.

What it builds
--------------
* **Items**: every synset below ``artifact.n.01`` in the closure of hypernym (``@``) and
  instance-hypernym (``@i``) pointers, ``artifact.n.01`` itself excluded (it would be
  the whole universe). Ordered by synset name. Title: the lemmas, then `` — ``, then the
  gloss.
* **Terms**: every item with at least :data:`MIN_DESCENDANTS` descendants is a
  category; its term name is its first lemma in words, disambiguated where two
  categories share it (see :func:`term_names`). A term's answers are the category
  itself and all its descendants, graded by hierarchy distance (see :func:`grade`).
* **Queries**: single categories, two-way ``and`` / ``or``, three-way ``and`` / ``or``
  and the nested ``(a or b) and c`` / ``a and b or c``; every boolean query is
  *irredundant* (dropping any operand changes its answer set) except where noted.
  Exact answers come from :class:`boxlib.query.SymbolicIndex`.
* **Splits**: see :func:`make_splits` and ``docs/datasets.md``.

Usage::

    python scripts/build_wordnet_artifacts.py [--wordnet-dir /usr/share/wordnet]
        [--copyright /usr/share/doc/wordnet-base/copyright] [--out plugins/wordnet/data] [--seed 0]

The output is a deterministic function of the WordNet files and the seed: rebuilding
gives byte-identical files (gzip with a zero timestamp; ``tests/test_wordnet_dataset.py``
checks this when ``/usr/share/wordnet`` exists).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import gzip
import hashlib
import io
import json
import random
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from boxlib_plugins.wordnet.wndb import Synset, WordNetFileError, name_synsets, read_data_noun, read_sense_numbers

from boxlib.data import query_kind
from boxlib.query import And, Or, Query, SymbolicIndex, Term, format_name, operand_removals, parse, structure

ROOT = "artifact.n.01"
#: A synset with at least this many descendants is a category (gets a term).
MIN_DESCENDANTS = 5
#: Every query has at least this many answers.
MIN_ANSWERS = 3
#: Grade of an item at hierarchy distance 0 (the category itself), 1 (a direct hyponym),
#: and 2 or more below the category.
GRADES = (3, 2, 1)

#: Fractions of the categories asked as single queries in train / valid / test.
CATEGORY_SPLIT = (0.8, 0.1, 0.1)
#: Fractions of the two-way query strings in train / valid / test.
PAIR_SPLIT = (0.8, 0.1, 0.1)
#: Number of two-way ``or`` queries sampled (before the split above).
N_OR2 = 5000
#: Numbers of test-only queries sampled per structure (fewer where fewer exist).
N_OR3 = 300
N_OR_AND = 250
N_AND_OR = 250

DATA_FILES = ("items.jsonl.gz", "terms.jsonl.gz", "queries.jsonl.gz")
METADATA_FILE = "metadata.json"
LICENSE_FILE = "LICENSE-WordNet.txt"
FORMAT_VERSION = 1


# --- the artifact hierarchy ------------------------------------------------------------


@dataclasses.dataclass
class Hierarchy:
    """The synsets below the root as items ``0 .. n - 1``, sorted by synset name.

    The root itself is not an item: ``parents`` leaves it out, and ``top`` lists its
    direct hyponyms.
    """

    synsets: list[Synset]
    parents: list[list[int]]
    children: list[list[int]]
    top: list[int]
    stats: dict[str, int]

    def descendants(self, item: int, max_depth: int | None = None) -> dict[int, int]:
        """``item`` and its descendants, each with its shortest distance below ``item``."""
        distance = {item: 0}
        frontier = [item]
        depth = 0
        while frontier and (max_depth is None or depth < max_depth):
            depth += 1
            following = []
            for node in frontier:
                for child in self.children[node]:
                    if child not in distance:
                        distance[child] = depth
                        following.append(child)
            frontier = following
        return distance


def build_hierarchy(synsets: dict[str, Synset], root: str = ROOT) -> Hierarchy:
    """The closure of hypernym + instance-hypernym pointers below ``root``."""
    by_name = {s.name: s for s in synsets.values()}
    if root not in by_name:
        raise SystemExit(f"{root} is not in data.noun")
    root_offset = by_name[root].offset
    children: dict[str, list[str]] = collections.defaultdict(list)
    for synset in synsets.values():
        for parent in synset.parents:
            children[parent].append(synset.offset)
    below: set[str] = set()
    stack = [root_offset]
    while stack:
        for child in children[stack.pop()]:
            if child not in below:
                below.add(child)
                stack.append(child)
    members = sorted((synsets[o] for o in below), key=lambda s: s.name)
    ids = {s.offset: i for i, s in enumerate(members)}
    parents = [sorted(ids[p] for p in s.parents if p in ids) for s in members]
    child_lists: list[list[int]] = [[] for _ in members]
    for item, item_parents in enumerate(parents):
        for parent in item_parents:
            child_lists[parent].append(item)
    top = sorted(ids[o] for o in set(children[root_offset]))
    hierarchy = Hierarchy(members, parents, child_lists, top, {})
    n_descendants = [len(hierarchy.descendants(i)) - 1 if child_lists[i] else 0 for i in range(len(members))]
    hierarchy.stats = {
        "synsets_below_root": len(members),
        "leaves": sum(1 for c in child_lists if not c),
        "multi_parent": sum(1 for s in members if len(s.parents) > 1),
        "multi_parent_below_root": sum(
            1 for s in members if sum(1 for p in s.parents if p in below or p == root_offset) > 1
        ),
        "instances": sum(1 for s in members if s.instance),
        # The root has every item below it, so it counts as a category here.
        "categories_with_5_descendants": 1 + sum(1 for n in n_descendants if n >= MIN_DESCENDANTS),
        "max_depth": _max_depth(hierarchy),  # the largest shortest hypernym distance to the root
    }
    return hierarchy


def _max_depth(hierarchy: Hierarchy) -> int:
    depth = {i: 1 for i in hierarchy.top}
    frontier = list(hierarchy.top)
    while frontier:
        following = []
        for node in frontier:
            for child in hierarchy.children[node]:
                if child not in depth:
                    depth[child] = depth[node] + 1
                    following.append(child)
        frontier = following
    return max(depth.values())


# --- terms -----------------------------------------------------------------------------


def grade(distance: int) -> int:
    """Relevance of an item ``distance`` hypernym steps below the queried category:
    3 for the category's own synset, 2 for a direct hyponym, 1 deeper."""
    return GRADES[min(distance, len(GRADES) - 1)]


def _words(lemma: str) -> str:
    return lemma.replace("_", " ")


def _sense(synset: Synset, senses: dict[str, list[str]]) -> int:
    return senses[synset.lemmas[0].lower()].index(synset.offset) + 1


def term_names(
    hierarchy: Hierarchy, categories: Sequence[int], synsets: dict[str, Synset], senses: dict[str, list[str]]
) -> dict[int, str]:
    """Category item → term name.

    The name is the first lemma with ``_`` as spaces. Where several categories share a
    name (compared case-insensitively), the one with the lowest WordNet sense number for
    that lemma (its most frequent sense) keeps it, and every other one is qualified
    Wikipedia-style by the first lemma of its first hypernym: ``knife (weapon)``. If
    that still clashes it becomes ``lemma (sense N)``.
    """
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for item in categories:
        groups[_words(hierarchy.synsets[item].lemmas[0]).lower()].append(item)
    names: dict[int, str] = {}
    for group in groups.values():
        group.sort(key=lambda i: _sense(hierarchy.synsets[i], senses))
        names[group[0]] = _words(hierarchy.synsets[group[0]].lemmas[0])
        for item in group[1:]:
            parents = hierarchy.synsets[item].parents
            parent_name = _words(synsets[parents[0]].lemmas[0])
            names[item] = f"{_words(hierarchy.synsets[item].lemmas[0])} ({parent_name})"
    taken = collections.Counter(name.lower() for name in names.values())
    for item, name in list(names.items()):
        if taken[name.lower()] > 1 and name.endswith(")"):
            synset = hierarchy.synsets[item]
            names[item] = f"{_words(synset.lemmas[0])} (sense {_sense(synset, senses)})"
    clashes = sorted(n for n, count in collections.Counter(n.lower() for n in names.values()).items() if count > 1)
    if clashes:
        raise SystemExit(f"term names still clash after disambiguation: {clashes}")
    for name in names.values():
        if parse(format_name(name)) != Term(name):
            raise SystemExit(f"term name {name!r} does not survive the query syntax")
    return names


@dataclasses.dataclass
class Terms:
    """The categories (items with at least MIN_DESCENDANTS descendants) as terms."""

    items: list[int]  # category item ids, sorted by term name
    names: list[str]
    members: np.ndarray  # [terms, items] bool: the category and its descendants
    grades: np.ndarray  # [terms, items] uint8: 0 outside, else grade(distance)

    def row(self, name: str) -> int:
        return self._rows[name]

    def __post_init__(self) -> None:
        self._rows = {n: i for i, n in enumerate(self.names)}


def build_terms(hierarchy: Hierarchy, synsets: dict[str, Synset], senses: dict[str, list[str]]) -> Terms:
    n = len(hierarchy.synsets)
    below = {i: hierarchy.descendants(i) for i in range(n) if hierarchy.children[i]}
    categories = [i for i, d in below.items() if len(d) - 1 >= MIN_DESCENDANTS]
    names = term_names(hierarchy, categories, synsets, senses)
    order = sorted(categories, key=lambda i: names[i])
    grades = np.zeros((len(order), n), dtype=np.uint8)
    for row, item in enumerate(order):
        for member, distance in below[item].items():
            grades[row, member] = grade(distance)
    return Terms(order, [names[i] for i in order], grades > 0, grades)


# --- queries ---------------------------------------------------------------------------


def dense_grades(query: Query, terms: Terms) -> np.ndarray:
    """Graded answers of ``query`` over all items: a term's grades; ``and`` takes the
    minimum over its operands, ``or`` the maximum (0 = not an answer)."""
    if isinstance(query, Term):
        return terms.grades[terms.row(query.name)]
    parts = [dense_grades(operand, terms) for operand in query.operands]
    if isinstance(query, And):
        return np.minimum.reduce(parts)
    if isinstance(query, Or):
        return np.maximum.reduce(parts)
    raise TypeError(f"unsupported query node {query!r}")


def irredundant(query: Query, terms: Terms) -> bool:
    """Whether deleting any operand anywhere in ``query`` changes its answer set."""
    answers = dense_grades(query, terms) > 0
    return all(not np.array_equal(dense_grades(r, terms) > 0, answers) for r in operand_removals(query))


def canonical_key(query: Query) -> Query | tuple:
    """``query`` up to the order of ``and`` / ``or`` operands (both commute)."""
    if isinstance(query, Term):
        return query
    return (type(query).__name__, frozenset(canonical_key(o) for o in query.operands))


class QuerySampler:
    """Draws irredundant queries with at least MIN_ANSWERS answers over given terms."""

    def __init__(self, hierarchy: Hierarchy, terms: Terms, names: Sequence[str], rng: random.Random):
        self.hierarchy = hierarchy
        self.terms = terms
        self.names = sorted(names)
        self.allowed = set(self.names)
        self.rng = rng
        self.seen: set = set()
        self._pairs: list[tuple[str, str]] | None = None
        item_names = {item: name for item, name in zip(terms.items, terms.names)}
        # Categories close to each other: for every synset (the root too), the allowed
        # categories one or two levels below it (siblings, cousins, aunt/niece pairs).
        families = [
            [item_names[i] for i in sorted(hierarchy.descendants(p, 2)) if i != p and item_names.get(i) in self.allowed]
            for p in range(len(hierarchy.synsets))
            if hierarchy.children[p]
        ]
        top_two = set(hierarchy.top) | {c for t in hierarchy.top for c in hierarchy.children[t]}
        families.append([item_names[i] for i in sorted(top_two) if item_names.get(i) in self.allowed])
        self.families = [sorted(set(f)) for f in families if len(set(f)) >= 2]

    def answers(self, query: Query) -> np.ndarray:
        return dense_grades(query, self.terms) > 0

    def accept(self, query: Query) -> bool:
        """Keep ``query`` if it is new (up to operand order), irredundant and large enough."""
        key = canonical_key(query)
        if key in self.seen or int(self.answers(query).sum()) < MIN_ANSWERS:
            return False
        if not irredundant(query, self.terms):
            return False
        self.seen.add(key)
        return True

    def shuffled(self, operands: Sequence[Query]) -> list[Query]:
        operands = list(operands)
        self.rng.shuffle(operands)
        return operands

    def sample(self, count: int, draw, *, attempts: int = 200) -> list[Query]:
        """Up to ``count`` accepted queries from ``draw()``, giving up after
        ``attempts * count`` draws."""
        out: list[Query] = []
        for _ in range(attempts * count):
            if len(out) == count:
                break
            query = draw()
            if query is not None and self.accept(query):
                out.append(query)
        return out

    # -- structures --

    def overlapping_pairs(self) -> list[tuple[str, str]]:
        """Allowed category pairs (sorted) that share at least MIN_ANSWERS items without
        either containing the other: only multiple inheritance makes these."""
        if self._pairs is None:
            overlap, sizes = self._overlap()
            self._pairs = [
                (self.names[a], self.names[b])
                for a, b in zip(*np.nonzero(np.triu(overlap >= MIN_ANSWERS, 1)))
                if overlap[a, b] < sizes[a] and overlap[a, b] < sizes[b]
            ]
        return list(self._pairs)

    def _overlap(self) -> tuple[np.ndarray, np.ndarray]:
        """``[allowed, allowed]`` shared-item counts and the set sizes (float32 is exact here)."""
        rows = [self.terms.row(n) for n in self.names]
        members = self.terms.members[rows].astype(np.float32)
        return np.rint(members @ members.T).astype(np.int64), members.sum(axis=1).astype(np.int64)

    def and2(self) -> list[Query]:
        pairs = self.overlapping_pairs()
        self.rng.shuffle(pairs)
        return [q for q in (And(*self.shuffled([Term(a), Term(b)])) for a, b in pairs) if self.accept(q)]

    def and3(self) -> list[Query]:
        """Every three-way ``and`` whose operands overlap pairwise without nesting.

        WordNet is nearly a tree, so such triples are rare, and in most of them one
        operand contains the intersection of the other two (the query is then not
        irredundant, though no operand contains another); they are all kept.
        """
        pairs = self.overlapping_pairs()
        partners: dict[str, set[str]] = collections.defaultdict(set)
        for a, b in pairs:
            partners[a].add(b)
            partners[b].add(a)
        triples = sorted({tuple(sorted((a, b, c))) for a, b in pairs for c in partners[a] & partners[b]})
        self.rng.shuffle(triples)
        out = []
        for triple in triples:
            query = And(*self.shuffled(map(Term, triple)))
            if int(self.answers(query).sum()) >= MIN_ANSWERS and canonical_key(query) not in self.seen:
                self.seen.add(canonical_key(query))
                out.append(query)
        return out

    def _related(self, k: int) -> list[str] | None:
        family = self.rng.choice(self.families)
        return self.rng.sample(family, k) if len(family) >= k else None

    def or_n(self, count: int, k: int) -> list[Query]:
        """Half from one family of related categories, half uniformly random."""
        related = self.sample(count // 2, lambda: _maybe(Or, self._related(k)))
        rest = self.sample(count - len(related), lambda: Or(*map(Term, self.rng.sample(self.names, k))))
        return related + rest

    def or_and(self, count: int) -> list[Query]:
        """``(a or b) and c``: ``a`` overlaps ``c``; ``b`` overlaps ``c`` or lies inside it."""
        overlapping = self.overlapping_pairs()
        overlap, sizes = self._overlap()
        inside = {  # c -> the allowed categories inside c
            c: [self.names[j] for j in np.flatnonzero(overlap[i] == sizes) if j != i] for i, c in enumerate(self.names)
        }

        def draw() -> Query | None:
            a, c = self.shuffled(self.rng.choice(overlapping))
            candidates = [x for x, y in overlapping if y == c] + [y for x, y in overlapping if x == c] + inside[c]
            b = self.rng.choice(candidates)
            if b == a:
                return None
            return And(Or(*self.shuffled([Term(a), Term(b)])), Term(c))  # compound operand first

        return self.sample(count, draw)

    def and_or(self, count: int) -> list[Query]:
        """``a and b or c``: an overlapping pair, or a category of the same family."""
        overlapping = self.overlapping_pairs()

        def draw() -> Query | None:
            a, b = self.rng.choice(overlapping)
            family = [f for f in self.families if a in f or b in f]
            c = self.rng.choice(self.rng.choice(family) if family and self.rng.random() < 0.5 else self.names)
            if c in (a, b):
                return None
            return Or(And(*self.shuffled([Term(a), Term(b)])), Term(c))  # compound operand first

        return self.sample(count, draw)


def _maybe(node: type, names: Sequence[str] | None) -> Query | None:
    return None if names is None else node(*map(Term, names))


def _split(queries: Sequence[Query], fractions: tuple[float, float, float]) -> tuple[list, list, list]:
    n = len(queries)
    a = round(fractions[0] * n)
    b = a + round(fractions[1] * n)
    return list(queries[:a]), list(queries[a:b]), list(queries[b:])


def _split_by_answers(
    queries: Sequence[Query], terms: Terms, fractions: tuple[float, float, float]
) -> tuple[list, list, list]:
    """Cut ``queries`` (already shuffled) about ``fractions`` of the way, keeping queries
    with the same answer set in one split: a held-out query never has the answers of a
    train query of the same structure under other names (``knife and cutlery`` and
    ``cutter and tableware`` share theirs)."""
    groups: dict[bytes, list[Query]] = {}
    for query in queries:
        groups.setdefault(np.packbits(dense_grades(query, terms) > 0).tobytes(), []).append(query)
    targets = (fractions[0] * len(queries), (fractions[0] + fractions[1]) * len(queries))
    train: list[Query] = []
    valid: list[Query] = []
    test: list[Query] = []
    for group in groups.values():  # in order of first appearance
        taken = len(train) + len(valid)
        (train if len(train) < targets[0] else valid if taken < targets[1] else test).extend(group)
    return train, valid, test


def make_splits(hierarchy: Hierarchy, terms: Terms, seed: int) -> dict[str, list[Query]]:
    """Queries per split.

    * The categories are shuffled and cut 80/10/10. Train asks its categories as single
      queries; valid and test ask theirs, which appear in *no* train query (new
      category names).
    * Every boolean query, in any split, combines train categories only. Two-way
      ``and`` / ``or`` strings are cut about 80/10/10 between train, valid and test,
      queries with equal answer sets kept together (no two queries anywhere are equal
      up to operand order).
    * Three-way ``and`` / ``or`` and the nested ``(a or b) and c`` / ``a and b or c``
      are test only: whole structures train never shows.
    """
    rng = random.Random(seed)
    names = list(terms.names)
    rng.shuffle(names)
    train_names, valid_names, test_names = _split(names, CATEGORY_SPLIT)
    sampler = QuerySampler(hierarchy, terms, train_names, rng)
    for name in names:  # single queries are taken, so booleans cannot repeat them
        sampler.seen.add(canonical_key(Term(name)))
    and2 = _split_by_answers(sampler.and2(), terms, PAIR_SPLIT)
    or2 = _split_by_answers(sampler.or_n(N_OR2, 2), terms, PAIR_SPLIT)
    and3 = sampler.and3()
    or3 = sampler.or_n(N_OR3, 3)
    or_and = sampler.or_and(N_OR_AND)
    and_or = sampler.and_or(N_AND_OR)
    return {
        "train": [Term(n) for n in sorted(train_names)] + and2[0] + or2[0],
        "valid": [Term(n) for n in sorted(valid_names)] + and2[1] + or2[1],
        "test": [Term(n) for n in sorted(test_names)] + and2[2] + or2[2] + and3 + or3 + or_and + and_or,
    }


# --- output ----------------------------------------------------------------------------


def _jsonl(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows).encode("utf-8")


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as stream:
        stream.write(data)
    return buffer.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _package_version(package: str) -> str:
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True
        )
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


GRADING = (
    "A category query's answers are the category's own synset and all its descendants "
    "(hypernym and instance-hypernym closure). Grade by the shortest hypernym distance d "
    "from the item up to the category: 3 for d = 0 (the category itself), 2 for d = 1 "
    "(a direct hyponym or instance), 1 for d >= 2. 'and' takes the minimum grade over "
    "its operands, 'or' the maximum over the operands the item answers; items outside "
    "the answer set have grade 0."
)


def build(wordnet_dir: Path, copyright_file: Path | None, out: Path, seed: int) -> dict:
    """Build every file into ``out``; returns the metadata."""
    data_noun, index_noun = wordnet_dir / "data.noun", wordnet_dir / "index.noun"
    for path in (data_noun, index_noun):
        if not path.is_file():
            raise SystemExit(f"{path} not found: install the Debian package wordnet-base or pass --wordnet-dir")
    try:
        synsets = read_data_noun(data_noun)
        senses = read_sense_numbers(index_noun)
        name_synsets(synsets, senses)
    except WordNetFileError as exc:
        raise SystemExit(str(exc)) from None
    hierarchy = build_hierarchy(synsets)
    terms = build_terms(hierarchy, synsets, senses)
    splits = make_splits(hierarchy, terms, seed)

    index = SymbolicIndex(len(hierarchy.synsets), {n: np.flatnonzero(m) for n, m in zip(terms.names, terms.members)})
    query_rows = []
    per_split: dict[str, dict[str, int]] = {}
    per_structure: dict[str, dict[str, int]] = {}
    train_answers = {ids.tobytes() for ids in index.evaluate_many(splits["train"])}
    seen_in_train: dict[str, dict[str, int]] = {}
    for split, queries in splits.items():
        answers = index.evaluate_many(queries)
        for query, ids in zip(queries, answers):
            if split != "train" and ids.tobytes() in train_answers:
                seen = seen_in_train.setdefault(split, {})
                seen[str(structure(query))] = seen.get(str(structure(query)), 0) + 1
            grades = dense_grades(query, terms)
            if not np.array_equal(np.flatnonzero(grades), ids) or ids.size < MIN_ANSWERS:
                raise AssertionError(f"graded answers of {query} disagree with SymbolicIndex")
            text = str(query)
            if parse(text) != query:
                raise AssertionError(f"{text!r} does not parse back to the query")
            query_rows.append({"split": split, "query": text, "answers": int(ids.size), "grade_sum": int(grades.sum())})
            kinds = per_split.setdefault(split, {})
            kinds[query_kind(query)] = kinds.get(query_kind(query), 0) + 1
            shapes = per_structure.setdefault(split, {})
            shapes[str(structure(query))] = shapes.get(str(structure(query)), 0) + 1

    item_rows = [
        {
            "key": s.name,
            "offset": s.offset,
            "title": ", ".join(map(_words, s.lemmas)) + " — " + s.gloss,
            "parents": parents,
        }
        for s, parents in zip(hierarchy.synsets, hierarchy.parents)
    ]
    term_rows = []
    for row, (item, name) in enumerate(zip(terms.items, terms.names)):
        ids = np.flatnonzero(terms.members[row])
        term_rows.append(
            {
                "term": name,
                "key": hierarchy.synsets[item].name,
                "item": item,
                "ids": ids.tolist(),
                "grades": terms.grades[row, ids].tolist(),
            }
        )
    contents = {
        "items.jsonl.gz": _jsonl(item_rows),
        "terms.jsonl.gz": _jsonl(term_rows),
        "queries.jsonl.gz": _jsonl(query_rows),
    }
    licence = _licence_text(copyright_file)
    metadata = {
        "name": "wordnet_artifacts",
        "format_version": FORMAT_VERSION,
        "description": "WordNet 3.0 nouns below artifact.n.01 as a product-like catalog with boolean category queries",
        "source": {
            "name": "WordNet 3.0 (Princeton University)",
            "url": "https://wordnet.princeton.edu",
            "debian_package": "wordnet-base",
            "debian_version": _package_version("wordnet-base"),
            "sha256": {"data.noun": _sha256(data_noun.read_bytes()), "index.noun": _sha256(index_noun.read_bytes())},
            "licence": "WordNet 3.0 license (see " + LICENSE_FILE + ")",
            "build_script": "scripts/build_wordnet_artifacts.py",
        },
        "root": ROOT,
        "counts": {
            **hierarchy.stats,
            "items": len(hierarchy.synsets),
            "terms": len(terms.names),
            "term_memberships": int(terms.members.sum()),
        },
        "grading": {"description": GRADING, "grade_by_distance": list(GRADES)},
        "build": {
            "seed": seed,
            "min_descendants": MIN_DESCENDANTS,
            "min_answers": MIN_ANSWERS,
            "category_split": list(CATEGORY_SPLIT),
            "pair_split": list(PAIR_SPLIT),
            "or2_sampled": N_OR2,
            "test_only_structures": ["e and e and e", "e or e or e", "(e or e) and e", "e and e or e"],
        },
        "splits": {split: dict(sorted(kinds.items())) for split, kinds in per_split.items()},
        "structures": {split: dict(sorted(s.items())) for split, s in per_structure.items()},
        # Held-out queries whose answer set equals that of some train query (other names,
        # other structure: e.g. "conveyance and satellite" has the answers of "spacecraft").
        "answer_set_also_in_train": {split: dict(sorted(s.items())) for split, s in seen_in_train.items()},
        "files": {
            name: {"sha256": _sha256(data), "lines": data.count(b"\n"), "note": "sha256 of the uncompressed text"}
            for name, data in contents.items()
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (out / name).write_bytes(_gzip(data))
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / LICENSE_FILE).write_text(licence, encoding="utf-8")
    return metadata


def _licence_text(copyright_file: Path | None) -> str:
    """The WordNet licence paragraph of Debian's copyright file, as plain text."""
    header = (
        "The files in this directory are derived from WordNet 3.0 (data.noun, index.noun of the\n"
        "Debian package wordnet-base) by scripts/build_wordnet_artifacts.py. WordNet's licence:\n\n"
    )
    if copyright_file is None or not copyright_file.is_file():
        raise SystemExit(f"{copyright_file}: the WordNet licence text is needed (pass --copyright)")
    lines = copyright_file.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("License: WordNet")), None)
    if start is None:
        raise SystemExit(f"{copyright_file}: no 'License: WordNet' paragraph")
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        body.append("" if line.strip() == "." else line[1:])
    return header + "\n".join(body).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--copyright", type=Path, default=Path("/usr/share/doc/wordnet-base/copyright"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "plugins/wordnet/data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    metadata = build(args.wordnet_dir, args.copyright, args.out, args.seed)
    print(json.dumps({k: metadata[k] for k in ("counts", "splits", "structures")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
