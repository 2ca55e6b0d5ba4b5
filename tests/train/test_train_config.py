"""Training configuration: YAML → typed objects, with errors that name the key and the fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import BASE

from boxlib.plugins import host
from boxlib.train import Config, ConfigError, apply_overrides, check_components, load_config, main_train, train
from boxlib.train.config import TrainerConfig

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def write(tmp_path: Path, raw: dict, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), **raw}))
    return path


def test_valid_file_gives_typed_config_with_defaults(tmp_path):
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.trainer.batch_size == 8 and cfg.trainer.precision == "32-true"
    assert cfg.model.name == "toy_scorer" and cfg.data.kwargs == {"n": 40}
    assert cfg.scheduler.name == "none" and cfg.validation.every_n_steps is None
    assert Config.from_dict(cfg.to_dict()) == cfg  # the resolved config round-trips


@pytest.mark.parametrize(
    ("section", "key", "suggestion"),
    [(None, "sed", "seed"), ("trainer", "max_step", "max_steps"), ("optimizer", "learning_rate", None)],
)
def test_unknown_key_is_named_with_the_closest_valid_one(tmp_path, section, key, suggestion):
    raw = json.loads(json.dumps(BASE))
    (raw[section] if section else raw)[key] = 1
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    message = str(err.value)
    assert f"unknown key '{section + '.' if section else ''}{key}'" in message
    if suggestion:
        assert f"did you mean '{suggestion}'?" in message
    assert "Valid keys here:" in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.batch_size=eight", "trainer.batch_size: expected int, got 'eight' (str)"),
        ("trainer.batch_size=8.5", "trainer.batch_size: expected int, got 8.5 (float)"),
        ("trainer.progress=3", "trainer.progress: expected bool, got 3 (int)"),
        ("optimizer.lr=fast", "optimizer.lr: expected float, got 'fast' (str)"),
        ("trainer.max_steps=[1]", "trainer.max_steps: expected int or null, got [1] (list)"),
        ("trainer=5", "trainer: expected a mapping, got 5 (int)"),
        ("model.name=3", "model.name: expected a registry name (str), got 3 (int)"),
    ],
)
def test_wrong_type_names_key_value_and_expected_type(tmp_path, override, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(write(tmp_path, BASE), [override])


def test_choices_and_ranges_are_checked(tmp_path):
    path = write(tmp_path, BASE)
    with pytest.raises(
        ConfigError, match=r"trainer.precision: expected one of .*'bf16-mixed'.*got 'bf16'; did you mean"
    ):
        load_config(path, ["trainer.precision=bf16"])
    with pytest.raises(ConfigError, match=r"trainer.batch_size: must be >= 1, got 0"):
        load_config(path, ["trainer.batch_size=0"])
    with pytest.raises(ConfigError, match=r"optimizer.lr: must be >= 0.0, got nan"):
        load_config(path, ["optimizer.lr=.nan"])
    with pytest.raises(ConfigError, match="set max_steps or max_epochs"):
        load_config(path, ["trainer.max_steps=null"])
    with pytest.raises(ConfigError, match="validation.patience needs validation.monitor"):
        load_config(path, ["validation.patience=3", "validation.every_n_steps=2"])


def test_missing_file_and_missing_keys_are_named(tmp_path):
    with pytest.raises(ConfigError, match=f"config file not found: {tmp_path / 'nope.yaml'}"):
        load_config(tmp_path / "nope.yaml")
    raw = {k: v for k, v in BASE.items() if k != "model"}
    with pytest.raises(ConfigError, match="missing required key 'model'"):
        load_config(write(tmp_path, raw))
    with pytest.raises(ConfigError, match=r"missing required key 'data.name'"):
        load_config(write(tmp_path, {**BASE, "data": {"n": 3}}))
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: [unclosed\n")
    with pytest.raises(ConfigError, match=f"{bad}: invalid YAML"):
        load_config(bad)


def test_overrides_set_nested_keys_and_parse_values_as_yaml():
    raw = apply_overrides(BASE, ["trainer.max_steps=3", "model.hidden=16", "scheduler.name=cosine", "data.path=~"])
    assert raw["trainer"]["max_steps"] == 3 and raw["model"]["hidden"] == 16
    assert raw["scheduler"] == {"name": "cosine"} and raw["data"]["path"] is None
    assert BASE["trainer"]["max_steps"] == 12  # the input is not modified
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides(BASE, ["trainer.max_steps"])
    with pytest.raises(ConfigError, match="seed is 0, not a section"):
        apply_overrides(BASE, ["seed.value=1"])


def test_float_fields_accept_exponent_strings_pyyaml_leaves_as_text(tmp_path):
    (tmp_path / "lr.yaml").write_text(
        f"output_dir: {tmp_path}\nmodel: {{name: toy_scorer}}\ndata: {{name: toy_points}}\noptimizer: {{lr: 1e-3}}\n"
        "trainer: {max_epochs: 1}\n"
    )
    assert load_config(tmp_path / "lr.yaml").optimizer.lr == pytest.approx(1e-3)


def test_trainer_section_alone_validates():
    assert TrainerConfig(max_epochs=2).max_steps is None


def test_component_arguments_are_checked_against_the_factory(make_config):
    with pytest.raises(ConfigError, match=r"unknown key 'model.hiden'.*did you mean 'hidden'\?"):
        check_components(make_config("model.hiden=4"))
    with pytest.raises(ConfigError, match="the trainer passes dataset= itself"):
        check_components(make_config("model.dataset=x"))
    with pytest.raises(ConfigError, match=r"model.name: unknown model 'toy_scorr'; did you mean 'toy_scorer'"):
        check_components(make_config("model.name=toy_scorr"))


def test_missing_dataset_file_names_the_path(make_config, tmp_path):
    missing = tmp_path / "data" / "points.json"
    with pytest.raises(ConfigError, match=f"dataset 'toy_points' cannot be loaded: file not found: {missing}"):
        train(make_config(f"data.path={missing}"))


def test_main_train_reports_config_errors_on_one_line(tmp_path, capsys):
    assert main_train(tmp_path / "absent.yaml") == 2
    err = capsys.readouterr().err
    assert err.startswith("boxlib train: error: config file not found:") and err.count("\n") == 1
    assert main_train(write(tmp_path, BASE), ["trainer.batch_szie=4"]) == 2
    assert "did you mean 'batch_size'?" in capsys.readouterr().err


def test_there_are_example_configs():
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_config_validates(path):
    """Every shipped config validates; its components' arguments are checked when they are registered."""
    cfg = load_config(path)
    assert cfg.output_dir.startswith("runs/")
    registries = host().registries
    if cfg.model.name in registries["model"] and cfg.data.name in registries["dataset"]:
        check_components(cfg)
    elif cfg.model.name in registries["model"]:  # the dataset plugin is not there yet: check the model alone
        check_components(Config.from_dict({**cfg.to_dict(), "data": {"name": "toy_points"}}))
