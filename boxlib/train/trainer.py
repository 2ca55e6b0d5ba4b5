"""The training loop.

Fabric launches the processes, places the model, optimiser and batches on devices, wraps
the model for DDP, runs backward under the precision plugin, reduces across processes,
calls the callbacks and fans metrics out to the loggers. Everything else (what a step
is, when to validate, checkpoint or stop) is in :class:`Trainer`, top to bottom:
``fit`` → ``_loop`` → ``_train_batch`` → ``_after_batch`` → ``_log`` / ``_validate`` / ``_save``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import platform
import random
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning_fabric
import numpy as np
import torch
import yaml
from lightning_fabric import Fabric
from torch import nn
from torch.utils.data import DataLoader, default_collate

import boxlib
from boxlib.train.checkpoint import (
    CheckpointError,
    atomic_write,
    capture_rng,
    load_checkpoint,
    nonfinite_tensors,
    restore_rng,
    save_checkpoint,
)
from boxlib.train.config import Config, ConfigError
from boxlib.train.events import (
    ON_CHECKPOINT,
    ON_LOG,
    ON_TRAIN_BATCH_END,
    ON_TRAIN_END,
    ON_TRAIN_START,
    ON_VALIDATION_END,
)
from boxlib.train.optim import make_optimizer, make_scheduler
from boxlib.train.sampling import GlobalBatchSampler

__all__ = ["BEST", "LAST", "FitResult", "NonFiniteLossError", "TrainState", "Trainer", "versions"]

LAST = "last.ckpt"
BEST = "best.ckpt"


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN or infinite loss (or gradient norm); the message names the step."""


@dataclasses.dataclass
class TrainState:
    """Where training stands; saved in every checkpoint."""

    global_step: int = 0  # optimizer steps taken
    epoch: int = 0  # epoch of the last batch (from 0)
    batch_in_epoch: int = 0  # global batches of that epoch consumed, trained on or skipped
    best_score: float | None = None  # best value of validation.monitor so far
    best_step: int | None = None
    bad_validations: int = 0  # validations since the monitored metric last improved
    consecutive_skips: int = 0
    skipped_batches: int = 0


@dataclasses.dataclass  # not frozen: Fabric's spawn launcher rebuilds it when returning it from rank 0
class FitResult:
    status: str  # "finished" or "early stop"
    state: TrainState
    losses: list[tuple[int, float]]  # (step, loss over the global batch) for each step this run took
    metrics: dict[str, float]  # the last validation's metrics
    last_checkpoint: Path | None
    best_checkpoint: Path | None


