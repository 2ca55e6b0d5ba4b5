"""ANTHEM: attentive region embeddings of queries, points for items, on any geometry.

After Choudhary et al., "ANTHEM: Attentive Hyperbolic Entity Model for Product Search"
(WSDM 2022). A query is a region (center + offset), an item a point, and relevance is
``-distance_to_region``. The geometry is a constructor argument, so E-, P- and L-ANTHEM
(and any registered third-party geometry) are the same model.

Query encoder, for the tokens ``t_1..t_T`` of a text (character trigrams by default):

1. every token embeds to a region: a center in canonical coordinates at the origin and
   an offset ``softplus(·)``;
2. the **pairwise intersection layer** builds one region per token pair ``i < j``: its
   center is the attention-weighted mean of the two centers in the tangent space at the
   origin (a first-order Fréchet mean), its offset the gated minimum
   ``min(o_i, o_j) * sigmoid(gate(·))``;
3. **attention** over the ``T`` token regions and the ``T (T-1) / 2`` pair regions gives
   the query's region (weighted tangent mean of centers, weighted mean of offsets);
   ``expmap0`` puts the center on the manifold.

The pair layer is quadratic in tokens. Up to ``pair_window + 1`` tokens every pair is
formed; beyond that a token pairs with the next ``pair_window`` tokens only (a band, so the
cost grows linearly), and texts are cut at ``max_query_tokens``. A query's pairs never
depend on the other queries of its batch (padding adds no pair to a short query).

Item encoder: the title's tokens embed to canonical vectors, pass one layer of
multi-head **self-attention** (with a residual connection and layer norm), are
mean-pooled over the mask and mapped to the manifold by ``expmap0``.

Boolean queries: the model is a :class:`~boxlib.query.QueryEmbedder` — each term of a
query is a text encoded as above, and the :class:`~boxlib.query.QueryExecutor` composes
them (exact intersection where the geometry has one, else this model's learned
``intersect``, the same gated-minimum attention over operands; unions are minima over
DNF branches).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import boxlib
from boxlib.data import RetrievalDataset
from boxlib.geometry import Region
from boxlib.query import Query, QueryExecutor, parse

from .layers import AttentionIntersection, masked_mean
from .task import RankingTask, resolve_items
from .tokenize import Tokenizer

__all__ = ["AnthemModel"]


def pair_indices(t: int, window: int | None, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Token pairs ``(i, j)``, ``i < j < t``, with ``j - i <= window`` (every pair when
    ``window`` is None): ``t (t - 1) / 2`` pairs up to ``t = window + 1``, then fewer than
    ``window · t``."""
    i, j = torch.triu_indices(t, t, offset=1, device=device)
    if window is not None and t > window + 1:
        keep = (j - i) <= window
        i, j = i[keep], j[keep]
    return i, j


def _masked_softmax(scores: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=dim).nan_to_num(0.0)


