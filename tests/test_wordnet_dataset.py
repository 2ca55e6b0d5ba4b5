"""The shipped ``wordnet_artifacts`` dataset: counts, exact answers, grades, splits, errors."""

from __future__ import annotations

import collections
import doctest
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from boxlib_plugins.wordnet.loader import DATA_FILES, DatasetFileError, default_data_dir, load_wordnet_artifacts
from doc_examples import run_python_blocks

import boxlib.plugins
from boxlib.data import QueryExample, RetrievalDataset
from boxlib.query import And, Or, Query, Term, bindings, parse, structure

ROOT = Path(__file__).resolve().parents[1]
DATA = default_data_dir()
WORDNET = Path("/usr/share/wordnet")
TEST_ONLY = {"e and e and e", "e or e or e", "(e or e) and e", "e and e or e"}


@pytest.fixture(scope="module")
def dataset() -> RetrievalDataset:
    return boxlib.plugins.host().registries["dataset"].create("wordnet_artifacts")


@pytest.fixture(scope="module")
def metadata() -> dict:
    return json.loads((DATA / "metadata.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def items() -> list[dict]:
    with gzip.open(DATA / "items.jsonl.gz", "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def all_examples(dataset: RetrievalDataset) -> list[tuple[str, QueryExample]]:
    return [(split, ex) for split, examples in dataset.splits.items() for ex in examples]


# --- shape and counts --------------------------------------------------------------------


def test_the_registry_loads_the_shipped_files(dataset):
    assert isinstance(dataset, RetrievalDataset)
    assert dataset.name == "wordnet_artifacts"
    assert len(dataset.items) == len(dataset.item_keys) == 10_698
    assert dataset.item_keys == sorted(dataset.item_keys)  # items are ordered by synset name
    knife = dataset.item_keys.index("knife.n.01")
    assert dataset.items[knife].startswith("knife — edge tool used as a cutting instrument")
    assert (DATA / "LICENSE-WordNet.txt").read_text().count("WordNet 3.0 Copyright 2006 by Princeton University") == 1


def test_counts_match_the_issue_and_the_metadata(dataset, metadata, items):
    counts = metadata["counts"]
    # The numbers quoted in the issue, for hypernym + instance-hypernym closure.
    assert counts["synsets_below_root"] == 10_698
    assert counts["leaves"] == 8_119
    assert counts["multi_parent"] == 291
    assert counts["categories_with_5_descendants"] == 890  # artifact.n.01 itself included
    assert counts["terms"] == 889 == len(dataset.index.term_names)
    assert counts["items"] == len(dataset.items)
    # Recount from the items file itself: leaves are nobody's parent.
    parents = [row["parents"] for row in items]
    has_children = {p for ps in parents for p in ps}
    assert len(items) - len(has_children) == counts["leaves"]
    for split, kinds in metadata["splits"].items():
        assert dict(collections.Counter(ex.kind for ex in dataset.splits[split])) == kinds
    for split, shapes in metadata["structures"].items():
        assert dict(collections.Counter(str(structure(ex.query)) for ex in dataset.splits[split])) == shapes


def test_split_sizes_are_in_the_planned_ranges(dataset):
    sizes = {split: len(examples) for split, examples in dataset.splits.items()}
    assert 4_000 <= sizes["train"] <= 10_000
    assert 500 <= sizes["valid"] <= 1_000
    assert 1_000 <= sizes["test"] <= 2_000


# --- answers -----------------------------------------------------------------------------


def test_every_answer_set_is_exact(dataset):
    examples = all_examples(dataset)
    answers = dataset.index.evaluate_many([ex.query for _, ex in examples])
    for (split, ex), ids in zip(examples, answers):
        assert sorted(ex.relevant) == ids.tolist(), f"{split}: {ex.text}"
        assert len(ids) >= 3, f"{split}: {ex.text} has {len(ids)} answers"
        assert all(grade in (1, 2, 3) for grade in ex.relevant.values()), ex.text


def test_grades_follow_the_documented_hierarchy_rule(dataset, items):
    """Recompute every category's grades by BFS over the items file's parent lists, then
    every boolean query's grades as min (and) / max (or)."""
    children = collections.defaultdict(list)
    for item, row in enumerate(items):
        for parent in row["parents"]:
            children[parent].append(item)
    key_to_item = {row["key"]: i for i, row in enumerate(items)}
    with gzip.open(DATA / "terms.jsonl.gz", "rt", encoding="utf-8") as lines:
        terms = {row["term"]: key_to_item[row["key"]] for row in map(json.loads, lines)}

    def category_grades(item: int) -> dict[int, int]:
        distance = {item: 0}
        queue = collections.deque([item])
        while queue:
            node = queue.popleft()
            for child in children[node]:
                if child not in distance:
                    distance[child] = distance[node] + 1
                    queue.append(child)
        return {i: 3 if d == 0 else 2 if d == 1 else 1 for i, d in distance.items()}

    singles = {name: category_grades(item) for name, item in terms.items()}

    def grades(query: Query) -> dict[int, int]:
        if isinstance(query, Term):
            return singles[query.name]
        parts = [grades(q) for q in query.operands]
        if isinstance(query, And):
            common = set.intersection(*(set(p) for p in parts))
            return {i: min(p[i] for p in parts) for i in common}
        assert isinstance(query, Or)
        return {i: max(p.get(i, 0) for p in parts) for i in set().union(*parts)}

    for split, ex in all_examples(dataset):
        assert ex.relevant == grades(ex.query), f"{split}: {ex.text}"
    assert all(len(s) >= 6 for s in singles.values())  # the category and >= 5 descendants


def test_boolean_queries_are_irredundant(dataset):
    """Dropping any operand changes the answers (three-way ``and`` excepted, see docs)."""
    index = dataset.index

    def removals(query: Query):
        if isinstance(query, Term):
            return
        ops = query.operands
        for i, op in enumerate(ops):
            rest = ops[:i] + ops[i + 1 :]
            yield rest[0] if len(rest) == 1 else type(query)(*rest)
            for smaller in removals(op):
                yield type(query)(*ops[:i], smaller, *ops[i + 1 :])

    checked = 0
    for split, ex in all_examples(dataset):
        if ex.kind == "single" or str(structure(ex.query)) == "e and e and e":
            continue
        answers = index.evaluate(ex.query)
        for smaller in removals(ex.query):
            assert not np.array_equal(index.evaluate(smaller), answers), f"{split}: {ex.text} vs {smaller}"
        checked += 1
    assert checked > 5_000


# --- splits ------------------------------------------------------------------------------


def commutative_key(query: Query):
    if isinstance(query, Term):
        return query
    return (type(query).__name__, frozenset(map(commutative_key, query.operands)))


def test_test_split_has_every_structure_kind(dataset):
    kinds = collections.Counter(ex.kind for ex in dataset.splits["test"])
    assert {"single", "and", "or", "nested"} <= set(kinds)
    shapes = {str(structure(ex.query)) for ex in dataset.splits["test"]}
    assert TEST_ONLY <= shapes


def test_held_out_query_strings_are_not_in_train(dataset):
    train = dataset.splits["train"]
    train_texts = {ex.text for ex in train}
    train_keys = {commutative_key(ex.query) for ex in train}
    for split in ("valid", "test"):
        for ex in dataset.splits[split]:
            assert ex.text not in train_texts, f"{split}: {ex.text}"
            assert commutative_key(ex.query) not in train_keys, f"{split}: {ex.text} is a train query reordered"
    valid = {commutative_key(ex.query) for ex in dataset.splits["valid"]}
    assert not valid & {commutative_key(ex.query) for ex in dataset.splits["test"]}
    every = [commutative_key(ex.query) for _, ex in all_examples(dataset)]
    assert len(every) == len(set(every)), "a query occurs twice"


def test_held_out_two_way_queries_have_answer_sets_unseen_in_train(dataset, metadata):
    train = collections.defaultdict(set)
    for ex in dataset.splits["train"]:
        train[str(structure(ex.query))].add(frozenset(ex.relevant))
    for split in ("valid", "test"):
        for ex in dataset.splits[split]:
            shape = str(structure(ex.query))
            if shape in ("e and e", "e or e"):
                assert frozenset(ex.relevant) not in train[shape], f"{split}: {ex.text}"
    # The cross-structure coincidences the docs and metadata report.
    every_train = set().union(*train.values())
    for split in ("valid", "test"):
        seen = collections.Counter(
            str(structure(ex.query)) for ex in dataset.splits[split] if frozenset(ex.relevant) in every_train
        )
        assert dict(seen) == metadata["answer_set_also_in_train"].get(split, {})


def test_held_out_structures_are_absent_from_train_and_valid(dataset):
    for split in ("train", "valid"):
        shapes = {str(structure(ex.query)) for ex in dataset.splits[split]}
        assert shapes == {"e", "e and e", "e or e"}, split
        assert not shapes & TEST_ONLY


def test_held_out_categories_never_occur_in_train(dataset):
    train_terms = {name for ex in dataset.splits["train"] for name in bindings(ex.query)[0]}
    for split in ("valid", "test"):
        singles = [ex.query.name for ex in dataset.splits[split] if ex.kind == "single"]
        assert len(singles) == 89
        assert not set(singles) & train_terms, split
        # Boolean queries in every split combine train categories only.
        for ex in dataset.splits[split]:
            if ex.kind != "single":
                assert set(bindings(ex.query)[0]) <= train_terms, f"{split}: {ex.text}"


def test_new_queries_can_be_answered(dataset):
    key = dataset.item_keys.index
    answers = set(dataset.index.evaluate(parse("knife or spoon")).tolist())
    assert {key("knife.n.01"), key("spoon.n.01"), key("bread_knife.n.01"), key("teaspoon.n.02")} <= answers
    both = set(dataset.index.evaluate(parse("container and kitchen utensil")).tolist())
    assert key("kettle.n.01") in both and key("spoon.n.01") not in both
    assert "knife (weapon)" in dataset.index.term_names
    assert "fork" not in dataset.index.term_names  # fewer than 5 descendants: not a category


# --- loading -----------------------------------------------------------------------------


def test_loading_is_fast_and_returns_independent_copies(tmp_path):
    for name in os.listdir(DATA):
        shutil.copy(DATA / name, tmp_path / name)
    start = time.perf_counter()
    first = load_wordnet_artifacts(tmp_path)  # not cached yet: a new directory
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"loading took {elapsed:.2f} s"
    example = first.splits["test"][0]
    expected = dict(example.relevant)
    first.items.clear()
    first.splits["train"].clear()
    example.relevant.clear()
    first.metadata["counts"]["items"] = -1
    second = load_wordnet_artifacts(tmp_path)  # from the cache
    assert len(second.items) == 10_698 and second.splits["train"]
    assert second.splits["test"][0].relevant == expected
    assert second.metadata["counts"]["items"] == 10_698
    assert second.index is not first.index


@pytest.fixture
def copy_of_data(tmp_path) -> Path:
    for name in os.listdir(DATA):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


def rewrite(directory: Path, name: str, text: str) -> None:
    """Replace a data file's content and record its new checksum in metadata.json."""
    data = text.encode("utf-8")
    (directory / name).write_bytes(gzip.compress(data))
    metadata = json.loads((directory / "metadata.json").read_text())
    metadata["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "lines": data.count(b"\n")}
    (directory / "metadata.json").write_text(json.dumps(metadata))


def read(directory: Path, name: str) -> list[str]:
    return gzip.decompress((directory / name).read_bytes()).decode("utf-8").splitlines(keepends=True)


def expect_error(directory: Path, file: str, *fragments: str) -> str:
    with pytest.raises(DatasetFileError) as caught:
        boxlib.plugins.host().registries["dataset"].create("wordnet_artifacts", data_dir=directory)
    message = str(caught.value)
    assert str(directory / file) in message, message
    for fragment in fragments:
        assert fragment in message, message
    # No chained json/gzip traceback: the message says it all.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    return message


@pytest.mark.parametrize("name", DATA_FILES)
def test_a_truncated_gzip_file_is_named(copy_of_data, name):
    data = (copy_of_data / name).read_bytes()
    (copy_of_data / name).write_bytes(data[: len(data) // 2])
    expect_error(copy_of_data, name, "truncated")


def test_a_missing_file_is_named(copy_of_data):
    (copy_of_data / "terms.jsonl.gz").unlink()
    expect_error(copy_of_data, "terms.jsonl.gz", "missing")


def test_an_empty_file_is_named(copy_of_data):
    (copy_of_data / "queries.jsonl.gz").write_bytes(b"")
    expect_error(copy_of_data, "queries.jsonl.gz", "empty")


def test_a_file_that_is_not_gzip_is_named(copy_of_data):
    (copy_of_data / "items.jsonl.gz").write_text("hello")
    expect_error(copy_of_data, "items.jsonl.gz", "not a valid gzip file")


def test_an_edited_file_fails_its_checksum(copy_of_data):
    lines = read(copy_of_data, "queries.jsonl.gz")
    (copy_of_data / "queries.jsonl.gz").write_bytes(gzip.compress("".join(lines[:-1]).encode()))
    expect_error(copy_of_data, "queries.jsonl.gz", "sha256", "lines")


def test_malformed_json_names_the_line(copy_of_data):
    lines = read(copy_of_data, "queries.jsonl.gz")
    lines[6] = lines[6][:-5] + "\n"
    rewrite(copy_of_data, "queries.jsonl.gz", "".join(lines))
    expect_error(copy_of_data, "queries.jsonl.gz", "line 7", "malformed JSON")


def test_a_wrong_field_names_the_line(copy_of_data):
    lines = read(copy_of_data, "items.jsonl.gz")
    row = json.loads(lines[2])
    row["title"] = 17
    lines[2] = json.dumps(row) + "\n"
    rewrite(copy_of_data, "items.jsonl.gz", "".join(lines))
    expect_error(copy_of_data, "items.jsonl.gz", "line 3", "'title'")


def test_answers_that_disagree_with_the_terms_are_named(copy_of_data):
    lines = read(copy_of_data, "queries.jsonl.gz")
    row = json.loads(lines[0])
    row["answers"] += 1
    lines[0] = json.dumps(row) + "\n"
    rewrite(copy_of_data, "queries.jsonl.gz", "".join(lines))
    expect_error(copy_of_data, "queries.jsonl.gz", "line 1", "answers")


def test_an_unknown_term_is_named(copy_of_data):
    lines = read(copy_of_data, "queries.jsonl.gz")
    lines[0] = json.dumps({"split": "train", "query": "no such thing", "answers": 3, "grade_sum": 3}) + "\n"
    rewrite(copy_of_data, "queries.jsonl.gz", "".join(lines))
    expect_error(copy_of_data, "queries.jsonl.gz", "line 1", "no such thing")


def test_broken_metadata_is_named(copy_of_data):
    (copy_of_data / "metadata.json").write_text('{"format_version": 1, ')
    expect_error(copy_of_data, "metadata.json", "malformed JSON")


# --- docs and rebuild --------------------------------------------------------------------


def test_every_python_block_in_the_dataset_docs_runs():
    run_python_blocks(
        ROOT / "docs" / "datasets.md", min_blocks=3, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )


@pytest.mark.slow
@pytest.mark.skipif(not (WORDNET / "data.noun").is_file(), reason="needs the Debian package wordnet-base")
def test_rebuilding_gives_the_committed_files(tmp_path):
    env = dict(os.environ, PYTHONHASHSEED="12345")  # set iteration order must not matter
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_wordnet_artifacts.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(os.listdir(tmp_path)) == sorted(os.listdir(DATA))
    for name in DATA_FILES:
        # Compare the uncompressed bytes: another zlib may compress the same text differently.
        assert gzip.decompress((tmp_path / name).read_bytes()) == gzip.decompress((DATA / name).read_bytes()), name
    assert (tmp_path / "LICENSE-WordNet.txt").read_bytes() == (DATA / "LICENSE-WordNet.txt").read_bytes()
    built = json.loads((tmp_path / "metadata.json").read_text())
    shipped = json.loads((DATA / "metadata.json").read_text())
    # A newer Debian revision of identical files would only change the version string.
    built["source"].pop("debian_version")
    shipped["source"].pop("debian_version")
    assert built == shipped
