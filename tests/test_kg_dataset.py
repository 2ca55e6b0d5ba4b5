"""The knowledge-graph plugin: BetaE release reader (restricted unpickling), generator,
WordNet KG, filtered evaluation, and the Query2Box geometry fallback.

References are computed independently of the code under test: answers by a brute-force
evaluator over Python sets written here, filtered ranks by hand.
"""

from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from boxlib_plugins.anthem.task import RankingTask
from boxlib_plugins.kg import release as release_module
from boxlib_plugins.kg.generate import KGTriples, generate_release, read_triples, reciprocal, split_triples
from boxlib_plugins.kg.release import (
    BetaERelease,
    KGFileError,
    load_pickle,
    read_release,
    release_to_dataset,
    write_release,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import boxlib
from boxlib.data import QueryExample, RetrievalDataset
from boxlib.plugins import host
from boxlib.query import BETAE_STRUCTURES, Project, Term, betae_name, from_betae, to_betae

FIXTURES = Path(__file__).parent / "fixtures" / "kg"
WORDNET = Path("/usr/share/wordnet")
needs_wordnet = pytest.mark.skipif(not (WORDNET / "data.noun").is_file(), reason="WordNet 3.0 (wordnet-base) absent")


# --- a reference evaluator over Python sets --------------------------------------------------


def adjacency(edges) -> dict[tuple[int, int], set[int]]:
    out: dict[tuple[int, int], set[int]] = collections.defaultdict(set)
    for h, r, t in np.asarray(edges).tolist():
        out[h, r].add(t)
    return out


def answer(query, adj, n) -> set[int]:
    """BetaE tuple semantics, written from the format's definition (KGReasoning's achieve_answer)."""
    last = query[-1]
    if last == (-1,):
        return set().union(*(answer(b, adj, n) for b in query[:-1]))
    if all(isinstance(step, int) for step in last):
        current = {query[0]} if isinstance(query[0], int) else answer(query[0], adj, n)
        for step in last:
            if step == -2:
                current = set(range(n)) - current
            else:
                current = {t for h in current for t in adj.get((h, step), ())}
        return current
    result = answer(query[0], adj, n)
    for branch in query[1:]:
        result &= answer(branch, adj, n)
    return result


def random_kg(seed: int, n: int = 40, relations: int = 3, m: int = 160) -> KGTriples:
    rng = np.random.default_rng(seed)
    triples = np.stack([rng.integers(0, n, m), rng.integers(0, relations, m), rng.integers(0, n, m)], 1)
    train, valid, test = split_triples(triples, valid=0.1, test=0.1, seed=seed)
    return KGTriples.from_arrays(train, valid, test, n_entities=n, n_relations=relations)


@pytest.fixture(scope="module")
def small_release() -> tuple[KGTriples, BetaERelease]:
    kg = random_kg(0)
    return kg, generate_release(kg, train_queries=40, eval_queries=15, max_answers=25, seed=3)


# --- restricted unpickler ----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_unpickler_reads_the_release_containers_in_every_protocol(tmp_path, protocol):
    # What KGReasoning writes: defaultdict(set) keyed by structure / query tuples.
    queries = collections.defaultdict(set)
    queries[("e", ("r",))] = {(3, (0,)), (4, (1,))}
    answers = collections.defaultdict(set, {(3, (0,)): {1, 2}, (4, (1,)): frozenset({5})})
    names = {0: "Paris", 1: "France"}
    for value in (queries, answers, names, [1, (2, 3)]):
        path = tmp_path / "x.pkl"
        path.write_bytes(pickle.dumps(value, protocol=protocol))
        assert load_pickle(path) == value


class _Exploit:
    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return (self.function, (self.argument,))


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("function", ["os.system", "builtins.eval", "builtins.exec"])
def test_unpickler_refuses_code_before_running_it(tmp_path, protocol, function):
    marker = tmp_path / "ran"
    code = {
        "os.system": (os.system, f"touch {marker}"),
        "builtins.eval": (eval, f"open({str(marker)!r}, 'w')"),
        "builtins.exec": (exec, f"open({str(marker)!r}, 'w')"),
    }[function]
    path = tmp_path / "train-answers.pkl"
    path.write_bytes(pickle.dumps({(1, (0,)): _Exploit(*code)}, protocol=protocol))
    with pytest.raises(KGFileError) as error:
        load_pickle(path)
    message = str(error.value)
    assert str(path) in message and "refused" in message
    assert function.split(".")[1] in message  # names the class (os.system pickles as posix.system)
    assert not marker.exists()


def test_unpickler_refuses_other_classes_and_bad_data(tmp_path):
    path = tmp_path / "q.pkl"
    path.write_bytes(pickle.dumps(collections.Counter({1: 2})))
    with pytest.raises(KGFileError, match="collections.Counter"):
        load_pickle(path)
    path.write_bytes(pickle.dumps(np.int64(3)))
    with pytest.raises(KGFileError, match="numpy"):
        load_pickle(path)
    full = pickle.dumps({(1, (2,)): set(range(50))})
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(KGFileError, match=r"q\.pkl: not a readable pickle.*truncated"):
        load_pickle(path)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(KGFileError, match="q.pkl"):
        load_pickle(path)
    with pytest.raises(KGFileError, match="missing.pkl: file not found"):
        load_pickle(tmp_path / "missing.pkl")


# --- release files -----------------------------------------------------------------------------


def test_round_trip_generator_files_reader(tmp_path, small_release):
    _, release = small_release
    write_release(release, tmp_path)
    assert (tmp_path / "stats.txt").read_text().splitlines() == [
        f"numentity: {release.n_entities}",
        f"numrelations: {release.n_relations}",
    ]
    again = read_release(tmp_path)
    assert again.n_entities == release.n_entities and again.n_relations == release.n_relations
    assert again.queries == release.queries
    assert again.train_answers == release.train_answers
    assert again.easy_answers == release.easy_answers
    assert again.hard_answers == release.hard_answers
    assert again.entity_names == release.entity_names and again.relation_names == release.relation_names
    assert set(again.triples) == set(release.triples)
    for split in release.triples:
        assert again.triples[split].tolist() == release.triples[split].tolist()
    assert again.info == release.info
    # Exactly KGReasoning's types: defaultdict(set) of sets.
    raw = pickle.loads((tmp_path / "valid-queries.pkl").read_bytes())
    assert isinstance(raw, collections.defaultdict) and raw.default_factory is set


def test_release_as_dataset(tmp_path, small_release):
    _, release = small_release
    dataset = release_to_dataset(release, "small")
    assert len(dataset.items) == release.n_entities
    assert dataset.metadata["n_relations"] == release.n_relations
    total = {split: sum(len(q) for q in by.values()) for split, by in release.queries.items()}
    assert {split: len(examples) for split, examples in dataset.splits.items()} == total
    for split in ("train", "valid", "test"):
        for example in dataset.splits[split]:
            query = to_betae(example.query)
            assert query in release.queries[split][BETAE_STRUCTURES[betae_name(example.query)]]
            if split == "train":
                assert set(example.relevant) == release.train_answers[query] and not example.filtered
            else:
                assert set(example.relevant) == release.hard_answers[split][query]
                assert example.filtered == frozenset(release.easy_answers[split][query])
    # The index is the full graph: it answers a test query with its easy and hard answers,
    # so scoring by it is a perfect ranking under the filtered metrics.
    for example in dataset.splits["test"]:
        assert set(dataset.index.evaluate(example.query).tolist()) == set(example.relevant) | example.filtered
    oracle = torch.zeros(len(dataset.splits["test"]), len(dataset.items))
    for row, example in enumerate(dataset.splits["test"]):
        oracle[row, dataset.index.evaluate(example.query)] = 1.0
    assert _FixedScores(dataset, oracle).evaluate("test") == {
        "filtered_mrr": 1.0,
        "filtered_hits@1": 1.0,
        "filtered_hits@3": 1.0,
        "filtered_hits@10": 1.0,
    }


def test_generated_answers_equal_brute_force(small_release):
    kg, release = small_release
    n = kg.n_entities
    graphs = {
        "train": adjacency(reciprocal(kg.train)),
        "valid": adjacency(reciprocal(np.concatenate([kg.train, kg.valid]))),
        "test": adjacency(reciprocal(np.concatenate([kg.train, kg.valid, kg.test]))),
    }
    assert sum(len(q) for q in release.queries["train"].values()) > 100
    for query in (q for by in release.queries["train"].values() for q in by):
        assert release.train_answers[query] == answer(query, graphs["train"], n)
        assert 0 < len(release.train_answers[query]) <= 25
    for split, before in (("valid", "train"), ("test", "valid")):
        assert sum(len(q) for q in release.queries[split].values()) > 30
        for query in (q for by in release.queries[split].values() for q in by):
            now, then = answer(query, graphs[split], n), answer(query, graphs[before], n)
            assert release.hard_answers[split][query] == now - then
            assert release.easy_answers[split][query] == now & then
            assert 0 < len(now - then) <= 25


def test_negation_structures_equal_brute_force():
    kg = random_kg(5, n=50, relations=3, m=300)
    negations = ["2in", "3in", "inp", "pin", "pni"]
    release = generate_release(
        kg, train_structures=negations, eval_structures=negations, train_queries=20, eval_queries=8, seed=1
    )
    n = kg.n_entities
    train = adjacency(reciprocal(kg.train))
    valid = adjacency(reciprocal(np.concatenate([kg.train, kg.valid])))
    assert sum(len(q) for q in release.queries["train"].values()) > 50
    for query in (q for by in release.queries["train"].values() for q in by):
        assert release.train_answers[query] == answer(query, train, n)
    for query in (q for by in release.queries["valid"].values() for q in by):
        now, then = answer(query, valid, n), answer(query, train, n)
        assert release.hard_answers["valid"][query] == now - then
        assert then - now  # a negation query must also lose an answer through the new edges


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_generated_queries_have_their_structure_and_distinct_branches(seed):
    kg = random_kg(seed, n=25, relations=2, m=90)
    release = generate_release(kg, train_queries=10, eval_queries=5, seed=seed, max_attempts=20)
    for by in release.queries.values():
        for structure, queries in by.items():
            name = next(n for n, t in BETAE_STRUCTURES.items() if t == structure)
            for query in queries:
                assert betae_name(from_betae(query)) == name
                _assert_distinct_branches(query, structure)


def _assert_distinct_branches(query, template):
    """Every intersection / union of ``query`` has pairwise different branches."""
    if isinstance(template[-1], tuple) and all(step in ("r", "n") for step in template[-1]):
        if isinstance(template[0], tuple):
            _assert_distinct_branches(query[0], template[0])
        return
    branches = [(b, t) for b, t in zip(query, template) if t != ("u",)]
    assert len({b for b, _ in branches}) == len(branches), query
    for branch, shape in branches:
        _assert_distinct_branches(branch, shape)


def test_generation_is_deterministic_and_seeded(small_release):
    kg, release = small_release
    again = generate_release(kg, train_queries=40, eval_queries=15, max_answers=25, seed=3)
    assert again.queries == release.queries and again.hard_answers == release.hard_answers
    other = generate_release(kg, train_queries=40, eval_queries=15, max_answers=25, seed=4)
    assert other.queries != release.queries


def test_easy_and_hard_answers_on_a_hand_made_graph():
    # a -r0-> b in train, b -r0-> c in valid, c -r0-> d in test, a -r1-> c in train.
    a, b, c, d = range(4)
    kg = KGTriples.from_arrays([(a, 0, b), (a, 1, c)], [(b, 0, c)], [(c, 0, d)], n_entities=4, n_relations=2)
    release = generate_release(
        kg,
        train_structures=["1p", "2p"],
        eval_structures=["1p", "2p", "3p"],
        train_queries=50,
        eval_queries=50,
        max_attempts=200,
    )
    forward = 0  # relation 0 forward is id 0, its reciprocal id 1
    # Train: only what the train graph says.
    assert release.train_answers[(a, (forward,))] == {b}
    assert (b, (forward,)) not in release.train_answers  # no train edge leaves b along r0
    # Valid: b -> c is new, so 1p (b, r0) has hard answer c; 2p (a, r0, r0) needs it too.
    assert release.hard_answers["valid"][(b, (forward,))] == {c}
    assert release.hard_answers["valid"][(a, (forward, forward))] == {c}
    assert release.easy_answers["valid"][(a, (forward, forward))] == set()
    # A valid query answerable on train alone is never a valid query.
    assert (a, (forward,)) not in release.hard_answers["valid"]
    # Test: c -> d needs the test edge; the path a r0 r0 r0 needs valid and test edges.
    assert release.hard_answers["test"][(a, (forward, forward, forward))] == {d}
    assert release.hard_answers["test"][(c, (forward,))] == {d}
    # Reciprocals: d -r0^-1-> c is a test 1p query with hard answer c.
    assert release.hard_answers["test"][(d, (forward + 1,))] == {c}
    assert release.relation_names == ["+0", "-0", "+1", "-1"]


def test_answer_cap_and_every_pair_rule():
    # One hub with 30 tails along r0, and a chain.
    triples = [(0, 0, t) for t in range(1, 31)] + [(31, 1, 32), (32, 1, 33)]
    kg = KGTriples.from_arrays(triples, n_entities=34, n_relations=2)
    release = generate_release(kg, train_structures=["1p", "2i"], eval_structures=[], max_answers=10)
    one_hop = release.queries["train"][BETAE_STRUCTURES["1p"]]
    # BetaE's rule: every (entity, relation) pair of the train graph, within the cap.
    pairs = {(h, r) for h, r, _ in reciprocal(np.array(triples)).tolist()}
    assert one_hop == {(h, (r,)) for h, r in pairs} - {(0, (0,))}  # 30 answers > 10: dropped
    assert release.info["generator"]["train_queries"] == "every train (entity, relation) pair"


def test_read_triples_with_names_drops_unseen_entities():
    kg = read_triples(FIXTURES / "tiny")
    assert "person_99" not in kg.entity_names
    assert kg.dropped == {"train": 0, "valid": 1, "test": 0}
    lines = (FIXTURES / "tiny" / "train.txt").read_text().splitlines()
    assert len(kg.train) == len(lines)
    h, r, t = lines[0].split("\t")
    assert [kg.entity_names.index(h), kg.relation_names.index(r), kg.entity_names.index(t)] in kg.train.tolist()


def test_split_keeps_every_held_out_entity_in_train():
    rng = np.random.default_rng(1)
    triples = np.stack([rng.integers(0, 200, 2000), rng.integers(0, 5, 2000), rng.integers(0, 200, 2000)], 1)
    train, valid, test = split_triples(triples, valid=0.05, test=0.05, seed=2)
    unique = np.unique(triples, axis=0)
    assert len(train) + len(valid) + len(test) == len(unique)
    assert abs(len(valid) - 0.05 * len(unique)) <= 1 and abs(len(test) - 0.05 * len(unique)) <= 1
    seen = set(train[:, 0]) | set(train[:, 2])
    for held in (valid, test):
        assert set(held[:, 0]) | set(held[:, 2]) <= seen
        assert set(held[:, 1]) <= set(train[:, 1])
    again = split_triples(triples[::-1], valid=0.05, test=0.05, seed=2)  # input order does not matter
    assert all(np.array_equal(x, y) for x, y in zip(again, (train, valid, test)))


# --- bad release files ---------------------------------------------------------------------------


@pytest.fixture
def release_dir(tmp_path, small_release) -> Path:
    return write_release(small_release[1], tmp_path / "release")


def _dump(path: Path, value) -> None:
    path.write_bytes(pickle.dumps(value))


def test_bad_release_files_name_the_file(release_dir):
    (release_dir / "stats.txt").write_text("numentity 40\n")
    with pytest.raises(KGFileError, match=r"stats\.txt:1: expected 'numentity: N'"):
        read_release(release_dir)
    (release_dir / "stats.txt").write_text("numentity: 40\n")
    with pytest.raises(KGFileError, match=r"stats\.txt: no 'numrelations: \.\.\.' line"):
        read_release(release_dir)
    (release_dir / "stats.txt").unlink()
    with pytest.raises(KGFileError, match=r"stats\.txt: file not found"):
        read_release(release_dir)
    with pytest.raises(KGFileError, match="not a directory"):
        read_release(release_dir / "nowhere")


def test_wrong_content_names_the_file_and_the_problem(release_dir, small_release):
    _, release = small_release
    queries = release_dir / "train-queries.pkl"
    _dump(queries, [1, 2])
    with pytest.raises(KGFileError, match=r"train-queries\.pkl: expected a dict of structure tuple.*got list"):
        read_release(release_dir)
    _dump(queries, {("e", ("r", "r", "r", "r")): {(1, (0, 0, 0, 0))}})
    with pytest.raises(
        KGFileError, match=r"train-queries\.pkl: unknown query structure \('e', \('r', 'r', 'r', 'r'\)\)"
    ):
        read_release(release_dir)
    _dump(queries, {BETAE_STRUCTURES["1p"]: {(release.n_entities, (0,))}})
    with pytest.raises(KGFileError, match=rf"entity id {release.n_entities} is outside 0\.\.{release.n_entities - 1}"):
        read_release(release_dir)
    _dump(queries, {BETAE_STRUCTURES["1p"]: {(0, (release.n_relations,))}})
    with pytest.raises(KGFileError, match="relation id .* is outside"):
        read_release(release_dir)
    _dump(queries, {BETAE_STRUCTURES["2p"]: {(0, (0,))}})
    with pytest.raises(KGFileError, match="structure 2p: query .* does not fit"):
        read_release(release_dir)
    _dump(queries, {BETAE_STRUCTURES["1p"]: {(0, (0,))}})
    _dump(release_dir / "train-answers.pkl", {(0, (0,)): {release.n_entities + 5}})
    with pytest.raises(KGFileError, match=r"train-answers\.pkl: query \(0, \(0,\)\): answer .* is not an entity id"):
        read_release(release_dir)
    _dump(release_dir / "train-answers.pkl", {})
    with pytest.raises(KGFileError, match=r"train-answers\.pkl: no answers for query \(0, \(0,\)\)"):
        read_release(release_dir)


def test_structures_filter_and_limits(release_dir):
    release = read_release(release_dir, structures=["1p", "2i"])
    assert {betae_name(from_betae(t)) for by in release.queries.values() for t in by} == {"1p", "2i"}
    with pytest.raises(ValueError, match="unknown query structure '4p'"):
        read_release(release_dir, structures=["4p"])
    dataset = release_module.load_dataset(release_dir, max_queries=3)
    counts = collections.Counter((s, betae_name(e.query)) for s, ex in dataset.splits.items() for e in ex)
    assert max(counts.values()) == 3


def test_loaded_datasets_do_not_share_mutable_state(release_dir):
    first = release_module.load_dataset(release_dir)
    first.splits["train"].clear()
    first.metadata["n_relations"] = -1
    second = release_module.load_dataset(release_dir)
    assert second.splits["train"] and second.metadata["n_relations"] > 0
    with pytest.raises(TypeError):
        second.splits["valid"][0].relevant[0] = 1  # read-only answers


# --- the registered datasets -------------------------------------------------------------------


def test_registered_datasets(tmp_path):
    registry = host().registries["dataset"]
    tiny = registry.create("kg_triples", path=FIXTURES / "tiny", train_queries=20, eval_queries=4, cache_dir=tmp_path)
    assert tiny.name == "kg_triples" and len(tiny.items) == len(read_triples(FIXTURES / "tiny").entity_names)
    assert tiny.metadata["eval_metrics"][0] == "filtered_mrr"
    assert tiny.splits["valid"] and all(e.relevant for e in tiny.splits["valid"])
    cached = list((tmp_path / "kg").iterdir())
    assert len(cached) == 1 and (cached[0] / "stats.txt").exists()
    again = registry.create("kg_triples", path=FIXTURES / "tiny", train_queries=20, eval_queries=4, cache_dir=tmp_path)
    assert [e.query for e in again.splits["test"]] == [e.query for e in tiny.splits["test"]]
    assert len(list((tmp_path / "kg").iterdir())) == 1  # built once
    release = registry.create("betae", path=cached[0], structures=["1p"])
    assert {betae_name(e.query) for e in release.splits["train"]} == {"1p"}


def test_wordnet_kg_triples_from_the_fixture_database():
    from boxlib_plugins.kg.wordnet import wordnet_triples

    kg = wordnet_triples(FIXTURES / "wordnet", valid=0.0, test=0.0)
    names = kg.entity_names
    facts = {(names[h], kg.relation_names[r], names[t]) for h, r, t in kg.train.tolist()}
    assert ("car.n.01", "hypernym", "artifact.n.01") in facts
    assert ("rex.n.01", "instance_hypernym", "dog.n.01") in facts
    assert ("wheel.n.01", "part_holonym", "car.n.01") in facts
    assert ("dog.n.01", "member_holonym", "pack.n.01") in facts
    # One direction per inverse pair: no hyponym / meronym relations at all.
    assert not {"hyponym", "part_meronym", "member_meronym"} & set(kg.relation_names)
    # Symmetric pointers listed from both synsets become one triple.
    assert sum(r == "antonym" for _, r, _ in facts) == 1
    assert sum(r == "derivationally_related" for _, r, _ in facts) == 1  # the verb pointer is ignored
    # Counted by hand: 8 hypernym, 1 instance hypernym, 1 part and 1 member holonym, 1 antonym, 1 derivation.
    assert len(facts) == 13
    below = wordnet_triples(FIXTURES / "wordnet", root="animal.n.01", valid=0.0, test=0.0)
    assert sorted(below.entity_names) == ["animal.n.01", "cat.n.01", "dog.n.01", "rex.n.01"]
    with pytest.raises(ValueError, match="no noun synset named 'animl.n.01'; did you mean animal.n.01"):
        wordnet_triples(FIXTURES / "wordnet", root="animl.n.01")


def test_wordnet_kg_is_built_once_into_the_cache(tmp_path):
    registry = host().registries["dataset"]
    kwargs = dict(wordnet_dir=FIXTURES / "wordnet", train_queries=10, eval_queries=3, cache_dir=tmp_path)
    dataset = registry.create("wordnet_kg", **kwargs)
    assert len(dataset.items) == 10 and dataset.metadata["n_relations"] == 20
    built = list((tmp_path / "kg").iterdir())
    assert len(built) == 1 and built[0].name.startswith("wordnet-")
    stamp = (built[0] / "train-queries.pkl").stat().st_mtime_ns
    registry.create("wordnet_kg", **kwargs)
    assert (built[0] / "train-queries.pkl").stat().st_mtime_ns == stamp
    registry.create("wordnet_kg", **{**kwargs, "seed": 1})
    assert len(list((tmp_path / "kg").iterdir())) == 2  # other parameters, other entry


@needs_wordnet
def test_wordnet_kg_on_the_real_database(tmp_path):
    from boxlib_plugins.kg.wordnet import wordnet_triples

    kg = wordnet_triples(root="vehicle.n.01")
    assert kg.n_entities == 528
    seen = set(kg.train[:, 0]) | set(kg.train[:, 2])
    assert set(kg.valid[:, [0, 2]].ravel()) | set(kg.test[:, [0, 2]].ravel()) <= seen
    dataset = (
        host().registries["dataset"].create("wordnet_kg", root="vehicle.n.01", eval_queries=20, cache_dir=tmp_path)
    )
    assert "car.n.01" in dataset.item_keys
    assert {betae_name(e.query) for e in dataset.splits["test"]} <= set(release_module.POSITIVE_STRUCTURES)


# --- filtered evaluation ------------------------------------------------------------------------


class _FixedScores(RankingTask, torch.nn.Module):
    """A ranking model whose scores are given (to test RankingTask.evaluate)."""

    def __init__(self, dataset, scores):
        super().__init__()
        self._setup_task(dataset, 1, False)
        self.table = torch.as_tensor(scores, dtype=torch.float32)

    def all_scores(self, queries):
        return self.table[: len(queries)]


def test_filtered_metrics_by_hand():
    q1, q2 = Project(0, Term(0)), Project(1, Term(0))
    examples = [
        # Hard answer 2, easy answer 0 filtered: only item 1 (a non-answer) is above 2.
        QueryExample(q1, {2: 1}, frozenset({0})),
        # Hard answers 1 and 3; item 0 is easy. Non-answers: 2, 4.
        QueryExample(q2, {1: 1, 3: 1}, {0}),
    ]
    dataset = RetrievalDataset(
        "hand", list("abcde"), list("abcde"), {"test": examples}, metadata={"eval_metrics": ["filtered_mrr"]}
    )
    scores = [
        [0.9, 0.8, 0.7, 0.1, 0.0],  # ranks: item 2 behind item 1 only -> 2
        [0.9, 0.5, 0.8, 0.7, 0.6],  # item 1: behind 2 and 4 -> 3; item 3: behind 2 -> 2
    ]
    model = _FixedScores(dataset, scores)
    result = model.evaluate("test", ["filtered_mrr", "filtered_hits@1", "filtered_hits@3"])
    mrr = ((1 / 2) + (1 / 3 + 1 / 2) / 2) / 2
    assert result["filtered_mrr"] == pytest.approx(mrr)
    assert result["filtered_hits@1"] == pytest.approx(0.0)
    assert result["filtered_hits@3"] == pytest.approx(1.0)
    assert model.evaluate("test") == {"filtered_mrr": pytest.approx(mrr)}  # the dataset's metrics
    # Without the filter the easy answer 0 (scored highest) pushes every hard answer down one place.
    unfiltered = RetrievalDataset(
        "hand", list("abcde"), list("abcde"), {"test": [QueryExample(e.query, e.relevant) for e in examples]}
    )
    plain = _FixedScores(unfiltered, scores).evaluate("test", ["filtered_mrr"])
    assert plain["filtered_mrr"] == pytest.approx(((1 / 3) + (1 / 4 + 1 / 3) / 2) / 2)
    by = model.evaluate("test", ["filtered_mrr"], by_kind=lambda e: f"r{e.query.relation}")
    assert by["r0/filtered_mrr"] == pytest.approx(1 / 2) and by["r1/filtered_mrr"] == pytest.approx(5 / 12)


def test_filtered_items_must_be_valid():
    with pytest.raises(ValueError, match="both as relevant and as filtered"):
        RetrievalDataset("x", ["a", "b"], ["a", "b"], {"test": [QueryExample(Term(0), {1: 1}, {1})]})
    with pytest.raises(ValueError, match="outside 0..1"):
        RetrievalDataset("x", ["a", "b"], ["a", "b"], {"test": [QueryExample(Term(0), {1: 1}, {7})]})


# --- Query2Box on a geometry without point_at -----------------------------------------------------


class _Flat(boxlib.Geometry):
    """Only the seven abstract methods (like a minimal third-party plugin)."""

    name = "kg_test_flat"

    def origin(self, *, dtype=torch.float32, device=None):
        return torch.zeros(self.dim, dtype=dtype, device=device)

    def project(self, x):
        return x.clone()

    def _check_point(self, x, atol):
        return True, None

    def expmap0(self, v):
        return v / 2

    def logmap0(self, x):
        return x * 2

    def logmap(self, x, y):
        return y - x

    def transport0back(self, x, u):
        return (u * 2).expand(torch.broadcast_shapes(x.shape, u.shape))


def test_query2box_moves_in_origin_coordinates_without_point_at():
    name = boxlib.register(_Flat)
    try:
        kg = KGTriples.from_arrays([(0, 0, 1), (1, 0, 2)], n_entities=3, n_relations=1)
        dataset = release_to_dataset(generate_release(kg, eval_structures=[]), "line")
        model = host().registries["model"].create("query2box", dataset=dataset, geometry="kg_test_flat", dim=4)
        assert model.entity.shape == (3, 4) and model.relation_shift.shape == (2, 4)
        start = model.embed_terms([0])
        moved = model.project([1], start)
        expected = model.geometry.expmap0(model.geometry.logmap0(start.center) + model.relation_shift[1])
        assert torch.allclose(moved.center, expected)
        scores = model.all_scores([Project(0, Project(0, Term(0)))])
        assert scores.shape == (1, 3) and torch.isfinite(scores).all()
    finally:
        boxlib.unregister(name)


def test_query2box_needs_sizes_without_a_dataset():
    with pytest.raises(ValueError, match="n_entities"):
        host().registries["model"].create("query2box")


# --- the documentation ---------------------------------------------------------------------------


def test_every_python_block_in_the_kg_docs_runs(tmp_path, monkeypatch):
    import doctest

    from doc_examples import run_python_blocks

    root = Path(__file__).parents[1]
    monkeypatch.chdir(root)  # the examples name the fixtures by their path in the repository
    monkeypatch.setenv("BOXLIB_CACHE", str(tmp_path))
    run_python_blocks(
        root / "docs" / "knowledge-graphs.md", optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
