"""boxlib.load, `boxlib query` and `boxlib explain` on a briefly trained model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import boxlib
from boxlib.train import CheckpointError, load_config, train

CONFIGS = Path(__file__).parents[1] / "configs"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    config = load_config(
        CONFIGS / "anthem-euclidean-wordnet.yaml",
        [
            f"output_dir={out}",
            "model.dim=8",
            "trainer.max_steps=3",
            "trainer.batch_size=16",
            "trainer.checkpoint_every_n_steps=3",
            "validation.every_n_steps=null",
            "validation.monitor=null",
            "validation.patience=null",
            "scheduler.warmup_steps=0",
        ],
    )
    train(config)
    return out


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "boxlib.cli", *args], capture_output=True, text=True, timeout=300)


def test_load_rebuilds_the_trained_model(run_dir):
    model = boxlib.load(run_dir / "last.ckpt")
    again = boxlib.load(run_dir)  # a run directory works too
    assert not model.training and model.geometry.name == "euclidean"
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    top = model.rank("knife or spoon", k=5)
    assert len(top) == 5 and all(model.items[i] == t for i, t, _ in top)
    regions = model.embed_queries(["knife or spoon"])[0]
    assert regions.batch_shape == (2,)  # one region per union branch
    assert model.embed_items(torch.tensor([0, 1])).shape == (2, 8)


def test_load_refuses_a_corrupt_checkpoint_with_its_name(tmp_path, run_dir):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes((run_dir / "last.ckpt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="bad.ckpt"):
        boxlib.load(bad)


def test_cli_query_prints_ranked_items(run_dir):
    result = _cli("query", "--checkpoint", str(run_dir), "knife or spoon", "-k", "3", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 3 and rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]
    table = _cli("query", "--checkpoint", str(run_dir), "knife or spoon", "-k", "2")
    assert table.stdout.startswith("top 2 for: knife or spoon")


def test_cli_query_reports_bad_queries_and_missing_checkpoints(run_dir, tmp_path):
    bad = _cli("query", "--checkpoint", str(run_dir), "knife and (")
    assert bad.returncode == 2 and "unclosed '('" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli("query", "--checkpoint", str(tmp_path / "nope.ckpt"), "knife")
    assert missing.returncode != 0 and "nope.ckpt" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_explain_writes_a_png(run_dir, tmp_path):
    out = tmp_path / "grid.png"
    result = _cli("explain", "--checkpoint", str(run_dir), "kitchen knife", "carving knife", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
