"""Logical queries from any knowledge graph, following BetaE's protocol.

Given train / valid / test triples over *base* relations, :func:`generate_release`
produces a :class:`~boxlib_plugins.kg.release.BetaERelease`, the same content as the
released FB15k-237-betae files:

* **Reciprocal relations.** Base relation ``k`` becomes ids ``2k`` (``+name``) and
  ``2k + 1`` (``-name``, tail to head), KGReasoning's indexing. Entity and relation
  ids come from the train triples; held-out triples naming anything unseen in train are
  dropped (and counted), as in BetaE.
* **Three nested graphs.** train; train + valid; train + valid + test.
* **Sampling** (KGReasoning ``create_queries.py``): draw an answer uniformly among the
  entities with an incoming edge, then fill the structure backwards from it: each path
  step picks one of the current entity's incoming relation types uniformly (never the
  inverse of the step after it, so a path does not walk straight back) and one of its
  heads along that relation uniformly; an intersection or union fills every branch from
  the same entity and is rejected when two branches come out equal. Repeated queries are
  rejected.
* **Answers** are exact, from :class:`~boxlib.query.SymbolicIndex` (bitsets and CSR
  adjacency, one batch of candidate queries at a time). Train queries are answered on the
  train graph. A valid query is answered on train + valid: its *easy* answers are those
  the train graph already gives, its *hard* answers the rest, and it is kept only with at
  least one hard answer (test: on the full graph against train + valid). A query with
  negation must also lose an answer through the new edges.
* **Answer cap.** A query is dropped when it has more than ``max_answers`` answers
  (train) or hard answers (valid / test) — KGReasoning's ``max_ans_num`` test.

Generation is deterministic given ``seed`` (each split and structure draws from its own
seeded stream, so changing one count leaves the other structures' queries unchanged).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from boxlib.query import SymbolicIndex, from_betae
from boxlib.query.kg import BETAE_STRUCTURES

from .release import POSITIVE_STRUCTURES, SPLITS, BetaERelease, KGFileError

__all__ = [
    "DEFAULT_TRAIN_STRUCTURES",
    "KGTriples",
    "generate_release",
    "read_triples",
    "reciprocal",
    "split_triples",
]

#: What Query2Box and BetaE train on (besides the negation structures).
DEFAULT_TRAIN_STRUCTURES = ("1p", "2p", "3p", "2i", "3i")


@dataclasses.dataclass
class KGTriples:
    """A knowledge graph as train / valid / test ``(head, relation, tail)`` int triples.

    Relations are the *base* relations (no reciprocals; :func:`generate_release` adds
    them). Every entity and relation id is below ``len(entity_names)`` /
    ``len(relation_names)``.

    :param dropped: held-out triples left out because they name an entity or relation
        that no train triple has, per split.
    """

    entity_names: list[str]
    relation_names: list[str]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for split in SPLITS:
            array = np.asarray(getattr(self, split), dtype=np.int64).reshape(-1, 3)
            for column, limit, what in (
                (0, self.n_entities, "head"),
                (1, self.n_relations, "relation"),
                (2, self.n_entities, "tail"),
            ):
                bad = (array[:, column] < 0) | (array[:, column] >= limit)
                if bad.any():
                    raise ValueError(f"{split} triple {array[bad][0].tolist()}: {what} id outside 0..{limit - 1}")
            setattr(self, split, array)

    @property
    def n_entities(self) -> int:
        return len(self.entity_names)

    @property
    def n_relations(self) -> int:
        return len(self.relation_names)

    @classmethod
    def from_arrays(
        cls,
        train: object,
        valid: object = (),
        test: object = (),
        *,
        n_entities: int | None = None,
        n_relations: int | None = None,
        entity_names: Sequence[str] | None = None,
        relation_names: Sequence[str] | None = None,
    ) -> KGTriples:
        """From int arrays ``[m, 3]``; counts default to the largest id + 1, names to the ids."""
        arrays = [np.asarray(a, dtype=np.int64).reshape(-1, 3) for a in (train, valid, test)]
        every = np.concatenate(arrays)
        if n_entities is None:
            n_entities = len(entity_names) if entity_names is not None else int(every[:, [0, 2]].max(initial=-1)) + 1
        if n_relations is None:
            n_relations = len(relation_names) if relation_names is not None else int(every[:, 1].max(initial=-1)) + 1
        entities = list(entity_names) if entity_names is not None else [str(i) for i in range(n_entities)]
        relations = list(relation_names) if relation_names is not None else [str(i) for i in range(n_relations)]
        if len(entities) != n_entities or len(relations) != n_relations:
            raise ValueError(
                f"{len(entities)} entity names for {n_entities} entities, {len(relations)} relation names for "
                f"{n_relations} relations"
            )
        return cls(entities, relations, *arrays)


def read_triples(
    source: str | Path | Mapping[str, str | Path], *, ids: bool = False, require_seen: bool = True
) -> KGTriples:
    """Read ``head<TAB>relation<TAB>tail`` triple files.

    :param source: a directory holding ``train.txt`` (required), ``valid.txt`` and
        ``test.txt``, or a mapping ``split → path``.
    :param ids: the fields are int ids (``0 ..``) rather than names.
    :param require_seen: with names, ids are given to the entities and relations of the
        train file (sorted by name) and held-out triples naming anything else are
        dropped, as BetaE does; otherwise every name gets an id.

    :raises KGFileError: a missing train file, or a line without three fields.
    """
    if isinstance(source, Mapping):
        paths = {split: Path(p) for split, p in source.items()}
        unknown = set(paths) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)}; triples come as {', '.join(SPLITS)}")
    else:
        directory = Path(source)
        if not directory.is_dir():
            raise KGFileError(f"{directory}: not a directory (expected train.txt, valid.txt, test.txt)")
        paths = {split: directory / f"{split}.txt" for split in SPLITS if (directory / f"{split}.txt").exists()}
    if "train" not in paths:
        raise KGFileError(f"{source}: no train.txt (head<TAB>relation<TAB>tail triples)")
    rows = {split: _read_rows(path) for split, path in paths.items()}
    if ids:
        arrays = {}
        for split, lines in rows.items():
            try:
                arrays[split] = np.array([[int(x) for x in fields] for _, fields in lines], dtype=np.int64).reshape(
                    -1, 3
                )
            except ValueError:
                number, fields = next((n, f) for n, f in lines if not all(_is_int(x) for x in f))
                raise KGFileError(f"{paths[split]}:{number}: expected int ids with ids=True, got {fields}") from None
            if (arrays[split] < 0).any():
                raise KGFileError(f"{paths[split]}: negative id; ids start at 0")
        return KGTriples.from_arrays(arrays["train"], arrays.get("valid", ()), arrays.get("test", ()))
    named = rows["train"] if require_seen else [r for lines in rows.values() for r in lines]
    entities = sorted({f[0] for _, f in named} | {f[2] for _, f in named})
    relations = sorted({f[1] for _, f in named})
    entity_id = {name: i for i, name in enumerate(entities)}
    relation_id = {name: i for i, name in enumerate(relations)}
    arrays = {}
    dropped = {}
    for split in SPLITS:
        kept = [
            (entity_id[h], relation_id[r], entity_id[t])
            for _, (h, r, t) in rows.get(split, [])
            if h in entity_id and t in entity_id and r in relation_id
        ]
        dropped[split] = len(rows.get(split, [])) - len(kept)
        arrays[split] = np.array(kept, dtype=np.int64).reshape(-1, 3)
    return KGTriples(entities, relations, arrays["train"], arrays["valid"], arrays["test"], dropped)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KGFileError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KGFileError(f"{path}: cannot read: {exc}") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 3 or not all(fields):
            raise KGFileError(f"{path}:{number}: expected head<TAB>relation<TAB>tail, got {line!r}")
        rows.append((number, fields))
    return rows


def split_triples(
    triples: object, *, valid: float = 0.05, test: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split int triples ``[m, 3]`` into train / valid / test, about ``1 - valid - test`` /
    ``valid`` / ``test`` of them, so that every entity and relation of a held-out triple
    keeps at least one train triple.

    Triples are visited in a seeded random order; one is held out only while its head,
    tail and relation still have another train triple. Entities with a single triple
    (leaves) therefore always stay in train, and the held-out fractions can come out
    below the targets on very sparse graphs. Deterministic given ``seed``.
    """
    array = np.unique(np.asarray(triples, dtype=np.int64).reshape(-1, 3), axis=0)
    if not (valid >= 0 and test >= 0 and valid + test < 1):
        raise ValueError(f"valid and test fractions must be non-negative and sum below 1, got {valid}, {test}")
    order = np.random.default_rng(seed).permutation(len(array))
    targets = [round(valid * len(array)), round(test * len(array))]
    degree = np.bincount(array[:, [0, 2]].ravel(), minlength=int(array[:, [0, 2]].max(initial=-1)) + 1)
    uses = np.bincount(array[:, 1], minlength=int(array[:, 1].max(initial=-1)) + 1)
    degree, uses = degree.tolist(), uses.tolist()
    chosen: list[list[int]] = [[], []]
    which = 0
    for position in order.tolist():
        if len(chosen[0]) >= targets[0] and len(chosen[1]) >= targets[1]:
            break
        h, r, t = array[position].tolist()
        if h == t:
            continue  # self loops stay in train (their entity would count twice in the degree test)
        if degree[h] < 2 or degree[t] < 2 or uses[r] < 2:
            continue
        while len(chosen[which]) >= targets[which]:
            which ^= 1
        chosen[which].append(position)
        degree[h] -= 1
        degree[t] -= 1
        uses[r] -= 1
        which ^= 1  # alternate, so valid and test are drawn from the same part of the order
    held = np.zeros(len(array), dtype=bool)
    valid_ids, test_ids = (np.sort(np.asarray(c, dtype=np.int64)) for c in chosen)
    held[valid_ids] = True
    held[test_ids] = True
    return array[~held], array[valid_ids], array[test_ids]


