"""WordNet hierarchies, the ``hierarchy`` model, the reconstruction evaluator and its bench suite.

The default suite works on ``tests/fixtures/wordnet_mini`` (19 synsets in the real
``wndb(5WN)`` format, see its ``make_fixture.py``); the counts of the real database are
checked where Debian's ``wordnet-base`` is installed.
"""

from __future__ import annotations

import csv
import math
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from boxlib_plugins.hierarchy import (
    HierarchyDataset,
    HierarchyError,
    HierarchyModel,
    reconstruction,
    sample_sources,
    transitive_closure,
)
from boxlib_plugins.wordnet import hierarchy as wn_hierarchy
from boxlib_plugins.wordnet.wndb import WordNetFileError, read_noun_database
from hypothesis import given, settings
from hypothesis import strategies as st

import boxlib
from boxlib.hookspecs import hookimpl
from boxlib.metrics import average_precision, filtered_ranks
from boxlib.plugins import host

MINI = Path(__file__).parent / "fixtures" / "wordnet_mini"
REAL = Path("/usr/share/wordnet")
REPO = Path(__file__).resolve().parents[1]

#: The fixture's hypernym (@) and instance-hypernym (@i) closure, worked out by hand from the
#: tree in make_fixture.py: node -> ancestors.
TOP = {"entity.n.01"}
PHYSICAL = TOP | {"physical_entity.n.01", "object.n.01", "organism.n.01"}
ANIMAL = PHYSICAL | {"animal.n.01"}
MAMMAL = ANIMAL | {"mammal.n.01"}
EXPECTED = {
    "entity.n.01": set(),
    "physical_entity.n.01": TOP,
    "abstraction.n.01": TOP,
    "object.n.01": TOP | {"physical_entity.n.01"},
    "organism.n.01": TOP | {"physical_entity.n.01", "object.n.01"},
    "animal.n.01": PHYSICAL,
    "person.n.01": PHYSICAL,
    "domestic_animal.n.01": ANIMAL,
    "female.n.01": ANIMAL,
    "mammal.n.01": ANIMAL,
    "placental.n.01": MAMMAL,
    "carnivore.n.01": MAMMAL | {"placental.n.01"},
    "canine.n.01": MAMMAL | {"placental.n.01", "carnivore.n.01"},
    "dog.n.01": MAMMAL | {"placental.n.01", "carnivore.n.01", "canine.n.01", "domestic_animal.n.01"},
    "cat.n.01": MAMMAL | {"placental.n.01", "carnivore.n.01"},
    "cat.n.02": PHYSICAL | {"person.n.01"},
    "tusker.n.01": MAMMAL,
    "female_mammal.n.01": ANIMAL | {"female.n.01", "mammal.n.01"},
    "lassie.n.01": MAMMAL | {"placental.n.01", "carnivore.n.01", "canine.n.01", "dog.n.01", "domestic_animal.n.01"},
}


