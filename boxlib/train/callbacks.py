"""Bundled trainer callbacks (see :mod:`boxlib.train.events` for the events)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """Training progress on stderr, from rank 0 only.

    One status line (step, epoch, loss, learning rate, examples/s, time left) refreshed at
    every log interval, rewritten in place on a terminal and printed as a new line
    otherwise (CI logs, files); one line per validation; a summary at the end.
    """

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self._live = False  # a status line is on screen without its newline
        self._started = 0.0
        self._first_step = 0

    def _print(self, text: str, *, status: bool = False) -> None:
        tty = getattr(self.stream, "isatty", lambda: False)()
        if status and tty:
            self.stream.write("\r\033[K" + text)
            self._live = True
        else:
            self.stream.write(("\n" if self._live else "") + text + "\n")
            self._live = False
        self.stream.flush()

    def on_train_start(self, trainer: Any) -> None:
        if not trainer.fabric.is_global_zero:
            return
        self._started = time.perf_counter()
        self._first_step = trainer.state.global_step
        model = trainer.model
        n_params = sum(p.numel() for p in model.parameters())
        fabric = trainer.fabric
        resumed = f", resuming at step {trainer.state.global_step}" if trainer.state.global_step else ""
        self._print(
            f"training {type(model).__name__} ({n_params:,} parameters) on {trainer.num_examples:,} examples: "
            f"{fabric.device.type} x{fabric.world_size}, {trainer.config.trainer.precision}, "
            f"{trainer.total_steps:,} steps of {trainer.config.trainer.batch_size} examples{resumed}; "
            f"output in {trainer.output_dir}"
        )

    def on_log(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        if not trainer.fabric.is_global_zero:
            return
        total = trainer.total_steps
        done = step - self._first_step
        elapsed = time.perf_counter() - self._started
        eta = elapsed / done * (total - step) if done > 0 else float("nan")
        self._print(
            f"step {step}/{total} ({100 * step / max(1, total):.0f}%) epoch {trainer.state.epoch} "
            f"| loss {metrics['train/loss']:.4g} | lr {metrics['train/lr']:.3g} "
            f"| {metrics['train/examples_per_s']:,.0f} ex/s | {_duration(elapsed)} elapsed, {_duration(eta)} left",
            status=True,
        )

    def on_validation_end(self, trainer: Any, step: int, split: str, metrics: dict[str, float], improved: bool) -> None:
        if not trainer.fabric.is_global_zero:
            return
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        self._print(f"{split} at step {step}: {shown}{' (best so far)' if improved else ''}")

    def on_train_end(self, trainer: Any, status: str) -> None:
        if not trainer.fabric.is_global_zero:
            return
        state = trainer.state
        best = ""
        if state.best_score is not None:
            best = f"; best {trainer.config.validation.monitor} {state.best_score:.4g} at step {state.best_step}"
        skipped = f"; {state.skipped_batches} batches skipped (non-finite)" if state.skipped_batches else ""
        elapsed = _duration(time.perf_counter() - self._started)
        self._print(f"{status} at step {state.global_step} after {elapsed}{best}{skipped}")


def _duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
