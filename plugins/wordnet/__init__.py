"""The ``wordnet_artifacts`` dataset: WordNet 3.0's artifact hierarchy as a catalog.

Items are the 10,698 noun synsets below ``artifact.n.01``; queries are category names
and boolean combinations of them with exact, graded answers. The built files ship in
``data/`` (see ``docs/datasets.md`` and ``scripts/build_wordnet_artifacts.py``).

>>> import boxlib.plugins
>>> dataset = boxlib.plugins.host().registries["dataset"].create("wordnet_artifacts")
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from boxlib.hookspecs import hookimpl

if TYPE_CHECKING:
    from boxlib_plugins.hierarchy.data import HierarchyDataset

    from boxlib.data import RetrievalDataset

__all__ = ["wordnet_artifacts", "wordnet_mammals", "wordnet_nouns"]


def wordnet_artifacts(data_dir: str | os.PathLike[str] | None = None) -> RetrievalDataset:
    """WordNet 3.0 artifacts: 10,698 synsets, category queries and boolean combinations.

    See :func:`boxlib_plugins.wordnet.loader.load_wordnet_artifacts`.
    """
    from .loader import load_wordnet_artifacts  # imported on use: plugin discovery stays cheap

    return load_wordnet_artifacts(data_dir)


def wordnet_nouns(
    wordnet_dir: str | os.PathLike[str] | None = None,
    *,
    instances: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> HierarchyDataset:
    """WordNet 3.0 noun hierarchy: 82,115 synsets, 743,241 closure pairs (Nickel & Kiela 2017).

    See :func:`boxlib_plugins.wordnet.hierarchy.wordnet_nouns`.
    """
    from .hierarchy import wordnet_nouns as build

    return build(wordnet_dir, instances=instances, cache_dir=cache_dir)


def wordnet_mammals(
    wordnet_dir: str | os.PathLike[str] | None = None,
    *,
    root: str = "mammal.n.01",
    exclude: list[str] | tuple[str, ...] = ("tusker.n.01", "female_mammal.n.01"),
    instances: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> HierarchyDataset:
    """WordNet 3.0 mammal subtree: 1,180 synsets, 6,540 closure pairs (Nickel & Kiela 2017).

    See :func:`boxlib_plugins.wordnet.hierarchy.wordnet_mammals`.
    """
    from .hierarchy import wordnet_mammals as build

    return build(wordnet_dir, root=root, exclude=exclude, instances=instances, cache_dir=cache_dir)


@hookimpl
def boxlib_add_datasets(registry) -> None:
    registry.add(wordnet_artifacts, name="wordnet_artifacts")
    registry.add(wordnet_nouns, name="wordnet_nouns")
    registry.add(wordnet_mammals, name="wordnet_mammals")
