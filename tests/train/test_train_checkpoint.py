"""Checkpoint files, RNG state and the batch sampler."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from boxlib.train.checkpoint import (
    CheckpointError,
    capture_rng,
    check_plain_data,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from boxlib.train.sampling import GlobalBatchSampler


class Opaque:
    pass


def state(value: float = 1.0) -> dict:
    return {"model": {"w": torch.full((3,), value)}, "step": 7, "nested": [("a", None, 1.5, True)]}


def test_round_trip_with_weights_only(tmp_path):
    path = tmp_path / "a.ckpt"
    save_checkpoint(state(), path)
    loaded = load_checkpoint(path, required=("model", "step"))
    assert torch.equal(loaded["model"]["w"], torch.ones(3)) and loaded["step"] == 7
    assert loaded["nested"] == [("a", None, 1.5, True)]
    assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]  # no temporary file left behind


def test_objects_that_weights_only_would_refuse_are_not_written(tmp_path):
    path = tmp_path / "a.ckpt"
    with pytest.raises(TypeError, match=r"checkpoint\['extra'\]\[0\]: a .*Opaque is not a tensor or plain data"):
        save_checkpoint({"extra": [Opaque()]}, path)
    with pytest.raises(TypeError, match="key 1.5 is a float"):
        check_plain_data({1.5: 1})
    assert not path.exists()


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    save_checkpoint(state(1.0), path)

    def half_written(obj, f):
        f.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(CheckpointError, match=f"could not write checkpoint {path}: .*No space left"):
        save_checkpoint(state(2.0), path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path, required=())["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_truncated_or_garbage_checkpoint_is_a_clear_error_naming_the_file(tmp_path):
    good = tmp_path / "good.ckpt"
    save_checkpoint(state(), good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"checkpoint {truncated} is truncated or corrupt"):
        load_checkpoint(truncated, required=())
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(os.urandom(64))
    with pytest.raises(CheckpointError, match=f"checkpoint {garbage} is (truncated or )?corrupt"):
        load_checkpoint(garbage, required=())
    with pytest.raises(CheckpointError, match=f"checkpoint not found: {tmp_path / 'none.ckpt'}"):
        load_checkpoint(tmp_path / "none.ckpt")


def test_pickled_code_is_never_executed(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"format": "boxlib.train.checkpoint", "format_version": 1, "x": Opaque()}, path)
    with pytest.raises(
        CheckpointError, match=f"checkpoint {path} holds objects other than tensors and plain data \\(.*Opaque\\)"
    ):
        load_checkpoint(path, required=())


def test_other_files_and_missing_keys_are_refused(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"w": torch.ones(1)}, path)
    with pytest.raises(CheckpointError, match=f"{path} is not a boxlib training checkpoint"):
        load_checkpoint(path)
    save_checkpoint(state(), path)
    with pytest.raises(CheckpointError, match=f"checkpoint {path} lacks optimizer, scheduler"):
        load_checkpoint(path)


def test_rng_states_survive_a_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1)  # leaves a cached gaussian in Python's state
    save_checkpoint({"rng": capture_rng()}, tmp_path / "rng.ckpt")
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng(load_checkpoint(tmp_path / "rng.ckpt", required=())["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


def test_processes_take_contiguous_shares_of_the_same_global_batch():
    one = list(GlobalBatchSampler(22, 8, seed=5))
    assert len(one) == 2 and all(len(b) == 8 for b in one)  # the incomplete last batch is dropped
    halves = [list(GlobalBatchSampler(22, 8, seed=5, rank=r, world_size=2)) for r in range(2)]
    assert [a + b for a, b in zip(*halves)] == one
    assert list(GlobalBatchSampler(22, 8, seed=5)) == one  # seeded
    with pytest.raises(ValueError, match="does not split evenly over 3 processes"):
        GlobalBatchSampler(22, 8, seed=5, world_size=3)
    with pytest.raises(ValueError, match="larger than the 5 training examples"):
        GlobalBatchSampler(5, 8, seed=5)


def test_sampler_resumes_inside_an_epoch():
    sampler = GlobalBatchSampler(40, 8, seed=0)
    uninterrupted = [list(sampler) for _ in range(3)]
    sampler = GlobalBatchSampler(40, 8, seed=0)
    list(sampler)
    it = iter(sampler)
    next(it), next(it)  # two batches of the second epoch trained on, then a checkpoint
    saved = sampler.state_dict()
    resumed = GlobalBatchSampler(40, 8, seed=0)
    resumed.load_state_dict(saved, batches_done=2)
    assert list(resumed) == uninterrupted[1][2:]
    assert list(resumed) == uninterrupted[2]
