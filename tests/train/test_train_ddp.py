"""DDP on CPU (gloo) with two processes, started the way ``boxlib train`` starts them: with
``ddp`` Fabric re-runs the command line (here ``ddp_main.py``) for the second process, with
``ddp_spawn`` it starts both from the first through multiprocessing."""

from __future__ import annotations

import copy
import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import BASE

from boxlib.train import Config, load_checkpoint, train

SCRIPT = Path(__file__).with_name("ddp_main.py")


def run_ddp(config: Path, *overrides: str, strategy: str = "ddp", resume: bool = False) -> None:
    args = [sys.executable, str(SCRIPT), str(config)]
    for item in ("trainer.devices=2", f"trainer.strategy={strategy}", *overrides):
        args += ["--set", item]
    if resume:
        args.append("--resume")
    # Own session, so a hung run can be killed together with the process Fabric started.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"DDP run timed out:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]


def losses(output: Path) -> list[float]:
    with open(output / "metrics.csv", newline="") as f:
        return [float(row["train/loss"]) for row in csv.DictReader(f)]


def config_file(tmp_path: Path, name: str, **model) -> tuple[Path, Path]:
    raw = copy.deepcopy(BASE)
    raw["output_dir"] = str(tmp_path / name)
    raw["model"].update(model)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, tmp_path / name


@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn"])
def test_two_processes_train_like_one_process_on_the_same_global_batch(tmp_path, strategy):
    """batch_size is global: 2 processes × 4 examples give the gradient of 1 process × 8."""
    path, output = config_file(tmp_path, "ddp")
    run_ddp(path, strategy=strategy)
    single = train(Config.from_dict({**copy.deepcopy(BASE), "output_dir": str(tmp_path / "single")}))

    assert losses(output) == pytest.approx([loss for _, loss in single.losses], rel=1e-5, abs=1e-6)
    ddp_ckpt = load_checkpoint(output / "last.ckpt")
    assert len(ddp_ckpt["rng"]) == 2  # each process's random state
    single_weights = load_checkpoint(single.last_checkpoint)["model"]
    for name, tensor in ddp_ckpt["model"].items():
        torch.testing.assert_close(tensor, single_weights[name], rtol=1e-5, atol=1e-6)


def test_two_processes_resume_exactly(tmp_path):
    """With dropout, so each process's random stream must be restored from the checkpoint."""
    full_path, full = config_file(tmp_path, "full", dropout=0.3)
    run_ddp(full_path)
    part_path, part = config_file(tmp_path, "part", dropout=0.3)
    run_ddp(part_path, "trainer.max_steps=7")  # last.ckpt at step 7, mid-epoch
    run_ddp(part_path, resume=True)
    assert losses(part) == losses(full)
    a, b = load_checkpoint(full / "last.ckpt")["model"], load_checkpoint(part / "last.ckpt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
