"""The batch order: one global shuffle per epoch, each process taking its contiguous share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["GlobalBatchSampler"]


class GlobalBatchSampler:
    """Batch sampler (for ``DataLoader(batch_sampler=...)``) that makes W processes equal one.

    Every process holds an identically seeded generator and draws the same permutation of
    ``range(num_examples)`` per epoch, cuts it into global batches of ``batch_size`` (an
    incomplete last batch is dropped, so every step sees exactly ``batch_size`` examples),
    and yields positions ``[rank * b, (rank + 1) * b)`` of each, ``b = batch_size // world_size``.
    With a loss that is a mean over its batch and DDP averaging gradients over processes,
    W processes compute the gradient one process computes on the whole global batch.

    Resuming: :meth:`state_dict` is the generator state at the start of the current epoch;
    :meth:`load_state_dict` restores it and skips the batches already trained on, so the
    next iteration continues the same permutation.
    """

    def __init__(self, num_examples: int, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(
                f"the global batch size {batch_size} does not split evenly over {world_size} processes; "
                f"use a multiple of {world_size}"
            )
        if num_examples < batch_size:
            raise ValueError(f"the batch size {batch_size} is larger than the {num_examples} training examples")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.per_rank = batch_size // world_size
        self._generator = torch.Generator().manual_seed(seed)
        self._epoch_start = self._generator.get_state()
        self._skip = 0

    def __len__(self) -> int:
        """Global batches per epoch."""
        return self.num_examples // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        self._epoch_start = self._generator.get_state()
        order = torch.randperm(self.num_examples, generator=self._generator)
        skip, self._skip = self._skip, 0
        for b in range(skip, len(self)):
            start = b * self.batch_size + self.rank * self.per_rank
            yield order[start : start + self.per_rank].tolist()

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self._epoch_start.clone()}

    def load_state_dict(self, state: dict[str, Any], *, batches_done: int) -> None:
        """Continue the epoch that started at ``state`` after ``batches_done`` global batches."""
        self._generator.set_state(state["generator"])
        self._epoch_start = self._generator.get_state()
        self._skip = batches_done
