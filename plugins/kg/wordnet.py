"""WordNet 3.0 nouns as a knowledge graph, and its BetaE-style query release (cached).

Entities are noun synsets (NLTK names, ``knife.n.01``); relations are the noun-to-noun
pointer types of ``data.noun``, one direction of each inverse pair (the generator adds
the reciprocals, so keeping both WordNet directions would put every fact in twice and
leak held-out edges through their inverses):

=======  =======================  =========================================
symbol   relation                 its inverse (added as ``-relation``)
=======  =======================  =========================================
``@``    hypernym                 hyponym (``~``)
``@i``   instance_hypernym        instance_hyponym (``~i``)
``#m``   member_holonym           member_meronym (``%m``)
``#s``   substance_holonym        substance_meronym (``%s``)
``#p``   part_holonym             part_meronym (``%p``)
``;c``   domain_topic             member_of_domain_topic (``-c``)
``;r``   domain_region            member_of_domain_region (``-r``)
``;u``   domain_usage             member_of_domain_usage (``-u``)
``+``    derivationally_related   itself (symmetric; kept once per pair)
``!``    antonym                  itself (symmetric; kept once per pair)
=======  =======================  =========================================

``root`` restricts the graph to a synset and everything below it along hypernym and
instance-hypernym pointers (``artifact.n.01``: 10,699 synsets), for quick runs. The
triples are split 90 / 5 / 5 with every held-out entity and relation kept in train
(:func:`~boxlib_plugins.kg.generate.split_triples`), then
:func:`~boxlib_plugins.kg.generate.generate_release` builds the queries.

The release is written once under the cache directory (``$BOXLIB_CACHE``, else
``~/.cache/boxlib``), in ``kg/wordnet-<key>/``, where the key hashes every parameter
and the content of ``data.noun`` and ``index.noun``; later calls only read it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .cache import cached_release, file_sha256
from .generate import DEFAULT_TRAIN_STRUCTURES, KGTriples, generate_release, split_triples
from .release import POSITIVE_STRUCTURES, BetaERelease

__all__ = ["WORDNET_RELATIONS", "build_wordnet_release", "wordnet_triples"]

#: The pointer symbols that become relations (one direction per inverse pair).
WORDNET_RELATIONS = ("@", "@i", "#m", "#s", "#p", ";c", ";r", ";u", "+", "!")
_SYMMETRIC = {"+", "!"}
#: Bump when the build changes, so old caches are not read.
_BUILD_VERSION = 1


def wordnet_triples(
    wordnet_dir: str | os.PathLike[str] | None = None,
    *,
    root: str | None = None,
    valid: float = 0.05,
    test: float = 0.05,
    seed: int = 0,
) -> KGTriples:
    """The WordNet noun graph (below ``root`` when given), split into train / valid / test."""
    from boxlib_plugins.wordnet.wndb import POINTER_NAMES, WordNetFileError, read_noun_database

    synsets = read_noun_database(wordnet_dir)
    keep = set(synsets)
    if root is not None:
        by_name = {s.name: s.offset for s in synsets.values()}
        if root not in by_name:
            import difflib

            close = difflib.get_close_matches(root, list(by_name), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else " (names look like artifact.n.01)"
            raise WordNetFileError(f"root: no noun synset named {root!r}{hint}")
        keep = _below(synsets, by_name[root])
    offsets = sorted(keep, key=lambda o: synsets[o].name)
    entity = {offset: i for i, offset in enumerate(offsets)}
    relation = {symbol: k for k, symbol in enumerate(WORDNET_RELATIONS)}
    triples = set()
    for offset in offsets:
        for symbol, target in synsets[offset].pointers:
            if symbol not in relation or target not in entity or target == offset:
                continue
            h, t = entity[offset], entity[target]
            if symbol in _SYMMETRIC and h > t:
                h, t = t, h
            triples.add((h, relation[symbol], t))
    array = np.array(sorted(triples), dtype=np.int64).reshape(-1, 3)
    train, valid_triples, test_triples = split_triples(array, valid=valid, test=test, seed=seed)
    return KGTriples(
        [synsets[o].name for o in offsets],
        [POINTER_NAMES[s] for s in WORDNET_RELATIONS],
        train,
        valid_triples,
        test_triples,
    )


def _below(synsets: Mapping[str, Any], root: str) -> set[str]:
    """``root`` and every synset with a hypernym / instance-hypernym path up to it."""
    children: dict[str, list[str]] = {}
    for synset in synsets.values():
        for parent in synset.parents:
            children.setdefault(parent, []).append(synset.offset)
    seen, stack = {root}, [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def build_wordnet_release(
    *,
    root: str | None = None,
    train_queries: int | Mapping[str, int] | None = None,
    eval_queries: int | Mapping[str, int] = 500,
    train_structures: Sequence[str] = DEFAULT_TRAIN_STRUCTURES,
    eval_structures: Sequence[str] = POSITIVE_STRUCTURES,
    max_answers: int | None = 100,
    valid: float = 0.05,
    test: float = 0.05,
    seed: int = 0,
    wordnet_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
) -> Path:
    """The release directory of the WordNet KG with these parameters, built on first use
    (see :func:`~boxlib_plugins.kg.cache.cached_release`)."""
    from boxlib_plugins.wordnet.wndb import find_wordnet_dir

    source = find_wordnet_dir(wordnet_dir)
    params = {
        "version": _BUILD_VERSION,
        "root": root,
        "train_queries": _plain_counts(train_queries),
        "eval_queries": _plain_counts(eval_queries),
        "train_structures": list(train_structures),
        "eval_structures": list(eval_structures),
        "max_answers": max_answers,
        "valid": valid,
        "test": test,
        "seed": seed,
        "data.noun": file_sha256(source / "data.noun"),
        "index.noun": file_sha256(source / "index.noun"),
    }

    def build() -> BetaERelease:
        start = time.perf_counter()
        kg = wordnet_triples(source, root=root, valid=valid, test=test, seed=seed)
        release = generate_release(
            kg,
            train_structures=train_structures,
            eval_structures=eval_structures,
            train_queries=train_queries,
            eval_queries=eval_queries,
            max_answers=max_answers,
            seed=seed,
        )
        release.info["wordnet"] = {
            "source": str(source),
            "root": root,
            "relations": dict(zip(WORDNET_RELATIONS, kg.relation_names)),
            "build_seconds": round(time.perf_counter() - start, 2),
        }
        return release

    return cached_release("wordnet", params, build, cache_dir=cache_dir, rebuild=rebuild)


def _plain_counts(value: int | Mapping[str, int] | None) -> int | dict[str, int] | None:
    if value is None:
        return None
    return {str(k): int(v) for k, v in sorted(value.items())} if isinstance(value, Mapping) else int(value)