def pairs_of(dataset: HierarchyDataset) -> set[tuple[str, str]]:
    return {(dataset.nodes[u], dataset.nodes[v]) for u, v in dataset.edges.tolist()}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second thread only spin-waits (badly so on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private cache directory (never the user's ~/.cache)."""
    monkeypatch.setenv("BOXLIB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# -- datasets -------------------------------------------------------------------------------
def test_fixture_closure_counts(cache):
    nouns = wn_hierarchy.wordnet_nouns(MINI)
    assert (nouns.n_nodes, nouns.n_edges) == (19, 98)
    plain = wn_hierarchy.wordnet_nouns(MINI, instances=False)
    assert (plain.n_nodes, plain.n_edges) == (18, 87)  # lassie.n.01 (an instance, 11 ancestors) drops out
    mammals = wn_hierarchy.wordnet_mammals(MINI)
    assert (mammals.n_nodes, mammals.n_edges) == (7, 18)
    whole = wn_hierarchy.wordnet_mammals(MINI, exclude=())
    assert (whole.n_nodes, whole.n_edges) == (9, 20)


def test_fixture_closure_matches_hand_computed(cache):
    nouns = wn_hierarchy.wordnet_nouns(MINI)
    assert set(nouns.nodes) == set(EXPECTED)
    assert pairs_of(nouns) == {(u, v) for u, ancestors in EXPECTED.items() for v in ancestors}
    assert set(nouns.ancestors("dog.n.01")) == EXPECTED["dog.n.01"]
    mammals = wn_hierarchy.wordnet_mammals(MINI)
    inside = {"mammal.n.01", "placental.n.01", "carnivore.n.01", "canine.n.01", "dog.n.01", "cat.n.01", "lassie.n.01"}
    assert set(mammals.nodes) == inside
    assert pairs_of(mammals) == {(u, v) for u in inside for v in EXPECTED[u] if v in inside}
    assert mammals.metadata["excluded"] == ["female_mammal.n.01", "tusker.n.01"]


def test_registered_components(cache):
    registries = host().registries
    assert {"wordnet_nouns", "wordnet_mammals"} <= set(registries["dataset"].names())
    assert "hierarchy" in registries["model"]
    dataset = registries["dataset"].create("wordnet_mammals", wordnet_dir=str(MINI))
    assert isinstance(dataset, HierarchyDataset) and dataset.name == "wordnet_mammals"


def test_cache_is_used_and_invalidated_when_a_source_file_changes(tmp_path, cache, monkeypatch):
    source = tmp_path / "wn"
    shutil.copytree(MINI, source)
    builds = []
    real_build = wn_hierarchy._build
    monkeypatch.setattr(wn_hierarchy, "_build", lambda *a: builds.append(1) or real_build(*a))
    first = wn_hierarchy.wordnet_nouns(source)
    again = wn_hierarchy.wordnet_nouns(source)
    assert len(builds) == 1 and pairs_of(again) == pairs_of(first) and again.nodes == first.nodes
    assert len(list((cache / "wordnet").glob("*.npz"))) == 1
    # Re-point tusker.n.01 from mammal to carnivore: same size, different content and hierarchy.
    data = (source / "data.noun").read_text()
    nouns = {s.name: s for s in read_noun_database(source).values()}
    tusker, mammal, carnivore = (nouns[n].offset for n in ("tusker.n.01", "mammal.n.01", "carnivore.n.01"))
    line = next(line for line in data.splitlines() if line.startswith(tusker))
    (source / "data.noun").write_text(data.replace(line, line.replace(f"@ {mammal}", f"@ {carnivore}")))
    changed = wn_hierarchy.wordnet_nouns(source)
    assert len(builds) == 2
    assert "placental.n.01" in changed.ancestors("tusker.n.01")
    assert "placental.n.01" not in first.ancestors("tusker.n.01")
    assert len(list((cache / "wordnet").glob("*.npz"))) == 2


def test_damaged_cache_is_rebuilt_with_a_warning(tmp_path, cache):
    expected = pairs_of(wn_hierarchy.wordnet_nouns(MINI))
    (path,) = (cache / "wordnet").glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.warns(RuntimeWarning, match="rebuilding the damaged WordNet closure cache"):
        rebuilt = wn_hierarchy.wordnet_nouns(MINI)
    assert pairs_of(rebuilt) == expected
    assert pairs_of(wn_hierarchy.wordnet_nouns(MINI)) == expected  # and the cache is good again


def test_missing_wordnet_is_a_clear_error(tmp_path, cache):
    with pytest.raises(WordNetFileError, match=r"data\.noun not found in .*nowhere.*wordnet-base"):
        wn_hierarchy.wordnet_nouns(tmp_path / "nowhere")
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(MINI / "data.noun", half / "data.noun")
    with pytest.raises(WordNetFileError, match=r"half/index\.noun not found"):
        wn_hierarchy.wordnet_mammals(half)


def test_malformed_wordnet_names_the_file_and_line(tmp_path, cache):
    bad = tmp_path / "bad"
    shutil.copytree(MINI, bad)
    lines = (bad / "data.noun").read_text().splitlines()
    lines[4] = lines[4][:30]  # a truncated data line
    (bad / "data.noun").write_text("\n".join(lines) + "\n")
    with pytest.raises(WordNetFileError, match=r"data\.noun:5: not a WordNet"):
        wn_hierarchy.wordnet_nouns(bad)


@pytest.mark.skipif(not (REAL / "data.noun").is_file(), reason="Debian's wordnet-base is not installed")
def test_real_wordnet_counts(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BOXLIB_CACHE", str(tmp_path_factory.mktemp("cache")))
    nouns = wn_hierarchy.wordnet_nouns()
    assert (nouns.n_nodes, nouns.n_edges) == (82_115, 743_241)  # Nickel & Kiela (2017)
    mammals = wn_hierarchy.wordnet_mammals()
    assert (mammals.n_nodes, mammals.n_edges) == (1_180, 6_540)
    whole = wn_hierarchy.wordnet_mammals(exclude=())
    assert (whole.n_nodes, whole.n_edges) == (1_182, 6_542)


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "data.noun").is_file(), reason="Debian's wordnet-base is not installed")
def test_real_wordnet_counts_without_instances(tmp_path):
    plain = wn_hierarchy.wordnet_nouns(instances=False, cache_dir=tmp_path)
    assert (plain.n_nodes, plain.n_edges) == (74_401, 663_508)  # the 7,714 instance synsets drop out


# -- the closure and the dataset type -----------------------------------------------------------
@st.composite
def dags(draw):
    n = draw(st.integers(1, 25))
    return [draw(st.lists(st.integers(0, i - 1), max_size=3)) if i else [] for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(dags(), st.randoms(use_true_random=False))
def test_closure_is_reachability(parents, rng):
    # Relabel so parents do not always have smaller ids than their children.
    n = len(parents)
    perm = list(range(n))
    rng.shuffle(perm)
    relabelled = [[] for _ in range(n)]
    for child, ps in enumerate(parents):
        relabelled[perm[child]] = [perm[p] for p in ps]
    expected = set()
    for start in range(n):  # breadth-first search from every node: an independent reference
        seen, frontier = set(), list(relabelled[start])
        while frontier:
            node = frontier.pop()
            if node not in seen:
                seen.add(node)
                frontier.extend(relabelled[node])
        expected |= {(start, a) for a in seen}
    closure = transitive_closure(relabelled)
    assert {tuple(p) for p in closure.tolist()} == expected
    assert closure.shape == (len(expected), 2)


def test_cycles_and_bad_input_are_named():
    with pytest.raises(HierarchyError, match="cycle"):
        transitive_closure([[2], [0], [1]])
    with pytest.raises(HierarchyError, match="its own parent"):
        transitive_closure([[0]])
    with pytest.raises(HierarchyError, match="outside"):
        transitive_closure([[5]])
    ds = HierarchyDataset.from_parents("toy", ["animal", "dog"], [[], [0]])
    with pytest.raises(HierarchyError, match="no node 'dgo'; did you mean 'dog'"):
        ds.index("dgo")
    with pytest.raises(HierarchyError, match="self pairs"):
        HierarchyDataset("x", ("a", "b"), torch.tensor([[0, 0]]))
    with pytest.raises(HierarchyError, match="duplicate"):
        HierarchyDataset("x", ("a", "b"), torch.tensor([[1, 0], [1, 0]]))


def test_is_pair_and_sources():
    ds = HierarchyDataset.from_parents("toy", ["a", "b", "c", "d"], [[], [0], [1], [0]])
    u = torch.tensor([[2], [3]])
    v = torch.tensor([[0, 1, 3], [0, 1, 2]])
    assert ds.is_pair(u, v).tolist() == [[True, True, False], [True, False, False]]
    assert ds.sources.tolist() == [1, 2, 3]
    assert sample_sources(ds, 2, seed=1).tolist() == sorted(sample_sources(ds, 2, seed=1).tolist())
    assert len(sample_sources(ds, 2)) == 2 and sample_sources(ds, None).tolist() == [1, 2, 3]


# -- the evaluator --------------------------------------------------------------------------------
def test_reconstruction_hand_worked_example():
    # a <- b <- c, a <- d. Closure: (b,a), (c,b), (c,a), (d,a); sources b, c, d.
    ds = HierarchyDataset.from_parents("toy", ["a", "b", "c", "d"], [[], [0], [1], [0]])
    scores = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0],  # a (no ancestors: not a source)
            [0.9, 9.9, 0.5, 0.7],  # b: a first. rank 1, AP 1 (its own score 9.9 never counts)
            [0.2, 0.8, 9.9, 0.6],  # c: b, d, a. rank(b) = 1, rank(a) = 2 (d above); AP = (1/1 + 2/3) / 2
            [0.4, 0.4, 0.1, 9.9],  # d: a tied with non-ancestor b: rank 1.5; AP = (1 + 1/2) / 2
        ]
    )
    result = reconstruction(lambda u: scores[u], ds)
    assert (result.pairs, result.sources) == (4, 3)
    assert result.mean_rank == pytest.approx((1 + 1 + 2 + 1.5) / 4)
    assert result.map == pytest.approx((1 + (1 + 2 / 3) / 2 + 0.75) / 3)
    only_c = reconstruction(lambda u: scores[u], ds, sources=torch.tensor([2, 0]))  # a is skipped
    assert (only_c.mean_rank, only_c.sources) == (1.5, 1)
    assert only_c.map == pytest.approx(5 / 6)


