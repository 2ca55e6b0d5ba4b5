from __future__ import annotations

import copy
from pathlib import Path

import pytest
from train_toy import ToyPlugin

import boxlib
from boxlib.train import Config, apply_overrides

PLUGIN = "boxlib-tests-train-toy"

#: A run small enough for a fraction of a second: 40 examples, batches of 8 (5 per epoch).
BASE = {
    "seed": 0,
    "model": {"name": "toy_scorer"},
    "data": {"name": "toy_points", "n": 40},
    "optimizer": {"name": "adam", "lr": 0.05},
    "trainer": {
        "accelerator": "cpu",
        "max_steps": 12,
        "batch_size": 8,
        "log_every_n_steps": 1,
        "checkpoint_every_n_steps": 5,
        "progress": False,
        "tensorboard": False,
    },
}


@pytest.fixture(scope="module", autouse=True)
def toy_components():
    """The toy model and dataset, registered for this module's tests only."""
    name = boxlib.register(ToyPlugin(), name=PLUGIN)
    yield
    boxlib.unregister(name)


@pytest.fixture
def make_config(tmp_path):
    """``make_config("trainer.max_steps=3", ..., output="run")``: BASE with overrides."""

    def make(*overrides: str, output: str = "run") -> Config:
        raw = copy.deepcopy(BASE)
        raw["output_dir"] = str(Path(tmp_path) / output)
        return Config.from_dict(apply_overrides(raw, overrides))

    return make
