"""Training configuration: a YAML file, validated into typed dataclasses.

The file is read with ``yaml.safe_load``; ``--set a.b=value`` overrides are applied to the
raw mapping (each value parsed with ``yaml.safe_load`` too) before validation, so an
override is checked exactly like a key in the file. Errors name the key, the value and
what was expected; an unknown key suggests the closest valid one.

Schema (defaults after ``=``; ``output_dir``, ``model``, ``data`` and ``trainer`` with
``max_steps`` or ``max_epochs`` are required, everything else may be left out)::

    seed: int = 0
    output_dir: str                       # required; checkpoints, metrics.csv, config.yaml
    model:     {name: str, **kwargs}      # registry["model"].create(name, dataset=..., **kwargs)
    data:      {name: str, **kwargs}      # registry["dataset"].create(name, **kwargs)
    optimizer: {name: adam|adamw|sgd = adam, lr: float = 1e-3, weight_decay: float = 0.0,
                momentum: float = 0.0}    # momentum: sgd only
    scheduler: {name: none|cosine|step = none, warmup_steps: int = 0,
                min_lr_ratio: float = 0.0,   # cosine: final lr / base lr
                step_size: int = 1000, gamma: float = 0.1}   # step: lr *= gamma every step_size
    trainer:   {max_steps: int|null = null, max_epochs: int|null = null,  # at least one
                batch_size: int = 32,     # global: split evenly over all processes
                accelerator: str = auto, devices: int|str = 1, num_nodes: int = 1,
                strategy: str = auto,     # auto | ddp | ddp_spawn | ddp_find_unused_parameters_true
                precision: 32-true|64-true|bf16-mixed|16-mixed = 32-true,
                grad_clip: float|null = null,   # max global L2 norm of the gradients
                on_nonfinite: stop|skip = stop, max_consecutive_skips: int = 10,
                log_every_n_steps: int = 10, checkpoint_every_n_steps: int|null = 100,
                num_workers: int = 0, deterministic: bool = false,
                progress: bool = true, tensorboard: bool|null = null}  # null: when installed
    validation: {every_n_steps: int|null = null,   # null: no validation
                 split: str = valid,
                 monitor: str|null = null,          # a key of model.evaluate(split)
                 mode: max|min = max, patience: int|null = null,   # early stopping
                 min_delta: float = 0.0}

Relative paths are relative to the working directory. Floats may be written ``1e-3``:
PyYAML reads that as a string (YAML 1.1 wants ``1.0e-3``), so a float field accepts any
string Python's ``float`` parses.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "ComponentConfig",
    "Config",
    "ConfigError",
    "OptimizerConfig",
    "SchedulerConfig",
    "TrainerConfig",
    "ValidationConfig",
    "apply_overrides",
    "load_config",
]


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and the fix."""


def _min(value: int | float) -> dict:
    return {"min": value}


@dataclasses.dataclass(frozen=True)
class ComponentConfig:
    """A registry name and the keyword arguments its factory receives (written flat in YAML)."""

    name: str
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.kwargs}


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = dataclasses.field(default=1e-3, metadata=_min(0.0))
    weight_decay: float = dataclasses.field(default=0.0, metadata=_min(0.0))
    momentum: float = dataclasses.field(default=0.0, metadata=_min(0.0))


@dataclasses.dataclass(frozen=True)
class SchedulerConfig:
    name: Literal["none", "cosine", "step"] = "none"
    warmup_steps: int = dataclasses.field(default=0, metadata=_min(0))
    min_lr_ratio: float = dataclasses.field(default=0.0, metadata=_min(0.0))
    step_size: int = dataclasses.field(default=1000, metadata=_min(1))
    gamma: float = dataclasses.field(default=0.1, metadata=_min(0.0))


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    max_steps: int | None = dataclasses.field(default=None, metadata=_min(1))
    max_epochs: int | None = dataclasses.field(default=None, metadata=_min(1))
    batch_size: int = dataclasses.field(default=32, metadata=_min(1))
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = dataclasses.field(default=1, metadata=_min(1))
    strategy: str = "auto"
    precision: Literal["32-true", "64-true", "bf16-mixed", "16-mixed"] = "32-true"
    grad_clip: float | None = dataclasses.field(default=None, metadata=_min(0.0))
    on_nonfinite: Literal["stop", "skip"] = "stop"
    max_consecutive_skips: int = dataclasses.field(default=10, metadata=_min(1))
    log_every_n_steps: int = dataclasses.field(default=10, metadata=_min(1))
    checkpoint_every_n_steps: int | None = dataclasses.field(default=100, metadata=_min(1))
    num_workers: int = dataclasses.field(default=0, metadata=_min(0))
    deterministic: bool = False
    progress: bool = True
    tensorboard: bool | None = None

    def __post_init__(self) -> None:
        if self.max_steps is None and self.max_epochs is None:
            raise ConfigError("trainer: set max_steps or max_epochs (or both; training stops at whichever comes first)")