def reciprocal(triples: np.ndarray) -> np.ndarray:
    """Base triples ``(h, k, t)`` → ``(h, 2k, t)`` and ``(t, 2k + 1, h)``, sorted, unique."""
    triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    forward = np.stack([triples[:, 0], 2 * triples[:, 1], triples[:, 2]], axis=1)
    backward = np.stack([triples[:, 2], 2 * triples[:, 1] + 1, triples[:, 0]], axis=1)
    return np.unique(np.concatenate([forward, backward]), axis=0)


class _Graph:
    """One graph: its exact index and the incoming adjacency the sampler walks."""

    def __init__(self, n_entities: int, edges: np.ndarray):
        self.index = SymbolicIndex.from_triples(n_entities, edges)
        # Incoming edges sorted by (tail, relation, head); group them by (tail, relation).
        order = np.lexsort((edges[:, 0], edges[:, 1], edges[:, 2]))
        heads, rels, tails = edges[order, 0], edges[order, 1], edges[order, 2]
        n_relations = int(rels.max(initial=-1)) + 1
        pair = tails * max(n_relations, 1) + rels
        starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]]) if len(pair) else np.zeros(0, dtype=np.int64)
        pair_tail = tails[starts]
        self.pair_rel: list[int] = rels[starts].tolist()
        self.pair_start: list[int] = np.r_[starts, len(pair)].tolist()
        self.node_ptr: list[int] = np.searchsorted(pair_tail, np.arange(n_entities + 1)).tolist()
        self.heads: list[int] = heads.tolist()
        self.answers: list[int] = np.unique(tails).tolist()  # entities with an incoming edge