@settings(max_examples=40, deadline=None)
@given(dags(), st.integers(0, 2**31 - 1), st.integers(1, 5), st.sampled_from([2, 4, 1000]))
def test_reconstruction_agrees_with_boxlib_metrics(parents, seed, chunk, levels):
    """Against the sort-based filtered ranks and realistic AP of boxlib.metrics, with many ties."""
    ds = HierarchyDataset.from_parents("t", [str(i) for i in range(len(parents))], parents)
    if ds.n_edges == 0:
        return
    scores = torch.randint(0, levels, (ds.n_nodes, ds.n_nodes), generator=torch.Generator().manual_seed(seed))
    scores = scores.to(torch.float32)
    found = reconstruction(lambda u: scores[u], ds, rows_per_chunk=chunk)
    src = ds.sources
    matrix = scores[src].double()
    matrix[torch.arange(len(src)), src] = -math.inf  # u is not its own candidate
    relevant = [set(ds.ancestor_ids(int(u)).tolist()) for u in src]
    assert found.mean_rank == pytest.approx(np.concatenate(filtered_ranks(matrix, relevant)).mean(), rel=1e-12)
    assert found.map == pytest.approx(average_precision(matrix, relevant).mean(), rel=1e-12)


def test_reconstruction_rejects_bad_scores():
    ds = HierarchyDataset.from_parents("toy", ["a", "b"], [[], [0]])
    with pytest.raises(ValueError, match=r"shape \(1, 3\), expected \(1, 2\)"):
        reconstruction(lambda u: torch.zeros(len(u), 3), ds)
    with pytest.raises(ValueError, match="NaN"):
        reconstruction(lambda u: torch.full((len(u), 2), math.nan), ds)


