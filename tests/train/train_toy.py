"""A toy model and dataset for the trainer's tests: a small MLP classifying random points.

``ToyPlugin`` registers them (``boxlib.register(ToyPlugin(), name=...)``) as model
``toy_scorer`` and dataset ``toy_points``.
"""

from __future__ import annotations

import dataclasses
import json

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from boxlib.hookspecs import hookimpl


@dataclasses.dataclass
class ToyPoints:
    x: torch.Tensor
    y: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor


def toy_points(n: int = 40, dim: int = 4, seed: int = 0, path: str | None = None) -> ToyPoints:
    """Labels from a random hyperplane; ``path`` (optional) is a JSON file with ``{"n": ...}``."""
    if path is not None:
        with open(path) as f:
            n = json.load(f)["n"]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 16, dim, generator=g)
    y = (x @ torch.randn(dim, generator=g) > 0).float()
    return ToyPoints(x[:n], y[:n], x[n:], y[n:])


class ToyScorer(nn.Module):
    """MLP with optional dropout (draws from the global RNG, so resume must restore it).

    :param nan_at: training_loss calls (from 1) whose loss is made NaN.
    :param eval_scores: successive values of the ``score`` metric evaluate returns.
    """

    def __init__(self, dataset: ToyPoints, hidden: int = 8, dropout: float = 0.0, nan_at=(), eval_scores=()):
        super().__init__()
        self.data = dataset
        dim = dataset.x.shape[1]
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, 1))
        self.nan_at = set(nan_at)
        self.eval_scores = list(eval_scores)
        self.calls = 0
        self.evaluations = 0

    def training_examples(self):
        return TensorDataset(self.data.x, self.data.y)

    def training_loss(self, batch):
        x, y = batch
        self.calls += 1
        loss = F.binary_cross_entropy_with_logits(self.net(x).squeeze(-1), y)
        return loss * float("nan") if self.calls in self.nan_at else loss

    def evaluate(self, split: str) -> dict[str, float]:
        assert split == "valid"
        weight = self.net[0].weight
        logits = self.net(self.data.x_valid.to(weight)).squeeze(-1)
        metrics = {"accuracy": float(((logits > 0).float() == self.data.y_valid.to(weight)).float().mean())}
        if self.eval_scores:
            metrics["score"] = self.eval_scores[min(self.evaluations, len(self.eval_scores) - 1)]
        self.evaluations += 1
        return metrics


class ToyPlugin:
    @hookimpl
    def boxlib_add_models(self, registry):
        registry.add(ToyScorer, name="toy_scorer")

    @hookimpl
    def boxlib_add_datasets(self, registry):
        registry.add(toy_points, name="toy_points")