@dataclasses.dataclass(frozen=True)
class ValidationConfig:
    every_n_steps: int | None = dataclasses.field(default=None, metadata=_min(1))
    split: str = "valid"
    monitor: str | None = None
    mode: Literal["max", "min"] = "max"
    patience: int | None = dataclasses.field(default=None, metadata=_min(1))
    min_delta: float = dataclasses.field(default=0.0, metadata=_min(0.0))

    def __post_init__(self) -> None:
        if self.patience is not None and self.monitor is None:
            raise ConfigError("validation.patience needs validation.monitor: the metric early stopping watches")
        if self.monitor is not None and self.every_n_steps is None:
            raise ConfigError(
                f"validation.monitor is {self.monitor!r} but validation.every_n_steps is null, so nothing is ever "
                "validated; set every_n_steps"
            )


@dataclasses.dataclass(frozen=True)
class Config:
    """A validated training configuration; build one with :func:`load_config` or :meth:`from_dict`."""

    output_dir: str
    model: ComponentConfig
    data: ComponentConfig
    trainer: TrainerConfig  # required: it must say how long to train
    seed: int = dataclasses.field(default=0, metadata={"min": 0, "max": 2**32 - 1})
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    validation: ValidationConfig = ValidationConfig()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Config:
        """Validate a plain mapping (as ``yaml.safe_load`` returns it)."""
        return _build(cls, raw, "")

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain data (YAML- and checkpoint-safe)."""
        return _to_plain(self)

    @property
    def path(self) -> Path:
        return Path(self.output_dir)


# -- reading ----------------------------------------------------------------------------
def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML file, apply ``key.path=value`` overrides, validate.

    :raises ConfigError: missing or unreadable file, YAML syntax error, bad override,
        unknown key, wrong type or value.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path.resolve()}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    try:
        return Config.from_dict(apply_overrides(raw, overrides))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``raw`` with each ``a.b.c=value`` applied (value read by ``yaml.safe_load``)."""
    result = _deep_copy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r}: expected KEY=VALUE with a dotted key, e.g. trainer.max_steps=100")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {exc}") from None
        *parents, leaf = key.split(".")
        node = result
        for depth, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parents[: depth + 1])
                raise ConfigError(f"override {item!r}: {where} is {child!r}, not a section")
            node = child
        node[leaf] = value
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


# -- validation -------------------------------------------------------------------------
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(inf|nan)", re.IGNORECASE)


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where.rstrip('.') or 'config'}: expected a mapping, got {raw!r} ({type(raw).__name__})")
    if cls is ComponentConfig:
        return _build_component(raw, where)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            raise ConfigError(_unknown_key(f"{where}{key}", str(key), list(fields)))
    values = {}
    for name, f in fields.items():
        key = f"{where}{name}"
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"missing required key '{key}'")
            continue
        value = _coerce(raw[name], hints[name], key)
        _check_range(value, f.metadata, key)
        values[name] = value
    return cls(**values)  # __post_init__ checks relations between keys


def _build_component(raw: Mapping[str, Any], where: str) -> ComponentConfig:
    section = where.rstrip(".")
    if "name" not in raw:
        raise ConfigError(f"missing required key '{section}.name' (the registry name of the component)")
    name = raw["name"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{section}.name: expected a registry name (str), got {name!r} ({type(name).__name__})")
    return ComponentConfig(name, {k: v for k, v in raw.items() if k != "name"})


def _unknown_key(key: str, name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else "."
    return f"unknown key '{key}'{hint} Valid keys here: {', '.join(valid)}"


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against the annotation ``tp`` (nested dataclasses are built)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError:
                pass
        raise ConfigError(_wrong_type(key, value, tp))
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}{hint}")
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Any:
        return value
    else:  # pragma: no cover - a schema type this function does not know is a bug here
        raise TypeError(f"config schema: unsupported annotation {tp!r} for {key}")
    raise ConfigError(_wrong_type(key, value, tp))


def _wrong_type(key: str, value: Any, tp: Any) -> str:
    return f"{key}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})"


def _check_range(value: Any, metadata: Mapping[str, Any], key: str) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high = metadata.get("min"), metadata.get("max")
    if low is not None and not value >= low:  # `not >=` also refuses nan
        raise ConfigError(f"{key}: must be >= {low}, got {value!r}")
    if high is not None and not value <= high:
        raise ConfigError(f"{key}: must be <= {high}, got {value!r}")


def _to_plain(value: Any) -> Any:
    if isinstance(value, ComponentConfig):
        return _to_plain(value.to_dict())
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value