# -- the model -----------------------------------------------------------------------------------
def _tree(depth: int = 4, fanout: int = 2) -> HierarchyDataset:
    names, parents = ["r"], [[]]
    frontier = [0]
    for _ in range(depth):
        nxt = []
        for p in frontier:
            for k in range(fanout):
                names.append(f"{names[p]}{k}")
                parents.append([p])
                nxt.append(len(names) - 1)
        frontier = nxt
    return HierarchyDataset.from_parents("tree", names, parents)


def test_negatives_are_never_ancestors_or_self():
    ds = _tree()
    model = HierarchyModel(ds, geometry="euclidean", dim=2, negatives=50)
    torch.manual_seed(0)
    batch = model.collate(model.training_examples().__getitems__(list(range(ds.n_edges))))
    u = batch["pairs"][:, :1].expand_as(batch["negatives"])
    assert not bool(ds.is_pair(u, batch["negatives"]).any())
    assert not bool((batch["negatives"] == u).any())


class _TreePlugin:
    """Registers the 31-node binary tree as the dataset ``test_hierarchy_tree``."""

    @hookimpl
    def boxlib_add_datasets(self, registry) -> None:
        registry.add(_tree, name="test_hierarchy_tree")


@pytest.fixture
def tree_dataset():
    name = boxlib.register(_TreePlugin(), name="test-hierarchy-tree")
    yield "test_hierarchy_tree"
    boxlib.unregister(name)


def test_model_trains_through_the_trainer_and_beats_random(tmp_path, tree_dataset):
    from boxlib.train import train
    from boxlib.train.config import Config

    ds = _tree()  # 31 nodes, 98 closure pairs
    untrained = HierarchyModel(ds, geometry="poincare", dim=2).evaluate()
    config = Config.from_dict(
        {
            "seed": 0,
            "output_dir": str(tmp_path / "run"),
            "data": {"name": tree_dataset},
            "model": {"name": "hierarchy", "geometry": "poincare", "dim": 2},
            "optimizer": {"name": "adam", "lr": 0.05},
            "trainer": {"max_epochs": 40, "batch_size": 32, "progress": False, "tensorboard": False},
            "validation": {"every_n_steps": 40, "split": "reconstruction", "monitor": "map"},
        }
    )
    result = train(config)
    trained = boxlib.load(result.best_checkpoint).evaluate("reconstruction")
    assert trained["map"] > untrained["map"] + 0.25, (untrained, trained)
    assert trained["mean_rank"] < untrained["mean_rank"] / 2, (untrained, trained)


