"""Build the ``debian_packages`` dataset from a ``Packages`` file: debtags as query terms.

* **Items**: the packages whose ``Tag`` field has at least one tag that is not
  structural (see :func:`is_structural`), ordered by package name; key = package name,
  title = ``name — synopsis`` (the first line of ``Description``).
* **Terms**: every non-structural tag (``facet::value``) carried by at least
  ``min_answers`` items, named by :func:`render_tag` (``implemented-in::python`` →
  ``implemented in python``). A term's answers are exactly the items that carry the
  tag; every answer has grade 1.
* **Queries**: single terms and boolean combinations of terms from different facets
  (see :class:`QuerySampler`), each with at least ``min_answers`` answers and
  irredundant, with exact answers from :class:`~boxlib.query.SymbolicIndex`.
* **Splits**: see :func:`make_splits` and ``docs/datasets.md``.

Nothing is shipped: the catalog is built on the user's machine from apt's lists
(``apt-cache dumpavail``) or any ``Packages`` file, deterministically for a given
input and seed.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse

from boxlib.data import SPLITS, QueryExample, RetrievalDataset, query_kind
from boxlib.query import And, Or, Query, SymbolicIndex, Term, format_name, operand_removals, parse, structure

from .packages import Package, PackagesFileError, read_packages

__all__ = [
    "DATASET_NAME",
    "QuerySampler",
    "is_structural",
    "load_debian_packages",
    "make_splits",
    "render_tag",
]

DATASET_NAME = "debian_packages"

#: Fractions of the terms asked as single queries in train / valid / test, and of each
#: two-way structure's queries.
SPLIT = (0.8, 0.1, 0.1)
#: Two-way structures: cut between the splits (held-out query strings).
PAIR_STRUCTURES = ("e and e", "e or e")
#: Structures asked only in test (held-out structures).
TEST_STRUCTURES = ("e and e and e", "e or e or e", "(e or e) and e", "e and e or e")

RENDERING = (
    "A tag 'facet::value' becomes the words of the facet followed by those of the value, "
    "'::', ':', '-' and '_' read as spaces: implemented-in::python -> 'implemented in python', "
    "devel::lang:c++ -> 'devel lang c++', works-with::image:raster -> 'works with image raster'. "
    "Tags that would get the same words keep their raw tag text as their name. In query text "
    "a name holding an operator word (and, or, not) or a special character is quoted."
)
STRUCTURAL_RULE = (
    "Skipped as structural: every tag of the facet 'special' (debtags' bookkeeping: "
    "special::not-yet-tagged, special::completely-tagged, ...) and every 'TODO' placeholder "
    "(role::TODO, devel::lang:TODO, ...: 'this facet still needs tagging'). Every other facet is kept, "
    "suite (suite::gnome, suite::debian) and role (role::program) included."
)
GRADING = (
    "Every answer has grade 1: a package carries a tag or not, and tags are flat "
    "(game::board:chess does not imply game::board)."
)
TITLE_RULE = (
    "'name — synopsis', the synopsis being the first line of Description. The long description is left "
    "out: apt's lists and `apt-cache dumpavail` do not carry it (it lives in the Translation files), so "
    "titles are the same whatever the source."
)
DEDUPLICATION = (
    "A package that occurs in several paragraphs is kept at its first paragraph (file order); "
    "`apt-cache dumpavail` prints one paragraph per package, apt's candidate version."
)
SPLIT_RULE = (
    "The terms are shuffled (seed) and cut 80/10/10: train asks its terms as single queries, valid and "
    "test theirs, which occur in no train query. Every boolean query combines train terms only. "
    "'e and e' and 'e or e' queries are cut 80/10/10, queries with equal answer sets kept in one split "
    "(held-out query strings); 'e and e and e', 'e or e or e', '(e or e) and e' and 'e and e or e' are test "
    "only (held-out structures). Operands come from different facets, except the two alternatives inside "
    "'(e or e) and e', which share a facet."
)


# --- tags and terms ----------------------------------------------------------------------


def facet_of(tag: str) -> str:
    """The facet (namespace) of a debtags tag: the text before the first ``::``, or the
    whole tag if it has none."""
    return tag.partition("::")[0]


def is_structural(tag: str) -> bool:
    """Whether ``tag`` is bookkeeping rather than a property of the package: the facet
    ``special`` and every ``TODO`` placeholder value (``role::TODO``, ``devel::lang:TODO``)."""
    facet, _, value = tag.partition("::")
    return facet == "special" or "TODO" in value.split(":")


_SEPARATORS = re.compile(r"::|[:\-_\s]+")


def render_tag(tag: str) -> str:
    """The words of a tag: ``implemented-in::python`` → ``implemented in python``."""
    return " ".join(part for part in _SEPARATORS.split(tag) if part)


def term_names(tags: Iterable[str]) -> dict[str, str]:
    """Tag → term name: :func:`render_tag`, or the raw tag where two tags would render the
    same (compared case-insensitively)."""
    tags = sorted(set(tags))
    rendered = {tag: render_tag(tag) for tag in tags}
    counts: dict[str, int] = {}
    for words in rendered.values():
        counts[words.lower()] = counts.get(words.lower(), 0) + 1
    names = {tag: words if counts[words.lower()] == 1 and words else tag for tag, words in rendered.items()}
    for tag, name in names.items():
        if parse(format_name(name)) != Term(name):  # format_name quotes what needs it
            raise AssertionError(f"the term name {name!r} of tag {tag!r} does not survive the query syntax")
    return names


# --- queries -----------------------------------------------------------------------------


def canonical_key(query: Query) -> Query | tuple:
    """``query`` up to the order of ``and`` / ``or`` operands (both commute)."""
    if isinstance(query, Term):
        return query
    return (type(query).__name__, frozenset(canonical_key(o) for o in query.operands))


class QuerySampler:
    """Draws irredundant queries with at least ``min_answers`` answers over the given terms.

    :param members: ``[terms, items]`` bool: which items carry each term's tag.
    :param names: the term names (rows of ``members``).
    :param facets: the facet of each term.
    :param allowed: the terms queries may use (the train terms).
    """

    def __init__(
        self,
        members: np.ndarray,
        names: Sequence[str],
        facets: Sequence[str],
        allowed: Iterable[str],
        min_answers: int,
        rng: random.Random,
    ) -> None:
        rows = {name: row for row, name in enumerate(names)}
        self.names = sorted(allowed)
        self.members = members[[rows[n] for n in self.names]]
        self.row = {name: i for i, name in enumerate(self.names)}
        self.facet = np.array([facets[rows[n]] for n in self.names], dtype=object)
        self.min_answers = min_answers
        self.rng = rng
        self.seen: set = set()
        sparse = scipy.sparse.csr_matrix(self.members, dtype=np.int64)  # a package has a few tags
        self.overlap = (sparse @ sparse.T).toarray()  # shared items of every pair
        self.sizes = self.members.sum(axis=1)
        self.by_facet: dict[str, list[int]] = {}
        for i, facet in enumerate(self.facet):
            self.by_facet.setdefault(facet, []).append(i)

    def answers(self, query: Query) -> np.ndarray:
        """The items that satisfy ``query`` (bool over items)."""
        if isinstance(query, Term):
            return self.members[self.row[query.name]]
        parts = [self.answers(operand) for operand in query.operands]
        return (np.logical_and if isinstance(query, And) else np.logical_or).reduce(parts)

    def accept(self, query: Query) -> bool:
        """Keep ``query`` if it is new (up to operand order), has enough answers and is
        irredundant (deleting any operand anywhere changes its answers)."""
        key = canonical_key(query)
        if key in self.seen:
            return False
        answers = self.answers(query)
        if int(answers.sum()) < self.min_answers:
            return False
        if any(np.array_equal(self.answers(smaller), answers) for smaller in operand_removals(query)):
            return False
        self.seen.add(key)
        return True

    def shuffled(self, rows: Iterable[int]) -> list[Query]:
        terms = [Term(self.names[i]) for i in rows]
        self.rng.shuffle(terms)
        return terms

    def sample(self, count: int, draw: Callable[[], Query | None], *, patience: int = 1000) -> list[Query]:
        """Up to ``count`` accepted queries from ``draw()``, giving up after ``patience``
        draws in a row that add nothing (a small catalog runs out of new queries)."""
        out: list[Query] = []
        if len(self.names) < 2:
            return out
        misses = 0
        while len(out) < count and misses < patience:
            query = draw()
            if query is not None and self.accept(query):
                out.append(query)
                misses = 0
            else:
                misses += 1
        return out

    def pairs(self, node: type) -> list[tuple[int, int]]:
        """Term pairs of different facets whose ``node`` (And / Or) is irredundant: neither
        contains the other, and for And they share at least ``min_answers`` items."""
        overlap, sizes = self.overlap, self.sizes
        ok = (overlap < sizes[:, None]) & (overlap < sizes[None, :]) & (self.facet[:, None] != self.facet[None, :])
        if node is And:
            ok &= overlap >= self.min_answers
        first, second = np.nonzero(np.triu(ok, 1))
        return list(zip(first.tolist(), second.tolist()))

    # -- structures --

    def two_way(self, node: type, count: int) -> list[Query]:
        """Up to ``count`` of the eligible pairs (:meth:`pairs`), uniformly at random."""
        pairs = self.pairs(node)
        self.rng.shuffle(pairs)
        out = []
        for pair in pairs:
            if len(out) == count:
                break
            query = node(*self.shuffled(pair))
            if self.accept(query):
                out.append(query)
        return out

    def and3(self, count: int) -> list[Query]:
        """``a and b and c``: an overlapping pair and a third term of another facet
        overlapping both."""
        pairs = self.pairs(And)

        def draw() -> Query | None:
            a, b = self.rng.choice(pairs)
            ok = (self.overlap[a] >= self.min_answers) & (self.overlap[b] >= self.min_answers)
            ok &= (self.facet != self.facet[a]) & (self.facet != self.facet[b])
            candidates = np.flatnonzero(ok)
            if not candidates.size:
                return None
            return And(*self.shuffled((a, b, int(self.rng.choice(candidates)))))

        return self.sample(count, draw) if pairs else []

    def or3(self, count: int) -> list[Query]:
        """``a or b or c``: three terms of three facets, uniformly at random."""
        if len(self.by_facet) < 3:
            return []

        def draw() -> Query | None:
            rows = self.rng.sample(range(len(self.names)), 3)
            return Or(*self.shuffled(rows)) if len(set(self.facet[rows])) == 3 else None

        return self.sample(count, draw)

    def or_and(self, count: int) -> list[Query]:
        """``(a or b) and c``: alternatives ``a``, ``b`` of one facet, each overlapping
        ``c`` of another facet."""

        def draw() -> Query | None:
            c = self.rng.randrange(len(self.names))
            partners = np.flatnonzero((self.overlap[c] > 0) & (self.facet != self.facet[c]))
            if not partners.size:
                return None
            a = int(self.rng.choice(partners))
            siblings = [b for b in self.by_facet[self.facet[a]] if b != a and self.overlap[b, c] > 0]
            if not siblings:
                return None
            b = self.rng.choice(siblings)
            return And(Or(*self.shuffled((a, b))), Term(self.names[c]))  # compound operand first

        return self.sample(count, draw)

    def and_or(self, count: int) -> list[Query]:
        """``a and b or c``: an overlapping pair, or'ed with a term of a third facet."""
        pairs = self.pairs(And)

        def draw() -> Query | None:
            a, b = self.rng.choice(pairs)
            c = self.rng.randrange(len(self.names))
            if self.facet[c] in (self.facet[a], self.facet[b]):
                return None
            return Or(And(*self.shuffled((a, b))), Term(self.names[c]))  # compound operand first

        return self.sample(count, draw) if pairs else []