class _Sampler:
    """Fills a structure template backwards from an answer (KGReasoning's ``fill_query``)."""

    def __init__(self, graph: _Graph, rng: random.Random):
        self.graph, self.rng = graph, rng

    def query(self, template: tuple) -> tuple | None:
        answers = self.graph.answers
        return self.fill(template, answers[self.rng.randrange(len(answers))])

    def fill(self, template: tuple, answer: int) -> tuple | None:
        steps = template[-1]
        if all(step in ("r", "n") for step in steps):
            g, rng = self.graph, self.rng
            filled: list[int] = [0] * len(steps)
            current, after = answer, -1
            for i in range(len(steps) - 1, -1, -1):
                if steps[i] == "n":
                    filled[i] = -2
                    continue
                lo, hi = g.node_ptr[current], g.node_ptr[current + 1]
                if after < 0:
                    allowed = range(lo, hi)
                else:  # not the reciprocal of the next step: the path would walk straight back
                    allowed = [p for p in range(lo, hi) if g.pair_rel[p] >> 1 != after >> 1 or g.pair_rel[p] == after]
                if not allowed:
                    return None
                p = allowed[rng.randrange(len(allowed))]
                after = filled[i] = g.pair_rel[p]
                current = g.heads[rng.randrange(g.pair_start[p], g.pair_start[p + 1])]
            anchor = template[0]
            if anchor == "e":
                return (current, tuple(filled))
            inner = self.fill(anchor, current)
            return None if inner is None else (inner, tuple(filled))
        branches = []
        for branch in template:
            if branch == ("u",):
                branches.append((-1,))
                continue
            filled_branch = self.fill(branch, answer)
            if filled_branch is None:
                return None
            branches.append(filled_branch)
        if len(set(branches)) < len(branches):
            return None  # two equal branches: not a real intersection / union
        return tuple(branches)


