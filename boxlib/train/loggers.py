"""Metric loggers: a resumable CSV table, and TensorBoard when it is installed."""

from __future__ import annotations

import csv
import importlib.util
import os
from pathlib import Path
from typing import Any

from lightning_fabric.loggers import Logger
from lightning_fabric.utilities.rank_zero import rank_zero_only

__all__ = ["CSVLogger", "tensorboard_available"]


def tensorboard_available() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))


class CSVLogger(Logger):
    """Metrics as one CSV table: a row per ``log_metrics`` call, a ``step`` column, then a
    column per metric in order of first appearance (blank where a row lacks it).

    Rows are buffered and written by :meth:`save` (the trainer saves with every checkpoint
    and when training ends). The logger is also a trainer callback: at ``on_train_start``
    it drops rows of steps after the one training starts from, so a resumed run continues
    the table without duplicates (rows logged after the last checkpoint of an interrupted
    run are replaced) and a fresh run starts a new table. Writes happen on rank 0 only.
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self._columns: list[str] = ["step"]
        self._pending: list[dict[str, Any]] = []
        self._header_on_disk: list[str] | None = None

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> None:
        return None

    @property
    def root_dir(self) -> str:
        return str(self.path.parent)

    @property
    def log_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def on_train_start(self, trainer: Any) -> None:
        start = trainer.state.global_step
        kept = [row for row in self._read() if int(float(row["step"])) <= start] if start else []
        self._pending = []
        self._columns = ["step"]
        self._rewrite(kept)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row = {"step": step, **metrics}
        self._add_columns(row)
        self._pending.append(row)

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Not stored here: the trainer writes the resolved config to ``config.yaml``."""

    @rank_zero_only
    def save(self) -> None:
        if not self._pending:
            return
        if self._header_on_disk == self._columns:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, self._columns).writerows(self._pending)
        else:  # new columns: rewrite with the wider header
            self._rewrite([*self._read(), *self._pending])
        self._pending = []

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()

    # -- helpers ---------------------------------------------------------------------------
    def _add_columns(self, row: dict[str, Any]) -> None:
        self._columns += [k for k in row if k not in self._columns]

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._add_columns(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, self._columns)
            writer.writeheader()
            writer.writerows(rows)
        self._header_on_disk = list(self._columns)
