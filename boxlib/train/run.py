"""From a config to a trained model: components from the registries, Fabric, the trainer."""

from __future__ import annotations

import argparse
import difflib
import gc
import inspect
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning_fabric import Fabric
from lightning_fabric.loggers import TensorBoardLogger
from lightning_fabric.utilities.exceptions import MisconfigurationException
from lightning_fabric.utilities.rank_zero import rank_zero_only

from boxlib.registry import Entry, Registry, UnknownComponentError
from boxlib.train.callbacks import ProgressBar
from boxlib.train.checkpoint import CheckpointError
from boxlib.train.config import Config, ConfigError, load_config
from boxlib.train.loggers import CSVLogger, tensorboard_available
from boxlib.train.trainer import LAST, FitResult, NonFiniteLossError, Trainer

__all__ = [
    "RunExistsError",
    "add_arguments",
    "build_dataset",
    "build_model",
    "check_components",
    "main",
    "main_train",
    "train",
]


class RunExistsError(ConfigError):
    """The output directory already holds a run and no resume was asked for."""


# -- entry points -------------------------------------------------------------------------
def main_train(
    config_path: str | os.PathLike, overrides: Sequence[str] = (), *, resume: str | bool | None = None
) -> int:
    """``boxlib train CONFIG [--set key=value ...] [--resume [PATH]]``; returns the exit status.

    0: trained; 1: training failed (non-finite loss, unreadable checkpoint); 2: the
    configuration is unusable. Errors are one line on stderr.
    """
    try:
        train(load_config(config_path, overrides), resume=resume)
    except (ConfigError, CheckpointError, NonFiniteLossError) as exc:
        if rank_zero_only.rank == 0:  # every process raises the same error; say it once
            print(f"boxlib train: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` subcommand's arguments (``main`` below, or the ``boxlib`` CLI, parses them)."""
    parser.add_argument("config", help="YAML configuration file (see boxlib.train.config for the keys)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set trainer.max_steps=100 (repeatable; VALUE is read as YAML)",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="CHECKPOINT",
        help="continue from CHECKPOINT, or from OUTPUT_DIR/last.ckpt when no path is given",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m boxlib.train CONFIG ...``."""
    parser = argparse.ArgumentParser(prog="python -m boxlib.train", description="Train a boxlib model.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return main_train(args.config, args.overrides, resume=args.resume)


def train(
    config: Config, *, resume: str | os.PathLike | bool | None = None, callbacks: Sequence[Any] = ()
) -> FitResult:
    """Train the configured model; returns what process rank 0 saw.

    :param resume: ``True`` for ``OUTPUT_DIR/last.ckpt``, a checkpoint path, or ``None``
        for a fresh run (refused when the output directory already holds a checkpoint).
    :param callbacks: extra objects with ``on_*`` methods (:mod:`boxlib.train.events`).

    With ``trainer.strategy: ddp`` and several devices, Fabric starts the other processes
    by re-running this process's command line, so call this from a script or through
    ``boxlib train``, not from an interactive session.
    """
    resume_path = _resume_path(config, resume)
    check_components(config)
    tc = config.trainer
    output = Path(config.output_dir)
    csv_logger = CSVLogger(output / "metrics.csv")
    loggers: list[Any] = [csv_logger]
    if tc.tensorboard and not tensorboard_available():
        raise ConfigError("trainer.tensorboard is true, but neither tensorboard nor tensorboardX is installed")
    if tc.tensorboard or (tc.tensorboard is None and tensorboard_available()):
        loggers.append(TensorBoardLogger(root_dir=output, name="tensorboard", version="", default_hp_metric=False))
    bundled = [csv_logger, *([ProgressBar()] if tc.progress else [])]
    if tc.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when CUDA starts
    try:
        fabric = Fabric(
            accelerator=tc.accelerator,
            devices=tc.devices,
            num_nodes=tc.num_nodes,
            strategy=tc.strategy,
            precision=tc.precision,
            loggers=loggers,
            callbacks=[*bundled, *callbacks],
        )
    except (MisconfigurationException, ValueError, TypeError, RuntimeError) as exc:
        raise ConfigError(f"trainer: {exc}") from None
    return fabric.launch(_fit, config.to_dict(), resume_path)  # plain data: spawn launchers copy it


def _fit(fabric: Fabric, raw_config: dict[str, Any], resume: Path | None) -> FitResult:
    """Runs in every process."""
    config = Config.from_dict(raw_config)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(config.trainer.deterministic or deterministic)
    try:
        result = _build_and_fit(fabric, config, resume)
    except NonFiniteLossError as exc:  # every process stops at the same step: close together
        traceback.clear_frames(exc.__traceback__)  # the frames hold the DDP-wrapped model
        _close_process_group(fabric)
        raise
    finally:
        torch.use_deterministic_algorithms(deterministic)
    _close_process_group(fabric)
    return result


def _close_process_group(fabric: Fabric) -> None:
    """Close the process group Fabric opened (gloo aborts at exit otherwise): after the DDP
    wrapper that uses it is gone (gc) and once every process got here (barrier). Not after
    other errors: the other processes may never arrive."""
    if fabric.world_size > 1 and torch.distributed.is_initialized():
        gc.collect()
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def _build_and_fit(fabric: Fabric, config: Config, resume: Path | None) -> FitResult:
    fabric.seed_everything(config.seed, workers=True, verbose=False)
    with fabric.rank_zero_first(local=True):  # a dataset that downloads or caches does it once per machine
        dataset = build_dataset(config)
    with fabric.init_module():
        model = build_model(config, dataset)
    trainer = Trainer(fabric, config, model, metadata={"components": _components(config)})
    return trainer.fit(resume=resume)


def _resume_path(config: Config, resume: str | os.PathLike | bool | None) -> Path | None:
    last = Path(config.output_dir) / LAST
    if resume is None or resume is False:
        if last.exists():
            raise RunExistsError(
                f"{config.output_dir} already holds a run ({last}); continue it with --resume, or choose another "
                "output directory (--set output_dir=...)"
            )
        return None
    path = last if resume is True else Path(resume)
    if not path.is_file():
        raise CheckpointError(f"cannot resume: checkpoint not found: {path}")
    return path


# -- components ---------------------------------------------------------------------------
def _registries() -> Mapping[str, Registry]:
    from boxlib.plugins import host

    return host().registries


def _entry(config: Config, section: str, kind: str) -> Entry:
    name = getattr(config, section).name
    try:
        return _registries()[kind].get(name)
    except UnknownComponentError as exc:
        raise ConfigError(f"{section}.name: {exc}") from None


def check_components(config: Config) -> None:
    """Check that ``model.name`` and ``data.name`` are registered and that their factories
    take the keyword arguments the config gives them (before anything is built)."""
    for section, kind, given_by_trainer in (("data", "dataset", ()), ("model", "model", ("dataset",))):
        entry = _entry(config, section, kind)
        kwargs = getattr(config, section).kwargs
        for key in given_by_trainer:
            if key in kwargs:
                raise ConfigError(f"{section}.{key}: the trainer passes {key}= itself; remove it from the config")
        try:
            params = inspect.signature(entry.factory).parameters
        except (TypeError, ValueError):  # no signature to check against (some builtins)
            continue
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            continue
        accepted = [
            n
            for n, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in given_by_trainer
        ]
        for key in kwargs:
            if key not in accepted:
                close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else "."
                raise ConfigError(
                    f"unknown key '{section}.{key}': {kind} '{entry.name}' takes no argument '{key}'{hint} "
                    f"It takes: {', '.join(accepted) or 'nothing'}"
                )


def build_dataset(config: Config) -> Any:
    """``registries["dataset"].create(data.name, **data.kwargs)``; a missing file names its path."""
    entry = _entry(config, "data", "dataset")
    try:
        return entry.factory(**config.data.kwargs)
    except FileNotFoundError as exc:
        missing = exc.filename if exc.filename is not None else exc
        raise ConfigError(f"data: dataset '{entry.name}' cannot be loaded: file not found: {missing}") from None


def build_model(config: Config, dataset: Any) -> torch.nn.Module:
    """``registries["model"].create(model.name, dataset=dataset, **model.kwargs)``."""
    entry = _entry(config, "model", "model")
    try:
        inspect.signature(entry.factory).bind(dataset=dataset, **config.model.kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"model: '{entry.name}' cannot be built with dataset= and the model.* settings: {exc}"
        ) from None
    except ValueError:  # no signature to check against
        pass
    return entry.factory(dataset=dataset, **config.model.kwargs)


def _components(config: Config) -> dict[str, dict[str, Any]]:
    out = {}
    for section, kind in (("model", "model"), ("data", "dataset")):
        entry = _entry(config, section, kind)
        out[kind] = {"name": entry.name, "plugin": entry.plugin, "source": entry.source}
    return out