class AnthemModel(RankingTask, nn.Module):
    """ANTHEM on a registered geometry.

    :param items: item titles; item ``i`` is ``items[i]`` (or give ``dataset``).
    :param dataset: a :class:`~boxlib.data.RetrievalDataset` to train and evaluate on;
        its item titles are the items.
    :param negatives: sampled negatives per training query.
    :param in_batch_negatives: also use the other queries' positives as negatives.
    :param geometry: registry name of the geometry (``euclidean``, ``poincare``, ``lorentz``, …).
    :param geometry_kwargs: constructor arguments of the geometry (e.g. ``{"c": 1.0}``).
    :param dim: intrinsic dimension of the embedding.
    :param vocab_size: hash buckets of the tokenizer.
    :param tokenizer: ``"trigram"`` or ``"word"``.
    :param max_query_tokens: cap on query tokens (a text is cut after this many).
    :param pair_window: the pair layer pairs token ``i`` with tokens ``i+1 .. i+pair_window``
        (every pair for texts of up to ``pair_window + 1`` tokens; ``None``: every pair,
        quadratic in tokens). See ``benchmarks/perf_scaling.py`` for the cost.
    :param max_title_tokens: cap on title tokens.
    :param alpha: weight of the inside distance in ``distance_to_region``.
    :param heads: attention heads of the item encoder (must divide ``dim``).
    :param init_radius: scale of the initial token centers in canonical coordinates.
    """

    name = "anthem"
    boxlib_kind = "model"

    def __init__(
        self,
        items: Sequence[str] | None = None,
        *,
        dataset: RetrievalDataset | None = None,
        negatives: int = 4,
        in_batch_negatives: bool = False,
        geometry: str = "poincare",
        geometry_kwargs: dict | None = None,
        dim: int = 32,
        vocab_size: int = 1 << 15,
        tokenizer: str = "trigram",
        max_query_tokens: int = 64,
        pair_window: int | None = 15,
        max_title_tokens: int = 48,
        alpha: float = 0.2,
        heads: int = 2,
        init_radius: float = 0.1,
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        items = resolve_items(type(self).__name__, items, dataset)
        self._setup_task(dataset, negatives, in_batch_negatives)
        self.geometry = boxlib.get_geometry(geometry, dim, **(geometry_kwargs or {}))
        self.tokenizer = Tokenizer(vocab_size, tokenizer)
        if max_query_tokens < 1:
            raise ValueError(f"max_query_tokens must be at least 1, got {max_query_tokens}")
        if pair_window is not None and pair_window < 1:
            raise ValueError(f"pair_window must be at least 1 (or None for every pair), got {pair_window}")
        self.max_query_tokens = max_query_tokens
        self.pair_window = pair_window
        self.alpha = alpha
        self.items = list(items)

        self.token_center = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.token_offset = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.pair_score = nn.Linear(2 * dim, 1)
        self.pair_gate = nn.Linear(2 * dim, dim)
        self.region_score = nn.Linear(2 * dim, 1)
        self.operand_intersection = AttentionIntersection(dim)
        self.item_token = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.item_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.item_norm = nn.LayerNorm(dim)
        self.item_out = nn.Linear(dim, dim)
        with torch.no_grad():
            for table in (self.token_center, self.item_token):
                table.weight.normal_(0.0, init_radius)
                table.weight[0].zero_()
            self.token_offset.weight.normal_(-1.0, 0.1)
            self.token_offset.weight[0].zero_()
            self.item_out.weight.copy_(torch.eye(dim) + 0.01 * torch.randn(dim, dim))
            self.item_out.bias.zero_()

        title_ids, title_mask = self.tokenizer.batch(self.items, max_title_tokens)
        self.register_buffer("title_ids", title_ids, persistent=False)
        self.register_buffer("title_mask", title_mask, persistent=False)
        self._executor = QueryExecutor(self, alpha=alpha)

    # -- token regions ------------------------------------------------------------------
    def _token_regions(self, texts: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
        """Canonical centers ``[B, T, d]``, offsets ``[B, T, d]`` and mask ``[B, T]``."""
        ids, mask = self.tokenizer.batch(texts, self.max_query_tokens)
        ids, mask = ids.to(self.token_center.weight.device), mask.to(self.token_center.weight.device)
        return self.token_center(ids), F.softplus(self.token_offset(ids)), mask

    def _pairs(self, centers: Tensor, offsets: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The pairwise intersection layer: one region per token pair ``i < j``."""
        t = centers.shape[1]
        i, j = pair_indices(t, self.pair_window, centers.device)
        # index_select, not centers[:, i]: its backward is an index_add, not an index_put.
        ci, cj, oi, oj = (x.index_select(1, k) for x, k in ((centers, i), (centers, j), (offsets, i), (offsets, j)))
        scores = torch.cat([self.pair_score(torch.cat([ci, cj], -1)), self.pair_score(torch.cat([cj, ci], -1))], -1)
        weights = torch.softmax(scores, dim=-1)
        center = weights[..., :1] * ci + weights[..., 1:] * cj
        gate = torch.sigmoid(self.pair_gate(torch.cat([ci + cj, (ci - cj).abs()], -1)))
        return center, torch.minimum(oi, oj) * gate, mask[:, i] & mask[:, j]

    def encode_texts(self, texts: Sequence[str]) -> Region:
        """Regions ``[B]`` of plain texts (each text is one term, e.g. ``"fire tv"``)."""
        centers, offsets, mask = self._token_regions(texts)
        pc, po, pm = self._pairs(centers, offsets, mask)
        all_c, all_o, all_m = torch.cat([centers, pc], 1), torch.cat([offsets, po], 1), torch.cat([mask, pm], 1)
        weights = _masked_softmax(self.region_score(torch.cat([all_c, all_o], -1)).squeeze(-1), all_m)
        center = (weights[..., None] * all_c).sum(1)
        offset = (weights[..., None] * all_o).sum(1)
        return Region._trusted(self.geometry.expmap0(center), offset)

    # -- QueryEmbedder protocol ----------------------------------------------------------
    def embed_terms(self, names: Sequence) -> Region:
        return self.encode_texts([str(n) for n in names])

    def intersect(self, regions: Sequence[Region]) -> Region:
        """Learned intersection, used where the geometry has no exact one."""
        return self.operand_intersection(self.geometry, regions)

    # -- items ----------------------------------------------------------------------------------
    def _item_tokens(self, ids: Tensor, mask: Tensor) -> Tensor:
        x = self.item_token(ids)
        attended, _ = self.item_attention(x, x, x, key_padding_mask=~mask, need_weights=False)
        return self.item_norm(x + attended)

    def encode_titles(self, titles: Sequence[str]) -> Tensor:
        """Points ``[B, ambient_dim]`` for arbitrary titles (not only catalogue items)."""
        ids, mask = self.tokenizer.batch(titles, self.title_ids.shape[1])
        return self._points(ids.to(self.title_ids.device), mask.to(self.title_ids.device))

    def _points(self, ids: Tensor, mask: Tensor) -> Tensor:
        return self.geometry.expmap0(self.item_out(masked_mean(self._item_tokens(ids, mask), mask)))

    def embed_items(self, item_ids: Tensor | None = None, batch_size: int = 4096) -> Tensor:
        """Points of catalogue items (all of them by default), ``[..., ambient_dim]``."""
        if item_ids is None:
            item_ids = torch.arange(len(self.items), device=self.title_ids.device)
        flat = item_ids.reshape(-1)
        chunks = [
            self._points(self.title_ids[flat[s : s + batch_size]], self.title_mask[flat[s : s + batch_size]])
            for s in range(0, flat.numel(), batch_size)
        ]
        return torch.cat(chunks).reshape(*item_ids.shape, -1)

    def embed_queries(self, queries: Sequence[Query | str]) -> list[Region]:
        """Per query, a region batch with one region per DNF branch (a union has several)."""
        from boxlib.query import from_dnf, to_dnf

        out = []
        for q in queries:
            q = parse(q) if isinstance(q, str) else q
            out.append(self._executor.regions([from_dnf((c,)) for c in to_dnf(q)]))
        return out

    # -- scoring ------------------------------------------------------------------------------
    def distances(self, queries: Sequence[Query | str], item_points: Tensor) -> Tensor:
        """``[B, M]`` distances of each query to its own candidates ``[B, M, ambient_dim]``."""
        return self._executor.distances_paired(queries, item_points)

    def forward(self, queries: Sequence[Query | str], candidate_ids: Tensor) -> Tensor:
        """Training entry point (what DDP wraps): :meth:`scores`."""
        return self.scores(queries, candidate_ids)

    def scores(self, queries: Sequence[Query | str], candidate_ids: Tensor) -> Tensor:
        """``[B, M]`` scores (negative distances) of each query against its candidate items."""
        return -self.distances(queries, self.embed_items(candidate_ids))

    def all_scores(self, queries: Sequence[Query | str]) -> Tensor:
        """``[B, N]`` scores against every catalogue item (chunked over items)."""
        return self._executor.scores(queries, self.embed_items())

    def rank(self, query: Query | str, items: Tensor | None = None, k: int = 10) -> list[tuple[int, str, float]]:
        """The top ``k`` catalogue items for ``query`` as ``(item id, title, score)``."""
        with torch.no_grad():
            points = self.embed_items() if items is None else items
            scores, ids = self._executor.topk([query], points, k=k)
        return [(int(i), self.items[int(i)], float(s)) for s, i in zip(scores[0], ids[0])]

    def attention_grid(self, query: str, title: str) -> tuple[Tensor, list[str], list[str]]:
        """Query-token × title-token interaction ``[Tq, Tt]``: the score (negative distance)
        of each title token's point to each query token's region."""
        with torch.no_grad():
            centers, offsets, mask = self._token_regions([query])
            regions = Region._trusted(self.geometry.expmap0(centers[0]), offsets[0])
            ids, tmask = self.tokenizer.batch([title], self.title_ids.shape[1])
            h = self._item_tokens(ids.to(self.title_ids.device), tmask.to(self.title_ids.device))
            points = self.geometry.expmap0(self.item_out(h[0]))
            grid = -self.geometry.distance_to_region(regions[:, None], points[None], self.alpha)
        q_tokens = self.tokenizer.tokens(query)[: self.max_query_tokens] or ["<empty>"]
        t_tokens = self.tokenizer.tokens(title)[: self.title_ids.shape[1]] or ["<empty>"]
        return grid[: len(q_tokens), : len(t_tokens)], q_tokens, t_tokens