def _per_structure(value: int | Mapping[str, int], structures: Sequence[str], what: str) -> dict[str, int]:
    if isinstance(value, Mapping):
        missing = [s for s in structures if s not in value]
        if missing:
            raise ValueError(f"{what}: no count for structure(s) {', '.join(missing)}")
        counts = {s: int(value[s]) for s in structures}
    else:
        counts = dict.fromkeys(structures, int(value))
    if any(c < 0 for c in counts.values()):
        raise ValueError(f"{what}: counts must be non-negative, got {counts}")
    return counts


def generate_release(
    kg: KGTriples,
    *,
    train_structures: Iterable[str] = DEFAULT_TRAIN_STRUCTURES,
    eval_structures: Iterable[str] = POSITIVE_STRUCTURES,
    train_queries: int | Mapping[str, int] | None = None,
    eval_queries: int | Mapping[str, int] = 1_000,
    max_answers: int | None = 100,
    seed: int = 0,
    max_attempts: int = 50,
    progress: Callable[[str], None] | None = None,
) -> BetaERelease:
    """BetaE-style queries and answers for ``kg`` (see the module docstring).

    :param train_structures: structures of the train split (BetaE: ``1p 2p 3p 2i 3i``
        and the negations).
    :param eval_structures: structures of valid and test (BetaE: all fourteen; the
        default is the nine without negation, which Query2Box answers).
    :param train_queries: queries per train structure (an int, or ``name → count``).
        ``None`` is BetaE's rule: every ``(entity, relation)`` pair of the train graph is
        a ``1p`` query (when within the answer cap) and every other train structure gets
        as many queries.
    :param eval_queries: queries per valid / test structure.
    :param max_answers: drop a query with more (hard) answers; ``None``: no cap.
    :param max_attempts: give up on a structure after ``max_attempts × count``
        candidates (a small graph may not have that many distinct queries); the numbers
        reached are in ``release.info["queries"]`` and any shortfall in
        ``release.info["shortfall"]``.
    """
    start = time.perf_counter()
    train_structures, eval_structures = list(train_structures), list(eval_structures)
    for name in [*train_structures, *eval_structures]:
        if name not in BETAE_STRUCTURES or name.endswith("-DM"):
            known = [s for s in BETAE_STRUCTURES if not s.endswith("-DM")]
            raise ValueError(f"unknown query structure {name!r}; use {', '.join(known)}")
    if max_answers is not None and max_answers < 1:
        raise ValueError(f"max_answers must be at least 1 (or None for no cap), got {max_answers}")
    if not len(kg.train):
        raise ValueError("the knowledge graph has no train triples to build queries from")
    n = kg.n_entities
    edges = {split: reciprocal(getattr(kg, split)) for split in SPLITS}
    every_1p = _every_path(edges["train"], max_answers) if train_queries is None else None
    if every_1p is not None:
        train_queries = len(every_1p)
    wanted = {
        "train": _per_structure(train_queries, train_structures, "train_queries"),
        "valid": _per_structure(eval_queries, eval_structures, "eval_queries"),
        "test": _per_structure(eval_queries, eval_structures, "eval_queries"),
    }
    graphs = {
        "train": _Graph(n, edges["train"]),
        "valid": _Graph(n, np.unique(np.concatenate([edges["train"], edges["valid"]]), axis=0)),
        "test": _Graph(n, np.unique(np.concatenate([edges["train"], edges["valid"], edges["test"]]), axis=0)),
    }
    smaller = {"train": None, "valid": graphs["train"], "test": graphs["valid"]}
    queries: dict[str, dict[tuple, set[tuple]]] = {split: {} for split in SPLITS}
    train_answers: dict[tuple, set[int]] = {}
    easy: dict[str, dict[tuple, set[int]]] = {"valid": {}, "test": {}}
    hard: dict[str, dict[tuple, set[int]]] = {"valid": {}, "test": {}}
    shortfall: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        for name, count in wanted[split].items():
            if split == "train" and name == "1p" and every_1p is not None:
                found = every_1p
            elif split != "train" and not len(edges[split]):
                found = {}  # no held-out edge, so no query with a hard answer
            else:
                found = _sample_structure(
                    graphs[split], smaller[split], name, count, max_answers, f"{seed}/{split}/{name}", max_attempts
                )
            template = BETAE_STRUCTURES[name]
            queries[split][template] = set(found)
            for query, (easy_ids, hard_ids) in found.items():
                if split == "train":  # .tolist(): Python ints, the only ints a release pickle may hold
                    train_answers[query] = set(hard_ids.tolist())
                else:
                    easy[split][query] = set(easy_ids.tolist())
                    hard[split][query] = set(hard_ids.tolist())
            if len(found) < count:
                shortfall.setdefault(split, {})[name] = count - len(found)
            if progress:
                progress(f"{split} {name}: {len(found)} queries")
    relation_names = [f"{sign}{name}" for name in kg.relation_names for sign in ("+", "-")]
    release = BetaERelease(
        n_entities=n,
        n_relations=2 * kg.n_relations,
        queries=queries,
        train_answers=train_answers,
        easy_answers=easy,
        hard_answers=hard,
        entity_names=list(kg.entity_names),
        relation_names=relation_names,
        triples=edges,
    )
    release.info = {
        "generator": {
            "train_structures": train_structures,
            "eval_structures": eval_structures,
            "train_queries": "every train (entity, relation) pair" if every_1p is not None else dict(wanted["train"]),
            "eval_queries": dict(wanted["valid"]),
            "max_answers": max_answers,
            "seed": seed,
        },
        "base_triples": {split: int(len(getattr(kg, split))) for split in SPLITS},
        "dropped_triples": dict(kg.dropped),
        "queries": release.counts(),
        "shortfall": shortfall,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return release


def _every_path(edges: np.ndarray, max_answers: int | None) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
    """Every ``(head, relation)`` pair of ``edges`` as a 1p query → (no easy, its tails), in
    sorted order, leaving out those with more than ``max_answers`` tails."""
    edges = np.unique(edges, axis=0)  # sorted by head, relation, tail
    if not len(edges):
        return {}
    pair = edges[:, :2]
    starts = np.flatnonzero(np.r_[True, (pair[1:] != pair[:-1]).any(axis=1)])
    ends = np.r_[starts[1:], len(edges)]
    none = edges[:0, 2]
    out = {}
    for (head, relation), lo, hi in zip(pair[starts].tolist(), starts.tolist(), ends.tolist()):
        if max_answers is None or hi - lo <= max_answers:
            out[(head, (relation,))] = (none, edges[lo:hi, 2])
    return out


def _sample_structure(
    graph: _Graph,
    smaller: _Graph | None,
    name: str,
    count: int,
    max_answers: int | None,
    stream: str,
    max_attempts: int,
) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
    """``count`` distinct queries of structure ``name``: query → (easy, hard) answer ids.

    With ``smaller`` None (train) every answer is "hard" (the answers to train on).
    """
    template = BETAE_STRUCTURES[name]
    negated = "n" in name
    sampler = _Sampler(graph, random.Random(stream))  # str seeds hash with SHA-512: stable across runs
    found: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    rejected: set[tuple] = set()  # answered already and refused: never evaluate twice
    budget = max(1_000, max_attempts * count)
    tried = 0
    while len(found) < count and tried < budget:
        rate = (len(found) + 1) / (tried + 1)
        size = int(min(8_192, max(256, 1.2 * (count - len(found)) / rate)))
        batch: dict[tuple, None] = {}
        for _ in range(min(size, budget - tried)):
            tried += 1
            query = sampler.query(template)
            if query is not None and query not in found and query not in rejected:
                batch[query] = None
        if not batch:
            continue
        candidates = list(batch)
        asts = [from_betae(q) for q in candidates]
        full = graph.index.evaluate_many(asts)
        before = smaller.index.evaluate_many(asts) if smaller is not None else None
        for position, query in enumerate(candidates):
            answers = full[position]
            if before is None:
                easy_ids, hard_ids, lost = answers[:0], answers, answers[:0]
            else:
                easy_ids = np.intersect1d(answers, before[position], assume_unique=True)
                hard_ids = np.setdiff1d(answers, before[position], assume_unique=True)
                lost = np.setdiff1d(before[position], answers, assume_unique=True)
            if (
                hard_ids.size == 0
                or (before is not None and negated and lost.size == 0)
                or (max_answers is not None and max(hard_ids.size, lost.size) > max_answers)
            ):
                rejected.add(query)
                continue
            found[query] = (easy_ids, hard_ids)
            if len(found) == count:
                break
    return found