def _split(values: Sequence, fractions: tuple[float, float, float]) -> tuple[list, list, list]:
    a = round(fractions[0] * len(values))
    b = a + round(fractions[1] * len(values))
    return list(values[:a]), list(values[a:b]), list(values[b:])


def _split_by_answers(queries: Sequence[Query], sampler: QuerySampler) -> tuple[list, list, list]:
    """Cut ``queries`` (already shuffled) about :data:`SPLIT` of the way, queries with the
    same answer set kept in one split."""
    groups: dict[bytes, list[Query]] = {}
    for query in queries:
        groups.setdefault(np.packbits(sampler.answers(query)).tobytes(), []).append(query)
    targets = (SPLIT[0] * len(queries), (SPLIT[0] + SPLIT[1]) * len(queries))
    parts: tuple[list, list, list] = ([], [], [])
    for group in groups.values():  # in order of first appearance
        taken = len(parts[0]) + len(parts[1])
        parts[0 if len(parts[0]) < targets[0] else 1 if taken < targets[1] else 2].extend(group)
    return parts


def make_splits(
    members: np.ndarray,
    names: Sequence[str],
    facets: Sequence[str],
    *,
    min_answers: int,
    max_queries_per_structure: int,
    seed: int,
) -> dict[str, list[Query]]:
    """Queries per split (see :data:`SPLIT_RULE`).

    Each two-way structure gets up to ``max_queries_per_structure`` queries before the
    80/10/10 cut; each test-only structure up to a tenth of that (rounded up), about what
    test gets of each two-way structure, so that every structure weighs about the same
    in test. ``max_queries_per_structure=0`` gives single-term queries only.
    """
    rng = random.Random(seed)
    shuffled = sorted(names)
    rng.shuffle(shuffled)
    train_names, valid_names, test_names = _split(shuffled, SPLIT)
    sampler = QuerySampler(members, names, facets, train_names, min_answers, rng)
    for name in shuffled:  # single queries are taken, so booleans cannot repeat them
        sampler.seen.add(canonical_key(Term(name)))
    and2 = _split_by_answers(sampler.two_way(And, max_queries_per_structure), sampler)
    or2 = _split_by_answers(sampler.two_way(Or, max_queries_per_structure), sampler)
    held_out = math.ceil(SPLIT[2] * max_queries_per_structure)
    test_only = sampler.and3(held_out) + sampler.or3(held_out) + sampler.or_and(held_out) + sampler.and_or(held_out)
    return {
        "train": [Term(n) for n in sorted(train_names)] + and2[0] + or2[0],
        "valid": [Term(n) for n in sorted(valid_names)] + and2[1] + or2[1],
        "test": [Term(n) for n in sorted(test_names)] + and2[2] + or2[2] + test_only,
    }