def versions() -> dict[str, str]:
    return {
        "boxlib": boxlib.__version__,
        "torch": str(torch.__version__),  # a str subclass weights_only loading refuses
        "lightning_fabric": lightning_fabric.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


class _TrainingLoss(nn.Module):
    """Routes ``model.training_loss`` through ``forward``, so Fabric's wrappers (DDP's
    gradient hooks, autocast, input casting) apply to it on every strategy."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: Any) -> torch.Tensor:
        return self.model.training_loss(batch)


class Trainer:
    """Trains a model that follows the contract in :mod:`boxlib.train`.

    :param fabric: a launched :class:`~lightning_fabric.Fabric` (its loggers and callbacks
        are the trainer's).
    :param config: the validated run configuration.
    :param model: the model, built (under ``fabric.init_module()``) but not set up.
    :param metadata: extra plain data stored in every checkpoint.
    """

    def __init__(self, fabric: Fabric, config: Config, model: nn.Module, *, metadata: Mapping[str, Any] | None = None):
        _check_contract(model, config)
        self.fabric = fabric
        self.config = config
        self.model = model
        self.output_dir = Path(config.output_dir)
        self.metadata = dict(metadata or {})
        tc = config.trainer

        examples = model.training_examples()
        self.num_examples = len(examples)
        try:
            self.sampler = GlobalBatchSampler(
                self.num_examples,
                tc.batch_size,
                seed=config.seed,
                rank=fabric.global_rank,
                world_size=fabric.world_size,
            )
        except ValueError as exc:
            raise ConfigError(f"trainer.batch_size: {exc}") from None
        loader = DataLoader(
            examples,
            batch_sampler=self.sampler,
            collate_fn=getattr(model, "collate", default_collate),
            num_workers=tc.num_workers,
            generator=torch.Generator().manual_seed(config.seed),  # keeps the global RNG out of worker seeding
        )
        self.loader = fabric.setup_dataloaders(loader, use_distributed_sampler=False)
        limits = [tc.max_steps, None if tc.max_epochs is None else tc.max_epochs * len(self.sampler)]
        self.total_steps = min(n for n in limits if n is not None)  # the config requires one of them

        optimizer = make_optimizer(config.optimizer, model.parameters())
        self.scheduler = make_scheduler(config.scheduler, optimizer, self.total_steps)
        self.module, self.optimizer = fabric.setup(_TrainingLoss(model), optimizer)

        self.state = TrainState()
        self.should_stop = False
        self.status = "finished"
        self.losses: list[tuple[int, float]] = []
        self.metrics: dict[str, float] = {}
        self._validated_step: int | None = None
        self._window = _Window()
        # Same initial weights everywhere (seeded before the model was built); from here
        # on each process draws its own random numbers (dropout, negative sampling).
        _seed_process(int(np.random.SeedSequence([config.seed, fabric.global_rank]).generate_state(1)[0]))

    # -- the run ---------------------------------------------------------------------------
    def fit(self, resume: str | Path | None = None) -> FitResult:
        """Train until ``max_steps``/``max_epochs`` or early stopping; resume from a checkpoint path."""
        if resume is not None:
            self._restore(Path(resume))
        if self.fabric.is_global_zero:
            text = yaml.safe_dump(self.config.to_dict(), sort_keys=False)
            atomic_write(self.output_dir / "config.yaml", lambda f: f.write(text.encode()))
        self.module.train()
        self.fabric.call(ON_TRAIN_START, trainer=self)
        status = "failed"
        try:
            self._loop()
            status = self.status
        finally:
            self.fabric.call(ON_TRAIN_END, trainer=self, status=status)
            for logger in self.fabric.loggers:
                logger.finalize(status)
        last, best = self.output_dir / LAST, self.output_dir / BEST
        return FitResult(
            status=status,
            state=dataclasses.replace(self.state),
            losses=list(self.losses),
            metrics=dict(self.metrics),
            last_checkpoint=last if last.is_file() else None,
            best_checkpoint=best if best.is_file() else None,
        )

    def _finished(self) -> bool:
        tc, s = self.config.trainer, self.state
        epochs_done = s.epoch + (s.batch_in_epoch >= len(self.sampler))
        return (
            self.should_stop
            or (tc.max_steps is not None and s.global_step >= tc.max_steps)
            or (tc.max_epochs is not None and epochs_done >= tc.max_epochs)
        )

    def _loop(self) -> None:
        self._window.reset()
        while not self._finished():
            for batch in self.loader:  # the sampler resumes inside the epoch after a restore
                self._train_batch(batch)
                if self._finished():
                    break
            if self.state.batch_in_epoch >= len(self.sampler):
                self.state.epoch += 1
                self.state.batch_in_epoch = 0

    def _train_batch(self, batch: Any) -> None:
        tc = self.config.trainer
        loss = self.module(batch)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise TypeError(
                f"{type(self.model).__name__}.training_loss must return a scalar tensor (the mean over the batch), "
                f"got {shape}"
            )
        self.fabric.backward(loss)  # always, even for a NaN: DDP's gradient reduction must complete
        loss = float(self.fabric.all_reduce(loss.detach(), reduce_op="mean"))  # the global batch's mean
        grad_norm = None
        if tc.grad_clip is not None:
            grad_norm = float(self.fabric.clip_gradients(self.module, self.optimizer, max_norm=tc.grad_clip))
        self.state.batch_in_epoch += 1
        self._window.examples += tc.batch_size
        stepped = math.isfinite(loss) and (grad_norm is None or math.isfinite(grad_norm))
        if stepped:
            self._window.lr = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            self.scheduler.step()
            self.state.global_step += 1
            self.state.consecutive_skips = 0
            self.losses.append((self.state.global_step, loss))
            self._window.add(loss)
        self.optimizer.zero_grad(set_to_none=True)
        if not stepped:
            self._nonfinite(loss, grad_norm)
        self._after_batch(loss, stepped)

    def _nonfinite(self, loss: float, grad_norm: float | None) -> None:
        s = self.state
        what = f"loss ({loss})" if not math.isfinite(loss) else f"gradient norm ({grad_norm})"
        where = f"step {s.global_step + 1} (epoch {s.epoch}, batch {s.batch_in_epoch})"
        last = self.output_dir / LAST
        kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint had been written yet"
        if self.config.trainer.on_nonfinite == "stop":
            raise NonFiniteLossError(f"non-finite {what} at {where}; training stopped, {kept}")
        s.consecutive_skips += 1
        s.skipped_batches += 1
        limit = self.config.trainer.max_consecutive_skips
        if s.consecutive_skips > limit:
            raise NonFiniteLossError(
                f"non-finite {what} at {where}: {s.consecutive_skips} such batches in a row "
                f"(trainer.max_consecutive_skips is {limit}); training stopped, {kept}"
            )
        if self.fabric.is_global_zero:
            warnings.warn(f"skipping a batch with a non-finite {what} at {where}", RuntimeWarning, stacklevel=2)

    def _after_batch(self, loss: float, stepped: bool) -> None:
        tc, vc = self.config.trainer, self.config.validation
        step = self.state.global_step
        last = self._finished()
        if self._window.steps and (last or (stepped and step % tc.log_every_n_steps == 0)):
            self._log(step)
        due = stepped and vc.every_n_steps is not None and step % vc.every_n_steps == 0
        if vc.every_n_steps is not None and (due or last) and self._validated_step != step:
            self._validate()
        every = tc.checkpoint_every_n_steps
        if self._finished() or (stepped and every is not None and step % every == 0):
            self._save(LAST)
        self.fabric.call(ON_TRAIN_BATCH_END, trainer=self, step=step, loss=loss, skipped=not stepped)

    # -- logging and validation --------------------------------------------------------------
    def _log(self, step: int) -> None:
        window = self._window
        metrics = {
            "train/loss": window.loss_sum / window.steps,
            "train/lr": window.lr,
            "train/examples_per_s": window.examples / max(window.seconds(), 1e-9),
            "train/epoch": self.state.epoch,
        }
        self.fabric.log_dict(metrics, step=step)
        self.fabric.call(ON_LOG, trainer=self, step=step, metrics=metrics)
        window.reset()

    def _validate(self) -> None:
        vc = self.config.validation
        step = self._validated_step = self.state.global_step
        with self._window.paused():
            self.model.eval()
            try:
                with torch.no_grad(), self.fabric.autocast():
                    raw = self.model.evaluate(vc.split)
            finally:
                self.model.train()
            metrics = self.fabric.broadcast(_as_metrics(raw, self.model, vc.split), src=0)  # one decision everywhere
            self.fabric.log_dict({f"{vc.split}/{k}": v for k, v in metrics.items()}, step=step)
            self.metrics = metrics
            improved = self._track(metrics)
            self.fabric.call(
                ON_VALIDATION_END, trainer=self, step=step, split=vc.split, metrics=metrics, improved=improved
            )
            if improved:
                self._save(BEST)

    def _track(self, metrics: dict[str, float]) -> bool:
        """Update the best score and early stopping; True when the monitored metric improved."""
        vc, s = self.config.validation, self.state
        if vc.monitor is None:
            return False
        if vc.monitor not in metrics:
            raise ConfigError(
                f"validation.monitor is {vc.monitor!r}, but {type(self.model).__name__}.evaluate({vc.split!r}) "
                f"returned {', '.join(map(repr, metrics)) or 'no metrics'}"
            )
        score = metrics[vc.monitor]
        sign = 1.0 if vc.mode == "max" else -1.0
        if math.isfinite(score) and (s.best_score is None or sign * (score - s.best_score) > vc.min_delta):
            s.best_score, s.best_step, s.bad_validations = score, s.global_step, 0
            return True
        s.bad_validations += 1
        if vc.patience is not None and s.bad_validations >= vc.patience:
            self.should_stop = True
            self.status = "early stop"
        return False

    # -- checkpoints -----------------------------------------------------------------------
    def _save(self, name: str) -> None:
        """Write ``name`` in the output directory (collective: call on every process)."""
        path = self.output_dir / name
        with self._window.paused():
            state = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "trainer": dataclasses.asdict(self.state),
                "sampler": self.sampler.state_dict(),
                "rng": _gather(self.fabric, capture_rng()),  # one entry per process, by rank
                "config": self.config.to_dict(),
                "versions": versions(),
                **self.metadata,
            }
            bad = nonfinite_tensors(state["model"])
            if bad:
                raise NonFiniteLossError(
                    f"not writing {path}: model tensors {', '.join(bad[:5])} hold NaN or infinite values at step "
                    f"{self.state.global_step}; the previous checkpoint is left as it was"
                )
            error = None
            if self.fabric.is_global_zero:
                try:
                    save_checkpoint(state, path)
                    for logger in self.fabric.loggers:  # keep the metrics file in step with the checkpoint
                        logger.save()
                except (CheckpointError, TypeError) as exc:
                    error = str(exc)
            error = self.fabric.broadcast(error, src=0)  # every process fails together
            if error is not None:
                raise CheckpointError(error)
        self.fabric.call(ON_CHECKPOINT, trainer=self, step=self.state.global_step, path=path)

    def _restore(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.state = TrainState(**ckpt["trainer"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path} does not fit this model and configuration: {exc}") from exc
        self.sampler.load_state_dict(ckpt["sampler"], batches_done=self.state.batch_in_epoch)
        if self.fabric.is_global_zero:
            changed = _changes(ckpt["config"], self.config.to_dict())
            if changed:
                warnings.warn(f"resuming {path} with changed settings: {'; '.join(changed)}", UserWarning, stacklevel=2)
        ranks = ckpt["rng"]
        if len(ranks) == self.fabric.world_size:
            restore_rng(ranks[self.fabric.global_rank])
        else:  # the random streams cannot continue exactly; reseed them per process and step
            if self.fabric.is_global_zero:
                warnings.warn(
                    f"{path} was written by {len(ranks)} processes and is resumed by {self.fabric.world_size}: "
                    "the data order continues exactly, the random streams (dropout, sampling) do not",
                    UserWarning,
                    stacklevel=2,
                )
            seq = np.random.SeedSequence([self.config.seed, self.fabric.global_rank, self.state.global_step])
            _seed_process(int(seq.generate_state(1)[0]))


# -- helpers ------------------------------------------------------------------------------
class _Window:
    """Loss and throughput since the last log line (time spent validating or saving excluded)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.loss_sum, self.steps, self.examples, self.lr = 0.0, 0, 0, float("nan")
        self._start, self._excluded = time.perf_counter(), 0.0

    def add(self, loss: float) -> None:
        self.loss_sum += loss
        self.steps += 1

    def seconds(self) -> float:
        return time.perf_counter() - self._start - self._excluded

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._excluded += time.perf_counter() - t0


def _check_contract(model: Any, config: Config) -> None:
    name = type(model).__name__
    if not isinstance(model, nn.Module):
        raise TypeError(f"model '{config.model.name}' built a {name}, not a torch.nn.Module")
    missing = [m for m in ("training_examples", "training_loss") if not callable(getattr(model, m, None))]
    if missing:
        raise TypeError(
            f"{name} cannot be trained: it has no {' or '.join(missing)} (see boxlib.train's model contract)"
        )
    if config.validation.every_n_steps is not None and not callable(getattr(model, "evaluate", None)):
        raise ConfigError(f"validation.every_n_steps is set, but {name} has no evaluate(split) method to validate with")


def _as_metrics(raw: Any, model: nn.Module, split: str) -> dict[str, float]:
    where = f"{type(model).__name__}.evaluate({split!r})"
    if not isinstance(raw, Mapping):
        raise TypeError(f"{where} must return a dict of metric name to number, got {type(raw).__name__}")
    try:
        return {str(k): float(v) for k, v in raw.items()}
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where} returned a value that is not a number: {exc}") from None


def _gather(fabric: Fabric, obj: Any) -> list[Any]:
    """``obj`` from every process, in rank order."""
    if fabric.world_size == 1:
        return [obj]
    out: list[Any] = [None] * fabric.world_size
    torch.distributed.all_gather_object(out, obj)
    return out


def _seed_process(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key: old → new`` for every leaf that differs between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            out += _changes(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} → {new!r}"]
