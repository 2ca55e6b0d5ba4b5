"""``boxlib bench [catalog]``: every registered geometry, baselines, the results directory."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import yaml

from boxlib.bench import common
from boxlib.bench.bm25 import BM25Baseline
from boxlib.data import QueryExample, RetrievalDataset
from boxlib.query import parse

TINY = [
    "--set",
    "trainer.max_steps=3",
    "--set",
    "trainer.batch_size=8",
    "--set",
    "validation.every_n_steps=3",
    "--set",
    "trainer.progress=false",
    "--set",
    "model.dim=4",
]


def _bench(args, env, cwd):
    return subprocess.run(
        [sys.executable, "-m", "boxlib", "bench", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def toy_run(toy_env, tmp_path_factory):
    """One tiny catalog benchmark on the third-party toy catalog, with the toy geometry installed."""
    cwd = tmp_path_factory.mktemp("bench")
    out = cwd / "results"
    result = _bench(["--dataset", "toy_catalog", "--out", str(out), *TINY], toy_env, cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_every_registered_geometry_and_both_baselines_are_benchmarked(toy_run):
    out, _ = toy_run
    rows = list(csv.DictReader((out / "results.csv").open()))
    systems = [r["system"] for r in rows]
    # the third-party geometry comes from the toy package's entry point, not from boxlib
    assert {"anthem-euclidean", "anthem-poincare", "anthem-lorentz", "anthem-scaled_euclidean"} <= set(systems)
    assert {"vector", "bm25-bag", "bm25-boolean"} <= set(systems)
    for row in rows:
        for metric in ("ndcg@10", "map", "mrr", "single/mrr", "and/mrr", "or/mrr", "nested/mrr"):
            assert 0.0 <= float(row[metric]) <= 1.0, (row["system"], metric, row[metric])
    trained = [r for r in rows if r["model"] != "bm25"]
    assert all(int(r["steps"]) == 3 for r in trained)


def test_results_directory_holds_table_config_machine_and_plots(toy_run):
    out, result = toy_run
    table = (out / "table.md").read_text()
    assert "anthem-scaled_euclidean" in table and "By query structure" in table and "Reproduce:" in table
    assert "| system | ndcg@3 |" in result.stdout  # the table is printed too
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["suite"] == "catalog" and "scaled_euclidean" in config["geometries"]
    assert config["overrides"] == TINY[1::2]
    machine = json.loads((out / "machine.json").read_text())
    assert machine["versions"]["torch"] and machine["cpu_count"] >= 1
    assert machine["plugins"]["geometry:scaled_euclidean"].startswith("boxlib-toy-plugin")
    for png in ("metrics.png", "by-structure.png", "training.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for system in ("anthem-scaled_euclidean", "vector"):
        assert (out / "runs" / system / "metrics.csv").is_file()


def test_existing_results_are_not_overwritten(toy_run, toy_env):
    out, _ = toy_run
    before = (out / "results.csv").read_bytes()
    result = _bench(["--dataset", "toy_catalog", "--out", str(out), *TINY], toy_env, out.parent)
    assert result.returncode == 2
    assert "already holds results" in result.stderr and "--force" in result.stderr
    assert "Traceback" not in result.stderr
    assert (out / "results.csv").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--geometries", "lorenz"], "did you mean 'lorentz'"),
        (["--dataset", "wordnet_artefacts"], "did you mean 'wordnet_artifacts'"),
        (["--dataset-arg", "novalue"], "expected KEY=VALUE"),
        (["--dataset", "toy_catalog", "--set", "trainer.max_stepz=3"], "max_steps"),
    ],
)
def test_bad_arguments_are_one_line_errors(args, message, toy_env, tmp_path):
    result = _bench([*args, "--out", str(tmp_path / "r")], toy_env, tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr


def test_unknown_geometry_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(common.BenchError, match="did you mean 'poincare'"):
        common.geometry_names(["poincare", "poincaree"])
    assert common.geometry_names(["Poincare", "poincare"]) == ["poincare"]


def _catalog() -> RetrievalDataset:
    items = ["kitchen knife with a wooden handle", "bread knife", "silver fork", "soup spoon", "garden fork"]
    examples = [
        QueryExample(parse(q), a)
        for q, a in [("knife", [0, 1]), ("fork and garden", [4]), ("spoon or knife", [0, 1, 3])]
    ]
    return RetrievalDataset("mini", items, [str(i) for i in range(len(items))], {"test": examples})


def test_bm25_boolean_mode_follows_the_query_structure():
    dataset = _catalog()
    boolean, bag = BM25Baseline(dataset, "boolean"), BM25Baseline(dataset, "bag")
    knife, fork, garden = (boolean.all_scores([w])[0] for w in ("knife", "fork", "garden"))
    # and = minimum of the operands' BM25 scores, or = maximum (worked out from the single terms)
    assert boolean.all_scores(["fork and garden"])[0].tolist() == pytest.approx(
        [min(a, b) for a, b in zip(fork.tolist(), garden.tolist())]
    )
    spoon = boolean.all_scores(["spoon"])[0]
    assert boolean.all_scores(["spoon or knife"])[0].tolist() == pytest.approx(
        [max(a, b) for a, b in zip(spoon.tolist(), knife.tolist())]
    )
    # only the garden fork has both words: boolean ranks it alone on top, and the bag agrees here
    assert int(boolean.all_scores(["fork and garden"])[0].argmax()) == 4
    assert bool((boolean.all_scores(["fork and garden"])[0][[0, 1, 2, 3]] == 0).all())
    assert int(bag.all_scores(["fork and garden"])[0].argmax()) == 4
    # knife matches items 0 and 1 only
    assert set(torch_nonzero(knife)) == {0, 1}
    metrics = boolean.evaluate("test", ["mrr"])
    assert metrics["mrr"] == pytest.approx(1.0)


def torch_nonzero(scores) -> list[int]:
    return [i for i, s in enumerate(scores.tolist()) if s > 0]


def test_bm25_refuses_relation_paths():
    with pytest.raises(ValueError, match="cannot follow relations"):
        BM25Baseline(_catalog()).all_scores(["@r1(knife)"])


def test_tables_keep_reference_figures_and_mark_missing_values():
    table = common.markdown_table(
        [{"system": "a", "mr": 2286.9, "map": 0.0591, "params": 3155427}, {"system": "b", "mr": float("nan")}],
        ["system", "mr", "map", "params"],
    )
    lines = table.splitlines()
    assert lines[2] == "| a | 2286.9 | 0.059 | 3,155,427 |"
    assert lines[3] == "| b | – | – | – |"
