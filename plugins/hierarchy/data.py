"""Is-a hierarchies as transitive closures: what the ``hierarchy`` model trains on.

A :class:`HierarchyDataset` is a set of named nodes and the *transitive closure* of an
is-a relation over them: every pair ``(child, ancestor)`` such that ``child`` is-a
``ancestor``, directly or through any chain (Nickel & Kiela 2017 embed exactly this
closure and reconstruct it). Build one from parent lists with
:meth:`HierarchyDataset.from_parents`; the WordNet datasets (``wordnet_nouns``,
``wordnet_mammals``) come from :mod:`boxlib_plugins.wordnet.hierarchy`.

>>> ds = HierarchyDataset.from_parents("toy", ["animal", "dog", "puppy"], [[], [0], [1]])
>>> ds
HierarchyDataset('toy', nodes=3, pairs=3)
>>> sorted(ds.ancestors("puppy"))
['animal', 'dog']
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["HierarchyDataset", "HierarchyError", "transitive_closure"]


class HierarchyError(ValueError):
    """A hierarchy that cannot be used (a cycle, an unknown node, malformed pairs)."""


def transitive_closure(parents: Sequence[Iterable[int]]) -> np.ndarray:
    """All ``(child, ancestor)`` pairs of the DAG given by ``parents[i]`` (ids of i's parents).

    Returns an ``int64`` array ``[E, 2]`` sorted by child, then ancestor; no node is its
    own ancestor. Nodes are visited parents-first (Kahn's algorithm), so deep chains need
    no recursion. A cycle raises :class:`HierarchyError` naming nodes on it.
    """
    n = len(parents)
    parent_lists = [sorted({int(p) for p in ps}) for ps in parents]
    children: list[list[int]] = [[] for _ in range(n)]
    pending = np.zeros(n, dtype=np.int64)
    for child, ps in enumerate(parent_lists):
        for p in ps:
            if not 0 <= p < n:
                raise HierarchyError(f"node {child} names parent {p}, outside 0..{n - 1}")
            if p == child:
                raise HierarchyError(f"node {child} is its own parent")
            children[p].append(child)
        pending[child] = len(ps)
    ancestors: list[frozenset[int] | None] = [None] * n
    ready = [i for i in range(n) if pending[i] == 0]
    while ready:
        node = ready.pop()
        found: set[int] = set()
        for p in parent_lists[node]:
            found.add(p)
            found |= ancestors[p]  # type: ignore[operator]  # parents are done first
        ancestors[node] = frozenset(found)
        for child in children[node]:
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    stuck = [i for i in range(n) if ancestors[i] is None]
    if stuck:
        raise HierarchyError(
            f"the parent relation has a cycle: {len(stuck)} nodes never reach a root (e.g. node ids "
            f"{stuck[:5]}); an is-a hierarchy must be acyclic"
        )
    sizes = np.fromiter((len(a) for a in ancestors), dtype=np.int64, count=n)  # type: ignore[arg-type]
    child_ids = np.repeat(np.arange(n, dtype=np.int64), sizes)
    ancestor_ids = np.fromiter((v for a in ancestors for v in sorted(a)), dtype=np.int64, count=int(sizes.sum()))  # type: ignore[union-attr]
    return np.stack([child_ids, ancestor_ids], axis=1)


@dataclasses.dataclass(frozen=True, eq=False)
class HierarchyDataset:
    """Named nodes and the transitive closure of an is-a relation over them.

    :ivar name: dataset name (e.g. ``wordnet_mammals``).
    :ivar nodes: node names; a node's id is its position.
    :ivar edges: ``LongTensor [E, 2]`` of ``(child, ancestor)`` ids: the closure, sorted by
        child then ancestor, without duplicates or self pairs.
    :ivar metadata: provenance (source files and their sha256, counts, choices made).
    """

    name: str
    nodes: tuple[str, ...]
    edges: Tensor
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        edges = torch.as_tensor(self.edges)
        if edges.dtype not in (torch.int64, torch.int32) or edges.dim() != 2 or edges.shape[1] != 2:
            raise HierarchyError(
                f"{self.name}: edges must be an integer tensor [E, 2] of (child, ancestor) ids, "
                f"got dtype {edges.dtype}, shape {tuple(edges.shape)}"
            )
        edges = edges.to(torch.int64)
        n = len(self.nodes)
        if len(set(self.nodes)) != n:
            raise HierarchyError(f"{self.name}: node names must be unique")
        if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= n):
            raise HierarchyError(f"{self.name}: edges name node ids outside 0..{n - 1}")
        if bool((edges[:, 0] == edges[:, 1]).any()):
            raise HierarchyError(f"{self.name}: a node cannot be its own ancestor (self pairs in edges)")
        keys = edges[:, 0] * n + edges[:, 1]
        order = torch.argsort(keys)
        keys = keys[order]
        if keys.numel() > 1 and bool((keys[1:] == keys[:-1]).any()):
            raise HierarchyError(f"{self.name}: edges hold duplicate pairs")
        object.__setattr__(self, "edges", edges[order].contiguous())
        object.__setattr__(self, "metadata", dict(self.metadata))

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_parents(
        cls,
        name: str,
        nodes: Sequence[str],
        parents: Sequence[Iterable[int]],
        metadata: Mapping[str, Any] | None = None,
    ) -> HierarchyDataset:
        """The closure of the direct parent relation ``parents[i]`` (ids) of ``nodes[i]``."""
        if len(parents) != len(nodes):
            raise HierarchyError(f"{name}: {len(nodes)} nodes but {len(parents)} parent lists")
        return cls(name, tuple(nodes), torch.from_numpy(transitive_closure(parents)), metadata or {})

    def subtree(
        self,
        root: str,
        *,
        exclude: Iterable[str] = (),
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> HierarchyDataset:
        """``root`` and all its descendants, minus the nodes in ``exclude`` (and their pairs),
        with the closure restricted to them. Node ids are renumbered in this dataset's order."""
        r = self.index(root)
        excluded = {self.index(x) for x in exclude}
        if r in excluded:
            raise HierarchyError(f"{self.name}: cannot exclude the subtree's root {root!r}")
        keep = torch.zeros(self.n_nodes, dtype=torch.bool)
        keep[self.edges[self.edges[:, 1] == r, 0]] = True
        keep[r] = True
        if excluded:
            keep[torch.tensor(sorted(excluded))] = False
        new_id = torch.full((self.n_nodes,), -1, dtype=torch.int64)
        kept = torch.nonzero(keep)[:, 0]
        new_id[kept] = torch.arange(len(kept))
        inside = keep[self.edges[:, 0]] & keep[self.edges[:, 1]]
        meta = {**self.metadata, "root": root, "excluded": sorted(self.nodes[i] for i in excluded), **(metadata or {})}
        return HierarchyDataset(
            name or f"{self.name}:{root}",
            tuple(self.nodes[i] for i in kept.tolist()),
            new_id[self.edges[inside]],
            meta,
        )

    # -- access -------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])

    @functools.cached_property
    def _ids(self) -> dict[str, int]:
        return {node: i for i, node in enumerate(self.nodes)}

    def index(self, node: str) -> int:
        """The id of ``node``; an unknown name raises :class:`HierarchyError` with close matches."""
        try:
            return self._ids[node]
        except KeyError:
            close = difflib.get_close_matches(node, self.nodes, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise HierarchyError(f"{self.name} has no node {node!r}{hint}") from None

    @functools.cached_property
    def indptr(self) -> Tensor:
        """CSR row pointers: the ancestors of node ``u`` are ``edges[indptr[u]:indptr[u+1], 1]``."""
        counts = torch.bincount(self.edges[:, 0], minlength=self.n_nodes)
        return torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])

    @functools.cached_property
    def pair_keys(self) -> Tensor:
        """``child * n_nodes + ancestor`` of every pair, sorted (for vectorised membership tests)."""
        return self.edges[:, 0] * self.n_nodes + self.edges[:, 1]

    def ancestor_ids(self, node: int) -> Tensor:
        """Ids of the ancestors of node id ``node``, increasing."""
        return self.edges[self.indptr[node] : self.indptr[node + 1], 1]

    def ancestors(self, node: str) -> list[str]:
        """Names of the ancestors of ``node``."""
        return [self.nodes[i] for i in self.ancestor_ids(self.index(node)).tolist()]

    def is_pair(self, child: Tensor, ancestor: Tensor) -> Tensor:
        """Elementwise: whether ``(child, ancestor)`` is in the closure (broadcasting id tensors)."""
        child, ancestor = torch.broadcast_tensors(child, ancestor)
        keys = self.pair_keys.to(child.device)
        query = child * self.n_nodes + ancestor
        if keys.numel() == 0:
            return torch.zeros_like(query, dtype=torch.bool)
        at = torch.searchsorted(keys, query.reshape(-1)).clamp_max(keys.numel() - 1)
        return (keys[at] == query.reshape(-1)).reshape(query.shape)

    @property
    def sources(self) -> Tensor:
        """Ids of the nodes with at least one ancestor (the ones reconstruction ranks for)."""
        return torch.nonzero(self.indptr[1:] > self.indptr[:-1])[:, 0]

    def __repr__(self) -> str:
        return f"HierarchyDataset({self.name!r}, nodes={self.n_nodes}, pairs={self.n_edges})"
