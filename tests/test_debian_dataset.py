"""The ``debian_packages`` dataset: Packages parsing, tag terms, exact answers, splits, errors."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from boxlib_plugins.debian.loader import load_debian_packages, render_tag, term_names
from boxlib_plugins.debian.packages import Package, PackagesFileError, read_packages
from hypothesis import given
from hypothesis import strategies as st

import boxlib.plugins
from boxlib.data import RetrievalDataset
from boxlib.query import And, Or, Query, Term, parse

FIXTURE = Path(__file__).parent / "fixtures" / "debian" / "Packages"
TEST_ONLY = {"e and e and e", "e or e or e", "(e or e) and e", "e and e or e"}
TWO_WAY = {"e and e", "e or e"}

# The fixture, worked out by hand. 'beta' occurs twice: the first paragraph (2.1-3) is
# kept and the second (2.0-1, implemented-in::perl) dropped; 'epsilon' has no Tag field;
# 'zeta' has only structural tags, so it is no item.
FIXTURE_TAGS = {
    "alpha": {"implemented-in::c", "interface::x11", "role::program", "works-with::image", "works-with::image:raster"},
    "beta": {
        "implemented-in::python",
        "interface::commandline",
        "role::program",
        "works-with::image",
        "use::converting",
        "use::search-and-replace",
    },
    "delta": {"implemented-in::c", "interface::commandline", "role::program", "use::editing", "works-with::text"},
    "eta": {"implemented-in::python", "interface::x11", "role::program", "use::editing", "works-with::image"},
    "gamma": {"implemented-in::python", "role::devel-lib", "devel::lang:python", "use::search-and-replace"},
    "theta": {"implemented-in::c", "role::devel-lib", "works-with::text"},
}
# Terms with at least 2 answers, by hand: name -> the packages answering it.
FIXTURE_TERMS = {
    "implemented in c": ["alpha", "delta", "theta"],
    "implemented in python": ["beta", "eta", "gamma"],
    "interface commandline": ["beta", "delta"],
    "interface x11": ["alpha", "eta"],
    "role devel lib": ["gamma", "theta"],
    "role program": ["alpha", "beta", "delta", "eta"],
    "use editing": ["delta", "eta"],
    "use search and replace": ["beta", "gamma"],
    "works with image": ["alpha", "beta", "eta"],
    "works with text": ["delta", "theta"],
}


def keys_of(dataset: RetrievalDataset, ids) -> list[str]:
    return sorted(dataset.item_keys[i] for i in ids)


# --- parsing the hand-written fixture ------------------------------------------------------


def test_the_fixture_is_read_as_worked_out_by_hand():
    packages = read_packages(FIXTURE)
    assert [p.name for p in packages.tagged] == ["alpha", "beta", "gamma", "delta", "zeta", "eta", "theta"]
    assert packages.tagged[0] == Package(
        "alpha",
        "Alpha image viewer",  # the synopsis only; the long description's ' Tag: ...' line is no field
        ("implemented-in::c", "interface::x11", "role::program", "works-with::image", "works-with::image:raster"),
        1,
    )
    by_name = {p.name: p for p in packages.tagged}
    assert by_name["beta"].synopsis == "Beta command-line image converter"  # the first paragraph wins
    assert by_name["beta"].line == 13
    assert by_name["delta"].tags[-2:] == ("works-with::text", "role::TODO")  # a continuation with two spaces
    assert by_name["theta"].tags == ("implemented-in::c", "role::devel-lib", "works-with::text")  # 'Tag:' then lines
    assert by_name["zeta"].tags == ("special::not-yet-tagged", "role::TODO")
    assert (packages.packages, packages.paragraphs, packages.duplicates) == (8, 9, 1)
    assert packages.lines == len(FIXTURE.read_text().splitlines())
    assert packages.compression == "none"


def test_the_fixture_dataset_is_worked_out_by_hand():
    dataset = boxlib.plugins.host().registries["dataset"].create("debian_packages", path=FIXTURE, min_answers=2)
    assert dataset.name == "debian_packages"
    assert dataset.item_keys == ["alpha", "beta", "delta", "eta", "gamma", "theta"]
    assert dataset.items[1] == "beta — Beta command-line image converter"
    assert dataset.items[5] == "theta — Theta library for text"
    assert sorted(dataset.index.term_names) == sorted(FIXTURE_TERMS)
    for name, expected in FIXTURE_TERMS.items():
        assert keys_of(dataset, dataset.index.evaluate(Term(name))) == expected, name
    # A name with the word 'and' is quoted in query text and parses back.
    assert str(Term("use search and replace")) == '"use search and replace"'
    assert keys_of(dataset, dataset.index.evaluate(parse('"use search and replace" and role program'))) == ["beta"]
    counts = dataset.metadata["counts"]
    assert counts == {
        "lines": len(FIXTURE.read_text().splitlines()),
        "paragraphs": 9,
        "packages": 8,
        "duplicates_dropped": 1,
        "tagged_packages": 7,  # zeta included: it has a Tag field
        "items": 6,
        "tags": 13,  # devel::lang:python, use::converting and works-with::image:raster once each
        "structural_tags_skipped": 2,
        "facets": 6,
        "terms": 10,
        "term_facets": 5,
    }
    assert dataset.metadata["structural_tags"] == ["role::TODO", "special::not-yet-tagged"]
    assert dataset.metadata["terms"]["use search and replace"] == "use::search-and-replace"
    assert dataset.metadata["source"] == str(FIXTURE)
    examples = [ex for split in dataset.splits.values() for ex in split]
    assert all(set(ex.relevant.values()) == {1} for ex in examples)
    assert all(len(ex.relevant) >= 2 for ex in examples)


@pytest.mark.parametrize(
    ("tag", "words"),
    [
        ("implemented-in::python", "implemented in python"),
        ("interface::commandline", "interface commandline"),
        ("role::program", "role program"),
        ("devel::lang:c++", "devel lang c++"),
        ("works-with-format::xml:rss", "works with format xml rss"),
        ("role::shared-lib", "role shared lib"),
        ("x11::application", "x11 application"),
    ],
)
def test_tags_render_as_words(tag, words):
    assert render_tag(tag) == words


def test_tags_that_would_render_alike_keep_their_raw_text():
    names = term_names(["a-b::c", "a::b-c", "use::search-and-replace", "game::or"])
    assert names == {
        "a-b::c": "a-b::c",
        "a::b-c": "a::b-c",
        "use::search-and-replace": "use search and replace",
        "game::or": "game or",
    }
    for name in names.values():
        assert parse(str(Term(name))) == Term(name)


# --- compressed files ----------------------------------------------------------------------


def _lz4(data: bytes) -> bytes:
    frame = pytest.importorskip("lz4.frame")
    return frame.compress(data)


@pytest.mark.parametrize(
    ("name", "compress", "compression"),
    [
        ("Packages.gz", gzip.compress, "gzip"),
        ("Packages.xz", lzma.compress, "xz"),
        ("Packages.bz2", bz2.compress, "bzip2"),
        ("Packages.lz4", _lz4, "lz4"),
        ("Packages-renamed", gzip.compress, "gzip"),  # recognised by its magic bytes, not its name
    ],
)
def test_compressed_files_read_like_the_plain_one(tmp_path, name, compress, compression):
    path = tmp_path / name
    path.write_bytes(compress(FIXTURE.read_bytes()))
    plain, packed = read_packages(FIXTURE), read_packages(path)
    assert packed.compression == compression
    assert packed.tagged == plain.tagged
    assert (packed.sha256, packed.lines, packed.duplicates) == (plain.sha256, plain.lines, plain.duplicates)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_compressed_stream_from_a_pipe(tmp_path):
    pipe = tmp_path / "fifo"
    os.mkfifo(pipe)
    writer = threading.Thread(target=pipe.write_bytes, args=(gzip.compress(FIXTURE.read_bytes()),))
    writer.start()
    try:
        packages = read_packages(pipe)  # the magic bytes are peeked at, not re-read
    finally:
        writer.join(timeout=10)
    assert packages.compression == "gzip" and packages.tagged == read_packages(FIXTURE).tagged


def test_crlf_lines_whitespace_separators_and_a_missing_final_newline(tmp_path):
    text = "Package: a\r\nTag: x::y,\r\n z::w\r\n \t\r\nPackage: b\nTag: x::y"
    path = tmp_path / "Packages"
    path.write_bytes(text.encode())
    packages = read_packages(path)
    assert [(p.name, p.tags) for p in packages.tagged] == [("a", ("x::y", "z::w")), ("b", ("x::y",))]
    assert packages.paragraphs == 2


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z0-9][a-z0-9+.\-]{0,12}", fullmatch=True),
            st.lists(st.from_regex(r"[a-z0-9\-]{1,8}::[a-z0-9+\-:]{1,10}", fullmatch=True), min_size=1, max_size=8),
            st.lists(st.integers(0, 3), min_size=8, max_size=8),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_tags_survive_any_line_wrapping(tmp_path_factory, paragraphs):
    """Any split of a Tag field over continuation lines reads back the same tags."""
    lines, expected = [], {}
    for name, tags, breaks in paragraphs:
        field = "Tag:"
        for i, tag in enumerate(tags):
            field += ("," if i else "") + ("\n " if breaks[i] == 0 else " ")
            field += tag
        lines += [f"Package: {name}", "Version: 1", field, "Description: x", ""]
        expected.setdefault(name, tuple(dict.fromkeys(tags)))
    path = tmp_path_factory.mktemp("wrap") / "Packages"
    path.write_text("\n".join(lines))
    assert {p.name: p.tags for p in read_packages(path).tagged} == expected


# --- generated queries on a synthetic catalog ----------------------------------------------

FACETS = {
    "implemented-in": ["c", "c++", "python", "perl", "ruby", "java"],
    "interface": ["commandline", "x11", "web", "daemon"],
    "role": ["program", "shared-lib", "plugin", "documentation"],
    "use": ["editing", "viewing", "converting", "search-and-replace", "monitor"],
    "works-with": ["image", "text", "audio", "video", "image:raster"],
    "culture": ["german", "french"],
}


def synthetic_tags(n_packages: int = 400, seed: int = 7) -> dict[str, set[str]]:
    """Random packages with tags from several facets (some values much more common, some
    implying others)."""
    rng = random.Random(seed)
    packages = {}
    for i in range(n_packages):
        facets = rng.sample(sorted(FACETS), rng.randint(1, 4))
        tags = set()
        for facet in facets:
            values = FACETS[facet]
            for _ in range(rng.randint(1, 2)):
                tags.add(f"{facet}::{values[min(int(rng.expovariate(0.6)), len(values) - 1)]}")
        # Implications across facets, as in the real tags, make some combinations redundant
        # ('use editing or role program' is 'role program'), which the sampler must skip.
        if "use::editing" in tags or {"implemented-in::python", "interface::commandline"} <= tags:
            tags.add("role::program")
        packages[f"pkg{i:03d}"] = tags
    return packages


def write_packages(path: Path, packages: dict[str, set[str]], order: list[str] | None = None) -> Path:
    chunks = []
    for name in order or sorted(packages):
        tags = sorted(packages[name])
        # Wrap the Tag field after every third tag, as Debian's files do.
        wrapped = ",\n ".join(", ".join(tags[i : i + 3]) for i in range(0, len(tags), 3))
        chunks.append(f"Package: {name}\nVersion: 1.0\nDescription: the package {name}\nTag: {wrapped}\n")
    path.write_text("\n".join(chunks))
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    tags = synthetic_tags()
    path = write_packages(tmp_path_factory.mktemp("synthetic") / "Packages", tags)
    dataset = load_debian_packages(path, min_answers=5, seed=0, max_queries_per_structure=150)
    return tags, path, dataset


def expected_words(tag: str) -> str:
    """The rendering rule of docs/datasets.md, written out again."""
    return re.sub(r"\s+", " ", re.sub(r"[:\-_]", " ", tag)).strip()


def brute_force(query: Query, holders: dict[str, set[str]]) -> set[str]:
    """The packages answering ``query``, by set operations on the tags as generated."""
    if isinstance(query, Term):
        return holders[query.name]
    parts = [brute_force(operand, holders) for operand in query.operands]
    return set.intersection(*parts) if isinstance(query, And) else set.union(*parts)


def removals(query: Query):
    if isinstance(query, Term):
        return
    for i, operand in enumerate(query.operands):
        rest = query.operands[:i] + query.operands[i + 1 :]
        yield rest[0] if len(rest) == 1 else type(query)(*rest)
        for smaller in removals(operand):
            yield type(query)(*query.operands[:i], smaller, *query.operands[i + 1 :])


def term_facets(query: Query, facet_of_term: dict[str, str]) -> list[str]:
    if isinstance(query, Term):
        return [facet_of_term[query.name]]
    return [f for operand in query.operands for f in term_facets(operand, facet_of_term)]


def canonical(query: Query):
    if isinstance(query, Term):
        return query
    return (type(query).__name__, frozenset(map(canonical, query.operands)))


def test_generated_answers_equal_brute_force(synthetic):
    tags, _, dataset = synthetic
    holders: dict[str, set[str]] = {}
    for name, package_tags in tags.items():
        for tag in package_tags:
            holders.setdefault(expected_words(tag), set()).add(name)
    terms = dataset.metadata["terms"]
    assert all(expected_words(tag) == name for name, tag in terms.items())
    assert set(terms) == {name for name, packages in holders.items() if len(packages) >= 5}
    assert dataset.item_keys == sorted(tags)  # every package has a tag here
    checked = 0
    for examples in dataset.splits.values():
        for example in examples:
            expected = brute_force(example.query, holders)
            assert set(keys_of(dataset, example.relevant)) == expected, example.text
            assert len(expected) >= 5, example.text
            assert set(example.relevant.values()) == {1}
            assert parse(example.text) == example.query
            for smaller in removals(example.query):  # irredundant
                assert brute_force(smaller, holders) != expected, (example.text, str(smaller))
            checked += 1
    assert checked == sum(len(v) for v in dataset.splits.values()) > 250


def test_splits_hold_out_names_strings_and_structures(synthetic):
    _, _, dataset = synthetic
    terms = dataset.metadata["terms"]
    facet_of_term = {name: tag.partition("::")[0] for name, tag in terms.items()}
    texts = {split: [ex.text for ex in examples] for split, examples in dataset.splits.items()}
    keys = [canonical(ex.query) for examples in dataset.splits.values() for ex in examples]
    assert len(keys) == len(set(keys))  # no query twice, not even with its operands reordered
    singles = {split: {ex.text for ex in examples if ex.kind == "single"} for split, examples in dataset.splits.items()}
    assert set.union(*singles.values()) == {str(Term(n)) for n in terms}
    assert len(singles["train"]) == round(0.8 * len(terms))
    train_terms = {name for ex in dataset.splits["train"] for name in _names(ex.query)}
    assert train_terms == {parse(t).name for t in singles["train"]}
    shapes = {}
    for split, examples in dataset.splits.items():
        shapes[split] = {str(_shape(ex.query)) for ex in examples}
        for ex in examples:
            if ex.kind != "single":
                assert set(_names(ex.query)) <= train_terms, ex.text  # booleans use train terms only
                facets = term_facets(ex.query, facet_of_term)
                if isinstance(ex.query, And) and isinstance(ex.query.operands[0], Or):  # (a or b) and c
                    assert facets[0] == facets[1] != facets[2], ex.text
                else:
                    assert len(set(facets)) == len(facets), ex.text  # operands of different facets
    assert shapes["train"] == shapes["valid"] == {"e"} | TWO_WAY
    assert shapes["test"] == {"e"} | TWO_WAY | TEST_ONLY
    assert not set(texts["train"]) & set(texts["valid"]) | set(texts["train"]) & set(texts["test"])
    # The two-way queries are cut about 80/10/10.
    for shape in TWO_WAY:
        sizes = [sum(str(_shape(ex.query)) == shape for ex in dataset.splits[s]) for s in ("train", "valid", "test")]
        assert sizes[0] > 5 * sizes[1] > 0 and sizes[2] > 0, (shape, sizes)
    structures = dataset.metadata["structures"]
    assert sum(structures["test"][s] for s in TEST_ONLY) == sum(
        str(_shape(e.query)) in TEST_ONLY for e in dataset.splits["test"]
    )


def _names(query: Query) -> list[str]:
    return [query.name] if isinstance(query, Term) else [n for o in query.operands for n in _names(o)]


def _shape(query: Query) -> Query:
    from boxlib.query import structure

    return structure(query)


def test_the_same_seed_gives_the_same_dataset_and_another_seed_another(synthetic):
    _, path, dataset = synthetic
    again = load_debian_packages(path, min_answers=5, seed=0, max_queries_per_structure=150)
    assert again.items == dataset.items and again.metadata == dataset.metadata
    for split in dataset.splits:
        assert [(e.text, e.relevant) for e in again.splits[split]] == [
            (e.text, e.relevant) for e in dataset.splits[split]
        ]
    other = load_debian_packages(path, min_answers=5, seed=1, max_queries_per_structure=150)
    assert [e.text for e in other.splits["train"]] != [e.text for e in dataset.splits["train"]]


def test_the_dataset_does_not_depend_on_the_hash_seed(synthetic):
    _, path, dataset = synthetic
    script = (
        "import sys, json; from boxlib_plugins.debian.loader import load_debian_packages as load; "
        "d = load(sys.argv[1], min_answers=5, seed=0, max_queries_per_structure=150); "
        "print(json.dumps([[s, e.text, sorted(e.relevant)] for s in d.splits for e in d.splits[s]]))"
    )
    here = [[s, e.text, sorted(e.relevant)] for s in dataset.splits for e in dataset.splits[s]]
    for hash_seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", script, str(path)],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONHASHSEED=hash_seed),
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout) == here


def test_size_knobs_give_a_smaller_deterministic_dataset(tmp_path, synthetic):
    tags, path, _ = synthetic
    small = load_debian_packages(path, min_answers=5, max_queries_per_structure=20, max_items=150)
    assert len(small.items) == 150 and small.metadata["counts"]["items"] == 150
    structures = small.metadata["structures"]
    assert sum(structures[s].get("e and e", 0) for s in structures) <= 20
    assert all(structures["test"].get(s, 0) <= 2 for s in TEST_ONLY)
    # The subset does not depend on the file's order, and a smaller one lies inside a larger one.
    order = sorted(tags)
    random.Random(1).shuffle(order)
    shuffled = write_packages(tmp_path / "Packages", tags, order)
    assert load_debian_packages(shuffled, min_answers=5, max_items=150).item_keys == small.item_keys
    smaller = load_debian_packages(path, min_answers=5, max_queries_per_structure=20, max_items=60)
    assert set(smaller.item_keys) < set(small.item_keys)


# --- bad input -----------------------------------------------------------------------------


def _write(tmp_path: Path, data: bytes | str, name: str = "Packages") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


BAD_INPUTS = {
    "missing": (None, r"does not exist"),
    "empty": (b"", r"the file is empty"),
    "blank": (b"\n\n  \n", r"no paragraphs"),
    "no tags": (b"Package: a\nVersion: 1\n\nPackage: b\n", r"none of its 2 packages has a Tag field"),
    "only structural tags": (b"Package: a\nTag: role::TODO, special::not-yet-tagged\n", r"only structural tags"),
    "truncated gzip": (gzip.compress(FIXTURE.read_bytes())[:300], r"truncated: the gzip stream ends early"),
    "truncated bzip2": (bz2.compress(FIXTURE.read_bytes())[:200], r"truncated: the bzip2 stream ends early"),
    "corrupt xz": (lzma.compress(FIXTURE.read_bytes())[:40] + b"\0" * 200, r"xz stream (is corrupt|ends early)"),
    "binary garbage": (random.Random(0).randbytes(3000), r"line 1: expected a 'Field: value' line"),
    "no Package": (
        b"Package: a\nTag: a::b\n\nVersion: 1\nTag: a::b\n",
        r"line 4: the paragraph of lines 4-5 has no Package",
    ),
    "continuation first": (b" Tag: a::b\n", r"line 1: a continuation line"),
    "no colon": (b"Package: a\nTag a::b\n", r"line 2: expected a 'Field: value' line or a continuation"),
    "two Tag fields": (b"Package: a\nTag: a::b\nTag: c::d\n", r"line 3: a second Tag field"),
    "not UTF-8": (b"Package: a\nTag: a::\xff\n", r"line 1: the Tag field .* is not UTF-8"),
    "zstd": (b"\x28\xb5\x2f\xfd" + bytes(20), r"is zstd-compressed"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_names_the_file_and_the_problem(tmp_path, case):
    data, pattern = BAD_INPUTS[case]
    path = tmp_path / "Packages" if data is None else _write(tmp_path, data)
    with pytest.raises(PackagesFileError) as caught:
        load_debian_packages(path, min_answers=1)
    message = str(caught.value)
    assert str(path) in message
    assert re.search(pattern, message), message
    error = caught.value  # no chained traceback from gzip, lzma or the parser
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_a_directory_and_too_few_answers_are_clear_errors(tmp_path):
    with pytest.raises(PackagesFileError, match="is a directory"):
        load_debian_packages(tmp_path)
    with pytest.raises(
        PackagesFileError, match=r"no tag is carried by min_answers=50 of its 6 .* \(the most common by 4\)"
    ):
        load_debian_packages(FIXTURE, min_answers=50)
    singles = load_debian_packages(FIXTURE, min_answers=2, max_queries_per_structure=0)
    assert {ex.kind for split in singles.splits.values() for ex in split} == {"single"}
    for bad in ({"min_answers": 0}, {"max_items": 0}, {"max_queries_per_structure": -1}, {"seed": "x"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            load_debian_packages(FIXTURE, **bad)


def test_an_lz4_file_without_the_lz4_package_says_how_to_read_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lz4", None)  # import lz4 raises ImportError
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    path = _write(tmp_path, b"\x04\x22\x4d\x18" + bytes(20))
    with pytest.raises(
        PackagesFileError, match=r"lz4-compressed and the Python package lz4 is not installed.*pip install lz4"
    ):
        read_packages(path)


# --- apt-cache dumpavail -------------------------------------------------------------------


def _fake_apt_cache(folder: Path, script: str) -> None:
    folder.mkdir(exist_ok=True)
    program = folder / "apt-cache"
    program.write_text("#!/bin/sh\n" + script)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)


def test_path_none_reads_apt_cache_dumpavail(tmp_path, monkeypatch):
    _fake_apt_cache(tmp_path / "bin", f'[ "$1" = dumpavail ] || exit 3\ncat "{FIXTURE}"\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")  # found before a real one
    dataset = load_debian_packages(min_answers=2)
    assert dataset.metadata["source"] == "apt-cache dumpavail"
    assert dataset.item_keys == sorted(FIXTURE_TAGS)
    assert dataset.metadata["source_sha256"] == read_packages(FIXTURE).sha256


def test_missing_or_failing_apt_cache_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-cache here
    with pytest.raises(PackagesFileError, match=r"apt-cache dumpavail: apt-cache is not installed.*Pass path="):
        load_debian_packages()
    _fake_apt_cache(tmp_path / "bin", "echo 'E: The package lists are broken' >&2\nexit 100\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(
        PackagesFileError, match=r"exited with status 100: E: The package lists are broken.*apt-get update"
    ):
        load_debian_packages()


# --- the real catalog ----------------------------------------------------------------------


def _independent_counts(text: str) -> tuple[dict[str, set[str]], int]:
    """Package -> tags of ``apt-cache dumpavail`` output, parsed here with regular expressions."""
    tags, paragraphs = {}, 0
    for paragraph in re.split(r"\n\s*\n", text):
        name = re.search(r"^Package: *(\S+)", paragraph, re.M)
        if name is None:
            continue
        paragraphs += 1
        field = re.search(r"^Tag:(.*(?:\n[ \t].*)*)", paragraph, re.M)
        if field and name.group(1) not in tags:
            tags[name.group(1)] = {t.strip() for t in field.group(1).split(",") if t.strip()}
    return tags, paragraphs


APT_LISTS = sorted(Path("/var/lib/apt/lists").glob("*_Packages.lz4")) if Path("/var/lib/apt/lists").is_dir() else []


@pytest.mark.skipif(not APT_LISTS, reason="no lz4-compressed apt lists on this machine")
def test_apt_s_own_lz4_lists_read_like_their_decompressed_text():
    frame = pytest.importorskip("lz4.frame")
    path = max(APT_LISTS, key=lambda p: p.stat().st_size)  # the main archive's list
    text = frame.decompress(path.read_bytes()).decode("utf-8")
    tags, paragraphs = _independent_counts(text)
    packages = read_packages(path)
    assert packages.compression == "lz4"
    assert packages.paragraphs == paragraphs
    assert {p.name: set(p.tags) for p in packages.tagged} == tags


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="apt-cache is not installed (not a Debian system)")
def test_the_real_apt_catalog(capsys):
    text = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    dataset = boxlib.plugins.host().registries["dataset"].create("debian_packages")
    tags, paragraphs = _independent_counts(text)
    counts = dataset.metadata["counts"]
    if counts["paragraphs"] != paragraphs:  # apt's lists changed in between
        pytest.skip("apt's lists changed while the test ran")
    assert counts["packages"] == len(set(re.findall(r"^Package: *(\S+)", text, re.M)))
    assert counts["tagged_packages"] == len(tags) == text.count("\nTag:") + text.startswith("Tag:")
    holders: dict[str, set[str]] = {}
    for name, package_tags in tags.items():
        for tag in package_tags:
            if tag.partition("::")[0] != "special" and "TODO" not in tag.partition("::")[2].split(":"):
                holders.setdefault(tag, set()).add(name)
    assert counts["items"] == len(set().union(*holders.values())) == len(dataset.items)
    assert counts["terms"] == sum(len(v) >= 10 for v in holders.values()) == len(dataset.index.term_names)
    by_name = {name: holders[tag] for name, tag in dataset.metadata["terms"].items()}
    rng = random.Random(0)
    for split, examples in dataset.splits.items():
        assert all(len(ex.relevant) >= 10 for ex in examples)
        for ex in rng.sample(examples, min(200, len(examples))):
            assert set(keys_of(dataset, ex.relevant)) == brute_force(ex.query, by_name), (split, ex.text)
    with capsys.disabled():
        print(f"\n{dataset!r}\ncounts: {counts}\nstructures: {dataset.metadata['structures']}")
