"""``boxlib bench kg``: every registered geometry (a third-party one included) trained and
evaluated on knowledge-graph queries, with tiny settings."""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import pytest
from boxlib_plugins.kg.generate import generate_release, read_triples
from boxlib_plugins.kg.release import write_release

from boxlib.bench import kg
from boxlib.bench.common import BenchError

FIXTURES = Path(__file__).parent / "fixtures" / "kg"
TINY = [
    "--set",
    "trainer.max_steps=3",
    "--set",
    "trainer.batch_size=8",
    "--set",
    "trainer.checkpoint_every_n_steps=3",
    "--set",
    "trainer.progress=false",
    "--set",
    "validation.every_n_steps=3",
    "--set",
    "model.dim=4",
    "--set",
    "model.negatives=4",
    "--threads",
    "1",
]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    kg.add_arguments(parser)
    return parser.parse_args(list(argv))


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_every_geometry_and_the_third_party_one_in_the_results(toy_env, tmp_path):
    out = tmp_path / "out"
    argv = [
        "--dataset",
        "kg_triples",
        "--dataset-arg",
        f"path={FIXTURES / 'tiny'}",
        "--dataset-arg",
        "train_queries=20",
        "--dataset-arg",
        "eval_queries=4",
        *TINY,
        "--out",
        str(out),
    ]
    script = (
        "import argparse, sys\n"
        "from boxlib.bench import suite\n"
        "parser = argparse.ArgumentParser()\n"
        "suite('kg').add_arguments(parser)\n"
        "sys.exit(suite('kg').run(parser.parse_args(sys.argv[1:])))\n"
    )
    env = {**toy_env, "BOXLIB_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-c", script, *argv], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    geometries = [row["geometry"] for row in _rows(out)]
    assert "scaled_euclidean" in geometries  # the toy plugin's geometry, which has no point_at
    assert {"euclidean", "poincare", "lorentz"} <= set(geometries)
    table = (out / "table.md").read_text()
    assert "| query2box-scaled_euclidean |" in table
    assert (out / "mrr.png").exists() and (out / "machine.json").exists()


def test_tiny_quick_run_on_a_release_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("BOXLIB_CACHE", str(tmp_path / "cache"))
    release = generate_release(read_triples(FIXTURES / "tiny"), train_queries=20, eval_queries=4, seed=0)
    data_dir = write_release(release, tmp_path / "release")
    out = tmp_path / "out"
    args = _args("--data-dir", str(data_dir), "--quick", "--geometries", "euclidean", *TINY, "--out", str(out))
    assert kg.run(args) == 0
    (row,) = _rows(out)
    assert row["system"] == "query2box-euclidean" and row["steps"] == "3"
    structures = [s for s in kg.STRUCTURES if s in row]
    assert structures == [
        s for s in kg.STRUCTURES if any(len(q) for t, q in release.queries["test"].items() if _name(t) == s)
    ]
    for structure in structures:
        for column in (structure, f"{structure}/hits@1", f"{structure}/hits@10"):
            assert 0.0 <= float(row[column]) <= 1.0
    mean = sum(float(row[s]) for s in structures) / len(structures)
    assert float(row["avg"]) == pytest.approx(mean)
    table = (out / "table.md").read_text()
    assert table.splitlines()[2].startswith("| system | " + " | ".join(structures) + " | avg |")
    assert "--quick" in table and "Queries per structure" in table
    config = (out / "config.yaml").read_text()
    assert "max_steps: 500" in config  # --quick's schedule, then --set trainer.max_steps=3
    with pytest.raises(BenchError, match="already holds results"):
        kg.run(args)


def _name(structure: tuple) -> str:
    from boxlib.query.kg import BETAE_STRUCTURES

    return next(name for name, t in BETAE_STRUCTURES.items() if t == structure)


def test_errors_are_one_line_bench_errors(tmp_path):
    with pytest.raises(BenchError, match="--data-dir .*nowhere: not a directory"):
        kg.run(_args("--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "a")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match=r"dataset betae: .*stats\.txt: file not found"):
        kg.run(_args("--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "b")))
    with pytest.raises(BenchError, match="unknown dataset 'wordnet_gk'"):
        kg.run(_args("--dataset", "wordnet_gk", "--out", str(tmp_path / "c")))
    with pytest.raises(BenchError, match="dataset wordnet_artifacts is not a knowledge-graph query dataset"):
        kg.run(_args("--dataset", "wordnet_artifacts", "--out", str(tmp_path / "g")))
    with pytest.raises(BenchError, match="--dataset-arg 'root': expected KEY=VALUE"):
        kg.run(_args("--dataset-arg", "root", "--out", str(tmp_path / "d")))
    with pytest.raises(BenchError, match="--geometries"):
        kg.run(_args("--geometries", "lorenz", "--out", str(tmp_path / "e")))
    with pytest.raises(BenchError, match=r"--threads must be 0 \(torch's choice\) or positive"):
        kg.run(_args("--threads", "-1", "--out", str(tmp_path / "f")))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="WordNet 3.0 (wordnet-base) absent")
def test_quick_on_the_wordnet_kg(tmp_path, monkeypatch):
    monkeypatch.setenv("BOXLIB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert kg.run(_args("--quick", "--geometries", "euclidean", "--threads", "1", "--out", str(out))) == 0
    (row,) = _rows(out)
    assert float(row["avg"]) > 0.01  # chance is about 1e-3 over 10,699 entities
