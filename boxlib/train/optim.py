"""Optimisers and learning-rate schedules from their config sections."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from boxlib.train.config import OptimizerConfig, SchedulerConfig

__all__ = ["lr_factor", "make_optimizer", "make_scheduler"]


def make_optimizer(cfg: OptimizerConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
    raise AssertionError(f"unhandled optimizer {cfg.name!r}")  # the config validated the name


def lr_factor(cfg: SchedulerConfig, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate for the optimizer step after ``step`` steps.

    A linear warm-up over ``warmup_steps`` multiplies any schedule; ``cosine`` then decays
    from 1 to ``min_lr_ratio`` over the remaining steps, ``step`` multiplies by ``gamma``
    every ``step_size`` steps.
    """
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
    if cfg.name == "none":
        return warm
    if cfg.name == "cosine":
        progress = min(1.0, max(0, step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
        return warm * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))
    if cfg.name == "step":
        return warm * cfg.gamma ** (step // cfg.step_size)
    raise AssertionError(f"unhandled scheduler {cfg.name!r}")


def make_scheduler(
    cfg: SchedulerConfig, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` over :func:`lr_factor`: a pure function of the step, so resuming it
    needs only the step count its ``state_dict`` holds."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step, total_steps))