@pytest.mark.parametrize("geometry", ["euclidean", "poincare"])
def test_point_score_learns_with_a_plain_loop(geometry):
    ds = _tree()
    torch.manual_seed(0)
    model = HierarchyModel(ds, geometry=geometry, score="point", dim=2)
    before = model.evaluate()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    examples = model.training_examples()
    for _ in range(150):
        batch = model.collate(examples.__getitems__(torch.randint(len(examples), (32,)).tolist()))
        optimizer.zero_grad()
        model.training_loss(batch).backward()
        optimizer.step()
    after = model.evaluate()
    assert after["map"] > before["map"] + 0.2, (before, after)


@pytest.mark.parametrize("geometry", host().registries["geometry"].names())
@pytest.mark.parametrize("score", ["box", "point"])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 6.0])
def test_gradients_are_finite_in_float32(geometry, score, scale):
    ds = _tree(3)
    torch.manual_seed(0)
    model = HierarchyModel(ds, geometry=geometry, score=score, dim=4, init_scale=scale)
    batch = model.collate(model.training_examples().__getitems__(list(range(ds.n_edges))))
    loss = model.training_loss(batch)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and bool(torch.isfinite(parameter.grad).all()), name


def test_model_argument_errors():
    ds = _tree(2)
    with pytest.raises(TypeError, match="needs a HierarchyDataset"):
        HierarchyModel(object(), geometry="euclidean")
    with pytest.raises(ValueError, match="score must be 'box'"):
        HierarchyModel(ds, score="cone")
    with pytest.raises(ValueError, match="center must be"):
        HierarchyModel(ds, center="middle")
    with pytest.raises(KeyError, match="set validation.split: reconstruction"):
        HierarchyModel(ds, geometry="euclidean").evaluate("valid")
    with pytest.raises(RuntimeError, match="score='box'"):
        HierarchyModel(ds, geometry="euclidean", score="point").regions()


def test_box_score_is_region_distance_and_separate_centers_train():
    ds = _tree(2)
    model = HierarchyModel(ds, geometry="poincare", score="box", center="separate", dim=3, init_scale=0.3)
    u, v = torch.tensor([3, 4]), torch.tensor([1, 2])
    expected = -model.geometry.distance_to_region(model.regions(v), model.points(u), model.alpha)
    assert torch.allclose(model.scores(u, v), expected)
    rows = model.score_rows(u)
    assert torch.allclose(rows[torch.arange(2), v], expected)
    assert model.center_point.shape == model.point.shape


# -- the bench suite ---------------------------------------------------------------------------------
def test_bench_includes_a_third_party_geometry(toy_env, tmp_path):
    env = {**toy_env, "BOXLIB_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "results"
    command = [
        sys.executable,
        "-m",
        "boxlib.bench",
        "hierarchy",
        "--quick",
        "--wordnet-dir",
        str(MINI),
        "--epochs",
        "2",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    systems = {(r["geometry"], r["score"]) for r in rows}
    assert {("scaled_euclidean", "box"), ("scaled_euclidean", "point"), ("poincare", "box")} <= systems
    assert all(1 <= float(r["mean_rank"]) and 0 <= float(r["map"]) <= 1 for r in rows)
    table = (out / "table.md").read_text()
    assert "4.02" in table and "2286.9" in table and "Reproduce" in table
    assert (out / "map.png").is_file() and (out / "loss.png").is_file()


def test_bench_missing_wordnet_is_one_line(tmp_path, monkeypatch, capsys):
    from boxlib.bench import main

    monkeypatch.setenv("BOXLIB_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = main(["hierarchy", "--wordnet-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    assert status == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[bench")]  # progress
    assert len(err) == 1 and err[0].startswith("boxlib bench hierarchy: error: --dataset mammals: ")
    assert "data.noun not found" in err[0] and "wordnet-base" in err[0]
    assert not (tmp_path / "o").exists()


def test_docstring_examples_run():
    import doctest

    from boxlib_plugins.hierarchy import data

    result = doctest.testmod(data)
    assert result.attempted >= 2 and result.failed == 0
