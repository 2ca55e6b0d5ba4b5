"""``boxlib bench``: cross-geometry benchmarks that train and compare every registered geometry.

Suites (each a module with ``add_arguments(parser)`` and ``run(args) -> int``):

* ``catalog`` (the default): ANTHEM in every registered geometry, the vector dual
  encoder and BM25 on a retrieval catalog (the shipped ``wordnet_artifacts`` by default).
* ``hierarchy``: reconstruction of the WordNet noun / mammal hierarchies (mean rank, MAP).
* ``kg``: knowledge-graph logical queries with the Query2Box-style model per geometry.

Every suite writes ``benchmarks/results/<run>/`` (or ``--out``) with ``table.md``,
``results.csv``, ``config.yaml`` (the resolved settings), ``machine.json`` (hardware,
versions, command line) and plots; see :mod:`boxlib.bench.common`.
"""

from __future__ import annotations

import importlib

__all__ = ["SUITES", "suite"]

#: Suite name → module implementing it.
SUITES = {
    "catalog": "boxlib.bench.catalog",
    "hierarchy": "boxlib.bench.hierarchy",
    "kg": "boxlib.bench.kg",
}


def suite(name: str):
    """The module of suite ``name`` (imported on use, so ``boxlib --help`` stays fast)."""
    return importlib.import_module(SUITES[name])
