"""The ``debian_packages`` dataset: a Debian ``Packages`` file as a faceted catalog.

Items are the packages that carry debtags (``Tag:`` fields: ``implemented-in::python``,
``interface::commandline``, ``works-with::image``, ...); queries are the tags in words
(``implemented in python``) and boolean combinations of tags from different facets, with
exact answers. Nothing ships: the catalog is built from apt's lists (``apt-cache
dumpavail``) or any ``Packages`` file on the user's machine (see ``docs/datasets.md``).

>>> import boxlib.plugins
>>> dataset = boxlib.plugins.host().registries["dataset"].create("debian_packages")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from boxlib.hookspecs import hookimpl

if TYPE_CHECKING:
    from boxlib.data import RetrievalDataset

__all__ = ["debian_packages"]


def debian_packages(
    path: str | os.PathLike[str] | None = None,
    *,
    min_answers: int = 10,
    seed: int = 0,
    max_queries_per_structure: int = 5000,
    max_items: int | None = None,
) -> RetrievalDataset:
    """Debian packages with debtags as a faceted catalog; ``path=None`` reads ``apt-cache dumpavail``.

    See :func:`boxlib_plugins.debian.loader.load_debian_packages`.
    """
    from .loader import load_debian_packages  # imported on use: plugin discovery stays cheap

    return load_debian_packages(
        path,
        min_answers=min_answers,
        seed=seed,
        max_queries_per_structure=max_queries_per_structure,
        max_items=max_items,
    )


@hookimpl
def boxlib_add_datasets(registry) -> None:
    registry.add(debian_packages, name="debian_packages")
