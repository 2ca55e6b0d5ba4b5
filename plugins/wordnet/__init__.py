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
    from boxlib.data import RetrievalDataset

__all__ = ["wordnet_artifacts"]


def wordnet_artifacts(data_dir: str | os.PathLike[str] | None = None) -> RetrievalDataset:
    """WordNet 3.0 artifacts: 10,698 synsets, category queries and boolean combinations.

    See :func:`boxlib_plugins.wordnet.loader.load_wordnet_artifacts`.
    """
    from .loader import load_wordnet_artifacts  # imported on use: plugin discovery stays cheap

    return load_wordnet_artifacts(data_dir)


@hookimpl
def boxlib_add_datasets(registry) -> None:
    registry.add(wordnet_artifacts, name="wordnet_artifacts")
