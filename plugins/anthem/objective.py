"""Training objective shared by every model here: softmax ranking cross-entropy.

For each query, one positive (drawn uniformly from its relevant items) competes with
``k`` negatives drawn uniformly from the items that are *not* relevant, and optionally
with the other queries' positives in the batch (in-batch negatives; a candidate that is
relevant to the query is masked out rather than counted as a negative).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from boxlib.data import QueryExample

__all__ = ["sample_candidates", "softmax_ranking_loss"]


def sample_candidates(
    examples: Sequence[QueryExample], n_items: int, negatives: int, generator: torch.Generator | None = None
) -> Tensor:
    """``[B, 1 + negatives]`` item ids: the positive first, then negatives.

    Negatives are drawn with replacement and redrawn while relevant (a query relevant to
    nearly every item raises an error instead of looping forever). ``generator=None``
    draws from torch's global generator, which the trainer seeds and checkpoints.
    """
    rows = []
    for ex in examples:
        relevant = list(ex.relevant)
        if not relevant:
            raise ValueError(f"query '{ex.text}' has no relevant item to train on")
        if len(relevant) >= n_items:
            raise ValueError(f"query '{ex.text}' is relevant to every item: no negative exists")
        pos = relevant[int(torch.randint(len(relevant), (1,), generator=generator))]
        negs = torch.randint(n_items, (negatives,), generator=generator).tolist()
        for i, neg in enumerate(negs):
            tries = 0
            while neg in ex.relevant:
                neg = int(torch.randint(n_items, (1,), generator=generator))
                tries += 1
                if tries > 1000:
                    raise ValueError(f"could not sample a negative for query '{ex.text}'")
            negs[i] = neg
        rows.append([pos, *negs])
    return torch.tensor(rows, dtype=torch.long)


def softmax_ranking_loss(scores: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean cross-entropy of the positive (column 0) against the other columns.

    :param scores: ``[B, M]`` scores, higher is better.
    :param valid: optional ``[B, M]`` mask; invalid candidates are excluded.
    """
    if valid is not None:
        scores = scores.masked_fill(~valid, float("-inf"))
    target = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores, target)


def in_batch_candidates(examples: Sequence[QueryExample], candidates: Tensor) -> tuple[Tensor, Tensor]:
    """Append every query's positive to every row; mask those relevant to the row's query
    (its own positive stays in column 0 only)."""
    positives = candidates[:, 0]
    b = len(examples)
    extra = positives.expand(b, b)
    valid_extra = torch.tensor(
        [[j != i and int(positives[j]) not in examples[i].relevant for j in range(b)] for i in range(b)],
        dtype=torch.bool,
    )
    full = torch.cat([candidates, extra], 1)
    valid = torch.cat([torch.ones_like(candidates, dtype=torch.bool), valid_extra], 1)
    return full, valid
