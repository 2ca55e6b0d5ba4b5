"""Trainer events: the method names a callback may define.

Callbacks are plain objects passed as ``train(..., callbacks=[...])``; the trainer fires
each event through ``fabric.call(EVENT, **kwargs)``, which runs a callback's method of
that name if it has one and passes only the keyword arguments the method accepts.
Every event receives ``trainer``; the others are listed per event.
"""

from __future__ import annotations

__all__ = [
    "EVENTS",
    "ON_CHECKPOINT",
    "ON_LOG",
    "ON_TRAIN_BATCH_END",
    "ON_TRAIN_END",
    "ON_TRAIN_START",
    "ON_VALIDATION_END",
]

#: After setup (and after restoring a checkpoint), before the first batch.
ON_TRAIN_START = "on_train_start"
#: After each batch: ``step`` (optimizer steps so far), ``loss`` (mean over all
#: processes), ``skipped`` (True when a non-finite loss was skipped). Fired after any
#: validation and checkpoint of that step.
ON_TRAIN_BATCH_END = "on_train_batch_end"
#: Every ``trainer.log_every_n_steps``: ``step``, ``metrics`` (what went to the loggers).
ON_LOG = "on_log"
#: After ``model.evaluate``: ``step``, ``split``, ``metrics``, ``improved``.
ON_VALIDATION_END = "on_validation_end"
#: After a checkpoint file was written: ``step``, ``path``.
ON_CHECKPOINT = "on_checkpoint"
#: When training ends for any reason: ``status`` ("finished", "early stop" or "failed").
ON_TRAIN_END = "on_train_end"

EVENTS = frozenset({ON_TRAIN_START, ON_TRAIN_BATCH_END, ON_LOG, ON_VALIDATION_END, ON_CHECKPOINT, ON_TRAIN_END})
