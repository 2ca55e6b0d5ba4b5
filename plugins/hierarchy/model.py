"""The ``hierarchy`` model: a point and a region per node, on any registered geometry.

Every node ``u`` has a point ``p(u) = expmap0(θ_u)`` and a region ``R(u) = (center,
softplus(ρ_u))`` whose center is a separate point ``expmap0(γ_u)`` (``center="separate"``,
the default) or ``p(u)`` itself (``center="point"``, fewer parameters; on the mammals it
reconstructs a little worse, MAP 0.984 against 0.997 after 100 epochs). "``u`` is-a ``v``"
is scored

* ``score="box"``: ``s(u, v) = -distance_to_region(R(v), p(u))`` (outside distance plus
  ``alpha`` times inside distance, the Query2Box form of :class:`boxlib.geometry.Geometry`),
  asymmetric: ``u`` lies in the boxes of its ancestors, not they in its box;
* ``score="point"``: ``s(u, v) = -d(p(u), p(v))``, Nickel & Kiela's (2017) symmetric
  distance model; with the Poincaré geometry it is their Poincaré embedding and with the
  Euclidean one their Euclidean baseline.

Training minimises Nickel & Kiela's loss: for each observed pair ``(u, v)`` of the closure,
the softmax cross-entropy of ``v`` against ``negatives`` nodes ``v'`` drawn uniformly with
``(u, v')`` not in the closure and ``v' != u``. Parameters live in the tangent space at the
origin and are trained with the trainer's (Euclidean) optimiser through ``expmap0``.
Evaluation is the reconstruction protocol of :mod:`.evaluate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from boxlib_plugins.anthem.objective import softmax_ranking_loss
from torch import Tensor, nn

import boxlib
from boxlib.geometry import Region

from .data import HierarchyDataset
from .evaluate import Reconstruction, reconstruction, sample_sources

__all__ = ["HierarchyModel"]

#: Split names :meth:`HierarchyModel.evaluate` accepts: reconstruction ranks the training closure.
SPLITS = ("reconstruction", "train")
#: Numbers in one ``[rows, columns, dim]`` temporary while scoring rows against every node: small
#: enough for the geometry's elementwise chain to stay in cache (as ``boxlib.query.execute``'s
#: ``CHUNK_ELEMENTS``; measured fastest of 2**16 .. 2**22 for every built-in geometry).
SCORE_BLOCK_ELEMENTS = 1 << 18


class _Pairs(Sequence):
    """The closure's pairs as training examples; a batch is fetched as one ``[B, 2]`` tensor."""

    def __init__(self, edges: Tensor):
        self.edges = edges

    def __len__(self) -> int:
        return int(self.edges.shape[0])

    def __getitem__(self, index):
        return self.edges[index]

    def __getitems__(self, indices: list[int]) -> Tensor:  # DataLoader's batched fetch
        return self.edges[torch.as_tensor(indices, dtype=torch.int64)]


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class HierarchyModel(nn.Module):
    """Is-a reconstruction with a point and a region per node, on any registered geometry.

    :param dataset: a :class:`~boxlib_plugins.hierarchy.data.HierarchyDataset` (the trainer
        passes the configured dataset).
    :param geometry: registry name of the geometry.
    :param geometry_kwargs: constructor arguments of the geometry (e.g. ``{"c": 1.0}``).
    :param dim: intrinsic dimension (Nickel & Kiela's Table 1 uses 5, 10, 20, 50, 100, 200).
    :param score: ``"box"`` (region containment) or ``"point"`` (negative point distance).
    :param center: ``"separate"`` (a region has its own center) or ``"point"`` (centred on
        its node's point).
    :param alpha: weight of the inside distance in ``distance_to_region`` (box score).
    :param negatives: negatives per observed pair (Nickel & Kiela: 10).
    :param init_scale: tangent parameters start uniform in ``[-init_scale, init_scale]``
        (Nickel & Kiela: 1e-3).
    :param offset_init: initial half-width of every region on every axis.
    :param eval_sources: evaluate on this many source nodes drawn once with ``eval_seed``
        (Nickel & Kiela's ``reconstruction.py -sample``); ``None`` evaluates all of them.
    """

    name = "hierarchy"
    boxlib_kind = "model"

    def __init__(
        self,
        dataset: HierarchyDataset,
        *,
        geometry: str = "poincare",
        geometry_kwargs: dict[str, Any] | None = None,
        dim: int = 10,
        score: str = "box",
        center: str = "separate",
        alpha: float = 0.2,
        negatives: int = 10,
        init_scale: float = 1e-3,
        offset_init: float = 1e-2,
        eval_sources: int | None = None,
        eval_seed: int = 0,
    ):
        super().__init__()
        if not isinstance(dataset, HierarchyDataset):
            raise TypeError(
                f"the hierarchy model needs a HierarchyDataset (e.g. data: {{name: wordnet_mammals}}), "
                f"got {type(dataset).__name__}"
            )
        if score not in ("box", "point"):
            raise ValueError(f"score must be 'box' (region containment) or 'point' (point distance), got {score!r}")
        if center not in ("point", "separate"):
            raise ValueError(f"center must be 'point' or 'separate', got {center!r}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha weighs the inside distance and must lie in [0, 1], got {alpha}")
        if negatives < 1:
            raise ValueError(f"negatives must be at least 1, got {negatives}")
        if eval_sources is not None and eval_sources < 1:
            raise ValueError(f"eval_sources must be a positive number of sources or null (all), got {eval_sources}")
        if init_scale <= 0 or offset_init <= 0:
            raise ValueError(f"init_scale and offset_init must be positive, got {init_scale} and {offset_init}")
        most = int((dataset.indptr[1:] - dataset.indptr[:-1]).max()) if dataset.n_edges else 0
        if dataset.n_edges == 0 or most + 2 > dataset.n_nodes:
            raise ValueError(
                f"{dataset.name}: every source needs a non-ancestor other than itself to sample negatives from "
                f"({dataset.n_nodes} nodes, up to {most} ancestors per node)"
            )
        self.dataset = dataset
        self.score = score
        self.center = center
        self.alpha = float(alpha)
        self.negatives = int(negatives)
        self.eval_sources = eval_sources
        self.eval_seed = eval_seed
        self.geometry = boxlib.get_geometry(geometry, dim, **(geometry_kwargs or {}))
        n = dataset.n_nodes
        self.point = nn.Parameter(torch.empty(n, dim).uniform_(-init_scale, init_scale))
        if score == "box":
            if center == "separate":
                self.center_point = nn.Parameter(torch.empty(n, dim).uniform_(-init_scale, init_scale))
            self.offset = nn.Parameter(torch.full((n, dim), _inverse_softplus(offset_init)))
        self._eval_ids: Tensor | None = None

    # -- embeddings ---------------------------------------------------------------------------
    def points(self, ids: Tensor | None = None) -> Tensor:
        """``p(u)`` on the manifold, ``[..., ambient_dim]`` (every node when ``ids`` is None)."""
        theta = self.point if ids is None else self.point[ids]
        return self.geometry.expmap0(theta)

    def regions(self, ids: Tensor | None = None) -> Region:
        """``R(u)`` (box score only)."""
        if self.score != "box":
            raise RuntimeError("regions exist only with score='box'; this model scores point distances")
        offset = F.softplus(self.offset if ids is None else self.offset[ids])
        if self.center == "separate":
            center = self.geometry.expmap0(self.center_point if ids is None else self.center_point[ids])
        else:
            center = self.points(ids)
        return Region._trusted(center, offset)

    def scores(self, u: Tensor, v: Tensor) -> Tensor:
        """``s(u, v)``, broadcasting id tensors (e.g. ``u [B, 1]`` against ``v [B, M]``); each
        embedding is computed once per id given, before broadcasting."""
        if self.score == "box":
            return -self.geometry.distance_to_region(self.regions(v), self.points(u), self.alpha)
        return -self.geometry.distance(self.points(u), self.points(v))

    def score_rows(self, u: Tensor, targets: Region | Tensor | None = None) -> Tensor:
        """``[b, n_nodes]``: ``s(u, v)`` of each ``u`` against every node, in blocks of columns.

        :param targets: every node's region (box score) or point, when the caller computed
            them once for many calls (default: computed here).
        """
        targets = self._all_targets() if targets is None else targets
        points = self.points(u.to(self.point.device))[:, None]
        width = max(1, SCORE_BLOCK_ELEMENTS // max(1, len(u) * self.geometry.dim))
        out = []
        for j in range(0, self.dataset.n_nodes, width):
            block = targets[None, j : j + width]
            if self.score == "box":
                out.append(-self.geometry.distance_to_region(block, points, self.alpha))
            else:
                out.append(-self.geometry.distance(points, block))
        return torch.cat(out, dim=1)

    def _all_targets(self):
        return self.regions() if self.score == "box" else self.points()

    # -- the trainer contract ---------------------------------------------------------------
    def training_examples(self) -> Sequence[Tensor]:
        return _Pairs(self.dataset.edges)

    def collate(self, examples: Tensor | list[Tensor]) -> dict[str, Tensor]:
        """Pairs ``[B, 2]`` and ``negatives`` non-ancestors per pair ``[B, k]`` (global RNG)."""
        pairs = examples if isinstance(examples, Tensor) else torch.stack(list(examples))
        u = pairs[:, :1]
        n = self.dataset.n_nodes
        negatives = torch.randint(n, (len(pairs), self.negatives))
        bad = self.dataset.is_pair(u, negatives) | (negatives == u)
        for _ in range(1000):
            rows, cols = torch.nonzero(bad, as_tuple=True)
            if not len(rows):
                break
            redraw = torch.randint(n, (len(rows),))
            negatives[rows, cols] = redraw
            bad[rows, cols] = self.dataset.is_pair(pairs[rows, 0], redraw) | (redraw == pairs[rows, 0])
        else:  # pragma: no cover - the constructor checks that every node has non-ancestors
            raise RuntimeError("could not sample negatives: some node is an ancestor-or-self of almost every node")
        return {"pairs": pairs, "negatives": negatives}

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        pairs, negatives = batch["pairs"], batch["negatives"]
        candidates = torch.cat([pairs[:, 1:], negatives], dim=1)
        return softmax_ranking_loss(self.scores(pairs[:, :1], candidates))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.training_loss(batch)

    def evaluate(self, split: str = "reconstruction") -> dict[str, float]:
        """``{"mean_rank", "map"}`` of reconstructing the closure (``eval_sources`` of its sources)."""
        if split not in SPLITS:
            raise KeyError(
                f"the hierarchy model evaluates reconstruction of the training closure: split must be one of "
                f"{', '.join(map(repr, SPLITS))}, got {split!r} (set validation.split: reconstruction)"
            )
        if self._eval_ids is None:
            self._eval_ids = sample_sources(self.dataset, self.eval_sources, self.eval_seed)
        return self.reconstruct(self._eval_ids).metrics()

    def reconstruct(self, sources: Tensor | None = None, progress=None) -> Reconstruction:
        """The full :class:`~.evaluate.Reconstruction` result (all sources by default)."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                targets = self._all_targets()
                return reconstruction(
                    lambda u: self.score_rows(u, targets), self.dataset, sources=sources, progress=progress
                )
        finally:
            self.train(was_training)