# --- the dataset -------------------------------------------------------------------------


def _subset(packages: Sequence[Package], max_items: int) -> list[Package]:
    """The ``max_items`` packages with the smallest BLAKE2b hash of their name: a
    deterministic sample that does not depend on file order and grows by inclusion."""
    return sorted(packages, key=lambda p: hashlib.blake2b(p.name.encode("utf-8"), digest_size=8).digest())[:max_items]


def _count(table: dict[str, dict[str, int]], split: str, key: str) -> None:
    row = table.setdefault(split, {})
    row[key] = row.get(key, 0) + 1


def load_debian_packages(
    path: str | os.PathLike[str] | None = None,
    *,
    min_answers: int = 10,
    seed: int = 0,
    max_queries_per_structure: int = 5000,
    max_items: int | None = None,
) -> RetrievalDataset:
    """The Debian package catalog: tagged packages as items, debtags and their boolean
    combinations as queries, exact answers (all grade 1), train/valid/test splits.

    :param path: a Debian ``Packages`` file (plain, gzip, xz, bzip2, or lz4 with the
        ``lz4`` package); ``None`` reads apt's lists through ``apt-cache dumpavail``.
    :param min_answers: every term and every query has at least this many answers.
    :param seed: shuffles the terms into splits and draws the boolean queries.
    :param max_queries_per_structure: at most this many ``e and e`` and ``e or e``
        queries each (before the 80/10/10 cut) and a tenth of it (rounded up) for each
        test-only structure; smaller values make a quicker dataset, 0 single terms only.
    :param max_items: keep only this many tagged packages, chosen by a hash of their name
        (deterministic, independent of file order; a smaller subset lies inside a larger one).
    :raises PackagesFileError: the source is missing, unreadable or malformed, has no
        tagged packages, or no tag with ``min_answers`` packages.
    """
    if isinstance(min_answers, bool) or not isinstance(min_answers, int) or min_answers < 1:
        raise ValueError(f"min_answers must be a positive int, got {min_answers!r}")
    if isinstance(max_queries_per_structure, bool) or not isinstance(max_queries_per_structure, int):
        raise ValueError(f"max_queries_per_structure must be an int, got {max_queries_per_structure!r}")
    if max_queries_per_structure < 0:
        raise ValueError(f"max_queries_per_structure must be >= 0, got {max_queries_per_structure}")
    if max_items is not None and (isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1):
        raise ValueError(f"max_items must be a positive int or None, got {max_items!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    source = read_packages(path)
    if not source.tagged:
        raise PackagesFileError(
            source.source,
            f"none of its {source.packages} packages has a Tag field (debtags)",
            hint="Use a Packages file of Debian's main archive (the security archive's and other distributions' "
            "lists may carry no Tag fields), or apt-cache dumpavail on a Debian system.",
        )
    structural = sorted({t for p in source.tagged for t in p.tags if is_structural(t)})
    packages = [p for p in source.tagged if any(not is_structural(t) for t in p.tags)]
    if not packages:
        raise PackagesFileError(source.source, "every Tag field holds only structural tags (special::*, *::TODO)")
    if max_items is not None:
        packages = _subset(packages, max_items)
    packages.sort(key=lambda p: p.name)

    # Tag -> items; terms are the tags with at least min_answers items.
    tag_items: dict[str, list[int]] = {}
    for item, package in enumerate(packages):
        for tag in package.tags:
            if not is_structural(tag):
                tag_items.setdefault(tag, []).append(item)
    kept = sorted(tag for tag, ids in tag_items.items() if len(ids) >= min_answers)
    if not kept:
        largest = max(len(ids) for ids in tag_items.values())
        raise PackagesFileError(
            source.source,
            f"no tag is carried by min_answers={min_answers} of its {len(packages)} tagged packages "
            f"(the most common by {largest})",
            hint="Lower min_answers, or use a larger Packages file.",
        )
    names_of = term_names(kept)
    order = sorted(kept, key=lambda t: names_of[t])
    names = [names_of[t] for t in order]
    facets = [facet_of(t) for t in order]
    members = np.zeros((len(order), len(packages)), dtype=bool)
    for row, tag in enumerate(order):
        members[row, tag_items[tag]] = True
    index = SymbolicIndex(len(packages), {name: tag_items[tag] for name, tag in zip(names, order)})

    queries = make_splits(
        members,
        names,
        facets,
        min_answers=min_answers,
        max_queries_per_structure=max_queries_per_structure,
        seed=seed,
    )
    splits: dict[str, list[QueryExample]] = {}
    kinds: dict[str, dict[str, int]] = {}
    shapes: dict[str, dict[str, int]] = {}
    also_in_train: dict[str, dict[str, int]] = {}
    train_answers: set[bytes] = set()
    for split in SPLITS:  # train first
        answers = index.evaluate_many(queries[split])
        examples = []
        for query, ids in zip(queries[split], answers):
            if ids.size < min_answers:  # guarded by the sampler; a failure here is a bug
                raise AssertionError(f"query {query} has {ids.size} answers, fewer than min_answers={min_answers}")
            examples.append(QueryExample(query, dict.fromkeys(ids.tolist(), 1)))
            _count(kinds, split, query_kind(query))
            _count(shapes, split, str(structure(query)))
            if split == "train":
                train_answers.add(ids.tobytes())
            elif ids.tobytes() in train_answers:
                _count(also_in_train, split, str(structure(query)))
        splits[split] = examples

    metadata: dict[str, Any] = {
        "source": source.source,
        "source_sha256": source.sha256,
        "compression": source.compression,
        "parameters": {
            "min_answers": min_answers,
            "seed": seed,
            "max_queries_per_structure": max_queries_per_structure,
            "max_items": max_items,
        },
        "counts": {
            "lines": source.lines,
            "paragraphs": source.paragraphs,
            "packages": source.packages,
            "duplicates_dropped": source.duplicates,
            "tagged_packages": len(source.tagged),
            "items": len(packages),
            "tags": len(tag_items),
            "structural_tags_skipped": len(structural),
            "facets": len({facet_of(t) for t in tag_items}),
            "terms": len(names),
            "term_facets": len(set(facets)),
        },
        "terms": dict(zip(names, order)),
        "structural_tags": structural,
        "rendering": RENDERING,
        "structural_rule": STRUCTURAL_RULE,
        "title": TITLE_RULE,
        "deduplication": DEDUPLICATION,
        "grading": GRADING,
        "split_rule": SPLIT_RULE,
        "splits": kinds,
        "structures": shapes,
        "answer_set_also_in_train": also_in_train,
    }
    items = [f"{p.name} — {p.synopsis}" if p.synopsis else p.name for p in packages]
    return RetrievalDataset(DATASET_NAME, items, [p.name for p in packages], splits, index, metadata)
